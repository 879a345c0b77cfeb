"""Every output format of ``gradtrace render`` behind one call: pictures, trace JSON, HTML player."""

from __future__ import annotations

import html
import os
import warnings
from pathlib import Path

from .errors import TraceError
from .labels import _visible
from .trace import Trace

__all__ = ["FORMATS", "TEXT_FORMATS", "SUFFIXES", "FormatError", "format_for_path",
           "check_ready", "export"]

FORMATS = ("dot", "svg", "png", "pdf", "json", "html")
TEXT_FORMATS = ("dot", "svg", "json", "html")
SUFFIXES = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png", ".pdf": "pdf",
            ".json": "json", ".html": "html", ".htm": "html"}
_RENDERED = ("svg", "png", "pdf")


class FormatError(TraceError, ValueError):
    """No format was given and the output's file name does not tell one."""


def format_for_path(path: str | os.PathLike) -> str:
    """The format a file name asks for (``graph.svg`` → ``svg``); FormatError if it tells none."""
    suffix = Path(path).suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    known = " ".join(sorted(SUFFIXES))
    told = f"the extension {suffix!r}" if suffix else "no extension"
    raise FormatError(f"cannot tell the format of {os.fspath(path)} ({told}): end the name with one "
                      f"of {known}, or give --format")


def check_ready(fmt: str, renderer: str | None = None) -> None:
    """Fail before any work when ``fmt`` cannot be produced here (no renderer, unknown format)."""
    if fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt in _RENDERED:
        from .render import choose_renderer
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            choose_renderer(fmt, renderer)
    if fmt == "html":
        from . import player  # noqa: F401 - fails here, not after the run, if it cannot load


def export(trace: Trace, fmt: str, *, renderer: str | None = None, dpi: int | None = None,
           timeout: float | None = None, source: str | None = None, **dot_options) -> bytes:
    """``trace`` as bytes in ``fmt``: DOT text, a rendered picture, the trace JSON or the player.

    ``dot_options`` are those of ``tracer.dot.to_dot`` (which, values, grads, shapes, precision,
    rankdir, inner, grad_edges, theme, legend, step). JSON is the whole trace (schema
    ``gradtrace.trace/1``) and ignores them. Warnings (slow layout, missing glyphs) are issued
    as ``RenderWarning``. ``timeout`` (seconds) stops a layout that takes longer (RenderError).
    ``source`` (the traced script's file name) titles the HTML page.
    """
    if fmt == "json":
        trace.select_pass(dot_options.get("which", "last"))  # same pass errors as the pictures
        return trace.to_json().encode("utf-8")
    if fmt == "html":
        from .player import player_html
        if dot_options.pop("step", None) is not None:
            raise FormatError("the HTML player shows every step: leave out --step")
        record = trace.select_pass(dot_options.get("which", "last"))
        if record is None or not record.steps:
            return _still_page(trace, renderer, timeout, dot_options, source)
        return _encoded(player_html(trace, renderer=renderer, timeout=timeout, source=source, **dot_options))
    if fmt == "dot":
        from .dot import to_dot
        return to_dot(trace, **dot_options).source.encode("utf-8")
    if fmt in _RENDERED:
        from .render import render
        return render(trace, fmt, renderer=renderer, dpi=dpi, timeout=timeout, **dot_options)
    raise FormatError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")


def _still_page(trace: Trace, renderer: str | None, timeout: float | None, dot_options: dict,
                source: str | None = None) -> bytes:
    """A pass without backward steps (the script never called backward(), or raised before
    its first step): an HTML page with the one picture there is, and a warning, not an error,
    so that the partial picture of a failed run is still written."""
    from .render import RenderWarning, render
    warnings.warn(RenderWarning("there is no backward step to play: the HTML file shows the graph "
                                "as it is (call backward() in the script to step through it)"))
    svg = render(trace, "svg", renderer=renderer, timeout=timeout, **dot_options).decode("utf-8")
    svg = svg[svg.find("<svg"):] if "<svg" in svg else svg  # no XML prolog inside HTML
    title = html.escape(" ".join(((f"{_visible(source)}: " if source else "") +
                                  "no backward steps \u2014 gradtrace").split()))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{title}</title>\n</head>\n<body>\n"
            "<p>No backward step to play: the graph as it was when the run ended.</p>\n"
            f"{svg}\n</body>\n</html>\n").encode("utf-8")


def _encoded(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data
