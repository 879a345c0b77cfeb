"""Shared helpers for the engine tests: gradient checks of first and second order."""

import numpy as np
import pytest

import engine as E
from engine.numerical import gradient_check


def _grads(f, arrays, weights, create_graph):
    """Gradients of sum(f(*xs) * w) for each input, plus the input Variables."""
    xs = [E.Variable(a.copy()) for a in arrays]
    y = f(*xs)
    y.grad = E.Variable(weights.astype(y.dtype))
    y.backward(create_graph=create_graph)
    return xs


def second_order_check(f, *arrays, seed=1, eps=1e-4, rtol=1e-4, atol=1e-5):
    """Check the create_graph path: the gradient graph gives the same first gradients, and
    differentiating <grad, v> again matches central differences of the plain gradient."""
    arrays = [np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f"
              else np.asarray(a) for a in arrays]
    rng = np.random.default_rng(seed)
    with E.no_grad():
        out_shape = f(*[E.Variable(a) for a in arrays]).shape
    w = rng.standard_normal(out_shape)
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    vs = {i: rng.standard_normal(arrays[i].shape) for i in floats}

    plain = _grads(f, arrays, w, False)
    graph = _grads(f, arrays, w, True)
    for i in floats:
        np.testing.assert_allclose(graph[i].grad.data, plain[i].grad.data, rtol=1e-12, atol=1e-12)

    # h(x) = sum_i <dL/dx_i, v_i>; its gradient through the recorded gradient graph...
    h = None
    for i in floats:
        term = E.sum(graph[i].grad * vs[i])
        h = term if h is None else h + term
    for x in graph:
        x.cleargrad()
    h.backward()

    # ...against central differences of h computed with plain (ndarray) backward passes.
    def h_value(arrs):
        xs = _grads(f, arrs, w, False)
        return sum(float((xs[i].grad.data * vs[i]).sum()) for i in floats)

    for j in floats:
        num = np.zeros_like(arrays[j])
        for idx in np.ndindex(*arrays[j].shape):
            up = [a.copy() for a in arrays]
            down = [a.copy() for a in arrays]
            up[j][idx] += eps
            down[j][idx] -= eps
            num[idx] = (h_value(up) - h_value(down)) / (2 * eps)
        ana = np.zeros_like(num) if graph[j].grad is None else graph[j].grad.data
        np.testing.assert_allclose(ana, num, rtol=rtol, atol=atol,
                                   err_msg=f"second-order gradient of input {j}")


@pytest.fixture
def check_grad():
    """Assert that the engine's gradients of f(*inputs) match central differences."""
    def check(f, *inputs, **kw):
        assert gradient_check(f, *inputs, raise_on_failure=True, **kw)
    return check


@pytest.fixture
def check_second_order():
    """Assert the create_graph path of f matches plain gradients and their derivatives."""
    return second_order_check


@pytest.fixture
def rng():
    """A seeded random generator (tests stay deterministic)."""
    return np.random.default_rng(12345)
