"""NaN / Inf: where the first non-finite forward value or gradient appeared, and where it flowed."""

from __future__ import annotations

import math

from .diagnose_common import call_label, make_finding, op_of, var_label

__all__ = ["check_nan_forward", "check_nan_backward"]

_HINT_FORWARD = ("a value left the function's domain or overflowed: log/div of 0, sqrt or log of "
                 "a negative, exp of a large number; clip the input or use a stable formula")
_HINT_SINGULAR = ("the input sits at the function's singular point (log or 1/x at 0, sqrt at 0 or below): "
                  "its value and its derivative are not finite there; keep inputs away from it (clip, "
                  "or add a small epsilon)")
_HINT_BACKWARD = ("the forward value is finite but its derivative is not (sqrt or x**c with c < 1 "
                  "at 0, log at 0, 1/x at 0): keep inputs away from the singular point")
_HINT_DATA = "the input data already held NaN/Inf: check how it was loaded or computed"
_HINT_UPDATED = ("{label} was finite in pass {finite} and changed in place after it (an update such as "
                 "{name}.data -= lr * {name}.grad): an update brought the NaN/Inf; look at the gradients of "
                 "pass {finite} and of the passes after it (--pass all checks every pass): a .grad never "
                 "cleared grows every step, and too large a learning rate diverges")


def _bad(snap) -> bool:
    return snap is not None and snap.has_nonfinite


def _counts(snaps) -> dict:
    return {"nan": sum(s.nan_count for s in snaps if s is not None),
            "inf": sum(s.inf_count for s in snaps if s is not None)}


def _first_index(snap) -> list[int] | None:
    if snap is None or snap.values is None:
        return None
    for flat, value in enumerate(snap.values):
        if isinstance(value, float) and not math.isfinite(value):
            index, rest = [], flat
            for n in reversed(snap.shape):
                index.append(rest % n)
                rest //= n
            return index[::-1]
    return None


def _what(counts: dict) -> str:
    parts = [f"{counts[key]} {label}" for key, label in (("nan", "NaN"), ("inf", "Inf")) if counts[key]]
    return " and ".join(parts)


def _input_snaps(trace, call) -> list:
    snaps = []
    for position, vid in enumerate(call.inputs):
        snap = call.input_values[position] if position < len(call.input_values) else None
        if snap is None and vid in trace.variables:
            snap = trace.variables[vid].value
        snaps.append(snap)
    return snaps


def _flowed_into(trace, forward: list, start: set[int]) -> list[int]:
    """Variables holding NaN/Inf downstream of ``start`` that no later call consumed."""
    tainted, consumed = set(start), set()
    for call in forward:
        if tainted.intersection(call.inputs):
            consumed.update(v for v in call.inputs if v in tainted)
            tainted.update(v for v in call.outputs
                           if v in trace.variables and _bad(trace.variables[v].value))
    return sorted(tainted - consumed)


def _flow_text(trace, sinks: list[int], start: set[int]) -> str:
    later = [v for v in sinks if v not in start]
    if not later:
        return ""
    shown = ", ".join(var_label(trace, v) for v in later[:3])
    return f"; it flowed into {shown}" + (f" and {len(later) - 3} more" if len(later) > 3 else "")


def _finite_before(trace, vid: int, call_id: int) -> int | None:
    """The last kept pass whose forward, all made before call ``call_id`` (call ids count in
    forward order), saw the leaf ``vid`` finite (its data was changed in place since: a training
    loop's update), or None. A pass after the call, or sharing it, says nothing of before it."""
    finite = [p.id for p in trace.passes if vid in p.values and not _bad(p.values[vid])
              and p.calls and max(p.calls) < call_id]
    return finite[-1] if finite else None


def check_nan_forward(trace, only_calls=None) -> list:
    """nan-inf findings of the forward: calls that made NaN/Inf from finite inputs, and bad leaves.

    ``only_calls`` (a set of call ids) limits the findings to those calls, e.g. the forward graph
    of the passes being checked.
    """
    forward = [c for _, c in sorted(trace.calls.items()) if c.in_step is None]
    findings, reported_leaves = [], set()
    for call in forward:
        if only_calls is not None and call.id not in only_calls:
            continue
        inputs = _input_snaps(trace, call)
        for vid, snap in zip(call.inputs, inputs):
            record = trace.variables.get(vid)
            if _bad(snap) and record is not None and record.creator is None and vid not in reported_leaves:
                reported_leaves.add(vid)
                sinks = _flowed_into(trace, forward, {vid})
                finite = _finite_before(trace, vid, call.id)
                hint = _HINT_DATA if finite is None else _HINT_UPDATED.format(
                    label=var_label(trace, vid), name=trace.name_of(vid) or "p", finite=finite)
                findings.append(make_finding(
                    "nan-inf", f"{var_label(trace, vid)} already holds {_what(_counts([snap]))} "
                    f"when {call_label(trace, call.id)} uses it" + _flow_text(trace, sinks, {vid}),
                    variable=vid, hint=hint,
                    numbers={**_counts([snap]), "index": _first_index(snap), "flowed_into": sinks}))
        if any(_bad(s) for s in inputs):
            continue
        outputs = [trace.variables[v].value if v in trace.variables else None for v in call.outputs]
        bad = [(v, s) for v, s in zip(call.outputs, outputs) if _bad(s)]
        if not bad:
            continue
        start = {v for v, _ in bad}
        sinks = _flowed_into(trace, forward, start)
        first_var, first_snap = bad[0]
        findings.append(make_finding(
            "nan-inf", f"{call_label(trace, call.id)} turned finite inputs into "
            f"{_what(_counts([s for _, s in bad]))} (in {var_label(trace, first_var)})"
            + _flow_text(trace, sinks, start),
            call=call.id, variable=first_var, hint=_HINT_FORWARD,
            numbers={**_counts([s for _, s in bad]), "index": _first_index(first_snap),
                     "flowed_into": sinks}))
    return findings


def _behind(trace, call) -> set[int]:
    """The variables ``call``'s gradients flow back to: its inputs, their creators' inputs, ..."""
    seen: set[int] = set()
    todo = list(call.inputs)
    while todo:
        var = todo.pop()
        if var in seen:
            continue
        seen.add(var)
        record = trace.variables.get(var)
        creator = trace.calls.get(record.creator) if record is not None and record.creator is not None else None
        if creator is not None:
            todo.extend(creator.inputs)
    return seen


def check_nan_backward(trace, pass_record) -> list:
    """nan-inf findings of one pass: the seed, and steps making NaN/Inf gradients from finite ones."""
    findings = []
    if _bad(pass_record.root_grad) and pass_record.root is not None:
        findings.append(make_finding(
            "nan-inf", f"the starting gradient of {var_label(trace, pass_record.root)} holds "
            f"{_what(_counts([pass_record.root_grad]))}", pass_id=pass_record.id,
            variable=pass_record.root, hint=_HINT_DATA, numbers=_counts([pass_record.root_grad])))
        return findings
    produced = {v for c in pass_record.calls if c in trace.calls for v in trace.calls[c].outputs}
    for step in pass_record.steps:
        call = trace.calls.get(step.call)
        if call is None or step.error or any(_bad(g) for g in step.grads_in):
            continue
        if any(_bad(s) for s in _input_snaps(trace, call)):
            continue  # the NaN/Inf came in with the data: the forward finding explains it
        forward_bad = any(_bad(trace.variables[v].value) for v in call.outputs if v in trace.variables)
        bad = [(call.inputs[i], g) for i, g in enumerate(step.grads_out)
               if _bad(g) and i < len(call.inputs)]
        if forward_bad and not _counts([g for _, g in bad])["nan"]:
            continue  # Inf from an output that overflowed (exp(1000)): the forward finding says it
        if not bad:
            continue
        behind = _behind(trace, call)  # only leaves its gradient reaches (not another branch's)
        leaves = sorted(v for v in pass_record.variables  # a constant's gradient is never used
                        if v in behind and v not in produced and not trace.is_constant(v)
                        and _bad(pass_record.grads.get(v)))
        first_var, first_grad = bad[0]
        reached = ", ".join(var_label(trace, v) for v in leaves[:3])
        findings.append(make_finding(
            "nan-inf", f"{op_of(trace, call.id)}.backward turned finite gradients into "
            f"{_what(_counts([g for _, g in bad]))} (for {var_label(trace, first_var)})"
            + (f"; the final gradient of {reached} is not finite" if reached else "")
            + ("; its forward had made its output not finite already, from the same inputs"
               if forward_bad else ""),
            pass_id=pass_record.id, call=call.id, variable=first_var, step=step.index,
            hint=_HINT_SINGULAR if forward_bad else _HINT_BACKWARD,
            numbers={**_counts([g for _, g in bad]), "index": _first_index(first_grad),
                     "flowed_into": leaves}))
        break
    return findings
