"""Picture themes: `lecture` (printable, book-like, greyscale-safe) and `debug` (problems in colour)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import TraceError

__all__ = ["Theme", "StateStyle", "LECTURE", "DEBUG", "THEMES", "get_theme", "ThemeError", "FONT"]

# Arial: the renderers know its metrics, and browsers find it (or the metric-compatible Arimo /
# Liberation Sans) on Linux, macOS and Windows, so text measured for the layout fits its box.
FONT = "Arial"


class ThemeError(TraceError, ValueError):
    """An unknown theme name."""


@dataclass(frozen=True)
class StateStyle:
    """How a variable's gradient field looks in one gradient state."""

    fill: str            # cell background ("" for none)
    color: str           # text colour
    italic: bool = False
    bold: bool = False


@dataclass(frozen=True)
class Theme:
    """Colours, fonts and sizes of a picture; ``colored`` turns on the debugging highlights."""

    name: str
    font: str = FONT
    font_size: int = 12
    small_size: int = 9
    var_fill: str = "#FDF1DC"
    var_border: str = "#5A4A32"
    fn_fill: str = "#DCE8F5"
    fn_border: str = "#2F4A66"
    inner_var_fill: str = "#FFFFFF"
    inner_fn_fill: str = "#F1F4F8"
    inner_border: str = "#8797A8"
    badge_fill: str = "#1F2D3D"
    badge_text: str = "#FFFFFF"
    repeat_fill: str = "#B0413E"    # the badge of a step that ran a function's backward again
    const_color: str = "#4A4A4A"    # constants: small plain value nodes, greyscale
    const_border: str = "#B5B5B5"
    const_fill: str = "#FFFFFF"
    position_color: str = "#7A7A7A"  # input-position labels on edges into non-commutative ops
    key_color: str = "#6B6B6B"
    value_color: str = "#111111"
    fwd_edge: str = "#333333"
    grad_edge: str = "#B0413E"
    current_fill: str = "#FFE066"
    current_border: str = "#B8860B"
    updated_fill: str = "#FFF3B0"
    states: dict = field(default_factory=dict)
    colored: bool = False
    nonfinite_fill: str = "#FFCDD2"
    nonfinite_color: str = "#B71C1C"
    finding_border: str = "#D32F2F"
    warning_border: str = "#EF8F00"  # a node whose findings are all warnings
    error_fill: str = "#F4B6B6"

    def findings_border(self, findings) -> str | None:
        """The border of a node with these findings: red for an error, amber for warnings only."""
        if not findings:
            return None
        if all(f.severity == "warning" for f in findings):
            return self.warning_border
        return self.finding_border

    def state(self, name: str) -> StateStyle:
        """The style of gradient state ``name`` (one of GRAD_STATES, "pending" or "leftover")."""
        return self.states.get(name) or self.states["value"]


LECTURE = Theme(
    name="lecture",
    states={
        "value": StateStyle("", "#9E1B12"),
        "zero": StateStyle("#EDEDED", "#444444", bold=True),
        "cleared": StateStyle("", "#6B6B6B", italic=True),
        "not-computed": StateStyle("#EDEDED", "#444444", italic=True),
        "not-stored": StateStyle("#EDEDED", "#444444", italic=True),
        "not-reached": StateStyle("", "#9A9A9A", italic=True),
        "pending": StateStyle("", "#9A9A9A"),
        "leftover": StateStyle("", "#9E1B12", italic=True),
    },
)

DEBUG = Theme(
    name="debug",
    var_fill="#FFFFFF",
    var_border="#37474F",
    fn_fill="#E3F2FD",
    fn_border="#1565C0",
    updated_fill="#B3E5FC",
    repeat_fill="#D32F2F",
    states={
        "value": StateStyle("#E8EAF6", "#1A237E"),  # blue, not green: apart from the error red for every eye
        "zero": StateStyle("#FFF59D", "#5D4037", bold=True),
        "cleared": StateStyle("#E0E0E0", "#424242", italic=True),
        "not-computed": StateStyle("#FFCC80", "#6D3A00", italic=True),
        "not-stored": StateStyle("#E0E0E0", "#424242", italic=True),
        "not-reached": StateStyle("#F5F5F5", "#9E9E9E", italic=True),
        "pending": StateStyle("", "#9E9E9E"),
        "leftover": StateStyle("#FFE0B2", "#6D3A00", italic=True),
    },
    colored=True,
)

THEMES = {"lecture": LECTURE, "debug": DEBUG}


def get_theme(theme) -> Theme:
    """A Theme instance from a name ("lecture", "debug") or a Theme."""
    if isinstance(theme, Theme):
        return theme
    if theme is None:
        return LECTURE
    try:
        return THEMES[str(theme)]
    except KeyError:
        raise ThemeError(f"unknown theme {theme!r}: choose one of {', '.join(THEMES)}") from None
