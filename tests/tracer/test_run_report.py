"""tracer.run_report: the lines reported after a run, and its exit status, without click."""

from types import SimpleNamespace

from tracer.records import CellError, EngineInfo, ErrorRecord
from tracer.run_report import (exit_status, failure_status, interrupted, left_as_it_was, nothing_drawn,
                               other_threads, partial_note, recorded_graph, run_report, warning_line)


def _trace(calls=1, passes=1, error=None, **fields):
    """A stand-in with the fields the report reads: ``calls`` recorded calls with variables."""
    call = SimpleNamespace(inputs=(1,), outputs=(2,))
    values = dict(calls={i: call for i in range(calls)}, pass_count=passes, error=error, cell_errors=(),
                  calls_made=calls, calls_without_variables=0, calls_elsewhere=0, passes_elsewhere=0,
                  engine=EngineInfo(("Function",), ("Variable",)))
    values.update(fields)
    return SimpleNamespace(**values)


def test_a_clean_run_reports_nothing():
    assert run_report(_trace(), "s.py") == []


def test_a_run_without_backward_says_so_with_the_commands_ending():
    assert run_report(_trace(passes=0), "s.py", no_backward="nothing to step through") == \
        ["Warning: s.py never called backward(): nothing to step through"]


def test_a_traceback_is_one_plain_line_and_sys_exit_gives_its_status():
    raised = ErrorRecord("ValueError", "bad", traceback="Traceback ...\nValueError: bad\n")
    assert run_report(_trace(error=raised), "s.py") == ["Traceback ...\nValueError: bad"]
    assert run_report(_trace(error=ErrorRecord("SystemExit", "3")), "s.py") == ["s.py exited with status 3"]
    assert run_report(_trace(error=ErrorRecord("SystemExit", "no data")), "s.py") == \
        ["no data", "s.py exited with status 1"]


def test_a_run_that_raised_before_backward_says_so_as_partial_does():
    raised = ErrorRecord("ValueError", "bad", traceback="Traceback ...\nValueError: bad\n")
    assert run_report(_trace(passes=0, error=raised), "s.py", no_backward="nothing to check") == \
        ["Traceback ...\nValueError: bad",
         "Warning: s.py raised ValueError before it called backward(): nothing to check"]
    assert run_report(_trace(passes=0, error=ErrorRecord("SystemExit", "2")), "s.py")[-1] == \
        "Warning: s.py exited with status 2 before it called backward(): showing the forward graph only"


def test_no_function_calls_hint_at_naming_the_classes_unless_they_were_named():
    nothing = _trace(calls=0, engine=EngineInfo((), ()))
    assert run_report(nothing, "s.py")[0].startswith(
        "Warning: s.py made no Function calls: no DeZero-style Function class was found; name yours")
    assert run_report(nothing, "s.py", named=True) == ["Warning: s.py made no Function calls"]


def test_calls_in_another_thread_are_the_reason_given_alone():
    elsewhere = _trace(calls=0, calls_made=0, calls_elsewhere=3, passes_elsewhere=1)
    assert other_threads(elsewhere) == "made 3 Function calls and called backward()"
    lines = run_report(elsewhere, "s.py")
    assert len(lines) == 1 and lines[0].startswith("Warning: s.py made 3 Function calls and called "
                                                   "backward() in another thread")


def test_cells_that_raised_come_first_and_a_notebook_names_the_raising_cell():
    raised = ErrorRecord("KeyError", "k", traceback='  Cell "hw.ipynb (code cell 2)", line 1\nKeyError: k')
    went_on = CellError("hw.ipynb (code cell 1)", 3, ErrorRecord("ValueError", "v"))
    lines = run_report(_trace(error=raised, cell_errors=(went_on,)), "hw.ipynb")
    assert lines[0] == "Warning: hw.ipynb (code cell 1), line 3 raised ValueError: v (went on: --allow-errors)"
    assert lines[1] == raised.traceback
    assert lines[2].startswith("Warning: hw.ipynb (code cell 2) raised: gradtrace runs the code cells in order")


def test_partial_note_and_exit_status():
    assert partial_note(_trace()) == ""
    assert partial_note(_trace(error=ErrorRecord("ZeroDivisionError", "x", step=4))) == \
        " (partial: the script raised ZeroDivisionError in backward step 4)"
    assert partial_note(_trace(error=ErrorRecord("SystemExit", "2")), "expression") == \
        " (partial: the expression exited with status 2)"
    assert [exit_status(m) for m in ("0", "-1", "oops", "\u00b3")] == ["0", "-1", "1", "1"]


def test_status_and_graph_predicates():
    stopped = _trace(error=ErrorRecord("KeyboardInterrupt", ""))
    assert interrupted(stopped) and failure_status(stopped) == 130
    assert not interrupted(_trace()) and failure_status(_trace(error=ErrorRecord("E", ""))) == 1
    bare = _trace()
    bare.calls = {0: SimpleNamespace(inputs=(), outputs=())}
    assert recorded_graph(_trace()) and not recorded_graph(bare) and not recorded_graph(_trace(calls=0))


def test_warning_line_joins_lines():
    assert warning_line("a\n  b\tc") == "Warning: a b c"


def test_what_was_not_written_and_why():
    assert nothing_drawn("s.py", ["g.svg"]) == ("nothing to draw, so g.svg was not written: s.py left no "
                                                "Function call on a graph (see above)")
    assert nothing_drawn("s.py", ["g.svg", "fr"]).startswith("nothing to draw, so neither g.svg nor fr was written")
    assert left_as_it_was("s.py", ["g.svg"]) == ("s.py was interrupted (Ctrl-C), so g.svg was left as it was; "
                                                 "to see the partial graph, write to a new file")
    assert left_as_it_was("s.py", ["g.svg", "fr"]).startswith("s.py was interrupted (Ctrl-C), so g.svg and fr were")
