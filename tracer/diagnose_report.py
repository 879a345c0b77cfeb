"""Findings for people and machines: a short text report, and plain JSON-ready dicts."""

from __future__ import annotations

import math
import re
import textwrap

from .diagnose_common import KINDS, call_label, var_label
from .numlists import ranges
from .records import Finding

__all__ = ["format_report", "findings_to_json", "findings_from_json"]

_WIDTH = 100
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _where(finding: Finding, trace) -> str:
    if trace is not None and finding.call is not None:
        node = call_label(trace, finding.call)
    elif trace is not None and finding.variable is not None:
        node = var_label(trace, finding.variable)
    elif finding.call is not None:
        node = f"f{finding.call}"
    elif finding.variable is not None:
        node = f"v{finding.variable}"
    else:
        node = "the run"
    parts = [node]
    if finding.pass_id is not None:
        parts.append(f"pass {finding.pass_id}")
    else:
        parts.append("forward")
    if finding.step is not None:
        parts.append(f"step {finding.step}")
    return ", ".join(parts)


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(text, _WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False, break_long_words=False)


def _headline(findings, trace, nothing_checked: bool = False, skipped: bool = False) -> str:
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    counts = ", ".join(p for p in (f"{errors} error{'s' * (errors != 1)}" if errors else "",
                                   f"{warnings} warning{'s' * (warnings != 1)}" if warnings else "")
                       if p)
    scope = ""
    if trace is not None:
        passes = len(trace.passes)
        forward = sum(1 for c in trace.calls.values() if c.in_step is None)
        inner = len(trace.calls) - forward  # made while computing gradients (a full core's backward)
        scope = f" in {forward} call{'s' * (forward != 1)}" + \
            (f" (and {inner} made inside backward)" if inner else "") + \
            f" and {passes} backward pass{'es' * (passes != 1)}"
    ran = ""
    if trace is not None and trace.error is not None:
        ran = f", up to where the run ended with {trace.error.type}"
    if not findings:
        found = "nothing could be checked (see below)" if nothing_checked else "no problems found"
        # "no problems" must not read as a clean bill of health when parts went unchecked
        partly = "; some checks were skipped (see Not checked below)" if skipped and not nothing_checked else ""
        return f"gradtrace check: {found}{scope}{ran}{partly}."
    noun = "problem" if len(findings) == 1 else "problems"
    return f"gradtrace check: {len(findings)} {noun} ({counts}){scope}{ran}."


def _node_name(finding: Finding, trace) -> str | None:
    """The node a finding is about, by name and not by id (a training loop's every pass makes new
    calls, and often new variables, of the same names)."""
    if trace is None:
        return None
    if finding.call is not None:
        call = trace.calls.get(finding.call)
        return call.op if call is not None else None
    if finding.variable is not None:
        record = trace.variables.get(finding.variable)
        if record is None or record.creator is None:  # a leaf (a parameter) lives through the passes
            return f"v{finding.variable}"
        creator = trace.calls.get(record.creator)
        name = trace.name_of(finding.variable)
        return f"{name} = {creator.op}" if creator is not None else name
    return None


def _grouped(findings, trace) -> list[tuple[Finding, list[Finding]]]:
    """Findings of one kind about the same-named node in several passes: the first of each, with
    the others (a loop of 300 steps that forgets cleargrad() gives one entry, not 1196)."""
    groups: dict = {}
    order = []
    seen_in_pass: dict = {}  # (kind, severity, hint, name, pass) -> how many so far
    for position, finding in enumerate(findings):
        name = _node_name(finding, trace)
        if name and finding.pass_id:
            # Never two of one pass in a group: the k-th such finding of each pass goes together.
            hint = re.sub(r" \([fv]\d+\)", "", finding.hint)  # "caused by: ... at Sin (f148)"
            base = (finding.kind, finding.severity, hint, name)
            nth = seen_in_pass.get((*base, finding.pass_id), 0)
            seen_in_pass[(*base, finding.pass_id)] = nth + 1
            key = (*base, nth)
        else:
            key = position
        if key not in groups:
            groups[key] = (finding, [])
            order.append(key)
        else:
            groups[key][1].append(finding)
    return [groups[key] for key in order]


def _grouped_notes(notes) -> list[str]:
    """Notes that differ only in their pass and call ids, once, with the passes they cover."""
    groups: dict[str, list[int]] = {}
    for note in notes:
        passes = [int(n) for n in re.findall(r"\bpass (\d+)", note)]
        key = re.sub(r" \(f\d+\)", "", re.sub(r"\bpass \d+", "pass N", note))
        groups.setdefault(key, []).extend(passes or [0])
    lines = []
    for key, passes in groups.items():
        real = [p for p in passes if p]
        if "pass N" in key and len(set(real)) > 1:
            lines.append(key.replace("pass N", "passes " + ranges(real), 1))
        elif "pass N" in key:
            lines.append(key.replace("pass N", f"pass {real[0]}", 1))
        else:
            lines.append(key)
    return lines


def format_report(findings, trace=None, notes=()) -> str:
    """A short human report: per finding its kind, node, pass/step, message and a hint.

    ``trace`` (optional) names nodes as ``Square (f3)`` / ``x (v1)`` (the ids of the pictures);
    ``notes`` are lines on what could not be checked (from ``diagnose(..., notes=[])``). The same
    finding about the same-named node in several passes is shown once, with the other passes.
    """
    lines = [_headline(findings, trace, any(note.startswith("nothing checked") for note in notes),
                       bool(notes))]
    for number, (finding, others) in enumerate(_grouped(findings, trace), start=1):
        lines.append("")
        lines.append(f"{number}. [{finding.severity}] {finding.kind} at {_where(finding, trace)}")
        lines.append(_wrap(finding.message, "   "))
        if finding.hint:
            lines.append(_wrap(f"hint: {finding.hint}", "   "))
        if others:
            passes = sorted({f.pass_id for f in others})
            lines.append(_wrap(f"the same in {len(others)} more: pass{'es' * (len(passes) != 1)} "
                               f"{ranges(passes)}", "   "))
    if notes:
        lines.append("")
        lines.append("Not checked:")
        lines.extend(_wrap(f"- {note}", "  ") for note in _grouped_notes(notes))
    return "\n".join(lines) + "\n"


def _json_number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (list, tuple)):
        return [_json_number(v) for v in value]
    return value


def _from_json_number(value):
    if isinstance(value, str) and value in _NONFINITE:
        return _NONFINITE[value]
    if isinstance(value, list):
        return [_from_json_number(v) for v in value]
    return value


def findings_to_json(findings) -> list[dict]:
    """Findings as JSON-ready dicts (keys as in the trace JSON; NaN/Inf as "NaN"/"Infinity")."""
    return [{"kind": f.kind, "severity": f.severity, "message": f.message, "pass": f.pass_id,
             "call": f.call, "variable": f.variable, "step": f.step, "hint": f.hint,
             "numbers": {k: _json_number(v) for k, v in f.numbers.items()}}
            for f in findings]


def findings_from_json(data) -> tuple[Finding, ...]:
    """The inverse of ``findings_to_json``."""
    found = []
    for item in data:
        kind = item["kind"]
        if kind not in KINDS:
            raise ValueError(f"unknown finding kind {kind!r} (known: {', '.join(KINDS)})")
        found.append(Finding(kind, item["message"], item.get("pass"), item.get("call"),
                             item.get("variable"), item.get("step"), item.get("severity", "error"),
                             item.get("hint", ""),
                             {k: _from_json_number(v) for k, v in item.get("numbers", {}).items()}))
    return tuple(found)
