"""Digraph → dot / svg / png / pdf / json: the only module that runs a program (a Graphviz renderer)."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import threading
import time
import warnings
import zlib
from pathlib import Path

from .errors import TraceError
from .labels import needs_full_fonts, without_pads
from .output import check_writable, write_atomic
from .trace import Trace

__all__ = ["render", "write", "compact_svg", "find_renderer", "choose_renderer", "layout_warning",
           "RenderError", "RendererNotFoundError", "GraphTooLargeError", "RenderWarning",
           "FORMATS", "RENDERERS", "BUNDLED_NO_PDF", "SLOW_NODES", "SLOW_COPIES", "ENV_RENDERER", "FONT_FAMILY"]

FORMATS = ("dot", "svg", "png", "pdf", "json")
RENDERERS = ("auto", "bundled", "system")
ENV_RENDERER = "GRADTRACE_RENDERER"
# Layout time grows faster than linearly; above this many nodes it takes many seconds (see the
# README's Pictures benchmark), so callers are told how to get a smaller picture.
SLOW_NODES = 6000
SLOW_COPIES = 500
# Browsers pick the first installed family: Arial (Windows, macOS), else the metric-compatible
# Arimo / Liberation Sans (Linux), so text keeps the width the layout measured.
FONT_FAMILY = "Arial,Arimo,'Liberation Sans',Helvetica,sans-serif"
_SYSTEM_FIX = "install Graphviz (apt-get install graphviz / brew install graphviz)"
BUNDLED_NO_PDF = ("the bundled renderer cannot write PDF (the system Graphviz does): leave out "
                  "--renderer bundled, or write svg/png")
_BUNDLED_FIX = "pip install graphviz-pure==0.2.2 and use --renderer bundled"


class RenderError(TraceError):
    """The renderer failed on a graph; the message carries its own error output."""


class RendererNotFoundError(RenderError):
    """No program can render the requested format; the message names the fixes."""


class GraphTooLargeError(RenderError):
    """The graph has more nodes than the caller allowed; the message says how to shrink it."""


class RenderWarning(UserWarning):
    """Rendering works but the result may disappoint (slow layout, missing glyphs)."""


def _bundled_path() -> str | None:
    name = "graphviz-pure.exe" if sys.platform == "win32" else "graphviz-pure"
    for scripts in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = Path(scripts) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("graphviz-pure")


def find_renderer(kind: str) -> str | None:
    """The program for ``kind`` ("bundled": graphviz-pure, "system": Graphviz dot), or None."""
    if kind == "bundled":
        return _bundled_path()
    if kind == "system":
        return shutil.which("dot")
    raise RenderError(f"unknown renderer {kind!r}: choose one of {', '.join(RENDERERS)}")


def choose_renderer(fmt: str, renderer: str | None = None, source: str = "") -> tuple[str, str]:
    """(kind, program path) that renders ``fmt``: asked-for one, else $GRADTRACE_RENDERER, else auto.

    Auto uses the bundled graphviz-pure (reproducible) and the system dot for PDF, and for PNG
    when the text needs fonts the bundled renderer lacks (CJK, symbols) and dot is installed.
    """
    wanted = (renderer or os.environ.get(ENV_RENDERER) or "auto").strip().lower()
    if wanted not in RENDERERS:
        raise RenderError(f"unknown renderer {wanted!r}: choose one of {', '.join(RENDERERS)}")
    if fmt not in FORMATS or fmt == "dot":
        raise RenderError(f"format {fmt!r} needs no renderer or is unknown: choose one of "
                          f"{', '.join(FORMATS)}")
    if fmt == "pdf" and (renderer or "").strip().lower() == "bundled":
        raise RenderError(BUNDLED_NO_PDF)
    if fmt == "pdf" and wanted != "system":
        path = find_renderer("system")
        if path:
            return "system", path
        raise RendererNotFoundError(
            f"PDF needs the system Graphviz, which is not installed: {_SYSTEM_FIX}, "
            f"or write svg/png with the bundled renderer (or --format dot for the DOT)")
    if wanted == "system":
        path = find_renderer("system")
        if path:
            return "system", path
        raise RendererNotFoundError(
            f"the system Graphviz `dot` is not installed: {_SYSTEM_FIX}, or use --renderer "
            f"bundled (graphviz-pure; also unset {ENV_RENDERER}); --format dot needs neither")
    bundled = find_renderer("bundled")
    if fmt == "png" and needs_full_fonts(source):
        path = find_renderer("system") if wanted == "auto" else None
        if path:
            return "system", path
        if bundled:  # also when asked for by name: the user should know before printing it
            fix = "use svg, or --renderer system" if find_renderer("system") else f"use svg, or {_SYSTEM_FIX}"
            warnings.warn(RenderWarning(
                f"some text (CJK, symbols) will show as boxes in PNG from the bundled renderer: {fix}"),
                stacklevel=3)
    if bundled:
        return "bundled", bundled
    if wanted == "auto":
        path = find_renderer("system")
        if path:
            return "system", path
    raise RendererNotFoundError(
        f"no Graphviz renderer found: {_BUNDLED_FIX}, or {_SYSTEM_FIX} and use --renderer "
        f"system; --format dot writes the DOT without either")


def _source(graph) -> str:
    if isinstance(graph, str):
        return graph
    source = getattr(graph, "source", None)
    if isinstance(source, str):
        return source
    raise RenderError(f"cannot render {type(graph).__name__}: pass a Trace, a graphviz graph or DOT text")


def _nodes(graph, source: str) -> int:
    from .dot import node_count
    if hasattr(graph, "body"):
        return node_count(graph)
    return len(re.findall(r"^\s*[vf]\d+ \[", source, flags=re.M))


def layout_warning(graph, limit: int = SLOW_NODES) -> str | None:
    """A message when the graph is big enough for a slow layout (with the ways out), else None.

    Graphs with many proxy copies (a variable reused all along a long graph) are slow earlier.
    """
    source = _source(graph)
    count = _nodes(graph, source)
    copies = getattr(graph, "_gradtrace_copies", 0)
    if count <= limit and copies <= SLOW_COPIES:
        return None
    made_of = f" ({copies} of them copies of variables used all along it)" if copies > SLOW_COPIES else ""
    inner = ('hide the calls made inside backward (--inner hide; inner="hide" in Python), '
             if 'class="fn inner"' in source else "")
    return (f"the graph has {count} nodes{made_of}; laying it out may take a long time. To get a smaller "
            f"picture {inner}pick another pass, or write the DOT only (--format dot)")


_COMMENT = re.compile(rb"<!-- [^>]*-->\n")
_TITLE = re.compile(rb"(?<=\n)<title>[^<]*</title>\n")
_PAIR = re.compile(rb'<(path|polygon) fill="([^"]+)" stroke="none" (d|points)="([^"]+)"/>\n'
                   rb'<\1 fill="none" stroke="([^"]+)"((?: [a-z-]+="[^"]*")*) \3="\4"/>')


_ROUNDED = re.compile(rb'<path fill="(?!none")([^"]+)" stroke="([^"]+)"((?: [a-z-]+="[^"]*")*) '
                      rb'd="M([-\d.]+),([-\d.]+)C([-\d., ]+)"/>')


def _rounded_rect(m: re.Match) -> bytes:
    """A rounded table drawn as a 25-point path → the same shape as one <rect rx>."""
    points = [m.group(4) + b"," + m.group(5)] + m.group(6).split()
    if len(points) != 25 or points[0] != points[-1]:
        return m.group(0)
    xs = [float(p.split(b",")[0]) for p in points]
    ys = [float(p.split(b",")[1]) for p in points]
    x0, y0 = min(xs), min(ys)
    radius = min(xs[0] - x0, max(xs) - xs[0])
    return (b'<rect fill="%s" stroke="%s"%s x="%.2f" y="%.2f" width="%.2f" height="%.2f" rx="%.2f"/>'
            % (m.group(1), m.group(2), m.group(3), x0, y0, max(xs) - x0, max(ys) - y0, radius))


def compact_svg(data: bytes) -> bytes:
    """Smaller, equivalent SVG: one CSS font rule for all (Arial) text, no per-node titles or comments,
    background and border of a shape merged, rounded boxes as <rect rx> (a third the size)."""
    head, sep, body = data.partition(b'<g id="graph0"')
    if not sep:
        return data
    style = f'<style>text{{font-family:{FONT_FAMILY}}}</style>\n'.encode()
    head = head.replace(b"<svg ", b'<svg xml:space="preserve" ', 1)
    body = _COMMENT.sub(b"", body).replace(b' xml:space="preserve"', b"")
    body = body.replace(b' text-anchor="start"', b"").replace(b' font-family="Arial"', b"")
    body = _PAIR.sub(rb'<\1 fill="\2" stroke="\5"\6 \3="\4"/>', _TITLE.sub(b"", body))
    body = _ROUNDED.sub(_rounded_rect, body)
    return head + style + sep + body


_PDF_DATE = re.compile(rb"(/(?:CreationDate|ModDate) \(D:)(\d{14})(Z|[+-]\d\d'\d\d'?)")  # cairo: +09'00


def _pdf_date(match: re.Match) -> bytes:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    seconds = min(int(epoch), 253402300799) if epoch.isascii() and epoch.isdigit() else 0  # to 9999
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(seconds)).encode()
    zone = b"Z" if match.group(3) == b"Z" else b"+00'00'"[:len(match.group(3))]  # the same length
    return match.group(1) + stamp + zone


def deterministic_pdf(data: bytes) -> bytes:
    """The PDF with its creation date fixed (``$SOURCE_DATE_EPOCH``, else 1970-01-01), so that the
    same run gives the same bytes. The date keeps its length: the file's offsets stay valid."""
    return _PDF_DATE.sub(_pdf_date, data)


def _postprocess(fmt: str, data: bytes, dpi: int) -> bytes:
    if fmt == "svg":
        return compact_svg(data)
    if fmt == "png":
        return png_with_resolution(data, dpi)
    return deterministic_pdf(data) if fmt == "pdf" else data


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_with_resolution(data: bytes, dpi: int) -> bytes:
    """The PNG with a pHYs chunk saying its resolution, so that office programs and LaTeX place
    it at the size it was drawn for (without one they assume 72 or 96 dpi). An existing pHYs
    chunk is replaced."""
    if not data.startswith(_PNG_SIGNATURE):
        return data
    chunks, position = [], len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        length = struct.unpack(">I", data[position:position + 4])[0]
        end = position + 12 + length
        chunks.append((data[position + 4:position + 8], data[position:end]))
        position = end
    per_metre = round(dpi / 0.0254)
    body = b"pHYs" + struct.pack(">IIB", per_metre, per_metre, 1)
    phys = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body))
    kept = [chunk for kind, chunk in chunks if kind != b"pHYs"]
    if not kept or chunks[0][0] != b"IHDR":
        return data
    return _PNG_SIGNATURE + kept[0] + phys + b"".join(kept[1:]) + data[position:]


def render(graph, format: str = "svg", *, renderer: str | None = None, dpi: int | None = None,
           max_nodes: int | None = None, timeout: float | None = None, **dot_options) -> bytes:
    """Render a Trace (drawn with ``to_dot(**dot_options)``), a Digraph or DOT text to bytes.

    ``format``: dot (the DOT text, no program), svg, png, json (bundled graphviz-pure by
    default) or pdf (system Graphviz). ``renderer``: "bundled", "system" or "auto" (default,
    also from $GRADTRACE_RENDERER). ``dpi`` sets PNG resolution. More than ``max_nodes``
    nodes raises GraphTooLargeError; a graph above SLOW_NODES emits a RenderWarning first.
    """
    dpi = 120 if dpi is None else dpi
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 10 <= dpi <= 1200:
        raise ValueError(f"dpi must be a whole number from 10 to 1200, got {dpi!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0):
        raise ValueError(f"timeout must be a number of seconds above 0 (or None: no limit), got {timeout!r}")
    if dot_options or not (isinstance(graph, str) or hasattr(graph, "source")):
        from .dot import padded_dot
        graph = padded_dot(graph, **dot_options)
    pads = getattr(graph, "_gradtrace_pads", False)  # a graph gradtrace drew for the bundled renderer
    if not isinstance(format, str):
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    fmt = format.lower().lstrip(".")
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {format!r}: choose one of {', '.join(FORMATS)}")
    source = _source(graph)
    if fmt == "dot":
        return (without_pads(source) if pads else source).encode("utf-8")
    count = _nodes(graph, source)
    if max_nodes is not None and count > max_nodes:
        raise GraphTooLargeError(layout_warning(graph, max_nodes))
    message = layout_warning(graph)
    if message:
        warnings.warn(RenderWarning(message), stacklevel=2)
    kind, program = choose_renderer(fmt, renderer, source)
    if kind == "system" and pads:
        source = without_pads(source)
    argv = [program, f"-T{fmt}"]
    started = time.monotonic()
    if fmt == "png":
        argv.append(f"-Gdpi={dpi}")
        if count > _PNG_CHECK_NODES or dpi > _PNG_CHECK_DPI:
            _check_png_size(kind, program, source, dpi, timeout)
    elif fmt == "pdf":
        argv.append("-Gmargin=0")  # paged formats add half an inch a side: the picture's own pad is enough
    left = None if timeout is None else max(timeout - (time.monotonic() - started), 1e-3)
    try:
        return _postprocess(fmt, _run(kind, program, argv, source, left, timeout), dpi)
    except _RoutingError as failure:
        # Graphviz sometimes cannot route an edge around others when edges leave from ports
        # (the gradient edges do). The same graph without ports lays out; the gradient edges
        # then run beside the forward edges instead of below the boxes.
        unported = _EDGE_PORTS.sub(r"\1 -> \2 ", source)
        if unported == source:
            raise RenderError(str(failure)) from None
        left = None if timeout is None else timeout - (time.monotonic() - started)
        if left is not None and left <= 0:  # the timeout bounds both layouts together
            raise _too_slow(kind, timeout) from None
        try:
            return _postprocess(fmt, _run(kind, program, argv, unported, left, timeout), dpi)
        except _RoutingError:
            raise RenderError(str(failure)) from None


# A PNG is a pixel array in memory (4 bytes each) before it is compressed: a 200-op chain at
# 120 dpi is 3.5 billion pixels, and the renderer took the machine's memory. Its size is worked
# out first (one SVG layout) when the graph is big or the dpi high enough to get there.
PNG_MAX_PIXELS = 100_000_000
_PNG_CHECK_NODES = 150  # below: no layout this size reaches the limit at dpi <= _PNG_CHECK_DPI
_PNG_CHECK_DPI = 240
_SVG_SIZE = re.compile(rb'<svg[^>]*?width="([\d.]+)pt"[^>]*?height="([\d.]+)pt"')


def _check_png_size(kind: str, program: str, source: str, dpi: int, timeout: float | None) -> None:
    """RenderError when the PNG would have more than PNG_MAX_PIXELS pixels."""
    try:
        svg = _run(kind, program, [program, "-Tsvg"], source, timeout)
    except _RoutingError:
        return  # the PNG's own layout will try again without ports
    found = _SVG_SIZE.search(svg[:4000])
    if found is None:
        return
    width, height = (math.ceil(float(v) * dpi / 72) for v in found.groups())
    if width * height <= PNG_MAX_PIXELS:
        return
    fits = int(dpi * math.sqrt(PNG_MAX_PIXELS / (width * height)))
    lower = f"lower --dpi (at most {fits} fits), or " if fits >= 10 else ""
    raise RenderError(f"the PNG would be {width:,} x {height:,} pixels ({width * height / 1e6:,.0f} million; "
                      f"at most {PNG_MAX_PIXELS // 1_000_000} million are drawn): {lower}write .svg or .pdf, "
                      f"which scale without pixels")


# An edge between ports (`v4:s -> f5:s [...]`): the ports are dropped when routing fails.
_EDGE_PORTS = re.compile(r"^(\t\S+?):[nsewc]{1,2} -> (\S+?):[nsewc]{1,2} ", flags=re.M)
_ROUTING = re.compile(r"triangulation failed|Pshortestpath failed|lost \S+ \S+ edge")


class _RoutingError(RenderError):
    """The renderer could not route an edge (a Graphviz limitation with ports)."""


def _too_slow(kind: str, timeout: float) -> RenderError:
    return RenderError(f"{kind} renderer took more than {timeout:g} s: allow more (--timeout "
                       f"{max(600, 5 * timeout):g}, or 0 for no limit), hide inner calls (--inner hide), "
                       f"draw another pass (--pass) or write the DOT only (--format dot)")


class _Terminated(BaseException):
    """SIGTERM or SIGHUP while the renderer ran (raised so that ``subprocess.run`` kills it)."""


def _terminate(signum, frame):
    raise _Terminated(signum)


@contextlib.contextmanager
def _renderer_dies_with_us():
    """SIGTERM/SIGHUP to gradtrace while the renderer runs: kill the renderer too (it went on
    laying out on its own), then end as that signal would. Only in the main thread, where
    Python handles signals; a handler the program set is put back afterwards."""
    names = [n for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {}
    for name in names:
        number = getattr(signal, name)
        if signal.getsignal(number) in (signal.SIG_DFL, None):
            saved[number] = signal.signal(number, _terminate)
    try:
        yield
    except _Terminated as stop:
        number = stop.args[0]
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)  # the child is gone: end as the signal asked
        raise
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def _run(kind: str, program: str, argv: list[str], source: str, timeout: float | None,
         limit: float | None = None) -> bytes:
    """Run the renderer on ``source`` for at most ``timeout`` seconds (``limit``: the time the
    user gave, for the message); its output, or RenderError with its own error lines."""
    try:
        with _renderer_dies_with_us():
            done = subprocess.run(argv, input=source.encode("utf-8"), capture_output=True,
                                  timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise RendererNotFoundError(f"cannot run {program}: {exc.strerror}; {_BUNDLED_FIX}, "
                                    f"or {_SYSTEM_FIX}") from exc
    except subprocess.TimeoutExpired as exc:
        raise _too_slow(kind, limit or timeout) from exc
    if done.returncode != 0 or not done.stdout:
        text = done.stderr.decode("utf-8", "replace")
        errors = [line for line in text.splitlines() if "non-ASCII" not in line][:5]
        detail = "; ".join(errors) or f"exit status {done.returncode}"
        failure = _RoutingError if _ROUTING.search(text) else RenderError
        raise failure(f"{kind} renderer ({program}) failed on -T{argv[1][2:]}: {detail}")
    return done.stdout


def write(graph, path, format: str | None = None, **options) -> Path:
    """Render to ``path`` atomically; the format comes from the suffix unless given.

    Options are those of ``render``. A ``.gv``/``.dot`` path gets the DOT text. For a Trace,
    ``.json`` is the trace itself (schema ``gradtrace.trace/1``, as ``gradtrace render -o``
    writes it, which ``tracer.load`` reads) and ``.html``/``.htm`` the player.
    """
    target = check_writable(path)
    fmt = (format or target.suffix.lstrip(".") or "svg").lower()
    if isinstance(graph, Trace) and fmt in ("json", "html", "htm"):
        from .export import export
        return write_atomic(target, export(graph, "html" if fmt == "htm" else fmt, **options))
    return write_atomic(target, render(graph, fmt, **options))
