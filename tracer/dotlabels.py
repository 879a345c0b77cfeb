"""HTML-like labels of the picture's nodes: variables, functions, step badges, the legend."""

from __future__ import annotations

import unicodedata

from .gradview import GradView
from .labels import (escape_attr, escape_html, format_array, format_shape, format_summary, head_precision,
                     pad_wide, short_name)
from .snapshot import ArraySnapshot
from .themes import Theme

__all__ = ["badge_cell", "variable_label", "function_label", "constant_label", "grad_text",
           "grad_font", "edge_label", "legend_label", "caption_label", "STATE_WORDS"]

STATE_WORDS = {
    "cleared": "cleared",
    "not-computed": "not computed",
    "not-stored": "not stored",
    "not-reached": "not reached",
    "pending": "not yet",
    "leftover": "left over",
}


def _small(theme: Theme, text: str, color: str | None = None) -> str:
    return (f'<FONT POINT-SIZE="{theme.small_size}" COLOR="{color or theme.key_color}">'
            f'{text}</FONT>')


_BADGES: dict[tuple, tuple[str, str]] = {}


def badge_cell(theme: Theme, step: int, size: int | None = None, nested: bool = False,
               repeated: bool = False, pending: bool = False) -> str:
    """A dark rounded cell with the backward step number in white (renders in every font).

    ``nested`` wraps it in its own table so a wider column cannot stretch it; ``repeated`` marks
    a step that ran the function's backward again (``theme.repeat_fill``); ``pending`` a step
    that has not run yet in a step view: hollow, dark number on white (told apart in greyscale).
    """
    digits = str(step)
    size = size or theme.small_size + 1
    fill = theme.repeat_fill if repeated else theme.badge_fill
    text, cell_fill, border = theme.badge_text, fill, ""
    if pending:
        text, cell_fill, border = fill, "#FFFFFF", f' BORDER="1" COLOR="{fill}"'
    key = (fill, theme.badge_text, size, len(digits), nested, pending)
    parts = _BADGES.get(key)
    if parts is None:
        width = max(8 + size * 0.62 * len(digits), size + 7)
        head = (f'<TD FIXEDSIZE="TRUE" WIDTH="{width:.0f}" HEIGHT="{size + 7}" STYLE="rounded" '
                f'BGCOLOR="{cell_fill}"{border} CELLPADDING="0"><FONT COLOR="{text}" '
                f'POINT-SIZE="{size}"><B>')
        tail = "</B></FONT></TD>"
        if nested:
            head = f'<TD CELLPADDING="0"><TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0"><TR>{head}'
            tail += "</TR></TABLE></TD>"
        parts = _BADGES[key] = (head, tail)
    return parts[0] + digits + parts[1]


def grad_text(view: GradView, precision: int) -> str:
    """The words of a gradient field (plain text, not escaped)."""
    if view.state in ("value", "zero"):
        text = format_array(view.grad, precision)
        if view.grad is not None and not view.grad.complete and view.grad.has_nonfinite:
            text += f" ({view.grad.nan_count} nan, {view.grad.inf_count} inf)"
        if view.leftover is not None:
            text += f" (incl. {format_array(view.leftover, precision)} left over)"
        return text
    if view.state == "cleared":
        if view.grad is None:
            return "None (cleared)"
        return f"{format_array(view.grad, precision)} (cleared)"
    if view.state == "not-computed":
        return "None (not computed)"
    if view.state == "not-stored":
        return "None (not stored)"
    if view.state == "leftover" and view.grad is not None:
        return f"{format_array(view.grad, precision)} (left over)"
    return STATE_WORDS.get(view.state, view.state)


def grad_font(theme: Theme, view: GradView, wrong: bool = False) -> tuple[str, str, bool, bool]:
    """(fill, colour, italic, bold) of a gradient field in this theme; ``wrong``: a finding says
    the value is wrong (coloured as an error, not as a healthy gradient)."""
    style = theme.state(view.state)
    fill, color = style.fill, style.color
    if theme.colored and (wrong or view.grad is not None and view.grad.has_nonfinite):
        fill, color = theme.nonfinite_fill, theme.nonfinite_color
    return fill, color, style.italic, style.bold


def _styled(text: str, color: str, italic: bool, bold: bool) -> str:
    body = pad_wide(text)
    if bold:
        body = f"<B>{body}</B>"
    if italic:
        body = f"<I>{body}</I>"
    return f'<FONT COLOR="{color}">{body}</FONT>'


def _value_rows(theme: Theme, value: ArraySnapshot | None, precision: int, shapes: bool) -> str:
    rows = ""
    if shapes and value is not None and value.shape:
        rows = f'<TR><TD ALIGN="LEFT">{_small(theme, escape_html(format_shape(value)))}</TD></TR>'
    text = escape_html(format_array(value, precision))
    if theme.colored and value is not None and value.has_nonfinite:
        text = f'<FONT COLOR="{theme.nonfinite_color}">{text}</FONT>'
    rows += f'<TR><TD ALIGN="LEFT">{_key(theme, "data")}{text}</TD></TR>'
    if value is not None and value.size > 1:
        summary = format_summary(value, head_precision(precision))
        if summary:
            rows += f'<TR><TD ALIGN="LEFT">{_small(theme, escape_html(summary))}</TD></TR>'
    return rows


def _key(theme: Theme, word: str) -> str:
    return f'<FONT POINT-SIZE="{theme.small_size}" COLOR="{theme.key_color}">{word} </FONT>'


def variable_label(theme: Theme, vid: str, name: str | None, value: ArraySnapshot | None,
                   view: GradView | None, *, precision: int, values: bool, shapes: bool,
                   inner: bool = False, tooltip: str = "", grad_display: str | None = None,
                   border: str | None = None, grad_tip: str | None = None,
                   always_fill: bool = False, role: str | None = None, grad_wrong: bool = False) -> str:
    """A variable as a rounded table: name, shape/dtype, data, grad (``view`` None: no grad row).

    ``role`` names an unnamed variable by what it is ("seed of pass 1"), in italics.

    ``grad_display`` replaces the gradient text (frames lay out with the widest text of all
    steps); ``always_fill`` gives the gradient cell a background even when it has no colour of
    its own (frames recolour it). ``tooltip`` (for the whole node) is left out when empty.
    ``grad_wrong``: a finding says the gradient is wrong (drawn in the error colours).
    """
    fill = theme.inner_var_fill if inner else theme.var_fill
    color = border or (theme.inner_border if inner else theme.var_border)
    rows = ""
    if name:
        shown = short_name(name)
        whole = f' ID="{vid}n" TOOLTIP="{escape_attr(name)}"' if shown != name else ""
        rows = f'<TR><TD{whole}><B>{pad_wide(shown)}</B></TD></TR>'
    elif role:
        rows = f'<TR><TD><I>{pad_wide(role)}</I></TD></TR>'
    if values:
        rows += _value_rows(theme, value, precision, shapes)
    elif shapes and value is not None and value.shape:
        rows += f'<TR><TD>{_small(theme, escape_html(format_shape(value)))}</TD></TR>'
    if view is not None:
        text = grad_display if grad_display is not None else grad_text(view, precision)
        cell_fill, text_color, italic, bold = grad_font(theme, view, grad_wrong)
        tip = escape_attr(grad_tip if grad_tip is not None else f"grad: {grad_text(view, 10)}")
        background = f' BGCOLOR="{cell_fill or fill}"' if cell_fill or always_fill else ""
        rows += (f'<TR><TD ID="{vid}g" TOOLTIP="{tip}" ALIGN="LEFT"{background}>{_key(theme, "grad")}'
                 f'{_styled(text, text_color, italic, bold)}</TD></TR>')
        if background:  # lifts the square fill clear of the table's rounded bottom corners
            rows += '<TR><TD FIXEDSIZE="TRUE" WIDTH="1" HEIGHT="3" CELLPADDING="0"></TD></TR>'
    if not rows:
        rows = '<TR><TD> </TD></TR>'
    style = ' STYLE="rounded,dashed"' if inner else ' STYLE="rounded"'
    width = ' BORDER="2"' if border else ' BORDER="1"'
    tip = f' ID="{vid}t" TOOLTIP="{escape_attr(tooltip)}"' if tooltip else ""
    # the rows in a table of their own, inset from the rounded border: a long row's ends (a wide
    # array, a bold name) kept clear of the corners' curves
    return (f'<<TABLE{width} CELLBORDER="0" CELLSPACING="0" CELLPADDING="3"{style} '
            f'BGCOLOR="{fill}" COLOR="{color}"{tip}><TR><TD><TABLE BORDER="0" CELLBORDER="0" '
            f'CELLSPACING="1" CELLPADDING="2">{rows}</TABLE></TD></TR></TABLE>>')


def function_label(theme: Theme, fid: str, op: str, steps, *, inner: bool = False,
                   error: str | None = None, tooltip: str = "", border: str | None = None,
                   detail: str = "", done: int | None = None, current: bool = False) -> str:
    """A function as a square box: op name, ``detail`` (a folded constant, parameters) and a
    badge for every backward step that ran it (``steps``: a step number, a sequence or None).

    A second run of the same backward (an engine without generations) gets a badge in
    ``theme.repeat_fill``. ``tooltip`` (left out when empty) describes the call on hover. In a
    view after step ``done``, the badges of later steps are hollow; the ``current`` step's box
    has a heavy border (both survive greyscale printing, where the highlight's colour does not).
    """
    if steps is None:
        steps = ()
    elif isinstance(steps, int):
        steps = (steps,)
    fill = theme.inner_fn_fill if inner else theme.fn_fill
    color = border or (theme.inner_border if inner else theme.fn_border)
    if error and theme.colored:
        fill = theme.error_fill
    cells = f'<TD><B>{pad_wide(op)}</B></TD>'
    if detail:
        cells += f'<TD>{escape_html(detail)}</TD>'
    nested = bool(error and theme.colored)
    for n, step in enumerate(steps):
        cells += badge_cell(theme, step, nested=nested, repeated=n > 0,
                            pending=done is not None and step > done)
    rows = f"<TR>{cells}</TR>"
    if error and theme.colored:
        short = _clipped(error, 40)
        rows += (f'<TR><TD COLSPAN="{1 + len(steps) + bool(detail)}">'
                 f'{_small(theme, pad_wide(short), theme.nonfinite_color)}</TD></TR>')
    style = ' STYLE="dashed"' if inner else ""
    width = ' BORDER="3"' if current else ' BORDER="2"' if border or (error and theme.colored) else ' BORDER="1"'
    tip = f' ID="{fid}t" TOOLTIP="{escape_attr(tooltip)}"' if tooltip else ""
    return (f'<<TABLE{width} CELLBORDER="0" CELLSPACING="1" CELLPADDING="3"{style} '
            f'BGCOLOR="{fill}" COLOR="{color}"{tip}>'
            f"{rows}</TABLE>>")


def _clipped(text: str, columns: int) -> str:
    """``text`` when it is at most ``columns`` Latin letters wide (a wide character counts two),
    else its first ``columns - 1`` and "..."."""
    widths = [2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text]
    if sum(widths) <= columns:
        return text
    used = 0
    for position, width in enumerate(widths):
        used += width
        if used > columns - 1:
            return text[:position] + "..."
    return text


def constant_label(theme: Theme, vid: str, value: ArraySnapshot | None, precision: int,
                   sample: str | None = None) -> str:
    """A constant (a plain number the engine wrapped): a small grey box with just its value.

    ``sample`` replaces the value's text (the legend); an empty ``vid`` leaves out id and tooltip.
    """
    text = escape_html(sample if sample is not None else format_array(value, precision))
    tip = (f' ID="{vid}t" TOOLTIP="constant {escape_attr(format_array(value, 10))}"'
           if vid else "")
    return (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1" STYLE="rounded" '
            f'BGCOLOR="{theme.const_fill}" COLOR="{theme.const_border}"{tip}><TR><TD>'
            f'<FONT POINT-SIZE="{theme.small_size + 1}" COLOR="{theme.const_color}">{text}</FONT>'
            f'</TD></TR></TABLE>>')


def edge_label(theme: Theme, step: int, grad: ArraySnapshot | None, precision: int,
               repeated: bool = False) -> str:
    """A gradient edge's label: the step badge (``repeated``: a re-run of the function's
    backward) and the gradient that step sent along the edge."""
    text = escape_html(format_array(grad, precision))
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="0"><TR>'
            f'{badge_cell(theme, step, theme.small_size, repeated=repeated)}'
            f'<TD><FONT COLOR="{theme.grad_edge}" POINT-SIZE="{theme.small_size + 1}">{text}</FONT></TD>'
            f'</TR></TABLE>>')


def legend_label(theme: Theme, *, grads: bool, grad_edges: bool, states: tuple[str, ...],
                 repeated: bool = False, constants: bool = False, current: bool = False,
                 pending: bool = False, updated: bool = False, inner: bool = False,
                 copies: bool = False) -> str:
    """A small key: what the shapes, the badge, the edges and the gradient fields mean
    (``repeated`` / ``constants`` / ``current`` / ``pending`` / ``updated`` / ``inner`` /
    ``copies``: rows for re-run steps, constant nodes, a step view's current step, steps not
    run yet and the gradients the step just set, the calls made inside backward
    (create_graph), and the dashed copies of a variable used far below it, when drawn)."""
    rows = ['<TR><TD COLSPAN="2" ALIGN="LEFT"><B>Legend</B></TD></TR>',
            f'<TR><TD BGCOLOR="{theme.var_fill}" STYLE="rounded" BORDER="1" COLOR="{theme.var_border}">'
            f' x </TD><TD ALIGN="LEFT">variable: name, data, grad</TD></TR>',
            f'<TR><TD BGCOLOR="{theme.fn_fill}" BORDER="1" COLOR="{theme.fn_border}">f</TD>'
            f'<TD ALIGN="LEFT">function (op)</TD></TR>',
            f'<TR>{badge_cell(theme, 1, nested=True)}'
            f'<TD ALIGN="LEFT">backward step order (1 ran first)</TD></TR>',
            *([f'<TR>{badge_cell(theme, 2, nested=True, repeated=True)}'
               f'<TD ALIGN="LEFT">the same backward ran again</TD></TR>'] if repeated else []),
            *([f'<TR><TD ID="legend_now1" TOOLTIP="the step shown" BGCOLOR="{theme.current_fill}" BORDER="3" '
               f'COLOR="{theme.current_border}">f</TD>'
               f'<TD ID="legend_now2" TOOLTIP="the step shown" ALIGN="LEFT">the step shown: its backward just ran</TD></TR>']
              if current else []),
            *([f'<TR>{badge_cell(theme, 3, nested=True, pending=True)}'
               f'<TD ALIGN="LEFT">a step that has not run yet</TD></TR>'] if pending else []),
            *([f'<TR><TD>{constant_label(theme, "", None, 1, "2")[1:-1]}</TD>'
               f'<TD ALIGN="LEFT">constant (a plain number or array, not a Variable)</TD></TR>'] if constants else []),
            *([f'<TR><TD BGCOLOR="{theme.inner_fn_fill}" BORDER="1" STYLE="dashed" '
               f'COLOR="{theme.inner_border}">f</TD>'
               f'<TD ALIGN="LEFT">made inside a backward step: the gradients\' own graph</TD></TR>']
              if inner else []),
            *([f'<TR><TD BGCOLOR="{theme.var_fill}" BORDER="1" STYLE="rounded,dashed" '
               f'COLOR="{theme.var_border}"> x </TD>'
               f'<TD ALIGN="LEFT">copy of x, drawn next to a use far below it</TD></TR>']
              if copies else []),
            f'<TR><TD><FONT COLOR="{theme.fwd_edge}">&#8594;</FONT></TD>'
            f'<TD ALIGN="LEFT">forward: input to function to output</TD></TR>']
    if grad_edges:
        rows.append(f'<TR><TD><FONT COLOR="{theme.grad_edge}">- - &#8594;</FONT></TD>'
                    f'<TD ALIGN="LEFT">gradient sent by a backward step</TD></TR>')
    if grads:
        for state in states:
            sample = {"value": "3.14", "zero": "0", "leftover": "-9 (left over)"}.get(state, "")
            view = GradView(state)
            fill, color, italic, bold = grad_font(theme, view)
            words = sample or STATE_WORDS.get(state, state)
            meaning = {"value": "gradient", "zero": "gradient is zero",
                       "cleared": ".grad cleared after use (retain_grad=False)",
                       "not-computed": "on the graph, no gradient arrived",
                       "not-stored": "a step sent a gradient, .grad kept none (constant, or backward raised)",
                       "not-reached": "not on this backward pass",
                       "pending": "not computed yet at this step",
                       "leftover": "left from before this pass (no cleargrad)"}.get(state, state)
            rows.append(f'<TR><TD BGCOLOR="{fill or theme.var_fill}">{_styled(words, color, italic, bold)}'
                        f'</TD><TD ALIGN="LEFT">{_small(theme, meaning, theme.value_color)}</TD></TR>')
            if state == "value" and updated:
                just_set = _small(theme, "just set by the step shown (bold)", theme.value_color)
                rows.append(f'<TR><TD ID="legend_now3" TOOLTIP="just set" BGCOLOR="{theme.updated_fill}">'
                            f'{_styled(words, color, italic, True)}</TD>'
                            f'<TD ID="legend_now4" TOOLTIP="just set" ALIGN="LEFT">{just_set}</TD></TR>')
    return ('<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="3" CELLPADDING="2" COLOR="#BBBBBB">'
            + "".join(rows) + "</TABLE>>")


def caption_label(theme: Theme, caption: str, legend: str | None = None) -> str:
    """A graph label: a bold title line (cell id ``caption``) and the legend under it."""
    rows = (f'<TR><TD ID="caption" TOOLTIP="step" ALIGN="LEFT"><FONT POINT-SIZE="{theme.font_size + 2}">'
            f'<B>{escape_html(caption)}</B></FONT></TD></TR>')
    if legend:
        rows += f'<TR><TD ALIGN="LEFT">{legend[1:-1]}</TD></TR>'
    return f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2">{rows}</TABLE>>'
