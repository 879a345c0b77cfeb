"""tracer.gradview: what each gradient field shows after every backward step."""

import numpy as np
import pytest

import engine as E
import tracer
from tests.tracer.engines import arrays_in_inputs, listpop
from tracer.gradview import PassIndex


def fields(t, pass_record, name: str) -> list[tuple[str, float | None]]:
    """(state, value) of the variable named ``name`` before step 1, after step 1, 2, ..."""
    var = next(v.id for v in t.variables.values() if v.name == name)
    index = PassIndex(t, pass_record)
    views = [index.at_step(k)[var] for k in range(len(pass_record.steps) + 1)]
    return [(v.state, v.grad.values[0] if v.grad is not None else None) for v in views]


def branching(**backward_options):
    """a = x², y = a² + a² on the list-pop engine (no generations: Square(x) runs too early)."""
    with tracer.trace(listpop.Function, listpop.Variable) as t:
        x = listpop.Variable(np.array(2.0), name="x")
        a = listpop.square(x)
        a.name = "a"
        listpop.add(listpop.square(a), listpop.square(a)).backward(**backward_options)
    return t


def test_a_gradient_cleared_by_a_backward_run_too_early_shows_cleared_until_it_is_set_again():
    t = branching(retain_grad=False)  # Square(x) runs at steps 3 and 5
    p = t.select_pass()
    assert [t.calls[s.call].op for s in p.steps] == ["Add", "Square", "Square", "Square", "Square"]
    assert fields(t, p, "a") == [("pending", None), ("pending", None), ("value", 8.0),
                                 ("cleared", 8.0), ("value", 8.0), ("cleared", 8.0)]  # 3 showed a live 8


def test_a_gradient_left_from_the_pass_before_shows_from_the_start():
    with tracer.trace(keep="all") as t:
        x = E.Variable(np.array(2.0), name="x")
        for _ in range(2):  # no x.cleargrad() between the passes
            loss = E.square(x - 3.0)
            loss.backward()
    second = t.select_pass(2)
    assert fields(t, second, "x") == [("leftover", -2.0), ("leftover", -2.0), ("value", -4.0)]
    assert "-2 (left over)" in tracer.to_dot(t, which=2, step=0).source
    assert fields(t, t.select_pass(1), "x")[0] == ("pending", None)
    # the sum is not shown as this pass's gradient (-4 after Sub passed on -2: the chain rule
    # on the slide would not add up)
    x = next(v.id for v in t.variables.values() if v.name == "x")
    assert PassIndex(t, second).final(x).leftover.values == (-2.0,)
    assert PassIndex(t, second).at_step(2)[x].leftover.values == (-2.0,)
    assert "-4 (incl. -2 left over)" in tracer.to_dot(t, which=2).source
    assert "left over" not in tracer.to_dot(t, which=1).source


def test_an_engine_that_overwrites_gradients_is_not_shown_clearing_them():
    t = branching(overwrite=True)  # Square(x) runs before a's last gradient arrives
    p = t.select_pass()
    states = [state for state, _ in fields(t, p, "a")]
    assert "cleared" not in states and states[-1] == "value"  # it was shown cleared after step 3


def test_data_the_engine_wrapped_as_a_constant_is_not_stored_not_cleared():
    """mean_squared_error(y, y_pred) with y a plain array: MeanSquaredError.backward returns a
    gradient for it, the engine keeps none (a Constant). It was drawn "(cleared)", even with
    retain_grad=True, as if data had a gradient that was thrown away."""
    with tracer.trace() as t:
        y = np.array([1.0, 2.0])
        y_pred = E.Variable(np.array([0.5, 1.0]), name="y_pred")
        E.mean_squared_error(y, y_pred).backward(retain_grad=True)
    p = t.select_pass()
    data = next(v.id for v in t.variables.values() if v.kind == "Constant")
    assert t.grad_state(p, data) == "not-stored"
    assert t.variables[data].name == "y"
    views = [PassIndex(t, p).at_step(k)[data] for k in range(len(p.steps) + 1)]
    assert [(v.state, v.grad) for v in views] == [("pending", None), ("not-stored", None)]
    dot = t.to_dot(legend=True).source
    assert "None (not stored)" in dot and "(cleared)" not in dot
    assert ".grad kept none (constant, or backward raised)" in dot
    assert t.grad_state(p, next(v.id for v in t.variables.values() if v.name == "y_pred")) == "value"


def test_a_gradient_a_pass_that_raised_never_stored_is_not_said_cleared():
    """The engine raised before storing b's gradient: b's .grad never held one. It was listed and
    drawn as "cleared" (a gradient the engine had and dropped after use)."""
    Variable, Function, Square = arrays_in_inputs.Variable, arrays_in_inputs.Function, arrays_in_inputs.Square
    with pytest.warns(tracer.TraceWarning, match="kept numpy arrays"), tracer.trace(Function, Variable) as t:
        x = Variable(np.array(0.5), name="x")
        b = Square()(x)
        b.name = "b"
        y = Square()(b)
        y.name = "y"
        try:
            y.backward()
        except AttributeError:
            pass
    p = t.select_pass()
    assert p.error is not None and len(p.steps) == 1
    ids = {v.name: v.id for v in t.variables.values()}
    assert t.grad_state(p, ids["b"]) == "not-stored"
    assert t.grad_state(p, ids["y"]) == "value"  # the seed is still there
    assert t.grad_state(p, ids["x"]) == "not-computed"
    dot = t.to_dot(legend=True).source
    assert "(cleared)" not in dot and "None (not stored)" in dot
    assert "(cleared)" not in t.to_dot(step=1).source


def test_a_non_scalar_root_whose_backward_raised_at_once_is_not_said_cleared():
    """backward() on a non-scalar root raised before any gradient existed: y was "cleared"."""
    with tracer.trace() as t:
        x = E.Variable(np.array([1.0, 2.0]), name="x")
        y = E.square(x)
        y.name = "y"
        try:
            y.backward()
        except E.BackwardError:
            pass
    p = t.select_pass()
    y_id = next(v.id for v in t.variables.values() if v.name == "y")
    assert p.error is not None and t.grad_state(p, y_id) == "not-computed"
    assert "(cleared)" not in t.to_dot().source


def test_a_recorded_leaf_that_is_no_constant_is_cleared_not_not_stored():
    """An intermediate built before the with block is recorded as a leaf; the engine cleared its
    gradient: it is no constant ("not stored" said so, and hid the gradient)."""
    x = E.Variable(np.array(2.0), name="x")
    a = E.square(x)
    a.name = "a"
    with tracer.trace() as t:
        E.exp(a).backward()
    p = t.select_pass()
    var = next(v.id for v in t.variables.values() if v.name == "a")
    assert t.variables[var].creator is None and t.grad_state(p, var) == "cleared"
    assert PassIndex(t, p).final(var).grad is not None


def test_a_gradient_that_replaced_the_leftover_is_not_said_to_include_it():
    """An engine writing x.grad = gx replaced what the pass before left: '6 (incl. 6 left over)'
    said the opposite of check's overwritten-gradient."""
    with tracer.trace(listpop.Function, listpop.Variable, keep="all") as t:
        x = listpop.Variable(np.array(3.0), name="x")
        for _ in range(2):  # no cleargrad
            listpop.square(x).backward(overwrite=True)
    second = t.select_pass(2)
    var = next(v.id for v in t.variables.values() if v.name == "x")
    assert second.grads[var].item() == 6.0 and PassIndex(t, second).final(var).leftover is None
    assert "left over)" not in tracer.to_dot(t, which=2).source
