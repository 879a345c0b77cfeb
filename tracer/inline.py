"""What a Trace shows in Jupyter: its picture (scrolled when tall) and its check report."""

from __future__ import annotations

import html
import re
from pathlib import Path

from .output import write_atomic

__all__ = ["PictureView", "CheckReport", "TALL_POINTS"]

TALL_POINTS = 1000  # an inline picture taller than this (in points) is shown in a scrolled box
_SIZE = re.compile(r'<svg [^>]*?height="([\d.]+)pt"')


class PictureView:
    """A picture as a notebook output: the SVG inline; a tall one in a box that scrolls, so that
    a long chain is not a page to scroll for ages. ``save(path)`` writes the SVG."""

    def __init__(self, svg: str, note: str = "") -> None:
        self.svg = svg
        self.note = note

    @property
    def tall(self) -> bool:
        """Whether the picture is taller than ``TALL_POINTS``."""
        found = _SIZE.search(self.svg)
        return found is not None and float(found.group(1)) > TALL_POINTS

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = {"image/svg+xml": self.svg, "text/plain": self.note or "<gradtrace picture>"}
        if self.tall:
            bundle["text/html"] = (
                f'<div style="max-height:{TALL_POINTS * 3 // 4}px;overflow:auto;border:1px solid #d0d7de">'
                f'{self.svg[self.svg.index("<svg"):]}</div><div style="font-size:smaller;color:#555">'
                f'a tall picture: scroll it, choose a pass (which=...), or write it to a file '
                f'(tracer.write_picture(t, "graph.svg"))</div>')
        return bundle

    def save(self, path) -> Path:
        """Write the SVG to ``path`` atomically."""
        return write_atomic(Path(path), self.svg)

    def __repr__(self) -> str:
        return f"<PictureView {len(self.svg):,} characters of SVG: display it in Jupyter, or .save(path)>"


class CheckReport:
    """``Trace.check()``'s result: the findings and notes, shown as the report ``gradtrace
    check`` prints (in a notebook cell, in a terminal, or with ``print``)."""

    def __init__(self, findings: tuple, notes: list, text: str) -> None:
        self.findings = findings
        self.notes = notes
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"
