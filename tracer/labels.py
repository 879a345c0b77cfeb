"""Short text for pictures: numbers, array summaries, step badges, escaping and width padding."""

from __future__ import annotations

import html
import math
import re
import unicodedata

from .snapshot import ArraySnapshot

__all__ = ["short_name", "format_number", "format_array", "format_summary", "format_shape", "badge_text",
           "escape_html", "escape_attr", "pad_wide", "without_pads", "PAD", "needs_full_fonts", "text_width"]

_SAFE = re.compile(r"[\w .,:;()\[\]+\-=·]*").fullmatch
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"

# Arial advance widths (em/1000) for printable ASCII; the renderers measure with the same table.
_ARIAL = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,  # ' '../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,  # 0..?
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,  # @..O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,  # P.._
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,  # `..o
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,  # p..~
)


def format_number(x, precision: int = 4) -> str:
    """A number in ``precision`` significant digits: 3.297, 1e+10, nan, -inf, 7.

    Below a million the whole part is never cut: 603.25 at precision 2 is "603", not "6e+02"
    (which reads as exactly 600), as whole numbers of up to six digits are written in full, and
    integers (exact) of up to nine.
    """
    kind = type(x)
    if kind is float:
        if x != x:
            return "nan"
        if x == 0:
            return "0"
        if x in (math.inf, -math.inf):
            return "inf" if x > 0 else "-inf"
        text = "%.*g" % (precision, x)
        return "%.0f" % x if "e+" in text and abs(x) < 999_999.5 else text  # else it rounds to 1e+06
    if kind is bool or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        text = str(x)
        return text if len(text.lstrip("-")) <= max(precision, 9) else "%.*g" % (precision, x)
    return format_number(float(x), precision)


def format_shape(snapshot: ArraySnapshot | None) -> str:
    """``(2, 3) float32`` for arrays; empty for scalars and missing snapshots."""
    if snapshot is None or not snapshot.shape:
        return ""
    dims = ", ".join(str(n) for n in snapshot.shape)
    if len(snapshot.shape) == 1:
        dims += ","
    return f"({dims}) {snapshot.dtype}"


def _reshaped(flat: list, shape: tuple):
    """Nested lists of ``shape`` from the flat C-order ``flat``."""
    for n in reversed(shape[1:]):
        flat = [flat[k:k + n] for k in range(0, len(flat), n)]
    return flat


def _nested_text(value, precision: int) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_nested_text(v, precision) for v in value) + "]"
    return format_number(value, precision)


def format_array(snapshot: ArraySnapshot | None, precision: int = 4, max_items: int = 4) -> str:
    """A value on one line: the number for a scalar, all elements of a tiny array, else a head.

    ``[1, 2, 3, ...]`` (``max_items`` - 1 elements, at most 3 digits) when there are more than
    ``max_items`` elements; never more.
    """
    if snapshot is None:
        return "None"
    if not snapshot.shape:
        values = snapshot.values or snapshot.head
        return format_number(values[0], precision) if values else "?"
    if snapshot.size == 0:
        return "[]"
    if snapshot.size == 1 and snapshot.head:
        text = format_number(snapshot.head[0], precision)
        return text if not snapshot.shape else "[" * len(snapshot.shape) + text + "]" * len(snapshot.shape)
    if snapshot.complete and snapshot.size <= max_items:
        return _nested_text(snapshot.nested(), precision)
    if snapshot.size <= max_items and snapshot.head and len(snapshot.head) >= snapshot.size:
        # summarised (more than max_elements), yet its head holds every element: no "..."
        return _nested_text(_reshaped(list(snapshot.head[:snapshot.size]), tuple(snapshot.shape)),
                            head_precision(precision))
    short = head_precision(precision)
    head = ", ".join(format_number(v, short) for v in snapshot.head[:max_items - 1])
    return f"[{head}, ...]"


def head_precision(precision: int) -> int:
    """Digits for the head and summary of a big array: a hint, not the data, so at most 3 to keep
    boxes narrow, unless more than the default 4 were asked for (then those)."""
    return precision if precision > 4 else min(precision, 3)


def format_summary(snapshot: ArraySnapshot | None, precision: int = 3) -> str:
    """``min … max … mean …`` plus NaN/Inf counts for arrays too big to show; else empty."""
    if snapshot is None or snapshot.size <= 1:
        return ""
    if snapshot.complete and snapshot.size <= 4 and not snapshot.has_nonfinite:
        return ""
    parts = []
    if snapshot.min is not None:
        if snapshot.nan_count or snapshot.inf_count:  # the statistics leave those out: say so
            parts.append("finite:")
        parts.append(f"min {format_number(snapshot.min, precision)}")
        parts.append(f"max {format_number(snapshot.max, precision)}")
        parts.append(f"mean {format_number(snapshot.mean, precision)}")
    counts = []
    if snapshot.nan_count:
        counts.append(f"{snapshot.nan_count} nan")
    if snapshot.inf_count:
        counts.append(f"{snapshot.inf_count} inf")
    if counts:
        parts.append(", ".join(counts))
    statistics = len(parts) - (1 if counts else 0)
    return " · ".join([" ".join(parts[:statistics])] * bool(statistics) + parts[statistics:]) if parts else ""


MAX_NAME = 32  # columns of a variable's name a box shows (a wide character takes two)


def short_name(name: str) -> str:
    """A name as a box shows it: at most ``MAX_NAME`` columns; a longer one loses its middle to
    "…", keeping its start and its end (``layer1_weight`` and ``layer2_weight`` stay apart)."""
    widths = [2 if _is_wide(ch) else 1 for ch in name]
    if sum(widths) <= MAX_NAME:
        return name
    room = MAX_NAME - 1  # the "…" takes one column
    tail_room = room // 3
    tail = used = 0
    while used + widths[-1 - tail] <= tail_room:
        used += widths[-1 - tail]
        tail += 1
    head = 0
    while used + widths[head] <= room:
        used += widths[head]
        head += 1
    return name[:head] + "…" + (name[-tail:] if tail else "")


def badge_text(step: int) -> str:
    """The step number as text: ①…⑳, then (21), (22), …"""
    if 1 <= step <= len(_CIRCLED):
        return _CIRCLED[step - 1]
    return f"({step})"


_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


def _visible(text: str) -> str:
    """Control characters (not newlines and tabs), lone surrogates and noncharacters (U+FFFE) as
    their Python escapes (``\\x1b``): no XML or renderer takes them, and they would be invisible
    anyway."""
    return _INVISIBLE.sub(lambda m: repr(m.group())[1:-1], text)


def escape_html(text: str) -> str:
    """Escape user text for an HTML-like label; newlines become line breaks.

    Renderers expand ``\\N``, ``\\G``, ... even inside HTML-like labels, so backslashes are doubled.
    """
    if _SAFE(text):
        return text
    escaped = html.escape(_visible(text), quote=True).replace("\\", "\\\\")
    escaped = escaped.replace("{", "&#123;").replace("}", "&#125;")
    lines = escaped.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<BR/>".join(lines)


def escape_attr(text: str) -> str:
    """Escape text for an attribute inside an HTML-like label (tooltips): newlines kept as &#10;."""
    if _SAFE(text):
        return text
    escaped = html.escape(_visible(text), quote=True).replace("\\", "\\\\")
    return escaped.replace("\r\n", "\n").replace("\n", "&#10;")


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def text_width(text: str, size: float = 14.0) -> float:
    """Estimated width in points of one line in Arial at ``size`` (wide characters count 1 em)."""
    total = 0
    for ch in text:
        code = ord(ch)
        if 32 <= code < 127:
            total += _ARIAL[code - 32]
        elif _is_wide(ch):
            total += 1000
        else:
            total += 600
    return total * size / 1000.0


# A space the bundled renderer needs after non-ASCII text and the system Graphviz does not: it
# measures real fonts, so render() drops these before running it (and from DOT output). Escaped
# user text never holds it: html.escape leaves spaces alone and writes "&" as "&amp;".
PAD = "&#32;"


def pad_wide(text: str) -> str:
    """``escape_html(text)`` followed by PAD spaces, so that renderers which under-measure
    non-ASCII text still size the box to fit it (and, the glyphs taking up the room the spaces
    were measured for, keep it centred).

    Renderers without font files count each UTF-8 byte of a non-ASCII character as a space
    (0.278 em): three bytes for a wide character (0.83 em) where it takes 1 em; two bytes for
    a Greek or Cyrillic letter (0.56 em), where a bold capital takes up to 1 em (Ш, Ж) and a
    small letter up to 0.85 em (ш, ω); three bytes for a long dash or an arrow of 1 em.
    """
    escaped = escape_html(text)
    if text.isascii():
        return escaped
    spaces = 0.0
    for ch in text:
        code = ord(ch)
        if code > 0x2E7F and _is_wide(ch):
            spaces += 0.6
        elif 0x370 <= code < 0x530 and ch.isalpha():  # Greek and Cyrillic (é takes its 0.56 em)
            spaces += 1.5 if ch.isupper() else 1.0
        elif 0x2013 <= code <= 0x2015 or 0x2190 <= code <= 0x21FF:
            spaces += 0.6  # three bytes (0.83 em) for a dash or an arrow of 1 em
    return escaped + PAD * math.ceil(spaces - 1e-9)


def without_pads(source: str) -> str:
    """DOT source for a renderer that measures real fonts: PAD spaces removed."""
    return source.replace(PAD, "")


# Characters above U+2000 the bundled renderer's PNG font has (looked at in a rendered PNG):
# dashes, quotes, primes and ‖ … •; sub- and superscripts; ℓ ℝ ℕ ℤ; ← ↑ → ↓ ↔ ↕;
# ∂ ∆ ∏ ∑ − ∙ √ ∞ ∩ ∫ ≈ ≠ ≡ ≤ ≥ (not ∇ ∈ ⊕ ⊗ ∀ ⇒ ★ ✓ ①, which come out as boxes).
_BUNDLED_SYMBOLS = frozenset("\u2113\u2115\u211d\u2124\u2122\u2190\u2191\u2192\u2193\u2194\u2195"
                             "\u2202\u2206\u220f\u2211\u2212\u2219\u221a\u221e\u2229\u222b\u2248"
                             "\u2260\u2261\u2264\u2265")


def needs_full_fonts(text: str) -> bool:
    """True when ``text`` has characters the bundled PNG fonts lack (CJK, Arabic, Thai, most
    symbols, emoji; Latin, Greek, Cyrillic and Hebrew it has)."""
    return any(0x530 <= ord(ch) < 0x590 or 0x600 <= ord(ch) < 0x1D00  # Armenian, Arabic ... Cherokee
               or ord(ch) >= 0x2000 and not (0x2010 <= ord(ch) <= 0x203A or 0x2070 <= ord(ch) <= 0x209F)
               and ch not in _BUNDLED_SYMBOLS for ch in text)
