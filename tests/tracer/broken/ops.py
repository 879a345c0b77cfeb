"""Ops on gradtrace's engine with a deliberately wrong backward."""

import numpy as np

import engine as E


class HalfSquare(E.Function):
    """x ** 2 whose backward forgot the factor 2."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return self.inputs[0].data * gy


class SinWithSin(E.Function):
    """sin(x) whose backward uses sin instead of cos."""

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        return gy * np.sin(self.inputs[0].data)


class SwappedMul(E.Function):
    """x0 * x1 whose backward multiplies each input's gradient by the input itself."""

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return gy * x0.data, gy * x1.data


class UnsummedAdd(E.Function):
    """x0 + x1 whose backward does not sum the gradient back to broadcast inputs."""

    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        return gy, gy


class ScaledSquare(E.Function):
    """c * x ** 2 with a constructor argument (state a replay must keep); backward is right."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return self.c * x * x

    def backward(self, gy):
        return 2 * self.c * self.inputs[0].data * gy


class TransposedMatMul(E.Function):
    """x @ W whose backward returns gW transposed (gy.T @ x for x.T @ gy), as students write it."""

    def forward(self, x, W):
        return x @ W

    def backward(self, gy):
        x, W = self.inputs
        return E.matmul(gy, W.T), E.matmul(E.transpose(gy), x)


class DataSin(E.Function):
    """sin(x) whose backward works on x.data with numpy: right first derivative, but under
    create_graph the gradient has no graph back to x (the second derivative is lost)."""

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        return gy * np.cos(self.inputs[0].data)
