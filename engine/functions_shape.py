"""Shape ops: reshape, transpose, broadcast_to, sum, sum_to, indexing (get_item) and Copy."""

import numpy as np

from .core import Function, Variable

__all__ = [
    "Reshape", "Transpose", "BroadcastTo", "Sum", "SumTo", "GetItem", "GetItemGrad", "Copy",
    "reshape", "transpose", "broadcast_to", "sum", "sum_to", "get_item",
]


# =============================================================================
# Helpers (also used by the arithmetic and nn ops)
# =============================================================================
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


class Copy(Function):
    """y = a copy of x (an identity with an array of its own).

    Backward uses it under ``create_graph=True`` to give a leaf a ``.grad`` that is writeable
    and shared with no other Variable (Add returns ``gy, gy``; sum's gradient is a read-only
    broadcast view) while keeping the gradient graph connected.
    """

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


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
