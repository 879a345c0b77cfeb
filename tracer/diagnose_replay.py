"""Re-running recorded forwards for tracer.diagnose: replays of kept Function state, derivatives."""

from __future__ import annotations

import numpy as np

from .fnstate import DROPPED

__all__ = ["Replay", "ReplayCache", "call_inputs", "interval_gradient", "interval_mismatch",
           "numeric_mismatch", "output_eps"]


def _plain_array(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    data = getattr(value, "data", value)
    return np.asarray(data)


class Replay:
    """One recorded call ready to re-run: ``run(arrays)`` calls ``forward`` on a fresh copy."""

    __slots__ = ("cls", "state", "inputs", "list_is_outputs", "takes_list")

    # How engines call forward and read what it returns: forward(*xs) or, as in the book's
    # step 11, forward(xs); a returned list is one output's data or, for some, the outputs.
    STYLES = ((False, False), (False, True), (True, False), (True, True))

    def __init__(self, cls: type, state: dict, inputs: list[np.ndarray]) -> None:
        self.cls, self.state, self.inputs = cls, state, inputs
        self.takes_list, self.list_is_outputs = self.STYLES[0]

    def run(self, arrays) -> list[np.ndarray]:
        """The forward's outputs for ``arrays`` (copied first: a forward may change its inputs)."""
        return self.run_on([a.copy() for a in arrays])

    def run_on(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The forward's outputs, run on ``arrays`` themselves (a forward may change them)."""
        fn = self.cls.__new__(self.cls)
        for name, value in self.state.items():
            setattr(fn, name, value)
        result = fn.forward(arrays) if self.takes_list else fn.forward(*arrays)  # warnings: callers
        return self.outputs_of(result)

    def with_inputs(self, arrays: list[np.ndarray]) -> Replay:
        """The same replay (class, state, calling style) on other input arrays."""
        other = Replay(self.cls, self.state, arrays)
        other.takes_list, other.list_is_outputs = self.takes_list, self.list_is_outputs
        return other

    def outputs_of(self, result) -> list[np.ndarray]:
        """A forward's return value as its list of output arrays."""
        many = isinstance(result, tuple) or (self.list_is_outputs and isinstance(result, list))
        return [_plain_array(y) for y in (result if many else (result,))]


def call_inputs(trace, call) -> list[np.ndarray] | None:
    """The arrays a call's forward received, or None when one was only summarised."""
    arrays = []
    for position, vid in enumerate(call.inputs):
        snap = call.input_values[position] if position < len(call.input_values) else None
        if snap is None:
            record = trace.variables.get(vid)
            snap = record.value if record is not None else None
        if snap is None or snap.values is None or snap.dtype.startswith(("<U", "str", "object")):
            return None
        arrays.append(snap.to_array())
    return arrays


def _close(actual: np.ndarray, snap) -> bool:
    """True when a re-computed output matches its recorded snapshot."""
    if tuple(actual.shape) != tuple(snap.shape):
        return False
    kind = actual.dtype.kind
    if snap.values is None:
        if kind not in "biuf":
            return True
        nan_count = int(np.count_nonzero(np.isnan(actual))) if kind == "f" else 0
        if nan_count != snap.nan_count:
            return False
        finite = actual[np.isfinite(actual)] if kind == "f" else actual
        if snap.mean is None or finite.size == 0:
            return snap.mean is None and finite.size == 0
        scale = max(abs(snap.min), abs(snap.max), 1e-300)
        return abs(float(finite.astype(np.float64).mean()) - snap.mean) <= 1e-4 * scale
    expected = snap.to_array()
    if kind not in "fc" or expected.dtype.kind not in "fc":
        return bool(np.array_equal(actual, expected))
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    rtol = max(1e-9, 1e3 * float(np.finfo(expected.dtype).eps))
    finite = np.isfinite(e)
    if finite.all() and np.isfinite(a).all():  # the common case, fast
        diff = float(np.abs(a - e).max(initial=0.0))
        return diff <= rtol * max(float(np.abs(e).max(initial=0.0)), 1e-300)
    if not np.array_equal(np.isnan(a), np.isnan(e)):
        return False
    infinite = np.isinf(e)
    if not np.array_equal(np.isinf(a), infinite) or not np.array_equal(a[infinite], e[infinite]):
        return False
    if not finite.any():
        return True
    scale = float(np.abs(e[finite]).max())
    return float(np.abs(a[finite] - e[finite]).max()) <= rtol * max(scale, 1e-300)


_RANDOM = "its forward draws random numbers (e.g. dropout while training)"


def _random_state_changed(before, after) -> bool:
    return before[2] != after[2] or not np.array_equal(before[1], after[1])


class ReplayCache:
    """Replays of a trace's calls, built and checked once each; ``reasons`` says why not."""

    def __init__(self, trace) -> None:
        self.trace = trace
        self._replays: dict[int, Replay | None] = {}
        self._random: dict[type, bool] = {}  # Function class -> its forward draws from np.random
        self.reasons: dict[int, str] = {}

    def get(self, call_id: int) -> Replay | None:
        """The call's replay, or None (see ``reasons[call_id]``)."""
        if call_id not in self._replays:
            replay, reason = self._build(call_id)
            self._replays[call_id] = replay
            if reason:
                self.reasons[call_id] = reason
        return self._replays[call_id]

    def try_inputs(self, call_id: int, arrays: list[np.ndarray]) -> Replay | None:
        """A replay of the call on other input arrays, when they reproduce its recorded outputs
        (not kept: ``put`` keeps it)."""
        return self._build(call_id, arrays)[0]

    def put(self, call_id: int, replay: Replay) -> None:
        """Use ``replay`` for the call from now on (its forward received other arrays than the
        recorded ones: a forward before it changed one in place)."""
        self._replays[call_id] = replay
        self.reasons.pop(call_id, None)

    def _guarded_run(self, replay: Replay) -> list[np.ndarray]:
        """Run a replay with np.random's state saved and restored; the first run of a class that
        succeeds notes whether its forward draws from np.random (slow, ~0.1 ms: once per class)."""
        before = np.random.get_state()
        try:
            outputs = replay.run(replay.inputs)
        finally:
            after = np.random.get_state()
            np.random.set_state(before)
        self._random[replay.cls] = _random_state_changed(before, after)
        return outputs

    def _build(self, call_id: int, given=None) -> tuple[Replay | None, str | None]:
        trace = self.trace
        call = trace.calls.get(call_id)
        cls = getattr(trace, "function_types", {}).get(call_id)
        state = getattr(trace, "function_states", {}).get(call_id)
        if call is None or cls is None or state is None:
            return None, "its Function class was not recorded (e.g. a trace read from JSON)"
        if call.error:
            return None, "its forward raised"
        if any(value is DROPPED for value in state.values()):
            return None, "it keeps an array too large to record (raise max_elements)"
        inputs = call_inputs(trace, call) if given is None else given
        if inputs is None:
            return None, "an input was too large to record whole (raise max_elements)"
        recorded = [trace.variables[v].value if v in trace.variables else None for v in call.outputs]
        if any(snap is None for snap in recorded):
            return None, "an output value was not recorded"
        if self._random.get(cls):
            return None, _RANDOM
        replay = Replay(cls, state, inputs)
        first_error, ran = None, False
        for style in Replay.STYLES:  # the first way of calling forward that gives the recorded outputs
            replay.takes_list, replay.list_is_outputs = style
            try:
                outputs = replay.run(inputs) if self._random.get(cls) is False else self._guarded_run(replay)
            except Exception as exc:  # noqa: BLE001 - user code: any failure means "not replayable"
                first_error = first_error or exc
                continue
            ran = True
            if self._random[cls]:
                return None, _RANDOM
            if _same(outputs, recorded):
                return replay, None
        if not ran:
            return None, f"re-running its forward raised {type(first_error).__name__}"
        return None, ("re-running its forward did not reproduce the recorded output (does it change its "
                      "input in place, or read something it does not keep?)")


def _same(outputs, recorded) -> bool:
    return len(outputs) == len(recorded) and all(_close(y, s) for y, s in zip(outputs, recorded))


def output_eps(outputs) -> float:
    """Machine epsilon of the least precise floating output (float64's when there is none)."""
    eps = float(np.finfo(np.float64).eps)
    for y in outputs:
        if y.dtype.kind == "f":
            eps = max(eps, float(np.finfo(y.dtype).eps))
    return eps


def interval_gradient(phi, arrays: list[np.ndarray], index: int, step: float):
    """One-sided and central differences of the scalar ``phi(arrays)`` w.r.t. ``arrays[index]``.

    Returns (lower, upper, central) arrays shaped like the input: at a smooth point the true
    derivative lies between the one-sided estimates (up to rounding), at a kink (relu at 0, ties
    of max) every subgradient does. Elements whose perturbed value is not finite are NaN.
    """
    x = arrays[index]
    flat = x.reshape(-1)
    lower = np.full(x.size, np.nan)
    upper = np.full(x.size, np.nan)
    central = np.full(x.size, np.nan)
    phi0 = phi(arrays)
    if not np.isfinite(phi0):
        return lower.reshape(x.shape), upper.reshape(x.shape), central.reshape(x.shape)
    for j in range(x.size):
        old = float(flat[j])
        h = step * max(1.0, abs(old))
        up_x, down_x = old + h, old - h
        flat[j] = up_x
        up = phi(arrays)
        flat[j] = down_x
        down = phi(arrays)
        flat[j] = old
        h_up, h_down = up_x - old, old - down_x
        left, right = (phi0 - down) / h_down, (up - phi0) / h_up
        if np.isfinite(left) and np.isfinite(right):
            lower[j], upper[j] = min(left, right), max(left, right)
            central[j] = (up - down) / (h_up + h_down)
    return lower.reshape(x.shape), upper.reshape(x.shape), central.reshape(x.shape)


def interval_mismatch(analytic: np.ndarray, lower, upper, central, rtol: float, atol: float):
    """Numbers describing how far ``analytic`` falls outside the numerical interval, or None.

    Elements where either side is not finite are not judged. The allowed distance is
    ``rtol * scale + atol`` with scale the largest analytic or numerical magnitude.
    """
    a = analytic.astype(np.float64)
    valid = np.isfinite(a) & np.isfinite(lower) & np.isfinite(upper)
    if not valid.any():
        return None
    distance = np.where(valid, np.maximum(np.maximum(lower - a, a - upper), 0.0), 0.0)
    scale = max(float(np.abs(a[valid]).max()), float(np.abs(central[valid]).max()))
    worst = int(np.argmax(distance))
    if float(distance.reshape(-1)[worst]) <= rtol * scale + atol:
        return None
    error = np.where(valid, np.abs(a - central), 0.0)
    where = np.unravel_index(worst, a.shape) if a.ndim else ()
    return {"relative_error": float(error.max()) / max(scale, 1e-300),
            "max_abs_error": float(error.max()),
            "analytic": float(a[where]), "numerical": float(central[where]),
            "index": [int(i) for i in where]}


def numeric_mismatch(phi, arrays, index: int, analytic: np.ndarray, eps: float, magnitude: float,
                     rtol: float, atol: float):
    """How ``analytic`` disagrees with numerical derivatives of ``phi``, or None when it agrees.

    A disagreement counts only when it holds at two step sizes (cube root of the outputs'
    ``eps``, and 16 times that), each allowed the rounding noise of ``phi``: ``magnitude``
    (the sum of absolute terms of phi) times ``eps`` over the step. This keeps cancellation
    and absorption in the forward from posing as a wrong gradient.
    """
    step = eps ** (1 / 3)
    first = None
    for factor in (1.0, 16.0):
        lower, upper, central = interval_gradient(phi, arrays, index, step * factor)
        noise = 8 * eps * magnitude / (step * factor)
        found = interval_mismatch(analytic, lower, upper, central, rtol, atol + noise)
        if found is None:
            return None
        first = first or found
    return first
