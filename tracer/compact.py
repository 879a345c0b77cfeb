"""Plain-text node labels for very big graphs: half the layout time of the HTML-like tables."""

from __future__ import annotations

from .dotlabels import grad_text
from .gradview import GradView
from .labels import badge_text, format_array, short_name
from .snapshot import ArraySnapshot
from .themes import Theme

__all__ = ["COMPACT_NODES", "dot_string", "compact_variable", "compact_function"]

# Above this many nodes labels are plain text: graphviz-pure spends about 0.2 ms per node sizing
# HTML-like tables (a 5,000-node chain: 1.9 s CPU with tables, 1.0 s with plain labels).
COMPACT_NODES = 2500


def dot_string(text: str) -> str:
    """A quoted DOT string showing ``text`` literally (entities and escString sequences neutralised)."""
    text = text.replace("&", "&amp;").replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n") + '"'


def compact_variable(theme: Theme, name: str | None, value: ArraySnapshot | None,
                     view: GradView | None, *, precision: int, values: bool, inner: bool,
                     border: str | None) -> str:
    """The attributes of a variable node drawn as a rounded box of text lines."""
    lines = [short_name(name)] if name else []
    if values:
        lines.append(f"data {format_array(value, precision)}")
    if view is not None:
        lines.append(f"grad {grad_text(view, precision)}")
    fill = theme.inner_var_fill if inner else theme.var_fill
    if theme.colored and ((value is not None and value.has_nonfinite)
                          or (view is not None and view.grad is not None and view.grad.has_nonfinite)):
        fill = theme.nonfinite_fill
    color = border or (theme.inner_border if inner else theme.var_border)
    style = "rounded,filled,dashed" if inner else "rounded,filled"
    width = " penwidth=2" if border else ""
    return (f'label={dot_string(chr(10).join(lines) or " ")} shape=box style="{style}" '
            f'fillcolor="{fill}" color="{color}"{width} margin="0.06,0.03"')


def compact_function(theme: Theme, op: str, step: int | None, *, inner: bool, error: str | None,
                     border: str | None, current: bool) -> str:
    """The attributes of a function node drawn as a box: op name and step number."""
    text = f"{op} {badge_text(step)}" if step is not None else op
    fill = theme.inner_fn_fill if inner else theme.fn_fill
    if error and theme.colored:
        fill = theme.error_fill
    if current:
        fill = theme.current_fill
    color = border or (theme.inner_border if inner else theme.fn_border)
    style = "filled,dashed" if inner else "filled"
    width = " penwidth=2" if border else ""
    return (f'label={dot_string(text)} shape=box style="{style}" fillcolor="{fill}" '
            f'color="{color}"{width} margin="0.06,0.03"')
