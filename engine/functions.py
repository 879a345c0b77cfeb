"""Elementwise, arithmetic and shape ops: a Function subclass and a lowercase wrapper each.

Each ``backward`` is written once and runs in two modes: on raw ndarrays when the engine
computes plain gradients, and on Variables (building a graph) when ``create_graph=True``.
``_xs`` / ``_y`` pick the right representation and the ``_exp``-style helpers dispatch.
"""

import numpy as np

from .core import Config, Function, Variable, _constant, as_array
from .errors import DataTypeError

__all__ = [
    "Square", "Exp", "Log", "Sin", "Cos", "Tanh", "Sigmoid", "ReLU", "Pow",
    "Add", "Sub", "Mul", "Div", "Neg",
    "Reshape", "Transpose", "BroadcastTo", "Sum", "SumTo", "GetItem", "GetItemGrad",
    "square", "exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "pow",
    "add", "sub", "rsub", "mul", "div", "rdiv", "neg",
    "reshape", "transpose", "broadcast_to", "sum", "sum_to", "get_item",
]

_builtin_sum = sum


# =============================================================================
# Helpers shared by the backward passes
# =============================================================================
def _x(f):
    """f's first input for a backward step: the Variable when recording a graph, else its data."""
    x = f.inputs[0]
    return x if Config.enable_backprop else x.data


def _xs(f):
    """f's inputs for a backward step: Variables when recording a graph, else their data."""
    if Config.enable_backprop:
        return f.inputs
    return [x.data for x in f.inputs]


def _y(f):
    """f's (first) output for a backward step: the Variable when recording, else its data."""
    y = f.outputs[0]()
    return y if Config.enable_backprop else y.data


def _exp(a):
    """exp of an ndarray (numpy) or a Variable (engine op)."""
    return exp(a) if isinstance(a, Variable) else np.exp(a)


def _sin(a):
    """sin of an ndarray (numpy) or a Variable (engine op)."""
    return sin(a) if isinstance(a, Variable) else np.sin(a)


def _cos(a):
    """cos of an ndarray (numpy) or a Variable (engine op)."""
    return cos(a) if isinstance(a, Variable) else np.cos(a)


def _np_sum_to(x, shape):
    """Sum ndarray ``x`` down to ``shape`` (the inverse of numpy broadcasting)."""
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1)
    y = x.sum(axis=axes, keepdims=True)
    if lead > 0:
        y = y.reshape(shape)
    return y


def _sum_to(a, shape):
    """sum_to on an ndarray or a Variable."""
    if isinstance(a, Variable):
        return sum_to(a, shape)
    return _np_sum_to(a, shape)


def _broadcast_to(a, shape):
    """broadcast_to on an ndarray or a Variable."""
    if isinstance(a, Variable):
        return broadcast_to(a, shape)
    return np.broadcast_to(a, shape)


def _keepdims_shape(in_shape, axis):
    """Shape of a reduction over ``axis`` of an array of ``in_shape`` with keepdims=True."""
    ndim = len(in_shape)
    if axis is None:
        return (1,) * ndim
    axes = (axis,) if isinstance(axis, int) else axis
    axes = {a % ndim for a in axes} if ndim else set()
    return tuple(1 if i in axes else n for i, n in enumerate(in_shape))


def _operand(v, like):
    """Convert a binary op's other operand to a Constant unless it is a Variable; Python
    numbers take ``like``'s float dtype (so float32 graphs stay float32)."""
    if isinstance(v, Variable):
        return v
    t = type(v)
    if (t is float or t is int) and isinstance(like, Variable):
        dt = like.data.dtype
        if dt.kind == "f":
            return _constant(np.array(v, dtype=dt))
    return _constant(v)


# =============================================================================
# Elementwise math
# =============================================================================
class Square(Function):
    """y = x ** 2."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return 2.0 * _x(self) * gy


class Exp(Function):
    """y = exp(x)."""

    def forward(self, x):
        return np.exp(x)

    def backward(self, gy):
        return gy * _y(self)


class Log(Function):
    """y = log(x) (natural logarithm)."""

    def forward(self, x):
        return np.log(x)

    def backward(self, gy):
        return gy / _x(self)


class Sin(Function):
    """y = sin(x)."""

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        return gy * _cos(_x(self))


class Cos(Function):
    """y = cos(x)."""

    def forward(self, x):
        return np.cos(x)

    def backward(self, gy):
        return -(gy * _sin(_x(self)))


class Tanh(Function):
    """y = tanh(x)."""

    def forward(self, x):
        return np.tanh(x)

    def backward(self, gy):
        y = _y(self)
        return gy * (1 - y * y)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)) (exp overflowing to inf for very negative x gives exactly 0)."""

    def forward(self, x):
        with np.errstate(over="ignore"):
            e = np.exp(-x)
        return 1 / (1 + e)

    def backward(self, gy):
        y = _y(self)
        return gy * y * (1 - y)


class ReLU(Function):
    """y = max(x, 0)."""

    def forward(self, x):
        return np.maximum(x, 0)

    def backward(self, gy):
        x = self.inputs[0].data
        return gy * (x > 0).astype(x.dtype)


class Pow(Function):
    """y = x ** c for a constant exponent c."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        x = _x(self)
        c = self.c
        return c * x ** (c - 1) * gy


def square(x):
    """x ** 2."""
    return Square()(x)


def exp(x):
    """Elementwise e ** x."""
    return Exp()(x)


def log(x):
    """Elementwise natural logarithm."""
    return Log()(x)


def sin(x):
    """Elementwise sine."""
    return Sin()(x)


def cos(x):
    """Elementwise cosine."""
    return Cos()(x)


def tanh(x):
    """Elementwise hyperbolic tangent."""
    return Tanh()(x)


def sigmoid(x):
    """Elementwise logistic sigmoid."""
    return Sigmoid()(x)


def relu(x):
    """Elementwise max(x, 0)."""
    return ReLU()(x)


def pow(x, c):
    """x ** c for a constant c (a number or an ndarray, not a Variable)."""
    if isinstance(c, Variable):
        raise DataTypeError(
            "pow() takes a constant exponent, got a Variable: for a variable exponent "
            "write exp(c * log(x))")
    return Pow(c)(x)


# =============================================================================
# Arithmetic (broadcasting is differentiable: gradients are summed back to each shape)
# =============================================================================
class Add(Function):
    """y = x0 + x1."""

    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        x0, x1 = self.inputs
        s0, s1 = x0.data.shape, x1.data.shape
        if s0 == s1:
            return gy, gy
        return _sum_to(gy, s0), _sum_to(gy, s1)


class Sub(Function):
    """y = x0 - x1."""

    def forward(self, x0, x1):
        return x0 - x1

    def backward(self, gy):
        x0, x1 = self.inputs
        s0, s1 = x0.data.shape, x1.data.shape
        if s0 == s1:
            return gy, -gy
        return _sum_to(gy, s0), _sum_to(-gy, s1)


class Mul(Function):
    """y = x0 * x1."""

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        s0, s1 = x0.data.shape, x1.data.shape
        if not Config.enable_backprop:
            x0, x1 = x0.data, x1.data
        if s0 == s1:
            return gy * x1, gy * x0
        return _sum_to(gy * x1, s0), _sum_to(gy * x0, s1)


class Div(Function):
    """y = x0 / x1."""

    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = _xs(self)
        gx0 = gy / x1
        gx1 = -(gx0 * x0 / x1)
        s0, s1 = self.inputs[0].data.shape, self.inputs[1].data.shape
        if s0 == s1:
            return gx0, gx1
        return _sum_to(gx0, s0), _sum_to(gx1, s1)


class Neg(Function):
    """y = -x."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


def add(x0, x1):
    """x0 + x1 (either may be a number or an ndarray)."""
    return Add()(x0, _operand(x1, x0))


def sub(x0, x1):
    """x0 - x1."""
    return Sub()(x0, _operand(x1, x0))


def rsub(x0, x1):
    """x1 - x0 (the reflected form used by ``number - Variable``)."""
    return Sub()(_operand(x1, x0), x0)


def mul(x0, x1):
    """x0 * x1."""
    return Mul()(x0, _operand(x1, x0))


def div(x0, x1):
    """x0 / x1."""
    return Div()(x0, _operand(x1, x0))


def rdiv(x0, x1):
    """x1 / x0 (the reflected form used by ``number / Variable``)."""
    return Div()(_operand(x1, x0), x0)


def neg(x):
    """-x."""
    return Neg()(x)


# =============================================================================
# Shape ops
# =============================================================================
class Reshape(Function):
    """y = x.reshape(shape)."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.inputs[0].data.shape)


class Transpose(Function):
    """y = x.transpose(axes) (axes None reverses them)."""

    def __init__(self, axes=None):
        self.axes = None if axes is None else tuple(axes)

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return gy.transpose()
        ndim = len(self.axes)
        inv = tuple(int(i) for i in np.argsort([a % ndim for a in self.axes]))
        return gy.transpose(inv)


class BroadcastTo(Function):
    """y = x broadcast to ``shape`` (a read-only numpy view)."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return np.broadcast_to(x, self.shape)

    def backward(self, gy):
        return _sum_to(gy, self.inputs[0].data.shape)


class SumTo(Function):
    """y = x summed down to ``shape`` (the inverse of broadcasting)."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return _np_sum_to(x, self.shape)

    def backward(self, gy):
        return _broadcast_to(gy, self.inputs[0].data.shape)


class Sum(Function):
    """y = x.sum(axis, keepdims)."""

    def __init__(self, axis=None, keepdims=False):
        self.axis = tuple(axis) if isinstance(axis, list) else axis
        self.keepdims = keepdims

    def forward(self, x):
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        in_shape = self.inputs[0].data.shape
        gy = gy.reshape(_keepdims_shape(in_shape, self.axis))
        return _broadcast_to(gy, in_shape)


def _is_basic_index(key):
    """True when ``key`` uses only ints, slices, None and Ellipsis (no repeated elements)."""
    if not isinstance(key, tuple):
        key = (key,)
    for k in key:
        if not (k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice))):
            return False
    return True


class GetItem(Function):
    """y = x[key] (ints, slices, fancy indexing)."""

    def __init__(self, key):
        self.key = key

    def forward(self, x):
        return x[self.key]

    def backward(self, gy):
        in_shape = self.inputs[0].data.shape
        if isinstance(gy, Variable):
            return GetItemGrad(self.key, in_shape)(gy)
        return _scatter_add(gy, self.key, in_shape)


def _scatter_add(gy, key, shape):
    """Zeros of ``shape`` with ``gy`` added at ``key`` (repeated indices accumulate)."""
    gx = np.zeros(shape, dtype=gy.dtype)
    if _is_basic_index(key):
        gx[key] += gy
    else:
        np.add.at(gx, key, gy)
    return gx


class GetItemGrad(Function):
    """The gradient of GetItem: scatter-add gy into zeros of the input's shape."""

    def __init__(self, key, in_shape):
        self.key = key
        self.in_shape = in_shape

    def forward(self, gy):
        return _scatter_add(gy, self.key, self.in_shape)

    def backward(self, ggx):
        return get_item(ggx, self.key)


def reshape(x, shape):
    """Differentiable reshape (returns x itself when the shape already matches)."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    if isinstance(x, Variable) and x.data.shape == tuple(shape):
        return x
    return Reshape(shape)(x)


def transpose(x, axes=None):
    """Differentiable transpose (axes None reverses all axes)."""
    return Transpose(axes)(x)


def broadcast_to(x, shape):
    """Differentiable np.broadcast_to (returns x itself when the shape already matches)."""
    if isinstance(x, Variable) and x.data.shape == tuple(shape):
        return x
    return BroadcastTo(shape)(x)


def sum_to(x, shape):
    """Sum x down to ``shape`` (returns x itself when the shape already matches)."""
    if isinstance(x, Variable) and x.data.shape == tuple(shape):
        return x
    return SumTo(shape)(x)


def sum(x, axis=None, keepdims=False):
    """Differentiable sum over ``axis`` (an int, a tuple, or None for all)."""
    return Sum(axis, keepdims)(x)


def _plain_key(key):
    """Replace Variables inside an index by their data."""
    if isinstance(key, Variable):
        return key.data
    if isinstance(key, tuple):
        return tuple(k.data if isinstance(k, Variable) else k for k in key)
    return key


def get_item(x, key):
    """Differentiable x[key]; used by ``Variable.__getitem__``."""
    return GetItem(_plain_key(key))(x)


# =============================================================================
# Operators on Variable
# =============================================================================
def _rpow(x, base):
    """base ** x for a constant positive base, as exp(x * log(base))."""
    return exp(x * np.log(as_array(base)))


def _rmatmul(x, other):
    """other @ x (the reflected matmul)."""
    from .functions_nn import matmul
    return matmul(other, x)


def _install_operators():
    """Attach the arithmetic operators and indexing to Variable."""
    from .functions_nn import matmul
    V = Variable
    V.__add__ = add
    V.__radd__ = add
    V.__sub__ = sub
    V.__rsub__ = rsub
    V.__mul__ = mul
    V.__rmul__ = mul
    V.__truediv__ = div
    V.__rtruediv__ = rdiv
    V.__neg__ = neg
    V.__pow__ = pow
    V.__rpow__ = _rpow
    V.__matmul__ = matmul
    V.__rmatmul__ = _rmatmul
    V.__getitem__ = get_item
