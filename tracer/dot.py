"""Trace → graphviz.Digraph: variables, functions, backward-step badges, gradient edges (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import graphviz

from .compact import COMPACT_NODES, compact_function, compact_variable, dot_string
from .dotlabels import (caption_label, constant_label, edge_label, function_label, grad_text,
                        legend_label, variable_label)
from .dotnodes import Constants, constant_ids, constants, input_label, role_names
from .errors import TraceError
from .gradview import GradView, PassIndex
from .labels import badge_text, format_array, format_shape, pad_wide, text_width, without_pads
from .layout import LayoutPlan, graph_attributes, plan
from .params import op_params
from .themes import Theme, get_theme
from .trace import require_trace

__all__ = ["to_dot", "padded_dot", "draw", "DotOptions", "DotOptionError", "node_count", "INNER_MODES",
           "RANKDIRS"]

INNER_MODES = ("auto", "hide", "show")
RANKDIRS = ("TB", "LR", "BT", "RL")
class DotOptionError(TraceError, ValueError):
    """An option of ``to_dot`` has a value it does not accept."""


@dataclass(frozen=True)
class DotOptions:
    """Everything that decides how a Trace is drawn (see ``to_dot`` for the meaning of each)."""

    which: object = "last"
    values: bool = True
    grads: bool = True
    shapes: bool = True
    precision: int = 4
    rankdir: str = "TB"
    inner: str = "auto"
    grad_edges: bool = False
    theme: object = "lecture"
    legend: bool = False
    step: int | None = None

    def check(self) -> None:
        """Raise DotOptionError naming the accepted values for a bad option."""
        if self.inner not in INNER_MODES:
            raise DotOptionError(f"inner={self.inner!r}: choose one of {', '.join(INNER_MODES)}")
        if str(self.rankdir).upper() not in RANKDIRS:
            raise DotOptionError(f"rankdir={self.rankdir!r}: choose one of {', '.join(RANKDIRS)}")
        if not isinstance(self.precision, int) or not 1 <= self.precision <= 17:
            raise DotOptionError(f"precision={self.precision!r}: give a whole number from 1 to 17")
        if self.step is not None and (not isinstance(self.step, int) or self.step < 0):
            raise DotOptionError(f"step={self.step!r}: give a step number (0 = before the first step)")


def node_count(dot: graphviz.Digraph) -> int:
    """How many nodes a Digraph made by ``to_dot`` has (its layout cost grows with this)."""
    count = getattr(dot, "_gradtrace_nodes", None)
    if count is not None:
        return count
    return sum(1 for line in dot.body if line.lstrip().split(" ", 1)[0].isidentifier()
               and " -> " not in line and not line.lstrip().startswith(("graph", "node", "edge")))


def _findings_index(trace, pass_record) -> tuple[dict, dict]:
    by_call: dict[int, list] = {}
    by_var: dict[int, list] = {}
    pass_id = pass_record.id if pass_record else None
    for finding in trace.findings:
        if finding.pass_id not in (None, pass_id):
            continue
        if finding.call is not None:
            by_call.setdefault(finding.call, []).append(finding)
        if finding.variable is not None:
            by_var.setdefault(finding.variable, []).append(finding)
    return by_call, by_var


def _errors(trace, pass_record, calls) -> dict[int, str]:
    """Call id → error text: calls whose forward raised, steps that failed (and the step the
    pass error escaped from)."""
    errors: dict[int, str] = {c: trace.calls[c].error for c in calls if trace.calls[c].error}
    if pass_record is None:
        return errors
    steps = {s.index: s for s in pass_record.steps}
    for step in pass_record.steps:
        if step.error:
            errors[step.call] = step.error
    error = pass_record.error
    if error is not None and error.step in steps:
        errors.setdefault(steps[error.step].call, str(error))
    return errors


def _var_tooltip(trace, var_id: int, value, view: GradView | None, findings: list) -> str:
    name = trace.name_of(var_id)
    lines = [f"{name} (v{var_id}) = {format_array(value, 8)}" if name else f"v{var_id} = {format_array(value, 8)}"]
    if value is not None and value.shape:
        lines[0] += f"  {format_shape(value)}"
    if view is not None:
        lines.append(f"grad: {grad_text(view, 8)}")
    lines.extend(f"{f.severity}: {f.message}" + (f" ({f.hint})" if f.hint else "") for f in findings)
    return "\n".join(lines)


def _fn_tooltip(call, steps: list, steps_total: int, findings: list, error: str | None) -> str:
    lines = [f"{call.op} (f{call.id}): forward call {call.index}"]
    if len(steps) == 1:
        lines.append(f"backward step {badge_text(steps[0])} ({steps[0]} of {steps_total})")
    elif steps:
        lines.append(f"backward ran {len(steps)} times: steps {', '.join(map(str, steps))} "
                     f"of {steps_total} (again after step {steps[0]})")
    if call.in_step is not None:
        lines.append(f"made inside backward step {call.in_step[1]}")
    if error:
        lines.append(f"error: {error}")
    lines.extend(f"{f.severity}: {f.message}" + (f" ({f.hint})" if f.hint else "") for f in findings)
    return "\n".join(lines)


def to_dot(trace, *, which="last", values: bool = True, grads: bool = True, shapes: bool = True,
           precision: int = 4, rankdir: str = "TB", inner: str = "auto", grad_edges: bool = False,
           theme="lecture", legend: bool = False, step: int | None = None) -> graphviz.Digraph:
    """Draw a pass of ``trace`` as a graphviz.Digraph (no program runs; restyle it freely).

    ``which`` picks the backward pass ("last", "first" or a number). ``values`` / ``grads`` /
    ``shapes`` show data, gradients and shape/dtype; numbers keep ``precision`` significant
    digits. ``rankdir`` is "TB" or "LR". ``inner`` draws the calls made inside backward steps:
    "hide", "show", or "auto" (shown when the pass used create_graph: the higher-order graph).
    ``grad_edges`` adds a dashed edge per gradient a step sent, labelled with the step and the
    gradient. ``theme`` is "lecture" or "debug" (NaN/Inf, findings, failing step in colour;
    findings also as tooltips). ``legend`` adds a key. ``step`` draws the state after backward
    step k (gradients known so far, step k highlighted) instead of the end of the pass.

    The labels are sized for renderers that measure real fonts (Graphviz's ``dot``);
    ``tracer.render`` draws its own copy for the bundled renderer, which needs spaces after
    text that is not ASCII.
    """
    options = DotOptions(which, values, grads, shapes, precision, rankdir, inner, grad_edges,
                         theme, legend, step)
    graph = draw(trace, options)
    graph.body[:] = [without_pads(line) for line in graph.body]
    graph._gradtrace_pads = False
    return graph


def padded_dot(trace, **dot_options) -> graphviz.Digraph:
    """``to_dot`` for the bundled renderer: non-ASCII labels followed by PAD spaces (labels.pad_wide)."""
    return draw(trace, DotOptions(**dot_options))


def draw(trace, options: DotOptions, views: dict[int, GradView] | None = None,
         display: dict[int, str] | None = None, caption: str | None = None) -> graphviz.Digraph:
    """``to_dot`` with options as a DotOptions; ``views`` / ``display`` override gradient fields.

    ``display`` maps variable ids to the text laid out in their gradient field (frames lay out
    once with the widest text any step shows, then replace it); ``caption`` puts a title line
    (cell id ``caption``) above the graph.
    """
    require_trace(trace, "drawing")
    options.check()
    style = get_theme(options.theme)
    pass_record = trace.select_pass(options.which)
    total = len(pass_record.steps) if pass_record is not None else 0
    if options.step is not None and options.step > total:
        raise DotOptionError(f"step {options.step} does not exist: the pass has {total} backward "
                             f"step{'s' if total != 1 else ''} (choose 0..{total})")
    index = PassIndex(trace, pass_record)
    if views is None:
        views = _views(index, pass_record, options.step) \
            if options.grads and pass_record is not None else {}
    lines, count, layout = _body(trace, pass_record, index, views, options, style, display, caption)
    graph = graphviz.Digraph(
        "gradtrace", graph_attr=graph_attributes(style, options.rankdir, count, layout.virtual),
        node_attr={"shape": "plain", "fontname": style.font, "fontsize": str(style.font_size)},
        edge_attr={"fontname": style.font, "fontsize": str(style.small_size),
                   "color": style.fwd_edge, "arrowsize": "0.7"})
    graph.body.extend(lines)
    graph._gradtrace_nodes = count
    graph._gradtrace_copies = len(layout.proxied)
    graph._gradtrace_pads = True  # labels.PAD spaces: render() drops them for the system dot
    return graph


def _views(index: PassIndex, pass_record, step: int | None) -> dict[int, GradView]:
    if step is None:
        return {v: index.final(v) for v in pass_record.variables}
    return index.at_step(min(step, len(pass_record.steps)))


def shows_inner_calls(options: DotOptions, pass_record) -> bool:
    """Whether the calls made inside backward steps are drawn (``inner``: show, or auto under
    create_graph, when they build the gradients' own graph)."""
    if options.inner == "show":
        return True
    return options.inner == "auto" and pass_record is not None and \
        bool(pass_record.options.get("create_graph"))


def _body(trace, pass_record, index: PassIndex, views: dict, options: DotOptions,
          theme: Theme, display: dict[int, str] | None,
          caption: str | None) -> tuple[list[str], int, LayoutPlan]:
    """The node and edge statements, in forward order (deterministic)."""
    forward = list(trace.graph_calls(pass_record))
    inner_calls = [c for c in pass_record.inner_calls if c in trace.calls] \
        if pass_record is not None and shows_inner_calls(options, pass_record) else []
    forward_vars = list(trace.graph_variables(pass_record))
    known = set(forward_vars)
    inner_vars = []
    for call_id in inner_calls:
        call = trace.calls[call_id]
        for v in call.inputs + call.outputs:
            if v not in known:
                known.add(v)
                inner_vars.append(v)
    by_call, by_var = _findings_index(trace, pass_record) if theme.colored else ({}, {})
    errors = _errors(trace, pass_record, forward + inner_calls)
    total = len(pass_record.steps) if pass_record else 0
    current = options.step if options.step is not None and 0 < options.step <= total else None
    current_call = pass_record.steps[current - 1].call if current else None
    inner_set = set(inner_calls)
    plain = constant_ids(trace, forward_vars + inner_vars, pass_record, full=theme.colored)
    consts = constants(trace, forward + inner_calls, plain)
    roles = role_names(trace, pass_record, forward_vars + inner_vars)
    layout = plan(trace, forward + inner_calls, 2 if options.grad_edges else 1, skip=plain)
    count = len(forward_vars) + len(inner_vars) + len(forward) + len(inner_calls) \
        + len(layout.proxied) - len(consts.folded)
    compact = display is None and count > COMPACT_NODES
    if display is None and not compact and options.step is not None and views:
        display = _steady_texts(index, views, options.precision)  # pictures of steps 0..n share a layout
    lines: list[str] = []
    for var_id in forward_vars + inner_vars:
        if var_id in consts.folded:
            continue
        if var_id in consts.small:
            vid, value = f"v{var_id}", trace.value(var_id, pass_record)
            label = dot_string(format_array(value, options.precision)) + \
                f' shape=box style=rounded color="{theme.const_border}" fontcolor="{theme.const_color}"' \
                if compact else constant_label(theme, vid, value, options.precision)
            lines.append(f'\t{vid} [id={vid} class="var const" label={label}]\n')
            continue
        lines.append(_var_line(trace, var_id, pass_record, views, options, theme,
                               var_id not in views and var_id in inner_vars, by_var.get(var_id, []),
                               display, compact, roles.get(var_id)))
    for call_id in forward + inner_calls:
        lines.extend(_call_lines(trace, trace.calls[call_id], index, options, theme, total,
                                 call_id in inner_set, by_call.get(call_id, []),
                                 errors.get(call_id), call_id == current_call, layout,
                                 compact, consts))
    if options.grad_edges and pass_record is not None:
        lines.extend(_grad_edges(trace, pass_record, options, theme, current, layout.proxied,
                                 consts.plain))
    if options.legend or caption:
        states = {v.state for k, v in views.items() if k not in consts.plain} \
            | ({"pending"} if caption and views else set())
        order = ["value", "zero", "leftover", "cleared", "not-computed", "not-stored", "not-reached", "pending"]
        repeated = any(len(s) > 1 for s in index.steps_of_call.values())
        legend = legend_label(theme, grads=bool(views), grad_edges=options.grad_edges,
                              states=tuple(sorted(states, key=order.index)), repeated=repeated,
                              constants=bool(consts.small), inner=bool(inner_calls),
                              copies=bool(layout.proxied),
                              # frames (drawn with a caption) show a current step, and steps to come
                              current=current is not None or bool(caption),
                              pending=(options.step is not None and options.step < total)
                              or (bool(caption) and total >= 1), updated=bool(caption)) \
            if options.legend else None
        if caption:
            lines.append(f"\tgraph [labelloc=t labeljust=l label={caption_label(theme, caption, legend)}]\n")
        else:
            lines.append(f"\tgraph [labelloc=b labeljust=l label={legend}]\n")
    return lines, count, layout


def _steady_texts(index: PassIndex, shown: dict[int, GradView], precision: int) -> dict[int, str]:
    """Each gradient field's text at the step shown, padded with spaces as wide as the widest
    text the field shows at any step (with the frames' slack), so that the pictures of a pass's
    steps have boxes of one size: a series of ``--step K`` slides does not jump."""
    widest: dict[int, str] = {}
    for delta in index.timeline():
        for var, view in delta.items():
            text = grad_text(view, precision)
            if var not in widest or text_width(text) > text_width(widest[var]):
                widest[var] = text
    space = text_width(" ")
    padded = {}
    for var, view in shown.items():
        text = grad_text(view, precision)
        target = widest.get(var, text)
        target += " " * (2 + len(target) // 10)
        padded[var] = text + " " * max(0, math.ceil((text_width(target) - text_width(text)) / space))
    return padded


# Findings that say a variable's gradient is wrong (its field is drawn in the error colours)
_WRONG_GRADIENT = frozenset({"leaf-gradient", "overwritten-gradient", "shape-mismatch", "stale-gradient"})


def _var_line(trace, var_id: int, pass_record, views: dict, options: DotOptions, theme: Theme,
              inner: bool, findings: list, display: dict[int, str] | None, compact: bool,
              role: str | None = None) -> str:
    value = trace.value(var_id, pass_record)
    view = views.get(var_id)
    vid = f"v{var_id}"
    border = theme.findings_border(findings)
    classes = "var inner" if inner else "var"
    if view is not None:
        classes += f" {view.state}"
    if compact:
        attrs = compact_variable(theme, trace.name_of(var_id) or role, value, view, precision=options.precision,
                                 values=options.values, inner=inner, border=border)
        return f'\t{vid} [id={vid} class="{classes}" {attrs}]\n'
    tooltip = _var_tooltip(trace, var_id, value, view, findings) if theme.colored else ""
    label = variable_label(theme, vid, trace.name_of(var_id), value, view,
                           precision=options.precision, values=options.values,
                           shapes=options.shapes, inner=inner, border=border, tooltip=tooltip,
                           grad_display=display.get(var_id) if display is not None else None,
                           always_fill=display is not None, role=role,
                           grad_wrong=any(f.severity == "error" and f.kind in _WRONG_GRADIENT for f in findings))
    return f'\t{vid} [id={vid} class="{classes}" label={label}]\n'


def _call_lines(trace, call, index: PassIndex, options: DotOptions, theme: Theme, total: int,
                inner: bool, findings: list, error: str | None, current: bool,
                layout: LayoutPlan, compact: bool, consts: Constants) -> list[str]:
    fid = f"f{call.id}"
    steps = index.steps_of_call.get(call.id, [])
    step = steps[0] if steps else None
    detail = " ".join(t for t in (consts.fold_text.get(call.id), op_params(trace, call)) if t)
    border = theme.findings_border(findings) or (theme.current_border if current else None)
    classes = "fn inner" if inner else "fn"
    # the inputs of an op whose operands' order matters left to right in that order (x - y
    # drawn as x - y, not y - x); Add and Mul are left free, for fewer crossings
    numbered = input_label(call.op, sum(v not in consts.folded for v in call.inputs))
    ordered = " ordering=in" if numbered else ""
    if compact:
        attrs = compact_function(theme, f"{call.op} {detail}".strip(), step, inner=inner,
                                 error=error, border=border, current=current)
        lines = [f'\t{fid} [id={fid} class="{classes}"{ordered} {attrs}]\n']
        return lines + _edge_lines(trace, call, fid, theme, inner, layout, consts, numbered)
    label = function_label(theme, fid, call.op, steps, inner=inner, error=error, border=border,
                           tooltip=_fn_tooltip(call, steps, total, findings, error)
                           if theme.colored else "", detail=detail, done=options.step, current=current)
    if current:
        label = label.replace(f'BGCOLOR="{theme.fn_fill}"', f'BGCOLOR="{theme.current_fill}"', 1)
    lines = [f'\t{fid} [id={fid} class="{classes}"{ordered} label={label}]\n']
    return lines + _edge_lines(trace, call, fid, theme, inner, layout, consts, numbered)


def _edge_lines(trace, call, fid: str, theme: Theme, inner: bool, layout: LayoutPlan,
                consts: Constants, numbered: bool) -> list[str]:
    """The call's edges; ``numbered``: its inputs' edges carry their position (see input_label)."""
    lines = []
    proxied = layout.proxied
    edge_style = f' style=dashed color="{theme.inner_border}"' if inner else ""
    drawn = [(p, v) for p, v in enumerate(call.inputs) if v not in consts.folded]
    for order, (position, var_id) in enumerate(drawn):
        source = f"v{var_id}"
        if (call.id, position) in proxied:
            source = f"p{var_id}_{call.id}_{position}"
            lines.append(_proxy_line(trace, source, var_id, theme))
        # Inputs are laid out in order (left to right, or top to bottom): the first half arrive
        # from one side and the rest from the other. Turning each half's labels to its own side
        # keeps them off the function's box and off the neighbouring edges (in every rankdir:
        # Graphviz turns labels in the flipped frame).
        angle = 35 if order >= (len(drawn) + 1) // 2 else -35
        if sum(v == var_id for _, v in drawn) > 1:
            angle = -angle  # x * x: parallel edges from one box, so each label goes to its outer side
        where = (f' headlabel="{position}" labeldistance=1.5 labelangle={angle} '
                 f'labelfontcolor="{theme.position_color}"') if numbered else ""
        room = " minlen=2" if var_id in layout.spread and source[0] == "v" else ""
        lines.append(f"\t{source} -> {fid} [id=e{call.id}i{position}{edge_style}{where}{room}]\n")
    several = len(call.outputs) > 1  # a split: which output is which is part of the picture
    for order, var_id in enumerate(call.outputs):
        angle = -35 if order < (len(call.outputs) + 1) // 2 else 35
        where = (f' taillabel="{order}" labeldistance=1.5 labelangle={angle} '
                 f'labelfontcolor="{theme.position_color}"') if several else ""
        lines.append(f"\t{fid} -> v{var_id} [id=e{call.id}o{order}{edge_style}{where}]\n")
    return lines


def _proxy_line(trace, node: str, var_id: int, theme: Theme) -> str:
    """A small dashed copy of a variable, drawn beside a use far below the variable itself."""
    value = trace.variables[var_id].value if var_id in trace.variables else None
    text = pad_wide(trace.name_of(var_id) or format_array(value, 3))
    return (f'\t{node} [id={node} class="var proxy" label=<<TABLE BORDER="1" CELLBORDER="0" '
            f'CELLPADDING="1" STYLE="rounded,dashed" BGCOLOR="{theme.var_fill}" '
            f'COLOR="{theme.var_border}"><TR><TD><FONT POINT-SIZE="{theme.small_size + 1}">{text}'
            f'</FONT></TD></TR></TABLE>>]\n')


def _grad_edges(trace, pass_record, options: DotOptions, theme: Theme,
                current: int | None, proxied: frozenset, plain: frozenset = frozenset()) -> list[str]:
    """One dashed edge per gradient a step returned, drawn from the function back to its input
    beside the forward edge (no ports: Graphviz lays the pair side by side, so each gradient
    visibly goes back along its own input)."""
    lines = []
    limit = options.step if options.step is not None else len(pass_record.steps)
    ran: set[int] = set()
    for step in pass_record.steps:
        if step.index > limit:
            break
        repeated = step.call in ran
        ran.add(step.call)
        call = trace.calls.get(step.call)
        if call is None:
            continue
        for position, var_id in enumerate(call.inputs):
            if position >= len(step.grads_out) or step.grads_out[position] is None or var_id in plain:
                continue
            label = edge_label(theme, step.index, step.grads_out[position], options.precision,
                               repeated)
            width = "2" if step.index == current else "1.2"
            source = f"p{var_id}_{call.id}_{position}" if (call.id, position) in proxied else f"v{var_id}"
            lines.append(f'\t{source} -> f{call.id} [id=g{step.index}_{position} '
                         f'class="grad s{step.index}" dir=back style=dashed '
                         f'color="{theme.grad_edge}" penwidth={width} label={label}]\n')
    return lines
