"""Shape lint: a gradient whose shape is not its variable's (broadcast not undone, swapped, transposed, listed)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .diagnose_common import make_finding, op_of, var_label

__all__ = ["check_shapes"]

_HINT_LISTED_ONE = ("the gradient has an extra first axis of length 1: backward probably returned it in a "
                    "list (`return [gx]`), which the engine took as one array; return the array itself "
                    "(`return gx`)")
_HINT_ONE_ARRAY = ("the gradients of all {n} inputs arrived as one: backward returned them in a list "
                   "(or one array), which the engine took as the first input's gradient; return a "
                   "tuple, `return {names}`")
_HINT_SEED_SHAPE = ("the seed gradient must have the root's shape: start backward with "
                    "np.ones_like(self.data), not np.array(1.0), or take the sum of a non-scalar result first")
_HINT_SWAPPED = ("the two gradients are each shaped like the other input: the backward returns them "
                 "in the wrong order (return gx, gW in the order of the inputs x, W)")
_HINT_BROADCAST = ("the gradient is smaller than its input: a forward that reduced (sum, mean) must "
                   "spread the gradient back in backward (broadcast_to the input's shape)")
_HINT_SHAPE = ("a broadcast in forward must be undone in backward: sum the gradient back to the "
               "input's shape (sum_to)")
_HINT_TRANSPOSED = ("a transposed gradient: the backward multiplies in the wrong order or forgets a "
                    ".T (for y = x @ W: gx = gy @ W.T and gW = x.T @ gy)")


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


def _size(shape) -> int:
    size = 1
    for n in shape:
        size *= n
    return size
