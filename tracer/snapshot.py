"""Snapshots of arrays: small ones copied whole, large ones summarised, NaN/Inf counted."""

from __future__ import annotations

import math
import struct
import numpy as np

__all__ = ["ArraySnapshot", "DEFAULT_MAX_ELEMENTS", "HEAD_ELEMENTS", "capture", "dtype_name", "freeze"]

DEFAULT_MAX_ELEMENTS = 100
HEAD_ELEMENTS = 6


_UNSET = object()
_new = object.__new__
_STATS = struct.Struct("<4d2q")


def _pack_summary(stats: tuple, head: tuple):
    """Statistics and head of a summarised array in ~130 bytes (vs ~580 as Python objects)."""
    if not all(isinstance(v, (int, float)) for v in head):
        return (stats, tuple(head))
    numbers = [math.nan if v is None else v for v in stats[:4]]
    return _STATS.pack(*numbers, stats[4], stats[5]) + struct.pack(f"<{len(head)}d", *head)


def _unpack_summary(packed) -> tuple[tuple, tuple]:
    if isinstance(packed, tuple):
        return packed
    numbers = _STATS.unpack_from(packed)
    stats = tuple(None if v != v else v for v in numbers[:4]) + numbers[4:]
    count = (len(packed) - _STATS.size) // 8
    return stats, struct.unpack_from(f"<{count}d", packed, _STATS.size)


class ArraySnapshot:
    """An array as it was when recorded (treat as immutable; slots keep it small and fast to make).

    ``values`` holds every element (flattened, C order) when the array had at most the configured
    number of elements; otherwise it is None and only ``head`` (the first few elements) and the
    statistics describe the array. Elements are Python numbers (float NaN/Inf allowed) or, for
    non-numeric dtypes, strings. ``min``, ``max``, ``mean`` and ``norm`` are over the finite
    elements (None when there are none); for complete snapshots they are computed on first use.
    """

    __slots__ = ("shape", "_dtype", "_values", "_array", "_extra")

    def __init__(self, shape, dtype, values, head, min=None, max=None, mean=None, norm=None,
                 nan_count=0, inf_count=0) -> None:
        self.shape = tuple(shape)
        self._dtype = dtype
        self._values = values
        self._array = None
        self._extra = (_UNSET if values is not None else
                       _pack_summary((min, max, mean, norm, int(nan_count), int(inf_count)), tuple(head)))

    def _convert(self) -> None:
        array = self._array
        self._dtype = dtype_name(array.dtype)
        flat = array.ravel()
        self._values = tuple(_python_elements(flat))
        self._array = None

    @property
    def values(self) -> tuple | None:
        """Every element (flattened, C order) when the array was small, else None."""
        if self._values is _UNSET:
            self._convert()
        return self._values

    @property
    def dtype(self) -> str:
        """The numpy dtype's name, e.g. "float64"."""
        if self._dtype is None:
            self._convert()
        return self._dtype

    def _statistics(self) -> tuple:
        extra = self._extra
        if self.values is None:
            return _unpack_summary(extra)[0]
        if extra is _UNSET:
            extra = self._extra = _statistics_of_values(self.values)
        return extra

    @property
    def head(self) -> tuple:
        """The first few elements (all of them when the array was small)."""
        if self.values is not None:
            return self.values[:HEAD_ELEMENTS]
        return _unpack_summary(self._extra)[1]

    min = property(lambda self: self._statistics()[0], doc="Smallest finite element.")
    max = property(lambda self: self._statistics()[1], doc="Largest finite element.")
    mean = property(lambda self: self._statistics()[2], doc="Mean of the finite elements.")
    norm = property(lambda self: self._statistics()[3], doc="L2 norm of the finite elements.")
    nan_count = property(lambda self: self._statistics()[4], doc="Number of NaN elements.")
    inf_count = property(lambda self: self._statistics()[5], doc="Number of ±Inf elements.")

    def _key(self) -> tuple:
        return (self.shape, self.dtype, self.values, self.head, self._statistics())

    def _nan_key(self) -> tuple:
        """``_key`` with each NaN element as one marker: ``nan != nan``, and ``hash(nan)`` differs
        between NaN objects, yet two snapshots of one array must be equal (and hash alike)."""
        shape, dtype, values, head, statistics = self._key()
        return (shape, dtype, _nan_marked(values), _nan_marked(head), statistics)

    def __eq__(self, other) -> bool:
        if not isinstance(other, ArraySnapshot):
            return NotImplemented
        if self._key() == other._key():
            return True
        # equal statistics include equal NaN counts: only then can NaN elements have made them differ
        return self.nan_count > 0 and other.nan_count == self.nan_count and self._nan_key() == other._nan_key()

    def __hash__(self) -> int:
        return hash(self._nan_key() if self.nan_count else self._key())

    def __repr__(self) -> str:
        if self.values is not None:
            return f"ArraySnapshot(shape={self.shape}, dtype={self.dtype!r}, values={self.values!r})"
        return (f"ArraySnapshot(shape={self.shape}, dtype={self.dtype!r}, head={self.head!r}, "
                f"min={self.min!r}, max={self.max!r}, mean={self.mean!r}, norm={self.norm!r}, "
                f"nan_count={self.nan_count}, inf_count={self.inf_count})")

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
    def is_zero(self) -> bool:
        """True when every element is 0 (a gradient in the "zero" state)."""
        values = self.values
        if values is not None:
            return all(v == 0 for v in values)
        return self.min == 0 and self.max == 0 and not self.has_nonfinite

    @property
    def has_nonfinite(self) -> bool:
        """True when the array held NaN or Inf."""
        stats = self._statistics()
        return stats[4] > 0 or stats[5] > 0

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


_NAN = object()  # stands for every NaN element in the keys snapshots are compared by


def _nan_marked(elements: tuple | None) -> tuple | None:
    """The elements with each float NaN replaced by the one marker ``_NAN``."""
    if elements is None:
        return None
    return tuple(_NAN if isinstance(v, float) and v != v else v for v in elements)


def _nest(flat: list, shape: tuple[int, ...]):
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = math.prod(shape[1:])
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


_DTYPE_NAMES: dict = {}


def dtype_name(dtype) -> str:
    """``str(dtype)``, cached (numpy computes it in Python, slowly)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype)
    return name


def _python_elements(arr: np.ndarray) -> list:
    """The elements as Python numbers (bool, int, float), or as text for other dtypes."""
    if arr.dtype.kind in "biu":
        return arr.ravel().tolist()
    if arr.dtype.kind == "f":
        if arr.dtype.itemsize > 8:  # longdouble: tolist() keeps numpy scalars, which JSON cannot write
            with np.errstate(over="ignore"):
                arr = arr.astype(np.float64)
        return arr.ravel().tolist()
    return [str(v) for v in arr.ravel().tolist()]


def _statistics(arr: np.ndarray) -> tuple:
    """(min, max, mean, norm, nan_count, inf_count) over the finite elements of a numeric array."""
    if arr.dtype.kind not in "biuf" or arr.size == 0:
        return None, None, None, None, 0, 0
    nan_count = inf_count = 0
    finite = arr.ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        total = finite.sum(dtype=np.float64)
        if arr.dtype.kind == "f" and not np.isfinite(total):  # only then look for NaN / Inf
            nan_count = int(np.count_nonzero(np.isnan(arr)))
            inf_count = int(np.count_nonzero(np.isinf(arr)))
            finite = finite[np.isfinite(finite)]
            total = finite.sum(dtype=np.float64)
        if finite.size == 0:
            return None, None, None, None, nan_count, inf_count
        as_float = finite.astype(np.float64, copy=False)
        return (float(as_float.min()), float(as_float.max()), float(total / as_float.size),
                float(np.sqrt(np.dot(as_float, as_float))), nan_count, inf_count)


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
    return ArraySnapshot(tuple(int(n) for n in arr.shape), dtype_name(arr.dtype), None, head,
                         *_statistics(arr))


def _statistics_of_values(values: tuple) -> tuple:
    """The same statistics as ``_statistics``, in plain Python (faster for the small arrays kept whole)."""
    if not values or not isinstance(values[0], (int, float)):
        return None, None, None, None, 0, 0
    if len(values) == 1:
        v = float(values[0])
        if v - v == 0.0:  # finite
            return v, v, v, abs(v), 0, 0
        return (None, None, None, None, 1, 0) if v != v else (None, None, None, None, 0, 1)
    finite = [v for v in values if math.isfinite(v)]
    nan_count = sum(1 for v in values if v != v)
    inf_count = len(values) - len(finite) - nan_count
    if not finite:
        return None, None, None, None, nan_count, inf_count
    return (float(min(finite)), float(max(finite)), _total(finite) / len(finite),
            math.sqrt(_total([v * v for v in finite])), nan_count, inf_count)


def _total(values: list) -> float:
    """The exact sum of finite floats; inf (with their sign) when it is beyond float range
    (``math.fsum`` raises OverflowError there: [1e308, 1e308])."""
    try:
        return math.fsum(values)
    except OverflowError:
        return sum(values)


def freeze(captured) -> ArraySnapshot | None:
    """Turn what ``capture`` returned into an ArraySnapshot (None stays None).

    A private copy (ndarray, or an immutable numpy scalar) is wrapped as it is and turned into
    Python numbers on first use: building a trace of 100k ops makes several snapshots per op,
    and most snapshots of a big trace are never looked at.
    """
    if captured is None or type(captured) is ArraySnapshot:
        return captured
    snap = _new(ArraySnapshot)
    snap.shape = captured.shape
    snap._dtype = None
    snap._values = _UNSET
    snap._array = captured
    snap._extra = _UNSET
    return snap
