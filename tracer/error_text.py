"""The one ``Error:`` line for an error that ends a command: ours, the system's (with a fix), or a bug."""

from __future__ import annotations

import errno
import re

__all__ = ["one_line", "trace_error_line", "os_error_line", "internal_error_line"]

_FIXES = {errno.EACCES: "check its permissions, or choose another path",
          errno.EPERM: "check its permissions, or choose another path",
          errno.ENOSPC: "free some space, or write elsewhere",
          errno.ENAMETOOLONG: "choose a shorter name",
          errno.ENXIO: "choose a file instead"}


def one_line(text: str) -> str:
    """``text`` on one line: runs of white space, newlines too, become one space."""
    return " ".join(text.split())


def trace_error_line(exc: Exception) -> str:
    """A TraceError's message for the command line, which names the option (``--keep all``)
    where the API's wording names its ``keep=`` argument first."""
    return one_line(re.sub(r"keep='all' or keep=(\d+) \(gradtrace: (--keep all or --keep \d+)\)", r"\2",
                           str(exc)))


def os_error_line(exc: OSError) -> str:
    """What could not be done (the file, or standard output), why, and the fix for the usual causes."""
    where = f"access {exc.filename}" if exc.filename else "write to standard output"
    fix = _FIXES.get(exc.errno)
    return one_line(f"cannot {where}: {exc.strerror or exc}" + (f"; {fix}" if fix else ""))


def internal_error_line(exc: Exception) -> str:
    """A bug of ours, in one line that asks for a report (the traceback only with GRADTRACE_DEBUG=1)."""
    return one_line(f"internal error ({type(exc).__name__}: {exc}): please report it; rerun with "
                    f"GRADTRACE_DEBUG=1 to see the traceback")
