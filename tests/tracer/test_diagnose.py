"""tracer.diagnose: each finding triggered by a broken engine or op, and none on correct ones."""

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine as E
import tracer
from tests.tracer.broken import ops as bad_ops
from tests.tracer.broken.engines import make_engine
from tests.tracer.engines import fullcore, generations, listpop, recursive
from tracer import jsonio
from tracer.diagnose import (CHECKS, DiagnoseError, attach, diagnose, findings_from_json,
                             findings_to_json, format_report)


def kinds(findings):
    return sorted({f.kind for f in findings})


def run(fn, *, dtype=np.float64, **trace_options):
    """Trace ``fn(dtype)`` (it returns the loss, or runs backward itself and returns None)."""
    with np.errstate(all="ignore"), tracer.trace(**trace_options) as t:
        loss = fn(dtype)
        if loss is not None:
            loss.backward()
    return t


def op_call(t, op):
    return next(c.id for c in t.calls.values() if c.op == op)


# ----- no false positives on every op of the engine ------------------------------------------

def _weighted(y, rng, dtype):
    return E.sum(y * E.Variable(rng.standard_normal(y.shape).astype(dtype)))


def _op_cases():
    """name -> f(dtype) returning a scalar loss that exercises the op (kinks and ties included)."""
    def case(build):
        def fn(dtype):
            rng = np.random.default_rng(7)

            def v(*shape, low=-2.0, high=2.0):
                return E.Variable(rng.uniform(low, high, shape).astype(dtype))

            def w(y):
                return _weighted(y, rng, dtype)

            return build(v, w, lambda values: E.Variable(np.array(values, dtype=dtype)))
        return fn

    pos = {"low": 0.5, "high": 3.0}
    return {
        "square": case(lambda v, w, c: w(E.square(v(3)))),
        "exp": case(lambda v, w, c: w(E.exp(v(3)))),
        "log": case(lambda v, w, c: w(E.log(v(3, **pos)))),
        "sin-cos": case(lambda v, w, c: w(E.sin(v(2, 2))) + w(E.cos(v(3)))),
        "tanh-sigmoid": case(lambda v, w, c: w(E.tanh(v(3))) + w(E.sigmoid(v(3)))),
        "relu-at-0": case(lambda v, w, c: w(E.relu(c([-1.0, 0.0, 2.0])))),
        "pow": case(lambda v, w, c: w(E.pow(v(3, **pos), 3)) + w(v(2, **pos) ** 0.5) + w(2.0 ** v(2))),
        "arithmetic-broadcast": case(lambda v, w, c: w(v(2, 3) + v(3)) + w(v(2, 3) - v(2, 1))
                                     + w(v(2, 3) * v(1, 3)) + w(v(2, 3) / v(3, **pos)) + w(-v(2))),
        "reflected-scalars": case(lambda v, w, c: w(2.0 - v(3)) + w(1.0 / v(3, **pos)) + w(v(3) * 3.0)),
        "reshape-transpose": case(lambda v, w, c: w(E.reshape(v(2, 3), (3, 2))) + w(v(2, 3).T)
                                  + w(v(2, 3, 4).transpose(2, 0, 1))),
        "broadcast_to-sum_to": case(lambda v, w, c: w(E.broadcast_to(v(1, 3), (2, 3)))
                                    + w(E.sum_to(v(2, 3), (1, 3)))),
        "sum-axis-keepdims": case(lambda v, w, c: w(E.sum(v(2, 3), axis=0))
                                  + w(E.sum(v(2, 3), axis=1, keepdims=True))
                                  + w(E.sum(v(2, 3, 2), axis=(0, 2)))),
        "matmul": case(lambda v, w, c: w(E.matmul(v(2, 3), v(3, 4))) + w(E.matmul(v(3), v(3, 2)))),
        "linear": case(lambda v, w, c: w(E.linear(v(2, 3), v(3, 4), v(4))) + w(E.linear(v(2, 3), v(3, 2)))),
        "get_item": case(lambda v, w, c: w(v(3, 4)[1]) + w(v(3, 4)[:, 1:3])
                         + w(E.get_item(v(4), np.array([0, 0, 2])))),
        "clip-at-bounds": case(lambda v, w, c: w(E.clip(c([-2.0, -1.0, 0.0, 1.0, 3.0]), -1.0, 1.0))),
        "max-min-ties": case(lambda v, w, c: w(E.max(v(2, 3), axis=1)) + E.max(c([1.0, 3.0, 3.0]))
                             + w(E.min(v(2, 3), axis=0, keepdims=True)) + E.min(c([2.0, 2.0]))),
        "mean_squared_error": case(lambda v, w, c: E.mean_squared_error(v(2, 3), v(2, 3))),
        "softmax-family": case(lambda v, w, c: w(E.softmax(v(2, 3))) + E.sum(E.softmax(v(2, 3), axis=0))
                               + w(E.log_softmax(v(2, 3)))),
        "softmax_cross_entropy": case(lambda v, w, c: E.softmax_cross_entropy(v(3, 4), np.array([0, 3, 1]))),
        "dropout-test-mode": case(lambda v, w, c: _in_test_mode(lambda: w(E.dropout(v(3))))),
        "mlp": case(lambda v, w, c: E.softmax_cross_entropy(
            E.linear(E.sigmoid(E.linear(v(4, 3), v(3, 5), v(5))), v(5, 2), v(2)), np.array([0, 1, 1, 0]))),
    }


def _in_test_mode(build):
    with E.test_mode():
        return build()


OP_CASES = _op_cases()


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_no_findings_on_every_engine_op(name, dtype):
    t = run(OP_CASES[name], dtype=dtype)
    notes = []
    findings = diagnose(t, notes=notes)
    assert findings == (), format_report(findings, t, notes)
    assert notes == []  # every call was re-run and checked
    assert t.findings == ()


@pytest.mark.parametrize("name", ["square", "relu-at-0", "arithmetic-broadcast", "get_item",
                                  "max-min-ties", "softmax-family", "mlp"])
def test_every_checked_op_is_caught_when_its_backward_is_scaled(name, monkeypatch):
    """The check really runs: scaling each op's backward by 1.3 flags every op of the graph."""
    for cls in (E.Square, E.Add, E.Sub, E.Mul, E.Div, E.Neg, E.Sum, E.ReLU, E.GetItem, E.Max,
                E.Min, E.Softmax, E.LogSoftmax, E.Linear, E.Sigmoid, E.SoftmaxCrossEntropy):
        monkeypatch.setattr(cls, "backward", _scaled(cls.backward), raising=True)
    t = run(OP_CASES[name])
    findings = diagnose(t)
    flagged = {t.calls[f.call].op for f in findings if f.kind == "wrong-backward"}
    assert flagged == {t.calls[c].op for c in t.select_pass().calls}
    assert "leaf-gradient" in kinds(findings)


def _scaled(backward):
    def scaled(self, *gys):
        result = backward(self, *gys)
        if isinstance(result, tuple):
            return tuple(None if g is None else g * 1.3 for g in result)
        return result * 1.3
    return scaled


RANDOM_OPS = {
    "square": E.square, "exp": E.exp, "sin": E.sin, "tanh": E.tanh, "sigmoid": E.sigmoid,
    "relu": E.relu, "clip": lambda x: E.clip(x, -1.0, 1.0), "max": E.max, "min": E.min,
    "softmax": lambda x: E.softmax(x, axis=0), "log_softmax": lambda x: E.log_softmax(x, axis=0),
    "mixed": lambda x: x * x + E.sin(x) / (1.0 + x * x) - E.sum(x) * E.relu(x),
}


@settings(max_examples=60, deadline=None, derandomize=True)
@given(values=st.lists(st.floats(-4, 4, allow_nan=False, width=32), min_size=1, max_size=5),
       dtype=st.sampled_from([np.float32, np.float64]), op=st.sampled_from(sorted(RANDOM_OPS)),
       weights=st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=5, max_size=5))
def test_no_false_alarms_on_arbitrary_data(values, dtype, op, weights):
    def build(dtype):
        y = RANDOM_OPS[op](E.Variable(np.array(values, dtype=dtype)))
        w = np.resize(np.array(weights, dtype=dtype), y.shape)
        return E.sum(y * E.Variable(w))

    t = run(build, dtype=dtype)
    findings = diagnose(t)
    assert findings == (), format_report(findings, t)


def test_no_findings_on_the_fixture_engines():
    def seed(module):
        x = module.Variable(np.array(0.5))
        y = module.Square()(module.Exp()(module.Square()(x)))
        y.grad = np.array(1.0)
        y.backward()

    with tracer.trace(recursive.Function, recursive.Variable) as t:
        seed(recursive)
    assert diagnose(t) == ()
    with tracer.trace(generations.Function, generations.Variable) as t:
        _branching(generations)
    assert diagnose(t) == (), format_report(t.findings, t)
    with tracer.trace(listpop.Function, listpop.Variable) as t:  # a chain: list-pop is fine there
        x = listpop.Variable(np.array(1.5))
        listpop.square(listpop.square(x)).backward()
    assert diagnose(t) == ()
    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        x = fullcore.Variable(np.array(2.0))
        y = fullcore.add(fullcore.mul(x, x), fullcore.sin(x))
        y.backward()
    assert diagnose(t) == (), format_report(t.findings, t)
    eng = make_engine()  # the broken engines' correct configuration
    with tracer.trace(eng.Function, eng.Variable) as t:
        x = eng.Variable(np.array(2.0))
        a = eng.square(x)
        eng.add(eng.square(a), eng.exp(a)).backward()
    assert diagnose(t) == ()


def test_manual_backprop_and_higher_order_passes_are_clean():
    with tracer.trace(recursive.Function, recursive.Variable) as t:
        A, B, C = recursive.Square(), recursive.Exp(), recursive.Square()
        x = recursive.Variable(np.array(0.5))
        y = C(B(A(x)))
        y.grad = np.array(1.0)
        b_grad = C.backward(y.grad)
        a_grad = B.backward(b_grad)
        x.grad = A.backward(a_grad)
    assert t.select_pass().kind == "manual" and diagnose(t) == ()
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array(1.0))
        y = E.sin(x) * x
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
    assert len(t.passes) == 2
    assert diagnose(t) == (), format_report(t.findings, t)


def test_gradients_kept_across_passes_without_cleargrad_are_only_a_stale_gradient_warning():
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array([1.0, 2.0]))
        for _ in range(3):
            E.sum(x * x).backward()  # no cleargrad: x.grad accumulates (perhaps on purpose)
    assert x.grad.data.tolist() == [6.0, 12.0]
    findings = diagnose(t)
    assert [(f.kind, f.pass_id, f.variable, f.severity) for f in findings] == [
        ("stale-gradient", 2, 1, "warning"), ("stale-gradient", 3, 1, "warning")]
    assert findings[1].numbers == {"stale_mean": 6.0, "grad_mean": 9.0}
    assert "x.cleargrad()" in findings[0].hint and "meant to add up" in findings[0].hint


class _ForgetsSecondInput(E.Function):
    """x0 * x1 whose backward returns None for x1 (its gradient silently lost)."""

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        return gy * self.inputs[1].data, None


def test_a_backward_returning_none_for_an_input_that_matters_is_wrong_backward():
    with tracer.trace() as t:
        a, b = E.Variable(np.array(2.0), name="a"), E.Variable(np.array(3.0), name="b")
        y = _ForgetsSecondInput()(a, b)
        y.backward()
    assert b.grad is None
    wrong = [f for f in diagnose(t) if f.kind == "wrong-backward"]
    assert [(f.call, f.variable, f.numbers["input"]) for f in wrong] == [(1, 2, 1)]  # 0-based, as drawn
    assert "_ForgetsSecondInput.backward returned None (no gradient) for inputs[1], b (v2)" in wrong[0].message
    assert wrong[0].numbers["numerical"] == pytest.approx(2.0, rel=1e-6)
    assert "one gradient per input" in wrong[0].hint


def test_none_for_a_constant_input_is_not_flagged():
    with tracer.trace() as t:
        a = E.Variable(np.array(2.0), name="a")
        y = _ForgetsSecondInput()(a, np.array(3.0))  # the second input becomes a Constant
        y.backward()
    assert [f for f in diagnose(t) if f.kind == "wrong-backward"] == []


# ----- stale-gradient -------------------------------------------------------------------------

def _descend(clear: bool):
    with tracer.trace() as t:
        x = E.Variable(np.array(2.0), name="x")
        for _ in range(3):
            if clear:
                x.cleargrad()
            y = E.square(x)
            y.backward()
            x.data -= 0.1 * x.grad.data
    return t


def test_stale_gradient_names_the_variable_and_the_fix():
    (finding,) = diagnose(_descend(clear=False))
    assert finding.kind == "stale-gradient" and finding.variable == 1 and finding.pass_id == 3
    assert "x (v1) began backward pass 3 with a .grad left from an earlier backward" in finding.message
    assert finding.hint.startswith("call x.cleargrad() (or set .grad = None) before each backward")
    assert diagnose(_descend(clear=True)) == ()


def test_second_derivative_without_cleargrad_is_stale_and_with_it_is_clean():
    for clear in (False, True):
        with tracer.trace(keep="all") as t:
            x = E.Variable(np.array(2.0), name="x")
            y = x ** 4
            y.backward(create_graph=True)
            gx = x.grad
            if clear:
                x.cleargrad()
            gx.backward()
        stale = [f for f in diagnose(t) if f.kind == "stale-gradient"]
        assert [(f.pass_id, f.variable) for f in stale] == ([] if clear else [(2, 1)])
        assert x.grad.data == (48.0 if clear else 48.0 + 32.0)


def test_a_number_the_engine_wrapped_is_implicit_and_never_stale():
    # the book's step 33 on a user's engine, cleargrad() done right: 3 * x ** 2 wraps the 3
    # into a Variable inside Function.__call__, which then keeps a .grad the user cannot clear
    for clear in (True, False):
        with tracer.trace(fullcore.Function, fullcore.Variable, keep="all") as t:
            x = fullcore.Variable(np.array(2.0), name="x")
            y = 3 * (x * x)
            y.backward(create_graph=True)
            gx = x.grad
            if clear:
                x.cleargrad()
            gx.backward()
        implicit = [v for v in t.variables.values() if v.implicit]
        assert [v.value.values for v in implicit] == [(3,)] and implicit[0].creator is None
        assert not t.variables[1].implicit  # x: the user's own
        stale = [(f.kind, f.variable) for f in diagnose(t)]
        assert stale == ([] if clear else [("stale-gradient", 1)])
        again = tracer.loads(t.to_json())
        assert [v.id for v in again.variables.values() if v.implicit] == [implicit[0].id]


def test_stale_gradient_is_found_in_a_trace_read_back_from_json():
    text = _descend(clear=False).to_json()
    assert '"initial_grads": {\n    "1"' in text
    again = tracer.loads(text)
    assert again.to_json() == text
    assert [(f.kind, f.variable) for f in diagnose(again)] == [("stale-gradient", 1)]


def test_a_nan_gradient_left_from_before_is_still_stale():
    """NaN + the pass's gradient is NaN again: equal snapshots do not show that nothing was added."""
    with np.errstate(all="ignore"), tracer.trace(keep="all") as t:
        x = E.Variable(np.array(0.0), name="x")
        for _ in range(2):
            E.log(E.square(x)).backward()
    assert np.isnan(x.grad.data)
    assert [(f.pass_id, f.variable) for f in diagnose(t, checks=["stale-gradient"])] == [(2, 1)]


def test_input_data_holding_nan_kept_as_it_was_is_a_note_not_stale():
    """Data with NaN that stayed the same is unchanged (it read as changed: nan != nan)."""
    with np.errstate(all="ignore"), tracer.trace(keep="all") as t:
        x = E.Variable(np.array([np.nan, 1.0]), name="x")
        w = E.Variable(np.array([1.0, 2.0]), name="w")
        for _ in range(2):
            E.sum(E.square(x * w)).backward()
            w.data = w.data - 0.1
    notes = []
    stale = diagnose(t, checks=["stale-gradient"], notes=notes)
    assert [f.variable for f in stale] == [2]
    assert any("stale-gradient: x (v1) not counted" in note for note in notes)


def test_a_manual_pass_after_a_backward_is_not_stale():
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array([1.0, 2.0]), name="x")
        E.sum(x * x).backward()
        z = E.square(x)
        z.creator.backward(np.ones(2))  # computes gradients, stores none
    assert x.grad.data.tolist() == [2.0, 4.0]
    assert diagnose(t, checks=["stale-gradient"]) == ()


def test_repeated_higher_derivatives_flag_nothing_the_user_cannot_clear():
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array(2.0), name="x")
        y = E.sin(x)
        y.backward(create_graph=True)
        for _ in range(2):
            gx = x.grad
            x.cleargrad()
            gx.backward(create_graph=True)
    assert x.grad.data == pytest.approx(-np.cos(2.0))
    assert diagnose(t, checks=["stale-gradient"]) == ()


def test_a_seed_gradient_set_by_hand_on_the_root_is_not_stale():
    with tracer.trace() as t:
        x = E.Variable(np.array(3.0))
        y = E.square(x)
        y.grad = E.Variable(np.array(2.0))
        y.backward()
    assert diagnose(t) == ()
    assert x.grad.data == 12.0


# ----- wrong-backward -------------------------------------------------------------------------

def test_wrong_backward_names_the_function_input_and_step():
    def build(dtype):
        x = E.Variable(np.array([0.5, 1.5], dtype=dtype), name="x")
        return E.sum(E.exp(bad_ops.HalfSquare()(x)))

    for dtype in (np.float64, np.float32):
        t = run(build, dtype=dtype)
        findings = diagnose(t)
        assert kinds(findings) == ["leaf-gradient", "wrong-backward"]
        wrong = next(f for f in findings if f.kind == "wrong-backward")
        assert wrong.call == op_call(t, "HalfSquare") and wrong.variable == 1
        assert wrong.step == 3 and wrong.pass_id == 1 and wrong.severity == "error"
        assert wrong.numbers["relative_error"] == pytest.approx(0.5, rel=1e-3)
        assert wrong.numbers["input"] == 0
        assert "HalfSquare.backward gives a wrong gradient for inputs[0], x (v1)" in wrong.message
        leaf = next(f for f in findings if f.kind == "leaf-gradient")
        assert leaf.variable == 1 and "wrong-backward at HalfSquare (f1)" in leaf.hint


def test_wrong_backward_of_one_input_of_two_and_a_sign_error():
    def build(dtype):
        a = E.Variable(np.array([2.0, -1.0]), name="a")
        b = E.Variable(np.array([2.0, 3.0]), name="b")
        return E.sum(bad_ops.SwappedMul()(a, b) + bad_ops.SinWithSin()(a))

    t = run(build)
    wrong = [(t.calls[f.call].op, f.numbers["input"]) for f in diagnose(t) if f.kind == "wrong-backward"]
    assert sorted(wrong) == [("SinWithSin", 0), ("SwappedMul", 0), ("SwappedMul", 1)]


def test_constructor_state_is_replayed():
    t = run(lambda dtype: E.sum(bad_ops.ScaledSquare(3.0)(E.Variable(np.array([1.0, -2.0])))))
    notes = []
    assert diagnose(t, notes=notes) == () and notes == []
    assert t.function_states[1] == {"c": 3.0}


def test_wrong_backward_on_a_user_engine_with_variable_gradients():
    class BadCos(fullcore.Function):
        def forward(self, x):
            return np.cos(x)

        def backward(self, gy):
            return gy * fullcore.sin(self.inputs[0])  # the sign is missing

    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        x = fullcore.Variable(np.array(0.7))
        fullcore.mul(BadCos()(x), x).backward()
    findings = diagnose(t)
    assert [f.kind for f in findings] == ["wrong-backward", "leaf-gradient"]
    assert t.calls[findings[0].call].op == "BadCos"
    assert findings[0].numbers["relative_error"] == pytest.approx(2.0, rel=1e-3)


def test_calls_that_cannot_be_replayed_are_skipped_with_a_note():
    def build(dtype):
        return E.sum(E.dropout(E.Variable(np.arange(6.0)), 0.5) * 2.0)

    np.random.seed(0)
    t = run(build)
    notes = []
    assert diagnose(t, notes=notes) == ()
    assert any("Dropout" in n and "random" in n for n in notes)
    assert any(n.startswith("leaf-gradient: pass 1 not checked") for n in notes)
    state = np.random.get_state()
    diagnose(t)
    assert np.array_equal(np.random.get_state()[1], state[1])  # the user's random state is untouched


def test_arrays_too_large_to_record_are_skipped_with_a_note():
    t = run(lambda dtype: E.sum(bad_ops.HalfSquare()(E.Variable(np.ones(50)))), max_elements=10)
    notes = []
    assert diagnose(t, notes=notes) == ()
    assert any("too large" in n for n in notes)


def test_budget_limits_the_work():
    t = run(lambda dtype: E.sum(bad_ops.HalfSquare()(E.Variable(np.ones(20)))))
    notes = []
    assert diagnose(t, budget=10, notes=notes) == ()
    assert any("budget" in n for n in notes)
    assert kinds(diagnose(t)) == ["leaf-gradient", "wrong-backward"]


# ----- premature, repeated, missing steps -----------------------------------------------------

def _branching(module, **backward_options):
    x = module.Variable(np.array(2.0))
    a = module.square(x)
    y = module.add(module.square(a), module.square(a))
    y.backward(**backward_options)
    return x


def test_list_pop_engine_premature_and_repeated_steps():
    with tracer.trace(listpop.Function, listpop.Variable) as t:
        _branching(listpop)
    findings = diagnose(t)
    assert [f.kind for f in findings] == ["premature-backward", "repeated-step", "leaf-gradient"]
    premature, repeated, leaf = findings
    assert (premature.call, premature.variable, premature.step) == (1, 2, 3)
    assert premature.numbers == {"late_steps": [4]}
    assert (repeated.call, repeated.step, repeated.numbers) == (1, 5, {"steps": [3, 5]})
    assert leaf.variable == 1 and leaf.numbers["numerical"] == pytest.approx(64.0)
    assert leaf.numbers["analytic"] == pytest.approx(96.0)


def test_premature_steps_from_wrong_generations_say_the_generations_are_wrong():
    eng = make_engine(min_generation=True)
    with tracer.trace(eng.Function, eng.Variable) as t:
        x, w = eng.Variable(np.array(0.5), name="x"), eng.Variable(np.array(1.0), name="w")
        a = eng.square(x)
        eng.add(eng.add(eng.exp(a), w), a).backward()  # the inner Add gets generation min(2, 0)
    (premature,) = [f for f in diagnose(t) if f.kind == "premature-backward"]
    assert premature.hint.startswith("the generations are wrong: Add (f3) (generation 0) uses the output "
                                     "of Exp (f2) (generation 1)")  # it said: order by generation
    with tracer.trace(listpop.Function, listpop.Variable) as t:
        _branching(listpop)
    assert all(f.hint.startswith("the backward loop visited") for f in diagnose(t)
               if f.kind == "premature-backward")
    eng = make_engine(pop_first=True)  # right generations, the smallest taken first
    with tracer.trace(eng.Function, eng.Variable) as t:
        _branching(eng)
    (premature,) = [f for f in diagnose(t) if f.kind == "premature-backward"]
    assert premature.hint.startswith("Square (f3) (generation 1) ran after it (step 4), though Square (f1) "
                                     "has generation 0 and the larger generation must run first")
    assert "pop() its last item: pop(0) takes the smallest" in premature.hint


def test_one_function_object_called_twice_is_named_as_the_cause_of_the_missing_step():
    eng = make_engine()
    with tracer.trace(eng.Function, eng.Variable) as t:
        x = eng.Variable(np.array(1.5), name="x")
        sq = eng.Square()
        sq(sq(x)).backward()  # the book: a Function object is used once
    (missing,) = [f for f in diagnose(t) if f.kind == "missing-step"]
    assert missing.call == 1 and missing.hint.startswith(
        "one Square object was called twice (Square (f2) is the same object, called on this call's output")
    assert [f.hint for f in diagnose(jsonio.loads(jsonio.dumps(t))) if f.kind == "missing-step"] == \
        [missing.hint]  # a saved trace keeps it
    with tracer.trace(eng.Function, eng.Variable) as t:  # two objects: no such hint anywhere
        eng.square(eng.square(eng.Variable(np.array(1.5), name="x"))).backward()
    assert t.reused_calls == frozenset() and t.called_again == {} and diagnose(t) == ()
    with tracer.trace(eng.Function, eng.Variable) as t:  # one object for two calls side by side
        x = eng.Variable(np.array(1.5), name="x")
        sq = eng.Square()
        eng.Add()(sq(x), sq(x)).backward()
    (missing,) = [f for f in diagnose(t) if f.kind == "missing-step"]
    assert t.called_again == {1: 2} and missing.call == 1 and missing.hint.startswith(
        "one Square object was called twice (Square (f2) is the same object, as in add(sq(x), sq(x)) "
        "with one sq)")


def test_a_backward_returning_fewer_gradients_than_inputs_is_wrong_backward():
    eng = make_engine()
    eng.Add.backward = lambda self, gy: gy  # one gradient for two inputs: the zip drops the second
    with tracer.trace(eng.Function, eng.Variable) as t:
        x, w = eng.Variable(np.array(0.5), name="x"), eng.Variable(np.array(2.0), name="w")
        eng.add(eng.square(x), w).backward()
    (wrong,) = [f for f in diagnose(t) if f.kind == "wrong-backward"]
    assert wrong.message == "Add.backward returned 1 gradient for its 2 inputs at step 1: w (v3) got none"
    assert wrong.hint.endswith("`return gy, gy` for Add")
    with tracer.trace(eng.Function, eng.Variable) as t:  # two elements: the gradient's first axis is 2
        eng.add(eng.square(eng.Variable(np.array([0.5, 1.0]), name="x")),
                eng.Variable(np.array([2.0, 3.0]), name="w")).backward()
    assert [f.kind for f in diagnose(t)].count("wrong-backward") == 1  # was taken for a list of both
    with tracer.trace(eng.Function, eng.Variable) as t:  # integer labels need no gradient (DeZero's
        eng.add(eng.square(eng.Variable(np.array([0.5, 1.0]), name="x")),  # softmax_cross_entropy)
                eng.Variable(np.array([2, 3]), name="labels")).backward()
    assert not [f for f in diagnose(t) if f.kind == "wrong-backward" and "got none" in f.message]
    # in an engine that queues only the inputs that got a gradient, the function behind is never
    # reached: its missing step names the short return instead of blaming the queue
    Variable, Function, Square, Add = _own_names_engine(False)
    Add.backward = lambda self, gy: (gy,)
    with tracer.trace(Function, Variable) as t:
        x = Variable(np.array(1.5), name="x")
        Add()(x, Square()(x)).backward()
    (missing,) = [f for f in diagnose(t) if f.kind == "missing-step"]
    assert missing.hint.startswith("its output got no gradient: Add.backward at step 1 returned none for it")


def test_engine_without_seen_set_repeats_a_step():
    eng = make_engine(no_seen=True)
    with tracer.trace(eng.Function, eng.Variable) as t:
        _branching(eng, retain_grad=True)
    findings = diagnose(t)
    assert [f.kind for f in findings] == ["repeated-step", "leaf-gradient"]
    assert findings[0].call == 1 and findings[0].numbers["steps"] == [4, 5]


def test_engine_queueing_only_the_first_input_misses_a_step():
    eng = make_engine(first_input_only=True)
    with tracer.trace(eng.Function, eng.Variable) as t:
        x = eng.Variable(np.array(0.5))
        eng.add(eng.square(x), eng.exp(x)).backward()
    findings = diagnose(t)
    assert [f.kind for f in findings] == ["missing-step", "leaf-gradient"]
    assert t.calls[findings[0].call].op == "Exp" and findings[0].step is None


def test_manual_pass_that_stops_early_is_a_warning():
    with tracer.trace(recursive.Function, recursive.Variable) as t:
        A, B = recursive.Square(), recursive.Exp()
        y = B(A(recursive.Variable(np.array(0.5))))
        y.grad = np.array(1.0)
        B.backward(y.grad)
    missing = [f for f in diagnose(t, checks=["missing-step"])]
    assert [(f.call, f.severity) for f in missing] == [(1, "warning")]


# ----- overwritten gradient and shape mismatch ------------------------------------------------

def test_overwriting_engine_x_plus_x_gives_one():
    eng = make_engine(overwrite=True)
    with tracer.trace(eng.Function, eng.Variable) as t:
        x = eng.Variable(np.array(3.0), name="x")
        eng.add(x, x).backward()
    assert x.grad == 1.0
    findings = diagnose(t)
    assert [f.kind for f in findings] == ["overwritten-gradient", "leaf-gradient"]
    over = findings[0]
    assert (over.variable, over.step, over.call) == (1, 1, 1)
    assert over.numbers == {"grad": 1.0, "expected": 2.0}
    assert over.message == ("the .grad of x (v1) after step 1 is 1, not the sum of the gradients it "
                            "received (2), set by Add (f1)")  # the numbers were in the JSON only


def test_overwriting_engine_on_a_branching_graph_names_the_overwriting_step():
    eng = make_engine(overwrite=True)
    with tracer.trace(eng.Function, eng.Variable) as t:
        _branching(eng)
    over = [f for f in diagnose(t) if f.kind == "overwritten-gradient"]
    assert [(f.variable, f.step) for f in over] == [(2, 3)]
    assert t.calls[over[0].call].op == "Square"


def _in_place(build):
    """``build(engine, x)`` traced on an engine that accumulates with ``x.grad += gx`` (step 14)."""
    eng = make_engine(in_place=True)
    with tracer.trace(eng.Function, eng.Variable) as t:
        x = eng.Variable(np.array(3.0), name="x")
        build(eng, x)
    return t, x, [f for f in diagnose(t) if f.kind == "overwritten-gradient"]


def test_in_place_accumulation_through_a_shared_array_is_told_apart_from_overwriting():
    t, x, over = _in_place(lambda eng, x: eng.add(eng.add(x, x), x).backward())  # x.grad is the seed
    assert x.grad == 4.0  # += doubled the seed array: 4, not 3
    assert [(f.variable, f.step) for f in over] == [(1, 2)]
    assert over[0].message == ("the .grad of x (v1) after step 2 is 4, not 3: it changed by more than "
                               "the gradients it received")
    assert "x.grad += gx" in over[0].hint and "x.grad = x.grad + gx" in over[0].hint


def test_a_root_whose_kept_seed_is_changed_in_place_is_found():
    kept = []

    def build(eng, x):
        y = eng.add(x, x)
        y.name = "y"
        y.backward(retain_grad=True)  # x.grad = the seed; x.grad += seed: y.grad becomes 2 as well
        kept.append(y)
    t, _, over = _in_place(build)
    assert kept[0].grad == 2.0
    assert [(f.variable, f.step) for f in over] == [(2, None)]
    assert "the .grad of y (v2) changed to 2 after its last gradient arrived (1)" in over[0].message
    assert "x.grad += gx" in over[0].hint


def test_broadcast_not_summed_back_on_an_engine_without_shape_checks():
    eng = make_engine()
    with tracer.trace(eng.Function, eng.Variable) as t:
        b = eng.Variable(np.array(2.0), name="b")
        eng.add(eng.Variable(np.ones(3)), b).backward(retain_grad=True)
    shape = [f for f in diagnose(t) if f.kind == "shape-mismatch"]
    assert [(f.variable, f.step, f.severity) for f in shape] == [(2, 1, "error")]
    assert shape[0].numbers == {"grad_shape": [3], "shape": []}


def test_broadcast_not_summed_back_on_our_engine_which_raises():
    with pytest.raises(E.BackwardError):
        with tracer.trace() as t:
            y = bad_ops.UnsummedAdd()(E.Variable(np.ones((2, 3))), E.Variable(np.ones(3)))
            E.sum(y).backward()
    findings = diagnose(t)
    assert [f.kind for f in findings] == ["shape-mismatch"]
    assert findings[0].call == op_call(t, "UnsummedAdd") and findings[0].variable == 2


def test_a_transposed_gradient_is_an_error_that_says_transpose():
    with pytest.raises(E.BackwardError):
        with tracer.trace() as t:
            x, w = E.Variable(np.ones((2, 3)), name="x"), E.Variable(np.ones((3, 2)), name="W")
            E.sum(bad_ops.TransposedMatMul()(x, w)).backward()
    (finding,) = diagnose(t)
    assert (finding.kind, finding.severity, finding.variable) == ("shape-mismatch", "error", 2)
    assert finding.message.endswith("of shape (3, 2): the transpose of its shape")
    assert "gW = x.T @ gy" in finding.hint and "reshape" not in finding.hint  # reshaping gave wrong values


def test_a_same_size_gradient_is_a_warning_only_when_it_broadcasts_to_the_data():
    from tests.tracer.builders import seed_trace
    from tracer.diagnose_shapes import _shape_finding
    t = seed_trace()
    cases = [((), (1,)), ((6,), (2, 3)), ((1, 3), (3,))]  # x.data -= lr * grad keeps (1,) only
    found = [_shape_finding(t, t.passes[-1], 1, grad, shape, "m", None, None) for grad, shape in cases]
    assert [f.severity for f in found] == ["warning", "error", "error"]
    assert "another layout" in found[1].hint


def test_a_root_left_unlinked_by_backprop_left_off_is_a_missing_step_though_the_engine_raised():
    class Config:
        enable_backprop = True

    class Variable:
        def __init__(self, data):
            self.data, self.grad, self.creator, self.generation = data, None, None, 0

        def backward(self):
            self.grad = np.ones_like(self.data)
            funcs = [self.creator]
            funcs.sort(key=lambda f: f.generation)  # the book's loop: creator None raises here
            while funcs:
                f = funcs.pop()
                f.inputs[0].grad = f.backward(self.grad)

    class Function:
        def __call__(self, x):
            output = Variable(self.forward(x.data))
            if Config.enable_backprop:
                output.creator, self.inputs, self.generation = self, [x], x.generation
            return output

    class Exp(Function):
        def forward(self, x):
            return np.exp(x)

        def backward(self, gy):
            return np.exp(self.inputs[0].data) * gy

    Config.enable_backprop = False  # as a no_grad() without try/finally leaves it when its block raised
    with pytest.raises(AttributeError), tracer.trace(Function, Variable) as t:
        y = Exp()(Variable(np.array(1.0)))
        y.backward()
    (finding,) = diagnose(t)
    assert (finding.kind, finding.call) == ("missing-step", 1)
    assert finding.message.endswith("came from Exp (f1): that call kept no link to it, so no gradient "
                                    "reaches its inputs")
    assert "Config.enable_backprop was left False" in finding.hint


def test_a_gradient_cleared_before_its_creator_used_it_is_found():
    eng = make_engine(clear_inputs=True)  # clears the inputs' gradients, not the outputs'
    with pytest.raises(TypeError):
        with tracer.trace(eng.Function, eng.Variable) as t:
            x = eng.Variable(np.array(2.0), name="x")
            a = eng.square(x)
            a.name = "a"
            eng.exp(a).backward()
    (finding,) = diagnose(t)
    assert (finding.kind, finding.variable, finding.step) == ("overwritten-gradient", 2, 2)
    assert finding.message == ("Square (f1) received None for a (v2) at step 2, though step 1 sent "
                               "it 54.5982: its .grad was already None after step 1")
    assert "not its inputs'" in finding.hint


def test_gradients_cleared_though_backward_was_called_with_retain_grad_are_a_warning():
    from tracer.steps_table import format_steps
    eng = make_engine(retain_inverted=True)  # `if retain_grad:` clears what it should keep
    with tracer.trace(eng.Function, eng.Variable, keep="all") as t:
        x = eng.Variable(np.array(2.0), name="x")
        a = eng.square(x)
        a.name = "a"
        eng.exp(a).backward(retain_grad=True)
        x.cleargrad()
        eng.exp(eng.square(x)).backward()  # the default keeps them here: nothing to say
    (finding,) = diagnose(t)
    assert (finding.kind, finding.severity, finding.pass_id, finding.variable) == (
        "overwritten-gradient", "warning", 1, 2)
    assert finding.message == ("backward was called with retain_grad=True, but the engine cleared the "
                               ".grad of a (v2) and the output of Exp (v3) after use (None at the end of "
                               "the pass)")
    assert "(`if not retain_grad:`)" in finding.hint
    assert "(.grad is None at the end; although backward was called with retain_grad=True): a, root of pass 1" in \
        format_steps(t, 1)
    assert "retain_grad=True keeps them" not in format_steps(t, 1)


def test_a_constant_is_named_by_its_value_and_its_unsummed_gradient_is_a_warning():
    with pytest.raises(E.BackwardError):
        with tracer.trace() as t:
            E.sum(bad_ops.UnsummedAdd()(E.Variable(np.ones((2, 3)), name="x"), 1.0)).backward()
    (finding,) = diagnose(t)
    assert (finding.kind, finding.severity) == ("shape-mismatch", "warning")
    assert "for inputs[1], the constant 1 (v2), of shape ()" in finding.message  # it said "v2"
    assert finding.hint.startswith("a constant's gradient is not used, but a broadcast")


def test_an_unnamed_result_is_named_by_what_made_it_as_in_the_player():
    from tracer.diagnose_common import var_label
    with tracer.trace() as t:
        x = E.Variable(np.array(2.0), name="x")
        E.exp(E.square(x) * 3.0).backward()
    labels = {t.calls[c].op: var_label(t, t.calls[c].outputs[0]) for c in t.calls}
    assert labels["Square"] == "the output of Square (v2)" and labels["Mul"].startswith("the output of Mul (v")


def test_a_leaf_gradient_finding_names_the_stale_gradients_that_caused_it():
    eng = make_engine()
    with tracer.trace(eng.Function, eng.Variable, keep="all") as t:
        x = eng.Variable(np.array(2.0), name="x")
        a = eng.square(x)
        a.name = "a"
        y = eng.exp(a)
        y.backward(retain_grad=True)
        x.cleargrad()  # but not a's: the second pass adds to it
        y.backward(retain_grad=True)
    leaf = [f for f in diagnose(t) if f.kind == "leaf-gradient"]
    assert [(f.pass_id, f.variable) for f in leaf] == [(2, 1)]
    assert leaf[0].hint == "probably caused by: stale-gradient at a (v2)"  # stale findings have no call


def test_a_constants_gradient_is_not_checked_as_a_leaf():
    with tracer.trace(fullcore.Function, fullcore.Variable, keep="all") as t:
        x = fullcore.Variable(np.array(2.0), name="x")
        y = (x * 0.1) * x  # the engine wraps 0.1 in a Variable of its own
        y.backward(retain_grad=True)
        x.cleargrad()
        y.backward(retain_grad=True)  # the stale x * 0.1 makes the constant's gradient wrong too
    constant = next(v for v in t.variables if t.is_constant(v))
    found = [f.variable for f in diagnose(t, checks=["leaf-gradient"])]
    assert found == [1] and constant not in found  # x's is wrong as well: found


def test_a_stale_gradient_on_input_data_in_a_training_loop_is_a_note_not_a_finding():
    """The book's step 42 wraps its data in Variables once and clears only the parameters:
    a correct program, whose data's .grad adds up unread."""
    with tracer.trace() as t:
        data = E.Variable(np.array([1.0, 2.0]), name="X")
        w = E.Parameter(np.array([0.5, 0.5]), name="W")
        for _ in range(3):
            w.cleargrad()  # but never X's
            loss = E.sum(data * w)
            loss.backward()
            w.data -= 0.1 * w.grad.data
    notes = []
    assert diagnose(t, checks=["stale-gradient"], notes=notes) == ()
    (note,) = notes
    assert note.startswith("stale-gradient: X (v1) not counted: it kept its data while other leaves")
    assert "pass the data as a plain array" in note and "X.cleargrad()" in note


def _manual_pass(grad_for_a: str):
    """The book's step 6 by hand on the step-7 engine; A.backward gets ``grad_for_a``'s .grad."""
    eng = recursive
    with tracer.trace(eng.Function, eng.Variable) as t:
        A, B, C = eng.Square(), eng.Exp(), eng.Square()
        x = eng.Variable(np.array(0.5))
        a = A(x)
        b = B(a)
        y = C(b)
        y.grad = np.array(1.0)
        b.grad = C.backward(y.grad)
        a.grad = B.backward(b.grad)
        x.grad = A.backward({"a": a, "b": b}[grad_for_a].grad)
    return t


def test_an_engine_that_frees_output_gradients_before_backward_passes_no_wrong_gradient():
    eng = make_engine(clear_early=True)
    with tracer.trace(eng.Function, eng.Variable) as t:
        x = eng.Variable(np.array(0.5), name="x")
        a = eng.square(x)
        eng.add(eng.exp(a), eng.square(a)).backward()  # a gets two gradients, read only once
    assert [f.kind for f in diagnose(t)] == []  # it said: wrong-gradient-passed at Square


def test_a_manual_backward_given_another_variables_gradient_is_found():
    found = [f for f in diagnose(_manual_pass("b")) if f.kind == "wrong-gradient-passed"]  # b.grad for a.grad
    assert [(f.call, f.variable, f.step) for f in found] == [(1, 2, 3)]
    assert found[0].message == ("Square (f1)'s backward received 2.56805 for its output a (v2) at step 3, "
                                "but a.grad was 3.29744 (left by step 2)")
    assert found[0].hint.startswith("pass the output's own gradient: Square.backward(a.grad)")
    assert diagnose(_manual_pass("a")) == ()  # the right manual pass: nothing


def _dict_engine_passes(*, as_method: bool, keep_one=False, clear=True):
    """Two passes through a shared ``a = x²`` on an engine that hands gradients on in a dict and
    writes ``.grad`` after its steps: from a module-level function (a manual pass to the tracer) or
    from ``Variable.backward``. Pass 2 begins with pass 1's ``a.grad`` still there."""
    eng = make_engine()
    if as_method:
        eng.Variable.backward = lambda self: eng.backprop(self, keep_one)
    with tracer.trace(eng.Function, eng.Variable, keep="all") as t:
        x = eng.Variable(np.array(3.0), name="x")
        a = eng.square(x)
        y1 = eng.add(eng.add(a, a), a)  # a gets three gradients
        y1.backward() if as_method else eng.backprop(y1, keep_one)
        if clear:
            x.cleargrad()
        y2 = eng.add(eng.square(a), a)
        y2.backward() if as_method else eng.backprop(y2, keep_one)
    return t, x


@pytest.mark.parametrize("as_method", [False, True])
def test_an_engine_that_writes_grad_after_its_steps_gets_no_false_findings(as_method):
    t, x = _dict_engine_passes(as_method=as_method)
    assert [p.kind for p in t.passes] == ["backward" if as_method else "manual"] * 2
    assert x.grad == (2 * 9 + 1) * 6
    # it said: wrong-gradient-passed (manual), overwritten-gradient at every step, stale a.grad,
    # and a leaf-gradient error from the stale x.grad taken as added to
    assert diagnose(t) == ()
    t, x = _dict_engine_passes(as_method=as_method, clear=False)  # x.grad replaced: right too
    assert diagnose(t) == ()


def test_a_seed_given_to_backward_is_the_seed_of_its_pass_not_the_roots_old_grad():
    eng = make_engine()
    plain = eng.Variable.backward

    def backward(self, grad=None):  # PyTorch-like: backward(grad) sets the seed itself
        self.grad = grad
        plain(self, retain_grad=True)

    eng.Variable.backward = backward
    with tracer.trace(eng.Function, eng.Variable, keep="all") as t:
        x = eng.Variable(np.array([1.0, 2.0]), name="x")
        y = eng.square(x)
        for seed in ([1.0, 0.0], [0.0, 1.0]):  # Jacobian rows; y.grad still holds the first seed
            x.cleargrad()
            y.backward(np.array(seed))
    assert [p.root_grad.values for p in t.passes] == [(1.0, 0.0), (0.0, 1.0)]
    assert diagnose(t) == ()  # it said: y's .grad overwritten, and x's gradient wrong


def _own_names_engine(overwrite: bool):
    """An engine whose functions keep their inputs and outputs as ``xs`` / ``ys``."""
    class Variable:
        def __init__(self, data, name=None):
            self.data, self.name, self.grad, self.parent = data, name, None, None

        def backward(self):
            self.grad, todo, seen = np.ones_like(self.data), [self.parent], set()
            while todo:
                f = todo.pop()
                for x, gx in zip(f.xs, f.backward(*[y.grad for y in f.ys])):
                    x.grad = gx if overwrite or x.grad is None else x.grad + gx
                    if x.parent is not None and x.parent not in seen:
                        seen.add(x.parent)
                        todo.insert(0, x.parent)

    class Function:
        def __call__(self, *xs):
            y = Variable(self.forward(*[x.data for x in xs]))
            y.parent, self.xs, self.ys = self, xs, [y]
            return y

    class Square(Function):
        def forward(self, x):
            return x ** 2

        def backward(self, gy):
            return (2 * self.xs[0].data * gy,)

    class Add(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, gy):
            return gy, gy

    return Variable, Function, Square, Add


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_engine_with_its_own_attribute_names_gets_the_grad_checks(overwrite):
    Variable, Function, Square, Add = _own_names_engine(overwrite)
    with tracer.trace(Function, Variable) as t:
        x = Variable(np.array(1.5), name="x")
        a = Square()(x)
        Add()(Square()(a), a).backward()
    (record,) = t.passes
    assert all(len(step.accumulated) == len(t.calls[step.call].inputs) for step in record.steps)  # were empty
    over = [f for f in diagnose(t) if f.kind == "overwritten-gradient"]
    assert [(t.calls[f.call].op, f.variable) for f in over] == ([("Square", 2)] if overwrite else [])


def test_steps_says_when_an_engine_writes_grad_after_its_steps():
    from tracer.steps_table import format_steps
    note = "no .grad changed between the steps: the engine hands gradients on another way"
    t, _ = _dict_engine_passes(as_method=True)
    assert all(note in format_steps(t, which) for which in (1, 2))
    assert note not in format_steps(run(lambda dtype: E.square(E.exp(E.Variable(np.array(0.5))))))


@pytest.mark.parametrize("as_method", [False, True])
def test_an_engine_that_keeps_one_of_the_gradients_in_its_dict_is_found(as_method):
    t, _ = _dict_engine_passes(as_method=as_method, keep_one=True)
    over = [f for f in diagnose(t) if f.kind == "overwritten-gradient"]
    assert [(f.pass_id, f.variable) for f in over] == [(1, 2), (2, 2)]
    assert over[0].message == ("the .grad of a (v2) after the pass is 1, not the sum "
                               "of the 3 gradients it received (3): it holds one of them")
    assert over[0].hint.startswith("the engine kept only one of the gradients")
    leaf = [f for f in diagnose(t) if f.kind == "leaf-gradient"]
    # a manual pass ends at the next call, after x.cleargrad(): its x.grad is then unknown
    assert [(f.pass_id, f.variable) for f in leaf] == [(1, 1), (2, 1)][not as_method:]
    assert "overwritten-gradient at a (v2)" in leaf[-1].hint


def test_a_backward_on_numpy_data_under_create_graph_is_found_to_lose_higher_derivatives():
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array(0.5), name="x")
        y = bad_ops.DataSin()(x)
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()  # no graph from gx back to x: x.grad stays None
    assert x.grad is None
    (finding,) = [f for f in diagnose(t) if f.kind == "wrong-backward"]
    assert (finding.pass_id, finding.call, finding.variable, finding.step) == (1, 1, 1, 1)
    assert finding.message.startswith("DataSin.backward ran under create_graph=True without Function calls")
    assert "not with numpy on x.data" in finding.hint
    assert "(for Sin it would be cos(x) * gy)" in finding.hint  # an op of its own: an example
    with tracer.trace(keep="all") as t:  # the engine's own sin keeps the graph: nothing found
        x = E.Variable(np.array(0.5), name="x")
        E.sin(x).backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
    assert [f for f in diagnose(t) if f.kind == "wrong-backward"] == []


def test_the_create_graph_hint_gives_the_ops_own_formula_on_variables():
    """It gave Sin's formula for every op (Pow: 'for sin: cos(x) * gy')."""
    from tracer.diagnose_grad import _on_variables
    assert _on_variables("Pow") == "for Pow: c * x ** (c - 1) * gy"
    assert _on_variables("Exp") == "for Exp: gy * y"


def test_an_engine_of_plain_python_floats_gets_the_step_checks_too():
    class Variable:
        def __init__(self, data):
            self.data, self.grad, self.creator = data, None, None

        def backward(self):
            self.grad = 1.0 if self.grad is None else self.grad
            f = self.creator
            if f is not None:
                for x, gx in zip(f.inputs, f.backward(self.grad)):
                    x.grad = gx  # overwritten, not added: x * x loses half
                    x.backward()

    class Function:
        def __call__(self, *inputs):
            out = Variable(self.forward(*[i.data for i in inputs]))
            out.creator, self.inputs = self, inputs
            return out

    class Mul(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy):
            return gy * self.inputs[1].data, gy * self.inputs[0].data

    with tracer.trace(Function, Variable) as t:
        x = Variable(0.5)
        Mul()(x, x).backward()
    assert (t.variables[1].shape, t.variables[1].dtype) == ((), "float64")
    assert [(f.kind, f.variable) for f in diagnose(t) if f.severity == "error"][0] == \
        ("overwritten-gradient", 1)  # it said only "no single step explains it"


# ----- NaN / Inf ------------------------------------------------------------------------------

def test_nan_inf_from_the_forward_names_the_op_and_where_it_flowed():
    def build(dtype):
        x = E.Variable(np.array([1.0, 0.0], dtype=dtype), name="x")
        return E.sum(E.log(x) * 2.0)

    t = run(build)
    findings = diagnose(t)
    assert [f.kind for f in findings] == ["nan-inf"]  # Log.backward's Inf at 0 is the same cause
    (nan,) = findings
    assert nan.call == op_call(t, "Log") and nan.pass_id is None and nan.step is None
    assert nan.numbers["inf"] == 1 and nan.numbers["index"] == [1]
    root = t.select_pass().root
    assert nan.numbers["flowed_into"] == [root]
    assert "Log (f1) turned finite inputs into 1 Inf" in nan.message


def test_nan_inf_first_appearing_in_a_gradient():
    t = run(lambda dtype: E.sum(E.pow(E.Variable(np.array([0.0, 4.0]), name="x"), 0.5)))
    (nan,) = diagnose(t)
    assert nan.kind == "nan-inf" and nan.step == 2 and nan.pass_id == 1
    assert nan.call == op_call(t, "Pow") and nan.numbers["flowed_into"] == [1]


def test_nan_in_the_input_data():
    t = run(lambda dtype: E.sum(E.square(E.Variable(np.array([np.nan, 1.0]), name="data"))))
    (nan,) = diagnose(t)
    assert nan.kind == "nan-inf" and nan.variable == 1 and nan.call is None
    assert nan.numbers["nan"] == 1 and nan.numbers["index"] == [0]
    assert nan.hint.startswith("the input data already held NaN/Inf")


def test_a_leaf_an_update_made_not_finite_names_the_last_pass_it_was_finite_in():
    with np.errstate(all="ignore"), tracer.trace(keep="all") as t:
        x = E.Variable(np.array(1.0), name="x")
        for _ in range(3):
            x.cleargrad()
            E.square(x).backward()
            x.data -= 1e308 * x.grad.data  # overflows to -inf after pass 1
    (nan,) = [f for f in diagnose(t) if f.kind == "nan-inf" and f.call is None]
    assert nan.variable == 1 and nan.message.startswith("x (v1) already holds 1 Inf when Square (f2) uses it")
    assert nan.hint.startswith("x (v1) was finite in pass 1 and changed in place after it (an update such "
                               "as x.data -= lr * x.grad): an update brought the NaN/Inf; look at the "
                               "gradients of pass 1")



def test_a_leaf_that_held_nan_before_a_pass_saw_it_finite_is_not_blamed_on_an_update_after_that_pass():
    # a call made before pass 1 (no graph: no_grad) read x as NaN; x was fixed, then pass 1 saw it
    # finite: the hint said "finite in pass 1 and changed in place after it", the wrong way round
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array(np.nan), name="x")
        with E.no_grad():
            E.square(x)
        x.data[...] = 1.0
        E.square(x).backward()
    (nan,) = [f for f in diagnose(t) if f.kind == "nan-inf"]
    assert nan.message.startswith("x (v1) already holds 1 NaN when Square (f1) uses it")
    assert nan.hint.startswith("the input data already held NaN/Inf")

# ----- API, report, JSON ----------------------------------------------------------------------

def _listpop_trace():
    with tracer.trace(listpop.Function, listpop.Variable) as t:
        _branching(listpop)
    return t


def test_api_checks_passes_attach_and_errors():
    t = _listpop_trace()
    assert kinds(diagnose(t, checks=["repeated-step"])) == ["repeated-step"]
    assert kinds(diagnose(t, checks="premature-backward", attach=False)) == ["premature-backward"]
    assert kinds(t.findings) == ["repeated-step"]
    attach(t, ())
    assert t.findings == ()
    assert diagnose(t, passes=[1]) == diagnose(t)
    with pytest.raises(tracer.PassSelectionError):
        diagnose(t, passes=[7])
    with pytest.raises(ValueError, match="unknown check 'typo'"):
        diagnose(t, checks=["typo"])
    with pytest.raises(ValueError, match="tolerance"):
        diagnose(t, tolerance=0)
    with pytest.raises(DiagnoseError, match="not finished"):
        with tracer.trace() as unfinished:
            diagnose(unfinished)
    assert set(CHECKS) == {"wrong-backward", "leaf-gradient", "premature-backward",
                           "overwritten-gradient", "stale-gradient", "shape-mismatch", "missing-step",
                           "repeated-step", "nan-inf", "wrong-gradient-passed", "changed-input"}


def test_findings_are_deterministic_and_round_trip_through_json():
    first, second = diagnose(_listpop_trace()), diagnose(_listpop_trace())
    assert first == second
    data = findings_to_json(first)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert findings_from_json(data) == first
    inf = findings_to_json(diagnose(run(lambda d: E.sum(E.log(E.Variable(np.array([0.0])))))))
    assert findings_from_json(inf)[0].numbers["inf"] == 1


def test_trace_json_round_trip_keeps_findings_and_order_checks_still_work():
    t = _listpop_trace()
    findings = diagnose(t)
    loaded = jsonio.loads(jsonio.dumps(t))
    assert loaded.findings == findings
    notes = []
    again = diagnose(loaded, notes=notes)
    assert kinds(again) == ["premature-backward", "repeated-step"]  # no replay from JSON
    assert any("not recorded" in n for n in notes)


def test_format_report():
    t = _listpop_trace()
    text = format_report(diagnose(t), t)
    assert text.startswith("gradtrace check: 3 problems (3 errors) in 4 calls and 1 backward pass.")
    assert "1. [error] premature-backward at Square (f1), pass 1, step 3" in text
    assert "hint: " in text and text.endswith("\n")
    assert max(len(line) for line in text.splitlines()) <= 100
    clean = run(OP_CASES["square"])
    assert format_report(diagnose(clean), clean).startswith("gradtrace check: no problems found")
    noted = format_report((), None, ["wrong-backward: Dropout not checked: random"])
    assert "Not checked:\n  - wrong-backward: Dropout" in noted


def test_recorder_keeps_replay_state_without_graph_links():
    t = run(OP_CASES["sum-axis-keepdims"])
    sums = [c for c in t.calls.values() if c.op == "Sum" and t.function_states[c.id].get("axis") is not None]
    assert {t.function_states[c.id]["axis"] for c in sums} == {0, 1, (0, 2)}
    for state in t.function_states.values():
        assert not {"inputs", "outputs"} & set(state)
    assert all(t.function_types[c].__name__ == t.calls[c].op for c in t.calls)


def test_complex_data_is_not_checked_and_says_so():
    import numpy as np
    import engine as E
    import tracer
    from tracer import diagnose as dg
    with tracer.trace() as t:
        x = E.Variable(np.array([1 + 2j, 3j]))
        E.sum(E.square(x)).backward()
    notes = []
    assert dg.diagnose(t, notes=notes) == ()
    assert any("complex128" in n for n in notes)
    assert dg.format_report((), t, notes).startswith("gradtrace check: nothing could be checked (see below) "
                                                     "in 2 calls")  # not "no problems found"


def test_complex_data_in_one_pass_leaves_the_other_passes_checked():
    eng = make_engine(overwrite=True)
    with tracer.trace(eng.Function, eng.Variable, keep="all") as t:
        z = eng.Variable(np.array([1 + 2j, 3j]), name="z")
        eng.square(z).backward()
        x = eng.Variable(np.array(3.0), name="x")
        eng.add(x, x).backward()  # x + x gives 1
    notes = []
    found = diagnose(t, notes=notes)
    assert {(f.kind, f.pass_id) for f in found} >= {("overwritten-gradient", 2)}  # it checked nothing
    assert notes == ["pass 1: it holds complex128 data; the checks cover real-valued (int, float, bool) "
                     "arrays only"]


def test_complex_data_leaves_the_forward_checks_on_the_other_calls():
    with np.errstate(all="ignore"), tracer.trace() as t:
        z = E.square(E.Variable(np.array([1 + 2j])))
        bad = E.log(E.Variable(np.array(-1.0), name="x"))  # NaN, on no backward pass's graph
        E.square(E.Variable(np.array(3.0), name="w")).backward()
    assert any(v.dtype == "complex128" for v in t.variables.values()) and bad is not None and z is not None
    assert [f.kind for f in diagnose(t)] == ["nan-inf"]  # it was missed, with no note


def test_a_backward_returning_none_for_a_wrapped_number_is_not_a_lost_gradient():
    class ScaleBy(fullcore.Function):  # y = x * c; no gradient for the constant c
        def forward(self, x, c):
            return x * c

        def backward(self, gy):
            return gy * self.inputs[1].data, None

    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        x = fullcore.Variable(np.array(2.0), name="x")
        ScaleBy()(x, 3.0).backward()
    assert diagnose(t) == ()
    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        x = fullcore.Variable(np.array(2.0), name="x")
        ScaleBy()(x, fullcore.Variable(np.array(3.0), name="c")).backward()  # c is the user's
    assert [(f.kind, f.variable) for f in diagnose(t)] == [("wrong-backward", 2), ("leaf-gradient", 2)]


def test_forward_nan_findings_follow_the_passes_chosen():
    with np.errstate(all="ignore"), tracer.trace(keep="all") as t:
        x = E.Variable(np.array(2.0), name="x")
        E.square(x).backward()
        z = E.Variable(np.array(0.0), name="z")
        E.log(z).backward()  # pass 2's forward makes -inf
    assert [f.kind for f in diagnose(t, passes=[1], checks=["nan-inf"])] == []
    assert [f.call for f in diagnose(t, passes=[2], checks=["nan-inf"])] == [2]
    assert [f.call for f in diagnose(t, checks=["nan-inf"])][:1] == [2]  # all passes: reported


def test_a_forward_returning_a_list_of_outputs_is_replayed():
    class Variable:
        def __init__(self, data):
            self.data, self.grad, self.creator = data, None, None

        def backward(self):
            self.grad = np.ones_like(self.data)
            funcs, seen = [self.creator], {self.creator}
            while funcs:
                f = funcs.pop()
                gxs = f.backward(*[y.grad if y.grad is not None else np.zeros_like(y.data) for y in f.outputs])
                for x, gx in zip(f.inputs, gxs if isinstance(gxs, (tuple, list)) else (gxs,)):
                    x.grad = gx if x.grad is None else x.grad + gx
                    if x.creator is not None and x.creator not in seen:
                        funcs.append(x.creator)
                        seen.add(x.creator)

    class Function:
        def __call__(self, *inputs):
            ys = self.forward(*[x.data for x in inputs])
            ys = ys if isinstance(ys, (tuple, list)) else (ys,)  # a list of outputs is fine here
            outputs = [Variable(np.asarray(y)) for y in ys]
            for y in outputs:
                y.creator = self
            self.inputs, self.outputs = inputs, outputs
            return outputs if len(outputs) > 1 else outputs[0]

    class Split(Function):
        def forward(self, x):
            return [x * 2, x * 3]

        def backward(self, g0, g1):
            return g0 * 2 + g1 * 3 + (1 if wrong else 0)

    class Add(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, gy):
            return gy, gy

    for wrong in (False, True):
        with tracer.trace(Function, Variable) as t:
            x = Variable(np.array(1.5))
            a, b = Split()(x)
            Add()(a, b).backward()
        notes = []
        found = [(f.kind, t.calls[f.call].op if f.call else None) for f in diagnose(t, notes=notes)]
        assert not [n for n in notes if "did not reproduce" in n], notes
        assert ("wrong-backward", "Split") in found if wrong else found == []


def test_a_step_11_engine_that_passes_lists_is_recorded_and_checked():
    class Variable:  # the book's step 11: Function.__call__ and forward take lists
        def __init__(self, data):
            self.data, self.grad, self.creator = data, None, None

        def backward(self):
            self.grad = np.ones_like(self.data)
            funcs = [self.creator]
            while funcs:
                f = funcs.pop()
                gxs = f.backward(*[o.grad for o in f.outputs])
                for x, gx in zip(f.inputs, gxs if isinstance(gxs, tuple) else (gxs,)):
                    x.grad = gx if x.grad is None else x.grad + gx
                    if x.creator is not None:
                        funcs.append(x.creator)

    class Function:
        def __call__(self, inputs):
            outputs = [Variable(np.asarray(y)) for y in self.forward([x.data for x in inputs])]
            for o in outputs:
                o.creator = self
            self.inputs, self.outputs = inputs, outputs
            return outputs

    class Add(Function):
        def forward(self, xs):
            return (xs[0] + xs[1],)

        def backward(self, gy):
            return None, gy  # the bug: no gradient for x0

    with tracer.trace(Function, Variable) as t:
        x0, x1 = Variable(np.array(2.0)), Variable(np.array(3.0))
        Add()([x0, x1])[0].backward()
    assert not any(v.implicit for v in t.variables.values())  # passed inside a list: the user's own
    found = [(f.kind, f.variable) for f in diagnose(t)]
    assert ("wrong-backward", 1) in found and ("leaf-gradient", 1) in found


def test_a_random_forward_is_named_and_the_random_state_kept_whatever_style_replays_it():
    class Variable:
        def __init__(self, data):
            self.data, self.grad, self.creator = data, None, None

        def backward(self):
            self.grad = np.ones_like(self.data)
            f = self.creator
            (x,), gx = f.inputs, f.backward(self.grad)
            x.grad = gx

    class Function:
        def __call__(self, inputs):  # step 11: forward takes the list of inputs
            (y,) = self.forward([x.data for x in inputs])
            out = Variable(y)
            out.creator, self.inputs = self, inputs
            return [out]

    class Dropout(Function):
        def forward(self, xs):
            (x,) = xs  # forward(*xs) fails here, before drawing: the list style must be judged
            self.mask = np.random.rand(*x.shape) > 0.5
            return (x * self.mask,)

        def backward(self, gy):
            return gy * self.mask

    np.random.seed(0)
    with tracer.trace(Function, Variable) as t:
        Dropout()([Variable(np.arange(6.0))])[0].backward()
    state = np.random.get_state()[1].copy()
    notes = []
    diagnose(t, notes=notes)
    assert (np.random.get_state()[1] == state).all()
    assert any("draws random numbers" in n for n in notes), notes


def test_the_report_shows_a_finding_repeated_over_a_loop_once_with_its_passes():
    from tracer.diagnose import format_report
    with tracer.trace(keep="all") as t:
        w = E.Parameter(np.array(1.0), name="w")
        for _ in range(5):  # no w.cleargrad(): passes 2-5 each add to the last one's gradient
            loss = E.square(w * 3.0 - 1.0)
            loss.backward()
            w.data -= 0.01 * w.grad.data
    findings = diagnose(t)
    assert [(f.kind, f.pass_id) for f in findings] == [("stale-gradient", p) for p in (2, 3, 4, 5)]
    report = format_report(findings, t, notes=["leaf-gradient: pass 2 not checked: Mul (f5) cannot be re-run",
                                                 "leaf-gradient: pass 3 not checked: Mul (f9) cannot be re-run"])
    assert report.startswith("gradtrace check: 4 problems (4 warnings) in ")
    assert report.count("stale-gradient at w (v1)") == 1 and "   the same in 3 more: passes 3\u20135\n" in report
    assert "  - leaf-gradient: passes 2\u20133 not checked: Mul cannot be re-run\n" in report


def test_the_report_counts_forward_calls_apart_from_those_backward_made():
    from tracer.diagnose import format_report
    with tracer.trace() as t:
        x = E.Variable(np.array(2.0), name="x")
        (x * x + x).backward(create_graph=True)  # the gradient graph: calls made inside backward
    inner = sum(1 for c in t.calls.values() if c.in_step is not None)
    assert inner > 0
    assert format_report(diagnose(t), t).startswith(
        f"gradtrace check: no problems found in 2 calls (and {inner} made inside backward) and 1 backward pass.")


def test_the_report_never_groups_two_findings_of_one_pass():
    from tracer.diagnose import format_report
    t = run(lambda dtype: E.sum(bad_ops.HalfSquare()(E.Variable(np.array([0.5, 1.5]), name="x"))
                                + bad_ops.HalfSquare()(E.Variable(np.array([2.0, 1.0]), name="z"))))
    wrong = [f for f in diagnose(t) if f.kind == "wrong-backward"]
    assert len(wrong) == 2
    report = format_report(wrong, t)
    assert report.count("wrong-backward at HalfSquare") == 2 and "the same in" not in report


def test_findings_whose_hints_name_a_call_of_each_pass_are_grouped_too():
    from tracer.diagnose import format_report
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array([0.5, 1.5]), name="x")
        for _ in range(4):
            x.cleargrad()
            E.sum(bad_ops.HalfSquare()(x)).backward()
    findings = diagnose(t, passes=[1, 2, 3, 4])
    leaf = [f for f in findings if f.kind == "leaf-gradient"]
    assert len(leaf) == 4 and len({f.hint for f in leaf}) == 4  # each names its own pass's call
    report = format_report(findings, t)
    assert report.count("leaf-gradient at x (v1)") == 1 and report.count("the same in 3 more: passes 2\u20134") == 2


def test_a_backward_loop_that_runs_nothing_is_told_apart_from_a_no_grad_root(monkeypatch):
    def lazy_backward(self):  # a student's first try: seeds the root, never walks the graph
        self.grad = np.ones_like(self.data)
    monkeypatch.setattr(listpop.Variable, "backward", lazy_backward)
    with tracer.trace(listpop.Function, listpop.Variable) as t:
        x = listpop.Variable(np.array(2.0), name="x")
        y = listpop.square(x)
        y.name = "y"
        y.backward()
    findings = diagnose(t)
    missing = next(f for f in findings if f.kind == "missing-step")
    assert "linked as its creator: the backward loop never ran it" in missing.message
    assert "leaf-gradient" in [f.kind for f in findings]  # x's None gradient is still checked here


def test_a_constants_infinite_gradient_is_not_said_to_reach_the_leaves():
    with np.errstate(all="ignore"), tracer.trace(fullcore.Function, fullcore.Variable) as t:
        x = fullcore.Variable(np.array(1e200), name="x")
        z = fullcore.mul(fullcore.mul(x, 1e-200), 1e308)  # forward finite; 1e308 * 1e200 in backward
        z.backward()
    (finding,) = [f for f in diagnose(t) if f.kind == "nan-inf"]
    assert finding.step is not None and "the constant" in finding.message  # its gradient overflowed
    assert "the final gradient of" not in finding.message  # a constant's gradient is never used


def test_a_backward_nan_is_reported_even_where_its_forward_made_inf_but_an_overflow_once():
    with np.errstate(all="ignore"), tracer.trace() as t:
        x = E.Variable(np.array(0.0), name="x")
        E.square(E.exp(E.log(E.square(x)))).backward()  # log(0) = -inf; Log.backward: 0 / 0 = NaN
    found = [(f.call, f.step is not None) for f in diagnose(t) if f.kind == "nan-inf"]
    assert found == [(op_call(t, "Log"), False), (op_call(t, "Log"), True)]  # the NaN that reached x.grad
    with np.errstate(all="ignore"), tracer.trace() as t:
        E.exp(E.Variable(np.array(1000.0), name="x")).backward()  # overflow: inf forward and backward
    assert [f.step for f in diagnose(t) if f.kind == "nan-inf"] == [None]


def test_an_in_place_accumulation_is_not_called_a_wrong_gradient_passed():
    eng = make_engine(in_place=True)
    with tracer.trace(eng.Function, eng.Variable) as t:
        x, y = eng.Variable(np.array(0.3), name="x"), eng.Variable(np.array(0.2), name="y")
        p, q = eng.square(x), eng.square(eng.square(y))
        eng.add(eng.exp(q), eng.add(p, q)).backward()  # p.grad is the array x.grad += changes later
    findings = diagnose(t)
    assert "wrong-gradient-passed" not in [f.kind for f in findings]  # it said p.grad was 1
    (shared,) = [f for f in findings if f.kind == "overwritten-gradient"]  # the real cause, named
    assert shared.message == ("the .grad of p (v2) changed from 1 to 2.0016 after step 2 though no gradient "
                              "arrived for it: it is the same array as the .grad of q (v5), changed in place")
    assert "x.grad = x.grad + gx" in shared.hint
    leaf = [f for f in findings if f.kind == "leaf-gradient"]
    assert leaf and leaf[0].hint.startswith("probably caused by: overwritten-gradient at Square")


@pytest.mark.parametrize("value", [0.0, -0.005, 3.0])
def test_relu_and_clip_masks_under_create_graph_are_not_detached_gradients(value):
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array([value, 0.3, 1.0, -0.4]), name="x")
        E.sum(E.relu(x) * E.sin(x) + E.clip(x, 0.0, 1.0) * x).backward(create_graph=True)
    assert [f.message for f in diagnose(t) if f.kind == "wrong-backward"] == []  # at a kink: no call made


def test_the_detached_gradient_check_judges_each_op_and_shape_once(monkeypatch):
    import tracer.diagnose_grad as grad
    judged = []
    real = grad._inputs_its_gradient_depends_on
    monkeypatch.setattr(grad, "_inputs_its_gradient_depends_on", lambda *a: judged.append(a[1].op) or real(*a))
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.linspace(0.1, 0.9, 64), name="x")
        y = x
        for _ in range(200):
            y = y + x * 0.001  # Add and Mul steps whose backward makes no call on their inputs
        E.sum(y).backward(create_graph=True)
    diagnose(t, checks=["wrong-backward"])
    assert len(judged) == len(set(judged)) <= 3  # it re-ran every step's forward 4 x 64 times


def test_a_step_with_nothing_to_test_does_not_vouch_for_its_op():
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array(0.5), name="x")
        y = bad_ops.DataSin()(x) * 0.0 + bad_ops.DataSin()(x)  # one of them gets a zero gradient
        y.backward(create_graph=True)
    assert [f.call for f in diagnose(t) if f.kind == "wrong-backward"]  # the first judged for both before


def test_a_detached_backward_is_found_also_at_a_smooth_peak_of_its_derivative():
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array(0.0), name="x")  # cos, sin's derivative, peaks at 0
        bad_ops.DataSin()(x).backward(create_graph=True)
    assert [f.kind for f in diagnose(t)] == ["wrong-backward"]


def test_an_engine_without_accumulation_replacing_last_passes_grad_is_not_overwriting():
    """The book's step 7-12 engines set x.grad = gx (no adding up, no cleargrad yet): in a
    gradient-descent loop each pass replaces the last pass's .grad, which is right; only a
    second arrival in one pass that replaces the first is the step-13 bug."""
    with tracer.trace(recursive.Function, recursive.Variable, keep="all") as t:
        x = recursive.Variable(np.array(0.5))
        for _ in range(3):
            y = recursive.Square()(recursive.Exp()(x))
            y.grad = np.array(1.0)
            y.backward()
            x.data = x.data - 0.1 * x.grad
    assert len(t.passes) == 3 and diagnose(t) == ()
    with tracer.trace(recursive.Function, recursive.Variable, keep="all") as t:  # meant to add up
        x = recursive.Variable(np.array(0.5))
        for loss in (recursive.Square()(x), recursive.Exp()(x)):
            loss.grad = np.array(1.0)
            loss.backward()  # x unchanged: the second replaced the first's gradient
    (dropped,) = diagnose(t)  # said as a warning: each pass may be meant to start afresh
    assert (dropped.kind, dropped.pass_id, dropped.severity) == ("overwritten-gradient", 2, "warning")
    assert "that an earlier pass left (1) was replaced by this pass's gradient, not added to" in dropped.message
    eng = make_engine(overwrite=True)
    with tracer.trace(eng.Function, eng.Variable, keep="all") as overwriting:  # the step-13 bug
        x = eng.Variable(np.array(0.5))
        for _ in range(2):
            x.cleargrad()
            y = eng.Add()(x, x)
            y.backward()
    assert [f.pass_id for f in diagnose(overwriting, checks=["overwritten-gradient"])] == [1, 2]


def test_long_step_lists_are_cut_in_messages_and_numbers():
    """A loop that never ends ran one step tens of thousands of times: the report listed them all."""
    eng = make_engine(no_seen=True)
    with np.errstate(over="ignore"), tracer.trace(eng.Function, eng.Variable) as t:
        x = eng.Variable(np.array(0.1), name="x")
        y = x
        for _ in range(6):  # without a seen set, every function runs once per path to it: 2**k
            y = eng.Add()(eng.Exp()(y), eng.Exp()(y))
        y.backward(retain_grad=True)
    (repeated,) = [f for f in diagnose(t, checks=["repeated-step"]) if f.call == 1]
    assert re.search(r"\(steps (\d+, ){10}\.\.\. \([\d,]+ in all\)\)", repeated.message), repeated.message
    assert len(repeated.numbers["steps"]) == 10


def test_a_wrong_shape_is_reported_where_it_was_made_not_where_it_was_handed_on():
    """Sum.backward returning gy unbroadcast: every correct op after it handed the () gradient on
    and was reported too (18 errors), with a sum_to hint where broadcast_to is needed."""
    eng = make_engine()

    class SumNoBroadcast(eng.Function):
        def forward(self, x):
            return x.sum()

        def backward(self, gy):
            return gy

    class MatMulSwapped(eng.Function):
        def forward(self, x, w):
            return x @ w

        def backward(self, gy):
            x, w = self.inputs
            return x.data.T @ gy, gy @ w.data.T  # gW, gx: in the wrong order

    with np.errstate(all="ignore"), tracer.trace(eng.Function, eng.Variable) as t:
        x = eng.Variable(np.array([1.0, 2.0, 3.0]), name="x")
        SumNoBroadcast()(eng.Add()(eng.Exp()(x), x)).backward()
    (found,) = diagnose(t, checks=["shape-mismatch"])
    assert found.call == op_call(t, "SumNoBroadcast") and "broadcast_to the input's shape" in found.hint
    with tracer.trace(eng.Function, eng.Variable) as t:
        x, w = eng.Variable(np.ones((4, 3)), name="x"), eng.Variable(np.ones((3, 2)), name="W")
        MatMulSwapped()(x, w).backward()
    hints = {f.hint for f in diagnose(t, checks=["shape-mismatch"])}
    assert len(hints) == 1 and hints.pop().startswith("the two gradients are each shaped like the other input")


def test_a_one_input_backward_returning_its_gradient_in_a_list_is_told_so():
    eng = make_engine()
    eng.Square.backward = lambda self, gy: [2 * self.inputs[0].data * gy]  # the book's engine: one array
    with tracer.trace(eng.Function, eng.Variable) as t:
        x = eng.Variable(np.array([1.0, 2.0]), name="x")
        eng.exp(eng.square(x)).backward()
    (found,) = diagnose(t, checks=["shape-mismatch"])
    assert (found.call, found.variable) == (op_call(t, "Square"), 1)
    assert "shape (1, 2) for inputs[0], x (v1), of shape (2,)" in found.message
    assert found.hint.startswith("the gradient has an extra first axis of length 1: backward probably "
                                 "returned it in a list (`return [gx]`)")


def test_a_gradient_stored_as_a_list_is_blamed_on_the_backward_that_returned_it_alone():
    # the list [gx] a backward returned becomes the .grad the next backward receives: that is one
    # gradient of shape (1, 2), not the book's step-11 backward(gys) with one gradient per output
    eng = make_engine()
    eng.Square.backward = lambda self, gy: [2 * self.inputs[0].data * gy]
    with tracer.trace(eng.Function, eng.Variable) as t:
        x = eng.Variable(np.array([1.0, 2.0]), name="x")
        eng.exp(eng.square(eng.exp(x))).backward()
    first_exp = t.passes[-1].steps[-1]
    assert t.calls[first_exp.call].op == "Exp" and first_exp.grads_in[0].shape == (1, 2)
    (found,) = diagnose(t, checks=["shape-mismatch"])
    assert found.call == op_call(t, "Square")


def test_a_stale_parameter_of_a_model_is_told_to_clear_the_models_gradients():
    class Layer:
        def __init__(self):
            self.W = E.Parameter(np.array([0.5]), name="W")

    class Model:
        def __init__(self):
            self.l1, self.l2 = Layer(), Layer()

    with tracer.trace(keep="all") as t:
        model = Model()
        for _ in range(2):  # never cleared
            E.sum(model.l1.W * model.l2.W * 3.0).backward()
            for p in (model.l1.W, model.l2.W):
                p.data = p.data - 0.1 * p.grad.data
    hints = {f.hint for f in diagnose(t, checks=["stale-gradient"])}
    assert hints == {f"call model.cleargrads() (or model.{n}.W.cleargrad()) (or set .grad = None) before each "
                     f"backward, e.g. at the start of every training step; ignore this if you meant to add up "
                     f"the gradients of several backward calls" for n in ("l1", "l2")}


def test_an_automatic_loop_passing_the_roots_gradient_to_every_function_is_named():
    """The book's step 8 loop written x.grad = f.backward(self.grad): only a leaf-gradient finding,
    whose hint named causes that did not apply."""
    class RootPassing(recursive.Variable):
        def backward(self):
            funcs = [self.creator]
            while funcs:
                f = funcs.pop()
                f.input.grad = f.backward(self.grad)  # the root's gradient, for every function
                if f.input.creator is not None:
                    funcs.append(f.input.creator)

    class Fn(recursive.Function):
        def __call__(self, input):
            output = super().__call__(input)
            output.__class__ = RootPassing
            return output

    class Square(Fn, recursive.Square):
        pass

    class Exp(Fn, recursive.Exp):
        pass

    with tracer.trace(recursive.Function, RootPassing) as t:
        x = RootPassing(np.array(0.5))
        y = Square()(Exp()(Square()(x)))
        y.grad = np.array(1.0)
        y.backward()
    passed = [f for f in diagnose(t) if f.kind == "wrong-gradient-passed"]
    assert [f.step for f in passed] == [2, 3]
    assert "is what y (v4), the root, holds" in passed[0].message and "the book's gys" in passed[0].hint


def test_a_seed_of_the_wrong_shape_gets_a_hint_about_the_seed():
    eng = make_engine()

    class ScalarSeed(eng.Variable):
        def backward(self, retain_grad=False):
            self.grad = np.array(1.0)  # for a non-scalar root
            super().backward(retain_grad)

    with np.errstate(all="ignore"), tracer.trace(eng.Function, ScalarSeed) as t:
        x = ScalarSeed(np.array([1.0, 2.0]), name="x")
        y = eng.Exp()(x)
        y.__class__ = ScalarSeed
        y.backward(retain_grad=True)
    (found,) = [f for f in diagnose(t, checks=["shape-mismatch"]) if f.variable == t.passes[0].root]
    assert found.hint.startswith("the seed gradient must have the root's shape: start backward with np.ones_like")
    with np.errstate(all="ignore"), tracer.trace(eng.Function, ScalarSeed) as t:
        x = ScalarSeed(np.array([1.0, 2.0]), name="x")
        y = eng.Exp()(x)
        y.__class__ = ScalarSeed
        y.backward()  # the seed is cleared after use, and every step broadcasts it: x.grad is right
    (found,) = diagnose(t, checks=["shape-mismatch"])
    assert (found.variable, found.severity) == (t.passes[0].root, "error")
    assert found.message == ("the starting gradient of y (v2) has shape () but its data has shape (2,)")
    assert found.hint.startswith("the seed gradient must have the root's shape")


def test_a_gradient_changed_in_place_before_its_own_backward_is_found():
    """x.grad.data += gx.data in a create_graph engine: the second derivative came out wrong (2
    for 14) and check said nothing. Here the change is made by hand between the passes."""
    with tracer.trace(fullcore.Function, fullcore.Variable, keep="all") as t:
        x = fullcore.Variable(np.array(2.0), name="x")
        y = fullcore.Mul()(fullcore.Mul()(x, x), x)
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.data += 5.0  # as an in-place accumulation would
        gx.backward()
    (found,) = [f for f in diagnose(t) if f.pass_id == 2]
    assert found.kind == "overwritten-gradient" and found.variable == t.passes[1].root
    assert found.message.startswith("the root gx (v") and "held 17 when this pass began, but" in found.message
    assert "made 12: it was changed in place after it was made" in found.message
    again = jsonio.loads(jsonio.dumps(t))  # a saved trace keeps what is needed
    assert [f.message for f in diagnose(again) if f.pass_id == 2] == [found.message]
    with tracer.trace(fullcore.Function, fullcore.Variable, keep="all") as t:  # the same, untouched
        x = fullcore.Variable(np.array(2.0), name="x")
        fullcore.Mul()(fullcore.Mul()(x, x), x).backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
    assert diagnose(t) == ()


class _Scale(E.Function):
    """y = x * w for a weight array the op keeps (not a Variable)."""

    def __init__(self, w, wrong=False):
        self.w, self.wrong = w, wrong

    def forward(self, x):
        return x * self.w

    def backward(self, gy):
        return gy * (self.w + 1.0 if self.wrong else self.w)


@pytest.mark.parametrize("wrong", [False, True])
def test_an_op_whose_array_the_script_updates_afterwards_is_still_checked(wrong):
    """The op's w was kept by reference: after the script's w -= 0.5 * w the re-run no longer
    reproduced the output, and the op went unchecked (a wrong backward unflagged)."""
    with tracer.trace() as t:
        w = np.array([2.0, 3.0])
        x = E.Variable(np.array([1.0, 1.0]))
        E.sum(_Scale(w, wrong)(x)).backward()
        w -= 0.5 * w
    notes = []
    found = [f.kind for f in diagnose(t, notes=notes) if f.call is not None]
    assert not any("_Scale not checked" in note for note in notes), notes
    assert found == (["wrong-backward"] if wrong else [])


def test_a_nan_from_one_branch_names_only_the_leaves_its_gradient_reaches():
    """Log(0) on x's branch, exp(1000) on w's: Log's finding blamed w's Inf gradient too."""
    with tracer.trace() as t, np.errstate(all="ignore"):
        x = E.Variable(np.array(0.0), name="x")
        w = E.Variable(np.array([0.0, 1000.0]), name="w")
        y = E.log(x) * 0.0 + E.sum(E.exp(w))
        y.backward()
    (log_step,) = [f for f in diagnose(t) if f.kind == "nan-inf" and f.step is not None]
    assert "the final gradient of x (v1) is not finite" in log_step.message
    assert "w (v" not in log_step.message


@pytest.mark.parametrize("data", [np.array(1 + 0j), np.array(["2026-11-27"], dtype="datetime64[D]"),
                                  np.array([b"ab"]), np.array([True]), np.array(["a"])])
def test_gradients_kept_as_text_or_bool_have_no_amount(data):
    """Complex, dates and bytes are kept as text: amount() raised 'could not convert string to float'."""
    from tracer.diagnose_common import amount
    from tracer.snapshot import freeze
    assert amount(freeze(data)) is None
    assert amount(freeze(np.array([1, 2], dtype=np.int8))).mean == 1.5
