"""Backprop-order lint: premature, repeated and missing steps, overwritten gradients, shape mismatches."""

from __future__ import annotations

import inspect
from dataclasses import replace

import numpy as np

from .diagnose_common import (Settings, amount, call_label, grads_written_after_steps, make_finding,
                              op_of, prior_grads, total_amount, var_label, zero_amount)
from .labels import format_array

__all__ = ["check_order", "check_overwritten", "check_shapes"]

_HINT_PREMATURE = (
    "the backward loop visited this function before every function using its output had run: "
    "order the queue by generation (pop the largest) and queue each function once")
_HINT_REPEATED = ("the backward loop queued this function more than once: keep a set of "
                  "functions already queued (DeZero's `seen_set`)")
_HINT_MISSING = ("the backward loop never reached this function: check that every input's "
                 "creator is queued (all inputs, not only the first)")
_HINT_OVERWRITTEN = ("the engine replaced the gradient instead of adding to it: write "
                     "`x.grad = gx if x.grad is None else x.grad + gx`")
_HINT_ALIASED = ("the .grad is the very array of another gradient (x.grad = gx keeps gx itself), so an "
                 "in-place `x.grad += gx` changed both: write `x.grad = x.grad + gx` (a new array), "
                 "as in the book's step 14; a backward that changes its gy in place (`gy[mask] = 0`) "
                 "does the same: compute a new array (`gy * mask`)")
_HINT_KEPT_ONE = ("the engine kept only one of the gradients that reached this variable: add each one to "
                  "what it has collected so far (`grads[x] = grads[x] + gx if x in grads else gx`)")
_HINT_REUSED = ("one {op} object was called twice ({later} is the same object{how}): the second call "
                "replaced its inputs and outputs, so backward can only run the second; make a new object "
                "per call ({op}()({op}()(x))), or use a function that does")
_HINT_LOST = ("the engine cleared this gradient before the function that made the variable had used "
              "it: with retain_grad=False clear the outputs' gradients after a function's backward "
              "(`y().grad = None for y in f.outputs`), not its inputs'")
_HINT_RETAINED = ("retain_grad=True asks to keep every gradient: clear the outputs' .grad after a "
                  "function's backward only when it is False (`if not retain_grad:`)")
_HINT_ONE_ARRAY = ("the gradients of all {n} inputs arrived as one: backward returned them in a list "
                   "(or one array), which the engine took as the first input's gradient; return a "
                   "tuple, `return {names}`")
_HINT_LISTED_ONE = ("the gradient has an extra first axis of length 1: backward probably returned it in a "
                    "list (`return [gx]`), which the engine took as one array; return the array itself "
                    "(`return gx`)")
_HINT_TRANSPOSED = ("a transposed gradient: the backward multiplies in the wrong order or forgets a "
                    ".T (for y = x @ W: gx = gy @ W.T and gW = x.T @ gy)")
_HINT_ROOT_PASSED = ("the backward loop gave this function the root's gradient (or ones) instead of its "
                     "outputs' own: pass each function the .grad of its outputs ([output.grad for output "
                     "in f.outputs], the book's gys)")
_HINT_SEED_SHAPE = ("the seed gradient must have the root's shape: start backward with "
                    "np.ones_like(self.data), not np.array(1.0), or take the sum of a non-scalar result first")
_HINT_PRIOR_REPLACED = ("if the two passes' gradients were meant to add up (two losses, or mini-batches), "
                        "add them: x.grad = gx if x.grad is None else x.grad + gx; if each pass starts "
                        "afresh, clear it first (cleargrad), and this goes")
_HINT_SWAPPED = ("the two gradients are each shaped like the other input: the backward returns them "
                 "in the wrong order (return gx, gW in the order of the inputs x, W)")
_HINT_BROADCAST = ("the gradient is smaller than its input: a forward that reduced (sum, mean) must "
                   "spread the gradient back in backward (broadcast_to the input's shape)")
_HINT_SHAPE = ("a broadcast in forward must be undone in backward: sum the gradient back to the "
               "input's shape (sum_to)")


def _steps_by_call(pass_record) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for step in pass_record.steps:
        if step.call is not None:
            found.setdefault(step.call, []).append(step.index)
    return found


def _contribution_steps(trace, pass_record) -> dict[int, list[int]]:
    """Variable id -> indexes of the steps that returned a gradient for it (in order)."""
    found: dict[int, list[int]] = {}
    for step in pass_record.steps:
        call = trace.calls.get(step.call)
        if call is None or step.error:
            continue
        for position, vid in enumerate(call.inputs):
            if position < len(step.grads_out) and step.grads_out[position] is not None:
                indexes = found.setdefault(vid, [])
                if not indexes or indexes[-1] != step.index:
                    indexes.append(step.index)
    return found


def _premature(trace, pass_record, runs, arrivals) -> list:
    findings = []
    for call_id, indexes in sorted(runs.items()):
        call = trace.calls.get(call_id)
        if call is None:
            continue
        for index in indexes:
            late = sorted({s for out in call.outputs for s in arrivals.get(out, ()) if s > index})
            if not late:
                continue
            out = next(o for o in call.outputs if any(s > index for s in arrivals.get(o, ())))
            findings.append(make_finding(
                "premature-backward",
                f"{call_label(trace, call_id)} ran its backward at step {index}, but its output "
                f"{var_label(trace, out)} received more gradient afterwards (step{'s' * (len(late) > 1)} "
                f"{_step_list(late)}): it used an incomplete gradient",
                pass_id=pass_record.id, call=call_id, variable=out, step=index,
                hint=_generation_hint(trace, pass_record, call) or _order_hint(trace, pass_record, call, late[0])
                or _HINT_PREMATURE,
                numbers={"late_steps": late[:_LISTED]}))
            break
    return findings


_LISTED = 10  # step numbers a finding lists (a loop that never ends repeated one step 70,000 times)


def _step_list(steps: list) -> str:
    """``3, 5, 7`` or, for many, ``3, 5, 7, ... (70,000 in all)``."""
    if len(steps) <= _LISTED:
        return ", ".join(map(str, steps))
    return f"{', '.join(map(str, steps[:_LISTED]))}, ... ({len(steps):,} in all)"


def _order_hint(trace, pass_record, call, late: int) -> str | None:
    """When the generations are right but the loop took a smaller one first (no sort, or the
    sorted list's pop(0)), the hint names the function that should have gone first."""
    step = next((s for s in pass_record.steps if s.index == late), None)
    later = trace.calls.get(step.call) if step is not None else None
    if later is None or None in (call.generation, later.generation) or later.generation <= call.generation:
        return None
    return (f"{call_label(trace, later.id)} (generation {later.generation}) ran after it (step {late}), though "
            f"{call_label(trace, call.id)} has generation {call.generation} and the larger generation must run "
            f"first: take the function with the largest generation each time "
            f"(sort by generation and pop() the last, not pop(0)), and queue each function once")


def _generation_hint(trace, pass_record, call) -> str | None:
    """When the engine's generations are wrong (a function of the pass using another's output
    has no larger generation than it), the hint says so: sorting by them cannot help. The pair
    nearest ``call`` is named."""
    calls = [trace.calls[c] for c in pass_record.calls if c in trace.calls]
    made_by = {out: c for c in calls for out in c.outputs}
    wrong = []
    for user in calls:
        for vid in user.inputs:
            maker = made_by.get(vid)
            if maker is not None and None not in (maker.generation, user.generation) and \
                    user.generation <= maker.generation:
                wrong.append((abs(maker.id - call.id), maker, user))
    if not wrong:
        return None
    _, maker, user = min(wrong, key=lambda item: (item[0], item[1].id, item[2].id))
    return (f"the generations are wrong: {call_label(trace, user.id)} (generation {user.generation}) "
            f"uses the output of {call_label(trace, maker.id)} (generation {maker.generation}), so "
            f"sorting by generation cannot order them: a function's generation is the largest of "
            f"its inputs' (max, not min), and each output's is its creator's + 1 (set_creator)")


def _received_other_than_left(trace, pass_record, tolerance: float = 1e-6) -> list:
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


def _repeated(trace, pass_record, runs) -> list:
    return [make_finding(
        "repeated-step",
        f"{call_label(trace, call_id)} ran its backward {len(indexes)} times in this pass "
        f"(steps {_step_list(indexes)}): its inputs received its gradient more than once",
        pass_id=pass_record.id, call=call_id, step=indexes[1], hint=_HINT_REPEATED,
        numbers={"steps": indexes[:_LISTED]})
        for call_id, indexes in sorted(runs.items()) if len(indexes) > 1]


def _backward_is_hookable(trace, call_id: int) -> bool:
    """False when the call's class has a backward the tracer cannot see (not a plain method)."""
    cls = getattr(trace, "function_types", {}).get(call_id)
    if cls is None:
        return True
    for klass in cls.__mro__:
        if "backward" in klass.__dict__:
            return inspect.isfunction(klass.__dict__["backward"])
    return False


def _no_step(trace, pass_record) -> list:
    """A backward that ran no step although its root came from a Function call: the call kept no
    link to it (made under no_grad(), or an engine that never sets ``creator``), or the engine's
    backward loop never reached it."""
    record = trace.variables.get(pass_record.root)
    if pass_record.steps or pass_record.kind != "backward" or \
            record is None or record.creator is None or record.creator not in trace.calls:
        return []
    if pass_record.error is not None and record.creator not in trace.unlinked_calls:
        return []  # an unlinked root explains the error (the book's loop fails on creator None)
    root, made = var_label(trace, pass_record.root), call_label(trace, record.creator)
    start = f"{trace.name_of(pass_record.root) or 'the root'}.backward() ran no backward step, though {root} came from {made}"
    if record.creator in trace.unlinked_calls:
        message = f"{start}: that call kept no link to it, so no gradient reaches its inputs"
        hint = ("compute it outside `with no_grad():` (no graph is built there), or have Function.__call__ "
                "set output.creator (set_creator) when backprop is enabled; with no `with no_grad():` around "
                "it, Config.enable_backprop was left False: using_config must restore it in a `finally:`, "
                "or an exception inside the block leaves backprop off")
    else:
        message = f"{start}, linked as its creator: the backward loop never ran it"
        hint = _HINT_MISSING
    return [make_finding("missing-step", message, pass_id=pass_record.id, call=record.creator,
                         variable=pass_record.root, hint=hint)]


def _missing(trace, pass_record, runs) -> list:
    if not pass_record.steps:
        return _no_step(trace, pass_record)
    if pass_record.error is not None:
        return []
    manual = pass_record.kind == "manual"
    findings = []
    for call_id in pass_record.calls:
        if call_id in runs or not _backward_is_hookable(trace, call_id):
            continue
        call = trace.calls.get(call_id)
        outputs = ", ".join(var_label(trace, v) for v in call.outputs) if call else "?"
        again = _called_again(trace, call) if call else None
        short = _given_none_by(trace, pass_record, call) if call else None
        findings.append(make_finding(
            "missing-step",
            f"{call_label(trace, call_id)} is on the graph of this pass (it made {outputs}) but "
            f"its backward never ran: its inputs got no gradient from it",
            pass_id=pass_record.id, call=call_id, severity="warning" if manual else "error",
            hint=(_HINT_REUSED.format(op=call.op, later=call_label(trace, again[0]), how=again[1])
                  if again is not None
                  else f"its output got no gradient: {short} returned none for it (see wrong-backward), so "
                       f"the loop never queued this function" if short is not None
                  else "a manual pass: call this function's backward too" if manual else _HINT_MISSING)))
    return findings


def _needs_gradient(trace, vid: int) -> bool:
    """A variable whose gradient is used: made by a function, or a float leaf (a parameter); not a
    constant, nor integer data such as class labels."""
    record = trace.variables.get(vid)
    if record is None or trace.is_constant(vid) or record.implicit:
        return False
    return record.creator is not None or (record.dtype or "").startswith(("float", "complex"))


def _given_none_by(trace, pass_record, call) -> str | None:
    """The backward step ("Add.backward at step 1") that returned too few gradients to reach
    ``call``'s output, if one did."""
    outputs = set(call.outputs)
    return next((f"{op_of(trace, user.id)}.backward at step {step.index}"
                 for step, user, missed in _short_steps(trace, pass_record) if outputs & set(missed)), None)


def _short_steps(trace, pass_record):
    """(step, call, inputs that got no gradient though it is used) for each step whose backward
    returned fewer gradients than its function has inputs."""
    for step in pass_record.steps:
        call = trace.calls.get(step.call)
        returned = len(step.grads_out)
        if call is None or step.error or not returned or returned >= len(call.inputs):
            continue
        first, leading = step.grads_out[0], trace.variables.get(call.inputs[0])
        if first is not None and leading is not None and leading.shape is not None and \
                tuple(first.shape) == (len(call.inputs), *leading.shape):
            continue  # all the gradients in one array (a list taken whole): shape-mismatch says so
        missed = [v for v in call.inputs[returned:] if _needs_gradient(trace, v)]
        if missed:  # none for softmax_cross_entropy's integer labels: nothing to send them
            yield step, call, missed


def _called_again(trace, call):
    """(the later call made through the very same Function object, how) if there is one: one on
    ``call``'s output (``sq(sq(x))``), or any other (``add(sq(x), sq(x))`` with one ``sq``)."""
    reused = getattr(trace, "reused_calls", frozenset())
    on_output = next((c for c in sorted(reused) if c in trace.calls and trace.calls[c].op == call.op
                      and set(trace.calls[c].inputs) & set(call.outputs)), None)
    if on_output is not None:
        return on_output, ", called on this call's output, as in sq(sq(x))"
    later = getattr(trace, "called_again", {}).get(call.id)
    if later is not None and later in trace.calls:
        return later, ", as in add(sq(x), sq(x)) with one sq"
    return None


def _short_returns(trace, pass_record) -> list:
    """Steps whose backward returned fewer gradients than its function has inputs (Add returning
    ``gy`` alone): the engine's zip gives the last inputs nothing, and their creators are never
    queued (so they look like missing steps)."""
    findings = []
    for step, call, needed in _short_steps(trace, pass_record):
        returned = len(step.grads_out)
        missed = ", ".join(var_label(trace, v) for v in needed)
        op = op_of(trace, call.id)
        findings.append(make_finding(
            "wrong-backward",
            f"{op}.backward returned {returned} gradient{'s' if returned != 1 else ''} for its "
            f"{len(call.inputs)} inputs at step {step.index}: {missed} got none",
            pass_id=pass_record.id, call=call.id, step=step.index,
            hint="return one gradient per input, in the inputs' order: "
                 + ("`return gy, gy` for Add" if op == "Add" else
                    f"`return {', '.join(f'gx{i}' for i in range(len(call.inputs)))}`")))
    return findings


def check_order(trace, pass_record, kinds) -> list:
    """premature-backward, repeated-step and missing-step findings of one pass (and backward
    steps that returned fewer gradients than their function has inputs)."""
    runs = _steps_by_call(pass_record)
    findings = []
    if "wrong-backward" in kinds:
        findings += _short_returns(trace, pass_record)
    if "wrong-gradient-passed" in kinds and not grads_written_after_steps(trace, pass_record):
        findings += [f for f in _received_other_than_left(trace, pass_record)
                     if f.kind == "wrong-gradient-passed"]  # an automatic pass: the root's passed
    if "premature-backward" in kinds:
        findings += _premature(trace, pass_record, runs, _contribution_steps(trace, pass_record))
    if "repeated-step" in kinds:
        findings += _repeated(trace, pass_record, runs)
    if "missing-step" in kinds:
        findings += _missing(trace, pass_record, runs)
    return findings


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
        findings += [f for f in _received_other_than_left(trace, pass_record)
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


def check_shapes(trace, pass_record) -> list:
    """shape-mismatch: a gradient whose shape differs from its variable's data."""
    findings = []
    flagged = set()
    for step in pass_record.steps:
        call = trace.calls.get(step.call)
        if call is None:
            continue
        for position, vid in enumerate(call.inputs):
            grad = step.grads_out[position] if position < len(step.grads_out) else None
            record = trace.variables.get(vid)
            if grad is None or record is None or record.shape is None or vid in flagged:
                continue
            if tuple(grad.shape) != tuple(record.shape):
                flagged.add(vid)
                if _passed_on(trace, call, step, grad):
                    continue  # it got a wrong shape and handed it on: the step that made it is reported
                finding = _shape_finding(
                    trace, pass_record, vid, grad.shape, record.shape,
                    f"{op_of(trace, call.id)}.backward returned a gradient of shape "
                    f"{tuple(grad.shape)} for inputs[{position}], {var_label(trace, vid)}, of "
                    f"shape {tuple(record.shape)}", call.id, step.index)
                inputs = len(call.inputs)
                if inputs > 1 and position == 0 and len(step.grads_out) < inputs and \
                        tuple(grad.shape) == (inputs,) + tuple(record.shape):
                    names = ", ".join(f"gx{i}" for i in range(inputs))
                    finding = replace(finding, hint=_HINT_ONE_ARRAY.format(n=inputs, names=names))
                elif inputs == 1 and len(step.grads_out) == 1 and \
                        tuple(grad.shape) == (1,) + tuple(record.shape):
                    finding = replace(finding, hint=_HINT_LISTED_ONE)
                elif _swapped(trace, call, step, position):
                    finding = replace(finding, hint=_HINT_SWAPPED)
                findings.append(finding)
    for vid, grad in sorted(pass_record.grads.items()):
        record = trace.variables.get(vid)
        if grad is None or record is None or record.shape is None or vid in flagged:
            continue
        if tuple(grad.shape) != tuple(record.shape):
            finding = _shape_finding(
                trace, pass_record, vid, grad.shape, record.shape,
                f"the .grad of {var_label(trace, vid)} has shape {tuple(grad.shape)} but its data has "
                f"shape {tuple(record.shape)}", None, None)
            if vid == pass_record.root:  # the seed itself: every gradient after it takes its shape
                finding = replace(finding, hint=_HINT_SEED_SHAPE)
            findings.append(finding)
    findings += _seed_shape(trace, pass_record)
    return findings


def _seed_shape(trace, pass_record) -> list:
    """shape-mismatch of a seed the engine cleared after use (retain_grad=False): the loop over
    final gradients above cannot see it, and broadcasting may hide it from every step."""
    root, seed = pass_record.root, pass_record.root_grad
    record = trace.variables.get(root) if root is not None else None
    if seed is None or record is None or record.shape is None or pass_record.grads.get(root) is not None \
            or tuple(seed.shape) == tuple(record.shape):
        return []
    finding = _shape_finding(
        trace, pass_record, root, seed.shape, record.shape,
        f"the starting gradient of {var_label(trace, root)} has shape {tuple(seed.shape)} but its data has "
        f"shape {tuple(record.shape)}", None, None)
    return [replace(finding, hint=_HINT_SEED_SHAPE)]


def _passed_on(trace, call, step, grad) -> bool:
    """The step received a gradient of another shape than its output's, and returned that very
    shape: it handed on a wrong shape made before it (Add after a Sum that did not broadcast)."""
    for position, out in enumerate(call.outputs):
        received = step.grads_in[position] if position < len(step.grads_in) else None
        record = trace.variables.get(out)
        if received is not None and record is not None and record.shape is not None and \
                tuple(received.shape) != tuple(record.shape) and tuple(received.shape) == tuple(grad.shape):
            return True
    return False


def _swapped(trace, call, step, position) -> bool:
    """Each of two inputs got the gradient shaped like the other's (``return gW, gx``)."""
    if len(call.inputs) != 2 or len(step.grads_out) < 2 or any(g is None for g in step.grads_out[:2]):
        return False
    shapes = [trace.variables[v].shape if v in trace.variables else None for v in call.inputs]
    if any(s is None for s in shapes) or tuple(shapes[0]) == tuple(shapes[1]):
        return False
    return tuple(step.grads_out[0].shape) == tuple(shapes[1]) and tuple(step.grads_out[1].shape) == tuple(shapes[0])


def _shape_finding(trace, pass_record, vid, grad_shape, shape, message, call, step):
    grad_shape, shape = tuple(grad_shape), tuple(shape)
    severity, hint = "error", _HINT_SHAPE
    if _size(grad_shape) < _size(shape) and _broadcasts_to(grad_shape, shape):
        hint = _HINT_BROADCAST  # Sum.backward returning gy as it is
    if len(shape) == 2 and grad_shape == shape[::-1]:
        message += ": the transpose of its shape"
        hint = _HINT_TRANSPOSED
    elif _size(grad_shape) == _size(shape):
        if _broadcasts_to(grad_shape, shape):  # e.g. () for (1,): an update keeps the data's shape
            severity = "warning"
            hint = "same elements, another shape: reshape the gradient to the input's shape"
        else:  # x.data -= lr * x.grad would fail, or change the data's shape
            hint = "same number of elements in another layout: reshape the gradient to the input's shape"
    if trace.is_constant(vid):  # harmless here; a parameter broadcast the same way is not
        severity, hint = "warning", f"a constant's gradient is not used, but {hint[0].lower()}{hint[1:]}"
    return make_finding(
        "shape-mismatch", message, pass_id=pass_record.id, call=call, variable=vid, step=step,
        severity=severity, hint=hint, numbers={"grad_shape": list(grad_shape), "shape": list(shape)})


def _broadcasts_to(shape, target) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def _multi_index(flat: int, shape) -> tuple:
    """The multi-index of a flat C-order position."""
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def _size(shape) -> int:
    size = 1
    for n in shape:
        size *= n
    return size
