"""What each variable's gradient field shows: at the end of a pass, or after backward step k."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .records import PassRecord
from .snapshot import ArraySnapshot, capture, freeze

__all__ = ["GradView", "PassIndex", "NOT_REACHED", "is_zero"]


@dataclass(frozen=True)
class GradView:
    """A gradient field: ``state`` (one of GRAD_STATES; or, in a step view, "pending" before it
    arrives, "leftover" for a ``.grad`` the variable held before the pass began) and value.

    For "cleared", ``grad`` is the gradient that passed through before ``.grad`` was cleared
    (None when unknown). ``step`` is the backward step that last changed the field (0 for the
    root's seed gradient). ``leftover``: the non-zero ``.grad`` a value was added to (no
    ``cleargrad`` since the pass before), so that the picture does not show a sum as this
    pass's gradient.
    """

    state: str
    grad: ArraySnapshot | None = None
    step: int | None = None
    leftover: ArraySnapshot | None = None  # a value's part the variable held before the pass began


NOT_REACHED = GradView("not-reached")


def is_zero(grad: ArraySnapshot) -> bool:
    """True when every element of the gradient is 0 (the "zero" state)."""
    return grad.is_zero


def _with_value(grad: ArraySnapshot | None, step: int) -> GradView:
    if grad is None:
        return GradView("cleared", None, step)
    return GradView("zero" if is_zero(grad) else "value", grad, step)


def _sum(grads: list[ArraySnapshot | None]) -> ArraySnapshot | None:
    """The sum of complete gradients (what accumulation gives), else the last one."""
    arrays = [g.to_array() for g in grads if g is not None]
    if not arrays or any(a is None for a in arrays) or len(arrays) != len(grads):
        return grads[-1]
    try:
        total = arrays[0]
        for arr in arrays[1:]:
            total = total + arr
    except (ValueError, TypeError):
        return grads[-1]
    return freeze(capture(np.asarray(total), max_elements=max(total.size, 1)))


class PassIndex:
    """The contributions to every variable of one pass, indexed in one sweep over its steps.

    ``final(v)`` takes its state from ``Trace.grad_state`` and adds the step and the gradient
    to show; ``timeline()`` gives, per step, only the fields that step changed.
    """

    def __init__(self, trace, pass_record: PassRecord | None) -> None:
        self.trace = trace
        self.pass_record = pass_record
        self.members: set[int] = set(pass_record.variables) if pass_record else set()
        # var -> [(step index, gradient returned, .grad after accumulation)]
        self.received: dict[int, list[tuple[int, ArraySnapshot | None, ArraySnapshot | None]]] = {}
        self.step_of_call: dict[int, int] = {}
        self.steps_of_call: dict[int, list[int]] = {}  # every step that ran the call, in order
        self.creator = {v.id: v.creator for v in trace.variables.values()}
        if pass_record is None:
            return
        calls = trace.calls
        for step in pass_record.steps:
            self.step_of_call.setdefault(step.call, step.index)
            self.steps_of_call.setdefault(step.call, []).append(step.index)
            call = calls.get(step.call)
            if call is None:
                continue
            for position, var in enumerate(call.inputs):
                if position < len(step.grads_out) and step.grads_out[position] is not None:
                    after = step.accumulated[position] if position < len(step.accumulated) else None
                    self.received.setdefault(var, []).append(
                        (step.index, step.grads_out[position], after))

    def final(self, var: int) -> GradView:
        """The field at the end of the pass (the same state as ``Trace.grad_state``)."""
        record = self.pass_record
        if record is None or var not in self.members:
            return NOT_REACHED
        state = self.trace.grad_state(record, var)  # the rules live in one place
        last = self.received.get(var)
        step = last[-1][0] if last else (0 if var == record.root else None)
        if state in ("zero", "value"):
            return GradView(state, record.grads[var], step, self._added_to(var))
        if state == "cleared":
            return GradView("cleared", self._passed(var), step)
        if state == "not-stored":
            return GradView("not-stored", None, step)
        return GradView("not-computed", None, None)

    def _passed(self, var: int) -> ArraySnapshot | None:
        """The gradient a cleared variable held before it was cleared."""
        items = self.received.get(var, ())
        if items and items[-1][2] is not None:
            return items[-1][2]
        record = self.pass_record
        grads = [record.root_grad] if var == record.root and record.root_grad is not None else []
        grads += [grad for _, grad, _ in items]
        return _sum(grads) if grads else None

    def _leftover(self, var: int) -> ArraySnapshot | None:
        """The ``.grad`` a variable already held when the pass began (no ``cleargrad`` before it)."""
        known = getattr(self.trace, "initial_grads", None) or {}
        return known.get(self.pass_record.id, {}).get(var)

    def _added_to(self, var: int) -> ArraySnapshot | None:
        """The leftover ``.grad`` a gradient of this pass was added to, when non-zero and the
        final ``.grad`` is that sum (an engine that overwrites ``.grad`` added nothing to it)."""
        leftover = self._leftover(var)
        if leftover is None or leftover.is_zero or var not in self.received:
            return None
        final = self.pass_record.grads.get(var)
        parts = [leftover] + [grad for _, grad, _ in self.received[var]]
        arrays = [s.to_array() if s is not None and s.values is not None else None for s in parts + [final]]
        if any(a is None for a in arrays):
            return None  # summaries: too little to tell
        try:
            total = sum(arrays[1:-1], arrays[0])
            return leftover if np.allclose(total, arrays[-1], rtol=1e-6, atol=0, equal_nan=True) else None
        except (ValueError, TypeError):
            return None

    def _initial(self, var: int) -> GradView:
        record = self.pass_record
        if var == record.root and record.root_grad is not None:
            return _with_value(record.root_grad, 0)
        leftover = self._leftover(var)
        if leftover is not None:
            return GradView("leftover", leftover, None)
        if self.final(var).state == "not-computed":
            return GradView("not-computed")
        return GradView("pending")

    def _cleared_after_creator(self) -> dict[int, list[int]]:
        """Step -> variables whose ``.grad`` the engine cleared after that step (a step that ran
        their creator's backward).

        After the last such step, the variable is cleared if it ends the pass cleared. After an
        earlier one (a backward run too early, or twice), if the engine clears gradients at all
        (some variable ends the pass cleared) and the next gradient to arrive started afresh:
        the ``.grad`` after it is that gradient alone, not a sum with the non-zero one it held.
        An engine that overwrites instead of adding (``x.grad = gx``) clears nothing.
        """
        states = {v: self.final(v).state for v in self.pass_record.variables}
        clears = "cleared" in states.values()
        clear_at: dict[int, list[int]] = {}
        for var in self.pass_record.variables:
            received = self.received.get(var, ())
            for step in self.steps_of_call.get(self.creator.get(var), ()):
                later = [(grad, after) for index, grad, after in received if index > step]
                if later:
                    grad, after = later[0]
                    held = [after for index, _, after in received if index < step]
                    cleared = (clears and bool(held) and held[-1] is not None and not is_zero(held[-1])
                               and after is not None and after == grad)
                else:
                    cleared = states[var] == "cleared"
                if cleared:
                    clear_at.setdefault(step, []).append(var)
        return clear_at

    def timeline(self) -> list[dict[int, GradView]]:
        """Changes per step: item 0 is every variable before step 1, item k what step k changed."""
        record = self.pass_record
        if record is None:
            return [{}]
        current = {var: self._initial(var) for var in record.variables}
        changes: list[dict[int, GradView]] = [dict(current)]
        sums: dict[int, list] = {var: [view.grad] for var, view in current.items() if view.state == "leftover"}
        clear_at = self._cleared_after_creator()
        unstored = {var for var in record.variables if self.final(var).state == "not-stored"}
        added_to = {var: self._added_to(var) for var in record.variables}
        by_step: dict[int, list[tuple[int, ArraySnapshot | None, ArraySnapshot | None]]] = {}
        for var, items in self.received.items():
            for index, grad, after in items:
                by_step.setdefault(index, []).append((var, grad, after))
        for step in record.steps:
            delta: dict[int, GradView] = {}
            for var, grad, after in by_step.get(step.index, ()):
                if var in unstored:
                    delta[var] = GradView("not-stored", None, step.index)
                    continue
                sums.setdefault(var, []).append(grad)
                if var == record.root and record.root_grad is not None and len(sums[var]) == 1:
                    sums[var].insert(0, record.root_grad)
                value = after if after is not None else _sum(sums[var])
                if value is not None:
                    view = _with_value(value, step.index)
                    delta[var] = GradView(view.state, view.grad, step.index, added_to.get(var))
            for var in clear_at.get(step.index, ()):
                if var not in delta:
                    delta[var] = GradView("cleared", current[var].grad, step.index)
                    sums.pop(var, None)  # a gradient arriving later starts afresh
            current.update(delta)
            changes.append(delta)
        return changes

    def at_step(self, k: int) -> dict[int, GradView]:
        """Every variable's field after step ``k`` (0 = before the first step)."""
        state: dict[int, GradView] = {}
        for delta in self.timeline()[:k + 1]:
            state.update(delta)
        return state
