"""Accumulation lint: gradients overwritten instead of added, aliased, kept one of several, lost before use."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .diagnose_common import (Settings, amount, call_label, grads_written_after_steps, make_finding,
                              op_of, prior_grads, total_amount, var_label, zero_amount)
from .labels import format_array

__all__ = ["check_overwritten", "received_other_than_left"]

_HINT_OVERWRITTEN = ("the engine replaced the gradient instead of adding to it: write "
                     "`x.grad = gx if x.grad is None else x.grad + gx`")
_HINT_ALIASED = ("the .grad is the very array of another gradient (x.grad = gx keeps gx itself), so an "
                 "in-place `x.grad += gx` changed both: write `x.grad = x.grad + gx` (a new array), "
                 "as in the book's step 14; a backward that changes its gy in place (`gy[mask] = 0`) "
                 "does the same: compute a new array (`gy * mask`)")
_HINT_KEPT_ONE = ("the engine kept only one of the gradients that reached this variable: add each one to "
                  "what it has collected so far (`grads[x] = grads[x] + gx if x in grads else gx`)")
_HINT_LOST = ("the engine cleared this gradient before the function that made the variable had used "
              "it: with retain_grad=False clear the outputs' gradients after a function's backward "
              "(`y().grad = None for y in f.outputs`), not its inputs'")
_HINT_RETAINED = ("retain_grad=True asks to keep every gradient: clear the outputs' .grad after a "
                  "function's backward only when it is False (`if not retain_grad:`)")
_HINT_ROOT_PASSED = ("the backward loop gave this function the root's gradient (or ones) instead of its "
                     "outputs' own: pass each function the .grad of its outputs ([output.grad for output "
                     "in f.outputs], the book's gys)")
_HINT_PRIOR_REPLACED = ("if the two passes' gradients were meant to add up (two losses, or mini-batches), "
                        "add them: x.grad = gx if x.grad is None else x.grad + gx; if each pass starts "
                        "afresh, clear it first (cleargrad), and this goes")


def received_other_than_left(trace, pass_record, tolerance: float = 1e-6) -> list:
    """Steps that received, for an output, something else than that output's ``.grad`` as the
    steps before had left it.

    In a manual pass that is ``A.backward(b.grad)`` where ``a.grad`` was meant (the book's step
    6): wrong-gradient-passed. In an automatic pass only with evidence of one array: what arrived
    is what another variable's ``.grad`` holds now, and that one once held this one's value too
    (changed in place by ``x.grad += gx``, step 14: overwritten-gradient). Other differences in
    an automatic pass are not judged: an engine may pass gradients in ways the record cannot
    see. Outputs whose ``.grad`` could not be read after a step are not judged from there on."""
    manual = pass_record.kind == "manual"
    history: dict[int, list] = {}  # variable -> [(step that left its .grad, that .grad as an Amount)]
    if pass_record.root is not None and amount(pass_record.root_grad) is not None:
        history[pass_record.root] = [(0, amount(pass_record.root_grad))]
    findings = []
    for step in pass_record.steps:
        call = trace.calls.get(step.call)
        if call is None:
            continue
        for position, out in enumerate(call.outputs):
            if not history.get(out) or position >= len(step.grads_in):
                continue
            left_by, expected = history[out][-1]
            have = amount(step.grads_in[position])
            if have is None or expected.matches(have, tolerance) is not False:
                continue
            if manual:
                findings.append(_passed_finding(trace, pass_record, call, step, out, have, expected, left_by))
                continue
            holders = [v for v, lefts in history.items()
                       if v != out and lefts and lefts[-1][1].matches(have, tolerance) is True]
            # held the same value as this .grad once, and the same again now: one array
            shared = [v for v in holders if any(value.matches(expected, tolerance) is True
                                                for _, value in history[v])]
            if shared:
                findings.append(make_finding(
                    "overwritten-gradient",
                    f"the .grad of {var_label(trace, out)} changed from {_short_text(expected)} to "
                    f"{_short_text(have)} after step {left_by} though no gradient arrived for it: it is "
                    f"the same array as the .grad of {var_label(trace, shared[0])}, changed in place",
                    pass_id=pass_record.id, call=call.id, variable=out, step=step.index,
                    hint=_HINT_ALIASED))
            elif pass_record.root in holders:  # f.backward(self.grad): the root's, for every function
                findings.append(replace(
                    _passed_finding(trace, pass_record, call, step, out, have, expected, left_by),
                    message=_passed_finding(trace, pass_record, call, step, out, have, expected,
                                            left_by).message + f", and {_short_text(have)} is what "
                    f"{var_label(trace, pass_record.root)}, the root, holds",
                    hint=_HINT_ROOT_PASSED))
        for position, vid in enumerate(call.inputs):
            left = amount(step.accumulated[position]) if position < len(step.accumulated) else None
            if left is not None:
                history.setdefault(vid, []).append((step.index, left))
            else:  # not readable after this step (cleared before it was read): unknown from here on
                history.pop(vid, None)
    return findings


def _passed_finding(trace, pass_record, call, step, out, have, expected, left_by):
    name = trace.name_of(out)
    return make_finding(
        "wrong-gradient-passed",
        f"{call_label(trace, call.id)}'s backward received {_short_text(have)} for its output "
        f"{var_label(trace, out)} at step {step.index}, but {name or 'its'}.grad was "
        f"{_short_text(expected)} (left by step {left_by})",
        pass_id=pass_record.id, call=call.id, variable=out, step=step.index,
        hint=(f"pass the output's own gradient: {op_of(trace, call.id)}.backward({name or 'y'}.grad) "
              f"(manual backprop: check which .grad goes to which backward)"))


def _arrivals(trace, pass_record) -> tuple[dict, dict]:
    """Per variable: [(step index, gradient Amounts, accumulated snapshot)]; per variable: creator steps."""
    per_var: dict[int, list] = {}
    creator_runs: dict[int, list[int]] = {}
    for step in pass_record.steps:
        call = trace.calls.get(step.call)
        if call is None or step.error:
            continue
        for out in call.outputs:
            creator_runs.setdefault(out, []).append(step.index)
        here: dict[int, list] = {}
        for position, vid in enumerate(call.inputs):
            grad = step.grads_out[position] if position < len(step.grads_out) else None
            acc = step.accumulated[position] if position < len(step.accumulated) else None
            entry = here.setdefault(vid, [[], acc, False])
            if grad is not None:
                part = amount(grad)
                entry[0].append(part)
                entry[2] = entry[2] or part is None
            if entry[1] is None:
                entry[1] = acc
        for vid, (parts, acc, unknown) in here.items():
            if parts:
                per_var.setdefault(vid, []).append((step.index, None if unknown else parts, acc))
    return per_var, creator_runs


def check_overwritten(trace, pass_record, settings: Settings) -> list:
    """overwritten-gradient: a ``.grad`` that is not the sum of the gradients it received."""
    priors = prior_grads(trace, pass_record)
    per_var, creator_runs = _arrivals(trace, pass_record)
    if grads_written_after_steps(trace, pass_record):
        findings = _final_sums(trace, pass_record, per_var, priors, settings)
        findings += _root_changed(trace, pass_record, per_var, settings)
        flagged = {f.variable for f in findings}
        lost = _lost_before_use(trace, pass_record, per_var)
        return findings + [f for f in lost if f.variable not in flagged]
    findings = []
    for vid, arrivals in sorted(per_var.items()):
        record = trace.variables.get(vid)
        if vid == pass_record.root or record is None or record.shape is None:
            continue
        shape = tuple(record.shape)
        base = None if priors is None else (amount(priors[vid]) if vid in priors else zero_amount(shape))
        previous = 0
        finding = None
        for index, parts, acc in arrivals:
            now = amount(acc)
            try:
                received = total_amount(parts) if parts else None
            except ValueError:
                received = None
            if now is None or received is None or base is None:
                base, previous = now, index
                continue
            restarted = any(previous < s < index for s in creator_runs.get(vid, ()))
            try:
                expected = base + received
            except ValueError:
                base, previous = now, index
                continue
            ok = expected.matches(now, settings.tolerance)
            if ok is False and (restarted or index == arrivals[0][0]) \
                    and received.matches(now, settings.tolerance) is True:
                # it holds what arrived alone: a new run of its creator, or the pass's first
                # arrival replacing a .grad left by the pass before. For a leaf updated since, that
                # is the book's step 9 engine (no adding up, no cleargrad) in a gradient-descent
                # loop starting afresh each pass; for one unchanged, two losses' gradients meant
                # to add up: said as a warning below
                if not restarted and not _moved(trace, pass_record, vid):
                    finding = "prior"
                    break
                ok = True
            if ok is False:
                # Replaced: it holds what arrived (or its last part) alone. Otherwise it changed by
                # something else than what arrived: an in-place update through a shared array.
                replaced = received.matches(now, settings.tolerance) or \
                    parts[-1].matches(now, settings.tolerance)
                finding = (index, now, expected, not replaced)
                break
            base, previous = now, index
        if finding is None:
            final = amount(pass_record.grads.get(vid))
            if final is not None and base is not None and base.matches(final, settings.tolerance) is False:
                finding = (None, final, base, True)  # changed after its last step: no step wrote it
        if finding == "prior":
            findings.append(make_finding(
                "overwritten-gradient",
                f"the .grad of {var_label(trace, vid)} that an earlier pass left ({base.describe()}) was "
                f"replaced by this pass's gradient, not added to (its value did not change between the "
                f"passes)",
                pass_id=pass_record.id, variable=vid, severity="warning", hint=_HINT_PRIOR_REPLACED))
        elif finding is not None:
            findings.append(_overwritten_finding(trace, pass_record, vid, *finding))
    findings += _root_changed(trace, pass_record, per_var, settings)
    findings += _root_not_as_made(trace, pass_record)
    flagged = {f.variable for f in findings}
    findings += [f for f in _lost_before_use(trace, pass_record, per_var) if f.variable not in flagged]
    if pass_record.kind != "manual":  # a .grad shared with another and changed in place
        flagged = {f.variable for f in findings}
        findings += [f for f in received_other_than_left(trace, pass_record)
                     if f.variable not in flagged and f.kind == "overwritten-gradient"]
    findings += _cleared_though_retained(trace, pass_record, {f.variable for f in findings})
    return findings


def _cleared_though_retained(trace, pass_record, flagged: set) -> list:
    """A pass called with ``retain_grad=True`` whose engine still dropped gradients after use
    (the test inverted, ``if retain_grad:``): one warning naming them."""
    if pass_record.options.get("retain_grad") is not True:
        return []
    cleared = [v for v in pass_record.variables
               if v not in flagged and trace.grad_state(pass_record, v) == "cleared"]
    if not cleared:
        return []
    cleared.sort(key=lambda v: v == pass_record.root)  # an intermediate first: the root is the seed
    labels = [var_label(trace, v) for v in cleared[:3]]
    if len(cleared) > 3:
        labels.append(f"{len(cleared) - 3} more")
    shown = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
    return [make_finding(
        "overwritten-gradient",
        f"backward was called with retain_grad=True, but the engine cleared the .grad of {shown} "
        f"after use (None at the end of the pass)",
        pass_id=pass_record.id, variable=cleared[0], severity="warning", hint=_HINT_RETAINED)]


def _root_not_as_made(trace, pass_record) -> list:
    """A pass whose root no longer held what its function made when the pass began: changed in
    place since (``x.grad.data += gx.data`` on the gradient a create_graph pass made), so the
    graph behind it does not compute it and the derivatives through it are wrong."""
    now = getattr(trace, "roots_changed", {}).get(pass_record.id)
    record = trace.variables.get(pass_record.root) if pass_record.root is not None else None
    if now is None or record is None or record.creator not in trace.calls:
        return []
    made = call_label(trace, record.creator)
    return [make_finding(
        "overwritten-gradient",
        f"the root {var_label(trace, pass_record.root)} held {format_array(now, 6)} when this pass began, "
        f"but {made} made {format_array(record.value, 6)}: it was changed in place after it was made, so "
        f"the graph behind it does not compute it, and the gradients this pass takes through it are wrong",
        pass_id=pass_record.id, call=record.creator, variable=pass_record.root,
        hint=("add gradients up with new Variables (x.grad = x.grad + gx), not in place (x.grad.data += "
              "gx.data, or +=): under create_graph the .grad is a Variable the gradient graph made"))]


def _moved(trace, pass_record, vid) -> bool:
    """Whether the variable's value changed since the kept pass before this one (True when that
    pass is not kept: nothing says the .grad it replaced was meant to be added to)."""
    earlier = [p for p in trace.passes if p.id < pass_record.id]
    if not earlier:
        return True
    before, now = trace.value(vid, earlier[-1]), trace.value(vid, pass_record)
    return earlier[-1].id != pass_record.id - 1 or before is None or now is None or before != now


def _final_sums(trace, pass_record, per_var, priors, settings: Settings) -> list:
    """overwritten-gradient where ``.grad`` is written only after the steps: each variable's final
    ``.grad`` must be the sum of what it received (or that added to the ``.grad`` it began with)."""
    findings = []
    for vid, arrivals in sorted(per_var.items()):
        record = trace.variables.get(vid)
        final = amount(pass_record.grads.get(vid))
        if vid == pass_record.root or record is None or final is None or \
                any(parts is None for _, parts, _ in arrivals):
            continue
        parts = [part for _, step_parts, _ in arrivals for part in step_parts]
        try:
            received = total_amount(parts)
            if received.matches(final, settings.tolerance) is not False:
                continue
            before = amount((priors or {}).get(vid))
            if before is not None and (before + received).matches(final, settings.tolerance) is not False:
                continue
        except ValueError:
            continue
        numbers = _numbers(final, received)
        kept = next((part for part in parts if part.matches(final, settings.tolerance) is True), None)
        findings.append(make_finding(
            "overwritten-gradient",
            f"the .grad of {var_label(trace, vid)} after the pass is {_short_text(final)}, not the sum "
            f"of the {len(parts)} gradients it received ({_short_text(received)})"
            + (": it holds one of them" if kept is not None and len(parts) > 1 else ""),
            pass_id=pass_record.id, variable=vid, numbers=numbers,
            hint=_HINT_KEPT_ONE if kept is not None else _HINT_OVERWRITTEN))
    return findings


def _lost_before_use(trace, pass_record, per_var) -> list:
    """A gradient a step sent whose ``.grad`` was None right after, and None when its creator's
    backward received it: the engine cleared it (the inputs' gradients instead of the outputs')
    or never stored it. An engine that hands gradients on another way is not flagged: there the
    creator receives them."""
    findings = []
    received_by_step = {}
    for step in pass_record.steps:
        call = trace.calls.get(step.call)
        if call is not None:
            for position, out in enumerate(call.outputs):
                got = step.grads_in[position] if position < len(step.grads_in) else None
                received_by_step.setdefault(out, []).append((step.index, got, step.call))
    for vid, arrivals in sorted(per_var.items()):
        for index, parts, acc in arrivals:
            if acc is not None or not parts:
                continue
            later = [(j, got, call) for j, got, call in received_by_step.get(vid, ()) if j > index]
            if not later or later[0][1] is not None:
                continue
            j, _, creator = later[0]
            sent = total_amount(parts)
            value = _short_text(sent)
            findings.append(make_finding(
                "overwritten-gradient",
                f"{call_label(trace, creator)} received None for {var_label(trace, vid)} at step {j}, "
                f"though step {index} sent it {value}: its .grad was already None after step {index}",
                pass_id=pass_record.id, call=creator, variable=vid, step=j, hint=_HINT_LOST))
            break
    return findings


def _short_text(part) -> str:
    if part.array is not None and part.array.size == 1:
        return f"{float(part.array.reshape(-1)[0]):.6g}"
    if part.array is not None and part.array.size <= 4:
        return "[" + ", ".join(f"{float(v):.6g}" for v in part.array.reshape(-1)) + "]"
    return f"a gradient of shape {part.shape} (mean {part.mean:.6g})"


def _root_changed(trace, pass_record, per_var, settings: Settings) -> list:
    """The root's ``.grad`` (kept with retain_grad) changed from its seed though no step wrote it."""
    root = pass_record.root
    seed, final = amount(pass_record.root_grad), amount(pass_record.grads.get(root))
    if root in per_var or seed is None or final is None or seed.matches(final, settings.tolerance) is not False:
        return []
    return [_overwritten_finding(trace, pass_record, root, None, final, seed, True)]


def _overwritten_finding(trace, pass_record, vid, step, actual, expected, aliased=False):
    if aliased:
        where = f"after step {step}" if step is not None else "at the end of the pass"
        return make_finding(
            "overwritten-gradient",
            f"the .grad of {var_label(trace, vid)} {where} is {actual.describe()}, not "
            f"{expected.describe()}: it changed by more than the gradients it received"
            if step is not None else
            f"the .grad of {var_label(trace, vid)} changed to {actual.describe()} after its last "
            f"gradient arrived ({expected.describe()}), though no step sent it more",
            pass_id=pass_record.id, call=_call_at(pass_record, step), variable=vid, step=step,
            hint=_HINT_ALIASED, numbers=_numbers(actual, expected))
    return _replaced_finding(trace, pass_record, vid, step, actual, expected)


def _call_at(pass_record, step):
    return next((s.call for s in pass_record.steps if s.index == step), None) if step is not None else None


def _numbers(actual, expected) -> dict:
    numbers = {"grad_mean": actual.mean, "expected_mean": expected.mean}
    if actual.array is not None and expected.array is not None and actual.array.size:
        worst = int(abs(actual.array - expected.array).reshape(-1).argmax())
        numbers = {"grad": actual.array.reshape(-1)[worst],
                   "expected": expected.array.reshape(-1)[worst]}
        if actual.array.ndim:
            numbers["index"] = [int(i) for i in _multi_index(worst, actual.array.shape)]
    return numbers


def _replaced_finding(trace, pass_record, vid, step, actual, expected):
    where = f"after step {step}" if step is not None else "at the end of the pass"
    numbers = _numbers(actual, expected)
    call = _call_at(pass_record, step)
    return make_finding(
        "overwritten-gradient",
        f"the .grad of {var_label(trace, vid)} {where} is {_short_text(actual)}, not the sum of the "
        f"gradients it received ({_short_text(expected)})"
        + (f", set by {call_label(trace, call)}" if call is not None else ""),
        pass_id=pass_record.id, call=call, variable=vid, step=step, hint=_HINT_OVERWRITTEN,
        numbers=numbers)


def _multi_index(flat: int, shape) -> tuple:
    """The multi-index of a flat C-order position."""
    return tuple(int(i) for i in np.unravel_index(flat, shape))
