"""Tracing our engine and the fixture engines: steps, gradients, passes, restoration."""

import math
import sys
import threading

import numpy as np
import pytest

import engine as E
import tracer
from tests.tracer.engines import fullcore, generations, listpop, recursive
from tracer.diagnose import diagnose

SEED_GRAD = 3.297442541400256


def ops_of_steps(t, p=None):
    p = p or t.select_pass()
    return [t.calls[s.call].op for s in p.steps]


def named(t, name):
    return next(v.id for v in t.variables.values() if v.name == name)


def test_seed_example_on_our_engine():
    with tracer.trace() as t:
        x = E.Variable(np.array(0.5))
        a = E.square(x)
        b = E.exp(a)
        y = E.square(b)
        y.backward()
    p = t.select_pass()
    assert ops_of_steps(t) == ["Square", "Exp", "Square"]
    assert [s.call for s in p.steps] == [3, 2, 1]
    assert p.steps[0].grads_in[0].item() == 1.0
    assert p.steps[0].grads_out[0].item() == pytest.approx(2 * math.exp(0.5 ** 2))
    assert t.final_grad(p, named(t, "x")).item() == pytest.approx(SEED_GRAD, abs=1e-12)
    assert p.steps[-1].accumulated[0].item() == pytest.approx(SEED_GRAD, abs=1e-12)
    assert [t.variables[i].name for i in (1, 2, 3, 4)] == ["x", "a", "b", "y"]
    assert t.grad_state(p, named(t, "a")) == "cleared"
    assert t.grad_state(p, named(t, "x")) == "value"
    assert p.root == named(t, "y") and p.root_grad.item() == 1.0


def test_seed_example_on_recursive_engine():
    with tracer.trace(recursive.Function, recursive.Variable) as t:
        x = recursive.Variable(np.array(0.5))
        y = recursive.Square()(recursive.Exp()(recursive.Square()(x)))
        y.grad = np.array(1.0)
        y.backward()
    p = t.select_pass()
    assert t.pass_count == 1 and p.kind == "backward"
    assert ops_of_steps(t) == ["Square", "Exp", "Square"]
    assert t.final_grad(p, named(t, "x")).item() == pytest.approx(SEED_GRAD, abs=1e-12)
    assert p.root_grad.item() == 1.0


def test_manual_backprop_is_a_manual_pass():
    with tracer.trace(recursive.Function, recursive.Variable) as t:
        A, B, C = recursive.Square(), recursive.Exp(), recursive.Square()
        x = recursive.Variable(np.array(0.5))
        a = A(x)
        b = B(a)
        y = C(b)
        y.grad = np.array(1.0)
        b.grad = C.backward(y.grad)
        a.grad = B.backward(b.grad)
        x.grad = A.backward(a.grad)
    p = t.select_pass()
    assert p.kind == "manual" and p.root == named(t, "y")
    assert ops_of_steps(t) == ["Square", "Exp", "Square"]
    assert p.steps[-1].accumulated[0].item() == pytest.approx(SEED_GRAD, abs=1e-12)


def test_reuse_add_x_x_two_contributions_summed():
    with tracer.trace() as t:
        x = E.Variable(np.array(3.0))
        y = E.add(x, x)
        y.backward()
    p = t.select_pass()
    contributions = t.contributions(p, named(t, "x"))
    assert [g.item() for _, g in contributions] == [1.0, 1.0]
    assert t.final_grad(p, named(t, "x")).item() == 2.0


def generation_graph(module):
    x = module.Variable(np.array(2.0))
    a = module.square(x)
    y = module.add(module.square(a), module.square(a))
    y.backward()
    return x, y


def test_generation_order_on_our_engine():
    with tracer.trace() as t:
        x, y = generation_graph(E)
    p = t.select_pass()
    assert y.data == 32 and x.grad.data == 64
    assert ops_of_steps(t) == ["Add", "Square", "Square", "Square"]
    assert p.steps[-1].call == 1  # the first Square runs last, once
    assert t.final_grad(p, t.calls[1].inputs[0]).item() == 64.0


def test_generation_order_on_generation_engine():
    with tracer.trace(generations.Function, generations.Variable) as t:
        x, _ = generation_graph(generations)
    assert ops_of_steps(t) == ["Add", "Square", "Square", "Square"]
    assert x.grad == 64


def test_gradients_returned_as_a_tuple_subclass_are_recorded_per_input():
    from collections import namedtuple
    grads = namedtuple("Grads", "left right")

    class Weighted(generations.Function):
        def forward(self, a, b):
            return a + 2 * b

        def backward(self, gy):
            return grads(gy, 2 * gy)

    with tracer.trace(generations.Function, generations.Variable) as t:
        a, b = generations.Variable(np.array(1.0)), generations.Variable(np.array(3.0))
        Weighted()(a, b).backward()
    (step,) = t.select_pass().steps
    assert [g.item() for g in step.grads_out] == [1.0, 2.0]
    assert b.grad == 2.0


def test_listpop_engine_records_the_actual_wrong_order():
    with tracer.trace(listpop.Function, listpop.Variable) as t:
        x, _ = generation_graph(listpop)
    p = t.select_pass()
    assert [s.call for s in p.steps] == [4, 3, 1, 2, 1]  # Square(a) runs before all its gradient arrived
    assert x.grad != 64
    assert t.final_grad(p, t.calls[1].inputs[0]).item() == x.grad


def test_full_core_inner_calls_are_tagged_with_their_step():
    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        x = fullcore.Variable(np.array(2.0))
        y = fullcore.mul(x, x)
        y.backward()
    p = t.select_pass()
    assert ops_of_steps(t) == ["Mul"]
    inner = [t.calls[c] for c in p.steps[0].inner_calls]
    assert [c.op for c in inner] == ["Mul", "Mul", "Add"]  # Add: the engine summing x's two gradients
    assert all(c.in_step == (p.id, 1) for c in inner)
    assert p.calls == (1,)  # the forward graph only
    assert x.grad.data == 4.0 and t.final_grad(p, 1).item() == 4.0


def test_higher_order_create_graph_tags_gradient_graph():
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array(1.0))
        y = E.sin(x)
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
    first, second = t.passes
    assert first.options == {"create_graph": True}
    assert first.steps[0].inner_calls, "create_graph builds the gradient graph inside the step"
    assert all(t.calls[c].in_step == (1, 1) for c in first.steps[0].inner_calls)
    assert t.final_grad(second, 1).item() == pytest.approx(-math.sin(1.0))
    assert set(first.steps[0].inner_calls) & set(second.calls)


def test_classes_restored_exactly_after_a_trace_that_raised():
    before = {cls: dict(cls.__dict__) for cls in (E.Function, E.Variable, E.Square, E.Exp)}
    with pytest.raises(ZeroDivisionError):
        with tracer.trace() as t:
            x = E.Variable(np.array(0.5))
            E.exp(E.square(x)).backward()
            1 / 0
    assert t.error.type == "ZeroDivisionError" and t.complete
    for cls, saved in before.items():
        assert dict(cls.__dict__) == saved
        assert list(cls.__dict__) == list(saved)


def test_backward_that_raises_halfway_marks_the_failing_step():
    class Broken(E.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            raise FloatingPointError("boom")

    with pytest.raises(FloatingPointError):
        with tracer.trace() as t:
            x = E.Variable(np.array(1.0))
            y = E.square(Broken()(E.exp(x)))
            y.backward()
    p = t.select_pass()
    assert ops_of_steps(t) == ["Square", "Broken"]
    assert p.steps[1].error == "FloatingPointError: boom"
    assert p.error.step == 2 and t.error.type == "FloatingPointError"
    assert "backward" not in Broken.__dict__ or Broken.__dict__["backward"].__name__ == "backward"


def test_a_trace_inside_a_trace_records_its_block_and_the_outer_one_goes_on():
    saved = {cls: dict(cls.__dict__) for cls in (E.Function, E.Variable, E.Square, E.Exp,
                                                 listpop.Function, listpop.Variable, listpop.Square)}
    with tracer.trace(keep="all") as outer:
        e = E.exp(E.Variable(np.array(1.0)))
        with tracer.trace(keep="all") as inner:
            y = E.square(E.Variable(np.array(2.0)))
            y.backward()
            with tracer.trace(listpop.Function, listpop.Variable) as innermost:  # classes outer never hooked
                listpop.square(listpop.Variable(np.array(3.0))).backward()
        z = listpop.square(listpop.Variable(np.array(4.0)))  # hooked by innermost, now outer's
        z.backward()
    assert [c.op for c in outer.calls.values()] == ["Exp", "Square", "Square", "Square"]
    assert [c.op for c in inner.calls.values()] == ["Square", "Square"]
    assert [c.op for c in innermost.calls.values()] == ["Square"]
    assert outer.pass_count == 3 and inner.pass_count == 2 and innermost.pass_count == 1
    assert not outer.warnings and not inner.warnings and not innermost.warnings and e.data > 0
    assert {cls: dict(cls.__dict__) for cls in saved} == saved  # every class exactly as before
    assert tracer.hooks.active_recorder() is None


def test_a_trace_inside_a_trace_that_raises_leaves_the_outer_one_recording():
    with tracer.trace() as outer:
        with pytest.raises(ZeroDivisionError), tracer.trace():
            e = E.exp(E.Variable(np.array(1.0)))
            1 / 0
        s = E.sin(E.Variable(np.array(1.0)))
    assert [c.op for c in outer.calls.values()] == ["Exp", "Sin"] and e.data > 0 and s.data > 0


def test_a_trace_from_another_thread_is_refused_and_leaves_classes_intact():
    saved = dict(E.Function.__dict__)
    errors = []

    def second():
        try:
            with tracer.trace():
                pass
        except tracer.TraceActiveError as exc:
            errors.append(str(exc))
    with tracer.trace(warn=False):
        worker = threading.Thread(target=second)
        worker.start()
        worker.join()
    assert errors == ["another thread is recording a trace: concurrent traces are not supported; "
                      "trace in one thread at a time"]
    assert dict(E.Function.__dict__) == saved


def test_other_threads_are_not_recorded():
    with tracer.trace() as t:
        worker = threading.Thread(target=lambda: E.square(E.Variable(np.array(1.0))))
        worker.start()
        worker.join()
        E.exp(E.Variable(np.array(1.0)))
    assert [c.op for c in t.calls.values()] == ["Exp"]


def train(steps, keep):
    with tracer.trace(keep=keep) as t:
        x0 = E.Variable(np.array(0.0))
        for _ in range(steps):
            y = E.square(x0 - 3.0)
            x0.cleargrad()
            y.backward()
            x0.data -= 0.25 * x0.grad.data
    return t


def test_keep_last_bounds_memory_and_shows_the_leaf_value_of_that_pass():
    t = train(50, "last")
    assert t.pass_count == 50 and len(t.passes) == 1 and t.passes[0].id == 50
    assert len(t.calls) <= 3
    p = t.passes[0]
    x_id = next(v for v in p.variables if t.variables[v].creator is None and t.variables[v].name == "x0")
    assert t.value(x_id, p).item() == pytest.approx(3.0 - 3.0 * 0.5 ** 49)


def _recorder_sizes(iterations: int) -> tuple:
    """The recorder's tables after a keep='last' loop whose epochs also evaluate under no_grad."""
    x = E.Variable(np.array(0.5))
    with tracer.trace(keep="last"):
        recorder = tracer.hooks.active_recorder()
        for _ in range(iterations):
            y = E.square(E.sin(x))
            x.cleargrad()
            y.backward()
            with E.no_grad():
                z = E.sin(E.sin(x))  # noqa: F841 - bound: a name the recorder learns each epoch
        return (len(recorder.raw_calls), len(recorder.raw_vars), len(recorder.functions._refs),
                len(recorder.variables._refs), len(recorder.names._names))


def test_keep_last_holds_as_much_after_200_epochs_as_after_20():
    """Function objects of no_grad calls and the names of dropped variables were kept forever."""
    assert _recorder_sizes(200) == _recorder_sizes(20)


def test_keep_first_all_and_number():
    first = train(5, "first")
    assert [p.id for p in first.passes] == [1]
    assert first.value(first.passes[0].calls and first.calls[first.passes[0].calls[0]].inputs[0],
                       first.passes[0]).item() == 0.0
    everything = train(5, "all")
    assert [p.id for p in everything.passes] == [1, 2, 3, 4, 5]
    values = [everything.value(everything.calls[p.calls[0]].inputs[0], p).item() for p in everything.passes]
    assert values == pytest.approx([0.0, 1.5, 2.25, 2.625, 2.8125])
    third = train(5, 3)
    assert [p.id for p in third.passes] == [3]
    with pytest.raises(tracer.PassSelectionError, match="keep='all'"):
        third.select_pass(2)


def test_large_arrays_are_summarised_and_nan_counted():
    with tracer.trace(max_elements=10) as t:
        data = np.arange(1000.0)
        data[5] = np.nan
        y = E.sum(E.Variable(data) * 2.0)
        y.backward()
    big = t.variables[1].value
    assert big.values is None and big.nan_count == 1 and big.head[:3] == (0.0, 1.0, 2.0)
    assert big.shape == (1000,) and big.max == 999.0


def test_snapshot_is_taken_when_recorded_not_later():
    with tracer.trace() as t:
        x = E.Variable(np.array([1.0, 2.0]))
        y = E.square(x)
        y.data[...] = 0.0
    assert t.variables[2].value.values == (1.0, 4.0)


def test_zero_d_snapshots_keep_dtype_and_the_value_at_recording_time():
    with tracer.trace() as t:
        x = E.Variable(np.array(2.0, dtype=np.float32))
        y = E.square(x)
        y.data[...] = 0.0            # in-place changes after recording must not reach the trace
        y.backward()
        x.grad.data[...] = -1.0
    assert t.variables[2].value.values == (4.0,) and t.variables[2].value.dtype == "float32"
    step = t.select_pass().steps[0]
    assert step.grads_out[0].values == (4.0,) and step.grads_out[0].dtype == "float32"
    assert step.grads_out[0].shape == ()


def test_zero_d_values_of_other_dtypes_keep_them_and_max_elements_zero_summarises():
    with tracer.trace() as t:
        big_endian = E.Variable(np.array(1.5, dtype=">f8"))
        boxed = E.Variable(np.array(np.float64(2.5), dtype=object))
        y = E.square(big_endian)
        y.backward()
        E.neg(boxed)
    assert t.variables[1].value.dtype == ">f8" and t.variables[1].value.values == (1.5,)
    assert t.variables[3].value.dtype == "object" and t.variables[3].value.values == ("2.5",)
    with tracer.trace(max_elements=0) as t:
        x = E.Variable(np.array(3.0))
        E.square(x).backward()
    step = t.select_pass().steps[0]
    assert t.variables[1].value.values is None and t.variables[2].value.values is None
    assert step.grads_in[0].values is None and step.grads_out[0].values is None
    assert t.variables[2].value.max == 9.0


@pytest.mark.parametrize("enabled", [True, False])
def test_garbage_collector_state_is_left_as_it_was(enabled):
    import gc
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        with tracer.trace():
            y = E.sin(E.Variable(np.array(1.0)))
            y.backward()
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


class SlotVariable:
    __slots__ = ("data", "grad", "creator")

    def __init__(self, data):
        self.data, self.grad, self.creator = data, None, None

    def backward(self):
        self.grad = np.ones_like(self.data)
        f = self.creator
        f.input.grad = f.backward(self.grad)


class SlotFunction:
    __slots__ = ("input",)

    def __call__(self, x):
        y = SlotVariable(self.forward(x.data))
        y.creator = self
        self.input = x
        return y

    def forward(self, x):
        return x * 3

    def backward(self, gy):
        return gy * 3


def test_classes_with_slots_and_no_weakref_support():
    with tracer.trace(SlotFunction, SlotVariable) as t:
        x = SlotVariable(np.array(1.0))
        y = SlotFunction()(x)
        y.backward()
    assert ops_of_steps(t) == ["SlotFunction"]
    assert t.final_grad(t.select_pass(), named(t, "x")).item() == 3.0
    assert "backward" not in SlotFunction.__dict__ or SlotFunction.backward.__qualname__.startswith("SlotFunction")


def test_not_a_class_is_a_clear_error():
    with pytest.raises(tracer.HookError, match="pass the class itself"):
        tracer.trace(function_cls="Function")
    with pytest.raises(ValueError, match="keep must be"):
        tracer.trace(keep="sometimes")
    with pytest.raises(ValueError, match="keep must be"):
        tracer.trace(keep=True)  # a bool is no pass number (it was taken for pass 1)


def test_a_none_gradient_is_not_counted_as_received():
    class FirstOnly(E.Function):
        def forward(self, a, b):
            return a * 2 + b

        def backward(self, gy):
            return gy * 2, None

    with tracer.trace() as t:
        a, b = E.Variable(np.array(1.0)), E.Variable(np.array(2.0))
        y = FirstOnly()(a, b)
        y.backward()
    p = t.select_pass()
    assert t.grad_state(p, named(t, "a")) == "value"
    assert [g for _, g in t.contributions(p, named(t, "b"))] == [None]
    assert t.grad_state(p, named(t, "b")) == "not-computed"


def test_public_picture_api_is_exported():
    with tracer.trace() as t:
        E.square(E.Variable(np.array(2.0))).backward()
    assert "Square" in tracer.to_dot(t).source
    assert "<html" in tracer.player_html(t).lower()


def test_a_bug_in_the_recorder_never_breaks_the_traced_program(monkeypatch):
    from tracer.recorder import Recorder
    original = Recorder.call_exit
    calls = []

    def flaky(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("recorder bug")
        return original(self, *args)

    monkeypatch.setattr(Recorder, "call_exit", flaky)
    with pytest.warns(tracer.TraceWarning, match="internal error"), tracer.trace() as t:
        x = E.Variable(np.array(0.5))
        y = E.square(E.exp(E.square(x)))
        y.backward()
    assert x.grad.data == pytest.approx(SEED_GRAD)  # the program ran to the end, unchanged
    assert [c.op for c in t.calls.values()] == ["Square"]
    assert any("internal error (RuntimeError: recorder bug)" in w for w in t.warnings)
    assert t.complete


class BareFunction:
    """Keeps no inputs: the tracer falls back to the call's arguments."""

    def __call__(self, x, scale):
        y = SlotVariable(self.forward(x.data) * scale)
        y.creator = self
        return y, np.float64(2.0)

    def forward(self, x):
        return x + 1

    def backward(self, gy):
        return gy


def test_numpy_scalars_and_arrays_are_not_taken_for_variables():
    """A function that keeps no inputs (made under no_grad): its plain arguments are implicit
    leaves (drawn as constants), never Variables; a plain value it returns is no output."""
    with tracer.trace(BareFunction, SlotVariable) as t:
        x = SlotVariable(np.array(1.0))
        BareFunction()(x, np.float64(3.0))
        scale = np.array(3.0)
        BareFunction()(x, scale)
        BareFunction()(x, scale)  # the same array: the same leaf
    assert [c.inputs for c in t.calls.values()] == [(1, 2), (1, 4), (1, 4)]
    assert all(len(c.outputs) == 1 for c in t.calls.values())
    kinds = {v.id: (v.kind, v.implicit) for v in t.variables.values()}
    assert kinds[1] == ("SlotVariable", False) and kinds[2] == ("float64", True) and kinds[4] == ("ndarray", True)
    assert t.variables[4].name == "scale" and t.is_constant(4)


def test_tracer_diagnose_is_reachable_after_import_tracer():
    import subprocess
    import sys
    code = "import tracer; print(tracer.diagnose.diagnose.__name__); tracer.no_such_thing"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout == "diagnose\n" and "has no attribute 'no_such_thing'" in done.stderr


class _Layer:
    def __init__(self, n_in, n_out, seed):
        rng = np.random.default_rng(seed)
        self.W = E.Parameter(rng.standard_normal((n_in, n_out)), name="W")  # every layer's is "W"
        self.b = E.Parameter(np.zeros(n_out), name="b")

    def __call__(self, x):
        return E.linear(x, self.W, self.b)


class _Model:
    def __init__(self):
        self.l1, self.l2 = _Layer(2, 3, 0), _Layer(3, 1, 1)
        self.layers = [self.l1]


def test_leaves_sharing_a_name_are_named_by_where_they_hang():
    model = _Model()
    with tracer.trace() as t:
        loss = E.sum(model.l2(E.sigmoid(model.l1(np.ones((4, 2))))))
        loss.backward()
        for p in (model.l1.W, model.l2.b):  # a loop variable left holding l2.b is not its name
            p.data = p.data - 0.1 * p.grad.data
    names = sorted(v.name for v in t.variables.values() if v.kind == "Parameter")
    assert names == ["model.l1.W", "model.l1.b", "model.l2.W", "model.l2.b"]  # not W, b, W, b
    with tracer.trace() as alone:
        w = E.Parameter(np.array(2.0), name="W")
        E.square(w).backward()
    assert [v.name for v in alone.variables.values() if v.kind == "Parameter"] == ["W"]  # unique: kept


def test_traces_that_end_out_of_order_leave_the_others_recording_and_classes_as_before():
    import builtins
    saved = {cls: dict(cls.__dict__) for cls in (E.Function, E.Variable, E.Exp, E.Sin,
                                                 listpop.Function, listpop.Variable, listpop.Square)}
    real_build_class = builtins.__build_class__
    a, b = tracer.trace(keep="all", auto=True, warn=False), tracer.trace(keep="all", auto=True, warn=False)
    c = tracer.trace(listpop.Function, listpop.Variable, keep="all", warn=False)
    ta, tb = a.__enter__(), b.__enter__()
    tc = c.__enter__()
    b.__exit__(None, None, None)  # b ends first (a suspended generator's with block, say)
    kept = E.exp(E.Variable(np.array(1.0)))
    theirs = listpop.square(listpop.Variable(np.array(2.0)))
    c.__exit__(None, None, None)
    also = E.sin(E.Variable(np.array(1.0)))
    with pytest.raises(tracer.TraceActiveError, match="this trace is already recording"):
        a.__enter__()  # the same trace object twice
    a.__exit__(None, None, None)
    assert [c_.op for c_ in ta.calls.values()] == ["Exp", "Square", "Sin"] and kept.data > 0 and also.data > 0
    assert [c_.op for c_ in tc.calls.values()] == ["Square"] and theirs.data == 4.0  # its own engine's only
    assert not tb.calls
    assert {cls: dict(cls.__dict__) for cls in saved} == saved
    assert builtins.__build_class__ is real_build_class and tracer.hooks.active_recorder() is None


def test_a_backward_of_another_engine_does_not_end_an_inner_traces_manual_pass():
    with tracer.trace(warn=False), tracer.trace(listpop.Function, listpop.Variable) as inner:
        x = listpop.Variable(np.array(3.0))
        first, second = listpop.Square(), listpop.Square()
        y = second(first(x))
        y.grad = np.array(1.0)
        gy = second.backward(y.grad)  # a manual pass, the book's step 6 way
        E.square(E.Variable(np.array(2.0))).backward()  # our engine's backward: not the inner's
        first.backward(gy)
    assert inner.pass_count == 1 and len(inner.select_pass().steps) == 2


def test_a_trace_left_holding_anothers_hooks_records_only_its_own_classes():
    a = tracer.trace(warn=False)  # our engine
    b = tracer.trace(listpop.Function, listpop.Variable)
    a.__enter__()
    tb = b.__enter__()
    a.__exit__(None, None, None)  # the outer ends first: b keeps a's hooks until it ends
    x = listpop.Variable(np.array(3.0))
    first, second = listpop.Square(), listpop.Square()
    y = second(first(x))
    y.grad = np.array(1.0)
    gy = second.backward(y.grad)
    E.square(E.Variable(np.array(2.0))).backward()  # our engine: a's hooks, not b's classes
    first.backward(gy)
    b.__exit__(None, None, None)
    assert tb.pass_count == 1 and len(tb.select_pass().steps) == 2
    assert [c.op for c in tb.calls.values()] == ["Square", "Square"]
    assert tb.engine.function_classes == ("tests.tracer.engines.listpop.Function",)


def test_an_internal_error_stops_every_nested_trace_for_good(monkeypatch):
    from tracer import fanout
    traces = [tracer.trace(warn=False) for _ in range(3)]
    results = [t.__enter__() for t in traces]

    def broken(self, *args):
        raise RuntimeError("a bug of ours")
    monkeypatch.setattr(fanout.FanOut, "call_exit", broken)
    e = E.exp(E.Variable(np.array(1.0)))
    monkeypatch.undo()
    with tracer.trace(warn=False):  # entering and leaving another trace must not revive them
        pass
    s = E.sin(E.Variable(np.array(1.0)))
    for t in reversed(traces):
        t.__exit__(None, None, None)
    assert all(not r.calls for r in results) and e.data > 0 and s.data > 0
    assert all(any("internal error" in w for w in r.warnings) for r in results)


def test_gradients_handed_to_backward_in_one_list_are_one_per_output():
    from tracer.diagnose import diagnose

    class Variable:  # the book's step 11: backward(gys) takes the outputs' gradients in a list
        def __init__(self, data):
            self.data, self.grad, self.creator = data, None, None

        def backward(self):
            self.grad = np.ones_like(self.data)
            funcs = [self.creator]
            while funcs:
                f = funcs.pop()
                gxs = f.backward([output.grad for output in f.outputs])
                for output in f.outputs:
                    output.grad = None  # the seed is gone at the end of the pass
                for x, gx in zip(f.inputs, gxs):
                    x.grad = gx if x.grad is None else x.grad + gx
                    if x.creator is not None:
                        funcs.append(x.creator)

    class Function:
        def __call__(self, inputs):
            outputs = [Variable(np.asarray(y)) for y in self.forward([x.data for x in inputs])]
            for output in outputs:
                output.creator = self
            self.inputs, self.outputs = inputs, outputs
            return outputs

    class Add(Function):
        def forward(self, xs):
            return (xs[0] + xs[1],)

        def backward(self, gys):
            return gys[0], gys[0]

    with tracer.trace(Function, Variable) as t:
        x = Variable(np.array(3.0))
        Add()([x, x])[0].backward()
    (step,) = t.passes[-1].steps
    assert [g.shape for g in step.grads_in] == [()] and t.passes[-1].root_grad.shape == ()
    assert x.grad == 2.0 and diagnose(t) == ()  # the list was taken for a seed of shape (1,)


def test_a_function_keeping_arrays_in_inputs_is_recorded_with_the_variables_passed_and_a_warning():
    class Variable:
        def __init__(self, data):
            self.data, self.grad, self.creator = data, None, None

        def backward(self):
            self.grad = np.ones_like(self.data)
            f = self.creator
            gxs = f.backward(self.grad)
            for x, gx in zip(f.inputs, gxs):
                x.grad = gx  # the arrays have no .grad: AttributeError

    class Function:
        def __call__(self, *inputs):
            xs = [x.data for x in inputs]
            output = Variable(self.forward(*xs))
            output.creator = self
            self.inputs, self.outputs = xs, [output]  # the bug: the arrays, not the Variables
            return output

    class Mul(Function):
        def forward(self, x0, x1):
            return x0 * x1

        def backward(self, gy):
            x0, x1 = self.inputs
            return gy * x1, gy * x0

    with pytest.raises(AttributeError), tracer.trace(Function, Variable, warn=False) as t:
        x, w = Variable(np.array(2.0)), Variable(np.array(3.0))
        Mul()(x, w).backward()
    (call,) = t.calls.values()
    assert call.inputs == (1, 2) and t.name_of(1) == "x" and t.name_of(2) == "w"
    (warning,) = t.warnings
    assert warning.startswith("Mul kept numpy arrays in .inputs, not the Variables it was called with, so "
                              "backward cannot reach those Variables")
    assert "(self.inputs = inputs)" in warning

    class Kept(Mul):  # keeps the Variables too, under another name: its engine may read them there
        def __call__(self, *inputs):
            self.variables = inputs
            return super().__call__(*inputs)

    with tracer.trace(Function, Variable, warn=False) as t:
        Kept()(Variable(np.array(2.0)), Variable(np.array(3.0)))
    assert t.warnings == () and len(t.calls[1].inputs) == 2


def test_a_numpy_array_of_variables_from_an_operator_is_a_warning_naming_array_priority():
    from tests.tracer.broken.engines import make_engine
    eng = make_engine()  # its Variable has no __array_priority__
    eng.Variable.__radd__ = lambda self, other: eng.Add()(self, eng.Variable(np.asarray(other)))
    with tracer.trace(eng.Function, eng.Variable, warn=False) as t:
        x = eng.Variable(np.array([1.0, 2.0]), name="x")
        y = np.array([3.0, 4.0]) + x  # numpy's add ran, element by element: one Add per element
    assert type(y) is np.ndarray and y.dtype == object and len(t.calls) == 2
    (warning,) = t.warnings
    assert warning.startswith("y is a numpy array of Variable objects (dtype=object): where an operator "
                              "with a numpy array on its left made it")
    assert "give Variable __array_priority__ = 200 (the book's step 21)" in warning
    with tracer.trace(eng.Function, eng.Variable, warn=False) as t:
        x0, x1 = eng.Variable(np.array(1.0)), eng.Variable(np.array(2.0))
        leaves = np.array([x0, x1], dtype=object)  # a container of leaves: no operator made it
        eng.add(leaves[0], leaves[1])
    assert leaves.dtype == object and t.warnings == ()
    eng.Variable.__array_priority__ = 200  # numpy steps aside: an object array is then the user's own
    with tracer.trace(eng.Function, eng.Variable, warn=False) as t:
        x = eng.Variable(np.array([1.0, 2.0]), name="x")
        both = np.array([eng.exp(x), eng.exp(x)], dtype=object)
    assert both.dtype == object and t.warnings == ()
    eng.Variable.__array_priority__ = "high"  # no number: not ours to judge, and no internal error
    with tracer.trace(eng.Function, eng.Variable, warn=False) as t:
        x = eng.Variable(np.array([1.0, 2.0]), name="x")
        both = np.array([eng.exp(x), eng.exp(x)], dtype=object)
    assert t.warnings == () and len(t.calls) == 2


@pytest.mark.parametrize("lists_split", [False, True])
def test_a_list_from_backward_is_recorded_as_the_engine_took_it(lists_split):
    from tests.tracer.broken.engines import make_engine
    from tracer.diagnose import diagnose
    eng = make_engine(lists_split=lists_split)
    with tracer.trace(eng.Function, eng.Variable) as t:
        x, w = eng.Variable(np.array(2.0), name="x"), eng.Variable(np.array(3.0), name="w")
        eng.ListMul()(x, w).backward()
    (step,) = t.passes[-1].steps
    returned = [g.to_array().tolist() for g in step.grads_out]
    if lists_split:  # one gradient per input
        assert returned == [3.0, 2.0] and w.grad == 2.0
    else:  # the book's `if not isinstance(gxs, tuple)`: x got the whole list, w nothing
        assert returned == [[3.0, 2.0]] and w.grad is None
        (finding,) = [f for f in diagnose(t) if f.kind == "shape-mismatch"]
        assert "backward returned them in a list" in finding.hint and "return gx0, gx1" in finding.hint


def test_a_list_from_backward_with_a_none_first_is_one_gradient_per_input_where_the_engine_splits():
    from tests.tracer.broken.engines import make_engine
    from tracer.diagnose import diagnose
    eng = make_engine(lists_split=True)
    with tracer.trace(eng.Function, eng.Variable) as t:
        x, w = eng.Variable(np.array(2.0), name="x"), eng.Variable(np.array(3.0), name="w")
        mul = eng.ListMul()
        mul.first_none = True
        mul(x, w).backward()
    (step,) = t.passes[-1].steps
    assert step.grads_out[0] is None and step.grads_out[1].to_array().tolist() == 2.0 and w.grad == 2.0
    assert not [f for f in diagnose(t) if f.kind == "shape-mismatch"]  # it said: return a tuple


def test_a_method_the_user_replaces_inside_the_trace_is_kept_and_named():
    original = E.Function.__dict__["__call__"]

    def mine(self, *inputs):
        return original(self, *inputs)

    try:
        with pytest.warns(tracer.TraceWarning) as caught:
            with tracer.trace() as t:
                E.Function.__call__ = mine
                E.exp(E.Variable(np.array(1.0))).backward()
        assert E.Function.__dict__["__call__"] is mine  # it was silently put back
        messages = [str(w.message) for w in caught]
        assert messages[0].startswith("Function.__call__ was replaced while the trace recorded: your "
                                      "version is kept") and t.warnings == tuple(messages)
        assert not any("built before the with block" in m for m in messages)
    finally:
        E.Function.__call__ = original


def test_a_replacement_made_with_functools_wraps_is_kept_and_one_put_back_is_quiet():
    import functools
    import warnings
    original = E.Function.__dict__["__call__"]
    try:
        with pytest.warns(tracer.TraceWarning, match="was replaced while the trace recorded"):
            with tracer.trace():
                inner = E.Function.__call__

                @functools.wraps(inner)  # copies the hook's attributes: it was taken for ours
                def logged(self, *inputs):
                    return inner(self, *inputs)
                E.Function.__call__ = logged
                E.exp(E.Variable(np.array(1.0))).backward()
        assert E.Function.__dict__["__call__"] is logged
    finally:
        E.Function.__call__ = original
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the class ends as before: no warning
        with tracer.trace():
            E.exp(E.Variable(np.array(1.0))).backward()
            E.Function.__call__ = lambda self, *inputs: original(self, *inputs)
            E.Function.__call__ = original  # put back by hand (a finally:)
    assert E.Function.__dict__["__call__"] is original


def test_the_engines_accumulation_between_steps_belongs_to_the_step_it_adds_up():
    with tracer.trace(keep="first") as t:
        x = E.Variable(np.array(2.0), name="x")
        y = x ** 4 - 2 * x ** 2
        y.backward(create_graph=True)  # x.grad = x.grad + gx: an Add made after a step returned
        gx = x.grad
        x.cleargrad()
        gx.backward()
    (record,) = t.passes
    adds = [c for c in t.calls.values() if c.op == "Add" and c.in_step is not None]
    assert len(adds) == 1 and t.name_of(adds[0].outputs[0]) == "gx"
    step = record.steps[adds[0].in_step[1] - 1]
    assert adds[0].id in step.inner_calls  # it was in no step: not drawn, and pruned with keep="first"


def test_one_function_class_for_every_op_names_each_call_by_its_name():
    """Closure-style ops (``Function("square", f, df)``): the op is the instance's name; a
    subclass keeps its class name even when its instances carry a name."""

    class Fn:
        def __init__(self, name, f, df):
            self.name, self.f, self.df = name, f, df

        def __call__(self, x):
            y = listpop.Variable(self.f(x.data))
            y.set_creator(self)
            self.inputs, self.outputs = [x], [y]
            return y

        def forward(self, x):
            return self.f(x)

        def backward(self, gy):
            return self.df(self.inputs[0].data) * gy

    class Named(Fn):
        pass

    with tracer.trace(function_cls=Fn, variable_cls=listpop.Variable) as t:
        x = listpop.Variable(np.array(0.5))
        y = Fn("square", np.square, lambda v: 2 * v)(Named("inner", np.exp, np.exp)(x))
        y.backward()
    assert [c.op for c in t.calls.values()] == ["Named", "square"]
    assert t.passes[0].steps[0].call == 2


def test_plain_arrays_a_call_wrapped_keep_their_place_and_the_scripts_name():
    """Under no_grad the book's Function keeps no inputs: an array or number passed to it is an
    implicit leaf (MatMul lost its x). With grad on, the Variable the engine wrapped around the
    script's array takes the array's name."""
    import tracer.dot
    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        batch = np.array([1.0, 2.0])
        w = fullcore.Variable(np.array([3.0, 4.0]), name="w")
        y = fullcore.Mul()(batch, w)
        y.backward()
        with fullcore.using_config("enable_backprop", False):  # after the pass: it is not pruned
            z = fullcore.Mul()(batch, w)  # noqa: F841 - kept alive, as an evaluation's result
    grad_call, no_grad_call = [c for c in t.calls.values() if c.in_step is None]
    assert len(no_grad_call.inputs) == 2 and len(grad_call.inputs) == 2
    names = [t.name_of(v) for v in (*no_grad_call.inputs, *grad_call.inputs)]
    assert names == ["batch", "w", "batch", "w"]
    plain, wrapped = no_grad_call.inputs[0], grad_call.inputs[0]
    assert t.variables[plain].kind == "ndarray" and t.variables[wrapped].kind == "Variable"
    assert t.variables[plain].implicit and t.variables[wrapped].implicit
    # a named data array is drawn as a variable (name, shape, gradient), not a grey constant
    dot = tracer.dot.to_dot(t).source
    assert f'v{wrapped} [id=v{wrapped} class="var value"' in dot and "<B>batch</B>" in dot


def test_an_array_the_engine_wraps_in_two_calls_is_named_in_both_and_a_subclass_keeps_its_op_name():
    class Named(fullcore.Function):
        def __init__(self):
            self.name = "fc1"  # a debugging name on an op subclass that has its own __call__

        def __call__(self, *inputs):
            return super().__call__(*inputs)

        def forward(self, x0, x1):
            return x0 * x1

        def backward(self, gy):
            x0, x1 = self.inputs
            return gy * x1, gy * x0

    with tracer.trace(fullcore.Function, fullcore.Variable) as t:
        batch = np.array([1.0, 2.0])
        w = fullcore.Variable(np.array([3.0, 4.0]), name="w")
        y = fullcore.Add()(Named()(batch, w), fullcore.Mul()(batch, w))  # batch wrapped twice
        y.backward()
    wrapped = [c.inputs[0] for c in t.calls.values() if c.op in ("Named", "Mul") and c.in_step is None]
    assert len(set(wrapped)) == 2 and [t.name_of(v) for v in wrapped] == ["batch", "batch"]


class _Split(E.Function):
    def forward(self, x):
        return x[:1].copy(), x[1:].copy()

    def backward(self, g0, g1):
        return np.concatenate([np.zeros(1) if g0 is None else g0, g1])


def test_a_step_of_a_function_whose_first_output_the_script_dropped_keeps_its_call():
    """``_, q = split(w)``: the step is found through the output still alive (it was None)."""
    with tracer.trace() as t:
        w = E.Variable(np.array([1.0, 2.0, 3.0]), name="w")
        _, q = _Split()(w)
        del _
        E.sum(q * q).backward()
    p = t.select_pass()
    assert ops_of_steps(t) == ["Sum", "Mul", "_Split"]
    assert p.steps[-1].grads_out[0].values == (0.0, 4.0, 6.0)
    assert diagnose(t) == ()


def test_a_trace_object_records_one_block_only():
    """Entering it again would have added the second block's records to the first block's Trace."""
    recording = tracer.trace()
    with recording as first:
        E.exp(E.Variable(np.array(1.0))).backward()
    with pytest.raises(tracer.TraceActiveError, match="has already recorded a with block"):
        with recording:
            pass
    assert [c.op for c in first.calls.values()] == ["Exp"] and first.pass_count == 1


def test_a_trace_made_in_one_thread_records_the_thread_that_enters_it():
    recording = tracer.trace(warn=False)
    results = []

    def work():
        with recording as t:
            E.square(E.Variable(np.array(3.0))).backward()
        results.append(t)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    (t,) = results
    assert [c.op for c in t.calls.values()] == ["Square"] and t.calls_elsewhere == 0


class _Half(recursive.Function):
    def forward(self, x):
        return x * 0.5

    def backward(self, gy):
        return gy * 0.5


def test_a_recursive_backward_reaches_as_deep_traced_as_untraced():
    """The hooks add a frame to each level of the book's step-7 recursive backward: a chain of
    600 failed traced (RecursionError) and worked untraced."""
    depth = sys.getrecursionlimit() - 100
    before = sys.getrecursionlimit()
    with tracer.trace(recursive.Function, recursive.Variable) as t:
        x = recursive.Variable(np.array(1.0))
        y = x
        for _ in range(depth):
            y = _Half()(y)
        y.grad = np.array(1.0)
        y.backward()
    assert len(t.select_pass().steps) == depth and x.grad == 0.5 ** depth
    assert sys.getrecursionlimit() == before


class _SlotVariable:
    """A student's speed-up: __slots__ without '__weakref__'."""

    __slots__ = ("data", "grad", "creator")

    def __init__(self, data):
        self.data, self.grad, self.creator = data, None, None

    def backward(self):
        self.grad = np.ones_like(self.data)
        f = self.creator
        f.inputs[0].grad = f.backward(self.grad)


class _SlotFunction:
    def __call__(self, x):
        y = _SlotVariable(self.forward(x.data))
        y.creator, self.inputs, self.outputs = self, (x,), (y,)
        return y

    def forward(self, x):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError


class _SlotSquare(_SlotFunction):
    def forward(self, x):
        return x ** 2

    def backward(self, gy):
        return 2 * self.inputs[0].data * gy


def test_variables_that_allow_no_weak_reference_are_named_in_a_warning_after_a_loop():
    """Every epoch's graph stays alive while the trace records: memory grows whatever keep= says."""
    with pytest.warns(tracer.TraceWarning, match="_SlotVariable objects allow no weak reference"):
        with tracer.trace(_SlotFunction, _SlotVariable) as t:
            x = _SlotVariable(np.array(2.0))
            for _ in range(2):
                _SlotSquare()(x).backward()
    assert t.pass_count == 2
    (warning,) = [w for w in t.warnings if "weak reference" in w]
    assert warning.endswith("add '__weakref__' to the __slots__ of _SlotVariable")


def test_a_recursion_limit_the_user_raised_is_left_as_it_is():
    """Doubling 30000 let a too-deep recursive backward overflow the C stack (a segfault, not a
    RecursionError): only Python's default is doubled."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(3000)
    try:
        with tracer.trace(warn=False):
            inside = sys.getrecursionlimit()
        assert inside == 3000 and sys.getrecursionlimit() == 3000
    finally:
        sys.setrecursionlimit(before)


def test_record_ids_count_from_1_as_the_records_say():
    """PassRecord's docstring said pass ids count from 0: the first pass is 1, as every id."""
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array(2.0))
        for _ in range(2):
            x.cleargrad()
            E.square(x).backward()
    assert [p.id for p in t.passes] == [1, 2]
    assert min(t.variables) == 1 and min(t.calls) == 1 and t.calls[1].index == 1
    assert [s.index for s in t.passes[0].steps] == [1]
    assert "from 1" in tracer.PassRecord.__doc__ and "from 1" in tracer.CallRecord.__doc__
    assert "``index`` from 1" in tracer.StepRecord.__doc__
    for record in (tracer.PassRecord, tracer.CallRecord, tracer.StepRecord, tracer.VariableRecord,
                   tracer.ErrorRecord, tracer.Finding):
        assert "from 0" not in record.__doc__, record
