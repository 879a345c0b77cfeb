"""A small engine of its own whose backward pops functions from a list without generations: dy/dx comes out 96, not 64.

The engine below is the book's step-15 design: backward takes the functions in the order they
were discovered. On a branching graph it runs the function that made `a` before both branches
have sent their gradients, so it runs it twice and x collects 32 + 64. `gradtrace steps` shows
Square#1 running twice; `--fixed` switches to generation order and gives 64.

    python samples/own_engine_bug.py            # 96.0
    python samples/own_engine_bug.py --fixed    # 64.0
    gradtrace steps samples/own_engine_bug.py
"""

import argparse

import numpy as np


class Variable:
    def __init__(self, data, name=None):
        self.data = data
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0

    def set_creator(self, func):
        self.creator = func
        self.generation = func.generation + 1

    def backward(self):
        if self.grad is None:
            self.grad = np.ones_like(self.data)
        funcs = [self.creator]
        seen = {self.creator}
        while funcs:
            f = funcs.pop()  # the bug: not the function with the highest generation
            gys = [output.grad for output in f.outputs]
            gxs = f.backward(*gys)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            for x, gx in zip(f.inputs, gxs):
                x.grad = gx if x.grad is None else x.grad + gx
                if x.creator is not None and (not FIXED or x.creator not in seen):
                    funcs.append(x.creator)
                    seen.add(x.creator)
                    if FIXED:
                        funcs.sort(key=lambda func: func.generation)


class Function:
    def __call__(self, *inputs):
        xs = [x.data for x in inputs]
        ys = self.forward(*xs)
        if not isinstance(ys, tuple):
            ys = (ys,)
        self.generation = max(x.generation for x in inputs)
        outputs = [Variable(np.asarray(y)) for y in ys]
        for output in outputs:
            output.set_creator(self)
        self.inputs = inputs
        self.outputs = outputs
        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, *gys):
        raise NotImplementedError


class Square(Function):
    def forward(self, x):
        return x ** 2

    def backward(self, gy):
        return 2 * self.inputs[0].data * gy


class Add(Function):
    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        return gy, gy


def square(x):
    return Square()(x)


def add(x0, x1):
    return Add()(x0, x1)


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--fixed", action="store_true", help="take functions in generation order")
FIXED = parser.parse_args().fixed

x = Variable(np.array(2.0))
a = square(x)
b = square(a)
c = square(a)
y = add(b, c)

y.backward()
print(f"y = {float(y.data)}")  # 32.0
print(f"dy/dx = {float(x.grad)}  (the right answer is 64.0)")
