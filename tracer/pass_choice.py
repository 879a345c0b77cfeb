"""The backward pass shown when not every pass was kept or saved, in words for the user."""

from __future__ import annotations

import os

from .trace import PassSelectionError

__all__ = ["shown_instead", "beyond_the_run", "missing_pass_error", "kept_note", "saved_notes"]


def shown_instead(trace, which) -> tuple[int | None, int | None]:
    """For ``--pass last|first``: (the pass shown, the run's pass meant) when they differ, because
    that pass was not kept; else (None, None)."""
    if which not in ("last", "first") or not trace.passes:
        return None, None
    shown, wanted = trace.select_pass(which).id, trace.pass_count if which == "last" else 1
    return (shown, wanted) if shown != wanted else (None, None)


def beyond_the_run(trace, keep) -> bool:
    """Whether ``--keep K`` asked for a pass after the last one the run made (which made some)."""
    return isinstance(keep, int) and 0 < trace.pass_count < keep


def missing_pass_error(trace, script, keep: int, all_allowed: bool = False) -> PassSelectionError:
    """The error for ``--keep K`` beyond the run's passes, naming the choices (``all`` too when
    the command takes it)."""
    count = trace.pass_count
    everything = ", all" if all_allowed else ""
    return PassSelectionError(
        f"pass {keep} does not exist: {script} made {count} backward pass{'es' if count > 1 else ''} "
        f"(choose 1{'..' + str(count) if count > 1 else ''}, first, last{everything})")


def kept_note(trace, which, keep) -> str | None:
    """The warning when --keep left out the pass that ``--pass last|first`` names in the whole
    run, else None."""
    shown, wanted = shown_instead(trace, which) if keep != which else (None, None)
    if shown is None:
        return None
    return (f"showing pass {shown}, the {which} pass kept: --keep {keep} did not keep pass {wanted} "
            f"of the run's {trace.pass_count} (use --keep all or --keep {wanted})")


def saved_notes(trace, path, which) -> list[str]:
    """The warnings for showing pass ``which`` of the trace saved in ``path``; PassSelectionError
    when that pass was made but not saved."""
    if isinstance(which, int) and 1 <= which <= trace.pass_count and all(p.id != which for p in trace.passes):
        held = ", ".join(str(p.id) for p in trace.passes) or "none"
        raise PassSelectionError(
            f"pass {which} is not in {path} (it holds pass{'es' if len(trace.passes) != 1 else ''} "
            f"{held} of {trace.pass_count}): run the script again with --keep all (or --keep {which}) "
            f"-o {os.path.basename(path)}")
    shown, _ = shown_instead(trace, which)
    if shown is None:
        return []
    return [f"showing pass {shown}, the {which} pass {path} holds (the run made "
            f"{trace.pass_count}; save it with --keep all to have them all)"]
