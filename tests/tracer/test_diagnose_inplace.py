"""tracer.diagnose's changed-input check: forwards that change their inputs in place, and what they mislead."""

import gc
import weakref

import numpy as np
import pytest

import engine as E
import tracer
from tests.tracer.engines import fullcore, recursive
from tracer.diagnose import diagnose


class ReluInPlace(E.Function):
    """The student's ReLU that zeroes its input array itself."""

    def forward(self, x):
        x[x < 0] = 0
        return x

    def backward(self, gy):
        x, = self.inputs
        return gy * (x.data > 0)


class SoftmaxInPlace(E.Function):
    """Softmax that shifts its input in place for stability (`x -= x.max()`)."""

    def forward(self, x):
        x -= x.max()
        e = np.exp(x)
        return e / e.sum()

    def backward(self, gy):
        y = self.outputs[0]().data
        gx = y * gy
        return gx - y * gx.sum()


class Relu(E.Function):
    def forward(self, x):
        return np.maximum(x, 0)

    def backward(self, gy):
        x, = self.inputs
        return gy * (x.data > 0)


class AssignsSame(E.Function):
    """Writes into its input, but the very values it held."""

    def forward(self, x):
        x[...] = x * 1.0
        return x * 2

    def backward(self, gy):
        return gy * 2


def _check(build):
    with tracer.trace() as t:
        loss = build()
        loss.backward()
    notes = []
    return t, diagnose(t, notes=notes), notes


def test_a_leaf_changed_after_another_function_used_it_names_the_forward_not_that_backward():
    def build():
        x = E.Variable(np.array([-1.0, 2.0, -3.0]))
        return E.sum(E.square(x) + ReluInPlace()(x))

    t, findings, _ = _check(build)
    assert [f.kind for f in findings] == ["changed-input"]
    finding = findings[0]
    relu = next(c for c in t.calls.values() if c.op == "ReluInPlace")
    square = next(c for c in t.calls.values() if c.op == "Square")
    assert (finding.severity, finding.call, finding.variable) == ("error", relu.id, square.inputs[0])
    assert "[-1, 2, -3] became [0, 2, 0] (2 of 3 elements)" in finding.message
    assert "the backward of Square (step" in finding.message and "read the changed value" in finding.message
    assert "np.maximum(x, 0)" in finding.hint


def test_a_value_changed_for_a_later_forward_and_the_creator_that_reads_its_output():
    def build():
        x = E.Variable(np.array([1.0, 2.0, 3.0]))
        h = E.exp(x)  # Exp.backward reads its output, h
        p = SoftmaxInPlace()(h)
        return E.sum(p * E.Variable(np.array([1.0, 0.0, 2.0]))) + E.sum(h)

    t, findings, notes = _check(build)
    by_kind = {f.kind: f for f in findings}
    changed = by_kind["changed-input"]
    assert changed.severity == "error"
    assert "then ran on the changed value" in changed.message and "Sum (f" in changed.message
    exp = by_kind["wrong-backward"]
    assert exp.call == next(c.id for c in t.calls.values() if c.op == "Exp")
    assert "an output of Exp, was changed in place by SoftmaxInPlace.forward" in exp.hint
    # the later Sum is re-run on what it received (the changed h), not on h as it was made
    assert not any("Sum not checked" in note for note in notes)


def test_a_change_nothing_read_is_a_warning_when_the_run_shows_it_and_correct_forwards_give_nothing():
    """Re-running a forward shows what it would do to an array it owned; the run shows that it
    did: here its output was recorded as the changed array (it returned its input)."""
    def changed_alone():
        x = E.Variable(np.array([-1.0, 2.0]))
        return E.sum(ReluInPlace()(x * 2.0) * 3.0)  # nothing reads the changed value afterwards

    _, findings, _ = _check(changed_alone)
    assert [(f.kind, f.severity) for f in findings] == [("changed-input", "warning")]

    def correct():
        x = E.Variable(np.array([-1.0, 2.0, -3.0]))
        return E.sum(E.square(x) + Relu()(x) + AssignsSame()(x))

    _, findings, _ = _check(correct)
    assert findings == ()


def test_an_engine_handing_forward_a_copy_is_not_told_its_forward_changed_the_input():
    class CopyingVariable(fullcore.Variable):
        """.data hands out a copy, as an engine whose __call__ passes np.array(x.data)."""

        @property
        def data(self):
            return self._data.copy()

        @data.setter
        def data(self, value):
            self._data = value

    class Shift(fullcore.Function):
        def forward(self, x):
            x -= 1.0  # on the copy: harmless here
            return np.exp(x)

        def backward(self, gy):
            return gy * self.outputs[0]().data

    with tracer.trace(fullcore.Function, CopyingVariable) as t:
        h = CopyingVariable(np.array([1.0, 4.0, 9.0]), name="h")
        y = fullcore.Add()(Shift()(h), h)
        y.grad = CopyingVariable(np.ones(3))
        y.backward()
    assert diagnose(t, checks=["changed-input", "wrong-backward"]) == ()
    assert t.leaf_changed_at == {}  # its forward changed a copy: the leaf is as it was


def test_the_script_replacing_a_leafs_data_between_forwards_leaves_the_checks_on_the_recorded_value():
    """x.data = -x.data between sin(x) and square(x): square was judged at the old x (wrong-backward)."""
    with tracer.trace() as t:
        x = E.Variable(np.array([1.5, -2.0]), name="x")
        a = E.sin(x)
        x.data = -x.data
        E.sum(a + E.square(x)).backward()
    assert diagnose(t) == ()


def test_the_script_changing_a_leaf_between_two_forwards_is_not_a_forward_changing_it():
    with tracer.trace() as t:
        x = E.Variable(np.array([-1.0, 2.0]))
        a = E.square(x)
        x.data[0] = 5.0  # the script's doing (odd, but not a forward's)
        y = E.sum(a + E.exp(x))
        y.backward()
    findings = diagnose(t, checks=["changed-input"])
    assert findings == ()


def test_a_two_input_forward_adding_into_its_first_input():
    class AddInPlace(E.Function):
        def forward(self, a, b):
            a += b
            return a

        def backward(self, gy):
            return gy, gy

    with tracer.trace() as t:
        x, w = E.Variable(np.array([1.0, 2.0])), E.Variable(np.array([3.0, 4.0]))
        h = E.exp(x)
        y = E.sum(AddInPlace()(h, w) * h)
        y.backward()
    findings = diagnose(t, checks=["changed-input"])
    assert [f.kind for f in findings] == ["changed-input"]
    assert findings[0].numbers["input"] == 0 and findings[0].severity == "error"


def test_only_changed_input_from_the_command_line(tmp_path):
    from click.testing import CliRunner

    from cli import main
    script = tmp_path / "relu.py"
    script.write_text(
        "import numpy as np\nimport engine as E\n"
        "class R(E.Function):\n"
        "    def forward(self, x):\n        x[x < 0] = 0\n        return x\n"
        "    def backward(self, gy):\n        return gy * (self.inputs[0].data > 0)\n"
        "x = E.Variable(np.array([-1.0, 2.0]))\n"
        "y = E.sum(E.square(x) + R()(x))\ny.backward()\n")
    result = CliRunner().invoke(main, ["check", "--only", "changed-input", "--json", str(script)])
    assert result.exit_code == 1, result.output
    document = __import__("json").loads(result.stdout)
    assert [f["kind"] for f in document["findings"]] == ["changed-input"]


def test_a_forward_whose_own_backward_read_the_changed_input_is_an_error():
    class SquareInPlace(E.Function):
        def forward(self, x):
            x **= 2
            return x

        def backward(self, gy):
            x, = self.inputs
            return 2 * x.data * gy  # reads the squared value

    with tracer.trace() as t:
        x = E.Variable(np.array(0.5), name="x")
        SquareInPlace()(E.exp(x)).backward()
    (changed,) = [f for f in diagnose(t) if f.kind == "changed-input"]
    assert changed.severity == "error" and "its own backward (step 1) read the changed value" in changed.message
    (exp,) = [f for f in diagnose(t) if f.kind == "wrong-backward"]  # not SquareInPlace's: named above
    assert exp.call == 1 and "an output of Exp, was changed in place by SquareInPlace.forward" in exp.hint


def test_the_last_pass_is_checked_whole_whatever_the_passes_before_used_up():
    """The re-runs are capped per op and shapes across the passes: the later passes, the last
    among them, lost their checks (a bug that shows only in the last pass was missed)."""
    class Abs(E.Function):
        def forward(self, x):
            return np.abs(x)

        def backward(self, gy):
            return gy  # wrong once x < 0: only in the last pass

    with tracer.trace(keep="sample") as t:
        x = E.Variable(np.array([10.5, 11.5]))
        for _ in range(12):
            x.cleargrad()
            y = Abs()(x)
            for _ in range(5):
                y = E.add(y, Abs()(x))
            E.sum(y).backward()
            x.data -= 1.0
    passes = {f.pass_id for f in diagnose(t, checks=["wrong-backward"])}
    assert passes == {12}


def test_a_leaf_changed_then_read_by_a_later_forward_is_an_error_naming_it():
    class Double(E.Function):
        def forward(self, x):
            x *= 2
            return x.copy()

        def backward(self, gy):
            return gy * 2

    with tracer.trace() as t:
        x = E.Variable(np.array([1.0, 2.0]), name="x")
        a = x + 1.0
        b = Double()(x)
        E.sum(a + b + E.square(x)).backward()
    (changed,) = [f for f in diagnose(t) if f.kind == "changed-input"]
    assert changed.severity == "error" and "Square (f" in changed.message and "then ran on the changed" in changed.message


def test_a_leaf_changed_by_the_first_function_that_uses_it():
    """The leaf is recorded as that first forward received it (not as it left it), so the
    re-run shows the change, and the run shows it too (the leaf after the call differs)."""
    def build():
        x = E.Variable(np.array([-1.0, 2.0, -3.0]))
        return E.sum(ReluInPlace()(x) + E.square(x))  # Square then reads the zeroed x

    t, findings, _ = _check(build)
    assert [f.kind for f in findings] == ["changed-input"]
    finding = findings[0]
    relu = next(c for c in t.calls.values() if c.op == "ReluInPlace")
    assert (finding.severity, finding.call, finding.variable) == ("error", relu.id, relu.inputs[0])
    assert "[-1, 2, -3] became [0, 2, 0] (2 of 3 elements)" in finding.message
    assert "Square (f" in finding.message and "then ran on the changed value" in finding.message
    # the picture keeps the value each forward saw: x as Square (and the pass) found it
    assert t.variables[relu.inputs[0]].value.values == (-1.0, 2.0, -3.0)
    assert t.passes[-1].values[relu.inputs[0]].values == (0.0, 2.0, 0.0)
    assert t.leaf_changed_at == {relu.inputs[0]: relu.id}  # only there is the leaf re-run as received


def test_a_leaf_changed_by_its_only_function_which_returned_it_is_a_warning():
    def build():
        x = E.Variable(np.array([-1.0, 2.0]))
        return E.sum(ReluInPlace()(x) * 3.0)

    _, findings, _ = _check(build)
    assert [(f.kind, f.severity) for f in findings] == [("changed-input", "warning")]
    assert "[-1, 2] became [0, 2]" in findings[0].message



class ReluInPlaceThenExp(E.Function):
    """Zeroes its input, then calls another Function inside its forward (a composite op)."""

    def forward(self, x):
        x[x < 0] = 0
        return E.exp(E.Variable(x.copy())).data

    def backward(self, gy):
        x, = self.inputs
        return gy * np.exp(x.data)


def test_a_leaf_changed_by_a_composite_forward_is_found_also_under_nested_traces():
    """Under nested traces the inner call's end dropped the outer call's capture of x."""
    with tracer.trace(warn=False) as outer:
        with tracer.trace(recursive.Function, recursive.Variable, warn=False):
            x = E.Variable(np.array([-1.0, 2.0, -3.0]))
            E.sum(ReluInPlaceThenExp()(x) + E.square(x)).backward()
    assert [(f.kind, f.severity) for f in diagnose(outer) if f.kind == "changed-input"] == [
        ("changed-input", "error")]


def test_a_nested_trace_of_another_engine_keeps_no_leaf_alive():
    """Every call's new arguments went to every nested recorder, which kept them to the end."""
    alive = []
    with tracer.trace(keep="last", warn=False):
        with tracer.trace(recursive.Function, recursive.Variable, keep="last", warn=False):
            for _ in range(20):
                x = E.Variable(np.ones(3))
                alive.append(weakref.ref(x))
                E.sum(E.sin(x)).backward()
            del x
            gc.collect()
            assert tracer.hooks.active_recorder().members[-1].entry_values == {}
            assert sum(r() is not None for r in alive) <= 1  # the last pass's, held by its root


def test_a_leaf_changed_by_its_first_function_called_with_a_list():
    """The book's step 11 style, f([x]): the leaf inside the list is captured before the forward."""
    class Variable:
        def __init__(self, data):
            self.data, self.grad, self.creator = data, None, None

        def backward(self):
            self.grad = np.ones_like(self.data)
            funcs = [self.creator]
            while funcs:
                f = funcs.pop()
                gxs = f.backward(*[y.grad for y in f.outputs])
                for x, gx in zip(f.inputs, gxs):
                    x.grad = gx if x.grad is None else x.grad + gx
                    if x.creator is not None:
                        funcs.append(x.creator)

    class Function:
        def __call__(self, inputs):
            ys = [Variable(np.asarray(y)) for y in self.forward([x.data for x in inputs])]
            for y in ys:
                y.creator = self
            self.inputs, self.outputs = inputs, ys
            return ys

    class ReluList(Function):
        def forward(self, xs):
            xs[0][xs[0] < 0] = 0
            return (xs[0],)

        def backward(self, gy):
            return (gy * (self.inputs[0].data > 0),)

    with tracer.trace(Function, Variable) as t:
        x = Variable(np.array([-1.0, 2.0]))
        ReluList()([x])[0].backward()
    relu = next(iter(t.calls.values()))
    assert t.leaf_changed_at == {relu.inputs[0]: relu.id}
    assert [f.kind for f in diagnose(t, checks=["changed-input"])] == ["changed-input"]


class AddOneInPlace(E.Function):
    """`x += 1` on its input array."""

    def forward(self, x):
        x += 1
        return x * 2

    def backward(self, gy):
        return gy * 2


@pytest.mark.parametrize("build", [
    lambda: (lambda x: E.sum(AddOneInPlace()(x) + E.square(x)))(E.Variable(np.array([1.0, 2.0]))),
    lambda: (lambda x: E.sum(ReluInPlace()(x) + E.square(x)))(E.Variable(np.array([-1.0, 2.0, -3.0]))),
    lambda: E.sum(ReluInPlace()(E.Variable(np.array([-1.0, 2.0]))) * 3.0),
    lambda: (lambda x: E.sum(SoftmaxInPlace()(x) * x))(E.Variable(np.array([1.0, 2.0, 3.0]))),
], ids=["add-one-then-square", "relu-then-square", "relu-only", "softmax"])
def test_a_saved_trace_gives_the_changed_input_findings_of_the_run(build):
    """Read back from JSON no forward can be re-run: the leaf the first forward that used it
    changed (leaf_changed_at) is the run's own record of the change."""
    t, findings, _ = _check(build)
    assert [f.kind for f in findings] == ["changed-input"] and t.leaf_changed_at
    again = tracer.loads(t.to_json())
    assert diagnose(again, checks=["changed-input"]) == findings
