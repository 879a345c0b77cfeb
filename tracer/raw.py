"""The recorder's raw, cheap-to-make records, turned into the public records when a trace ends."""

from __future__ import annotations

import numpy as np

from .snapshot import capture

__all__ = ["VAR_NAME", "VAR_KIND", "VAR_SHAPE", "VAR_DTYPE", "VAR_VALUE", "VAR_CREATOR", "CALL_OP",
           "CALL_INPUTS", "CALL_OUTPUTS", "CALL_GENERATION", "CALL_IN_STEP", "CALL_INPUT_VALUES",
           "CALL_LINKED", "CALL_ERROR", "CALL_CLASS", "CALL_STATE", "RawStep", "RawPass",
           "quick_capture", "error_text"]


# A recorded variable and a recorded call are plain tuples, not NamedTuples: a trace holds one
# of each per op, and the garbage collector stops scanning a plain tuple once everything in it
# is atomic (ints, strings, None, numpy scalars and arrays). Their fields, by position:
#  variable: name (its ``name`` when recorded), kind (class name), shape, dtype name, value (what
#            ``quick_capture`` returned), creator (call id; None for a leaf);
#  call:     op (class name), input and output variable ids, generation, in_step ((pass, step) or
#            None), input_values (leaf values at call time, else None), linked (the outputs'
#            creator is this call), error text, class (index into ``Recorder.classes``), state
#            (``function_state``; None when it kept nothing).
VAR_NAME, VAR_KIND, VAR_SHAPE, VAR_DTYPE, VAR_VALUE, VAR_CREATOR = range(6)
(CALL_OP, CALL_INPUTS, CALL_OUTPUTS, CALL_GENERATION, CALL_IN_STEP, CALL_INPUT_VALUES, CALL_LINKED,
 CALL_ERROR, CALL_CLASS, CALL_STATE) = range(10)


class RawStep:
    __slots__ = ("index", "call", "fn", "grads_in", "grads_out", "accumulated", "inner_calls",
                 "error", "input_objects", "returned_list")

    def __init__(self, index, call, fn, grads_in):
        self.index, self.call, self.fn, self.grads_in = index, call, fn, grads_in
        self.grads_out = ()
        self.accumulated = ()
        self.inner_calls: list[int] | tuple = ()  # a list once the step makes calls
        self.error = None
        self.input_objects = ()
        self.returned_list = None  # a list backward returned, until read (Recorder._resolve_pending)


class RawPass:
    __slots__ = ("id", "kind", "root", "root_object", "options", "calls", "variables", "steps",
                 "grads", "root_grad", "error", "depth", "pending", "initial_grads", "root_now")

    def __init__(self, pass_id, kind, root, root_object, options, calls, variables):
        self.id, self.kind, self.root, self.root_object = pass_id, kind, root, root_object
        self.options, self.calls, self.variables = options, calls, variables
        self.steps: list[RawStep] = []
        self.grads: dict = {}
        self.root_grad = None
        self.error = None
        self.depth = 0
        self.pending: RawStep | None = None
        self.initial_grads: dict = {}
        self.root_now = None  # the root's value when the pass began, if it was not the value made


_FLOAT64, _FLOAT32 = np.dtype(np.float64), np.dtype(np.float32)


def quick_capture(value, max_elements: int):
    """``snapshot.capture`` with the common cases first: a 0-d native float64/float32 array (kept
    as its immutable numpy scalar, cheaper than a copy), a small ndarray (copied), a numpy float
    scalar (kept). Anything larger than ``max_elements`` is summarised, as by ``capture``."""
    kind = type(value)
    if kind is np.ndarray:
        if max_elements:
            if value.ndim == 0:
                dtype = value.dtype  # identity: a byte-swapped or object array is not one of these
                if dtype is _FLOAT64 or dtype is _FLOAT32:
                    return value[()]
            if value.size <= max_elements:
                return value.copy()
    elif (kind is np.float64 or kind is np.float32) and max_elements:
        return value
    return capture(value, max_elements)


def error_text(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
