"""Atomic file output: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import time
from pathlib import Path

from .errors import OutputError

__all__ = ["write_atomic", "check_writable"]


PIPE_READER_WAIT = 10.0  # seconds a named pipe may take to get its reader before it is an error
_DESCRIPTOR = re.compile(r"/dev/(?:stdout|stderr|stdin|fd/\d+)|/proc/(?:self|\d+)/fd/\d+")


def _is_stream(path: Path) -> bool:
    """A pipe, a device or a shell's file descriptor (``/dev/stdout``): written in place."""
    if _DESCRIPTOR.fullmatch(str(path.absolute())):
        return True
    try:
        mode = os.stat(path).st_mode  # follows symbolic links
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _destination(path: str | os.PathLike) -> tuple[Path, bool]:
    """The file to write for ``path``, and whether it is a stream: a symbolic link is followed
    to the file it names (which is replaced; the link stays)."""
    given = Path(path)
    if _is_stream(given):
        return given, True
    if not given.is_symlink():
        return given, False
    try:
        return Path(os.path.realpath(given, strict=True)), False
    except FileNotFoundError:  # a dangling link: the file it names is created
        return Path(os.path.realpath(given)), False
    except OSError as exc:  # a loop of links names no file at all
        raise OutputError(f"{given} is a symbolic link that never reaches a file ({exc.strerror}): "
                          f"remove it or choose another output path") from exc


def check_writable(path: str | os.PathLike, probe: bool = True) -> Path:
    """Fail early, before any work, when ``path`` cannot be written; returns it as a Path.

    Beyond permissions (which root passes everywhere), a file is made and removed in its
    directory (``probe``; once per directory is enough): a read-only mount or /sys fails here,
    not after a long run."""
    text = os.fspath(path)
    if isinstance(text, str) and text.endswith(("/", os.sep)) and text.rstrip("/" + os.sep):
        # Path() drops the slash: keep.svg/ would replace the file keep.svg
        bare = text.rstrip("/" + os.sep)
        fix = (f"leave out the slash to write the file {bare}" if not Path(bare).is_dir()
               else f"give a file name, e.g. {text}graph.svg")
        raise OutputError(f"{text} ends with a slash, so it names a directory: {fix}")
    given, target, stream = _checked(path)
    if probe and not stream:
        try:
            tempfile.NamedTemporaryFile(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent).close()
        except OSError as exc:
            raise OutputError(f"cannot write {given}: {exc.strerror or exc}; choose another output "
                              f"path") from exc
    return given


def _checked(path: str | os.PathLike) -> tuple[Path, Path, bool]:
    """``check_writable``'s work: (the path as given, the file to write, whether it is a stream)."""
    given = Path(path)
    target, stream = _destination(given)
    if stream:
        if not os.access(given, os.W_OK):
            raise OutputError(f"{given} is not writable: choose another output path")
        return given, target, True
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"{given} is a directory: give a file name, e.g. {given / 'graph.svg'}")
    if not directory.is_dir():
        blocker = next((p for p in [directory, *directory.parents] if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise OutputError(f"cannot write {given}: {blocker} is a file, not a directory; "
                              f"choose another output path")
        raise OutputError(f"directory {directory} does not exist: create it first (mkdir -p {directory})")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to directory {directory}: choose another output path")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"{given} is not writable: choose another output path or change its permissions")
    return given, target, False


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    On any failure the existing file is untouched and no temporary file remains. A symbolic
    link is written through (the file it points to is replaced, the link stays); a pipe, a
    device or a shell's descriptor (``-o /dev/stdout >> log``) is written to in place, appending,
    as it cannot be replaced.
    """
    given, target, stream = _checked(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if stream:
        try:
            with _open_stream(given) as handle:
                handle.write(payload)
        except BrokenPipeError:
            raise  # the reader left (`| head`): the CLI ends quietly, as for -o -
        except OSError as exc:
            raise OutputError(f"cannot write {given}: {exc.strerror or exc}") from exc
        return given
    _replace(target, payload)
    return given


def _open_stream(path: Path):
    """Open a pipe, device or descriptor for appending. A named pipe nobody reads would block
    forever: that is an error naming the fix instead."""
    try:
        is_fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        is_fifo = False
    if not is_fifo:
        return open(path, "ab")
    deadline = time.monotonic() + PIPE_READER_WAIT
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            if time.monotonic() >= deadline:
                raise OutputError(f"nothing is reading the pipe {path}: start its reader first "
                                  f"(e.g. cat {path} &)") from exc
            time.sleep(0.05)
    os.set_blocking(fd, True)  # a reader is there: write all of it, waiting as it reads
    return os.fdopen(fd, "ab")


def _replace(target: Path, payload: bytes) -> None:
    """Write a temporary file beside ``target`` and rename it over ``target``."""
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}; choose another output "
                          f"path") from exc
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
