"""Atomic file output: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError

__all__ = ["write_atomic", "check_writable"]


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any work, when ``path`` cannot be written; returns it as a Path."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if target.exists() and not target.is_file() and not target.is_dir():  # a pipe or a device
        if not os.access(target, os.W_OK):
            raise OutputError(f"{target} is not writable: choose another output path")
        return target
    if target.is_dir():
        raise OutputError(f"{target} is a directory: give a file name, e.g. {target / 'graph.svg'}")
    if not directory.is_dir():
        blocker = next((p for p in [directory, *directory.parents] if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise OutputError(f"cannot write {target}: {blocker} is a file, not a directory; "
                              f"choose another output path")
        raise OutputError(f"directory {directory} does not exist: create it first (mkdir -p {directory})")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to directory {directory}: choose another output path")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"{target} is not writable: choose another output path or change its permissions")
    return target


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    On any failure the existing file is untouched and no temporary file remains. A symbolic
    link is written through (the file it points to is replaced, the link stays); a pipe or a
    device (``/dev/stdout``, a FIFO) is written to directly, as it cannot be replaced.
    """
    given = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    target = check_writable(os.path.realpath(given) if given.is_symlink() else given)
    if target.exists() and not target.is_file():
        try:
            with open(target, "wb") as handle:
                handle.write(payload)
        except OSError as exc:
            raise OutputError(f"cannot write {given}: {exc.strerror or exc}") from exc
        return given
    _replace(target, payload)
    return given


def _replace(target: Path, payload: bytes) -> None:
    """Write a temporary file beside ``target`` and rename it over ``target``."""
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        if target.exists():
            os.chmod(temp_name, target.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, target)
    except OSError as exc:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
