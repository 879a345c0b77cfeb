"""Central-difference derivatives and a gradient check against the engine's backward."""

import numpy as np

from .core import Variable, as_array, no_grad
from .errors import GradientCheckError

__all__ = ["numerical_diff", "numerical_grad", "gradient_check"]


def _data(y):
    """The ndarray inside a Variable (or the value itself as an array)."""
    return y.data if isinstance(y, Variable) else np.asarray(y)


def _float_copy(v):
    """A float64 copy of a Variable's data or an array-like (ints stay as they are)."""
    a = as_array(v.data if isinstance(v, Variable) else v)
    if a.dtype.kind in "fc":
        return a.astype(np.float64, copy=True)
    return a.copy()


def numerical_diff(f, x, eps=1e-4):
    """(f(x + eps) - f(x - eps)) / (2 eps) for a function of one Variable; returns an ndarray.

    ``x`` may be a Variable, an ndarray or a number; the same eps shifts every element, so for
    an array this is the derivative along the all-ones direction.
    """
    a = _float_copy(x)
    with no_grad():
        y0 = _data(f(Variable(np.asarray(a - eps))))
        y1 = _data(f(Variable(np.asarray(a + eps))))
    return (y1 - y0) / (2 * eps)


def numerical_grad(f, x, *args, eps=1e-4, **kwargs):
    """Gradient of ``sum(f(x, *args, **kwargs))`` with respect to each element of ``x``.

    ``x`` is an ndarray (a Variable's data is used); ``f`` gets it as an ndarray, perturbed one
    element at a time by +-eps. Returns an ndarray shaped like ``x``.
    """
    x = _float_copy(x)
    grad = np.zeros_like(x)
    with no_grad():
        for idx in np.ndindex(*x.shape):
            old = x[idx]
            x[idx] = old + eps
            y1 = _data(f(x, *args, **kwargs)).sum()
            x[idx] = old - eps
            y0 = _data(f(x, *args, **kwargs)).sum()
            x[idx] = old
            grad[idx] = (y1 - y0) / (2 * eps)
    return grad


def _weighted_total(ys, weights):
    """sum over outputs of sum(y * w), as a float."""
    return float(np.sum([(_data(y) * w).sum() for y, w in zip(ys, weights)]))


def _as_list(ys):
    """f's result as a list of outputs."""
    return list(ys) if isinstance(ys, (list, tuple)) else [ys]


def gradient_check(f, *inputs, eps=1e-4, rtol=1e-4, atol=1e-5, seed=0, raise_on_failure=False):
    """Compare the engine's gradients of ``f(*inputs)`` with central differences.

    Every output is weighted by a fixed random array (so that e.g. softmax, whose plain sum
    is constant, is still checked); floating inputs are checked, integer ones (labels) are
    passed through. Inputs are copied to float64. Returns True when every gradient matches
    within ``rtol`` / ``atol``; with ``raise_on_failure`` a mismatch raises GradientCheckError
    describing the worst element of each failing input instead of returning False.
    """
    arrays = [_float_copy(v) for v in inputs]
    xs = [Variable(a) for a in arrays]
    ys = _as_list(f(*xs))
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(_data(y).shape) for y in ys]
    for y, w in zip(ys, weights):
        y.grad = Variable(np.asarray(w, dtype=_data(y).dtype))
        y.backward()

    problems = []
    for i, (a, x) in enumerate(zip(arrays, xs)):
        if a.dtype.kind != "f":
            continue
        num = np.zeros_like(a)
        with no_grad():
            for idx in np.ndindex(*a.shape):
                old = a[idx]
                a[idx] = old + eps
                up = _weighted_total(_as_list(f(*[Variable(b) for b in arrays])), weights)
                a[idx] = old - eps
                down = _weighted_total(_as_list(f(*[Variable(b) for b in arrays])), weights)
                a[idx] = old
                num[idx] = (up - down) / (2 * eps)
        ana = np.zeros_like(a) if x.grad is None else x.grad.data
        if ana.shape != a.shape:
            problems.append(f"input {i}: gradient shape {ana.shape} != input shape {a.shape}")
        elif not np.allclose(ana, num, rtol=rtol, atol=atol):
            err = np.abs(ana - num)
            where = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
            problems.append(
                f"input {i}: max |analytic - numerical| = {err.max():.3g} at index {where} "
                f"(analytic {ana[where]!r}, numerical {num[where]!r})")
    if problems and raise_on_failure:
        raise GradientCheckError("gradient check failed: " + "; ".join(problems))
    return not problems
