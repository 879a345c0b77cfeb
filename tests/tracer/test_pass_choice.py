"""tracer.pass_choice: which pass is shown when not every pass was kept, and the warnings saying so."""

from types import SimpleNamespace

import pytest

from tracer.pass_choice import beyond_the_run, kept_note, missing_pass_error, saved_notes, shown_instead
from tracer.trace import PassSelectionError, Trace


def _trace(kept, made):
    """A Trace of ``made`` backward passes of which those numbered ``kept`` were kept."""
    trace = Trace()
    trace.passes = [SimpleNamespace(id=number) for number in kept]
    trace.pass_count = made
    return trace


def test_shown_instead_names_the_kept_pass_and_the_one_meant():
    assert shown_instead(_trace([2, 3], 5), "last") == (3, 5)
    assert shown_instead(_trace([2, 3], 5), "first") == (2, 1)
    assert shown_instead(_trace([1, 5], 5), "last") == (None, None)
    assert shown_instead(_trace([2, 3], 5), 2) == (None, None) and shown_instead(_trace([], 0), "last") == (None, None)


def test_a_keep_beyond_the_run_is_an_error_naming_the_choices():
    assert beyond_the_run(_trace([3], 3), 4) and not beyond_the_run(_trace([3], 3), 3)
    assert not beyond_the_run(_trace([], 0), 4) and not beyond_the_run(_trace([3], 3), "all")
    error = missing_pass_error(_trace([3], 3), "s.py", 4, all_allowed=True)
    assert isinstance(error, PassSelectionError)
    assert str(error) == "pass 4 does not exist: s.py made 3 backward passes (choose 1..3, first, last, all)"
    assert str(missing_pass_error(_trace([1], 1), "s.py", 2)) == \
        "pass 2 does not exist: s.py made 1 backward pass (choose 1, first, last)"


def test_kept_note_only_when_keep_left_out_the_pass_meant():
    assert kept_note(_trace([1], 4), "last", "first") == (
        "showing pass 1, the last pass kept: --keep first did not keep pass 4 of the run's 4 "
        "(use --keep all or --keep 4)")
    assert kept_note(_trace([4], 4), "last", "last") is None
    assert kept_note(_trace([1], 4), "first", "first") is None


def test_saved_notes_refuse_a_pass_that_was_made_but_not_saved():
    with pytest.raises(PassSelectionError, match=r"pass 2 is not in runs/t\.json \(it holds passes 1, 3 of 3\): "
                                                 r"run the script again with --keep all \(or --keep 2\) -o t\.json"):
        saved_notes(_trace([1, 3], 3), "runs/t.json", 2)
    assert saved_notes(_trace([1, 3], 3), "t.json", 3) == []
    assert saved_notes(_trace([2], 3), "t.json", "last") == [
        "showing pass 2, the last pass t.json holds (the run made 3; save it with --keep all to have them all)"]
