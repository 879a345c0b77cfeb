"""Snapshots of arrays: small ones copied whole, large ones summarised, NaN/Inf counted."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["ArraySnapshot", "DEFAULT_MAX_ELEMENTS", "HEAD_ELEMENTS", "capture", "freeze"]

DEFAULT_MAX_ELEMENTS = 100
HEAD_ELEMENTS = 6


@dataclass(frozen=True)
class ArraySnapshot:
    """An array as it was when recorded.

    ``values`` holds every element (flattened, C order) when the array had at most the configured
    number of elements; otherwise it is None and only ``head`` (the first few elements) and the
    statistics describe the array. Elements are Python numbers (float NaN/Inf allowed) or, for
    non-numeric dtypes, strings.
    """

    shape: tuple[int, ...]
    dtype: str
    values: tuple | None
    head: tuple
    min: float | None
    max: float | None
    mean: float | None
    norm: float | None
    nan_count: int
    inf_count: int

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def complete(self) -> bool:
        """True when every element was kept."""
        return self.values is not None

    @property
    def is_scalar(self) -> bool:
        """True for a single element (0-d or size 1)."""
        return self.size == 1

    @property
    def has_nonfinite(self) -> bool:
        """True when the array held NaN or Inf."""
        return self.nan_count > 0 or self.inf_count > 0

    def to_array(self) -> np.ndarray | None:
        """The recorded array, or None when it was only summarised."""
        if self.values is None:
            return None
        return np.array(self.values, dtype=self.dtype).reshape(self.shape)

    def nested(self):
        """The values as nested lists shaped like the array (a bare number for 0-d)."""
        if self.values is None:
            return None
        return _nest(list(self.values), self.shape)

    def item(self):
        """The single element of a size-1 array, else None."""
        if self.size == 1 and self.head:
            return self.head[0]
        return None


def _nest(flat: list, shape: tuple[int, ...]):
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = math.prod(shape[1:])
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _python_elements(arr: np.ndarray) -> list:
    if arr.dtype.kind in "biuf":
        return arr.ravel().tolist()
    return [str(v) for v in arr.ravel().tolist()]


def _statistics(arr: np.ndarray) -> tuple:
    """(min, max, mean, norm, nan_count, inf_count) over the finite elements of a numeric array."""
    if arr.dtype.kind not in "biuf" or arr.size == 0:
        return None, None, None, None, 0, 0
    if arr.dtype.kind == "f":
        nan_count = int(np.count_nonzero(np.isnan(arr)))
        inf_count = int(np.count_nonzero(np.isinf(arr)))
        finite = arr[np.isfinite(arr)] if nan_count or inf_count else arr
    else:
        nan_count = inf_count = 0
        finite = arr
    if finite.size == 0:
        return None, None, None, None, nan_count, inf_count
    as_float = finite.astype(np.float64, copy=False)
    return (float(as_float.min()), float(as_float.max()), float(as_float.mean()),
            float(np.sqrt(np.sum(as_float * as_float))), nan_count, inf_count)


def capture(value, max_elements: int = DEFAULT_MAX_ELEMENTS):
    """Cheap hot-path capture: a private copy of a small array, a finished summary of a large one.

    Returns None for None, an ndarray copy, or an ArraySnapshot. Variables (anything with an
    ndarray ``.data``) are unwrapped; Python numbers become 0-d arrays.
    """
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = np.asarray(value)
    elif not isinstance(value, np.ndarray):
        data = getattr(value, "data", value)
        if isinstance(data, np.ndarray):
            value = data
        else:
            try:
                value = np.asarray(data)
            except (TypeError, ValueError):
                return None
            if value.dtype.kind == "O" and value.ndim == 0:
                return None
    if value.size <= max_elements:
        return value.copy()
    return _summarise(value)


def _summarise(arr: np.ndarray) -> ArraySnapshot:
    head = tuple(_python_elements(arr.ravel()[:HEAD_ELEMENTS]))
    return ArraySnapshot(tuple(int(n) for n in arr.shape), str(arr.dtype), None, head,
                         *_statistics(arr))


def freeze(captured) -> ArraySnapshot | None:
    """Turn what ``capture`` returned into an ArraySnapshot (None stays None)."""
    if captured is None or isinstance(captured, ArraySnapshot):
        return captured
    arr = captured
    values = tuple(_python_elements(arr))
    return ArraySnapshot(tuple(int(n) for n in arr.shape), str(arr.dtype), values,
                         values[:HEAD_ELEMENTS], *_statistics(arr))
