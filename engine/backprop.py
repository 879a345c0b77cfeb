"""The backward pass: iterative, a heap keyed by -generation, each function run once."""

import heapq

import numpy as np

from .core import ARRAY_OUT, Constant, Variable, as_array
from .errors import BackwardError
from .functions_shape import Copy

_ndarray = np.ndarray
_add = np.add
_asarray = np.asarray
_heappush = heapq.heappush
_heappop = heapq.heappop
_new = object.__new__

# backward_graph's heap keys are single ints: -(generation << _SHIFT | discovery index).
# Popping the smallest runs the highest generation first and, among equal generations, the
# function found last (the order of the book's sorted list). Int keys compare far faster
# than tuples.
_SHIFT = 40
_MASK = (1 << _SHIFT) - 1


def _bad_count(f, gxs):
    """Error for a backward that returned the wrong number of gradients."""
    name = type(f).__name__
    return BackwardError(
        f"{name}.backward returned {len(gxs)} gradient(s) for {len(f.inputs)} input(s): "
        f"return one per input, None for an input without a gradient")


def _bad_shape(f, x, shape):
    """Error for a backward that returned a gradient of the wrong shape."""
    return BackwardError(
        f"{type(f).__name__}.backward returned a gradient of shape {shape} for an input of "
        f"shape {x.data.shape}")


def _output_grads(f, as_var):
    """Gradients of f's outputs (zeros for an output without one, None for a dead output)."""
    gys = []
    for r in f.outputs:
        y = r()
        if y is None:
            gys.append(None)
        elif y.grad is None:
            z = np.zeros_like(y.data)
            gys.append(Variable(z) if as_var else z)
        else:
            gys.append(y.grad if as_var else y.grad.data)
    return gys


def backward_arrays(f, retain_grad):
    """Backward pass on raw ndarrays: no graph is built, grads are stored as Variables.

    Functions wait in per-generation lists (the highest generation runs first, within one
    the function found last: the order of the book's sorted list) with a heap of the
    generations; a wide graph pays a heap operation per generation, not per function.
    Hot loop: Variables are created with ``__new__`` plus slot stores (no __init__ frame),
    and a function found while nothing waits runs next without being queued unless one found
    after it in the same step comes first (it always beats everything queued).
    """
    seen = {f}
    queue = {}  # generation -> functions found, in discovery order
    gens = []  # heap of -generation, one entry per list in queue
    new = _new
    Var = Variable
    Const = Constant
    ndarray = _ndarray
    asarray = _asarray
    add = _add
    push = _heappush
    pop = _heappop
    while True:
        refs = f.outputs
        y = refs[0]() if len(refs) == 1 else None
        if y is not None and y.grad is not None:
            gy = y.grad.data
            gxs = f.backward(gy)
            if not retain_grad:
                y.grad = None
        else:
            gy = None
            gxs = f.backward(*_output_grads(f, False))
            if not retain_grad:
                for r in refs:
                    y = r()
                    if y is not None:
                        y.grad = None
        inputs = f.inputs
        if type(gxs) is tuple:
            if len(gxs) != len(inputs):
                raise _bad_count(f, gxs)
            pairs = zip(inputs, gxs)
        elif len(inputs) == 1:
            pairs = ((inputs[0], gxs),)
        else:
            raise _bad_count(f, (gxs,))
        nxt = None
        for x, gx in pairs:
            if gx is None:
                continue
            if type(gx) is not ndarray:
                gx = gx.data if isinstance(gx, Var) else asarray(gx)
            if gx.shape != x.data.shape:
                raise _bad_shape(f, x, gx.shape)
            if type(x) is Const:
                continue
            g = x.grad
            c = x.creator
            if g is None:
                if c is None and (gx is gy or gx.base is not None):
                    gx = gx.copy()  # a leaf's grad must not alias another array
            else:
                gx = add(g.data, gx, out=ARRAY_OUT)
                if type(gx) is not ndarray:
                    gx = asarray(gx)
            v = new(Var)
            v.data = gx
            v.name = None
            v.grad = None
            v.creator = None
            v.generation = 0
            x.grad = v
            if c is not None and c not in seen:
                seen.add(c)
                if nxt is not None:
                    if c.generation >= nxt.generation:
                        c, nxt = nxt, c  # c runs next (among equals the one found last)
                elif not gens:
                    nxt = c
                    continue
                gen = c.generation
                bucket = queue.get(gen)
                if bucket is None:
                    queue[gen] = [c]
                    push(gens, -gen)
                else:
                    bucket.append(c)
        if nxt is not None:
            f = nxt
        elif gens:
            gen = -gens[0]
            bucket = queue[gen]
            f = bucket.pop()
            if not bucket:
                del queue[gen]
                pop(gens)
        else:
            return


def _graph_grads(f, gys):
    """Run ``f.backward(*gys)`` while the graph is recorded: one Variable (or None) per input,
    each of its input's shape."""
    gxs = f.backward(*gys)
    inputs = f.inputs
    if type(gxs) is not tuple:
        gxs = (gxs,)
    if len(gxs) != len(inputs):
        raise _bad_count(f, gxs)
    out = []
    for x, gx in zip(inputs, gxs):
        if gx is not None:
            if not isinstance(gx, Variable):
                gx = Variable(as_array(gx))
            if gx.data.shape != x.data.shape:
                raise _bad_shape(f, x, gx.data.shape)
        out.append(gx)
    return out


def _owned(gx, others):
    """True when ``gx`` may become a leaf's ``.grad`` as it is: a writeable array of its own,
    made by a recorded op (not the seed or another existing Variable) and not the data of one
    of ``others``."""
    data = gx.data
    if gx.creator is None or data.base is not None or not data.flags.writeable:
        return False
    for o in others:
        if o is not None and o.data is data:
            return False
    return True


def _leaf_grad(gxs, i, gys):
    """The first gradient of a leaf, input ``i`` of a step that received ``gys`` and returned
    ``gxs``, under create_graph: ``gxs[i]`` when ``_owned``, else a recorded copy of it (Add's
    ``gy, gy``, sum's broadcast view). The copy keeps the graph connected, so that
    ``x.grad.backward()`` still differentiates through it."""
    gx = gxs[i]
    if _owned(gx, gys + gxs[:i] + gxs[i + 1:]):
        return gx
    return Copy()(gx)


def backward_graph(f, retain_grad):
    """Backward pass with Variables under enable_backprop: the gradient graph is recorded.

    A leaf's ``.grad`` gets an array of its own, as in ``backward_arrays``: a gradient that is
    shared or a view reaches it through a ``Copy`` op (see ``_leaf_grad``).
    """
    heap = [0]
    seen = {f}
    found = [f]
    while heap:
        f = found[-_heappop(heap) & _MASK]
        gys = _output_grads(f, True)
        gxs = _graph_grads(f, gys)
        for i, (x, gx) in enumerate(zip(f.inputs, gxs)):
            if gx is None or type(x) is Constant:
                continue
            g = x.grad
            c = x.creator
            if g is not None:
                x.grad = g + gx
            elif c is None:
                x.grad = _leaf_grad(gxs, i, gys)
            else:
                x.grad = gx
            if c is not None and c not in seen:
                seen.add(c)
                _heappush(heap, -((c.generation << _SHIFT) | len(found)))
                found.append(c)
        if not retain_grad:
            for r in f.outputs:
                y = r()
                if y is not None:
                    y.grad = None
