"""check's notes on what it did not look at, and its JSON document (schema gradtrace.check/1)."""

from __future__ import annotations

import json

from .numlists import ranges

__all__ = ["checked_passes", "unchecked_notes", "option_wording", "document"]


def checked_passes(trace, which, every_kept: bool) -> list[int]:
    """The numbers of the passes checked: every kept pass, or the one ``which`` names (none when
    the run made no backward pass)."""
    if every_kept:
        return [p.id for p in trace.passes]
    return [trace.select_pass(which).id] if trace.passes else []


def unchecked_notes(trace, checked: list[int], from_saved_file: bool = False) -> list[str]:
    """Notes on what was not checked: the run's other backward passes (``from_saved_file``: the
    trace was read from a file, which may not hold them), a run without backward(), and the rest
    of each notebook cell that --allow-errors went past."""
    notes = []
    if checked and len(checked) < trace.pass_count:
        saved = from_saved_file and len(trace.passes) < trace.pass_count
        fix = ("they are not in this file: save the run again with --keep all" if saved else
               "--pass all checks every pass (a create_graph pass's bugs show in it, not in the last)")
        which_checked = f"pass {checked[0]} was" if len(checked) == 1 else f"passes {ranges(checked)} were"
        notes.append(f"the run's other backward passes (it made {trace.pass_count}; {which_checked} "
                     f"checked): {fix}")
    if trace.pass_count == 0:
        notes.append("backward passes: the script never called backward(), so only its forward values "
                     "were checked")
    for cell_error in trace.cell_errors:  # what the rest of that cell would have done was not run
        at = f" at line {cell_error.line}" if cell_error.line is not None else ""
        notes.append(f"the rest of {cell_error.cell}: it stopped{at} with {cell_error.error.type}, and the "
                     f"run went on with the next cell (--allow-errors)")
    return notes


def option_wording(notes: list[str]) -> list[str]:
    """The notes with the API's argument names as the command line's options (--max-elements)."""
    return [note.replace("raise max_elements", "raise --max-elements") for note in notes]


def document(findings: list, notes: list, trace) -> str:
    """``check --json``'s document (schema gradtrace.check/1): findings as JSON-ready dicts, the
    notes, and the error the run raised (``trace`` may be None: nothing ran)."""
    return json.dumps({"schema": "gradtrace.check/1", "findings": findings, "notes": notes,
                       "error": str(trace.error) if trace is not None and trace.error else None},
                      indent=1, ensure_ascii=False)
