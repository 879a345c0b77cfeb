"""Every op: forward against numpy, backward against central differences (both modes)."""

import re

import numpy as np
import pytest

import engine as E

R = np.random.default_rng(2024)


def normal(*shape):
    """Standard normal values, kept away from 0 (relu / clip / abs kinks)."""
    a = R.standard_normal(shape)
    return np.where(np.abs(a) < 0.1, 0.5, a)


def positive(*shape):
    return R.uniform(0.5, 2.0, shape)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_sum_to(x, shape):
    lead = x.ndim - len(shape)
    x = x.sum(axis=tuple(range(lead))) if lead else x
    return x.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


LABELS = np.array([2, 0, 1, 2])

# (id, engine function, numpy reference, inputs)
CASES = [
    ("square", E.square, np.square, [normal(2, 3)]),
    ("exp", E.exp, np.exp, [normal(2, 3)]),
    ("log", E.log, np.log, [positive(2, 3)]),
    ("sin", E.sin, np.sin, [normal(2, 3)]),
    ("cos", E.cos, np.cos, [normal(2, 3)]),
    ("tanh", E.tanh, np.tanh, [normal(2, 3)]),
    ("sigmoid", E.sigmoid, np_sigmoid, [normal(2, 3)]),
    ("relu", E.relu, lambda x: np.maximum(x, 0), [normal(2, 3)]),
    ("pow3", lambda x: E.pow(x, 3), lambda x: x ** 3, [normal(2, 3)]),
    ("pow-half", lambda x: E.pow(x, 0.5), np.sqrt, [positive(2, 3)]),
    ("pow-neg", lambda x: x ** -2.0, lambda x: x ** -2.0, [positive(4)]),
    ("neg", E.neg, np.negative, [normal(2, 3)]),
    ("scalar-0d", E.exp, np.exp, [np.array(0.3)]),
    ("reshape", lambda x: E.reshape(x, (3, 2)), lambda x: x.reshape(3, 2), [normal(2, 3)]),
    ("reshape-1", lambda x: x.reshape(-1), lambda x: x.reshape(-1), [normal(2, 3)]),
    ("reshape-int", lambda x: E.reshape(x, 6), lambda x: x.reshape(6), [normal(2, 3)]),
    ("transpose", E.transpose, np.transpose, [normal(2, 3)]),
    ("transpose-axes", lambda x: E.transpose(x, (1, 2, 0)),
     lambda x: x.transpose(1, 2, 0), [normal(2, 3, 4)]),
    ("transpose-neg-axes", lambda x: x.transpose(-1, 0, 1),
     lambda x: x.transpose(2, 0, 1), [normal(2, 3, 4)]),
    ("T", lambda x: x.T, lambda x: x.T, [normal(2, 3, 4)]),
    ("broadcast_to", lambda x: E.broadcast_to(x, (2, 3)),
     lambda x: np.broadcast_to(x, (2, 3)), [normal(3)]),
    ("broadcast_to-col", lambda x: E.broadcast_to(x, (2, 4, 3)),
     lambda x: np.broadcast_to(x, (2, 4, 3)), [normal(4, 1)]),
    ("sum", E.sum, np.sum, [normal(2, 3)]),
    ("sum-axis0", lambda x: E.sum(x, axis=0), lambda x: x.sum(axis=0), [normal(2, 3)]),
    ("sum-axis-1-keep", lambda x: x.sum(axis=-1, keepdims=True),
     lambda x: x.sum(axis=-1, keepdims=True), [normal(2, 3)]),
    ("sum-axes02", lambda x: E.sum(x, axis=(0, 2)), lambda x: x.sum(axis=(0, 2)),
     [normal(2, 3, 4)]),
    ("sum-keep-all", lambda x: E.sum(x, keepdims=True), lambda x: x.sum(keepdims=True),
     [normal(2, 3)]),
    ("sum_to-row", lambda x: E.sum_to(x, (3,)), lambda x: np_sum_to(x, (3,)), [normal(2, 3)]),
    ("sum_to-col", lambda x: E.sum_to(x, (2, 1)), lambda x: np_sum_to(x, (2, 1)),
     [normal(2, 3)]),
    ("sum_to-3d", lambda x: E.sum_to(x, (1, 4)), lambda x: np_sum_to(x, (1, 4)),
     [normal(2, 3, 4)]),
    ("get_item-int", lambda x: x[1], lambda x: x[1], [normal(3, 2)]),
    ("get_item-neg", lambda x: E.get_item(x, -1), lambda x: x[-1], [normal(3, 2)]),
    ("get_item-slice", lambda x: x[:, 1:], lambda x: x[:, 1:], [normal(3, 4)]),
    ("get_item-step", lambda x: x[::2], lambda x: x[::2], [normal(5)]),
    ("get_item-fancy-repeat", lambda x: x[[0, 0, 2]], lambda x: x[[0, 0, 2]], [normal(3, 2)]),
    ("get_item-pairs", lambda x: x[np.arange(3), [1, 0, 1]],
     lambda x: x[np.arange(3), [1, 0, 1]], [normal(3, 2)]),
    ("get_item-mask", lambda x: x[np.array([True, False, True])],
     lambda x: x[np.array([True, False, True])], [normal(3, 2)]),
    ("get_item-ellipsis-none", lambda x: x[..., None, 0], lambda x: x[..., None, 0],
     [normal(2, 3)]),
    ("matmul", E.matmul, np.matmul, [normal(2, 3), normal(3, 4)]),
    ("matmul-op", lambda a, b: a @ b, np.matmul, [normal(2, 3), normal(3, 4)]),
    ("matmul-vec-mat", E.matmul, np.matmul, [normal(3), normal(3, 4)]),
    ("matmul-mat-vec", E.matmul, np.matmul, [normal(2, 3), normal(3)]),
    ("matmul-vec-vec", E.matmul, np.matmul, [normal(3), normal(3)]),
    ("matmul-batched", E.matmul, np.matmul, [normal(2, 2, 3), normal(2, 3, 4)]),
    ("matmul-broadcast-batch", E.matmul, np.matmul, [normal(2, 3), normal(2, 3, 2)]),
    ("matmul-vec-batch", E.matmul, np.matmul, [normal(3), normal(2, 3, 2)]),
    ("linear", E.linear, lambda x, W, b: x @ W + b, [normal(2, 3), normal(3, 4), normal(4)]),
    ("linear-nobias", lambda x, W: E.linear(x, W), np.matmul, [normal(2, 3), normal(3, 4)]),
    ("linear-3d", E.linear, lambda x, W, b: x @ W + b,
     [normal(2, 2, 3), normal(3, 4), normal(4)]),
    ("clip", lambda x: E.clip(x, -0.5, 0.8), lambda x: np.clip(x, -0.5, 0.8),
     [np.array([[-1.2, -0.3, 0.2], [0.7, 1.5, -0.7]])]),
    ("max", E.max, np.max, [normal(3, 4)]),
    ("max-axis1", lambda x: E.max(x, axis=1), lambda x: x.max(axis=1), [normal(3, 4)]),
    ("max-axis0-keep", lambda x: E.max(x, axis=0, keepdims=True),
     lambda x: x.max(axis=0, keepdims=True), [normal(3, 4)]),
    ("min", E.min, np.min, [normal(3, 4)]),
    ("min-axes", lambda x: E.min(x, axis=(0, 2)), lambda x: x.min(axis=(0, 2)),
     [normal(2, 3, 2)]),
    ("mse", E.mean_squared_error, lambda a, b: np.mean((a - b) ** 2),
     [normal(4, 1), normal(4, 1)]),
    ("mse-broadcast", E.mean_squared_error, lambda a, b: np.mean((a - b) ** 2),
     [normal(4, 3), normal(3)]),
    ("softmax", E.softmax, lambda x: np_softmax(x, 1), [normal(3, 4)]),
    ("softmax-axis0", lambda x: E.softmax(x, axis=0), lambda x: np_softmax(x, 0),
     [normal(3, 4)]),
    ("log_softmax", E.log_softmax, lambda x: np.log(np_softmax(x, 1)), [normal(3, 4)]),
    ("log_softmax-last", lambda x: E.log_softmax(x, axis=-1),
     lambda x: np.log(np_softmax(x, -1)), [normal(2, 2, 3)]),
    ("softmax_cross_entropy", E.softmax_cross_entropy,
     lambda x, t: -np.mean(np.log(np_softmax(x, 1))[np.arange(len(t)), t]),
     [normal(4, 3), LABELS]),
]

BINARY_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 3), (2, 1)), ((3,), (2, 1)),
                 ((), (2, 3)), ((2, 1, 4), (3, 1)), ((1,), ())]
for name, fn, ref in [("add", E.add, np.add), ("sub", E.sub, np.subtract),
                      ("mul", E.mul, np.multiply), ("div", E.div, np.divide)]:
    for s0, s1 in BINARY_SHAPES:
        b = positive(*s1) if name == "div" else normal(*s1)
        CASES.append((f"{name}-{s0}-{s1}", fn, ref, [normal(*s0), b]))

CLIP_LOW = np.array([-0.5, 0.0, 0.1])
CASES += [
    ("linear-1d-x", E.linear, lambda x, W, b: x @ W + b, [normal(3), normal(3, 4), normal(4)]),
    ("clip-array-bounds", lambda x: E.clip(x, CLIP_LOW, 0.8), lambda x: np.clip(x, CLIP_LOW, 0.8),
     [np.array([[-1.2, -0.3, 0.2], [0.7, 1.5, -0.7]])]),
]

IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=IDS)
def test_forward_matches_numpy(name, fn, ref, inputs):
    y = fn(*[E.Variable(a) for a in inputs])
    expected = np.asarray(ref(*inputs))
    assert isinstance(y, E.Variable) and type(y.data) is np.ndarray
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=IDS)
def test_backward_matches_numerical(name, fn, ref, inputs, check_grad):
    check_grad(fn, *inputs)


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=IDS)
def test_backward_with_create_graph(name, fn, ref, inputs, check_second_order):
    check_second_order(fn, *inputs)


def test_grad_shapes_follow_the_inputs_under_broadcasting():
    a = E.Variable(normal(2, 1, 4))
    b = E.Variable(normal(3, 1))
    E.sum(a * b + a / (b * b + 1) - b).backward()
    assert a.grad.shape == (2, 1, 4) and b.grad.shape == (3, 1)


def test_max_ties_share_the_gradient():
    x = E.Variable(np.array([1.0, 3.0, 3.0, 2.0]))
    E.max(x).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.5, 0.5, 0.0])
    x = E.Variable(np.array([[1.0, 1.0], [0.0, 2.0]]))
    E.min(x, axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.5, 0.5], [1.0, 0.0]])


def test_relu_and_clip_gradients_are_masks():
    x = E.Variable(np.array([-1.0, 0.5, 2.0]))
    E.sum(E.relu(x)).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 1.0])
    x = E.Variable(np.array([-1.0, 0.5, 2.0]))
    E.sum(E.clip(x, 0.0, 1.0)).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 0.0])


@pytest.mark.parametrize("shape,fix", [
    ((2,), "reshape it, e.g. W.reshape(-1, 1)"),
    ((), "W.reshape(1, 1)"),
    ((1, 2, 3), "use matmul(x, W)"),
], ids=["1-D", "0-d", "3-D"])
def test_linear_refuses_a_weight_that_is_not_a_matrix(shape, fix):
    x, W = E.Variable(np.ones((3, 2))), E.Variable(np.ones(shape))
    with pytest.raises(E.ShapeError, match=rf"^linear: W must be 2-D \(in_size, out_size\), "
                                           rf"got shape {re.escape(str(shape))}: .*{re.escape(fix)}"):
        E.linear(x, W)  # backward used to fail with numpy's "matmul: Input operand 1 ..."
    assert W.grad is None and x.grad is None


def test_linear_refuses_a_scalar_input_and_a_bias_that_does_not_fit():
    with pytest.raises(E.ShapeError, match=r"linear: x must have the input features on its last "
                                           r"axis, got a 0-d array: .*x\.reshape\(1, 1\)"):
        E.linear(E.Variable(np.array(2.0)), E.Variable(np.ones((1, 3))))
    x, W = E.Variable(np.ones((3, 2))), E.Variable(np.ones((2, 4)))
    with pytest.raises(E.ShapeError, match=r"linear: b of shape \(3,\) does not fit the output of "
                                           r"shape \(3, 4\): give b the shape \(out_size,\) = \(4,\)"):
        E.linear(x, W, np.ones(3))  # was numpy's "operands could not be broadcast"
    with pytest.raises(E.ShapeError, match=r"b of shape \(2, 3, 4\) does not fit"):
        E.linear(x, W, np.ones((2, 3, 4)))  # would grow the output: a BackwardError later
    y = E.linear(x, W, np.ones((1, 4)))  # a bias that broadcasts is fine
    E.sum(y).backward()
    np.testing.assert_array_equal(W.grad.data, np.full((2, 4), 3.0))


@pytest.mark.parametrize("low,high,name", [
    (E.Variable(np.array(0.0)), 1.0, "x_min"),
    (0.0, E.Variable(np.array(1.0)), "x_max"),
], ids=["x_min", "x_max"])
def test_clip_refuses_variable_bounds_up_front(low, high, name):
    x = E.Variable(np.array([-1.0, 0.5, 2.0]))
    with pytest.raises(E.DataTypeError, match=rf"^clip: {name} is a Variable, but the bounds are "
                                              rf"constants .*e\.g\. {name}\.data$"):
        E.clip(x, low, high)  # was a raw TypeError ('>=' not supported) in backward


def test_clip_refuses_none_and_non_numeric_bounds_and_bounds_bigger_than_x():
    x = E.Variable(np.array([-1.0, 0.5, 2.0]))
    with pytest.raises(E.DataTypeError, match=r"clip: x_min is None: .*-np\.inf"):
        E.clip(x, None, 1.0)
    with pytest.raises(E.DataTypeError, match=r"clip: x_max must be a number"):
        E.clip(x, 0.0, "1")
    with pytest.raises(E.ShapeError, match=r"clip: x_min of shape \(2, 3\) does not fit x of "
                                           r"shape \(3,\)"):
        E.clip(x, np.zeros((2, 3)), 1.0)
    assert x.grad is None


def test_get_item_repeated_indices_accumulate():
    x = E.Variable(np.arange(4.0))
    E.sum(x[[1, 1, 1, 3]]).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 3.0, 0.0, 1.0])


def test_get_item_accepts_a_variable_index():
    x = E.Variable(np.arange(4.0))
    idx = E.Variable(np.array([3, 0]))
    y = x[idx]
    np.testing.assert_array_equal(y.data, [3.0, 0.0])
    E.sum(y * y).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0, 6.0])


def test_softmax_cross_entropy_gradient_is_p_minus_onehot_over_n():
    x = normal(4, 3)
    v = E.Variable(x)
    E.softmax_cross_entropy(v, LABELS).backward()
    expected = np_softmax(x, 1)
    expected[np.arange(4), LABELS] -= 1
    np.testing.assert_allclose(v.grad.data, expected / 4, rtol=1e-12)


def test_softmax_cross_entropy_rejects_bad_labels():
    x = E.Variable(normal(4, 3))
    with pytest.raises(ValueError, match=r"\(N, C\).*\(N,\)"):
        E.softmax_cross_entropy(x, np.array([[0], [1], [2], [0]]))
    with pytest.raises(TypeError, match="integers"):
        E.softmax_cross_entropy(x, np.array([0.0, 1.0, 2.0, 0.0]))


def test_log_softmax_is_stable_for_large_scores():
    x = E.Variable(np.array([[1000.0, 0.0, -1000.0]]))
    y = E.log_softmax(x)
    assert np.all(np.isfinite(y.data))
    np.testing.assert_allclose(E.softmax(x).data, [[1.0, 0.0, 0.0]], atol=1e-300)


def test_dropout_train_and_test_mode(check_grad):
    x = np.ones((200, 50))
    np.random.seed(0)
    y = E.dropout(E.Variable(x), 0.3)
    kept = y.data != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y.data[kept], 1 / 0.7)
    with E.test_mode():
        v = E.Variable(x)
        assert E.dropout(v, 0.3) is v
    assert E.Config.train is True

    def seeded(a):
        np.random.seed(1)
        return E.dropout(a, 0.4)

    check_grad(seeded, normal(3, 4))
    with pytest.raises(ValueError, match="ratio"):
        E.dropout(E.Variable(x), 1.0)


def test_dropout_backward_uses_the_forward_mask():
    np.random.seed(3)
    x = E.Variable(np.ones((4, 5)))
    y = E.dropout(x, 0.5)
    E.sum(y).backward()
    np.testing.assert_array_equal(x.grad.data, y.data)


def test_float32_stays_float32():
    x = E.Variable(np.ones((2, 2), dtype=np.float32))
    y = E.sigmoid(x * 2.0 + 1 - x / 3)
    assert y.dtype == np.float32
    E.sum(y).backward()
    assert x.grad.dtype == np.float32
