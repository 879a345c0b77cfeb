"""tracer.error_text: the one Error: line for our errors, the system's and our bugs."""

import errno

from tracer.error_text import internal_error_line, one_line, os_error_line, trace_error_line
from tracer.errors import OutputError


def test_one_line():
    assert one_line("  a\n b\t\tc ") == "a b c"


def test_a_trace_error_names_the_option_not_the_api_argument():
    exc = OutputError("pass 2 was not kept (kept: 3 of 3); record it with keep='all' or keep=2 "
                      "(gradtrace: --keep all or --keep 2)")
    assert trace_error_line(exc) == "pass 2 was not kept (kept: 3 of 3); record it with --keep all or --keep 2"
    assert trace_error_line(OutputError("two\nlines")) == "two lines"


def test_an_os_error_names_what_failed_and_the_fix():
    assert os_error_line(PermissionError(errno.EACCES, "Permission denied", "ro/g.svg")) == \
        "cannot access ro/g.svg: Permission denied; check its permissions, or choose another path"
    assert os_error_line(OSError(errno.ENOSPC, "No space left on device")) == \
        "cannot write to standard output: No space left on device; free some space, or write elsewhere"
    assert os_error_line(OSError(errno.EIO, "Input/output error", "g.svg")) == "cannot access g.svg: Input/output error"


def test_an_internal_error_asks_for_a_report():
    assert internal_error_line(KeyError("k")) == ("internal error (KeyError: 'k'): please report it; rerun with "
                                                 "GRADTRACE_DEBUG=1 to see the traceback")
