"""The --frames directory: made before the script runs, its old frames replaced by the new set."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from .errors import OutputError
from .output import check_writable

__all__ = ["is_frame_name", "is_a_frame_in", "holds_frames", "prepare", "remove_if_empty", "write"]

_FRAME_NAME = re.compile(r"step-\d+\.svg\Z")


def is_frame_name(name: str) -> bool:
    """Whether a file name is a frame's (``step-007.svg``), which a new set of frames replaces."""
    return bool(_FRAME_NAME.match(name))


def is_a_frame_in(path, frames_dir) -> bool:
    """Whether ``path`` is in ``frames_dir`` with a frame's name: new frames would replace it, or
    remove it as an old frame."""
    return is_frame_name(os.path.basename(path)) and \
        os.path.realpath(os.path.dirname(path) or ".") == os.path.realpath(frames_dir)


def holds_frames(frames_dir) -> bool:
    """Whether the directory holds frames (from an earlier run)."""
    return any(map(is_frame_name, os.listdir(frames_dir)))


def prepare(path) -> bool:
    """Create the frames directory (its parent must exist) before the script runs; an existing
    one must be writable.

    Returns whether it was created (so that it can be removed again when nothing is written).
    """
    if os.path.isdir(path):
        check_writable(os.path.join(path, "frame.svg"))
        return False
    if os.path.exists(path):
        raise OutputError(f"{path} is a file, not a directory: give a directory for the "
                          f"frames, e.g. --frames frames/")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        blocker = next((p for p in [parent, *Path(parent).parents] if os.path.exists(p)), None)
        if blocker is not None and not os.path.isdir(blocker):
            raise OutputError(f"cannot make {path}: {blocker} is a file, not a directory; give "
                              f"the frames another directory, e.g. --frames frames/")
        raise OutputError(f"directory {parent} does not exist: create it first (mkdir -p {parent})")
    os.mkdir(path)
    return True


def remove_if_empty(frames_dir) -> None:
    """Remove the directory made for this run when nothing was written into it."""
    with contextlib.suppress(OSError):
        os.rmdir(frames_dir)  # only when still empty


def write(trace, frames_dir, created: bool, **options) -> str:
    """One SVG per step (``tracer.frames.write_frames`` with ``options``); frames an earlier run
    left there (step-NNN.svg) are removed. Returns the line saying what was written; when the
    frames fail, a directory ``created`` for them is removed again."""
    from .frames import write_frames
    before = set(os.listdir(frames_dir))
    try:
        written = write_frames(trace, frames_dir, **options)
    except Exception:
        if created:
            remove_if_empty(frames_dir)
        raise
    keep = {path.name for path in written}
    stale = [name for name in before if is_frame_name(name) and name not in keep]  # removed by it
    note = f" (removed {len(stale)} old frame{'s' if len(stale) != 1 else ''})" if stale else ""
    steps = len(written) - 1
    return (f"wrote {len(written)} frames to {frames_dir}: before backward, and {steps} "
            f"step{'s' if steps != 1 else ''}{note}")
