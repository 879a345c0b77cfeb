"""Operators on Variable: arithmetic, reflected forms, matmul, indexing, shape methods."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import engine as E
from engine import Variable
from engine.numerical import gradient_check


def v(*values):
    return Variable(np.array(values, dtype=np.float64))


def test_operators_and_reflected_forms_with_numbers_and_arrays():
    x = v(2.0, 4.0)
    a = np.array([1.0, 2.0])
    cases = [
        (x + 1, [3, 5]), (1 + x, [3, 5]), (x - 1, [1, 3]), (1 - x, [-1, -3]),
        (x * 3, [6, 12]), (3 * x, [6, 12]), (x / 2, [1, 2]), (8 / x, [4, 2]),
        (-x, [-2, -4]), (x ** 2, [4, 16]), (2 ** x, [4, 16]),
        (x + a, [3, 6]), (a + x, [3, 6]), (a - x, [-1, -2]), (a * x, [2, 8]),
        (a / x, [0.5, 0.5]), (x / a, [2, 2]), (np.float64(2.0) * x, [4, 8]),
    ]
    for y, want in cases:
        assert type(y) is Variable, y
        np.testing.assert_allclose(y.data, want)


def test_reflected_operators_are_differentiable():
    x = v(2.0)
    y = 1 - x + 8 / x + np.array(3.0) * x + 2 ** x
    y.backward()
    assert x.grad.data[0] == pytest.approx(-1 - 8 / 4 + 3 + 4 * np.log(2))


def test_matmul_operators():
    a = Variable(np.ones((2, 3)))
    w = np.full((3, 4), 2.0)
    assert (a @ w).shape == (2, 4) and type(a @ w) is Variable
    r = np.ones((5, 2)) @ a
    assert type(r) is Variable and r.shape == (5, 3)
    E.sum(r).backward()
    np.testing.assert_array_equal(a.grad.data, np.full((2, 3), 5.0))


def test_shape_methods():
    x = Variable(np.arange(24.0).reshape(2, 3, 4))
    assert x.reshape(6, 4).shape == (6, 4) and x.reshape((4, 6)).shape == (4, 6)
    assert x.transpose().shape == (4, 3, 2)
    assert x.transpose(1, 0, 2).shape == (3, 2, 4)
    assert x.transpose((2, 0, 1)).shape == (4, 2, 3)
    assert x.T.shape == (4, 3, 2)
    assert x.sum().shape == () and x.sum(axis=1).shape == (2, 4)
    assert x.sum(axis=(0, 2), keepdims=True).shape == (1, 3, 1)
    assert x.reshape(2, 3, 4) is x  # no-op reshape adds no node


def test_indexing_forms_and_iteration():
    x = Variable(np.arange(12.0).reshape(3, 4))
    assert x[1].shape == (4,) and x[1, 2].data == 6.0
    assert x[:, 1:3].shape == (3, 2) and x[[0, 2]].shape == (2, 4)
    assert [r.data.tolist() for r in x][2] == [8.0, 9.0, 10.0, 11.0]
    y = x[1:, ::2] * 2
    E.sum(y).backward()
    want = np.zeros((3, 4))
    want[1:, ::2] = 2
    np.testing.assert_array_equal(x.grad.data, want)


def test_unsupported_comparisons_stay_unsupported():
    with pytest.raises(TypeError):
        v(1.0) < v(2.0)


OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
       "/": lambda a, b: a / (b * b + 1.0)}


@settings(max_examples=40, deadline=None, derandomize=True)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                max_side=3),
       op=st.sampled_from(sorted(OPS)), seed=st.integers(0, 2 ** 16))
def test_broadcasting_binary_ops_have_numerical_gradients(shapes, op, seed):
    s0, s1 = shapes.input_shapes
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(s0), rng.standard_normal(s1)
    y = OPS[op](Variable(a), Variable(b))
    np.testing.assert_allclose(y.data, OPS[op](a, b))
    assert gradient_check(OPS[op], a, b, raise_on_failure=True)
