"""engine.numerical: central differences and the gradient check."""

import math

import numpy as np
import pytest

import engine as E
from engine.numerical import gradient_check, numerical_diff, numerical_grad


def test_numerical_diff_of_the_seed_example():
    def f(x):
        return E.square(E.exp(E.square(x)))

    assert float(numerical_diff(f, E.Variable(np.array(0.5)))) == pytest.approx(
        3.297442541400256, rel=1e-7)
    assert float(numerical_diff(E.sin, 1.0)) == pytest.approx(math.cos(1.0), rel=1e-7)


def test_numerical_grad_is_elementwise():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    g = numerical_grad(lambda a: E.square(a), x)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-8)
    g = numerical_grad(lambda a, b: a * b, x, np.array(3.0))
    np.testing.assert_allclose(g, np.full((2, 2), 3.0), rtol=1e-8)
    assert x[0, 0] == 1.0  # the input is not modified


def test_gradient_check_passes_and_fails():
    assert gradient_check(E.tanh, np.array([0.1, -0.3]))
    assert gradient_check(E.softmax, np.array([[0.1, 0.2, 0.9]]))

    class WrongSquare(E.Function):
        def forward(self, x):
            return x * x

        def backward(self, gy):
            return 3 * self.inputs[0].data * gy

    def wrong(x):
        return WrongSquare()(x)

    assert gradient_check(wrong, np.array([1.0, 2.0])) is False
    with pytest.raises(E.GradientCheckError, match="input 0: max"):
        gradient_check(wrong, np.array([1.0, 2.0]), raise_on_failure=True)
    with pytest.raises(AssertionError):
        gradient_check(wrong, np.array([1.0, 2.0]), raise_on_failure=True)


def test_gradient_check_skips_integer_inputs_and_accepts_variables():
    x = E.Variable(np.array([[0.2, 0.5, -1.0], [1.0, 0.1, 0.3]]))
    assert gradient_check(E.softmax_cross_entropy, x, np.array([2, 0]))


def test_gradient_check_of_a_multi_output_function():
    def both(x):
        return [E.sin(x), E.cos(x)]

    assert gradient_check(both, np.array([0.3, 1.2]))
