"""Standard output around a traced run: the script's prints go to stderr when stdout carries the result."""

from __future__ import annotations

import contextlib
import io
import os
import sys

__all__ = ["KeptOpen", "descriptor_1_to_stderr", "prints_to_stderr", "stdout_to_stderr", "silence_stdout",
           "is_stdout"]


class KeptOpen:
    """The script's ``sys.stdout`` while stdout carries our result: writes go to ``stream``
    (stderr), and the script closing it (``sys.stdout.close()``) does not close stderr for it as well."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def close(self) -> None:
        """Flush, and leave the stream open."""
        self._stream.flush()

    @property
    def closed(self) -> bool:
        """Never closed, whatever the script does."""
        return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def descriptor_1_to_stderr():
    """While the script runs, what it writes to file descriptor 1 itself (``os.system``,
    ``sys.__stdout__``) goes to stderr too: stdout carries gradtrace's result (``-o -``)."""
    try:
        sys.__stdout__.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):  # no real descriptors here (an embedding host)
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.__stdout__.flush()  # what the script left in its buffer goes to stderr as well
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def prints_to_stderr():
    """Everything the script prints, through ``sys.stdout`` or descriptor 1, goes to stderr."""
    with contextlib.redirect_stdout(KeptOpen(sys.stderr)), descriptor_1_to_stderr():
        yield


def stdout_to_stderr() -> None:
    """Our result is on stdout: from now on stdout (``sys.stdout`` and descriptor 1) is stderr, so
    what atexit handlers and threads still print cannot spoil the result (a JSON document)."""
    try:
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return  # not a real file (under CliRunner, or an embedding host)
    sys.stdout = sys.stderr


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. under CliRunner)
        pass


def is_stdout(out) -> bool:
    """``-o -``, or a path that is our standard output (``-o /dev/stdout > g.dot``): the script's
    prints and our reports then go to stderr, so the output stays clean."""
    if out == "-":
        return True
    if out is None:
        return False
    try:
        return os.path.samestat(os.stat(out), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
