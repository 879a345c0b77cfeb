"""Benchmark: the tracer's cost in instructions per op (valgrind callgrind), steady where the clock is not.

Run: python bench/tracer_instructions.py [--ops N] [--modes plain,bare,copies,compiled,traced]
Needs valgrind (and, for ``compiled``, a C compiler). Each mode runs the chain of bench/tracer.py
in a fresh process under callgrind twice, with N ops and with none, and prints the difference per
op: the engine alone (plain), the stand-in hooks of ``--floor`` (bare, copies), the compiled
stand-in recorder of ``--compiled``, and gradtrace's tracer (traced, building the Trace included).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MODES = ("plain", "bare", "copies", "compiled", "traced")


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_tracer", BENCH / "tracer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child(mode: str, ops: int, compiled_path: str) -> None:
    """Run the chain once in ``mode`` (the process callgrind counts)."""
    bench = _bench_module()
    tracer = bench.tracer
    bench.chain(50)
    with tracer.trace():  # warm both paths, so that only the chain itself differs between runs
        bench.chain(50)
    if mode == "plain":
        bench.chain(ops)
    elif mode in ("bare", "copies"):
        with bench.stand_in_hooks(mode == "copies"):
            bench.chain(ops)
    elif mode == "compiled":
        spec = importlib.util.spec_from_file_location("compiled_floor", compiled_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with bench.compiled_hooks(module):
            bench.chain(ops)
    else:
        with tracer.trace() as recorded:
            bench.chain(ops)
        assert recorded.complete


def _instructions(mode: str, ops: int, compiled_path: str) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
               __file__, "--child", mode, "--ops", str(ops), "--compiled-path", compiled_path]
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"})
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--compiled-path", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.ops, args.compiled_path)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind not found: install it (apt-get install valgrind)")
    modes = [m for m in args.modes.split(",") if m]
    compiled_path = ""
    if "compiled" in modes:
        built = _bench_module().compiled_floor_module().__file__
        compiled_path = str(Path(tempfile.mkdtemp()) / Path(built).name)
        shutil.copy(built, compiled_path)
    base = None
    for mode in modes:
        per_op = (_instructions(mode, args.ops, compiled_path) - _instructions(mode, 0, compiled_path)) / args.ops
        base = per_op if mode == "plain" else base
        ratio = f", {per_op / base:.2f}x the engine alone" if base and mode != "plain" else ""
        print(f"{mode:9} {per_op:9,.0f} instructions per op{ratio}")


if __name__ == "__main__":
    main()
