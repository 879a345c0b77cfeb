"""Gradient checks: each function's backward against its re-run forward, each leaf against the whole pass."""

from __future__ import annotations

import numpy as np

from .diagnose_common import Settings, call_label, float_eps, make_finding, op_of, prior_grads, var_label
from .diagnose_inplace import InPlace
from .diagnose_replay import ReplayCache, interval_gradient, numeric_mismatch, output_eps

__all__ = ["check_wrong_backward", "check_detached", "check_leaf_gradient", "PER_SIGNATURE"]

PER_SIGNATURE = 50
PER_PASS = 5  # steps of one signature checked in every pass, whatever the passes before used up

_HINT_WRONG = ("the local derivative in {op}.backward is wrong for this input: re-derive it; the "
               "usual slips are a missing factor (2x for x**2), a sign (cos' = -sin), the output "
               "used where the input belongs, or forgetting to multiply by gy")
_HINT_NONE = ("{op}.backward must return one gradient per input: return this input's gradient "
              "(None only for an input the output does not depend on), e.g. `return gy * x1, gy * x0`")
_HINT_LEAF = ("the gradient that reached this leaf is off although the local checks may pass: "
              "look at the other findings of this pass (order, overwrites, wrong backwards)")
_HINT_LEAF_ALONE = ("no single step explains it: an op that could not be re-run, gradients "
                    "accumulated across passes without cleargrad(), or a changed leaf value")


def _as_float64(arrays: list[np.ndarray]) -> list[np.ndarray]:
    return [a.astype(np.float64) if a.dtype.kind == "f" else a.copy() for a in arrays]


def _weighted(outputs, weights) -> tuple[float, float]:
    """(sum of w * y over all outputs, sum of |w * y|) in float64."""
    total = magnitude = 0.0
    for y, w in zip(outputs, weights):
        if w is None:
            continue
        if tuple(y.shape) != w.shape:
            raise ValueError("output shape changed")
        product = np.asarray(y, dtype=np.float64) * w
        total += float(product.sum())
        magnitude += float(np.abs(product).sum())
    return total, magnitude


def _tolerances(settings: Settings, analytic_dtype: str, weight_scale: float):
    eps = float_eps(analytic_dtype)
    rtol = max(settings.tolerance, 100 * eps)
    return rtol, weight_scale * (1e-2 * rtol + 1e3 * eps)


def _step_weights(trace, call, step):
    """The recorded output gradients as float64 weights; None when they cannot be used."""
    weights = []
    for position, out in enumerate(call.outputs):
        grad = step.grads_in[position] if position < len(step.grads_in) else None
        if grad is None:
            weights.append(None)
            continue
        if grad.values is None or grad.has_nonfinite:
            return None
        record = trace.variables.get(out)
        try:
            array = grad.to_array().astype(np.float64)
        except (TypeError, ValueError):
            return None
        if record is None or record.shape is None or tuple(record.shape) != array.shape:
            return None
        weights.append(array)
    return weights if any(w is not None for w in weights) else None


def check_wrong_backward(trace, pass_record, settings: Settings, cache: ReplayCache,
                         in_place: InPlace | None = None) -> list:
    """wrong-backward: each step's returned gradients against a numerical vector-Jacobian product.

    Steps of one op with the same input shapes and dtypes are checked ``PER_SIGNATURE`` times
    in one diagnosis (its passes repeat one graph; a long one repeats a few signatures thousands
    of times), and at least ``PER_PASS`` times in each pass.
    A step whose input a later forward changed in place (``in_place``) is judged at the value its
    backward read.
    """
    findings, flagged, skipped = [], set(), 0
    seen, in_pass = settings.per_signature, {}
    for step in pass_record.steps:
        call = trace.calls.get(step.call)
        if call is None or step.error or not step.grads_out:
            continue
        signature = ("wrong-backward", call.op, tuple((trace.variables[v].shape, trace.variables[v].dtype)
                                                      if v in trace.variables else None for v in call.inputs))
        in_pass[signature] = in_pass.get(signature, 0) + 1
        if seen.get(signature, 0) >= PER_SIGNATURE and in_pass[signature] > PER_PASS:
            skipped += 1
            continue
        replay = cache.get(call.id)
        if replay is None:
            settings.note(f"wrong-backward: {op_of(trace, call.id)} not checked: "
                          f"{cache.reasons.get(call.id, 'cannot be re-run')}")
            continue
        seen[signature] = seen.get(signature, 0) + 1
        wrong = _check_step(trace, call, step, replay, settings, flagged)
        read = in_place.inputs_at_backward(call, replay.inputs) if wrong and in_place else None
        if read is not None:  # judge it at what its backward read
            at_read = _check_step(trace, call, step, replay.with_inputs(read), settings, flagged)
            if len(at_read) < len(wrong):
                in_place.explain(call.id)
            wrong = at_read
        changed_outputs = in_place.changed_outputs(call) if wrong and in_place else []
        for position, numbers in wrong:
            vid = call.inputs[position]
            flagged.add((call.id, vid))
            findings.append(_wrong_finding(trace, pass_record, call, step, position, vid, numbers,
                                           changed_outputs))
    if skipped:
        settings.note(f"wrong-backward: pass {pass_record.id}: {skipped} steps not checked "
                      f"(at most {PER_SIGNATURE} per op and input shapes in one check)")
    return findings


def check_detached(trace, pass_record, settings: Settings, cache: ReplayCache) -> list:
    """wrong-backward in a ``create_graph=True`` pass: a step whose backward built no graph from
    its function's inputs or outputs (it computed with numpy on ``x.data``), though its gradient
    depends on them, so a derivative taken through that gradient loses this function's part."""
    if not pass_record.options.get("create_graph"):
        return []
    inner: dict[int, set] = {}
    for call in trace.calls.values():
        if call.in_step is not None and call.in_step[0] == pass_record.id:
            inner.setdefault(call.in_step[1], set()).update(call.inputs)
    findings, reported, judged = [], set(), set()
    for step in pass_record.steps:
        call = trace.calls.get(step.call)
        if call is None or step.error or call.op in reported:
            continue
        if inner.get(step.index, set()) & (set(call.inputs) | set(call.outputs)):
            continue  # its backward used them through Function calls: a graph back to them
        signature = (call.op, tuple((trace.variables[v].shape, trace.is_constant(v))
                                    if v in trace.variables else None for v in call.inputs))
        if signature in judged:
            continue  # one judgement per op, input shapes and constants: a long graph repeats a few
        depends, tested = _inputs_its_gradient_depends_on(trace, call, step, cache)
        if tested:
            judged.add(signature)
        if depends:
            reported.add(call.op)
            op = op_of(trace, call.id)
            names = ", ".join(var_label(trace, call.inputs[i]) for i in depends)
            findings.append(make_finding(
                "wrong-backward",
                f"{op}.backward ran under create_graph=True without Function calls on its inputs or "
                f"outputs, though the gradient it returns for {names} changes with their values: it "
                f"has no graph back to them, so a higher derivative through {op} is lost (None or wrong)",
                pass_id=pass_record.id, call=call.id, variable=call.inputs[depends[0]], step=step.index,
                hint=(f"compute {op}.backward with the engine's functions on the Variables "
                      f"({_on_variables(op)}), not with numpy on x.data, so that create_graph can follow it")))
    return findings


# Backward formulas on Variables (x = self.inputs[0], y = self.outputs[0]()), for the hint above
_ON_VARIABLES = {
    "sin": "cos(x) * gy", "cos": "-sin(x) * gy", "tanh": "gy * (1 - y * y)", "exp": "gy * y",
    "log": "gy / x", "square": "2 * x * gy", "pow": "c * x ** (c - 1) * gy",
    "mul": "gy * x1, gy * x0", "div": "gy / x1, gy * (-x0 / x1 ** 2)", "sigmoid": "gy * y * (1 - y)",
}


def _on_variables(op: str) -> str:
    formula = _ON_VARIABLES.get(op.lower())
    return f"for {op}: {formula}" if formula else "for Sin it would be cos(x) * gy"


def _inputs_its_gradient_depends_on(trace, call, step, cache: ReplayCache) -> tuple[list[int], bool]:
    """Positions of the (non-constant, float) inputs whose vector-Jacobian product changes
    smoothly with the inputs: the same way a little below and a little above the recorded
    values. Near a kink (ReLU's mask, clip's bounds) the one-sided derivatives disagree and
    nothing is judged: there the second derivative is zero or undefined, and nothing is lost.
    Also returns whether anything was tested (a smooth, non-zero product somewhere)."""
    replay = cache.get(call.id)
    weights = _step_weights(trace, call, step) if replay is not None else None
    if weights is None:
        return [], False
    arrays = _as_float64(replay.inputs)
    free = [i for i, a in enumerate(arrays) if a.dtype.kind == "f" and a.size <= 64
            and not trace.is_constant(call.inputs[i])]

    def phi(xs):
        return _weighted(replay.run(xs), weights)[0]

    def vjps(xs):
        """Per free input: (central VJP, whether it is smooth there: both one-sided ones agree)."""
        out = []
        for i in free:
            lower, upper, central = interval_gradient(phi, xs, i, 1e-5)
            scale = 1e-6 * max(1.0, float(np.abs(central).max(initial=0.0)))
            out.append((central, bool(np.all(np.isfinite(central))
                                      and np.allclose(lower, upper, rtol=1e-3, atol=scale))))
        return out

    def moved(sign):
        return [np.array(a + sign * 1e-2 * (1.0 + np.abs(a)), dtype=np.float64) if i in free else a
                for i, a in enumerate(arrays)]  # arrays: a 0-d sum is a numpy scalar

    try:
        with np.errstate(all="ignore"):
            below, here, above = vjps(moved(-1)), vjps(arrays), vjps(moved(1))
    except Exception:  # noqa: BLE001 - user code: what cannot be re-run is not judged
        return [], False
    depends, tested = [], False
    for i, (low, low_ok), (mid, mid_ok), (high, high_ok) in zip(free, below, here, above):
        if not (low_ok and mid_ok and high_ok):
            continue
        tested = tested or bool(np.any(mid != 0))
        tolerance = 1e-5 * max(1.0, float(np.abs(mid).max(initial=0.0)))
        rise, fall = high - mid, mid - low
        # a slope, or a smooth peak (cos at 0: both sides change alike); a kink changes one side only
        alike = (np.sign(rise) == np.sign(fall)) | \
            ((np.abs(rise) <= 2 * np.abs(fall)) & (np.abs(fall) <= 2 * np.abs(rise)))
        steady = (np.abs(rise) > tolerance) & (np.abs(fall) > tolerance) & alike
        if np.any(steady):
            depends.append(i)
    return depends, tested


def _check_step(trace, call, step, replay, settings: Settings, flagged) -> list:
    """[(input position, mismatch numbers)] for the inputs whose gradient disagrees."""
    weights = _step_weights(trace, call, step)
    if weights is None:
        return []
    arrays = _as_float64(replay.inputs)
    grads = step.grads_out

    def returned_none(i):
        """The backward returned None (no gradient) for a float input that is not a constant."""
        return grads[i] is None and call.inputs[i] in trace.variables and not trace.is_constant(call.inputs[i])

    checked = [i for i, a in enumerate(arrays)
               if a.dtype.kind == "f" and i < len(grads)
               and (returned_none(i) or (grads[i] is not None and grads[i].values is not None
                                         and tuple(grads[i].shape) == a.shape))
               and (call.id, call.inputs[i]) not in flagged]
    if 2 * sum(arrays[i].size for i in checked) > settings.budget:
        settings.note(f"wrong-backward: {op_of(trace, call.id)} not checked: its inputs need more "
                      f"forward re-runs than the budget of {settings.budget}")
        return []
    try:
        base = replay.run(arrays)
        _, magnitude = _weighted(base, weights)
    except Exception:  # noqa: BLE001 - user code: skip what cannot be re-run in float64
        return []
    eps = output_eps(base)
    weight_scale = max(float(np.abs(w).max(initial=0.0)) for w in weights if w is not None)

    def phi(xs):
        return _weighted(replay.run(xs), weights)[0]

    found = []
    for i in checked:
        if grads[i] is None:
            dtype, analytic = str(replay.inputs[i].dtype), np.zeros(arrays[i].shape)
        else:
            dtype, analytic = grads[i].dtype, grads[i].to_array()
        rtol, atol = _tolerances(settings, dtype, weight_scale)
        try:
            mismatch = numeric_mismatch(phi, arrays, i, analytic, eps, magnitude, rtol, atol)
        except Exception:  # noqa: BLE001 - user code
            return found
        if mismatch is not None:
            found.append((i, {**mismatch, "returned_none": grads[i] is None}))
    return found


def _wrong_finding(trace, pass_record, call, step, position, vid, numbers, changed_outputs=()):
    op = op_of(trace, call.id)
    numbers = dict(numbers)
    where = f"inputs[{position}], {var_label(trace, vid)}"  # as in the engine code and the picture
    if numbers.pop("returned_none"):
        message = (f"{op}.backward returned None (no gradient) for {where}, but {op}.forward "
                   f"depends on it: a numerical derivative gives {numbers['numerical']:.6g}")
        hint = _HINT_NONE.format(op=op)
    else:
        at = f" at index {tuple(numbers['index'])}" if numbers["index"] else ""
        message = (f"{op}.backward gives a wrong gradient for {where}: {numbers['analytic']:.6g}{at} "
                   f"where a numerical derivative of {op}.forward gives {numbers['numerical']:.6g} "
                   f"(relative error {numbers['relative_error']:.3g})")
        hint = _HINT_WRONG.format(op=op)
    for change in changed_outputs:
        hint = (f"{var_label(trace, change.variable)}, an output of {op}, was changed in place by "
                f"{op_of(trace, change.call)}.forward (see changed-input): if {op}.backward reads its "
                f"output, that explains it; else " + hint)
    return make_finding("wrong-backward", message, pass_id=pass_record.id, call=call.id, variable=vid,
                        step=step.index, hint=hint, numbers={"input": position, **numbers})


# ----- leaf gradients ------------------------------------------------------------------------

def _pass_plan(trace, pass_record, settings: Settings, cache: ReplayCache):
    """(forward-ordered calls, leaf ids, leaf arrays) when the pass can be re-run, else None."""
    calls = sorted(pass_record.calls)
    for call_id in calls:
        if cache.get(call_id) is None:
            settings.note(f"leaf-gradient: pass {pass_record.id} not checked: "
                          f"{call_label(trace, call_id)} cannot be re-run "
                          f"({cache.reasons.get(call_id, 'unknown reason')})")
            return None
    produced = {v for c in calls for v in trace.calls[c].outputs}
    leaves = sorted({v for c in calls for v in trace.calls[c].inputs} - produced)
    values = {}
    for vid in leaves:
        snap = trace.value(vid, pass_record)
        if snap is None or snap.values is None:
            settings.note(f"leaf-gradient: pass {pass_record.id} not checked: the value of "
                          f"{var_label(trace, vid)} was too large to record whole")
            return None
        array = snap.to_array()
        values[vid] = array.astype(np.float64) if array.dtype.kind == "f" else array
    return calls, leaves, values


def _consumers(trace, calls) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for call_id in calls:
        for vid in set(trace.calls[call_id].inputs):
            found.setdefault(vid, []).append(call_id)
    return found


def _downstream(trace, consumers, leaf) -> list[int]:
    """The calls that depend on ``leaf``, in forward order."""
    found, todo = set(), [leaf]
    while todo:
        for call_id in consumers.get(todo.pop(), ()):
            if call_id not in found:
                found.add(call_id)
                todo.extend(trace.calls[call_id].outputs)
    return sorted(found)


def _forward(trace, cache, calls, values) -> None:
    for call_id in calls:
        call = trace.calls[call_id]
        outputs = cache.get(call_id).run([values[v] for v in call.inputs])
        if len(outputs) != len(call.outputs):
            raise ValueError("output count changed")
        values.update(zip(call.outputs, outputs))


def check_leaf_gradient(trace, pass_record, settings: Settings, cache: ReplayCache,
                        related: list) -> list:
    """leaf-gradient: each leaf's final gradient against central differences of the whole pass."""
    root = pass_record.root
    if pass_record.error is not None or not pass_record.calls or root is None:
        return []
    creator = trace.variables[root].creator if root in trace.variables else None
    if not pass_record.steps and creator in trace.unlinked_calls:  # under no_grad: missing-step says why
        return []
    plan = _pass_plan(trace, pass_record, settings, cache)
    if plan is None:
        return []
    calls, leaves, leaf_values = plan
    if root not in {v for c in calls for v in trace.calls[c].outputs}:
        return []
    seed_snap = pass_record.root_grad
    base = dict(leaf_values)
    try:
        _forward(trace, cache, calls, base)
        seed = (np.ones(base[root].shape) if seed_snap is None
                else seed_snap.to_array().astype(np.float64) if seed_snap.values is not None else None)
        if seed is None or seed.shape != base[root].shape or not np.isfinite(seed).all():
            return []
    except Exception:  # noqa: BLE001 - user code
        return []
    float_leaves = [v for v in leaves if base[v].dtype.kind == "f"]
    consumers, chains, cost = _consumers(trace, calls), {}, 0
    for vid in float_leaves:
        chains[vid] = _downstream(trace, consumers, vid)
        cost += 2 * base[vid].size * len(chains[vid])
        if settings.spent + cost > settings.budget:
            settings.note(f"leaf-gradient: pass {pass_record.id} not checked: it needs more "
                          f"forward re-runs than are left of the budget of {settings.budget}")
            return []
    settings.spent += cost
    eps = output_eps([base[root]])
    priors = prior_grads(trace, pass_record) or {}
    findings = []
    for vid in float_leaves:
        finding = _check_leaf(trace, pass_record, cache, settings, chains[vid], base, root, seed,
                              eps, priors, vid)
        if finding is not None:
            findings.append(finding)
    if findings and related:
        places: dict[str, set[str]] = {}
        for f in related:
            if f.variable is not None and trace.is_constant(f.variable):
                continue  # a constant's gradient reaches no leaf
            if f.call is not None or f.variable is not None:
                places.setdefault(f.kind, set()).add(call_label(trace, f.call) if f.call is not None
                                                     else var_label(trace, f.variable))
        causes = "; ".join(f"{kind} at {', '.join(sorted(where))}" for kind, where in sorted(places.items()))
        hint = f"probably caused by: {causes}" if causes else _HINT_LEAF
        findings = [make_finding(f.kind, f.message, pass_id=f.pass_id, variable=f.variable,
                                 severity=f.severity, hint=hint, numbers=f.numbers)
                    for f in findings]
    return findings


def _check_leaf(trace, pass_record, cache, settings, chain, base, root, seed, eps, priors, vid):
    if trace.is_constant(vid):
        return None  # a number: its gradient, if any, is never used
    final = pass_record.grads.get(vid)
    prior = priors.get(vid)
    shape = base[vid].shape
    if final is None:
        if trace.contributions(pass_record, vid) and trace.grad_state(pass_record, vid) in ("cleared", "not-stored"):
            return None
        analytic = np.zeros(shape)
    elif final.values is None or tuple(final.shape) != shape or final.has_nonfinite:
        return None
    else:
        analytic = final.to_array().astype(np.float64)
    whole = analytic
    if prior is not None:
        if prior.values is None or tuple(prior.shape) != shape:
            return None
        analytic = analytic - prior.to_array().astype(np.float64)

    def phi(xs):
        values = dict(base)
        values[vid] = xs[0]
        _forward(trace, cache, chain, values)
        return float((np.asarray(values[root], dtype=np.float64) * seed).sum())

    eps_a = float_eps(final.dtype if final is not None else "float64")
    rtol = max(settings.tolerance, 1e4 * eps_a)
    atol = float(np.abs(seed).max(initial=0.0)) * (1e-2 * rtol + 1e3 * eps_a)
    magnitude = float(np.abs(np.asarray(base[root], dtype=np.float64) * seed).sum())
    try:
        mismatch = numeric_mismatch(phi, [base[vid].copy()], 0, analytic, eps, magnitude, rtol, atol)
        if mismatch is not None and prior is not None and \
                numeric_mismatch(phi, [base[vid].copy()], 0, whole, eps, magnitude, rtol, atol) is None:
            return None  # the engine replaced the old .grad by this pass's gradient: it is right
    except Exception:  # noqa: BLE001 - user code
        return None
    if mismatch is None:
        return None
    at = f" at index {tuple(mismatch['index'])}" if mismatch["index"] else ""
    got = "is None" if final is None else f"is {mismatch['analytic']:.6g}{at}"
    return make_finding(
        "leaf-gradient",
        f"the gradient of {var_label(trace, vid)} {got} but a numerical derivative of the whole pass "
        f"gives {mismatch['numerical']:.6g} (relative error {mismatch['relative_error']:.3g})",
        pass_id=pass_record.id, variable=vid, hint=_HINT_LEAF_ALONE, numbers=mismatch)
