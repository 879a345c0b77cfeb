"""tracer.diagnose: find the usual backprop bugs in a Trace and point at the node responsible."""

from __future__ import annotations

import dataclasses

import numbers

import numpy as np

from .diagnose_common import KINDS, Settings
from .diagnose_inplace import check_changed_input, in_place_changes
from .diagnose_grad import check_detached, check_leaf_gradient, check_wrong_backward
from .diagnose_nan import check_nan_backward, check_nan_forward
from .diagnose_accumulate import check_overwritten
from .diagnose_order import check_order
from .diagnose_shapes import check_shapes
from .diagnose_replay import ReplayCache
from .diagnose_stale import check_stale_gradient, forward_inputs
from .diagnose_report import findings_from_json, findings_to_json, format_report
from .errors import TraceError
from .numlists import ranges
from .records import Finding
from .trace import require_trace

__all__ = ["diagnose", "attach", "format_report", "findings_to_json", "findings_from_json", "ranges",
           "CHECKS", "DEFAULT_TOLERANCE", "DEFAULT_BUDGET", "DiagnoseError"]

CHECKS = KINDS
DEFAULT_TOLERANCE = 1e-3
DEFAULT_BUDGET = 100_000


class DiagnoseError(TraceError):
    """The trace cannot be diagnosed (e.g. it is still recording)."""


def _kinds(checks) -> frozenset:
    if checks is None:
        return frozenset(KINDS)
    if isinstance(checks, str):
        checks = [checks]
    chosen = frozenset(checks)
    unknown = sorted(chosen - set(KINDS))
    if unknown:
        raise ValueError(f"unknown check {', '.join(map(repr, unknown))}: choose from {', '.join(KINDS)}")
    return chosen


def _sort_key(finding: Finding):
    return (finding.pass_id or 0, KINDS.index(finding.kind),
            finding.step if finding.step is not None else 1 << 62,
            finding.call or 0, finding.variable or 0, finding.message)


def _passes(trace, passes):
    if passes is None:
        return list(trace.passes)
    if isinstance(passes, (int, str)):
        passes = [passes]
    selected = [trace.select_pass(which) for which in passes]
    return [p for p in selected if p is not None]


def _unsupported(trace, var_ids) -> list[str]:
    """The dtypes of ``var_ids`` the checks do not cover (complex, object, strings)."""
    records = (trace.variables.get(v) for v in var_ids)
    return sorted({r.dtype for r in records
                   if r is not None and r.dtype is not None and np.dtype(r.dtype).kind not in "biuf"})


def diagnose(trace, *, tolerance: float = DEFAULT_TOLERANCE, checks=None, passes=None,
             budget: int = DEFAULT_BUDGET, notes: list | None = None,
             attach: bool = True, whole_forward: bool | None = None) -> tuple[Finding, ...]:
    """Check a finished Trace; return its findings (sorted) and, with ``attach``, set ``trace.findings``.

    ``checks`` limits the kinds (see ``CHECKS``; default all); ``passes`` the backward passes
    (pass numbers, default every kept pass). ``tolerance`` is the relative error the numerical
    gradient checks accept (float32 data is given at least what its precision needs);
    ``budget`` caps the forward re-runs of the numerical checks: for one step's wrong-backward
    check, and for the leaf-gradient checks of all passes together. Pass a list as ``notes``
    to receive one line per thing that could not be checked, and why. The forward checks
    (NaN/Inf) look at the chosen passes' graphs when ``passes`` is given, at every recorded call
    otherwise; ``whole_forward`` overrides that (``gradtrace check`` without ``--pass`` checks the
    first 10 passes and the last, and the whole forward, including the call that ended the run).
    """
    require_trace(trace, "diagnose")
    if not trace.complete:
        raise DiagnoseError("the trace is not finished: diagnose it after the `with tracer.trace()` "
                            "block (or run_script) has ended")
    if (isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real)
            or not 0 < tolerance < 1):
        raise ValueError(f"tolerance must be a number between 0 and 1, got {tolerance!r}")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ValueError(f"budget must be a whole number >= 0, got {budget!r}")
    kinds = _kinds(checks)
    settings = Settings(float(tolerance), budget)
    chosen = _passes(trace, passes)
    scoped = passes is not None if whole_forward is None else not whole_forward
    forward_calls = None  # the forward checks' calls: those of the chosen passes when scoped, else all
    unsupported_anywhere = _unsupported(trace, trace.variables)
    if unsupported_anywhere:  # complex data: check only passes and calls without any
        forward_calls = {c.id for c in trace.calls.values() if not _unsupported(trace, (*c.inputs, *c.outputs))}
        kept = []
        for pass_record in chosen:
            unsupported = _unsupported(trace, pass_record.variables)
            if unsupported:
                settings.notes.append(f"pass {pass_record.id}: it holds {', '.join(unsupported)} data; the "
                                      f"checks cover real-valued (int, float, bool) arrays only")
            else:
                kept.append(pass_record)
        if not kept:
            dtypes = ", ".join(unsupported_anywhere)
            settings.notes.append(f"nothing checked: the trace holds {dtypes} data; the checks cover "
                                  f"real-valued (int, float, bool) arrays only")
            if notes is not None:
                notes.extend(settings.notes)
            if attach:
                trace.findings = ()
            return ()
        chosen = kept
    with np.errstate(all="ignore"):  # re-run forwards may divide by zero, overflow...
        found = _run_checks(trace, kinds, settings, chosen, scoped=scoped, forward_calls=forward_calls)
    result = tuple(sorted(_with_class_notes(trace, found), key=_sort_key))
    if notes is not None:
        notes.extend(settings.notes)
    if attach:
        trace.findings = result
    return result


def _with_class_notes(trace, findings) -> list[Finding]:
    """Findings at calls of a class an earlier definition of which ran (a notebook cell run
    again) say so first in their hint: the code in front of the student is not what ran."""
    notes = getattr(trace, "class_notes", {})
    if not notes:
        return list(findings)
    types = trace.function_types
    changed = []
    for finding in findings:
        note = notes.get(types.get(finding.call)) if finding.call is not None else None
        if note is not None:
            finding = dataclasses.replace(finding, hint=f"{note}. {finding.hint[:1].upper()}{finding.hint[1:]}" if finding.hint else note)
        changed.append(finding)
    return changed


def _run_checks(trace, kinds, settings: Settings, pass_records, scoped: bool = False,
                forward_calls: set | None = None) -> list[Finding]:
    """Every check of ``kinds`` on ``pass_records``; when the passes were chosen (``scoped``), the
    forward checks too look only at those passes' graphs (and only at ``forward_calls`` when given)."""
    cache = ReplayCache(trace)
    found: list[Finding] = []
    used_by_forward = forward_inputs(trace) if "stale-gradient" in kinds else set()
    if "nan-inf" in kinds:
        in_passes = {c for p in pass_records for c in p.calls} if scoped and pass_records else None
        if forward_calls is not None:
            in_passes = forward_calls if in_passes is None else in_passes & forward_calls
        found += check_nan_forward(trace, in_passes)
    # the last pass first: the caps on re-runs shared by the passes (per op and input shapes)
    # then leave out steps of earlier passes, never of the one a training loop ended with
    for pass_record in pass_records[-1:] + pass_records[:-1]:
        of_pass: list[Finding] = []
        if "nan-inf" in kinds:
            of_pass += check_nan_backward(trace, pass_record)
        if "shape-mismatch" in kinds:
            of_pass += check_shapes(trace, pass_record)
        in_place = None
        if "changed-input" in kinds or "wrong-backward" in kinds:
            in_place = in_place_changes(trace, pass_record, cache, settings)
        if "wrong-backward" in kinds:
            of_pass += check_wrong_backward(trace, pass_record, settings, cache, in_place)
            of_pass += check_detached(trace, pass_record, settings, cache)
        if "changed-input" in kinds:
            of_pass += check_changed_input(trace, pass_record, in_place)
        of_pass += check_order(trace, pass_record, kinds)
        if "overwritten-gradient" in kinds:
            of_pass += check_overwritten(trace, pass_record, settings)
        if "stale-gradient" in kinds:
            of_pass += check_stale_gradient(trace, pass_record, used_by_forward, settings)
        if "leaf-gradient" in kinds:
            of_pass += check_leaf_gradient(trace, pass_record, settings, cache, list(of_pass))
        found += of_pass
    return found


def attach(trace, findings) -> None:
    """Set ``trace.findings`` (what pictures and JSON export show) to ``findings``."""
    trace.findings = tuple(sorted(findings, key=_sort_key))
