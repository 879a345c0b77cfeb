"""Core of the autograd engine: Variable, Function, Config and Variable.backward."""

import contextlib
import threading
import weakref

import numpy as np

from .errors import BackwardError, DataTypeError

_ndarray = np.ndarray
_asarray = np.asarray
_ref = weakref.ref
_float64 = np.float64
_new = object.__new__


def _probe_array_out():
    """``...`` when ufuncs accept ``out=...`` (numpy >= 2.3), else None (the default ``out``)."""
    try:
        np.negative(np.zeros(()), out=...)
    except (TypeError, ValueError):
        return None
    return ...


# ``ufunc(..., out=ARRAY_OUT)`` returns a 0-d array where a plain call returns a numpy scalar,
# which __call__ and the backward loop would otherwise convert (about a third of a 0-d ufunc's
# cost). On numpy < 2.3 it is None: scalars come back and are converted as before.
ARRAY_OUT = _probe_array_out()


# =============================================================================
# Config
# =============================================================================
class _Config(threading.local):
    """The switches ``enable_backprop`` (build the graph) and ``train`` (dropout on).

    One set per thread, as PyTorch's grad mode: a backward pass in one thread (which turns
    ``enable_backprop`` off while it runs) must not stop another thread's forward from building
    its graph. A new thread starts with both on.
    """

    enable_backprop = True
    train = True


Config = _Config()


@contextlib.contextmanager
def using_config(name, value):
    """Temporarily set ``Config.<name>`` to ``value`` inside a ``with`` block."""
    if not hasattr(Config, name) or name.startswith("_"):
        raise AttributeError(f"Config has no setting {name!r} (known: enable_backprop, train)")
    old = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old)


def no_grad():
    """Context manager: run ops without building the graph (no creator, no inputs kept)."""
    return using_config("enable_backprop", False)


def test_mode():
    """Context manager: evaluation mode (``Config.train = False``: dropout passes x through)."""
    return using_config("train", False)


test_mode.__test__ = False  # not a pytest test, despite the name


# =============================================================================
# Conversions
# =============================================================================
def _type_name(obj):
    """Readable name of obj's type, with its module unless builtin (e.g. 'numpy.float64')."""
    t = type(obj)
    mod = t.__module__
    return t.__qualname__ if mod == "builtins" else f"{mod}.{t.__qualname__}"


def as_array(x, dtype=None):
    """Return ``x`` as an ndarray (numpy scalars and Python numbers become 0-d arrays)."""
    if type(x) is _ndarray and (dtype is None or x.dtype == dtype):
        return x
    if isinstance(x, Variable):
        raise DataTypeError("as_array got a Variable: use its .data (or as_variable) instead")
    arr = _asarray(x, dtype=dtype)
    if arr.dtype.kind in "OUSV":
        raise DataTypeError(
            f"cannot use a value of type {_type_name(x)} as numeric data "
            f"(numpy made a {arr.dtype} array of it): pass numbers or a numeric numpy.ndarray")
    return arr


def as_variable(obj):
    """Return ``obj`` if it is a Variable, else a new Variable wrapping ``as_array(obj)``."""
    if isinstance(obj, Variable):
        return obj
    return Variable(as_array(obj))


# =============================================================================
# Variable
# =============================================================================
class Variable:
    """A node holding an ndarray ``data``, its gradient ``grad`` and the ``creator`` function."""

    __slots__ = ("data", "name", "grad", "creator", "generation", "__weakref__")
    __array_priority__ = 200

    def __init__(self, data, name=None):
        if data is not None and type(data) is not _ndarray and not isinstance(data, _ndarray):
            raise DataTypeError(
                f"Variable data must be a numpy.ndarray or None, got {_type_name(data)}: "
                f"wrap it with np.array(...)")
        self.data = data
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0

    # -- numpy-like properties -------------------------------------------------
    @property
    def shape(self):
        """Shape of the data (a tuple)."""
        return self.data.shape

    @property
    def ndim(self):
        """Number of dimensions of the data."""
        return self.data.ndim

    @property
    def size(self):
        """Number of elements of the data."""
        return self.data.size

    @property
    def dtype(self):
        """dtype of the data."""
        return self.data.dtype

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        data = getattr(self, "data", None)
        if data is None:
            return "variable(None)"
        body = str(data).replace("\n", "\n" + " " * 9)
        return f"variable({body})"

    # -- graph ---------------------------------------------------------------------
    def set_creator(self, func):
        """Record ``func`` as this Variable's creator (generation = func's + 1)."""
        self.creator = func
        self.generation = func.generation + 1

    def cleargrad(self):
        """Forget the accumulated gradient (``grad = None``)."""
        self.grad = None

    def unchain(self):
        """Cut the link to the creator (this Variable becomes a leaf)."""
        self.creator = None

    # -- shape methods (the ops live in engine.functions) --------------------------
    def reshape(self, *shape):
        """Differentiable reshape; accepts ``reshape(2, 3)`` or ``reshape((2, 3))``."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _F.reshape(self, shape)

    def transpose(self, *axes):
        """Differentiable transpose; ``transpose()`` reverses axes, else a permutation."""
        if len(axes) == 0:
            axes = None
        elif len(axes) == 1 and (isinstance(axes[0], (tuple, list)) or axes[0] is None):
            axes = axes[0]
        return _F.transpose(self, axes)

    @property
    def T(self):
        """Differentiable transpose (all axes reversed)."""
        return _F.transpose(self)

    def sum(self, axis=None, keepdims=False):
        """Differentiable sum over ``axis`` (all axes when None)."""
        return _F.sum(self, axis, keepdims)

    # -- backward ------------------------------------------------------------------
    def backward(self, retain_grad=False, create_graph=False):
        """Accumulate d(self)/d(v) into ``v.grad`` for every Variable v this one depends on.

        The starting gradient is ``self.grad`` if set, else ones (only for a single-element
        Variable). Functions run in decreasing generation order (a heap; each function once);
        every input's ``grad`` is updated right after each step. Gradients of intermediate
        Variables are dropped unless ``retain_grad``. With ``create_graph`` the gradient
        computation itself is recorded, so ``x.grad`` can be differentiated again.
        """
        data = self.data
        if data is None:
            raise BackwardError("backward() called on a Variable whose data is None")
        g = self.grad
        if g is None:
            if data.size != 1:
                raise BackwardError(
                    f"backward() on a non-scalar Variable (shape {data.shape}) needs a starting "
                    f"gradient: reduce it first (e.g. y.sum().backward()) or set "
                    f"y.grad = Variable(np.ones_like(y.data)) before calling backward()")
            self.grad = Variable(np.ones_like(data))
        else:
            if not isinstance(g, Variable):
                g = self.grad = Variable(as_array(g))
            if g.data.shape != data.shape:
                raise BackwardError(
                    f"starting gradient has shape {g.data.shape} but the Variable has shape "
                    f"{data.shape}")
        f = self.creator
        if f is None:
            return
        old = Config.enable_backprop
        Config.enable_backprop = bool(create_graph)
        try:
            if create_graph:
                _bp.backward_graph(f, retain_grad)
            else:
                _bp.backward_arrays(f, retain_grad)
        finally:
            Config.enable_backprop = old


class Parameter(Variable):
    """A Variable that holds a trainable value (layers and optimisers look for these)."""

    __slots__ = ()


class Constant(Variable):
    """A Variable an op made from a plain number or ndarray input: it never gets a gradient.

    ``square(np.array(2.0))`` or the ``2.0`` in ``x * 2.0`` become Constants in the function's
    ``inputs``. Nothing outside the graph can reach them, so backward skips their gradients
    (and MatMul / Linear do not even compute them: no ``gx`` for an input batch).
    """

    __slots__ = ()


def _constant(obj):
    """Wrap a non-Variable op input as a Constant."""
    return Constant(as_array(obj))


def backward(y, retain_grad=False, create_graph=False):
    """Same as ``y.backward(retain_grad, create_graph)``."""
    return y.backward(retain_grad=retain_grad, create_graph=create_graph)


# =============================================================================
# Function
# =============================================================================
class Function:
    """Base of every op: subclasses define ``forward(*xs)`` on ndarrays and ``backward(*gys)``.

    Calling an instance converts the inputs to Variables (plain numbers and arrays become
    ``Constant``s, which get no gradient), runs ``forward`` on their data and
    wraps the results. With backprop enabled it records ``inputs`` (Variables), ``outputs``
    (weak references) and ``generation``, and becomes the outputs' ``creator``.
    """

    def __call__(self, *inputs):
        # Hot path, hand-inlined: one- and two-input calls avoid list comprehensions and
        # outputs are built with __new__ plus slot stores.
        n = len(inputs)
        if n == 1:
            x = inputs[0]
            if not isinstance(x, Variable):
                x = _constant(x)
            inputs = [x]
            ys = self.forward(x.data)
        elif n == 2:
            x0, x1 = inputs
            if not isinstance(x0, Variable):
                x0 = _constant(x0)
            if not isinstance(x1, Variable):
                x1 = _constant(x1)
            inputs = [x0, x1]
            ys = self.forward(x0.data, x1.data)
        else:
            inputs = [x if isinstance(x, Variable) else _constant(x) for x in inputs]
            ys = self.forward(*[x.data for x in inputs])
        if type(ys) is tuple:
            return self._link_many(inputs, ys)
        t = type(ys)
        if t is not _ndarray:
            ys = _asarray(ys) if t is _float64 else _forward_result(self, ys)
        y = _new(Variable)
        y.data = ys
        y.name = None
        y.grad = None
        if Config.enable_backprop:
            if n == 1:
                gen = x.generation
            elif n == 2:
                gen = x0.generation
                g1 = x1.generation
                if g1 > gen:
                    gen = g1
            else:
                gen = max([x.generation for x in inputs])
            self.generation = gen
            self.inputs = inputs
            self.outputs = [_ref(y)]
            y.creator = self
            y.generation = gen + 1
        else:
            y.creator = None
            y.generation = 0
        return y

    def _link_many(self, inputs, ys):
        """The general end of __call__ for a forward that returned a tuple of outputs."""
        outputs = [Variable(y if type(y) is _ndarray else _forward_result(self, y)) for y in ys]
        if Config.enable_backprop:
            gen = max([x.generation for x in inputs])
            self.generation = gen
            for y in outputs:
                y.creator = self
                y.generation = gen + 1
            self.inputs = inputs
            self.outputs = [_ref(y) for y in outputs]
        return outputs[0] if len(outputs) == 1 else outputs

    def forward(self, *xs):
        """Compute the outputs from ndarrays; return an ndarray or a tuple of them."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def backward(self, *gys):
        """Return the gradient for each input (a tuple, or one value for one input)."""
        raise NotImplementedError(f"{type(self).__name__} does not define backward()")


def _forward_result(f, y):
    """Convert a non-ndarray forward result (numpy scalar, number) to an ndarray."""
    if isinstance(y, np.generic):
        return _asarray(y)
    if isinstance(y, Variable):
        raise DataTypeError(
            f"{type(f).__name__}.forward returned a Variable: forward works on ndarrays, "
            f"return y.data (or compute with numpy)")
    return as_array(y)


from . import backprop as _bp  # noqa: E402  (the backward loops need Variable)
from . import functions_shape as _F  # noqa: E402  (Variable methods call the ops lazily)
