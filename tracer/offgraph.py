"""Why a run's Function calls are on no backward pass's graph: its pass began at a leaf."""

from __future__ import annotations

__all__ = ["leaf_root_reason"]


def leaf_root_reason(trace) -> str | None:
    """The reason none of the run's Function calls was kept, when the one kept backward pass
    started from a variable no Function made (``x.backward()`` after ``y = square(x)``); else None.

    The words go after a colon that says the calls were made but none was kept.
    """
    if len(trace.passes) != 1:
        return None  # keep="all" keeps every call: several kept passes never get here
    (only,) = trace.passes
    root = trace.variables.get(only.root) if only.root is not None else None
    if root is None or root.creator is not None or only.calls or only.steps:
        return None
    name = trace.name_of(root.id) or f"v{root.id}"
    return (f"the backward pass started from {name}, which no Function made, so it has no steps and no "
            f"Function call on its graph: call backward() on the computation's result (y = f(x); y.backward())")
