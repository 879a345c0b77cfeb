"""Book step 7 style, with a student's bug: a Function keeps its inputs' arrays (``self.inputs = [x.data]``).

The backward loop then raises reading ``x.grad`` of an array, right after the first step: a pass
that failed before the engine stored the gradient that step returned.
"""

import numpy as np


class Variable:
    def __init__(self, data, name=None):
        self.data, self.name, self.grad, self.creator = data, name, None, None

    def backward(self):
        if self.grad is None:
            self.grad = np.ones_like(self.data)
        funcs = [self.creator]
        while funcs:
            f = funcs.pop()
            gx = f.backward(f.output.grad)
            for x in f.inputs:
                x.grad = gx if x.grad is None else x.grad + gx  # x is an array: AttributeError
                if x.creator is not None:
                    funcs.append(x.creator)


class Function:
    def __call__(self, x):
        self.inputs = [x.data]  # the bug: arrays, not Variables
        self.output = Variable(np.asarray(self.forward(x.data)))
        self.output.creator = self
        return self.output


class Square(Function):
    def forward(self, x):
        return x ** 2

    def backward(self, gy):
        return 2 * self.inputs[0] * gy
