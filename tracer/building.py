"""Turn a recorder's raw records into the Trace's frozen records when a trace ends."""

from __future__ import annotations

import functools

from .fnstate import NO_STATE
from .raw import (CALL_CLASS, CALL_ERROR, CALL_LINKED, CALL_GENERATION, CALL_IN_STEP, CALL_INPUT_VALUES, CALL_INPUTS,
                  CALL_OP, CALL_OUTPUTS, CALL_STATE, VAR_CREATOR, VAR_DTYPE, VAR_KIND, VAR_NAME, VAR_SHAPE,
                  VAR_VALUE, RawPass)
from .naming import attribute_paths, object_array_warnings
from .records import CallRecord, ErrorRecord, PassRecord, StepRecord, VariableRecord
from .snapshot import freeze
from .trace import Trace

__all__ = ["build_trace"]

_tuple_new = tuple.__new__  # makes a NamedTuple record without running its Python-level __new__


def _op_name(raw: tuple, classes: list, bases: tuple) -> str:
    """A call's op name: its class's, or the ``name`` an instance of the engine's Function base
    class itself was given (``Function("square", f, df)``: one class for every op)."""
    state = raw[CALL_STATE]
    if state and classes[raw[CALL_CLASS]] in bases:
        name = state.get("name")
        if type(name) is str and name.strip():
            return name
    return raw[CALL_OP]


def build_trace(recorder, trace: Trace, error: BaseException | None, namespaces=()) -> Trace:
    """Read names and fill ``trace`` with frozen records (the recorder's passes are all closed)."""
    caller_locals, recorder.caller_locals = recorder.caller_locals, None  # held no longer than needed
    if caller_locals is not None and all(n is not caller_locals for n in namespaces):
        namespaces = [*namespaces, caller_locals]
    by_data = functools.lru_cache(maxsize=1)(recorder.implicit_by_data)
    for namespace in namespaces:
        recorder.names.harvest_namespace(namespace, recorder.variables, by_data)
    recorder.object_arrays = object_array_warnings(namespaces, recorder.variables)
    live = recorder.variables.live
    script_names = recorder.names
    variables = {}
    implicit = recorder.implicit
    for vid, raw in sorted(recorder.raw_vars.items()):
        recorded_name = raw[VAR_NAME]
        obj = live(vid)
        attribute_name = getattr(obj, "name", None) if obj is not None else recorded_name
        if not isinstance(attribute_name, str) or not attribute_name:
            attribute_name = recorded_name if isinstance(recorded_name, str) and recorded_name else None
        script_name = script_names.get(vid)
        name, source = ((attribute_name, "attribute") if attribute_name
                        else (script_name, "script") if script_name else (None, None))
        variables[vid] = _tuple_new(VariableRecord, (vid, name, source, raw[VAR_KIND], raw[VAR_SHAPE],
                                                     raw[VAR_DTYPE], freeze(raw[VAR_VALUE]),
                                                     raw[VAR_CREATOR], vid in implicit))
    _tell_apart(variables, live, namespaces)
    calls = {}
    classes = recorder.classes
    bases = tuple(recorder.hooks.function_classes) if recorder.hooks is not None else ()
    for call_id, raw in sorted(recorder.raw_calls.items()):
        calls[call_id] = _tuple_new(CallRecord, (call_id, _op_name(raw, classes, bases), raw[CALL_INPUTS], raw[CALL_OUTPUTS],
                                                 call_id, raw[CALL_GENERATION], raw[CALL_IN_STEP],
                                                 tuple(map(freeze, raw[CALL_INPUT_VALUES])),
                                                 raw[CALL_ERROR]))
    trace.variables = variables
    trace.calls = calls
    trace.passes = tuple(_freeze_pass(p, calls) for p in recorder.kept)
    trace.pass_count = recorder.passes_seen
    trace.calls_made = recorder.next_call - 1
    trace.calls_without_variables = recorder.calls_without_variables
    trace.reused_calls = frozenset(recorder.reused)
    trace.called_again = _called_again(recorder)
    trace.calls_elsewhere, trace.passes_elsewhere = recorder.elsewhere
    raw_calls = recorder.raw_calls
    trace.function_types = {c: classes[raw_calls[c][CALL_CLASS]] for c in calls}
    trace.function_states = {c: raw_calls[c][CALL_STATE] or NO_STATE for c in calls}
    trace.unlinked_calls = frozenset(c for c in calls if not raw_calls[c][CALL_LINKED])
    trace.initial_grads = {p.id: {v: freeze(g) for v, g in p.initial_grads.items()}
                           for p in recorder.kept}
    trace.roots_changed = {p.id: p.root_now for p in recorder.kept if p.root_now is not None}
    # only what the trace still holds: a call forgotten by the keep policy leaves its leaf behind
    trace.leaf_changed_at = {v: c for v, c in recorder.leaf_changed_at.items()
                             if v in trace.variables and c in calls}
    trace.max_elements = recorder.max_elements
    if error is not None:
        trace.error = ErrorRecord(type(error).__name__, str(error),
                                  trace.passes[-1].error.step if trace.passes and trace.passes[-1].error else None)
    recorder.variables.clear()
    recorder.functions.clear()
    trace.complete = True
    return trace


def _called_again(recorder) -> dict[int, int]:
    """Calls made by a Function object that made a later call too -> that later call (its outputs
    still name it as their creator). Read once, at the end: no cost while recording."""
    live, by_object, found = recorder.variables.live, {}, {}
    for call_id, raw in sorted(recorder.raw_calls.items()):
        for vid in raw[CALL_OUTPUTS]:
            creator = getattr(live(vid), "creator", None)
            if creator is not None:
                earlier = by_object.get(id(creator))
                if earlier is not None and earlier[0] is creator and earlier[1] != call_id:
                    found[earlier[1]] = call_id
                by_object[id(creator)] = (creator, call_id)
                break
    return found


def _tell_apart(variables: dict, live, namespaces) -> None:
    """Leaves that share a name (the ``W`` of every Linear layer) are named by where they hang in
    the script instead (``model.l1.W``, ``model.l2.W``), when that can be found."""
    by_name: dict[str, list[int]] = {}
    for vid, record in variables.items():
        if record.name and record.creator is None:
            by_name.setdefault(record.name, []).append(vid)
    shared = [vid for vids in by_name.values() if len(vids) > 1 for vid in vids]
    if not shared or not namespaces:
        return
    wanted = {id(obj): vid for vid in shared if (obj := live(vid)) is not None}
    for vid, path in attribute_paths(namespaces, wanted).items():
        variables[vid] = variables[vid]._replace(name=path, name_source="script")


def _freeze_pass(raw: RawPass, calls: dict[int, CallRecord]) -> PassRecord:
    steps = tuple([_tuple_new(StepRecord, (s.index, s.call, tuple(map(freeze, s.grads_in)),
                                            tuple(map(freeze, s.grads_out)),
                                            tuple(map(freeze, s.accumulated)),
                                            tuple(s.inner_calls), s.error)) for s in raw.steps])
    values = {}
    for call_id in raw.calls:
        call = calls.get(call_id)
        if call is None:
            continue
        for vid, value in zip(call.inputs, call.input_values):
            if value is not None:
                values[vid] = value
    return PassRecord(raw.id, raw.kind, raw.root, dict(raw.options), raw.calls, raw.variables,
                      steps, {v: freeze(g) for v, g in raw.grads.items()}, values,
                      freeze(raw.root_grad), raw.error)
