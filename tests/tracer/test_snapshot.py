"""ArraySnapshot: equality and hashing."""

import numpy as np
import pytest

from tracer.snapshot import ArraySnapshot, freeze
from tracer.snapshot import _summarise as summarise


def _pair(array, summarised):
    """Two snapshots of the same array made apart (no float object shared between them)."""
    make = summarise if summarised else (lambda a: freeze(a.copy()))
    return make(array), make(array.copy())


@pytest.mark.parametrize("summarised", [False, True])
@pytest.mark.parametrize("array", [np.array([1.0, np.nan, 3.0]), np.array(np.nan),
                                   np.full((2, 4), np.nan), np.array([np.nan, np.inf, -np.inf, 0.5])])
def test_snapshots_of_the_same_array_with_nan_are_equal(array, summarised):
    a, b = _pair(array, summarised)
    assert a == b and not a != b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1


@pytest.mark.parametrize("summarised", [False, True])
def test_nan_in_other_places_or_other_dtype_or_shape_is_not_equal(summarised):
    a = _pair(np.array([np.nan, 1.0, 1.0]), summarised)[0]
    assert a != _pair(np.array([1.0, np.nan, 1.0]), summarised)[0]
    assert a != _pair(np.array([np.nan, 1.0, 1.0], dtype=np.float32), summarised)[0]
    assert a != _pair(np.array([[np.nan, 1.0, 1.0]]), summarised)[0]
    assert a != _pair(np.array([np.nan, 1.0, 2.0]), summarised)[0]


def test_negative_zero_equals_zero_as_before():
    """-0.0 == 0.0 (as numpy's array_equal has it): a gradient of -0.0 is no other gradient."""
    a, b = freeze(np.array([0.0, 1.0])), freeze(np.array([-0.0, 1.0]))
    assert a == b and hash(a) == hash(b)


def test_snapshot_read_back_with_nan_equals_the_recorded_one():
    recorded = freeze(np.array([np.nan, 2.0]))
    again = ArraySnapshot((2,), "float64", (float("nan"), 2.0), (float("nan"), 2.0))
    assert recorded == again and hash(recorded) == hash(again)
