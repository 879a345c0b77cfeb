"""A call's Function parameters as short text (``^3``, ``axis=0``): shown by the pictures, saved in the trace JSON."""

from __future__ import annotations

from .labels import format_number

__all__ = ["op_params"]

# Function attributes shown next to the op name when the recorder kept them (trace.function_states).
_PARAMS = ("c", "axis", "axes", "keepdims", "shape", "slices", "key", "x_min", "x_max", "ratio")
_MAX_PARAMS = 24


def op_params(trace, call) -> str:
    """Short text for the simple parameters of a call's Function (``^3``, ``axis=0``), else ""."""
    state = getattr(trace, "function_states", {}).get(call.id)
    if not state:
        return getattr(trace, "param_texts", {}).get(call.id, "")  # a trace read from JSON
    parts = []
    for name in _PARAMS:
        if name not in state:
            continue
        value = state[name]
        if value is None or (name == "keepdims" and value is False):
            continue
        if name == "shape" and _input_shape(trace, call) == _as_shape(value):
            continue  # the input's own shape, kept by forward for backward (Sum): not a parameter
        text = _param_text(value)
        if text is None:
            continue
        if name == "c" and call.op == "Pow":
            parts.append(f"^{text}")
        elif name in ("slices", "key"):
            parts.append(f"[{text.strip('()').rstrip(',')}]" if text.startswith("(") else f"[{text}]")
        else:
            parts.append(f"{name}={text}")
    text = " ".join(parts)
    return text if len(text) <= _MAX_PARAMS else ""


def _input_shape(trace, call) -> tuple | None:
    record = trace.variables.get(call.inputs[0]) if call.inputs else None
    return tuple(record.shape) if record is not None and record.shape is not None else None


def _as_shape(value) -> tuple | None:
    try:
        return tuple(int(n) for n in value)
    except (TypeError, ValueError):
        return None


def _param_text(value) -> str | None:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return format_number(value, 4)
    if isinstance(value, slice):
        parts = [("" if p is None else _param_text(p)) for p in (value.start, value.stop, value.step)]
        if any(p is None for p in parts):
            return None
        return ":".join(parts[:2]) + (f":{parts[2]}" if parts[2] else "")
    if isinstance(value, (tuple, list)) and len(value) <= 4:
        items = [_param_text(v) for v in value]
        if any(i is None for i in items):
            return None
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    return None
