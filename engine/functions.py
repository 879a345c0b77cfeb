"""Elementwise and arithmetic ops (a Function subclass and a lowercase wrapper each).

Each ``backward`` is written once and runs in two modes: on raw ndarrays when the engine
computes plain gradients, and on Variables (building a graph) when ``create_graph=True``.
``_xs`` / ``_y`` pick the right representation and the ``_exp``-style helpers dispatch.

The common ops put a fast path first for the engine's plain step (an ndarray ``gy``, no graph
recorded): the same formula with ufuncs called directly and ``out=ARRAY_OUT``, so a 0-d
result stays an array (a numpy scalar costs a conversion here and another in the backward
loop) and no helper frames run.
"""

import numpy as np

from .core import ARRAY_OUT, Config, Function, Variable, _constant, as_array
from .errors import DataTypeError
from .functions_shape import _sum_to, get_item

_ndarray = np.ndarray
# The ufuncs as module globals: CPython 3.11 looks up ``np.<name>`` on every call (several
# hundred instructions), a global costs a few dozen.
_np_add, _np_subtract, _np_multiply, _np_divide, _np_negative = (
    np.add, np.subtract, np.multiply, np.divide, np.negative)
_np_exp, _np_log, _np_sin, _np_cos, _np_tanh, _np_maximum = (
    np.exp, np.log, np.sin, np.cos, np.tanh, np.maximum)

__all__ = [
    "Square", "Exp", "Log", "Sin", "Cos", "Tanh", "Sigmoid", "ReLU", "Pow",
    "Add", "Sub", "Mul", "Div", "Neg",
    "square", "exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "pow",
    "add", "sub", "rsub", "mul", "div", "rdiv", "neg",
]


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
        return _np_multiply(x, x, out=ARRAY_OUT)

    def backward(self, gy):
        if type(gy) is _ndarray and not Config.enable_backprop:
            return _np_multiply(_np_multiply(2.0, self.inputs[0].data, out=ARRAY_OUT), gy,
                                out=ARRAY_OUT)
        return 2.0 * _x(self) * gy


class Exp(Function):
    """y = exp(x)."""

    def forward(self, x):
        return _np_exp(x, out=ARRAY_OUT)

    def backward(self, gy):
        if type(gy) is _ndarray and not Config.enable_backprop:
            return _np_multiply(gy, self.outputs[0]().data, out=ARRAY_OUT)
        return gy * _y(self)


class Log(Function):
    """y = log(x) (natural logarithm)."""

    def forward(self, x):
        return _np_log(x, out=ARRAY_OUT)

    def backward(self, gy):
        if type(gy) is _ndarray and not Config.enable_backprop:
            return _np_divide(gy, self.inputs[0].data, out=ARRAY_OUT)
        return gy / _x(self)


class Sin(Function):
    """y = sin(x)."""

    def forward(self, x):
        return _np_sin(x, out=ARRAY_OUT)

    def backward(self, gy):
        if type(gy) is _ndarray and not Config.enable_backprop:
            return _np_multiply(gy, _np_cos(self.inputs[0].data, out=ARRAY_OUT), out=ARRAY_OUT)
        return gy * _cos(_x(self))


class Cos(Function):
    """y = cos(x)."""

    def forward(self, x):
        return _np_cos(x, out=ARRAY_OUT)

    def backward(self, gy):
        if type(gy) is _ndarray and not Config.enable_backprop:
            gx = _np_multiply(gy, _np_sin(self.inputs[0].data, out=ARRAY_OUT), out=ARRAY_OUT)
            return _np_negative(gx, out=ARRAY_OUT)
        return -(gy * _sin(_x(self)))


class Tanh(Function):
    """y = tanh(x)."""

    def forward(self, x):
        return _np_tanh(x, out=ARRAY_OUT)

    def backward(self, gy):
        y = _y(self)
        return gy * (1 - y * y)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)) (exp overflowing to inf for very negative x gives exactly 0)."""

    def forward(self, x):
        with np.errstate(over="ignore"):
            e = _np_exp(-x)
        return _np_divide(1, 1 + e, out=ARRAY_OUT)

    def backward(self, gy):
        y = _y(self)
        return gy * y * (1 - y)


class ReLU(Function):
    """y = max(x, 0)."""

    def forward(self, x):
        return _np_maximum(x, 0, out=ARRAY_OUT)

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
        return _np_add(x0, x1, out=ARRAY_OUT)

    def backward(self, gy):
        x0, x1 = self.inputs
        s0, s1 = x0.data.shape, x1.data.shape
        if s0 == s1:
            return gy, gy
        return _sum_to(gy, s0), _sum_to(gy, s1)


class Sub(Function):
    """y = x0 - x1."""

    def forward(self, x0, x1):
        return _np_subtract(x0, x1, out=ARRAY_OUT)

    def backward(self, gy):
        x0, x1 = self.inputs
        s0, s1 = x0.data.shape, x1.data.shape
        if type(gy) is _ndarray and not Config.enable_backprop:
            ngy = _np_negative(gy, out=ARRAY_OUT)
        else:
            ngy = -gy
        if s0 == s1:
            return gy, ngy
        return _sum_to(gy, s0), _sum_to(ngy, s1)


class Mul(Function):
    """y = x0 * x1."""

    def forward(self, x0, x1):
        return _np_multiply(x0, x1, out=ARRAY_OUT)

    def backward(self, gy):
        x0, x1 = self.inputs
        s0, s1 = x0.data.shape, x1.data.shape
        if Config.enable_backprop:
            gx0, gx1 = gy * x1, gy * x0
        elif type(gy) is _ndarray:
            gx0 = _np_multiply(gy, x1.data, out=ARRAY_OUT)
            gx1 = _np_multiply(gy, x0.data, out=ARRAY_OUT)
        else:
            gx0, gx1 = gy * x1.data, gy * x0.data
        if s0 == s1:
            return gx0, gx1
        return _sum_to(gx0, s0), _sum_to(gx1, s1)


class Div(Function):
    """y = x0 / x1."""

    def forward(self, x0, x1):
        return _np_divide(x0, x1, out=ARRAY_OUT)

    def backward(self, gy):
        if type(gy) is _ndarray and not Config.enable_backprop:
            x0, x1 = self.inputs
            x0, x1 = x0.data, x1.data
            gx0 = _np_divide(gy, x1, out=ARRAY_OUT)
            gx1 = _np_divide(_np_multiply(gx0, x0, out=ARRAY_OUT), x1, out=ARRAY_OUT)
            gx1 = _np_negative(gx1, out=ARRAY_OUT)
        else:
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
        return _np_negative(x, out=ARRAY_OUT)

    def backward(self, gy):
        if type(gy) is _ndarray and not Config.enable_backprop:
            return _np_negative(gy, out=ARRAY_OUT)
        return -gy


def add(x0, x1):
    """x0 + x1 (either may be a number or an ndarray)."""
    if not isinstance(x1, Variable):
        x1 = _operand(x1, x0)
    return Add()(x0, x1)


def sub(x0, x1):
    """x0 - x1."""
    if not isinstance(x1, Variable):
        x1 = _operand(x1, x0)
    return Sub()(x0, x1)


def rsub(x0, x1):
    """x1 - x0 (the reflected form used by ``number - Variable``)."""
    return Sub()(_operand(x1, x0), x0)


def mul(x0, x1):
    """x0 * x1."""
    if not isinstance(x1, Variable):
        x1 = _operand(x1, x0)
    return Mul()(x0, x1)


def div(x0, x1):
    """x0 / x1."""
    if not isinstance(x1, Variable):
        x1 = _operand(x1, x0)
    return Div()(x0, x1)


def rdiv(x0, x1):
    """x1 / x0 (the reflected form used by ``number / Variable``)."""
    return Div()(_operand(x1, x0), x0)


def neg(x):
    """-x."""
    return Neg()(x)


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
