"""Benchmark: the tracer's cost — traced vs untraced runs, interleaved, and memory per op.

Run: python bench/tracer.py [--repeat N]
Prints µs per op (chain of 10k scalar ops, forward + backward, recording and building the
Trace included), the MLP 784-100-10 step in ms, and the extra memory a trace holds per op
for 0-d arrays and for 1000-element arrays (default snapshots: arrays of more than 100
elements are summarised).

``--floor`` also times two stripped-down stand-ins on the same chain, to show what any tracer
built from Python-level hooks pays before it records anything: "bare hooks" (pass-through
wrappers on ``Function.__call__`` and ``Sin.backward``) and "hooks + copies" (the same wrappers
keeping the output value and the step's gradients, the least "default snapshots" means: no
ids, no links, no accumulated gradients, no Trace).

``--compiled`` builds ``bench/compiled_floor.c`` with the system C compiler and times it on the
same chain: a stand-in recorder written in C that records per op what a Trace must hold (ids,
links, values, the step's gradients and each input's ``.grad`` after it) but builds no Trace.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib.util
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import engine as E  # noqa: E402
import tracer  # noqa: E402

CHAIN = 10_000


def chain(n: int, size: int = 1) -> None:
    """n scalar (or `size`-element) sin ops, then backward."""
    x = E.Variable(np.full((), 0.5) if size == 1 else np.linspace(0, 1, size))
    y = x
    for _ in range(n):
        y = E.sin(y)
    if size != 1:
        y = E.sum(y)
    y.backward()


_RNG = np.random.default_rng(0)
_MLP_DATA = (_RNG.standard_normal((100, 784)), _RNG.integers(0, 10, 100),
             _RNG.standard_normal((784, 100)) * 0.01, _RNG.standard_normal((100, 10)) * 0.01)


def mlp_step() -> None:
    """One forward+backward of a 784-100-10 MLP (float64) on a batch of 100 (data made once)."""
    data, t, first, second = _MLP_DATA
    x = E.Variable(data)
    w1, b1 = E.Parameter(first.copy()), E.Parameter(np.zeros(100))
    w2, b2 = E.Parameter(second.copy()), E.Parameter(np.zeros(10))
    h = E.sigmoid(E.linear(x, w1, b1))
    loss = E.softmax_cross_entropy(E.linear(h, w2, b2), t)
    loss.backward()


def _timed(function, traced: bool) -> float:
    gc.collect()
    start = time.perf_counter()
    if traced:
        with tracer.trace():
            function()
    else:
        function()
    return time.perf_counter() - start


def interleaved(function, repeat: int) -> tuple[float, float]:
    """Median seconds (untraced, traced), alternating the two so machine noise hits both."""
    plain, traced = [], []
    for _ in range(repeat):
        plain.append(_timed(function, False))
        traced.append(_timed(function, True))
    return statistics.median(plain), statistics.median(traced)


def memory_per_op(n: int, size: int) -> float:
    """Bytes a finished Trace holds per op (measured with tracemalloc, graph freed)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    with tracer.trace() as recorded:
        chain(n, size)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert recorded.complete
    return (after - before) / n


@contextlib.contextmanager
def stand_in_hooks(keep_values: bool):
    """Wrap ``Function.__call__`` and ``Sin.backward`` like a tracer would, recording (almost) nothing."""
    kept: list = []
    keep = kept.append
    original_call, original_backward = E.Function.__call__, E.Sin.backward

    @functools.wraps(original_call)
    def call(self, *args, **kwargs):
        result = original_call(self, *args, **kwargs)
        if keep_values:
            keep(result.data[()])  # a 0-d value as an immutable scalar: cheaper than a copy
        return result

    @functools.wraps(original_backward)
    def backward(self, *grads, **kwargs):
        result = original_backward(self, *grads, **kwargs)
        if keep_values:
            keep((grads[0][()], result[()]))
        return result

    E.Function.__call__, E.Sin.backward = call, backward
    try:
        yield kept
    finally:
        E.Function.__call__, E.Sin.backward = original_call, original_backward


def interleaved_stand_in(function, keep_values: bool, repeat: int) -> tuple[float, float]:
    """Median seconds (untraced, under the stand-in hooks), alternating like ``interleaved``."""
    plain, hooked = [], []
    for _ in range(repeat):
        plain.append(_timed(function, False))
        with stand_in_hooks(keep_values):
            hooked.append(_timed(function, False))
    return statistics.median(plain), statistics.median(hooked)


def compiled_floor_module():
    """Compile bench/compiled_floor.c (needs a C compiler, Python's headers and numpy's) and import it."""
    source = Path(__file__).with_name("compiled_floor.c")
    built = Path(tempfile.mkdtemp()) / f"compiled_floor{sysconfig.get_config_var('EXT_SUFFIX')}"
    compiler = sysconfig.get_config_var("CC").split()[0] or "cc"
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
                    f"-I{np.get_include()}", str(source), "-o", str(built)], check=True)
    spec = importlib.util.spec_from_file_location("compiled_floor", built)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def compiled_hooks(module):
    """Replace ``Function.__call__`` and ``Sin.backward`` with the compiled recorder's hooks."""
    original_call, original_backward = E.Function.__call__, E.Sin.backward
    E.Function.__call__ = module.hook(original_call, False)
    E.Sin.backward = module.hook(original_backward, True)
    try:
        yield
    finally:
        E.Function.__call__, E.Sin.backward = original_call, original_backward
        module.reset()


def interleaved_compiled(function, repeat: int) -> tuple[float, float]:
    """Median seconds (untraced, under the compiled stand-in), alternating like ``interleaved``."""
    module = compiled_floor_module()
    with compiled_hooks(module):
        chain(3)
        assert module.reset() == (3, 4, 3), "the compiled stand-in did not record the chain"
    plain, hooked = [], []
    for _ in range(repeat):
        plain.append(_timed(function, False))
        with compiled_hooks(module):
            hooked.append(_timed(function, False))
    return statistics.median(plain), statistics.median(hooked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--floor", action="store_true",
                        help="also time the stand-in hooks (what hooking alone costs)")
    parser.add_argument("--compiled", action="store_true",
                        help="also time a stand-in recorder written in C (needs a C compiler)")
    args = parser.parse_args()
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, median of {args.repeat}")
    plain, traced = interleaved(lambda: chain(CHAIN), args.repeat)
    print(f"chain {CHAIN} sin, fwd+bwd: untraced {plain / CHAIN * 1e6:.2f} µs/op, "
          f"traced {traced / CHAIN * 1e6:.2f} µs/op, ratio {traced / plain:.2f}")
    if args.floor:
        for label, keep_values in (("bare hooks", False), ("hooks + copies", True)):
            plain, hooked = interleaved_stand_in(lambda: chain(CHAIN), keep_values, args.repeat)
            print(f"chain {CHAIN} sin, fwd+bwd: untraced {plain / CHAIN * 1e6:.2f} µs/op, "
                  f"{label} {hooked / CHAIN * 1e6:.2f} µs/op, ratio {hooked / plain:.2f}")
    if args.compiled:
        plain, hooked = interleaved_compiled(lambda: chain(CHAIN), args.repeat)
        print(f"chain {CHAIN} sin, fwd+bwd: untraced {plain / CHAIN * 1e6:.2f} µs/op, "
              f"compiled stand-in {hooked / CHAIN * 1e6:.2f} µs/op, ratio {hooked / plain:.2f}")
    plain, traced = interleaved(mlp_step, args.repeat)
    print(f"MLP 784-100-10 step, batch 100: untraced {plain * 1e3:.2f} ms, "
          f"traced {traced * 1e3:.2f} ms, ratio {traced / plain:.2f}")
    for size in (1, 1000):
        print(f"trace memory, {'0-d' if size == 1 else f'{size}-element'} arrays: "
              f"{memory_per_op(2000, size):.0f} bytes/op")


if __name__ == "__main__":
    main()
