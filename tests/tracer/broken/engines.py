"""DeZero step 16-19 style engines with one classic bug each (a flag per bug).

``make_engine()`` with no flags is a correct engine; ``overwrite`` stores ``x.grad = gx`` (step 13
before the fix), ``in_place`` adds with ``x.grad += gx`` (step 14's aliasing: the first gradient is
kept as the very array it arrived as), ``first_input_only`` queues only the first input's creator,
``no_seen`` queues a function once per use (no ``seen`` set), ``min_generation`` gives a function
the smallest generation of its inputs, ``retain_inverted`` clears the outputs' gradients only
when ``retain_grad=True``, ``pop_first`` takes the smallest generation first (``pop(0)``). None checks gradient shapes, like
the book's engine. Its ``backprop(y, keep_one=False)`` is another engine's backward: a module-level
function that hands gradients on in a dict and writes ``.grad`` only at the end (``keep_one``
keeps the last gradient of a variable instead of the sum).
"""

from types import SimpleNamespace

import numpy as np


def make_engine(*, overwrite=False, in_place=False, first_input_only=False, no_seen=False,
                clear_inputs=False, lists_split=False, clear_early=False,
                min_generation=False, retain_inverted=False, pop_first=False) -> SimpleNamespace:
    """A fresh engine (new classes each call) with the chosen bugs."""

    class Variable:
        def __init__(self, data, name=None):
            self.data, self.name, self.grad, self.creator, self.generation = data, name, None, None, 0

        def set_creator(self, func):
            self.creator = func
            self.generation = func.generation + 1

        def cleargrad(self):
            self.grad = None

        def backward(self, retain_grad=False):
            if self.grad is None:
                self.grad = np.ones_like(self.data)
            funcs, seen = [], set()

            def add_func(f):
                if no_seen or f not in seen:
                    funcs.append(f)
                    seen.add(f)
                    funcs.sort(key=lambda func: func.generation)

            add_func(self.creator)
            while funcs:
                f = funcs.pop(0) if pop_first else funcs.pop()
                gys = [output.grad for output in f.outputs]
                if clear_early:  # right, not a bug: the outputs' gradients freed before backward runs
                    for output in f.outputs:
                        output.grad = None
                gxs = f.backward(*gys)
                if not isinstance(gxs, (tuple, list) if lists_split else tuple):
                    gxs = (gxs,)
                for x, gx in zip(f.inputs, gxs):
                    if in_place and x.grad is not None:
                        x.grad += gx
                    else:
                        x.grad = gx if overwrite or x.grad is None else x.grad + gx
                queued = f.inputs[:1] if first_input_only else f.inputs
                for x in queued:
                    if x.creator is not None:
                        add_func(x.creator)
                if retain_grad if retain_inverted else not retain_grad:
                    for y in (f.inputs if clear_inputs else f.outputs):
                        if not clear_inputs or y.creator is not None:
                            y.grad = None

    class Function:
        def __call__(self, *inputs):
            ys = self.forward(*[x.data for x in inputs])
            ys = ys if isinstance(ys, tuple) else (ys,)
            outputs = [Variable(np.asarray(y)) for y in ys]
            self.generation = (min if min_generation else max)(x.generation for x in inputs)
            for output in outputs:
                output.set_creator(self)
            self.inputs, self.outputs = inputs, outputs
            return outputs if len(outputs) > 1 else outputs[0]

    class Square(Function):
        def forward(self, x):
            return x ** 2

        def backward(self, gy):
            return 2 * self.inputs[0].data * gy

    class Exp(Function):
        def forward(self, x):
            return np.exp(x)

        def backward(self, gy):
            return np.exp(self.inputs[0].data) * gy

    class ListMul(Function):
        def forward(self, x0, x1):
            return x0 * x1

        def backward(self, gy):
            x0, x1 = self.inputs
            if self.first_none:
                return [None, gy * x0.data]
            return [gy * x1.data, gy * x0.data]  # a list: one gradient to the book's engines

        first_none = False

    class Add(Function):
        def forward(self, x0, x1):
            return x0 + x1

        def backward(self, gy):
            return gy, gy  # no sum back to the input shapes: wrong under broadcasting

    def backprop(y, keep_one=False):
        grads, order, seen, todo = {id(y): np.ones_like(y.data)}, [], set(), [y.creator]
        while todo:
            f = todo.pop()
            if f is not None and f not in seen:
                seen.add(f)
                order.append(f)
                todo.extend(x.creator for x in f.inputs)
        touched = {id(y): y}
        for f in sorted(order, key=lambda func: -func.generation):
            gxs = f.backward(*[grads[id(output)] for output in f.outputs])
            for x, gx in zip(f.inputs, gxs if isinstance(gxs, tuple) else (gxs,)):
                have = grads.get(id(x))
                grads[id(x)] = gx if have is None or keep_one else have + gx
                touched[id(x)] = x
        for key, variable in touched.items():
            variable.grad = grads[key]

    return SimpleNamespace(
        Variable=Variable, Function=Function, Square=Square, Exp=Exp, Add=Add, ListMul=ListMul,
        square=lambda x: Square()(x), exp=lambda x: Exp()(x), add=lambda a, b: Add()(a, b),
        backprop=backprop)
