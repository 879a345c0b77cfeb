"""tracer.diagnose's stale-gradient check: a pass that added its gradient to one left from before."""

from __future__ import annotations

from .diagnose_common import make_finding, prior_grads, var_label

__all__ = ["check_stale_gradient"]

_HINT_STALE = ("call {clear} (or set .grad = None) before each backward, e.g. at the start of every "
               "training step; ignore this if you meant to add up the gradients of several "
               "backward calls")


def check_stale_gradient(trace, pass_record) -> list:
    """stale-gradient: a variable that began the pass with a ``.grad`` and received more in it.

    Its final ``.grad`` is then the old gradient plus this pass's (the forgotten ``cleargrad()``
    of a training loop or of a second derivative). The pass's root is left out: setting its
    ``.grad`` by hand is how a seed gradient is given.
    """
    priors = prior_grads(trace, pass_record)
    if not priors:
        return []
    findings = []
    for vid, prior in sorted(priors.items()):
        if vid == pass_record.root or prior is None or prior.is_zero:
            continue
        if not any(grad is not None for _, grad in trace.contributions(pass_record, vid)):
            continue
        name = trace.name_of(vid)
        final = pass_record.grads.get(vid)
        numbers = {"stale_mean": prior.mean}
        if final is not None and final.mean is not None:
            numbers["grad_mean"] = final.mean
        findings.append(make_finding(
            "stale-gradient",
            f"{var_label(trace, vid)} began backward pass {pass_record.id} with a .grad left from an "
            f"earlier backward; this pass added to it, so its .grad is the sum of both",
            pass_id=pass_record.id, variable=vid, severity="warning",
            hint=_HINT_STALE.format(clear=f"{name}.cleargrad()" if name else "cleargrad() on it"),
            numbers=numbers))
    return findings
