"""Engine benchmark: µs per op for chains, a reuse graph, add trees and one MLP step.

Run from the repository root:  python3 bench/engine.py [--full] [--quick] [--chain-op sin]
Every case prints the median over several runs of forward, backward and both, with the
garbage collector on (the normal state) and off (collector disabled around the timed part
only), then the same computation done with bare numpy and no graph (the floor) and the ratio.
On a shared machine the table is measured ``--rounds`` times and, per row, the least disturbed
round (lowest GC-on median) is kept.
``--full`` adds a 1,000,000-op chain run once. Never used as a test.
"""

import argparse
import gc
import os
import resource
import statistics
import sys
import time

# This file is called engine.py: keep its own folder off sys.path so `import engine` finds
# the package at the repository root.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import numpy as np  # noqa: E402

import engine as E  # noqa: E402

_clock = time.perf_counter


# =============================================================================
# Cases: each returns (forward seconds, backward seconds) for one run
# =============================================================================
def _chain(n, op):
    """y = op(y) n times from a 0-d float64 array, then y.backward()."""
    fn = getattr(E, op)
    x = E.Variable(np.array(0.5))
    t0 = _clock()
    y = x
    for _ in range(n):
        y = fn(y)
    t1 = _clock()
    y.backward()
    t2 = _clock()
    return t1 - t0, t2 - t1, (x, y)


def _chain_floor(n, op):
    """The chain with bare numpy: keep the forward values, multiply derivatives backward."""
    f, df = {"sin": (np.sin, np.cos), "tanh": (np.tanh, lambda v: 1 - np.tanh(v) ** 2),
             "neg": (np.negative, lambda v: -1.0), "square": (np.square, lambda v: 2 * v)}[op]
    t0 = _clock()
    y = np.array(0.5)
    xs = []
    for _ in range(n):
        xs.append(y)
        y = f(y)
    t1 = _clock()
    g = np.ones_like(y)
    for v in reversed(xs):
        g = g * df(v)
    t2 = _clock()
    return t1 - t0, t2 - t1, None


def _reuse(n):
    """y = y * x + y, n times (2n ops); x feeds every step."""
    x = E.Variable(np.array(0.001))
    y = E.Variable(np.array(1.0))
    t0 = _clock()
    for _ in range(n):
        y = y * x + y
    t1 = _clock()
    y.backward()
    t2 = _clock()
    return t1 - t0, t2 - t1, (x, y)


def _reuse_floor(n):
    """The reuse graph by hand: keep each y, then accumulate dx and dy backward."""
    t0 = _clock()
    x = np.array(0.001)
    y = np.array(1.0)
    ys = []
    for _ in range(n):
        ys.append(y)
        y = y * x + y
    t1 = _clock()
    gy = np.ones_like(y)
    gx = np.zeros_like(x)
    for v in reversed(ys):
        gx = gx + gy * v   # Mul's gradient for x
        gy = gy + gy * x   # Add passes gy to y directly and through Mul
    t2 = _clock()
    return t1 - t0, t2 - t1, None


def _tree(n):
    """A balanced binary tree of n adds over n + 1 scalar leaves."""
    leaves = [E.Variable(np.array(float(i))) for i in range(n + 1)]
    t0 = _clock()
    level = leaves
    while len(level) > 1:
        nxt = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    t1 = _clock()
    level[0].backward()
    t2 = _clock()
    return t1 - t0, t2 - t1, (leaves, level)


def _tree_floor(n):
    """The add tree with bare numpy: node list forward, gradients pushed to children backward."""
    t0 = _clock()
    values = [np.array(float(i)) for i in range(n + 1)]
    kids = []
    level = list(range(n + 1))
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            a, b = level[i], level[i + 1]
            values.append(values[a] + values[b])
            kids.append((a, b))
            nxt.append(len(values) - 1)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    t1 = _clock()
    grads = [None] * len(values)
    grads[-1] = np.ones_like(values[-1])
    for node in range(len(values) - 1, n, -1):
        g = grads[node]
        for k in kids[node - n - 1]:
            grads[k] = g if grads[k] is None else grads[k] + g
    t2 = _clock()
    return t1 - t0, t2 - t1, None


def _mlp_setup(dtype):
    """Data and parameters of a 784-100-10 MLP, batch 100 (fixed seed).

    float32 is what the book's MNIST MLP uses (its Linear layers and dataset are float32).
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 784)).astype(dtype)
    t = rng.integers(0, 10, 100)
    W1 = E.Parameter((rng.standard_normal((784, 100)) * 0.01).astype(dtype))
    b1 = E.Parameter(np.zeros(100, dtype=dtype))
    W2 = E.Parameter((rng.standard_normal((100, 10)) * 0.01).astype(dtype))
    b2 = E.Parameter(np.zeros(10, dtype=dtype))
    return x, t, (W1, b1, W2, b2)


_MLP = None


def _mlp(_n):
    """linear -> sigmoid -> linear -> softmax_cross_entropy, then backward."""
    x, t, params = _MLP
    W1, b1, W2, b2 = params
    for p in params:
        p.cleargrad()
    t0 = _clock()
    loss = E.softmax_cross_entropy(E.linear(E.sigmoid(E.linear(x, W1, b1)), W2, b2), t)
    t1 = _clock()
    loss.backward()
    t2 = _clock()
    return t1 - t0, t2 - t1, loss


def _mlp_floor(_n):
    """The same step written with numpy (no gradient for the input batch, like the engine)."""
    x, t, params = _MLP
    W1, b1, W2, b2 = (p.data for p in params)
    n = x.shape[0]
    rows = np.arange(n)
    t0 = _clock()
    h = x @ W1
    h += b1
    a = 1 / (1 + np.exp(-h))
    s = a @ W2 + b2
    z = s - s.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -log_p[rows, t].sum() / n  # noqa: F841
    t1 = _clock()
    p = np.exp(log_p)
    p[rows, t] -= 1
    gs = p / n
    gW2, gb2 = a.T @ gs, gs.sum(axis=0)  # noqa: F841
    gh = (gs @ W2.T) * a * (1 - a)
    gW1, gb1 = x.T @ gh, gh.sum(axis=0)  # noqa: F841
    t2 = _clock()
    return t1 - t0, t2 - t1, None


# =============================================================================
# Timing
# =============================================================================
def _once(case, n, gc_off):
    """One run of ``case`` from a collected heap; the graph is freed outside the timing."""
    gc.collect()
    if gc_off:
        gc.disable()
    try:
        f, b, keep = case(n)
    finally:
        gc.enable()
    del keep
    return f, b


def _round(case, floor, n, repeat, scale):
    """One round of a row: ``repeat`` interleaved runs with the GC on, off and the numpy floor
    (so a burst of load from other processes hits all three alike); medians, scaled."""
    runs = {"on": [], "off": [], "floor": []}
    for _ in range(repeat):
        runs["on"].append(_once(case, n, False))
        runs["off"].append(_once(case, n, True))
        runs["floor"].append(_once(floor, n, False))
    return {k: [statistics.median(t) * scale for t in zip(*[(f, b, f + b) for f, b in v])]
            for k, v in runs.items()}


def _cells(label, ops, med):
    """The Markdown row of one measured case."""
    on, off, fl = med["on"], med["off"], med["floor"]
    cells = [label, f"{ops:,}", f"{on[0]:.2f}", f"{on[1]:.2f}", f"{on[2]:.2f}", f"{off[2]:.2f}",
             f"{fl[2]:.2f}", f"{on[2] / fl[2]:.1f}x"]
    return "| " + " | ".join(cells) + " |"


def _mlp_case(dtype, fn):
    """An MLP case bound to parameters of ``dtype``."""
    def run(n):
        global _MLP
        if _MLP is None or _MLP[0].dtype != dtype:
            _MLP = _mlp_setup(dtype)
        return fn(n)
    return run


def main(argv=None):
    """Run the benchmark and print a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also run a 1,000,000-op chain once")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--rounds", type=int, default=3,
                    help="measure the table this many times; per row keep the least disturbed "
                         "round (default 3)")
    ap.add_argument("--chain-op", default="sin", choices=["sin", "tanh", "neg", "square"],
                    help="the scalar op repeated in the chain (default sin; square overflows)")
    args = ap.parse_args(argv)
    r = 3 if args.quick else 1
    op = args.chain_op

    print(f"numpy {np.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average at start {os.getloadavg()[0]:.2f}; medians; chain op: {op} on a 0-d "
          f"float64 array")
    print()
    print("| case | ops | fwd | bwd | fwd+bwd | fwd+bwd, GC off | numpy floor | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = []  # (key, label, ops, case, floor, n, repeat, scale)
    for n, rep in [(1_000, 21), (10_000, 9), (100_000, 5)]:
        rows.append((f"chain {n}", f"chain of `{op}`, µs/op", n, lambda k: _chain(k, op),
                     lambda k: _chain_floor(k, op), n, rep, 1e6 / n))
    rows.append(("reuse", "`y = y*x + y`, N = 1,000, µs/op", 2_000, _reuse, _reuse_floor, 1_000,
                 21, 1e6 / 2_000))
    for n, rep in [(1_000, 21), (10_000, 9), (50_000, 5)]:
        rows.append((f"tree {n}", "balanced add tree, µs/op", n, _tree, _tree_floor, n, rep,
                     1e6 / n))
    for dtype in (np.float32, np.float64):
        rows.append((f"mlp {dtype.__name__}",
                     f"MLP 784-100-10 step, batch 100, {dtype.__name__}, **ms**", 1,
                     _mlp_case(dtype, _mlp), _mlp_case(dtype, _mlp_floor), 1, 41, 1e3))
    # Rounds go over the whole table, so each row's rounds are spread over the run; per row
    # the round with the lowest GC-on median (the least disturbed) is kept. The MLP rows run
    # after all the scalar rows: BLAS worker threads keep spinning for a while after a matrix
    # product and would slow down whatever is measured next.
    results = {}
    for group in (rows[:-2], rows[-2:]):
        for _ in range(args.rounds):
            for key, _label, _ops, case, floor, n, rep, scale in group:
                med = _round(case, floor, n, max(3, rep // r), scale)
                if key not in results or med["on"][2] < results[key]["on"][2]:
                    results[key] = med
    for key, label, ops, *_ in rows:
        print(_cells(label, ops, results[key]))
    print()
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    big, small = results["tree 50000"], results["tree 1000"]
    for mode, key in (("GC on", "on"), ("GC off", "off")):
        print(f"add tree per-op cost, 50k vs 1k ({mode}): backward "
              f"{big[key][1] / small[key][1]:.2f}x, forward+backward "
              f"{big[key][2] / small[key][2]:.2f}x")

    if args.full:
        gc.collect()
        f, b, keep = _chain(1_000_000, op)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = _clock()
        del keep
        gc.collect()
        free = _clock() - t0
        print(f"1,000,000-op chain of `{op}` (once, GC on): forward {f:.2f} s, backward {b:.2f} s "
              f"({(f + b):.2f} µs/op), freed in {free:.2f} s; peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
