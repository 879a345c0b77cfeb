"""The changed-input check: forwards that change their input arrays in place, and whose backward read the changed value."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .diagnose_common import Settings, call_label, make_finding, op_of, var_label
from .diagnose_replay import ReplayCache, call_inputs
from .labels import format_array
from .snapshot import capture, freeze

PER_SIGNATURE = 50  # re-runs per op and input shapes in one diagnosis (a long run repeats a few)
PER_PASS = 5  # ... and at least this many in each pass

__all__ = ["InPlace", "Change", "in_place_changes", "check_changed_input"]

_HINT = ("a forward must leave its inputs as they are (their Variables keep that array, and other "
         "functions' backward read it later): compute a new array instead, e.g. `np.maximum(x, 0)` "
         "for `x[x < 0] = 0`, `x - x.max()` for `x -= x.max()`, or copy first (`x = x.copy()`)")


@dataclass
class Change:
    """One forward that changed one of its input arrays in place."""

    call: int
    position: int
    variable: int
    before: np.ndarray
    after: np.ndarray
    confirmed: bool = False  # the run itself shows the change (see in_place_changes)
    misled: list[int] = field(default_factory=list)  # calls whose backward read the changed value
    read_by: list[int] = field(default_factory=list)  # later forwards that ran on the changed value


@dataclass
class InPlace:
    """The in-place changes of one pass's forward, in forward order, and each changed variable's
    value after the last of them (what the pass's backward steps read)."""

    changes: list[Change] = field(default_factory=list)
    final: dict[int, np.ndarray] = field(default_factory=dict)
    inputs_of: dict[int, set] = field(default_factory=dict)  # call id -> its input variable ids

    def inputs_at_backward(self, call, arrays: list[np.ndarray]) -> list[np.ndarray] | None:
        """``call``'s input arrays as its backward found them, when a forward changed one after
        ``call``'s forward ran (else None)."""
        if not self.final:
            return None
        later = [self.final.get(vid) for vid in call.inputs]
        if all(value is None or _equal(value, array) for value, array in zip(later, arrays)):
            return None
        return [array if value is None else value for value, array in zip(later, arrays)]

    def explain(self, call_id: int) -> None:
        """Note that ``call_id``'s backward, wrong at its forward's inputs, is right at the
        changed values it read: the change made its gradients wrong."""
        inputs = self.inputs_of.get(call_id, ())
        for change in self.changes:
            if change.variable in inputs and call_id not in change.misled:
                change.misled.append(call_id)

    def changed_outputs(self, call) -> list[Change]:
        """The changes of variables that ``call`` made (its backward may read its own output)."""
        outputs = set(call.outputs)
        return [change for change in self.changes if change.variable in outputs]


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    try:
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    except TypeError:
        return bool(np.array_equal(a, b))


def in_place_changes(trace, pass_record, cache: ReplayCache, settings: Settings | None = None) -> InPlace:
    """Re-run the pass's forwards in order, each on what it received, and see which changed an
    input array.

    What a forward received is its recorded input, unless a forward before it changed that
    variable (the recorder saw a variable's value when it was made, a leaf's after each forward
    that used it). A change counts as seen (``confirmed``) only with evidence from the run itself:
    a leaf recorded, after the forward, as the very value the re-run turned it into; or a later
    forward whose recorded output only the changed value reproduces. An engine that hands its
    forwards copies (or keeps .data as Python floats) changes nothing of the Variable's: its
    re-runs find changes the run never saw. ``settings`` (its re-runs per op and input shapes,
    shared by the passes of one diagnosis) bounds the work on long runs."""
    found = InPlace()
    latest: dict[int, np.ndarray] = {}  # variable id -> its value as the forwards so far left it
    last_change: dict[int, Change] = {}
    settings = Settings() if settings is None else settings
    cap, changers, in_pass = settings.per_signature, settings.changers, {}
    changed_at = trace.leaf_changed_at
    for call_id in sorted(pass_record.calls):
        call = trace.calls.get(call_id)
        if call is None or call.error or not call.inputs:
            continue
        found.inputs_of[call_id] = set(call.inputs)
        recorded = call_inputs(trace, call)
        if recorded is None:
            continue
        received = [latest.get(vid, array) for vid, array in zip(call.inputs, recorded)]
        for position, vid in enumerate(call.inputs):
            if vid not in latest and changed_at.get(vid) == call_id:
                as_received = _leaf_value(trace, vid)  # the leaf as its first forward got it
                if as_received is not None and as_received.shape == recorded[position].shape:
                    received[position] = as_received
        differing = [p for p, (a, b) in enumerate(zip(received, recorded)) if not _equal(a, b)]
        signature = ("changed-input", call.op, tuple(a.shape for a in recorded))
        in_pass[signature] = in_pass.get(signature, 0) + 1
        if not differing and call.op not in changers and cap.get(signature, 0) >= PER_SIGNATURE \
                and in_pass[signature] > PER_PASS:
            continue
        cap[signature] = cap.get(signature, 0) + 1
        replay = cache.get(call_id)
        changed_by_it = False
        if differing:
            trial = cache.try_inputs(call_id, received)
            if trial is not None:
                copies = [a.copy() for a in received]
                try:
                    with np.errstate(all="ignore"):
                        trial.run_on(copies)
                except Exception:  # noqa: BLE001 - user code
                    copies = received
                changed_by_it = all(_equal(copies[p], recorded[p]) for p in differing)
                if changed_by_it or replay is None:
                    cache.put(call_id, trial)
                    replay = trial
                if replay is trial and not changed_by_it:  # it ran on what a forward before left
                    for p in differing:
                        change = last_change.get(call.inputs[p])
                        if change is not None:
                            change.confirmed = True
                            change.read_by.append(call_id)
        if replay is None:  # not re-run (a trace read from JSON): the changes the run recorded
            if _recorded_changes(trace, call, received, recorded, found, last_change, latest):
                changers.add(call.op)
            continue
        copies = [array.copy() for array in replay.inputs]
        try:
            with np.errstate(all="ignore"):
                replay.run_on(copies)
        except Exception:  # noqa: BLE001 - user code: what cannot be re-run is not judged
            continue
        made = [trace.variables[v].value for v in call.outputs if v in trace.variables]
        for position, vid in enumerate(call.inputs):
            before, after = replay.inputs[position], copies[position]
            if not _equal(before, after):
                # evidence: it changed the leaf the run recorded after it, or returned the
                # changed array itself (its output was recorded as that value: x[x < 0] = 0; return x)
                returned = any(_equal(after, snap.to_array()) for snap in made
                               if snap is not None and snap.values is not None and snap.shape == after.shape)
                change = Change(call_id, position, vid, before, after,
                                confirmed=(changed_by_it and position in differing) or returned)
                found.changes.append(change)
                last_change[vid] = change
                changers.add(call.op)
                latest[vid] = after
            elif vid in trace.variables and trace.variables[vid].creator is None:
                earlier = last_change.get(vid)
                if earlier is not None and earlier.call != call_id and position not in differing \
                        and _equal(earlier.after, before):
                    earlier.read_by.append(call_id)  # a leaf recorded as the change left it
                latest[vid] = before  # a leaf: its value at this forward, to compare the next one with
    for change in found.changes:
        found.final[change.variable] = latest[change.variable]
    return found


def _recorded_changes(trace, call, received: list, recorded: list, found: InPlace,
                      last_change: dict, latest: dict) -> bool:
    """Judge a call that cannot be re-run on its records alone (True when it changed a leaf): a
    leaf it received as one value and left as another (``leaf_changed_at``: the recorder saw it
    change) is its change; a leaf it ran on as a change before it left it is read by it."""
    changed_at = trace.leaf_changed_at
    changed = False
    for position, vid in enumerate(call.inputs):
        record = trace.variables.get(vid)
        if record is None or record.creator is not None:
            continue
        before, after = received[position], recorded[position]
        if changed_at.get(vid) == call.id and not _equal(before, after):
            change = Change(call.id, position, vid, before, after, confirmed=True)
            found.changes.append(change)
            last_change[vid] = change
            changed = True
        else:
            earlier = last_change.get(vid)
            if earlier is not None and earlier.call != call.id and _equal(earlier.after, after):
                earlier.read_by.append(call.id)
        latest[vid] = after
    return changed


def _leaf_value(trace, vid: int) -> np.ndarray | None:
    snap = trace.variables[vid].value
    if snap is None or snap.values is None or snap.dtype.startswith(("<U", "str", "object")):
        return None
    return snap.to_array()


def check_changed_input(trace, pass_record, in_place: InPlace) -> list:
    """changed-input: a forward that changed its input array in place (an error when another
    function's backward then read the changed value, a warning otherwise)."""
    findings = []
    step_of = {step.call: step.index for step in pass_record.steps}
    reported = set()
    for change in in_place.changes:
        if (change.call, change.variable) in reported or not (change.confirmed or change.misled):
            continue  # a re-run's change the run never saw (a forward handed a copy)
        reported.add((change.call, change.variable))
        op, name = op_of(trace, change.call), var_label(trace, change.variable)
        before, after = _text(change.before), _text(change.after)
        count = int(np.count_nonzero(~_same_elements(change.before, change.after)))
        elements = "" if change.before.ndim == 0 else f" ({count} of {change.before.size} elements)"
        message = (f"{op}.forward changes its input inputs[{change.position}], {name}, in place: "
                   f"{before} became {after}{elements}")
        effects = []
        if change.call in change.misled:
            effects.append(f"its own backward (step {step_of[change.call]}) read the changed value")
        readers = [c for c in change.misled if c != change.call]
        if readers:
            names = ", ".join(f"{op_of(trace, c)} (step {step_of[c]})" for c in readers)
            effects.append(f"the backward of {names}, which used it before, read the changed value")
        later = sorted(set(change.read_by))
        if later:
            names = ", ".join(call_label(trace, c) for c in later[:3]) + (", ..." if len(later) > 3 else "")
            effects.append(f"{names} then ran on the changed value")
        if effects:
            message += "; " + "; ".join(effects)
        severity = "error" if readers or later or change.call in change.misled else "warning"
        findings.append(make_finding(
            "changed-input", message, pass_id=pass_record.id, call=change.call,
            variable=change.variable, step=step_of.get(change.call), severity=severity, hint=_HINT,
            numbers={"input": change.position, "elements_changed": count}))
    return findings


def _text(array: np.ndarray) -> str:
    """An array as reports show values (the first few elements of a large one)."""
    return format_array(freeze(capture(array, 0 if array.size > 12 else array.size)), 6)


def _same_elements(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    same = a == b
    if a.dtype.kind in "fc":
        same |= np.isnan(a) & np.isnan(b)
    return np.asarray(same)
