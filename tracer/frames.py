"""One picture per backward step on a frozen layout: numbered SVG frames (see player.py for HTML)."""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import shutil
import stat
import signal
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from .dot import DotOptions, draw
from .dotlabels import grad_font, grad_text
from .dotnodes import constant_ids
from .errors import OutputError, TraceError
from .gradview import GradView, PassIndex
from .labels import text_width
from .output import check_writable, write_atomic
from .render import render
from .themes import get_theme
from .trace import require_trace

__all__ = ["Frames", "FramesError", "Look", "frames", "write_frames"]

_CELL = re.compile(r'<g id="a_v(\d+)g"><a xlink:title="([^"]*)">\n<polygon fill="([^"]*)" '
                   r'stroke="none"[^>]*/>\n<text [^>]*>grad </text>\n(<text [^>]*>[^<]*</text>)')
_FN = re.compile(r'<g id="f(\d+)" class="node fn[^"]*">\n(?:<title>[^<]*</title>\n)?'
                 r'(?:<g id="a_f\d+t"><a xlink:title="[^"]*">\n)?<polygon fill="([^"]*)"( stroke="[^"]*")')
# A step badge: its rounded cell, then its number.
_GROUP = re.compile(r'<g id="([^"]*)"')
_FN_GROUP = re.compile(r'f\d+|a_f\d+t')
_BADGE = re.compile(r'<rect (fill="([^"]*)" stroke="none")[^>]*/>\n<text [^>]*?( fill="[^"]*")>(\d+)</text>')
_EDGE = re.compile(r'<g id="g(\d+)_\d+" class="edge grad s\d+"()')
_NOW = re.compile(r'<g id="a_legend_now(\d)"()')  # legend rows about the step shown: not in frame 0
_BUILT = re.compile(r'<g id="([fv]\d+|e\d+[io]\d+)" class="[^"]*"()')  # boxes and edges a step may make
BUILT_OPACITY = "0.15"  # what a later step's backward builds, before it runs
_CAPTION = re.compile(r'<g id="a_caption"><a xlink:title="[^"]*">\n<text [^>]*>([^<]*)</text>')
_TEXT_POS = re.compile(r'x="([^"]+)" y="([^"]+)".*font-size="([^"]+)"')


class FramesError(TraceError):
    """The trace cannot be stepped through (no backward pass, or the layout lacks its marks)."""


@dataclass(frozen=True)
class Look:
    """How a gradient field looks in one frame."""

    text: str
    fill: str
    color: str
    italic: bool
    bold: bool
    tip: str


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class Frames:
    """The backward steps of one pass, drawn on a single layout (boxes never move or resize).

    One frame per step (``count`` steps): frame k shows the gradients known after step k, the
    step's function highlighted, its gradient edges (when drawn) and the earlier ones; frame 0
    the graph before the first step. Build with ``frames(trace, ...)``; ``svg(k)`` is frame k,
    ``svgs()`` frames 1..count (``svgs(0)`` from frame 0).
    """

    def __init__(self, trace, options: DotOptions, renderer: str | None = None,
                 timeout: float | None = None) -> None:
        self.trace = trace
        self.options = options
        self.theme = get_theme(options.theme)
        self.pass_record = trace.select_pass(options.which)
        if self.pass_record is None:
            raise FramesError("no backward step to show: the run made no backward pass "
                              "(call y.backward() in the traced code), or draw a single picture")
        if not self.pass_record.steps:  # it was called: "made no backward pass" sent readers astray
            error = self.pass_record.error
            why = f"it raised {error.type} before its first step" if error is not None else \
                "its root has no creator"
            raise FramesError(f"no backward step to show: backward pass {self.pass_record.id} ran none "
                              f"({why}); draw a single picture")
        self.count = len(self.pass_record.steps)
        # constants are drawn without a gradient field: nothing to change in them
        self._plain = constant_ids(trace, self.pass_record.variables, self.pass_record,
                                   full=self.theme.colored)
        self.runs = PassIndex(trace, self.pass_record).steps_of_call
        self.looks, final_views = self._looks()  # looks[k]: frame k's changes (frame 0: all)
        # bold / italic text runs wider than measured (bold Arial about a tenth): two spaces of
        # slack, and one more per ten characters
        widest = {}
        for v, looks in self._by_var().items():
            text = max((look.text for look in looks.values()), key=_width)
            widest[v] = text + " " * (2 + len(text) // 10)
        steps_to_come = f"{self.count} step{'s' if self.count != 1 else ''} to come"
        self.captions = [f"Before backward: the forward values ({steps_to_come})"] + \
            [self._caption(step) for step in self.pass_record.steps]  # captions[k]: frame k's
        graph = draw(trace, replace(options, grads=True, step=None), views=final_views,
                     display=widest, caption=max(self.captions, key=_width))
        self.layout = render(graph, "svg", renderer=renderer or "bundled", timeout=timeout).decode("utf-8")
        self._template()

    # ----- what each frame shows ----------------------------------------------------------

    def _look(self, view: GradView, updated: bool) -> Look:
        fill, color, italic, bold = grad_font(self.theme, view)
        if updated and view.state in ("value", "zero"):
            fill, bold = self.theme.updated_fill, True  # bold: the light fill is lost in greyscale
        return Look(grad_text(view, self.options.precision), fill or self.theme.var_fill, color,
                    italic, bold,
                    f"grad: {grad_text(view, 10)}")

    def _looks(self) -> tuple[list[dict[int, Look]], dict[int, GradView]]:
        """Per frame the fields that changed (frame 0, before the first step: all), and the views
        after the last step."""
        timeline = PassIndex(self.trace, self.pass_record).timeline()
        state = dict(timeline[0])
        looks: list[dict[int, Look]] = []
        shown: dict[int, Look] = {}
        highlighted: set[int] = set()
        for k in range(self.count + 1):
            delta = timeline[k] if k else {}
            state.update(delta)
            updated = {v for v, view in delta.items() if view.state in ("value", "zero")}
            changed = set(delta) | highlighted | updated if k else set(state)
            frame = {}
            for v in changed - self._plain:
                look = self._look(state[v], v in updated)
                if shown.get(v) != look:
                    frame[v] = shown[v] = look
            highlighted = updated
            looks.append(frame)
        return looks, state

    def _by_var(self) -> dict[int, dict[int, Look]]:
        by_var: dict[int, dict[int, Look]] = {}
        for k, frame in enumerate(self.looks):
            for v, look in frame.items():
                by_var.setdefault(v, {})[k] = look
        return by_var

    def _caption(self, step) -> str:
        call = self.trace.calls.get(step.call)
        op = call.op if call else "?"
        text = f"Backward step {step.index} of {self.count}: {op}"
        runs = self.runs.get(step.call, [])
        before = [str(n) for n in runs if n < step.index]
        if before:
            text += f" again (it ran at step{'s' if len(before) > 1 else ''} {', '.join(before)})"
        elif len(runs) > 1:
            text += f" (runs again at step {runs[1]})"
        return text + " (failed)" if step.error else text

    # ----- the SVG template ---------------------------------------------------------------

    def _template(self) -> None:
        """Cut the laid-out SVG into fixed text and the slots that change between frames."""
        svg = self.layout
        spans: list[tuple[int, int, tuple]] = []
        self._text_pos: dict[int, tuple[str, str, str]] = {}
        for m in _CELL.finditer(svg):
            var = int(m.group(1))
            spans.append((m.start(2), m.end(2), ("tip", var)))
            spans.append((m.start(3), m.end(3), ("fill", var)))
            spans.append((m.start(4), m.end(4), ("text", var)))
            self._text_pos[var] = _TEXT_POS.search(m.group(4)).groups()
        self._fn_fill: dict[int, str] = {}
        self._fn_stroke: dict[int, str] = {}
        for m in _FN.finditer(svg):
            call = int(m.group(1))
            self._fn_fill[call] = m.group(2)
            self._fn_stroke[call] = m.group(3)
            spans.append((m.start(2), m.end(2), ("fn", call)))
            spans.append((m.start(3), m.end(3), ("fnstroke", call)))
        groups = [(m.start(), m.group(1)) for m in _GROUP.finditer(svg)]
        self._badges: dict[int, tuple[str, str, str]] = {}  # step -> (cell, fill, number's fill)
        for m in _BADGE.finditer(svg):
            inside = groups[bisect.bisect(groups, (m.start(),)) - 1][1] if groups else ""
            if not _FN_GROUP.fullmatch(inside):
                continue  # a cell of some other box
            step = int(m.group(4))
            self._badges[step] = (m.group(1), m.group(2), m.group(3))
            spans.append((m.start(1), m.end(1), ("badge", step)))
            spans.append((m.start(3), m.end(3), ("badgetext", step)))
        for m in _EDGE.finditer(svg):
            spans.append((m.start(2), m.end(2), ("edge", int(m.group(1)))))
        for m in _NOW.finditer(svg):
            spans.append((m.start(2), m.end(2), ("now", int(m.group(1)))))
        built = {element: step for step, ids in self.built_by_step().items() for element in ids}
        for m in _BUILT.finditer(svg):
            if m.group(1) in built:
                spans.append((m.start(2), m.end(2), ("built", m.group(1), built[m.group(1)])))
        caption = _CAPTION.search(svg)
        if caption:
            spans.append((caption.start(1), caption.end(1), ("caption", 0)))
        missing = set(self._by_var()) - set(self._text_pos)
        if missing or not caption:
            raise FramesError("frames need the bundled renderer (graphviz-pure; this renderer drops "
                              "the cell marks frames use): leave out --renderer system")
        spans.sort()
        parts, keys, last = [], [], 0
        for start, end, key in spans:
            parts.append(svg[last:start])
            parts.append(svg[start:end])
            keys.append(key)
            last = end
        parts.append(svg[last:])
        self._parts = parts
        self._slots = {key: 2 * i + 1 for i, key in enumerate(keys)}
        self._edges = [(2 * i + 1, key[1]) for i, key in enumerate(keys) if key[0] == "edge"]
        self._now_rows = [2 * i + 1 for i, key in enumerate(keys) if key[0] == "now"]
        self._built = [(2 * i + 1, key[2]) for i, key in enumerate(keys) if key[0] == "built"]

    def built_by_step(self) -> dict[int, list[str]]:
        """Step -> the SVG ids of what that step's backward built (create_graph: the calls of the
        gradients' own graph, their outputs and edges): faint in frames and the player until the
        step has run, so that graph grows step by step."""
        trace, record = self.trace, self.pass_record
        found: dict[int, list[str]] = {}
        for call_id in sorted(record.inner_calls):
            call = trace.calls.get(call_id)
            if call is None or call.in_step is None or call.in_step[0] != record.id or not call.in_step[1]:
                continue
            ids = found.setdefault(call.in_step[1], [])
            ids.append(f"f{call_id}")
            ids.extend(f"e{call_id}i{p}" for p in range(len(call.inputs)))
            ids.extend(f"e{call_id}o{k}" for k in range(len(call.outputs)))
            ids.extend(f"v{v}" for v in call.outputs)
        return found

    def _text_element(self, var: int, look: Look) -> str:
        x, y, size = self._text_pos[var]
        style = ' font-style="italic"' if look.italic else ""
        weight = ' font-weight="bold"' if look.bold else ""
        return (f'<text x="{x}" y="{y}"{style}{weight} font-size="{size}" '
                f'fill="{look.color}">{_xml(look.text)}</text>')

    def frames_bytes(self, first: int = 1):
        """Yield frames first..count as UTF-8 SVG bytes (each built from the previous one's
        changes); frame 0 is the graph before the first step."""
        parts = [p.encode("utf-8") for p in self._parts]
        slots = self._slots
        edges_by_step: dict[int, list[int]] = {}
        for index, step in self._edges:
            edges_by_step.setdefault(step, []).append(index)
            parts[index] = b' visibility="hidden"'
        current_fn = None
        badges = self._badges
        pending = {step: self._pending_badge(step) for step in badges}
        for step, (cell, _, number) in badges.items():
            parts[slots[("badge", step)]], parts[slots[("badgetext", step)]] = pending[step]
        for index in self._now_rows:  # frame 0 shows no step: its legend rows are hidden there
            parts[index] = b' visibility="hidden"'
        built_by_step: dict[int, list[int]] = {}
        for index, step in self._built:
            built_by_step.setdefault(step, []).append(index)
            parts[index] = f' opacity="{BUILT_OPACITY}"'.encode("ascii")
        for k in range(self.count + 1):
            for index in built_by_step.get(k, ()):
                parts[index] = b""
            if k == 1:
                for index in self._now_rows:
                    parts[index] = b""
            if k in badges:
                cell, _, number = badges[k]
                parts[slots[("badge", k)]] = cell.encode("utf-8")
                parts[slots[("badgetext", k)]] = number.encode("utf-8")
            for var, look in self.looks[k].items():
                parts[slots[("tip", var)]] = _xml(look.tip).encode("utf-8")
                parts[slots[("fill", var)]] = look.fill.encode("ascii")
                parts[slots[("text", var)]] = self._text_element(var, look).encode("utf-8")
            call = self.pass_record.steps[k - 1].call if k else None
            if current_fn is not None and ("fn", current_fn) in slots:
                parts[slots[("fn", current_fn)]] = self._fn_fill[current_fn].encode("ascii")
                parts[slots[("fnstroke", current_fn)]] = self._fn_stroke[current_fn].encode("ascii")
            if ("fn", call) in slots:
                parts[slots[("fn", call)]] = self.theme.current_fill.encode("ascii")
                parts[slots[("fnstroke", call)]] = self.current_stroke.encode("ascii")
            current_fn = call
            for index in edges_by_step.get(k, ()):
                parts[index] = b""
            parts[slots[("caption", 0)]] = _xml(self.captions[k]).encode("utf-8")
            if k >= first:
                yield b"".join(parts)

    @property
    def current_stroke(self) -> str:
        """The current step's box border: heavy, as in ``--step`` pictures (kept in greyscale)."""
        return f' stroke="{self.theme.current_border}" stroke-width="3"'

    def _pending_badge(self, step: int) -> tuple[bytes, bytes]:
        """A badge of a step not run yet: hollow, its number in the badge's colour."""
        _, fill, _ = self._badges[step]
        return (f'fill="#ffffff" stroke="{fill}"'.encode("utf-8"),
                f' fill="{fill}"'.encode("utf-8"))

    def svgs(self, first: int = 1):
        """Yield the SVG text of frames first..count (0: the graph before the first step)."""
        for data in self.frames_bytes(first):
            yield data.decode("utf-8")

    def svg(self, k: int) -> str:
        """Frame ``k`` (1 = after the first backward step; 0 = before it)."""
        if not 0 <= k <= self.count:
            raise FramesError(f"frame {k} does not exist: this pass has frames 0 to {self.count}")
        return next(self.svgs(k))


def _width(text: str) -> float:
    return text_width(text)


def frames(trace, *, renderer: str | None = None, timeout: float | None = None, **dot_options) -> Frames:
    """Lay out a pass once and prepare one frame per backward step (options as ``to_dot``;
    ``timeout``: seconds the layout may take, as for ``render``)."""
    require_trace(trace, "frames")
    if "step" in dot_options:
        raise FramesError("frames draw every step; leave out step= (or use to_dot(step=k))")
    options = DotOptions(**dot_options)
    return Frames(trace, options, renderer, timeout)


def write_frames(trace, directory, *, prefix: str = "step-", **options) -> list[Path]:
    """Write ``step-000.svg`` (before the first step), ``step-001.svg`` … one file per backward
    step, into ``directory`` (created if needed); frames an earlier run left there beyond these
    (``step-007.svg`` of a longer pass) are removed, so the directory holds one run's frames.

    Options are those of ``frames``; returns the paths in step order.
    """
    target = Path(directory)
    made = trace if isinstance(trace, Frames) else frames(trace, **options)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create directory {target}: {exc.strerror or exc}") from exc
    digits = max(3, len(str(made.count)))
    planned = [(target / f"{prefix}{k:0{digits}d}.svg", svg) for k, svg in enumerate(made.frames_bytes(0))]
    for number, (path, _) in enumerate(planned):  # all checked before any is written: never a mix
        if path.is_dir():
            raise OutputError(f"cannot write frame {path}: a directory has that name; remove it or "
                              f"choose another frames directory")
        check_writable(path, probe=number == 0)  # one directory: one file made there is enough
    # All written into a hidden directory first, then moved in: a full disk, Ctrl-C or another
    # run writing the same frames never leaves a mix of two runs' frames.
    try:
        staging = Path(tempfile.mkdtemp(prefix=".frames-", dir=target))
    except OSError as exc:
        raise OutputError(f"cannot write the frames in {target}: {exc.strerror or exc}") from exc
    try:
        for path, svg in planned:
            try:
                (staging / path.name).write_bytes(svg)
            except OSError as exc:
                raise OutputError(f"cannot write the frames in {target}: {exc.strerror or exc}; the "
                                  f"frames there are as they were") from exc
        with _ctrl_c_deferred():  # renames only: quick, and never half one run's frames
            for path, svg in planned:
                if path.is_symlink():  # written through, as write_atomic does, not replaced by a file
                    write_atomic(path, svg)
                    continue
                with contextlib.suppress(FileNotFoundError):  # an old frame's mode is kept
                    os.chmod(staging / path.name, stat.S_IMODE(path.stat().st_mode))
                os.replace(staging / path.name, path)
            for old in stale_frames(target, prefix, {path.name for path, _ in planned}):
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [path for path, _ in planned]


def stale_frames(directory, prefix: str, keep) -> list[Path]:
    """The frames (``{prefix}NNN.svg``) in ``directory`` whose names are not in ``keep``."""
    pattern = re.compile(re.escape(prefix) + r"\d+\.svg\Z")
    return sorted(Path(directory) / name for name in os.listdir(directory)
                  if pattern.match(name) and name not in keep)


@contextlib.contextmanager
def _ctrl_c_deferred():
    """Hold a Ctrl-C (SIGINT) until the block ends, then raise it (main thread only: elsewhere
    Python delivers no signals, and nothing is held)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
