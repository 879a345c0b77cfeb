"""Validation of a trace read from JSON: every id, type and field a document can get wrong, as ValueError."""

from __future__ import annotations

import math

import numpy as np

from .records import CallRecord, ErrorRecord, PassRecord, StepRecord, VariableRecord
from .trace import Trace

__all__ = ["checked", "dtype_kind", "MAX_ELEMENTS"]

_NONE = object()  # _unknown found every id: None itself can be the id that is wrong

MAX_ELEMENTS = 2 ** 48  # the most elements a document's array may claim (more is a damaged shape)


def checked(trace: Trace) -> Trace:
    """The trace, once its records hold together (ValueError naming the first thing that does not).

    One pass over the records: what the pictures, tables and checks look up by id must be there."""
    _check_error(trace.error, "the run's error")
    _check_cell_errors(trace)
    for v in trace.variables.values():
        _check_variable(v)
    for c in trace.calls.values():
        _check_call(trace, c)
    if len(trace.passes) > trace.pass_count or len({p.id for p in trace.passes}) != len(trace.passes):
        raise ValueError(f"it keeps {len(trace.passes)} passes of a run that made {trace.pass_count}")
    for p in trace.passes:
        _check_pass(trace, p)
    _check_leaf_changed_at(trace)
    return trace


def _check_leaf_changed_at(trace: Trace) -> None:
    """Each leaf names a variable of the document, changed by a call of it that took it as an input."""
    for vid, call_id in trace.leaf_changed_at.items():
        if vid not in trace.variables:
            raise ValueError(f"leaf_changed_at names variable {vid}, which the document does not hold")
        if _unknown((call_id,), trace.calls) is not _NONE:
            raise ValueError(f"leaf_changed_at names call {call_id!r} for variable {vid}, which the "
                             f"document does not hold")
        if vid not in trace.calls[call_id].inputs:
            raise ValueError(f"leaf_changed_at names call {call_id} for variable {vid}, which is not "
                             f"one of its inputs")


def _check_cell_errors(trace: Trace) -> None:
    """Each cell that raised has a label, a line number (or null) and an error."""
    for position, cell in enumerate(trace.cell_errors):
        what = f"cell_errors[{position}]"
        if not isinstance(cell.cell, str) or not cell.cell:
            raise ValueError(f"{what} has cell {cell.cell!r}, not a cell's label")
        if cell.line is not None and (type(cell.line) is not int or cell.line < 1):
            raise ValueError(f"{what} has line {cell.line!r}, not a line number")
        _check_error(cell.error, f"{what}'s error")


def _check_variable(v: VariableRecord) -> None:
    if v.name is not None and not isinstance(v.name, str):
        raise ValueError(f"variable {v.id} has a name that is not text")
    if v.shape is not None and not all(type(n) is int and n >= 0 for n in v.shape):
        raise ValueError(f"variable {v.id} has shape {list(v.shape)}, not whole numbers >= 0")
    if v.shape is not None and math.prod(v.shape) > MAX_ELEMENTS:
        raise ValueError(f"variable {v.id} has shape {list(v.shape)}, more elements than any array holds")
    if v.dtype is not None and dtype_kind(v.dtype) is None:
        raise ValueError(f"variable {v.id} has dtype {v.dtype!r}, which numpy does not know")
    if v.creator is not None and type(v.creator) is not int:  # its call may be gone (pruned)
        raise ValueError(f"variable {v.id} has creator {v.creator!r}, not a call id")


def _check_call(trace: Trace, c: CallRecord) -> None:
    if not isinstance(c.op, str):
        raise ValueError(f"call {c.id} has an op name that is not text")
    if c.in_step is not None and (len(c.in_step) != 2 or not all(type(n) is int for n in c.in_step)):
        raise ValueError(f"call {c.id} has in_step {list(c.in_step)}, not [pass, step]")
    if c.generation is not None and not _is_number(c.generation):  # the engine's own: any number
        raise ValueError(f"call {c.id} has generation {c.generation!r}, not a number")
    if not _text_or_none(c.error):
        raise ValueError(f"call {c.id} has error {c.error!r}, not text")
    unknown = _unknown(c.inputs + c.outputs, trace.variables)
    if unknown is not _NONE:
        raise ValueError(f"call {c.id} names variable {unknown!r}, which the document does not hold")


def _check_pass(trace: Trace, p: PassRecord) -> None:
    if not 1 <= p.id <= trace.pass_count:
        raise ValueError(f"pass {p.id} is not one of the run's {trace.pass_count} passes")
    for what, ids, table in (("call {} in its calls", p.calls, trace.calls),
                             ("variable {} in its variables", p.variables, trace.variables),
                             ("variable {} as its root", () if p.root is None else (p.root,), trace.variables)):
        unknown = _unknown(ids, table)
        if unknown is not _NONE:
            raise ValueError(f"pass {p.id} names {what.format(repr(unknown))}, which the document does "
                             f"not hold")
    _check_error(p.error, f"pass {p.id}'s error")
    for position, step in enumerate(p.steps, start=1):
        _check_step(trace, p, position, step)


def _check_step(trace: Trace, p: PassRecord, position: int, step: StepRecord) -> None:
    if step.index != position:
        raise ValueError(f"pass {p.id} has step {step.index} in position {position}")
    if step.call is not None and _unknown((step.call,), trace.calls) is not _NONE:
        raise ValueError(f"pass {p.id} step {position} names call {step.call!r}, which the document "
                         f"does not hold")
    unknown = _unknown(step.inner_calls, trace.calls)
    if unknown is not _NONE:
        raise ValueError(f"pass {p.id} step {position} names call {unknown!r} in its inner_calls, which "
                         f"the document does not hold")
    if not _text_or_none(step.error):
        raise ValueError(f"pass {p.id} step {position} has error {step.error!r}, not text")


def _check_error(error: ErrorRecord | None, what: str) -> None:
    if error is None:
        return
    if not (isinstance(error.type, str) and isinstance(error.message, str) and _text_or_none(error.traceback)):
        raise ValueError(f"{what} has a type, message or traceback that is not text")
    if error.step is not None and type(error.step) is not int:
        raise ValueError(f"{what} has step {error.step!r}, not a step number")


def _text_or_none(value) -> bool:
    return value is None or isinstance(value, str)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _unknown(ids, table: dict):
    """The first of ``ids`` that is not a whole number naming a record of ``table``, else _NONE.

    ``type(i) is int``: true and 1.0 would find record 1 in the table, and "1" would not."""
    for i in ids:
        if type(i) is not int or i not in table:
            return i
    return _NONE


def dtype_kind(name) -> str | None:
    """The numpy kind ("f") of a dtype name ("float64"), or None when numpy does not know it."""
    return _kind_of(name) if isinstance(name, str) else None


def _kind_of(name: str) -> str | None:
    try:
        return np.dtype(name).kind
    except (TypeError, ValueError):
        return None
