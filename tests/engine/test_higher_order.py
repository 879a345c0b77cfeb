"""create_graph=True: higher-order derivatives, Newton's method and the book's test functions."""

import math

import numpy as np
import pytest
from numpy.polynomial import polynomial as P

import engine as E
from engine import Variable


def nth_derivatives(f, x0, n):
    """[f'(x0), f''(x0), ..., f^(n)(x0)] by repeated backward with create_graph=True."""
    x = Variable(np.array(x0))
    y = f(x)
    out = []
    for _ in range(n):
        x.cleargrad()
        y.backward(create_graph=True)
        y = x.grad
        out.append(float(y.data))
    return out


def test_second_derivative_of_sin_is_minus_sin():
    assert nth_derivatives(E.sin, 1.0, 2)[1] == pytest.approx(-math.sin(1.0), abs=1e-15)


def test_sin_derivatives_two_to_four():
    got = nth_derivatives(E.sin, 1.0, 4)
    want = [math.cos(1.0), -math.sin(1.0), -math.cos(1.0), math.sin(1.0)]
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_tanh_higher_derivatives_match_the_polynomials_in_tanh():
    # d/dx p(tanh x) = p'(t) (1 - t^2): P_0 = t, P_{k+1} = P_k' * (1 - t^2)
    polys = [np.array([0.0, 1.0])]
    for _ in range(5):
        polys.append(P.polymul(P.polyder(polys[-1]), [1.0, 0.0, -1.0]))
    t = math.tanh(0.7)
    want = [P.polyval(t, p) for p in polys[1:]]
    np.testing.assert_allclose(nth_derivatives(E.tanh, 0.7, 5), want, rtol=1e-12)


def test_newtons_method_with_the_second_derivative():
    def f(x):
        return x ** 4 - 2 * x ** 2

    x = Variable(np.array(2.0))
    for _ in range(10):
        y = f(x)
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        gx2 = x.grad
        x.data = x.data - gx.data / gx2.data
    assert x.data == pytest.approx(1.0, abs=1e-12)


def test_second_derivative_through_a_reused_variable():
    x = Variable(np.array(3.0))
    y = x * x * x + x  # y'' = 6x
    y.backward(create_graph=True)
    gx = x.grad
    assert gx.data == 28.0
    x.cleargrad()
    gx.backward()
    assert x.grad.data == 18.0


def test_grad_graph_is_built_only_with_create_graph():
    x = Variable(np.array(1.0))
    E.sin(x).backward()
    assert x.grad.creator is None
    x.cleargrad()
    E.sin(x).backward(create_graph=True)
    assert isinstance(x.grad.creator, E.Function)
    assert E.Config.enable_backprop is True


def test_create_graph_inside_no_grad_still_records_the_gradient_graph():
    x = Variable(np.array(1.0))
    y = E.sin(x)
    with E.no_grad():
        y.backward(create_graph=True)
        assert E.Config.enable_backprop is False
    assert x.grad.creator is not None


def sphere(x, y):
    return x ** 2 + y ** 2


def matyas(x, y):
    return 0.26 * (x ** 2 + y ** 2) - 0.48 * x * y


def goldstein(x, y):
    return ((1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x ** 2 - 14 * y + 6 * x * y + 3 * y ** 2))
            * (30 + (2 * x - 3 * y) ** 2
               * (18 - 32 * x + 12 * x ** 2 + 48 * y - 36 * x * y + 27 * y ** 2)))


def analytic_goldstein_grad(x, y):
    a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x ** 2 - 14 * y + 6 * x * y + 3 * y ** 2)
    b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x ** 2 + 48 * y - 36 * x * y + 27 * y ** 2)
    da_dx = (2 * (x + y + 1) * (19 - 14 * x + 3 * x ** 2 - 14 * y + 6 * x * y + 3 * y ** 2)
             + (x + y + 1) ** 2 * (-14 + 6 * x + 6 * y))
    da_dy = (2 * (x + y + 1) * (19 - 14 * x + 3 * x ** 2 - 14 * y + 6 * x * y + 3 * y ** 2)
             + (x + y + 1) ** 2 * (-14 + 6 * x + 6 * y))
    db_dx = (4 * (2 * x - 3 * y) * (18 - 32 * x + 12 * x ** 2 + 48 * y - 36 * x * y + 27 * y ** 2)
             + (2 * x - 3 * y) ** 2 * (-32 + 24 * x - 36 * y))
    db_dy = (-6 * (2 * x - 3 * y) * (18 - 32 * x + 12 * x ** 2 + 48 * y - 36 * x * y + 27 * y ** 2)
             + (2 * x - 3 * y) ** 2 * (48 - 36 * x + 54 * y))
    return da_dx * b + a * db_dx, da_dy * b + a * db_dy


@pytest.mark.parametrize("f,want", [
    (sphere, (2.0, 2.0)),
    (matyas, (0.04, 0.04)),
    (goldstein, analytic_goldstein_grad(1.0, 1.0)),
])
def test_book_functions_gradients_at_1_1(f, want):
    x, y = Variable(np.array(1.0)), Variable(np.array(1.0))
    f(x, y).backward()
    assert (x.grad.data, y.grad.data) == pytest.approx(want, rel=1e-12)


def test_goldstein_price_values_from_the_book():
    x, y = Variable(np.array(1.0)), Variable(np.array(1.0))
    z = goldstein(x, y)
    z.backward()
    assert z.data == 1876.0
    assert (x.grad.data, y.grad.data) == (-5376.0, 8064.0)


def test_second_order_of_the_book_functions(check_second_order):
    for f in (sphere, matyas, goldstein):
        check_second_order(f, np.array(0.3), np.array(-0.4), rtol=1e-5, atol=1e-4)


def test_higher_derivatives_through_a_leaf_gradient_that_was_copied():
    """x's gradient arrives as a view (Reshape's backward of 3 x^2 gy), so the leaf gets a
    copy of it; the copy stays on the graph: the 2nd and 3rd derivatives are still right."""
    x = Variable(np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]))
    y = E.sum(E.reshape(x, (6,)) ** 3)
    y.backward(create_graph=True)
    g1 = x.grad
    assert isinstance(g1.creator, E.Copy) and g1.data.flags.writeable
    np.testing.assert_allclose(g1.data, 3 * x.data ** 2)
    x.cleargrad()
    E.sum(g1).backward(create_graph=True)
    g2 = x.grad
    np.testing.assert_allclose(g2.data, 6 * x.data)
    x.cleargrad()
    E.sum(g2).backward()
    np.testing.assert_allclose(x.grad.data, np.full((2, 3), 6.0))


def test_second_derivative_of_a_sum_of_two_leaves_products():
    """x0 + x1 shares gy between the leaves (copied now); the mixed second derivative of
    x0 * x1 + x0 + x1 through the gradient graph is still d2/dx1 dx0 = 1."""
    x0, x1 = Variable(np.array(2.0)), Variable(np.array(3.0))
    y = x0 * x1 + (x0 + x1)
    y.backward(create_graph=True)
    np.testing.assert_allclose([x0.grad.data, x1.grad.data], [4.0, 3.0])
    g0 = x0.grad
    x0.cleargrad()
    x1.cleargrad()
    g0.backward()
    assert x0.grad is None and x1.grad.data == 1.0
