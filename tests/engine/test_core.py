"""Variable, Function, Config and the backward pass."""

import gc
import math
import weakref

import numpy as np
import pytest

import engine as E
from engine import Variable

SEED_GRAD = 3.297442541400256


# -- Variable ------------------------------------------------------------------------
def test_variable_attributes_and_numpy_like_properties():
    x = Variable(np.arange(6.0).reshape(2, 3), name="x")
    assert x.name == "x" and x.grad is None and x.creator is None and x.generation == 0
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and x.dtype == np.float64
    assert len(x) == 2
    assert Variable(None).data is None


@pytest.mark.parametrize("bad", [1.0, 3, [1.0, 2.0], np.float64(2.0), "a"])
def test_variable_rejects_non_ndarray_data_with_the_type_and_the_fix(bad):
    with pytest.raises(TypeError, match=r"numpy\.ndarray or None, got .*wrap it with np\.array"):
        Variable(bad)
    with pytest.raises(E.DataTypeError, match=type(bad).__name__):
        Variable(bad)


def test_repr_is_numpy_like_and_indents_rows():
    assert repr(Variable(np.array(1.5))) == "variable(1.5)"
    assert repr(Variable(None)) == "variable(None)"
    assert repr(Variable(np.array([[1, 2], [3, 4]]))) == "variable([[1 2]\n          [3 4]])"


def test_variable_is_weakrefable_and_slotted():
    x = Variable(np.array(1.0))
    assert weakref.ref(x)() is x
    with pytest.raises(AttributeError):
        x.not_an_attribute = 1


def test_cleargrad_and_parameter():
    p = E.Parameter(np.array([1.0, 2.0]), name="w")
    assert isinstance(p, Variable) and p.name == "w"
    y = E.sum(p * p)
    assert type(y) is Variable
    y.backward()
    np.testing.assert_array_equal(p.grad.data, [2.0, 4.0])
    p.cleargrad()
    assert p.grad is None


def test_as_array_and_as_variable():
    a = np.array([1.0])
    assert E.as_array(a) is a
    assert type(E.as_array(2.0)) is np.ndarray and E.as_array(2.0).shape == ()
    assert type(E.as_array(np.float32(2.0))) is np.ndarray
    v = Variable(a)
    assert E.as_variable(v) is v
    assert E.as_variable(3).data == 3
    with pytest.raises(TypeError, match="numeric"):
        E.as_array("abc")
    with pytest.raises(TypeError, match="numeric"):
        E.square(None)


# -- Function ------------------------------------------------------------------------
def test_function_records_inputs_outputs_and_generation():
    x = Variable(np.array(2.0))
    f = E.Square()
    y = f(x)
    assert type(f.inputs) is list and f.inputs[0] is x
    assert type(f.outputs) is list and isinstance(f.outputs[0], weakref.ref)
    assert f.outputs[0]() is y
    assert y.creator is f and f.generation == 0 and y.generation == 1
    z = E.add(y, x)
    assert z.creator.generation == 1 and z.generation == 2


def test_function_converts_numbers_and_arrays_to_variables():
    f = E.Add()
    y = f(np.array(1.0), 2.0)
    assert all(isinstance(v, Variable) for v in f.inputs)
    assert y.data == 3.0 and type(y.data) is np.ndarray


def test_plain_inputs_become_constants_without_gradients():
    W = Variable(np.ones((3, 2)))
    f = E.Linear()
    y = f(np.ones((4, 3)), W)
    assert type(f.inputs[0]) is E.Constant and type(f.inputs[1]) is Variable
    E.sum(y).backward()
    assert f.inputs[0].grad is None  # no gradient for the data batch (not even computed)
    np.testing.assert_array_equal(W.grad.data, np.full((3, 2), 4.0))
    x = Variable(np.array(3.0))
    m = E.Mul()
    y = m(x, 2.0)
    y.backward()
    assert type(m.inputs[1]) is E.Constant and m.inputs[1].grad is None
    assert x.grad.data == 2.0
    assert isinstance(E.Constant(np.ones(1)), Variable)


def test_numpy_scalars_from_forward_become_ndarrays():
    y = E.sum(Variable(np.ones(3)))
    assert type(y.data) is np.ndarray and y.shape == ()
    assert type((Variable(np.array(2.0)) * 3).data) is np.ndarray


def test_no_grad_links_nothing():
    x = Variable(np.array(2.0))
    with E.no_grad():
        f = E.Square()
        y = f(x)
    assert y.creator is None and y.generation == 0
    assert not hasattr(f, "inputs") and not hasattr(f, "outputs")
    assert E.Config.enable_backprop is True
    with E.using_config("enable_backprop", False):
        assert E.Config.enable_backprop is False
    with pytest.raises(AttributeError, match="no setting"):
        with E.using_config("enable_backprob", False):
            pass


def test_config_restored_after_an_exception():
    with pytest.raises(RuntimeError):
        with E.no_grad(), E.test_mode():
            raise RuntimeError
    assert E.Config.enable_backprop is True and E.Config.train is True


def test_config_is_per_thread_so_a_backward_elsewhere_does_not_stop_this_forward():
    import threading
    inside, go_on, seen = threading.Event(), threading.Event(), []

    def other():
        with E.no_grad():  # as a backward pass in another thread turns it off while it runs
            inside.set()
            go_on.wait(5)
        seen.append(E.Config.enable_backprop)
    worker = threading.Thread(target=other)
    worker.start()
    inside.wait(5)
    y = E.square(Variable(np.array(2.0)))  # this thread still builds its graph
    go_on.set()
    worker.join()
    assert y.creator is not None and E.Config.enable_backprop is True and seen == [True]


class TwoOut(E.Function):
    """Splits x into (2x, 3x)."""

    def forward(self, x):
        return 2 * x, 3 * x

    def backward(self, g0, g1):
        return 2 * g0 + 3 * g1


def test_multiple_outputs_and_an_unused_one():
    x = Variable(np.array([1.0, 2.0]))
    a, b = TwoOut()(x)
    assert a.generation == b.generation == 1
    E.sum(a * b).backward()  # d/dx (6x^2) = 12x
    np.testing.assert_allclose(x.grad.data, [12.0, 24.0])
    x.cleargrad()
    a, b = TwoOut()(x)
    E.sum(b).backward()  # a has no gradient: zeros are passed for it
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])


def test_backward_with_a_dead_output_passes_none():
    class Split(E.Function):
        def forward(self, x):
            return x[:1], x[1:]

        def backward(self, g0, g1):
            assert g1 is None  # its output Variable no longer exists
            return np.concatenate([g0, [0.0]])

    x = Variable(np.array([1.0, 2.0]))
    a = Split()(x)[0]
    E.sum(a).backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 0.0])


# -- backward: the book's examples -----------------------------------------------------
def test_seed_example():
    x = Variable(np.array(0.5))
    y = E.square(E.exp(E.square(x)))
    y.backward()
    assert abs(x.grad.data - SEED_GRAD) <= 1e-12
    assert isinstance(x.grad, Variable) and x.grad.creator is None


def test_same_variable_twice():
    x = Variable(np.array(3.0))
    E.add(x, x).backward()
    assert x.grad.data == 2.0
    x.cleargrad()
    E.add(E.add(x, x), x).backward()
    assert x.grad.data == 3.0


def test_branching_needs_generation_order():
    x = Variable(np.array(2.0))
    a = E.square(x)
    y = E.add(E.square(a), E.square(a))
    y.backward()
    assert y.data == 32.0 and x.grad.data == 64.0


def test_backward_order_follows_generations_and_the_books_tie_break():
    order = []
    originals = {}
    for cls in (E.Square, E.Add, E.Exp):
        originals[cls] = cls.__dict__["backward"]

        def hooked(self, *gys, _orig=originals[cls]):
            order.append(type(self).__name__)
            return _orig(self, *gys)
        cls.backward = hooked
    try:
        x = Variable(np.array(1.0))
        a = E.square(x)
        y = E.add(E.exp(a), E.square(a))
        y.backward()
    finally:
        for cls, fn in originals.items():
            cls.backward = fn
    # Exp(a) and Square(a) share generation 2: like the book's sorted list, the one found
    # last (Square, the second input of Add) runs first.
    assert order == ["Add", "Square", "Exp", "Square"]
    assert x.grad.data == pytest.approx(2 * (math.e + 2))


def test_an_observer_sees_each_step_and_the_running_sums():
    """A tracer wraps each Function subclass's backward; after each step x.grad is current."""
    seen = []
    orig = E.Mul.__dict__["backward"]
    x = Variable(np.array(2.0))

    def hooked(self, gy):
        seen.append((type(gy), None if x.grad is None else float(x.grad.data)))
        return orig(self, gy)
    E.Mul.backward = hooked
    try:
        y = x * x * x  # two Mul steps, both feeding x
        y.backward()
    finally:
        E.Mul.backward = orig
    assert x.grad.data == 12.0
    assert seen[0] == (np.ndarray, None)  # first step: gradients arrive as ndarrays
    assert seen[1] == (np.ndarray, 4.0)   # x.grad already holds the first step's part


def test_gradients_accumulate_across_backward_calls():
    x = Variable(np.array(3.0))
    y = E.square(x)
    y.backward()
    y = E.square(x)
    y.backward()
    assert x.grad.data == 12.0


def test_retain_grad():
    x = Variable(np.array(1.0))
    a = E.square(x)
    b = E.exp(a)
    y = E.add(b, b)
    y.backward()
    assert a.grad is None and b.grad is None and y.grad is None
    assert x.grad is not None
    x.cleargrad()
    a = E.square(x)
    b = E.exp(a)
    y = E.add(b, b)
    y.backward(retain_grad=True)
    assert b.grad.data == 2.0 and y.grad.data == 1.0
    assert a.grad.data == pytest.approx(2 * math.e)


@pytest.mark.parametrize("create_graph", [False, True])
def test_leaf_grads_do_not_alias_each_other(create_graph):
    x0, x1 = Variable(np.ones(3)), Variable(np.ones(3))
    E.sum(x0 + x1).backward(create_graph=create_graph)
    assert x0.grad is not x1.grad
    x0.grad.data *= 5  # an in-place update (gradient clipping, weight decay) ...
    np.testing.assert_array_equal(x1.grad.data, np.ones(3))  # ... touches only x0


@pytest.mark.parametrize("create_graph", [False, True])
def test_leaf_grads_do_not_alias_the_seed_or_an_intermediate_grad(create_graph):
    x0, x1 = Variable(np.ones(3)), Variable(np.ones(3))
    h = E.exp(x1)
    y = x0 + h
    seed = Variable(np.ones(3))
    y.grad = seed
    y.backward(retain_grad=True, create_graph=create_graph)
    x0.grad.data *= 0.5
    np.testing.assert_array_equal(seed.data, np.ones(3))
    np.testing.assert_array_equal(h.grad.data, np.ones(3))


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("reduce,grad", [
    (E.sum, 1.0),
    (lambda v: E.sum(E.broadcast_to(v, (2, 3))), 2.0),
    (lambda v: E.sum(E.reshape(v, (3, 1)).T), 1.0),
], ids=["sum", "broadcast_to", "reshape-transpose"])
def test_leaf_grads_are_writeable_arrays_of_their_own(reduce, grad, create_graph):
    x = Variable(np.ones(3))
    reduce(x).backward(create_graph=create_graph)
    g = x.grad.data
    assert g.flags.writeable and g.base is None  # not a (read-only broadcast) view
    g *= 0.5  # raised "output array is read-only" under create_graph
    np.testing.assert_array_equal(x.grad.data, np.full(3, grad * 0.5))


def test_a_leaf_grad_made_under_create_graph_is_still_on_the_graph():
    x0, x1 = Variable(np.ones(3)), Variable(np.ones(3))
    E.sum(x0 + x1).backward(create_graph=True)
    assert isinstance(x0.grad.creator, E.Copy) and isinstance(x1.grad.creator, E.Copy)
    x = Variable(np.array(2.0))
    E.sin(x).backward(create_graph=True)
    assert not isinstance(x.grad.creator, E.Copy)  # a fresh gradient of its own is not copied


def test_root_gradient_defaults_to_ones_and_a_preset_one_is_used():
    x = Variable(np.array([[2.0]]))
    y = E.square(x)
    y.backward()
    assert x.grad.data.shape == (1, 1) and x.grad.data[0, 0] == 4.0
    x = Variable(np.array([1.0, 2.0]))
    y = E.square(x)
    y.grad = Variable(np.array([1.0, 10.0]))
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 40.0])
    x.cleargrad()
    y = E.square(x)
    y.grad = np.array([1.0, 1.0])  # an ndarray seed is wrapped
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])


def test_module_level_backward_is_the_method():
    x = Variable(np.array(2.0))
    E.backward(E.square(x), retain_grad=True)
    assert x.grad.data == 4.0


def test_backward_on_a_leaf_sets_its_grad():
    x = Variable(np.array(5.0))
    x.backward()
    assert x.grad.data == 1.0


# -- bad input -------------------------------------------------------------------------
def test_non_scalar_root_without_gradient_is_a_clear_error():
    y = E.square(Variable(np.ones((2, 3))))
    with pytest.raises(RuntimeError, match=r"non-scalar.*\(2, 3\).*sum\(\)\.backward\(\)"):
        y.backward()
    with pytest.raises(E.BackwardError, match="y.grad"):
        y.backward()


def test_seed_of_the_wrong_shape_is_an_error():
    y = E.square(Variable(np.ones(3)))
    y.grad = Variable(np.ones(2))
    with pytest.raises(E.BackwardError, match=r"\(2,\).*\(3,\)"):
        y.backward()


def test_backward_without_data_is_an_error():
    with pytest.raises(E.BackwardError, match="None"):
        Variable(None).backward()


def test_mismatched_matmul_shapes_name_both():
    a, b = Variable(np.ones((2, 3))), Variable(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        E.matmul(a, b)
    with pytest.raises(E.ShapeError, match=r"\(2, 3\) and \(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match=r"linear: shapes \(2, 3\) and \(4, 5\)"):
        E.linear(a, b)


def test_a_backward_returning_the_wrong_number_or_shape_is_named():
    class Bad(E.Function):
        def forward(self, x0, x1):
            return x0 + x1

        def backward(self, gy):
            return gy

    y = Bad()(np.array(1.0), np.array(2.0))
    with pytest.raises(E.BackwardError, match="Bad.backward returned 1 gradient.*2 input"):
        y.backward()

    class Wrong(E.Function):
        def forward(self, x):
            return x.sum()

        def backward(self, gy):
            return gy

    y = Wrong()(np.ones(3))
    with pytest.raises(E.BackwardError, match=r"shape \(\) for an input of shape \(3,\)"):
        y.backward()


def test_a_forward_returning_a_variable_is_named():
    class Leaky(E.Function):
        def forward(self, x):
            return Variable(x)

    with pytest.raises(TypeError, match="Leaky.forward returned a Variable"):
        Leaky()(np.ones(2))


def test_pow_with_a_variable_exponent_says_how():
    x = Variable(np.array(2.0))
    with pytest.raises(TypeError, match=r"exp\(c \* log\(x\)\)"):
        x ** x


def test_base_function_methods_are_abstract():
    with pytest.raises(NotImplementedError, match="Function does not define forward"):
        E.Function()(np.ones(1))


# -- scale ---------------------------------------------------------------------------
def test_long_chain_runs_without_recursion_error():
    n = 100_000
    x = Variable(np.array(0.5))
    y = x
    for _ in range(n):
        y = E.neg(y)
    y.backward()
    assert x.grad.data == 1.0
    del y  # freeing a 100k-deep graph must not overflow the C stack either
    gc.collect()


def test_a_wide_graph_queues_each_function_once():
    calls = []
    orig = E.Add.__dict__["backward"]

    def hooked(self, gy):
        calls.append(self)
        return orig(self, gy)
    E.Add.backward = hooked
    try:
        xs = [Variable(np.array(float(i))) for i in range(64)]
        level = xs
        while len(level) > 1:
            level = [E.add(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        level[0].backward()
    finally:
        E.Add.backward = orig
    assert len(calls) == 63 and len(set(map(id, calls))) == 63
    assert all(x.grad.data == 1.0 for x in xs)
