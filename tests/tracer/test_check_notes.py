"""tracer.check_notes: what check did not look at, and its JSON document."""

import json
from types import SimpleNamespace

from tracer.check_notes import checked_passes, document, option_wording, unchecked_notes
from tracer.records import CellError, ErrorRecord
from tracer.trace import Trace


def _trace(kept, made, cell_errors=(), error=None):
    trace = Trace()
    trace.passes = [SimpleNamespace(id=number) for number in kept]
    trace.pass_count, trace.cell_errors, trace.error = made, cell_errors, error
    return trace


def test_checked_passes_are_every_kept_one_or_the_one_asked_for():
    trace = _trace([1, 2, 3, 7], 7)
    assert checked_passes(trace, "last", every_kept=True) == [1, 2, 3, 7]
    assert checked_passes(trace, "first", every_kept=False) == [1]
    assert checked_passes(_trace([], 0), "last", every_kept=False) == []


def test_the_other_passes_are_named_with_the_fix():
    assert unchecked_notes(_trace([1, 2, 3, 7], 7), [1, 2, 3, 7]) == [
        "the run's other backward passes (it made 7; passes 1\u20133, 7 were checked): --pass all checks "
        "every pass (a create_graph pass's bugs show in it, not in the last)"]
    assert unchecked_notes(_trace([7], 7), [7], from_saved_file=True) == [
        "the run's other backward passes (it made 7; pass 7 was checked): they are not in this file: save "
        "the run again with --keep all"]
    assert unchecked_notes(_trace([1, 2], 2), [1, 2]) == []


def test_no_backward_and_cells_gone_past_are_noted():
    went_on = CellError("hw.ipynb (code cell 3)", 4, ErrorRecord("KeyError", "k"))
    assert unchecked_notes(_trace([], 0, cell_errors=(went_on,)), []) == [
        "backward passes: the script never called backward(), so only its forward values were checked",
        "the rest of hw.ipynb (code cell 3): it stopped at line 4 with KeyError, and the run went on with "
        "the next cell (--allow-errors)"]


def test_option_wording_and_the_document():
    assert option_wording(["raise max_elements to check it", "other"]) == \
        ["raise --max-elements to check it", "other"]
    made = json.loads(document([{"kind": "nan-inf"}], ["a note"], _trace([1], 1, error=ErrorRecord("E", "m"))))
    assert made == {"schema": "gradtrace.check/1", "findings": [{"kind": "nan-inf"}], "notes": ["a note"],
                    "error": "E: m"}
    assert json.loads(document([], [], None))["error"] is None
