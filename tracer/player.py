"""A self-contained HTML player: step through a backward pass (no network, works from file://)."""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from pathlib import Path

from .dot import shows_inner_calls
from .dotnodes import constant_ids, role_names
from .frames import BUILT_OPACITY, Frames, frames
from .jsonio import escape_surrogates
from .labels import _visible, badge_text, format_array, short_name
from .output import write_atomic
from .trace import require_trace

__all__ = ["PlayerView", "player_html", "write_player"]


def _template(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _name(trace, var_id: int, roles: dict[int, str], runs: dict[int, list[int]]) -> str:
    """What the picture calls a variable: its name, its role (seed, ∂y/∂x), else what made it
    and what tells its box apart: the step badge of the function that made it, or its data (an
    unnamed box shows no id, so "v13" would point at nothing)."""
    name = trace.name_of(var_id) or roles.get(var_id)
    if name:
        return name
    record = trace.variables.get(var_id)
    creator = trace.calls.get(record.creator) if record is not None and record.creator else None
    if creator is None:
        return f"v{var_id}"
    # numbered from 0, as the picture labels the edges of a function with several outputs
    which = (f"output {creator.outputs.index(var_id)}" if len(creator.outputs) > 1 and var_id in creator.outputs
             else "the output")
    if runs.get(creator.id):
        return f"{which} of {creator.op} (step {runs[creator.id][0]})"
    if record.value is not None:
        return f"{which} of {creator.op} (data {format_array(record.value, 4)})"
    return f"{which} of {creator.op}"


def _value(snapshot, precision: int) -> str:
    """A gradient as the panel shows it: as ``gradtrace steps`` does, with the shape of an array
    shown only in part (the shape of W's gradient is the lesson of an MLP step)."""
    text = format_array(snapshot, precision)
    if snapshot is not None and snapshot.size > 4:  # format_array's max_items: elided with "..."
        text += f" shape {tuple(snapshot.shape)}"
    return text


def _steps(made: Frames) -> list[dict]:
    trace, record = made.trace, made.pass_record
    precision = made.options.precision
    roles = role_names(trace, record, list(record.variables) + [v for c in record.inner_calls
                                                                for v in trace.calls[c].inputs
                                                                if c in trace.calls])
    built_note = ("dashed" if shows_inner_calls(made.options, record) else
                  "not drawn: made without create_graph" if made.options.inner == "auto" else
                  "not drawn: inner calls hidden")
    out = []
    for step in record.steps:
        call = trace.calls.get(step.call)
        inputs = call.inputs if call else ()
        outputs = call.outputs if call else ()
        received = [[_name(trace, v, roles, made.runs), _value(g, precision)]
                    for v, g in zip(outputs, step.grads_in)]
        error = step.error
        if record.error is not None and record.error.step == step.index:
            error = str(record.error)
        # a gradient the step never returned is not one it returned as None
        unsent = "nothing: its backward raised" if error else "nothing: its backward returned fewer"
        folded = constant_ids(trace, inputs, record, full=made.theme.colored)  # drawn inside the box
        sent = []
        for position, v in enumerate(inputs):
            if v in folded:
                continue
            grad = (_value(step.grads_out[position], precision) if position < len(step.grads_out)
                    else unsent)
            after = step.accumulated[position] if position < len(step.accumulated) else None
            sent.append([_name(trace, v, roles, made.runs), grad,
                         _value(after, precision) if after is not None else ""])
        findings = [f"{f.severity}: {f.message}" + (f" ({f.hint})" if f.hint else "")
                    for f in trace.findings
                    if f.pass_id in (None, record.id) and (f.step == step.index or f.call == step.call)]
        runs = made.runs.get(step.call, [])
        again = [f"already ran at step {n}" for n in runs if n < step.index] + \
            [f"ran again at step {n}" for n in runs if n > step.index]
        built = [trace.calls[c].op for c in step.inner_calls if c in trace.calls]
        out.append({"n": step.index, "badge": badge_text(step.index), "op": call.op if call else "?",
                    "call": step.call, "caption": made.captions[step.index], "again": again, "built": built, "builtNote": built_note,
                    "received": received, "sent": sent, "error": error, "findings": findings})
    return out


def _data(made: Frames, interval_ms: int) -> str:
    cells = [{str(v): [look.text, look.fill, look.color, int(look.italic), int(look.bold), look.tip]
              for v, look in sorted(frame.items())} for frame in made.looks]
    data = {"count": made.count, "start": 0, "interval": interval_ms, "before": made.captions[0],
            "currentFill": made.theme.current_fill,
            "fnFill": {str(k): v for k, v in sorted(made._fn_fill.items())},
            "currentBorder": made.theme.current_border,
            "fnBorder": {str(k): v.split('"')[1] for k, v in sorted(made._fn_stroke.items())},
            "badges": {str(step): [fill, number.split('"')[1]]
                       for step, (_, fill, number) in sorted(made._badges.items())},
            "cells": cells, "steps": _steps(made),
            "made": {str(step): ids for step, ids in sorted(made.built_by_step().items())},
            "builtOpacity": BUILT_OPACITY, "fontPt": made.theme.font_size, "root": made.pass_record.root}
    text = escape_surrogates(json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _heading(made: Frames, source: str | None) -> str:
    """The page's title: what was traced, the pass and its root, and whether it failed, so that
    several open players can be told apart (the name first: a tab shows only the start)."""
    record = made.pass_record
    root = made.trace.name_of(record.root)
    text = f"backward pass {record.id}" + (f" from {short_name(_visible(root))}" if root else "")
    text += f", {made.count} step{'s' if made.count != 1 else ''}"
    if record.error is not None:
        where = f" at step {record.error.step}" if record.error.step else ""
        text += f", failed{where} ({record.error.type})"
    return (f"{_visible(source)}: " if source else "") + text + " — gradtrace"


def player_html(trace, *, title: str | None = None, source: str | None = None, interval_ms: int = 1200,
                **options) -> str:
    """The HTML player as one string: the graph, prev / next / slider / keys / play, step details.

    ``trace`` is a Trace (options as ``frames``: which, theme, grad_edges, ...) or a Frames.
    ``source`` names what was traced (the script's file name) in the default ``title``.
    """
    made = trace if isinstance(trace, Frames) else frames(require_trace(trace, "the player"), **options)
    svg = made.svg(0)
    svg = svg[svg.index("<svg"):]
    heading = title or _heading(made, source)
    values = {"CSS": _template("player.css"), "JS": _template("player.js"),
              "TITLE": html.escape(" ".join(heading.split())), "DATA": _data(made, interval_ms),
              "SVG": svg}
    # one pass, so text inside the values is never taken for a placeholder
    return re.sub(r"\{\{(CSS|JS|TITLE|DATA|SVG)\}\}", lambda m: values[m.group(1)],
                  _template("player.html"))


def write_player(trace, path, **options) -> Path:
    """Write the HTML player to ``path`` atomically (options as ``player_html``)."""
    return write_atomic(Path(path), player_html(trace, **options))


class PlayerView:
    """The player as a notebook output: Jupyter shows it inline, in a sandboxed iframe.

    ``html`` is the whole page; ``save(path)`` writes it like ``write_player``.
    """

    def __init__(self, page: str, height: int = 640) -> None:
        if isinstance(height, bool) or not isinstance(height, int) or height < 100:
            raise ValueError(f"height must be a whole number of pixels >= 100, got {height!r}")
        self.html = page
        self.height = height

    def _repr_html_(self) -> str:
        # srcdoc keeps the page self-contained (no file, no server); the sandbox lets its script
        # run but gives it no access to the notebook's page.
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" sandbox="allow-scripts" '
                f'title="gradtrace player" style="box-sizing:border-box;width:100%;'
                f'height:{self.height}px;border:1px solid #d0d7de;border-radius:4px"></iframe>')

    def save(self, path) -> Path:
        """Write the page to ``path`` atomically."""
        return write_atomic(Path(path), self.html)

    def __repr__(self) -> str:
        return f"<PlayerView {len(self.html):,} characters: display it in Jupyter, or .save(path)>"
