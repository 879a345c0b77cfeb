"""Hand-built Traces for picture tests: the seed and generation examples, hostile names, big graphs."""

from __future__ import annotations

import math

import numpy as np

from tracer.records import CallRecord, ErrorRecord, Finding, PassRecord, StepRecord, VariableRecord
from tracer.snapshot import capture, freeze
from tracer.trace import Trace

__all__ = ["TraceBuilder", "snap", "seed_trace", "generation_trace", "chain_trace",
           "hostile_trace", "problem_trace", "tree_trace"]

HOSTILE_NAMES = ['<b>&amp;"q"</b>', "back\\slash {braces}", "two\nlines", "이름 한국어", "x]; evil [",
                 "-> \\N \\G", ""]


def snap(value, max_elements: int = 100):
    """An ArraySnapshot of ``value`` as the tracer records it."""
    return freeze(capture(np.asarray(value, dtype=float) if not isinstance(value, np.ndarray)
                          else value, max_elements))


class TraceBuilder:
    """Append variables, calls and one backward pass to a Trace, ids counting from 1."""

    def __init__(self) -> None:
        self.trace = Trace()
        self.trace.max_elements = 100

    def var(self, value, name=None, creator=None) -> int:
        """A new variable; returns its id."""
        vid = len(self.trace.variables) + 1
        data = snap(value)
        self.trace.variables[vid] = VariableRecord(
            vid, name, "script" if name else None, "Variable", data.shape, data.dtype, data, creator)
        return vid

    def call(self, op, inputs, value, name=None, in_step=None) -> int:
        """A call of ``op`` on ``inputs`` making one output with ``value``; returns the output id."""
        cid = len(self.trace.calls) + 1
        out = self.var(value, name, creator=cid)
        leaf_values = tuple(self.trace.variables[v].value if self.trace.variables[v].creator is None
                            else None for v in inputs)
        self.trace.calls[cid] = CallRecord(cid, op, tuple(inputs), (out,), cid, None, in_step,
                                           leaf_values)
        return out

    def backward(self, root, steps, grads, options=None, root_grad=1.0, error=None) -> PassRecord:
        """Add a pass: ``steps`` are (call id, grads_in, grads_out[, accumulated]) in run order."""
        records = []
        for index, item in enumerate(steps, start=1):
            call, grads_in, grads_out = item[:3]
            accumulated = item[3] if len(item) > 3 else grads_out
            records.append(StepRecord(index, call, tuple(snap(g) for g in grads_in),
                                      tuple(None if g is None else snap(g) for g in grads_out),
                                      tuple(None if g is None else snap(g) for g in accumulated)))
        calls = tuple(sorted(self.trace.calls))
        calls = tuple(c for c in calls if self.trace.calls[c].in_step is None)
        variables = sorted({v for c in calls for v in self.trace.calls[c].inputs
                            + self.trace.calls[c].outputs})
        record = PassRecord(len(self.trace.passes) + 1, "backward", root, dict(options or {}),
                            calls, tuple(variables), tuple(records),
                            {v: (None if g is None else snap(g)) for v, g in grads.items()},
                            {}, snap(root_grad), error)
        self.trace.passes += (record,)
        self.trace.pass_count += 1
        return record

    def done(self) -> Trace:
        """The finished Trace."""
        self.trace.complete = True
        return self.trace


def seed_trace(retain: bool = False) -> Trace:
    """x = 0.5 → Square → a → Exp → b → Square → y; backward steps Square(3), Exp(2), Square(1)."""
    t = TraceBuilder()
    x = t.var(0.5, "x")
    a = t.call("Square", [x], 0.25, "a")
    b = t.call("Exp", [a], math.exp(0.25), "b")
    y = t.call("Square", [b], math.exp(0.5), "y")
    gb = 2 * math.exp(0.25)
    ga = math.exp(0.25) * gb
    gx = 2 * 0.5 * ga
    t.backward(y, [(3, [1.0], [gb]), (2, [gb], [ga]), (1, [ga], [gx])],
               {x: gx, a: ga if retain else None, b: gb if retain else None,
                y: 1.0 if retain else None}, {"retain_grad": True} if retain else {})
    return t.done()


def generation_trace() -> Trace:
    """a = square(x); y = add(square(a), square(a)) at x = 2: x.grad = 64, a gets two gradients."""
    t = TraceBuilder()
    x = t.var(2.0, "x")
    a = t.call("Square", [x], 4.0, "a")
    b = t.call("Square", [a], 16.0)
    c = t.call("Square", [a], 16.0)
    y = t.call("Add", [b, c], 32.0, "y")
    t.backward(y, [(4, [1.0], [1.0, 1.0]), (2, [1.0], [8.0], [8.0]), (3, [1.0], [8.0], [16.0]),
                   (1, [16.0], [64.0])],
               {x: 64.0, a: None, b: None, c: None, y: None})
    return t.done()


def chain_trace(n: int, ops=("Sin", "Exp", "Square")) -> Trace:
    """A chain of ``n`` scalar calls with a full backward pass (n steps)."""
    t = TraceBuilder()
    v = t.var(0.1, "x")
    first = v
    for i in range(n):
        v = t.call(ops[i % len(ops)], [v], 0.1 + i * 1e-3)
    t.backward(v, [(n - i, [1.0], [0.5 + i * 1e-3]) for i in range(n)],
               {first: 0.5, **{u: None for u in range(2, n + 2)}})
    return t.done()


def tree_trace(leaves: int) -> Trace:
    """A balanced tree of Add calls over ``leaves`` leaves (about 2·leaves nodes per kind)."""
    t = TraceBuilder()
    level = [t.var(float(i), f"w{i}") for i in range(leaves)]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            nxt.append(t.call("Add", [level[i], level[i + 1]], 1.0))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    calls = sorted(t.trace.calls, reverse=True)
    t.backward(level[0], [(c, [1.0], [1.0, 1.0]) for c in calls],
               {v: 1.0 for v in t.trace.variables})
    return t.done()


def hostile_trace() -> Trace:
    """Names and an op name with markup, quotes, backslashes, braces, newlines and Korean."""
    t = TraceBuilder()
    vs = [t.var(float(i), name) for i, name in enumerate(HOSTILE_NAMES)]
    out = t.call('Op<"&>', vs[:2], 1.0, "출력 y")
    out2 = t.call("Add", [out, vs[2]], 3.0, "}{")
    rest = t.call("Mul", vs[3:], 0.0, "a\\\"b")
    top = t.call("Add", [out2, rest], 3.0, "손실")
    t.backward(top, [(4, [1.0], [1.0, 1.0]), (3, [1.0], [0.0] * len(vs[3:])),
                     (2, [1.0], [1.0, 1.0]), (1, [1.0], [1.0, 1.0])],
               {v: 1.0 for v in t.trace.variables})
    return t.done()


def problem_trace() -> Trace:
    """NaN / Inf values, a zero gradient, a not-computed input, a failing step and findings."""
    t = TraceBuilder()
    x = t.var(np.array([0.0, -1.0, 2.0]), "x")
    w = t.var(np.arange(200.0).reshape(10, 20), "w")
    k = t.var(3.0, "k")
    a = t.call("Log", [x], np.array([-np.inf, np.nan, 0.693]), "a")
    b = t.call("Sum", [a], np.nan, "b")
    c = t.call("MatMul", [w, k], np.arange(200.0).reshape(10, 20), "c")
    y = t.call("Add", [b, c], np.nan, "y")
    error = ErrorRecord("ValueError", "shapes (10,20) and () not aligned", step=2)
    t.backward(y, [(4, [1.0], [1.0, np.ones((10, 20))]),
                   (3, [np.ones((10, 20))], [np.zeros((10, 20)), None]),
                   (2, [1.0], [np.ones(3)]),
                   (1, [np.ones(3)], [np.array([np.inf, -1.0, 0.5])])],
               {x: np.array([np.inf, -1.0, 0.5]), w: np.zeros((10, 20)), k: None, a: None,
                b: None, c: None, y: None}, error=error)
    tr = t.done()
    tr.findings = (Finding("nan-inf", "Log produced -inf and nan", 1, call=1, variable=a),
                   Finding("missing-step", "no gradient reached k", 1, variable=k,
                           severity="warning", hint="does MatMul.backward return two values?"))
    return tr
