"""The recorder: cheap hot-path callbacks from the hooks, backward passes, the keep policy and pruning."""

from __future__ import annotations

import functools
import gc
import threading
import weakref

import numpy as np

from .fnstate import function_state
from .identity import ObjectIds
from .naming import NameBook
from .building import build_trace
from .raw import (CALL_INPUTS, CALL_LINKED, CALL_OUTPUTS, VAR_CREATOR, VAR_VALUE, RawPass, RawStep,
                  error_text, quick_capture)
from .records import ErrorRecord
from .snapshot import ArraySnapshot, capture, dtype_name, freeze
from .trace import Trace

__all__ = ["Recorder", "KEEP_CHOICES"]

KEEP_CHOICES = ("last", "first", "all", "sample")
SAMPLE_FIRST = 10  # keep="sample": the first this many passes, and the last
# Arguments and results that are plain values, never Variables (numpy arrays and scalars have
# a ``data`` attribute too: a memoryview).
_UNSEEN = object()  # no value captured yet
_NOT_VARIABLES = (int, float, complex, str, bytes, np.ndarray, np.generic)
_weakref_type = weakref.ref
_ndarray = np.ndarray
_SEQUENCES = (list, tuple)  # one constant: ``in (list, tuple)`` builds the tuple at every call
# Arguments an engine wraps into Variables itself (3 in 3 * x, a numpy batch)
_PLAIN_VALUES = (int, float, np.ndarray, np.generic)


def _passed_ids(args) -> set[int]:
    """Ids of the call's arguments and of the items of its list or tuple arguments (the book's
    step 11 calls ``Add()([x0, x1])``); keyword values are among ``args`` (the hook adds them).
    The arguments are alive while the call is recorded, so their ids are theirs."""
    ids = set()
    for arg in args:
        ids.add(id(arg))
        if type(arg) in _SEQUENCES:
            ids.update(map(id, arg))
    return ids


def _as_array(items):
    """A returned list as numpy would take it whole (None when it cannot: ragged, not numbers)."""
    try:
        return np.asarray([g if isinstance(g, _NOT_VARIABLES) else getattr(g, "data", g) for g in items])
    except (ValueError, TypeError):
        return None


def _taken_whole(returned: list, accumulated: tuple) -> bool:
    """Whether the engine took a list that backward returned as one gradient (the book's
    ``if not isinstance(gxs, tuple): gxs = (gxs,)``) rather than one per input: told by the
    inputs' ``.grad`` after the step. The first input's has the whole list's shape, or no input
    got a ``.grad`` (the engine failed on it) and no item is None."""
    first = accumulated[0] if accumulated else None
    if first is None:
        return all(a is None for a in accumulated) and all(g is not None for g in returned)
    item = next((g for g in returned if g is not None), None)
    item_shape = getattr(getattr(item, "data", item) if not isinstance(item, _NOT_VARIABLES) else item,
                         "shape", ())
    return getattr(first, "shape", None) == (len(returned), *item_shape)


def _kept_elsewhere(fn, passed) -> bool:
    """Whether a Function that keeps arrays in ``inputs`` keeps the Variables it was called with
    in another attribute (then its engine may well read them there)."""
    wanted = {id(a) for a in passed}
    for value in getattr(fn, "__dict__", {}).values():
        items = value if type(value) in _SEQUENCES else (value,)
        if any(id(item) in wanted for item in items):
            return True
    return False


def _held_as_grad(fn, listed) -> bool:
    """Whether the list handed to ``fn.backward`` is the ``.grad`` of one of its outputs: one
    gradient the engine stored as a list (an earlier ``return [gx]``), not one per output."""
    outputs = getattr(fn, "outputs", None)
    for output in outputs if type(outputs) in _SEQUENCES else (getattr(fn, "output", None),):
        if type(output) is _weakref_type or (not hasattr(output, "data") and callable(output)):
            output = output()
        if output is not None and getattr(output, "grad", None) is listed:
            return True
    return False


def _same_values(a, b) -> bool:
    """Two captures of one array hold the same values (NaN where NaN was)."""
    try:
        return bool(np.array_equal(a, b, equal_nan=True))
    except (TypeError, ValueError):  # not numbers: compare as they are
        return bool(np.array_equal(a, b))


class Recorder:
    """Receives events from the hooks and keeps what the ``keep`` policy asks for."""

    def __init__(self, keep="last", max_elements: int = 100) -> None:
        if not (keep in KEEP_CHOICES or (isinstance(keep, int) and not isinstance(keep, bool) and keep >= 1)):
            raise ValueError(f"keep must be one of {', '.join(KEEP_CHOICES)} or a pass number >= 1, got {keep!r}")
        self.keep = keep
        self.max_elements = max_elements
        self.thread_id = threading.get_ident()
        self.variables = ObjectIds()
        self.functions = ObjectIds()
        self.raw_vars: dict[int, tuple] = {}   # variable id -> fields VAR_* (see raw.py)
        self.raw_calls: dict[int, tuple] = {}  # call id -> fields CALL_*
        self.implicit: set[int] = set()  # leaves a call made itself from a non-Variable argument
        self.classes: list[type] = []          # the Function classes seen, by CALL_CLASS index
        self.class_index: dict[type, int] = {}  # class -> its position in classes
        self.next_call = 1
        self.passes_seen = 0
        self.kept: list[RawPass] = []
        self.current: RawPass | None = None
        self.step_stack: list[RawStep] = []
        self.call_stack: list = []  # Function objects whose __call__ is running (the hook pushes)
        # id(obj) -> (obj, value) of Variables first seen as a call's arguments, captured before
        # its forward ran (a forward may change its input in place: the leaf is what it received)
        self.entry_values: dict[int, tuple] = {}
        self.fanned = False  # a FanOut feeds it: the FanOut knows when the outermost call ends
        self.leaf_changed_at: dict[int, int] = {}  # leaf id -> the first call, which changed it
        self.names = NameBook()
        self.hooks = None
        self.variable_types_seen: set[type] = set()
        self.internal_error: str | None = None  # set when a bug of ours stopped the recording
        # Function calls and backward passes other threads made while this trace recorded one
        self.elsewhere = [0, 0]
        self.array_variables: dict[str, None] = {}  # Variable classes that subclass numpy.ndarray
        # Function classes whose .inputs held arrays -> whether to warn (decided at their first call:
        # not when they keep the Variables in another attribute too)
        self.array_inputs: dict[str, bool] = {}
        self.object_arrays: list[str] = []  # warnings: names bound to numpy arrays of Variables
        self.calls_without_variables = 0
        self.reused: set[int] = set()  # calls whose Function object had made one of their inputs
        self.caller_locals: dict | None = None  # locals of the function that called the last backward

    # ----- variables --------------------------------------------------------------------------

    def _new_variable(self, obj, creator: int | None, value=_UNSEEN) -> int:
        """Record a Variable object seen for the first time; returns its new id. ``value``: its
        value as captured earlier (see ``call_enter``)."""
        vid = self.variables.add(obj)
        kind = type(obj)
        if kind not in self.variable_types_seen:
            self.variable_types_seen.add(kind)
        data = getattr(obj, "data", None)
        if type(data) is np.ndarray:
            self.raw_vars[vid] = (getattr(obj, "name", None), kind.__name__, data.shape,
                                  dtype_name(data.dtype),
                                  quick_capture(data, self.max_elements) if value is _UNSEEN else value,
                                  creator)
            return vid
        shape = getattr(data, "shape", None)
        dtype = dtype_name(data.dtype) if hasattr(data, "dtype") else None
        if value is _UNSEEN:
            value = capture(data, self.max_elements)
        if shape is None and type(data) in (int, float, complex) and type(value) is np.ndarray:
            shape, dtype = (), dtype_name(value.dtype)  # a plain Python number: 0-d, as numpy keeps it
        self.raw_vars[vid] = (getattr(obj, "name", None), kind.__name__,
                              tuple(shape) if shape is not None else None, dtype, value, creator)
        return vid

    def _plain_leaf(self, value) -> int:
        """The id of a number or array passed to a call that kept no Variable of it, recorded as
        an implicit leaf. An array is known by identity (a batch passed to several calls is one
        leaf, and takes the name the script gave it); a number is a new leaf each time."""
        if type(value) is np.ndarray:
            vid = self.variables.get(value)
            if vid is not None:
                return vid
            vid = self.variables.add(value)
        else:
            vid = self.variables.reserve()
        captured = capture(value, self.max_elements)
        array = np.asarray(value) if type(value) is not np.ndarray else value
        self.raw_vars[vid] = (None, type(value).__name__, array.shape, dtype_name(array.dtype), captured, None)
        self.implicit.add(vid)
        return vid

    def implicit_by_data(self) -> dict[int, list[int]]:
        """``id(array)`` -> ids of the implicit leaves (Variables the engine wrapped) holding it
        (``x * W + x`` wraps the script's ``x`` twice)."""
        live, found = self.variables.live, {}
        for vid in sorted(self.implicit):
            data = getattr(live(vid), "data", None)
            if type(data) is np.ndarray:
                found.setdefault(id(data), []).append(vid)
        return found

    def _variable_id(self, obj) -> int:
        """Id of a Variable object, recording it (as a leaf) on first sight."""
        vid = self.variables.get(obj)
        return self._new_variable(obj, None) if vid is None else vid

    # ----- forward ----------------------------------------------------------------------------

    def call_enter(self, fn, args) -> None:  # noqa: ARG002 - fn: the FanOut's filter reads it
        """Before a forward runs: capture the Variables among its arguments not seen before, as
        they are now (recorded at ``call_exit``, after a forward that may have changed them)."""
        ref_at = self.variables._ref_at
        if len(args) == 1 and type(args[0]) in _SEQUENCES:
            args = args[0]  # f([x0, x1]), the book's step 11 style (as call_exit reads it)
        for obj in args:
            ref = ref_at.get(id(obj))
            if (ref is None or ref() is not obj) and not isinstance(obj, _NOT_VARIABLES) \
                    and hasattr(obj, "data"):
                self.entry_values[id(obj)] = (obj, quick_capture(obj.data, self.max_elements))

    def call_exit(self, fn, args, result, error: BaseException | None) -> None:
        """Record one finished (or failed) ``Function.__call__`` (the hot path: keep it lean)."""
        self.call_stack.pop()
        cls = type(fn)
        if cls not in self.class_index:
            self.class_index[cls] = len(self.classes)
            self.classes.append(cls)
            if self.hooks is not None:
                self.hooks.hook_steps_of(cls)
        current = self.current
        if current is not None and not self.step_stack and current.kind == "manual":
            self._close_pass(None)
            current = None
        call_id = self.next_call
        self.next_call = call_id + 1
        inputs = getattr(fn, "inputs", None)
        from_args = False  # the function kept no inputs (made under no_grad): read the arguments
        if inputs is None:
            single = getattr(fn, "input", None)
            if single is not None:
                inputs = (single,)
            else:  # kept under another name (self.xs), or not kept: what was passed, f([x0, x1]) too
                inputs = args[0] if len(args) == 1 and type(args[0]) in _SEQUENCES else args
                from_args = True
        elif type(inputs) in _SEQUENCES and inputs and type(inputs[0]) is _ndarray \
                and all(type(x) is _ndarray for x in inputs):
            passed_in = args[0] if len(args) == 1 and type(args[0]) in _SEQUENCES else args
            if any(not isinstance(a, _NOT_VARIABLES) and hasattr(a, "data") for a in passed_in):
                inputs, from_args = passed_in, True  # it kept their arrays (self.inputs = xs)
                if cls.__name__ not in self.array_inputs:
                    self.array_inputs[cls.__name__] = not _kept_elsewhere(fn, passed_in)
        max_elements = self.max_elements
        raw_vars = self.raw_vars
        ref_at = self.variables._ref_at
        id_at = self.variables._id_at
        var_ids = []
        leaf_values = []
        passed = None  # ids of what the caller passed, made when the first new leaf needs them
        for obj in inputs:
            ref = ref_at.get(id(obj))
            if ref is not None and ref() is obj:
                vid = id_at[id(obj)]
                if raw_vars[vid][VAR_CREATOR] is None:
                    leaf_values.append(quick_capture(obj.data, max_elements))
                else:
                    leaf_values.append(None)
                    if getattr(obj, "creator", None) is fn:  # sq(sq(x)): one object called twice
                        self.reused.add(call_id)
            elif isinstance(obj, _NOT_VARIABLES) or not hasattr(obj, "data"):
                if not from_args or not isinstance(obj, _PLAIN_VALUES):
                    continue
                vid = self._plain_leaf(obj)  # the engine wraps it, but kept no Variable of it
                leaf_values.append(raw_vars[vid][VAR_VALUE])
            else:
                entry = self.entry_values.pop(id(obj), None) if self.entry_values else None
                if entry is not None and entry[0] is obj:
                    vid = self._new_variable(obj, None, entry[1])
                    # as this forward left it (a summary is not taken twice: it cannot tell)
                    before = entry[1]
                    after = before if type(before) is ArraySnapshot else quick_capture(obj.data, max_elements)
                    if after is not before and not _same_values(before, after):
                        self.leaf_changed_at[vid] = call_id
                    leaf_values.append(after)
                else:
                    vid = self._new_variable(obj, None)
                    leaf_values.append(raw_vars[vid][VAR_VALUE])
                if passed is None:
                    passed = _passed_ids(args)
                if id(obj) not in passed:  # e.g. the 3 of 3 * x, wrapped by __call__
                    self.implicit.add(vid)
            var_ids.append(vid)
        out_ids = []
        linked = True
        if error is None:
            outputs = result if isinstance(result, (tuple, list)) else (result,)
            for obj in outputs:
                if obj is None or isinstance(obj, _NOT_VARIABLES) or not hasattr(obj, "data"):
                    if isinstance(obj, np.ndarray) and type(obj) is not np.ndarray and hasattr(obj, "creator"):
                        self.array_variables[type(obj).__qualname__] = None
                    continue
                ref = ref_at.get(id(obj))
                if ref is not None and ref() is obj:
                    vid = id_at[id(obj)]
                else:
                    vid = self._new_variable(obj, call_id)
                if getattr(obj, "creator", fn) is not fn:
                    linked = False
                out_ids.append(vid)
        if not out_ids and not var_ids:
            self.calls_without_variables += 1
        in_step = None
        if current is not None:
            # inside a step, or between steps: the engine adding a step's gradient to a .grad
            # (create_graph), which belongs to that step
            step = self.step_stack[-1] if self.step_stack else current.steps[-1] if current.steps else None
            in_step = (current.id, step.index if step is not None else 0)
            if step is not None:
                if step.inner_calls:
                    step.inner_calls.append(call_id)
                else:
                    step.inner_calls = [call_id]
        state = function_state(fn, max_elements)
        self.raw_calls[call_id] = (
            cls.__name__, tuple(var_ids), tuple(out_ids), getattr(fn, "generation", None),
            in_step, tuple(leaf_values), linked, error_text(error) if error is not None else None,
            self.class_index[cls], state or None)
        if not out_ids or not linked or (getattr(fn, "outputs", None) is None
                                         and getattr(fn, "output", None) is None):
            self.functions.assign(fn, call_id)  # steps find their call through the output otherwise
        if self.entry_values and not self.call_stack and not self.fanned:
            self.entry_values.clear()  # arguments the engine did not keep as inputs

    # ----- backward passes --------------------------------------------------------------------

    def pass_enter(self, root, options: dict, caller_frame) -> bool:
        """Called on ``Variable.backward``; True when this call opens a pass (the outermost one)."""
        current = self.current
        if current is not None:
            if current.kind == "manual":
                self._close_pass(None)
            else:
                current.depth += 1
                return False
        if caller_frame is not None:
            self.names.harvest_frame(caller_frame, self.variables,
                                     functools.lru_cache(maxsize=1)(self.implicit_by_data))
            if caller_frame.f_locals is not caller_frame.f_globals:
                # a loop inside main(): its model is a local, gone when names are read at the end
                self.caller_locals = caller_frame.f_locals
        root_id = self._variable_id(root)
        calls, variables = self._reachable(root_id)
        self.passes_seen += 1
        self.current = RawPass(self.passes_seen, "backward", root_id, root, options, calls, variables)
        self.current.initial_grads = self._grads_now(variables)
        self.current.root_now = self._changed_since_made(root_id, root)
        self.current.root_grad = capture(getattr(root, "grad", None), self.max_elements)
        return True

    def _changed_since_made(self, vid: int, obj):
        """The variable's value now, when a function made it and it no longer holds what that
        function made (``x.grad.data += gx.data`` on a gradient a create_graph pass made); else
        None. One comparison per backward pass."""
        raw = self.raw_vars.get(vid)
        if raw is None or raw[VAR_CREATOR] is None:
            return None
        now = freeze(quick_capture(getattr(obj, "data", None), self.max_elements))
        made = freeze(raw[VAR_VALUE])
        if now is None or made is None or now == made:
            return None
        if now.values is None or made.values is None:
            return None  # a summary: too little to tell
        try:
            if np.array_equal(now.to_array(), made.to_array(), equal_nan=True):
                return None  # NaN is NaN
        except (TypeError, ValueError):
            return None
        return now

    def pass_exit(self, error: BaseException | None) -> None:
        """Called when the outermost ``Variable.backward`` returns or raises."""
        current = self.current
        if current is None:
            return
        if current.depth > 0:
            current.depth -= 1
            return
        self._close_pass(error)

    def step_enter(self, fn, grads_in) -> RawStep | None:
        """Called before ``f.backward(*gys)``; returns a step token, or None when not a new step."""
        if self.step_stack:
            return None
        if len(grads_in) == 1 and type(grads_in[0]) in _SEQUENCES and not _held_as_grad(fn, grads_in[0]):
            grads_in = grads_in[0]  # backward(gys), the book's step 11 style: one per output
        current = self.current
        if current is None:
            current = self._open_manual_pass(fn)
        just_read = self._resolve_pending(current)
        call_id = self._call_of(fn)
        max_elements = self.max_elements
        if just_read:
            grads = []
            for g in grads_in:
                array = g if type(g) is np.ndarray else getattr(g, "data", g)
                seen = just_read.get(id(array))
                grads.append(seen[1] if seen is not None and seen[0] is array
                             else quick_capture(array, max_elements))
            step = RawStep(len(current.steps) + 1, call_id, fn, tuple(grads))
        else:
            step = RawStep(len(current.steps) + 1, call_id, fn,
                            tuple([quick_capture(g, max_elements) for g in grads_in]))
        if not current.steps:
            seed = self._seed_received(current, call_id, step.grads_in)
            if seed is not None:  # what the first step got: backward(grad) may set it only now
                current.root_grad = seed
            elif current.root_grad is None:
                root_object = current.root_object
                if root_object is not None:
                    current.root_grad = capture(getattr(root_object, "grad", None), max_elements)
                if current.root_grad is None and step.grads_in:
                    current.root_grad = step.grads_in[0]
        current.steps.append(step)
        self.step_stack.append(step)
        return step

    def _seed_received(self, current: RawPass, call_id: int | None, grads_in: tuple):
        """The gradient the pass's first step received for the root, when that step is the
        root's creator; else None."""
        root = self.raw_vars.get(current.root) if current.root is not None else None
        if root is None or call_id is None or root[VAR_CREATOR] != call_id:
            return None
        outputs = self.raw_calls[call_id][CALL_OUTPUTS]
        position = outputs.index(current.root) if current.root in outputs else len(grads_in)
        return grads_in[position] if position < len(grads_in) else None

    def classes_used(self, classes, seen) -> list[type]:
        """The classes of ``classes`` that something recorded is an instance of."""
        return [c for c in classes if any(issubclass(s, c) for s in seen)]

    def _call_of(self, fn) -> int | None:
        """The id of the latest recorded call of ``fn``: the creator of its first output still alive."""
        outputs = getattr(fn, "outputs", None)
        for output in outputs if outputs else (getattr(fn, "output", None),):
            if type(output) is _weakref_type or (not hasattr(output, "data") and callable(output)):
                output = output()  # a weak reference (type test first: a failing hasattr is slow)
            if output is None:
                continue  # dropped by the script (``_, h = split(x)``): another output tells
            vid = self.variables.get(output)
            if vid is not None:
                creator = self.raw_vars[vid][VAR_CREATOR]
                if creator is not None:
                    return creator
            break
        return self.functions.get(fn)

    def step_exit(self, step: RawStep, grads_out, error: BaseException | None) -> None:
        """Called when ``f.backward`` returns (or raises)."""
        self.step_stack.pop()
        if error is not None:
            step.error = error_text(error)
            return
        max_elements = self.max_elements
        if isinstance(grads_out, tuple):
            step.grads_out = tuple([quick_capture(g, max_elements) for g in grads_out])
        elif isinstance(grads_out, list):  # one gradient (the book's engines) or one per input
            step.grads_out = tuple([quick_capture(g, max_elements) for g in grads_out])
            step.returned_list = grads_out  # read whole only if the engine took it so
        else:
            step.grads_out = (quick_capture(grads_out, max_elements),)
        fn = step.fn
        inputs = getattr(fn, "inputs", None)
        if inputs is None:
            single = getattr(fn, "input", None)
            inputs = (single,) if single is not None else self._inputs_recorded(step.call)
        step.input_objects = tuple(inputs)
        step.fn = None
        self.current.pending = step

    def _inputs_recorded(self, call_id: int | None) -> tuple:
        """The input Variables of a recorded call, for an engine whose functions keep them under
        other names than ``inputs`` / ``input`` (``self.xs``)."""
        call = self.raw_calls.get(call_id) if call_id is not None else None
        if call is None:
            return ()
        live = self.variables.live
        return tuple(live(vid) for vid in call[CALL_INPUTS])

    def _open_manual_pass(self, fn) -> RawPass:
        outputs = getattr(fn, "outputs", None)
        if outputs is None:
            single = getattr(fn, "output", None)
            outputs = (single,) if single is not None else ()
        root = outputs[0] if outputs else None
        if root is not None and not hasattr(root, "data") and callable(root):
            root = root()  # a weak reference to the output
        root_id = self._variable_id(root) if root is not None else None
        calls, variables = self._reachable(root_id) if root_id is not None else ((), ())
        self.passes_seen += 1
        self.current = RawPass(self.passes_seen, "manual", root_id, root, {}, calls, variables)
        self.current.initial_grads = self._grads_now(variables)
        return self.current

    def _grads_now(self, variables) -> dict:
        """The ``.grad`` of each variable that has one (for diagnose: the grads before a pass)."""
        live, found = self.variables.live, {}
        for vid in variables:
            grad = getattr(live(vid), "grad", None)
            if grad is not None:
                found[vid] = capture(grad, self.max_elements)
        return found

    def _resolve_pending(self, current: RawPass) -> dict | None:
        """Read the ``.grad`` of the previous step's inputs, now that the engine has stored them.

        Returns {id(array): (array, captured)} for the arrays just read, so that the next step's
        incoming gradients, often the very same arrays at the very same moment, are not captured
        twice. A summary equal to the step's own returned gradient is shared, not duplicated.
        """
        step = current.pending
        if step is None:
            return None
        current.pending = None
        max_elements = self.max_elements
        accumulated = []
        just_read = {}
        returned = step.grads_out
        for position, obj in enumerate(step.input_objects):
            grad = getattr(obj, "grad", None)
            array = grad if grad is None or type(grad) is np.ndarray else getattr(grad, "data", grad)
            captured = quick_capture(array, max_elements)
            if (isinstance(captured, ArraySnapshot) and position < len(returned)
                    and captured == returned[position]):
                captured = returned[position]
            if array is not None:
                just_read[id(array)] = (array, captured)
            accumulated.append(captured)
        step.accumulated = tuple(accumulated)
        step.input_objects = ()
        if step.returned_list is not None:
            if _taken_whole(step.returned_list, step.accumulated):
                step.grads_out = (capture(_as_array(step.returned_list), max_elements),)
            step.returned_list = None
        return just_read

    def _reachable(self, root_id: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Calls and variables on the forward graph behind ``root_id``, in forward order."""
        raw_vars, raw_calls = self.raw_vars, self.raw_calls
        seen_vars = {root_id}
        seen_calls = set()
        todo = [root_id]
        while todo:
            vid = todo.pop()
            raw = raw_vars.get(vid)
            creator = raw[VAR_CREATOR] if raw is not None else None
            if creator is None or creator in seen_calls:
                continue
            call = raw_calls.get(creator)
            if call is None or (not call[CALL_LINKED] and vid != root_id):
                continue
            seen_calls.add(creator)
            # An unlinked call here is the root's own creator (check says why no step ran): its
            # inputs are kept, but not the graph behind them.
            detached = not call[CALL_LINKED]
            for vid in call[CALL_INPUTS]:
                if vid not in seen_vars:
                    seen_vars.add(vid)
                    if not detached:
                        todo.append(vid)
            seen_vars.update(call[CALL_OUTPUTS])
        return tuple(sorted(seen_calls)), tuple(sorted(seen_vars))

    def _close_pass(self, error: BaseException | None) -> None:
        current = self.current
        self.current = None
        self.step_stack.clear()
        self._resolve_pending(current)
        if current.kind == "manual" and not current.calls:
            self._graph_from_steps(current)
        if error is not None:
            failing = next((s.index for s in reversed(current.steps) if s.error), None)
            current.error = ErrorRecord(type(error).__name__, str(error), failing)
        max_elements = self.max_elements
        live = self.variables.live
        grads = {}
        for vid in current.variables:
            obj = live(vid)
            if obj is not None:
                grads[vid] = capture(getattr(obj, "grad", None), max_elements)
        current.grads = grads
        current.root_object = None
        self._keep(current)

    def _graph_from_steps(self, current: RawPass) -> None:
        """A manual pass on an engine whose calls keep no link to their outputs (the book's step
        6, before ``creator``): its graph is the calls whose backward ran, with their variables;
        its root is the first step's output."""
        raw_calls = self.raw_calls
        calls = sorted({s.call for s in current.steps if s.call in raw_calls})
        variables = set()
        for call_id in calls:
            variables.update(raw_calls[call_id][CALL_INPUTS])
            variables.update(raw_calls[call_id][CALL_OUTPUTS])
        current.calls, current.variables = tuple(calls), tuple(sorted(variables))
        first = current.steps[0].call if current.steps else None
        if current.root is None and first in raw_calls and raw_calls[first][CALL_OUTPUTS]:
            current.root = raw_calls[first][CALL_OUTPUTS][0]

    def _keep(self, finished: RawPass) -> None:
        keep = self.keep
        if keep == "all":
            self.kept.append(finished)
            return
        if keep == "sample":
            if len(self.kept) > SAMPLE_FIRST:
                self.kept[-1] = finished  # the last so far replaces the one before
            else:
                self.kept.append(finished)
        elif keep == "last" or (keep == "first" and not self.kept) or keep == finished.id:
            self.kept = [finished]
        self._prune()

    def _prune(self) -> None:
        """Forget calls and variables that no kept pass needs and no live graph can reach."""
        needed_calls: set[int] = set()
        needed_vars: set[int] = set()
        for kept in self.kept:
            needed_calls.update(kept.calls)
            needed_vars.update(kept.variables)
            for step in kept.steps:
                needed_calls.update(step.inner_calls)
        live = self.variables.live
        for call_id, call in list(self.raw_calls.items()):
            if call_id in needed_calls or (call[CALL_LINKED]
                                           and any(live(v) is not None for v in call[CALL_OUTPUTS])):
                needed_vars.update(call[CALL_INPUTS])
                needed_vars.update(call[CALL_OUTPUTS])
                continue
            del self.raw_calls[call_id]
            self.functions.drop(call_id)  # a Function object known by this call (no_grad calls)
            self.reused.discard(call_id)
        for vid in list(self.raw_vars):
            if vid not in needed_vars and live(vid) is None:
                del self.raw_vars[vid]
                self.implicit.discard(vid)
                self.variables.drop(vid)
                self.names.forget(vid)
                self.leaf_changed_at.pop(vid, None)

    # ----- the result -------------------------------------------------------------------------

    def finish(self, trace: Trace, error: BaseException | None, namespaces=()) -> Trace:
        """Close any open pass, read names, and fill ``trace`` with frozen records."""
        # Building makes a few objects per op and no reference cycles: collecting while it runs
        # would only rescan the user's whole graph again and again (a third of the build's cost).
        collecting = gc.isenabled()
        gc.disable()
        try:
            if self.current is not None:
                self.current.depth = 0
                self._close_pass(error if self.current.kind == "backward" else None)
            return build_trace(self, trace, error, namespaces)
        finally:
            if collecting:
                gc.enable()
