"""Backprop-order lint: premature, repeated, missing and short backward steps."""

from __future__ import annotations

import inspect

from .diagnose_accumulate import received_other_than_left
from .diagnose_common import call_label, grads_written_after_steps, make_finding, op_of, var_label

__all__ = ["check_order"]

_HINT_PREMATURE = (
    "the backward loop visited this function before every function using its output had run: "
    "order the queue by generation (pop the largest) and queue each function once")
_HINT_REPEATED = ("the backward loop queued this function more than once: keep a set of "
                  "functions already queued (DeZero's `seen_set`)")
_HINT_MISSING = ("the backward loop never reached this function: check that every input's "
                 "creator is queued (all inputs, not only the first)")
_HINT_REUSED = ("one {op} object was called twice ({later} is the same object{how}): the second call "
                "replaced its inputs and outputs, so backward can only run the second; make a new object "
                "per call ({op}()({op}()(x))), or use a function that does")


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
            f"(keep the list sorted by generation and pop() its last item: pop(0) takes the smallest), and "
            f"queue each function once")


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
        findings += [f for f in received_other_than_left(trace, pass_record)
                     if f.kind == "wrong-gradient-passed"]  # an automatic pass: the root's passed
    if "premature-backward" in kinds:
        findings += _premature(trace, pass_record, runs, _contribution_steps(trace, pass_record))
    if "repeated-step" in kinds:
        findings += _repeated(trace, pass_record, runs)
    if "missing-step" in kinds:
        findings += _missing(trace, pass_record, runs)
    return findings
