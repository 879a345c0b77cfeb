"""Trace ⇄ JSON, schema ``gradtrace.trace/1`` (NaN and ±Inf written as the strings "NaN", "Infinity", "-Infinity")."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import reprlib

import numpy as np

from ._version import __version__
from .errors import TraceError
from .jsoncheck import MAX_ELEMENTS, checked, dtype_kind
from .params import op_params
from .records import (CallRecord, CellError, EngineInfo, ErrorRecord, Finding, PassRecord, StepRecord,
                      VariableRecord)
from .snapshot import ArraySnapshot, freeze
from .trace import Trace

__all__ = ["SCHEMA", "SchemaError", "snapshot_to_json", "trace_to_dict", "trace_from_dict", "dumps", "loads",
           "load", "escape_surrogates"]

SCHEMA = "gradtrace.trace/1"
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class SchemaError(TraceError):
    """The JSON is not a gradtrace trace this version can read."""


def _number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _numbers(values):
    return [_number(v) for v in values]


def snapshot_to_json(snap: ArraySnapshot | None):
    """An ArraySnapshot as JSON-ready data (``{"shape", "dtype", "value"}`` or ``"summary"``)."""
    if snap is None:
        return None
    out = {"shape": list(snap.shape), "dtype": snap.dtype}
    if snap.values is not None:
        nested = snap.nested()
        out["value"] = _deep_numbers(nested)
    else:
        out["summary"] = {"head": _numbers(snap.head), "min": _number(snap.min),
                          "max": _number(snap.max), "mean": _number(snap.mean),
                          "norm": _number(snap.norm), "nan": snap.nan_count, "inf": snap.inf_count}
    return out


def _deep_numbers(value):
    if isinstance(value, list):
        return [_deep_numbers(v) for v in value]
    return _number(value)


def _error_to_json(error: ErrorRecord | None):
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "step": error.step,
            "traceback": error.traceback}


def _params_to_json(trace: Trace, call) -> dict:
    """``{"params": "^3"}`` for a call whose Function has parameters the pictures show, else {}."""
    text = op_params(trace, call)
    return {"params": text} if text else {}


def _initial_grads_to_json(trace: Trace, pass_record) -> dict:
    """``{"initial_grads": {...}}``: the non-None ``.grad`` values when the pass began, if known."""
    known = trace.initial_grads.get(pass_record.id)
    if known is None:
        return {}
    return {"initial_grads": {str(k): snapshot_to_json(g) for k, g in known.items()}}


def _leaf_changed_at_to_json(trace: Trace) -> dict:
    """``{"leaf_changed_at": {"1": 3}}``: leaves the first forward that received them changed in
    place (variable id -> that call's id), when there are any."""
    changed = trace.leaf_changed_at
    if not changed:
        return {}
    return {"leaf_changed_at": {str(v): c for v, c in sorted(changed.items())}}


def _cell_errors_to_json(trace: Trace) -> dict:
    """``{"cell_errors": [...]}``: the notebook cells that raised in a run that went on past them
    (``--allow-errors``), when there are any."""
    cells = trace.cell_errors
    if not cells:
        return {}
    return {"cell_errors": [{"cell": c.cell, "line": c.line, "error": _error_to_json(c.error)} for c in cells]}


def trace_to_dict(trace: Trace) -> dict:
    """The Trace as plain JSON-ready data (schema ``gradtrace.trace/1``)."""
    return {
        "schema": SCHEMA,
        "generator": f"gradtrace {__version__}",
        "engine": {"function_classes": list(trace.engine.function_classes),
                   "variable_classes": list(trace.engine.variable_classes)},
        "max_elements": trace.max_elements,
        "pass_count": trace.pass_count,
        "error": _error_to_json(trace.error),
        **_cell_errors_to_json(trace),
        "variables": [{"id": v.id, "name": v.name, "name_source": v.name_source, "kind": v.kind,
                       "shape": list(v.shape) if v.shape is not None else None, "dtype": v.dtype,
                       "value": snapshot_to_json(v.value), "creator": v.creator,
                       **({"implicit": True} if v.implicit else {})}
                      for v in trace.variables.values()],
        "calls": [{"id": c.id, "op": c.op, "inputs": list(c.inputs), "outputs": list(c.outputs),
                   "index": c.index, "generation": c.generation,
                   "in_step": list(c.in_step) if c.in_step else None,
                   "input_values": [snapshot_to_json(s) for s in c.input_values],
                   "error": c.error, **_params_to_json(trace, c),
                   **({"unlinked": True} if c.id in trace.unlinked_calls else {}),
                   **({"reused": True} if c.id in trace.reused_calls else {})}
                  for c in trace.calls.values()],
        "passes": [{"id": p.id, "kind": p.kind, "root": p.root, "options": p.options,
                    "calls": list(p.calls), "variables": list(p.variables),
                    "root_grad": snapshot_to_json(p.root_grad),
                    "steps": [{"index": s.index, "call": s.call,
                               "grads_in": [snapshot_to_json(g) for g in s.grads_in],
                               "grads_out": [snapshot_to_json(g) for g in s.grads_out],
                               "accumulated": [snapshot_to_json(g) for g in s.accumulated],
                               "inner_calls": list(s.inner_calls), "error": s.error}
                              for s in p.steps],
                    "grads": {str(k): snapshot_to_json(g) for k, g in p.grads.items()},
                    "values": {str(k): snapshot_to_json(g) for k, g in p.values.items()},
                    "error": _error_to_json(p.error), **_initial_grads_to_json(trace, p),
                    **({"root_changed": snapshot_to_json(trace.roots_changed[p.id])}
                       if p.id in trace.roots_changed else {})}
                   for p in trace.passes],
        **_leaf_changed_at_to_json(trace),
        "findings": [{"kind": f.kind, "message": f.message, "pass": f.pass_id, "call": f.call,
                      "variable": f.variable, "step": f.step, "severity": f.severity,
                      "hint": f.hint, "numbers": {k: _number(v) for k, v in f.numbers.items()}}
                     for f in trace.findings],
    }


_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(trace: Trace) -> str:
    """The Trace as JSON text (deterministic: the same trace gives the same bytes)."""
    text = json.dumps(trace_to_dict(trace), indent=1, ensure_ascii=False, allow_nan=False,
                      default=_numpy_scalar)
    return escape_surrogates(text) + "\n"


def _numpy_scalar(value):
    """A numpy scalar that reached the document outside a snapshot (a finding's numbers, say) as
    JSON data: a number (longdouble as float), complex as its text, as snapshots hold them."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        with np.errstate(over="ignore"):
            return _number(float(value))
    if isinstance(value, np.complexfloating):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def escape_surrogates(text: str) -> str:
    """JSON text with lone surrogates (a name made of half a character) as ``\\ud800`` escapes,
    which JSON allows and reads back, where UTF-8 cannot hold them."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _SURROGATE.search(text) else text


# ----- reading ------------------------------------------------------------------------------

def _from_number(value):
    if isinstance(value, str):
        if value in _NONFINITE:
            return _NONFINITE[value]
        raise SchemaError(f"malformed {SCHEMA} document (unexpected string {value!r} where a number "
                          f"belongs): re-export it with 'gradtrace render ... -o trace.json'")
    return value


def _flatten(value, out: list, convert=_from_number) -> None:
    if isinstance(value, list):
        for v in value:
            _flatten(v, out, convert)
    else:
        out.append(convert(value))


def _is_text(dtype: str) -> bool:
    """Data kept as its text, e.g. "(1+2j)": every dtype that is not bool, int or float
    (complex, object, str, bytes, datetime), as the snapshot stores it."""
    kind = dtype_kind(dtype)
    if kind is None:
        raise SchemaError(f"malformed {SCHEMA} document (unknown dtype {dtype!r}): re-export it with "
                          f"'gradtrace render ... -o trace.json'")
    return kind not in "biuf"


def _snapshot_from_json(data) -> ArraySnapshot | None:
    if data is None:
        return None
    shape = _snapshot_shape(data["shape"])
    dtype = data["dtype"]
    text = _is_text(dtype)
    if "value" in data:
        return _whole_snapshot(shape, dtype, text, data["value"])
    summary = data["summary"]
    element = _text if text else _element
    return ArraySnapshot(shape, dtype, None, tuple(element(v) for v in summary["head"]),
                         *_statistics(summary), *(_count(summary[k], shape) for k in ("nan", "inf")))


def _whole_snapshot(shape: tuple, dtype: str, text: bool, value) -> ArraySnapshot:
    """A snapshot that kept every element: numbers, or text ("(1+2j)") for other dtypes."""
    flat: list = []
    _flatten(value, flat, _text if text else _element)
    if not text:
        return freeze(np.array(flat, dtype=dtype).reshape(shape))
    if len(flat) != math.prod(shape):
        raise ValueError(f"a snapshot holds {len(flat)} values for shape {list(shape)}")
    if dtype_kind(dtype) in "cmM":  # read back as numbers and dates when checked: they must parse
        _parsed(flat, dtype)
    values = tuple(flat)
    return ArraySnapshot(shape, dtype, values, values[:6], None, None, None, None, 0, 0)


def _parsed(flat: list, dtype: str) -> None:
    try:
        np.array(flat, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"a snapshot holds text that is not {dtype} data ({_one_line(exc)})") from None


def _snapshot_shape(value) -> tuple:
    shape = tuple(value)
    if not all(type(n) is int and n >= 0 for n in shape) or math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(f"a snapshot has shape {value!r}, not whole numbers >= 0 of an array's size")
    return shape


def _element(value):
    """One element of numeric data: a number (or "NaN", "Infinity", "-Infinity")."""
    value = _from_number(value)
    if not isinstance(value, (int, float)):
        raise ValueError(f"a snapshot holds {value!r} where a number belongs")
    return value


def _text(value) -> str:
    """One element of data kept as text."""
    if not isinstance(value, str):
        raise ValueError(f"a snapshot holds {value!r} where the text of an element belongs")
    return value


def _statistics(summary: dict) -> list:
    """A summary's min, max, mean and norm: all None when no element was finite, else min and max
    numbers (the mean may be None: finite elements whose sum overflowed to inf - inf)."""
    statistics = [_statistic(summary[k]) for k in ("min", "max", "mean", "norm")]
    low, high, mean, norm = (None if v != v else v for v in statistics)  # a snapshot keeps NaN as None
    if (low is None) != (high is None) or (low is None and (mean is not None or norm is not None)):
        raise ValueError(f"a snapshot's summary has min, max, mean, norm {statistics}: all null, or a "
                         f"number for min and max")
    return statistics


def _statistic(value) -> float | None:
    """A summary's min, max, mean or norm: a number, or None when no element was finite."""
    value = _from_number(value)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"a snapshot's summary holds {value!r} where a number belongs")
    return value


def _count(value, shape: tuple) -> int:
    """A summary's count of NaN or Inf elements: a whole number no larger than the array."""
    if type(value) is not int or not 0 <= value <= math.prod(shape):
        raise ValueError(f"a snapshot's summary counts {value!r} NaN or Inf elements of shape {list(shape)}")
    return value


def _error_from_json(data) -> ErrorRecord | None:
    if data is None:
        return None
    return ErrorRecord(data["type"], data["message"], data.get("step"), data.get("traceback"))


def trace_from_dict(data: dict) -> Trace:
    """Rebuild a Trace from ``trace_to_dict`` output; SchemaError when it is not one."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise SchemaError(f"not a {SCHEMA} document (schema: {found!r}): give a file written by "
                          f"'gradtrace render ... -o trace.json'")
    try:
        return checked(_build(data))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
            RecursionError) as exc:
        raise SchemaError(f"malformed {SCHEMA} document ({type(exc).__name__}: {exc}): "
                          f"re-export it with 'gradtrace render ... -o trace.json'") from exc


@functools.lru_cache(maxsize=256)  # a trace holds a handful of dtypes, named on every snapshot


def _record_id(value) -> int:
    """A record's id: a whole number (not true, not "1")."""
    if type(value) is not int:
        raise ValueError(f"id {value!r} is not a whole number")
    return value


def _build(data: dict) -> Trace:
    trace = Trace()
    trace.engine = EngineInfo(tuple(data["engine"]["function_classes"]),
                              tuple(data["engine"]["variable_classes"]))
    trace.max_elements = int(data["max_elements"])
    trace.pass_count = int(data["pass_count"])
    trace.calls_made = len(data["calls"])
    trace.error = _error_from_json(data["error"])
    trace.cell_errors = _cell_errors_from_json(data.get("cell_errors", []))
    for v in data["variables"]:
        if _record_id(v["id"]) in trace.variables:
            raise ValueError(f"two variables have id {v['id']}")
        trace.variables[int(v["id"])] = VariableRecord(
            int(v["id"]), v["name"], v["name_source"], v["kind"],
            tuple(v["shape"]) if v["shape"] is not None else None, v["dtype"],
            _snapshot_from_json(v["value"]), v["creator"], bool(v.get("implicit", False)))
    for c in data["calls"]:
        if _record_id(c["id"]) in trace.calls:
            raise ValueError(f"two calls have id {c['id']}")
        trace.calls[int(c["id"])] = CallRecord(
            int(c["id"]), c["op"], tuple(c["inputs"]), tuple(c["outputs"]), int(c["index"]),
            c["generation"], tuple(c["in_step"]) if c["in_step"] else None,
            tuple(_snapshot_from_json(s) for s in c["input_values"]), c["error"])
        if c.get("params"):
            trace.param_texts[int(c["id"])] = str(c["params"])
    trace.unlinked_calls = frozenset(int(c["id"]) for c in data["calls"] if c.get("unlinked"))
    trace.reused_calls = frozenset(int(c["id"]) for c in data["calls"] if c.get("reused"))
    passes = []
    for p in data["passes"]:
        steps = tuple(StepRecord(int(s["index"]), s["call"],
                                 tuple(_snapshot_from_json(g) for g in s["grads_in"]),
                                 tuple(_snapshot_from_json(g) for g in s["grads_out"]),
                                 tuple(_snapshot_from_json(g) for g in s["accumulated"]),
                                 tuple(s["inner_calls"]), s["error"]) for s in p["steps"])
        passes.append(PassRecord(
            int(p["id"]), p["kind"], p["root"], dict(p["options"]), tuple(p["calls"]),
            tuple(p["variables"]), steps,
            {int(k): _snapshot_from_json(g) for k, g in p["grads"].items()},
            {int(k): _snapshot_from_json(g) for k, g in p["values"].items()},
            _snapshot_from_json(p["root_grad"]), _error_from_json(p["error"])))
        if "root_changed" in p:
            trace.roots_changed[int(p["id"])] = _snapshot_from_json(p["root_changed"])
        if "initial_grads" in p:
            trace.initial_grads[int(p["id"])] = {int(k): _snapshot_from_json(g)
                                                 for k, g in p["initial_grads"].items()}
    trace.passes = tuple(passes)
    trace.leaf_changed_at = _leaf_changed_at_from_json(data.get("leaf_changed_at", {}))
    trace.findings = tuple(
        Finding(f["kind"], f["message"], f["pass"], f["call"], f["variable"], f["step"],
                f["severity"], f["hint"], {k: _from_number(v) for k, v in f["numbers"].items()})
        for f in data.get("findings", []))
    trace.complete = True
    return trace


def _leaf_changed_at_from_json(data) -> dict[int, int]:
    """``leaf_changed_at`` read back: variable id (its decimal text) -> call id (checked by jsoncheck.checked)."""
    if not isinstance(data, dict):
        raise ValueError(f"leaf_changed_at is {data!r}, not an object of variable id -> call id")
    changed = {}
    for key, call_id in data.items():
        if not (isinstance(key, str) and key.isascii() and key.isdigit() and str(int(key)) == key):
            raise ValueError(f"leaf_changed_at has key {key!r}, not a variable id")
        changed[int(key)] = call_id
    return changed


def _cell_errors_from_json(data) -> tuple[CellError, ...]:
    """``cell_errors`` read back: a list of ``{"cell", "line", "error"}`` (types checked by jsoncheck.checked)."""
    if not isinstance(data, list):
        raise ValueError(f"cell_errors is {reprlib.repr(data)}, not a list of the cells that raised")
    cells = []
    for position, entry in enumerate(data):
        what = f"cell_errors[{position}]"
        _require_keys(entry, ("cell", "line", "error"), what)
        _require_keys(entry["error"], ("type", "message"), f"{what}'s error")
        cells.append(CellError(entry["cell"], entry["line"], _error_from_json(entry["error"])))
    return tuple(cells)


def _require_keys(entry, keys: tuple[str, ...], what: str) -> None:
    """ValueError naming ``what`` when ``entry`` is not an object holding every one of ``keys``."""
    if not isinstance(entry, dict):
        raise ValueError(f"{what} is {reprlib.repr(entry)}, not an object with {', '.join(keys)}")
    missing = [key for key in keys if key not in entry]
    if missing:
        raise ValueError(f"{what} has no {', '.join(missing)}")


def loads(text: str) -> Trace:
    """Parse JSON text into a Trace."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{'' if exc.msg.endswith(' at') else ' at'} line {exc.lineno}"  # "...starting at line 3"
        raise SchemaError(f"not JSON ({exc.msg}{where}): give a trace written by "
                          f"'gradtrace render ... -o trace.json'") from exc
    except RecursionError as exc:
        raise SchemaError("not a trace: its JSON is nested too deeply; give a trace written by "
                          "'gradtrace render ... -o trace.json'") from exc
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise SchemaError(f"malformed {SCHEMA} document ({_one_line(exc)}): re-export it with "
                          f"'gradtrace render ... -o trace.json'") from exc
    return trace_from_dict(data)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split(";")[0].split())


def load(path: str | os.PathLike) -> Trace:
    """Read a Trace from a JSON file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise SchemaError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{path} is not a trace (not UTF-8 text): give a trace written by "
                          f"'gradtrace render ... -o trace.json'") from exc
    return loads(text)
