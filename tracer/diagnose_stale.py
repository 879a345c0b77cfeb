"""tracer.diagnose's stale-gradient check: a pass that added its gradient to one left from before."""

from __future__ import annotations

from .diagnose_common import (Settings, amount, make_finding, prior_grads, same_grad, total_amount,
                              var_label)

__all__ = ["check_stale_gradient", "forward_inputs"]

_HINT_STALE = ("call {clear} (or set .grad = None) before each backward, e.g. at the start of every "
               "training step; ignore this if you meant to add up the gradients of several "
               "backward calls")

_NOTE_DATA = ("stale-gradient: {label} not counted: it kept its data while other leaves were updated "
              "(input data, as in the book's step 42), so its .grad, which adds up over the passes, is "
              "harmless while nothing reads it; else call {clear} before each backward (or pass the "
              "data as a plain array)")


def _unchanged(trace, pass_record, vid) -> bool:
    """A leaf whose data at this pass's forward is what it was when first seen."""
    record = trace.variables.get(vid)
    return record is not None and record.creator is None and record.value is not None and \
        pass_record.values.get(vid) == record.value


def _replaced(final, received, tolerance: float = 1e-6) -> bool:
    """The pass left ``.grad`` as the sum of its own gradients alone: the engine replaced the old
    ``.grad`` (one that collects gradients apart and writes ``.grad`` at the end), so nothing stale
    is in it."""
    parts, final = [amount(grad) for grad in received], amount(final)
    if final is None or any(part is None for part in parts):
        return False
    try:
        return total_amount(parts).matches(final, tolerance) is True
    except ValueError:  # shapes differ
        return False


def forward_inputs(trace) -> set:
    """Ids of the variables some call outside backward steps took as input."""
    return {vid for call in trace.calls.values() if call.in_step is None for vid in call.inputs}


def check_stale_gradient(trace, pass_record, used_by_forward: set | None = None,
                         settings: Settings | None = None) -> list:
    """stale-gradient: a variable that began the pass with a ``.grad`` and received more in it.

    Its ``.grad`` then carries the old gradient plus this pass's (the forgotten ``cleargrad()``
    of a training loop or of a second derivative). Left out: the pass's root (setting its
    ``.grad`` by hand is how a seed gradient is given), manual passes (``f.backward(gy)`` calls
    store nothing themselves), variables whose ``.grad`` did not change, implicit leaves (a
    number the engine wrapped, as in ``3 * x``: the user never held it), and variables used only
    by calls made inside backward steps (the engine's own seed and intermediate gradients of a
    higher-order derivative, which the user cannot clear). ``used_by_forward`` is
    ``forward_inputs(trace)``, computed once per trace by callers checking many passes.
    A leaf that kept its data while others were updated (input data wrapped once) is a note in
    ``settings``, not a finding: its gradient is rarely read, and the program is right.
    """
    priors = prior_grads(trace, pass_record)
    if not priors or pass_record.kind == "manual":
        return []
    if used_by_forward is None:
        used_by_forward = forward_inputs(trace)
    findings = []
    unchanged = {v for v in pass_record.values if _unchanged(trace, pass_record, v)}
    training = any(v not in unchanged for v in pass_record.values)  # some leaf was updated
    for vid, prior in sorted(priors.items()):
        if vid == pass_record.root or prior is None or prior.is_zero or vid not in used_by_forward:
            continue
        record = trace.variables.get(vid)
        if record is not None and record.implicit:
            continue  # the engine wrapped it from a number: there is nothing the user could clear
        final = pass_record.grads.get(vid)
        received = [grad for _, grad in trace.contributions(pass_record, vid) if grad is not None]
        if same_grad(final, prior) or not received or _replaced(final, received):
            continue
        name = trace.name_of(vid)
        clear = f"{name}.cleargrad()" if name else "cleargrad() on it"
        if name and "." in name and not name.startswith("."):  # a model's parameter: model.l1.W
            clear = f"{name.split('.')[0]}.cleargrads() (or {clear})"
        if training and vid in unchanged:
            if settings is not None:
                settings.note(_NOTE_DATA.format(label=var_label(trace, vid), clear=clear))
            continue
        numbers = {"stale_mean": prior.mean}
        if final is not None and final.mean is not None:
            numbers["grad_mean"] = final.mean
        findings.append(make_finding(
            "stale-gradient",
            f"{var_label(trace, vid)} began backward pass {pass_record.id} with a .grad left from an "
            f"earlier backward, and this pass added its gradient to that one",
            pass_id=pass_record.id, variable=vid, severity="warning",
            hint=_HINT_STALE.format(clear=clear),
            numbers=numbers))
    return findings
