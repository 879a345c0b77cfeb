"""Neural-network ops: matmul, linear, clip, max/min, losses, softmax family and dropout."""

import numpy as np

from .core import Config, Constant, Function, Variable, as_variable
from .errors import DataTypeError, ShapeError
from .functions import _exp, _xs, _y
from .functions_shape import _keepdims_shape, _sum_to

__all__ = [
    "MatMul", "Linear", "Clip", "Max", "Min", "MeanSquaredError", "Softmax", "LogSoftmax",
    "SoftmaxCrossEntropy", "Dropout",
    "matmul", "linear", "clip", "max", "min", "mean_squared_error", "softmax", "log_softmax",
    "softmax_cross_entropy", "dropout",
]


# =============================================================================
# Matrix products
# =============================================================================
def _matmul_error(op, a, b):
    """A ShapeError naming both operand shapes (numpy's own message says the same, in gufunc terms)."""
    return ShapeError(
        f"{op}: shapes {a.shape} and {b.shape} do not fit (the last axis of the first must equal "
        f"the {'first' if b.ndim == 1 else 'second-to-last'} axis of the second)")


def _swap_last(a):
    """Swap the last two axes of an ndarray or Variable (ndim >= 2)."""
    if a.ndim == 2:
        return a.T
    axes = list(range(a.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return a.transpose(tuple(axes))


class MatMul(Function):
    """y = x @ W (numpy matmul semantics: 1-D operands and batched stacks included)."""

    def forward(self, x, W):
        try:
            return np.matmul(x, W)
        except ValueError:
            raise _matmul_error("matmul", x, W) from None

    def backward(self, gy):
        x, W = _xs(self)
        need_x = type(self.inputs[0]) is not Constant
        need_w = type(self.inputs[1]) is not Constant
        xs, ws = self.inputs[0].data.shape, self.inputs[1].data.shape
        if len(xs) == 2 and len(ws) == 2:
            return (gy @ W.T if need_x else None), (x.T @ gy if need_w else None)
        # Promote 1-D operands to matrices as numpy does, then undo it.
        if len(xs) == 1:
            x = x.reshape((1, xs[0]))
            if len(ws) > 1:
                gy = gy.reshape(gy.shape[:-1] + (1,) + gy.shape[-1:])
            else:
                gy = gy.reshape((1,))
        if len(ws) == 1:
            W = W.reshape((ws[0], 1))
            gy = gy.reshape(gy.shape + (1,))
        gx = _sum_to(gy @ _swap_last(W), x.shape).reshape(xs) if need_x else None
        gW = _sum_to(_swap_last(x) @ gy, W.shape).reshape(ws) if need_w else None
        return gx, gW


def _fits(shape, target):
    """True when an array of ``shape`` broadcasts to ``target`` without making it bigger."""
    if len(shape) > len(target):
        return False
    for n, m in zip(reversed(shape), reversed(target)):
        if n != 1 and n != m:
            return False
    return True


def _check_linear_operands(x, W):
    """ShapeError unless W is 2-D (in_size, out_size) and x has at least one axis."""
    if W.ndim != 2:
        fix = {0: "make it a matrix, e.g. W.reshape(1, 1)",
               1: "reshape it, e.g. W.reshape(-1, 1) for one output"}.get(
                   W.ndim, "use matmul(x, W) for a stack of matrices")
        raise ShapeError(f"linear: W must be 2-D (in_size, out_size), got shape {W.shape}: {fix}")
    if x.ndim == 0:
        raise ShapeError(
            f"linear: x must have the input features on its last axis, got a 0-d array: "
            f"reshape it, e.g. x.reshape(1, {W.shape[0]})")


def _check_bias(b, y_shape):
    """ShapeError unless b broadcasts to the output shape without enlarging it."""
    if not _fits(b.shape, y_shape):
        raise ShapeError(
            f"linear: b of shape {b.shape} does not fit the output of shape {y_shape}: give b "
            f"the shape (out_size,) = ({y_shape[-1]},)")


class Linear(Function):
    """y = x @ W + b (b optional; W is 2-D, x has the input features on its last axis)."""

    def forward(self, x, W, b=None):
        _check_linear_operands(x, W)
        try:
            y = np.matmul(x, W)
        except ValueError:
            raise _matmul_error("linear", x, W) from None
        if b is not None:
            _check_bias(b, y.shape)
            if (type(y) is np.ndarray and b.ndim == 1 and b.dtype == y.dtype
                    and y.ndim >= 1 and b.shape[0] == y.shape[-1]):
                y += b  # y is a fresh matmul result: add the bias in place
            else:
                y = y + b
        return y

    def backward(self, gy):
        xs = _xs(self)
        x, W = xs[0], xs[1]
        need = [type(v) is not Constant for v in self.inputs]
        gx = gy @ W.T if need[0] else None
        if not need[1]:
            gW = None
        elif x.ndim == 2:
            gW = x.T @ gy
        else:
            gW = x.reshape((-1, W.shape[0])).T @ gy.reshape((-1, W.shape[1]))
        if len(xs) == 2:
            return gx, gW
        return gx, gW, (_sum_to(gy, xs[2].shape) if need[2] else None)


def matmul(x, W):
    """Differentiable matrix product ``x @ W``."""
    return MatMul()(x, W)


def linear(x, W, b=None):
    """Affine map ``x @ W + b`` as one op (b may be None)."""
    if b is None:
        return Linear()(x, W)
    return Linear()(x, W, b)


# =============================================================================
# Clip, max, min
# =============================================================================
def _check_bound(name, value):
    """DataTypeError unless a clip bound is a number or a numeric ndarray."""
    if isinstance(value, Variable):
        raise DataTypeError(
            f"clip: {name} is a Variable, but the bounds are constants (only x gets a gradient): "
            f"pass a number or an ndarray, e.g. {name}.data")
    if value is None:
        raise DataTypeError(
            f"clip: {name} is None: pass a number (-np.inf or np.inf for no bound on that side)")
    if np.asarray(value).dtype.kind not in "biuf":
        raise DataTypeError(
            f"clip: {name} must be a number or a numeric ndarray, got {type(value).__name__} "
            f"{value!r:.40}: pass a number")


def _check_bound_shape(name, value, x):
    """ShapeError unless a clip bound broadcasts to x's shape without enlarging it."""
    shape = np.shape(value)
    if not _fits(shape, x.shape):
        raise ShapeError(
            f"clip: {name} of shape {shape} does not fit x of shape {x.shape}: pass a number or "
            f"an array that broadcasts to {x.shape}")


class Clip(Function):
    """y = clip(x, x_min, x_max); the gradient passes where x is inside the range.

    The bounds are constants: numbers or ndarrays that broadcast to x's shape (not Variables,
    not None).
    """

    def __init__(self, x_min, x_max):
        _check_bound("x_min", x_min)
        _check_bound("x_max", x_max)
        self.x_min = x_min
        self.x_max = x_max

    def forward(self, x):
        _check_bound_shape("x_min", self.x_min, x)
        _check_bound_shape("x_max", self.x_max, x)
        return np.clip(x, self.x_min, self.x_max)

    def backward(self, gy):
        x = self.inputs[0].data
        mask = (x >= self.x_min) & (x <= self.x_max)
        return gy * mask.astype(x.dtype)


class _Reduce(Function):
    """Shared backward of Max / Min: the gradient goes to the extreme elements (ties share it)."""

    def __init__(self, axis=None, keepdims=False):
        self.axis = tuple(axis) if isinstance(axis, list) else axis
        self.keepdims = keepdims

    def backward(self, gy):
        x = self.inputs[0].data
        shape = _keepdims_shape(x.shape, self.axis)
        y = self.outputs[0]().data.reshape(shape)
        hit = (x == y).astype(x.dtype)
        weight = hit / hit.sum(axis=self.axis, keepdims=True)
        return gy.reshape(shape) * weight


class Max(_Reduce):
    """y = x.max(axis, keepdims)."""

    def forward(self, x):
        return x.max(axis=self.axis, keepdims=self.keepdims)


class Min(_Reduce):
    """y = x.min(axis, keepdims)."""

    def forward(self, x):
        return x.min(axis=self.axis, keepdims=self.keepdims)


def clip(x, x_min, x_max):
    """Differentiable np.clip."""
    return Clip(x_min, x_max)(x)


def max(x, axis=None, keepdims=False):
    """Differentiable maximum over ``axis`` (ties share the gradient equally)."""
    return Max(axis, keepdims)(x)


def min(x, axis=None, keepdims=False):
    """Differentiable minimum over ``axis`` (ties share the gradient equally)."""
    return Min(axis, keepdims)(x)


# =============================================================================
# Losses and the softmax family
# =============================================================================
class MeanSquaredError(Function):
    """y = mean((x0 - x1) ** 2) over all elements."""

    def forward(self, x0, x1):
        diff = x0 - x1
        return np.asarray((diff * diff).sum() / diff.size)

    def backward(self, gy):
        x0, x1 = _xs(self)
        diff = x0 - x1
        gx0 = gy * diff * (2.0 / diff.size)
        s0, s1 = self.inputs[0].data.shape, self.inputs[1].data.shape
        return _sum_to(gx0, s0), _sum_to(-gx0, s1)


def _np_softmax(x, axis):
    """Numerically stable softmax of an ndarray."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_log_softmax(x, axis):
    """Numerically stable log-softmax of an ndarray."""
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


class Softmax(Function):
    """y = exp(x) / sum(exp(x)) along ``axis``."""

    def __init__(self, axis=1):
        self.axis = axis

    def forward(self, x):
        return _np_softmax(x, self.axis)

    def backward(self, gy):
        y = _y(self)
        gx = y * gy
        return gx - y * gx.sum(axis=self.axis, keepdims=True)


class LogSoftmax(Function):
    """y = log(softmax(x)) along ``axis``, computed stably."""

    def __init__(self, axis=1):
        self.axis = axis

    def forward(self, x):
        return _np_log_softmax(x, self.axis)

    def backward(self, gy):
        y = _y(self)
        return gy - _exp(y) * gy.sum(axis=self.axis, keepdims=True)


class SoftmaxCrossEntropy(Function):
    """Mean cross-entropy of softmax(x) (N x C) against integer labels t (N,)."""

    def forward(self, x, t):
        if x.ndim != 2 or t.shape != (x.shape[0],):
            raise ShapeError(
                f"softmax_cross_entropy expects scores of shape (N, C) and labels of shape (N,), "
                f"got {x.shape} and {t.shape}")
        if t.dtype.kind not in "iu":
            raise DataTypeError(
                f"softmax_cross_entropy labels must be integers (class indices), got {t.dtype}")
        n = x.shape[0]
        log_p = _np_log_softmax(x, 1)
        return np.asarray(-log_p[np.arange(n), t].sum() / n)

    def backward(self, gy):
        x = self.inputs[0]
        t = self.inputs[1].data
        n, c = x.data.shape
        if isinstance(gy, Variable):
            p = softmax(x, axis=1)
        else:
            p = _np_softmax(x.data, 1)
        onehot = np.zeros((n, c), dtype=x.data.dtype)
        onehot[np.arange(n), t] = 1
        return (p - onehot) * (gy * (1.0 / n)), None


class Dropout(Function):
    """y = x * mask / (1 - ratio) with a fresh random mask (np.random) per call."""

    def __init__(self, ratio=0.5):
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"dropout ratio must be in [0, 1), got {ratio}")
        self.ratio = ratio
        self.mask = None

    def forward(self, x):
        keep = np.random.rand(*x.shape) > self.ratio
        self.mask = keep.astype(x.dtype) * np.asarray(1.0 / (1.0 - self.ratio), dtype=x.dtype)
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def mean_squared_error(x0, x1):
    """Mean of the squared differences over all elements."""
    return MeanSquaredError()(x0, x1)


def softmax(x, axis=1):
    """Softmax along ``axis``."""
    return Softmax(axis)(x)


def log_softmax(x, axis=1):
    """Log-softmax along ``axis``."""
    return LogSoftmax(axis)(x)


def softmax_cross_entropy(x, t):
    """Mean softmax cross-entropy of scores x (N, C) against integer labels t (N,)."""
    return SoftmaxCrossEntropy()(x, t)


def dropout(x, ratio=0.5):
    """Inverted dropout while ``Config.train``; in ``test_mode()`` x passes through unchanged."""
    if Config.train:
        return Dropout(ratio)(x)
    return as_variable(x)
