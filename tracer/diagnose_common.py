"""Shared pieces of tracer.diagnose: settings, node labels, rounding, gradient arithmetic."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .labels import format_array
from .records import Finding

__all__ = ["KINDS", "Settings", "call_label", "var_label", "op_of", "rounded", "make_finding",
           "Amount", "amount", "total_amount", "zero_amount", "prior_grads", "grads_written_after_steps", "same_grad",
           "float_eps"]

# Every finding kind, causes before symptoms (the order reports list them in).
KINDS = ("nan-inf", "shape-mismatch", "changed-input", "wrong-backward", "wrong-gradient-passed", "premature-backward",
         "repeated-step", "missing-step", "overwritten-gradient", "stale-gradient", "leaf-gradient")


@dataclass
class Settings:
    """How strict the numerical checks are, how much work they may do, and notes on what was skipped."""

    tolerance: float = 1e-3
    budget: int = 100_000
    notes: list[str] = field(default_factory=list)
    spent: int = 0  # forward re-runs the leaf-gradient checks have used so far
    # steps / calls checked so far per (check, op, input shapes), across the passes of one
    # diagnosis: check's first 10 passes and the last repeat one graph
    per_signature: dict = field(default_factory=dict)
    changers: set = field(default_factory=set)  # ops seen changing an input: their re-runs are not capped

    def note(self, text: str) -> None:
        """Remember that something could not be checked (each text once)."""
        if text not in self.notes:
            self.notes.append(text)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def op_of(trace, call_id: int | None) -> str:
    """The op name of a call ("?" when unknown)."""
    call = trace.calls.get(call_id) if call_id is not None else None
    return _printable(call.op) if call is not None else "?"


def call_label(trace, call_id: int) -> str:
    """A call as reports name it: ``Square (f3)`` (f3 is its node id in the pictures)."""
    return f"{op_of(trace, call_id)} (f{call_id})"


def var_label(trace, var_id: int) -> str:
    """A variable as reports name it: ``x (v1)``; ``the constant 0.1 (v3)`` for a number the
    engine wrapped; ``the output of Mul (v4)`` for an unnamed result; else ``v1``."""
    name = trace.name_of(var_id)
    if name:
        return f"{_printable(name)} (v{var_id})"
    record = trace.variables.get(var_id)
    if trace.is_constant(var_id):
        value = record.value
        if value is not None and value.size == 1:
            return f"the constant {format_array(value, 6)} (v{var_id})"
    creator = trace.calls.get(record.creator) if record is not None and record.creator else None
    if creator is not None:  # as the player's panel says it: an unnamed box shows no id
        return f"the output of {_printable(creator.op)} (v{var_id})"
    return f"v{var_id}"


def rounded(value):
    """Numbers for ``Finding.numbers``: floats to 6 significant digits, lists element-wise."""
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    value = float(value)
    return float(f"{value:.6g}") if np.isfinite(value) else value


def make_finding(kind: str, message: str, *, pass_id=None, call=None, variable=None, step=None,
                 severity: str = "error", hint: str = "", numbers=None) -> Finding:
    """A Finding with its numbers rounded (so reports and JSON are stable)."""
    return Finding(kind, message, pass_id, call, variable, step, severity, hint,
                   {k: rounded(v) for k, v in (numbers or {}).items()})


@functools.lru_cache(maxsize=64)
def float_eps(dtype_name: str) -> float:
    """Machine epsilon of a float dtype name (float64's for anything else)."""
    try:
        dtype = np.dtype(dtype_name)
    except TypeError:
        return float(np.finfo(np.float64).eps)
    return float(np.finfo(dtype).eps) if dtype.kind == "f" else float(np.finfo(np.float64).eps)


class Amount:
    """A gradient for sums and comparisons: the whole array when known, else only its mean."""

    __slots__ = ("array", "mean", "scale", "eps", "shape")

    def __init__(self, array, mean, scale, eps, shape):
        self.array, self.mean, self.scale, self.eps, self.shape = array, mean, scale, eps, shape

    def __add__(self, other: Amount) -> Amount:
        if self.shape != other.shape:
            raise ValueError("shapes differ")
        array = (self.array + other.array
                 if self.array is not None and other.array is not None else None)
        mean = self.mean + other.mean if self.mean is not None and other.mean is not None else None
        return Amount(array, mean, self.scale + other.scale, max(self.eps, other.eps), self.shape)

    def describe(self) -> str:
        """Short text: the values (the first four), or the mean when only that is known."""
        if self.array is None:
            return f"mean {self.mean:.6g}"
        flat = self.array.reshape(-1)
        items = ", ".join(f"{v:.6g}" for v in flat[:4]) + (", ..." if flat.size > 4 else "")
        return items if self.array.ndim == 0 else f"[{items}]"

    def matches(self, other: Amount, rtol: float) -> bool | None:
        """True/False when the two agree within rtol of their scale; None when unknown."""
        if self.shape != other.shape:
            return None
        tol = max(rtol, 1e3 * max(self.eps, other.eps)) * max(self.scale, other.scale, 1e-300)
        if self.array is not None and other.array is not None:
            diff = np.abs(self.array - other.array)
            if not np.isfinite(diff).all():
                return None
            return bool(diff.max(initial=0.0) <= tol)
        if self.mean is None or other.mean is None:
            return None
        return abs(self.mean - other.mean) <= tol


def amount(snap) -> Amount | None:
    """An Amount from an ArraySnapshot (None for None, non-numeric, or NaN/Inf data)."""
    if snap is None or not _sums(snap.dtype):
        return None
    eps = float_eps(snap.dtype)
    if snap.values is not None:
        array = np.array(snap.values, dtype=np.float64).reshape(snap.shape)
        magnitude = np.abs(array)
        scale = float(magnitude.max(initial=0.0))
        if not np.isfinite(scale):
            return None
        return Amount(array, float(array.mean()) if array.size else 0.0, scale, eps, tuple(snap.shape))
    if snap.has_nonfinite or snap.mean is None:
        return None
    scale = max(abs(snap.min), abs(snap.max))
    return Amount(None, snap.mean, scale, eps, tuple(snap.shape))


def _sums(dtype_name: str) -> bool:
    """Int or float data, which an Amount holds as float64 (not bool, and not complex, text,
    bytes or dates: snapshots keep those as text)."""
    try:
        return np.dtype(dtype_name).kind in "iuf"
    except TypeError:
        return False


def total_amount(parts) -> Amount:
    """The sum of Amounts (at least one; ValueError when their shapes differ)."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def zero_amount(shape: tuple) -> Amount:
    """The Amount of a gradient that was None (zeros)."""
    return Amount(np.zeros(shape), 0.0, 0.0, 0.0, tuple(shape))


def prior_grads(trace, pass_record) -> dict | None:
    """``.grad`` of the pass's variables when it started ({} for all None); None when unknown."""
    known = getattr(trace, "initial_grads", None) or {}
    return known.get(pass_record.id)


def grads_written_after_steps(trace, pass_record) -> bool:
    """Whether the pass's engine hands gradients on some other way (a dict of them) and writes
    ``.grad`` only when its steps are done: no step but the last left any input's ``.grad``
    other than it was when the pass began, yet the pass ended with some ``.grad`` changed.

    A step's ``.grad`` after it is read when the next step starts (the last one's when the pass
    ends), so in such an engine every step's reading but the last shows the old ``.grad``: the
    checks that follow gradients through ``.grad`` step by step do not apply to it."""
    steps = [step for step in pass_record.steps if not step.error]
    if len(steps) < 2:
        return False
    before = prior_grads(trace, pass_record) or {}
    for step in steps[:-1]:
        call = trace.calls.get(step.call)
        if call is None:
            return False
        if len(step.accumulated) < len(call.inputs):
            return False  # not read: nothing is known
        for position, vid in enumerate(call.inputs):
            if not same_grad(step.accumulated[position], before.get(vid)):
                return False
    return any(not same_grad(grad, before.get(vid)) for vid, grad in pass_record.grads.items())


def same_grad(after, before) -> bool:
    """``.grad`` (a snapshot or None) as it was before. Not told for one holding NaN: NaN plus a
    gradient is NaN again, so equal snapshots with NaN do not show that nothing was added."""
    return after == before and (after is None or not after.nan_count)
