"""The backward order of a Trace as a terminal table (``gradtrace steps``) and as JSON data."""

from __future__ import annotations

import unicodedata

from .diagnose_common import grads_written_after_steps
from .dotnodes import role_names
from .jsonio import trace_to_dict
from .labels import format_array
from .records import PassRecord
from .snapshot import ArraySnapshot
from .trace import Trace

__all__ = ["HEADERS", "select_passes", "step_rows", "format_pass", "format_steps", "steps_to_dict"]

_MAX_ITEMS = 4
_MAX_LISTED = 30  # names in the lines under the table (a 50k-op chain made one line of 360 KB)
HEADERS = ("step", "function", "gen", "gradient in", "gradients out", "accumulated .grad")


def select_passes(trace: Trace, which="last") -> list[PassRecord]:
    """The passes to show: one (``"last"``, ``"first"``, a number) or every kept one (``"all"``)."""
    if which == "all":
        return list(trace.passes)
    record = trace.select_pass(which)
    return [record] if record is not None else []


class _Names:
    """How the table names a pass's variables: their own names, with the id when several share
    one (a leaf ``x`` and the ``x`` rebound in a loop); unnamed ones by their role as the
    pictures name them (``y.grad (seed)``), with the id; else ``v4``."""

    def __init__(self, trace: Trace, pass_record: PassRecord) -> None:
        var_ids = set(pass_record.variables)
        for step in pass_record.steps:
            call = trace.calls.get(step.call)
            if call is not None:
                var_ids.update(call.inputs)
                var_ids.update(call.outputs)
        seen, shared = set(), set()
        for name in filter(None, map(trace.name_of, var_ids)):
            (shared if name in seen else seen).add(name)
        self.trace, self.shared = trace, shared
        self.roles = role_names(trace, pass_record, sorted(var_ids))

    def __call__(self, var_id: int) -> str:
        name = self.trace.name_of(var_id)
        if not name:
            role = self.roles.get(var_id)
            return f"{role} (v{var_id})" if role else f"v{var_id}"
        # control characters (a newline in a name) escaped, so a row stays one line
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)
        return f"{text} (v{var_id})" if name in self.shared else text


def _width(text: str) -> int:
    """Terminal columns: wide (Korean, CJK) characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def _grad(snapshot: ArraySnapshot | None, precision: int) -> str:
    if snapshot is None:
        return "None"
    text = format_array(snapshot, precision, max_items=_MAX_ITEMS)
    if snapshot.size > _MAX_ITEMS:
        text += f" shape {tuple(snapshot.shape)}"  # (10,) as in the picture and in numpy
    return text


def _cells(var_ids, grads, precision: int, names: _Names) -> list[str]:
    lines = []
    for position, var_id in enumerate(var_ids):
        grad = grads[position] if position < len(grads) else None
        lines.append(f"{names(var_id)}: {_grad(grad, precision)}")
    return lines or ["-"]


def step_rows(trace: Trace, pass_record: PassRecord, precision: int = 4,
              names: _Names | None = None) -> list[tuple[list[str], ...]]:
    """One row per step, each cell a list of lines (one line per output or input)."""
    rows = []
    runs: dict[int, int] = {}
    names = names or _Names(trace, pass_record)
    for step in pass_record.steps:
        call = trace.calls.get(step.call)
        runs[step.call] = runs.get(step.call, 0) + 1
        op = call.op if call else "?"
        function = f"{op}#{step.call}"
        if runs[step.call] > 1:
            function += f" (run {runs[step.call]})"
        generation = "-" if call is None or call.generation is None else str(call.generation)
        inputs = call.inputs if call else ()
        outputs = call.outputs if call else ()
        grads_out = _cells(inputs, step.grads_out, precision, names)
        if step.error:
            grads_out = ["error: " + " ".join(str(step.error).split())]
        rows.append(([str(step.index)], [function], [generation],
                     _cells(outputs, step.grads_in, precision, names), grads_out,
                     _cells(inputs, step.accumulated, precision, names)))
    return rows


def _pass_title(trace: Trace, pass_record: PassRecord, names: _Names) -> str:
    root = "?" if pass_record.root is None else names(pass_record.root)
    how = f"{root}.backward()" if pass_record.kind == "backward" else f"manual backward from {root}"
    options = ", ".join(f"{k}={v}" for k, v in sorted(pass_record.options.items()) if v)
    steps = len(pass_record.steps)
    text = f"pass {pass_record.id} of {trace.pass_count}: {how}"
    if options:
        text += f" with {options}"
    text += f", {steps} step{'s' if steps != 1 else ''}"
    if pass_record.error is not None:
        text += f", failed: {pass_record.error}"
    return text


def format_pass(trace: Trace, pass_record: PassRecord, precision: int = 4) -> str:
    """A title line and the table of one pass's steps (columns as in HEADERS)."""
    names = _Names(trace, pass_record)  # once per pass: it reads every call
    rows = step_rows(trace, pass_record, precision, names)
    widths = [len(h) for h in HEADERS]
    for row in rows:
        for column, cell in enumerate(row):
            widths[column] = max(widths[column], *(_width(line) for line in cell))
    right = {0, 2}

    def line(cells: list[str]) -> str:
        parts = [_pad(c, widths[i], right=i in right) for i, c in enumerate(cells)]
        return "  ".join(parts).rstrip()

    out = [_pass_title(trace, pass_record, names), line(list(HEADERS)), line(["-" * w for w in widths])]
    for row in rows:
        height = max(len(cell) for cell in row)
        for k in range(height):
            out.append(line([cell[k] if k < len(cell) else "" for cell in row]))
    if not rows:  # a pass that raised at once (a non-scalar root) had a creator all the same
        out.append("(no steps: backward raised before its first step)" if pass_record.error is not None
                   else "(no steps: the root has no creator)")
    elif grads_written_after_steps(trace, pass_record):
        out.append("no .grad changed between the steps: the engine hands gradients on another way and "
                   "writes .grad after its last step (the last column shows .grad as the next step found it)")
    leaves = _leaves(trace, pass_record)
    if leaves:
        finals = ", ".join(f"{names(v)}: {_grad(trace.final_grad(pass_record, v), precision)}"
                           for v in leaves[:_MAX_LISTED])
        if len(leaves) > _MAX_LISTED:
            finals += f", ... ({len(leaves) - _MAX_LISTED:,} more)"
        out.append(f"leaf gradients after the pass: {finals}")
    cleared = _cleared(trace, pass_record)
    if cleared:
        why = ("although backward was called with retain_grad=True" if
               pass_record.options.get("retain_grad") is True else "retain_grad=True keeps them")
        out.append(f"cleared by the engine after use (.grad is None at the end; {why}): "
                   f"{_listed(cleared, names)}")
    unstored = _unstored(trace, pass_record)
    if unstored:
        out.append(f"never stored (a step returned a gradient, but backward raised before .grad held it): "
                   f"{_listed(unstored, names)}")
    return "\n".join(out)


def _listed(variables: list[int], names) -> str:
    """The first ``_MAX_LISTED`` variables' names, and how many more there are."""
    listed = [names(v) for v in variables[:_MAX_LISTED]]
    if len(variables) > _MAX_LISTED:
        listed.append(f"... ({len(variables) - _MAX_LISTED:,} more)")
    return ", ".join(listed)


def _leaves(trace: Trace, pass_record: PassRecord) -> list[int]:
    """The pass's leaves, whose final gradients are listed under the table (constants are
    numbers, not inputs one asks about)."""
    return [v for v in pass_record.variables
            if v in trace.variables and trace.variables[v].creator is None and not trace.is_constant(v)]


def _cleared(trace: Trace, pass_record: PassRecord) -> list[int]:
    """Variables whose gradient the engine dropped after use (None at the end of the pass)."""
    return [v for v in pass_record.variables if trace.grad_state(pass_record, v) == "cleared"]


def _unstored(trace: Trace, pass_record: PassRecord) -> list[int]:
    """Variables a step returned a gradient for that never reached ``.grad`` because the pass
    raised first (constants, which never hold one, left out)."""
    if pass_record.error is None:
        return []
    return [v for v in pass_record.variables
            if not trace.is_constant(v) and trace.grad_state(pass_record, v) == "not-stored"]


def format_steps(trace: Trace, which="last", precision: int = 4) -> str:
    """The table of the chosen pass(es), or a sentence when the run made no backward pass."""
    passes = select_passes(trace, which)
    if not passes:
        return "no backward pass: the script never called backward()"
    return "\n\n".join(format_pass(trace, p, precision) for p in passes)


def _at(items: list, position: int):
    return items[position] if position < len(items) else None


def steps_to_dict(trace: Trace, which="last") -> dict:
    """The chosen pass(es) as JSON-ready data; gradients use the trace JSON's array encoding."""
    passes = {p["id"]: p for p in trace_to_dict(trace)["passes"]}
    result = []
    for record in select_passes(trace, which):
        data = passes[record.id]
        steps = []
        for step, step_data in zip(record.steps, data["steps"]):
            call = trace.calls.get(step.call)
            steps.append({
                "step": step.index, "call": step.call, "op": call.op if call else None,
                "generation": call.generation if call else None,
                "outputs": [{"id": v, "name": trace.name_of(v), "grad_in": _at(step_data["grads_in"], i)}
                            for i, v in enumerate(call.outputs if call else ())],
                "inputs": [{"id": v, "name": trace.name_of(v), "grad_out": _at(step_data["grads_out"], i),
                            "accumulated": _at(step_data["accumulated"], i)}
                           for i, v in enumerate(call.inputs if call else ())],
                "error": step.error,
            })
        grads = data["grads"]
        result.append({"pass": record.id, "kind": record.kind, "root": record.root,
                       "root_name": trace.name_of(record.root) if record.root is not None else None,
                       "options": record.options, "error": data["error"], "steps": steps,
                       "leaves": [{"id": v, "name": trace.name_of(v), "grad": grads.get(str(v))}
                                  for v in _leaves(trace, record)],
                       "cleared": [{"id": v, "name": trace.name_of(v)} for v in _cleared(trace, record)],
                       "never_stored": [{"id": v, "name": trace.name_of(v)} for v in _unstored(trace, record)],
                       "grads_written_after_steps": grads_written_after_steps(trace, record)})
    return {"schema": "gradtrace.steps/1", "pass_count": trace.pass_count, "passes": result}
