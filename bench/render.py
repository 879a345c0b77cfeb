"""Benchmark the pictures: DOT build, SVG rendering of big traces, frames of a long backward pass.

Run: python bench/render.py [--quick]. Prints a Markdown table (medians; CPU-bound parts also as
process time, which a busy machine disturbs less). Never run as a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import engine as E  # noqa: E402
import tracer  # noqa: E402
from tracer.dot import node_count, to_dot  # noqa: E402
from tracer.frames import frames, write_frames  # noqa: E402
from tracer.player import write_player  # noqa: E402
from tracer.render import find_renderer, render  # noqa: E402

__all__ = ["main"]


def _chain(ops: int):
    with tracer.trace() as t:
        x = E.Variable(np.array(0.5), name="x")
        y = x
        for _ in range(ops):
            y = E.sin(y)
        y.backward()
    return t


def _branching(ops: int):
    """y = y * x + y repeated: every step reuses x (long edges, the hard case for layout)."""
    with tracer.trace() as t:
        x = E.Variable(np.array(1.0001), name="x")
        y = E.Variable(np.array(1.0), name="y0")
        for _ in range(ops // 2):
            y = y * x + y
        y.backward()
    return t


def _tanh(backwards: int):
    """The book's step 35: y = tanh(x), then repeatedly gx = x.grad; x.cleargrad(); gx.backward."""
    with tracer.trace(keep="last") as t:
        x = E.Variable(np.array(1.0), name="x")
        y = E.tanh(x)
        y.backward(create_graph=True)
        for _ in range(backwards - 1):
            gx = x.grad
            x.cleargrad()
            gx.backward(create_graph=True)
    return t


def _tree(leaves: int):
    """A balanced tree of additions over ``leaves`` leaves (2 × leaves nodes)."""
    with tracer.trace() as t:
        level = [E.Variable(np.array(float(i))) for i in range(leaves)]
        while len(level) > 1:
            pairs = [E.add(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            level = pairs + ([level[-1]] if len(level) % 2 else [])
        level[0].backward()
    return t


def _nodes(trace, graph) -> str:
    """Nodes drawn, with the proxy copies added by the layout planning."""
    record = trace.select_pass()
    own = len(trace.graph_variables(record)) + len(trace.graph_calls(record))
    drawn = node_count(graph)
    if "inner" in graph.source and drawn > own and " class=\"fn inner\"" in graph.source:
        return f"{drawn:,}"
    return f"{own:,}" + (f" + {drawn - own:,} copies" if drawn > own else "")


def _timed(fn, repeat: int) -> tuple[float, float, object]:
    """(median wall s, min process s, last result)."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), min(cpus), result


def main(argv=None) -> None:
    """Run the measurements and print the README table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repetition, smaller traces")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else 3
    start_load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []

    t = _chain(5000)
    n = len(t.variables) + len(t.calls)
    wall, cpu, _ = _timed(lambda: to_dot(t), repeat * 2)
    rows.append(("DOT build, chain trace", n, f"{wall * 1e6 / n:.1f} µs/node (CPU {cpu * 1e6 / n:.1f})",
                 "≤ 15 µs/node"))
    tb = _branching(5000)
    nb = len(tb.variables) + len(tb.calls)
    wall, cpu, _ = _timed(lambda: to_dot(tb), repeat * 2)
    rows.append(("DOT build, y = y*x + y trace", nb, f"{wall * 1e6 / nb:.1f} µs/node "
                 f"(CPU {cpu * 1e6 / nb:.1f})", "≤ 15 µs/node"))
    if find_renderer("bundled") is None:
        print("graphviz-pure not installed: rendering rows skipped", file=sys.stderr)
    else:
        for label, trace, reps in (("chain", _chain(2500), repeat),
                                   ("binary Add tree", _tree(1667), repeat),
                                   ("y = y*x + y", _branching(2500), 1)):
            graph = to_dot(trace)
            wall, _, _ = _timed(lambda: render(graph, "svg"), reps)
            rows.append((f"{label} trace → SVG", _nodes(trace, graph), f"{wall:.2f} s", "≤ 2 s"))
        tanh = _tanh(8)
        graph = to_dot(tanh, inner="hide")
        wall, _, _ = _timed(lambda: render(graph, "svg"), repeat)
        rows.append(("tanh 7th-derivative graph → SVG", _nodes(tanh, graph), f"{wall:.2f} s",
                     "≤ 10 s"))
        shown = to_dot(tanh, inner="show")
        wall, _, _ = _timed(lambda: render(shown, "svg"), 1)
        rows.append(("… with the 8th backward's calls (inner=show)", _nodes(tanh, shown),
                     f"{wall:.2f} s", ""))
        long_pass = _chain(500)
        one, _, _ = _timed(lambda: render(long_pass, "svg"), repeat)
        with tempfile.TemporaryDirectory() as tmp:
            def all_frames():
                made = frames(long_pass)
                write_frames(made, Path(tmp) / "frames")
                return made
            wall, _, made = _timed(all_frames, repeat)
            size = sum(p.stat().st_size for p in (Path(tmp) / "frames").iterdir()) / 1e6
            player, _, _ = _timed(lambda: write_player(made, Path(tmp) / "p.html"), repeat)
        nodes = len(long_pass.variables) + len(long_pass.calls)
        rows.append(("one render of a 500-step pass", nodes, f"{one:.2f} s", ""))
        rows.append(("all 501 frames (layout once + 501 SVG files: before, and 500 steps)", nodes,
                     f"{wall:.2f} s = {wall / one:.1f}× one render ({size:.0f} MB)", "≤ 3×"))
        rows.append(("HTML player from those frames", nodes, f"{player:.3f} s", ""))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average before/after: {start_load} / {load} ({os.cpu_count()} CPUs)\n")
    print("| what | nodes | measured | target |")
    print("|---|---:|---|---|")
    for what, nodes, measured, target in rows:
        print(f"| {what} | {nodes if isinstance(nodes, str) else f'{nodes:,}'} | {measured} | {target} |")


if __name__ == "__main__":
    main()
