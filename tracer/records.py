"""Plain-data records of a traced run: variables, function calls, backward passes, steps, findings.

The records made once per op (variables, calls, steps) are named tuples: immutable and several
times cheaper to create than frozen dataclasses, which matters for traces of 100k ops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .snapshot import ArraySnapshot

__all__ = [
    "VariableRecord", "CallRecord", "StepRecord", "PassRecord", "ErrorRecord", "CellError", "EngineInfo",
    "Finding", "GRAD_STATES",
]

# What a variable's gradient looked like at the end of a pass, as `Trace.grad_state` reports it.
GRAD_STATES = (
    "value",         # .grad holds a non-zero gradient
    "zero",          # .grad holds all zeros
    "cleared",       # its .grad held a gradient during the pass but was None afterwards
    "not-computed",  # on the pass's graph, but no backward step returned a gradient for it
                     # (or a root whose backward raised before it had one)
    "not-stored",    # a backward step returned a gradient for it, whose .grad stayed None: a
                     # constant (data an op wrapped) the engine keeps none for, or a pass
                     # that raised before the engine stored it
    "not-reached",   # not on the pass's graph at all
)


class VariableRecord(NamedTuple):
    """One Variable object seen by the tracer.

    ``value`` is the data when the variable was first seen (an output: right after its function
    ran; a leaf: when first used). ``creator`` is the id of the call that produced it, or None for
    leaves. ``name_source`` says where ``name`` came from: "attribute" (the Variable's own
    ``name``), "script" (a name the script bound it to), or None when it has no name.
    ``implicit`` marks a leaf that a Function call made itself from an argument that was not a
    Variable (the ``3`` of ``3 * x``, wrapped by the engine): the user never held it.
    """

    id: int
    name: str | None
    name_source: str | None
    kind: str                      # the class name, e.g. "Variable" or "Parameter"
    shape: tuple[int, ...] | None
    dtype: str | None
    value: ArraySnapshot | None
    creator: int | None
    implicit: bool = False


class CallRecord(NamedTuple):
    """One ``Function.__call__``.

    ``index`` is the position in forward order, from 1 (equal to ``id``: both come from one counter).
    ``in_step`` is ``(pass id, step index)`` when the call ran while a backward step was computing
    gradients (or while the engine accumulated them), else None. ``input_values`` holds, for each
    input that is a leaf, its data at call time (leaves may be changed in place between passes);
    None for inputs produced by other calls. ``error`` is set when the forward raised.
    """

    id: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    index: int
    generation: int | None
    in_step: tuple[int, int] | None
    input_values: tuple[ArraySnapshot | None, ...]
    error: str | None = None


class StepRecord(NamedTuple):
    """One ``Function.backward`` run inside a backward pass, in execution order (``index`` from 1).

    ``grads_in`` are the gradients the step received, one per output of the call; ``grads_out``
    the gradients it returned, one per input (None where it returned None); ``accumulated`` each
    input's ``.grad`` as the engine left it after storing this step's gradients (None where it was
    None, or could not be observed). ``inner_calls`` are the calls made while the step ran, and
    those the engine made right after it, before the next step (adding its gradients to ``.grad``).
    """

    index: int
    call: int
    grads_in: tuple[ArraySnapshot | None, ...]
    grads_out: tuple[ArraySnapshot | None, ...]
    accumulated: tuple[ArraySnapshot | None, ...]
    inner_calls: tuple[int, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ErrorRecord:
    """An exception: its type name, message, and the step (if any) it escaped from."""

    type: str
    message: str
    step: int | None = None
    traceback: str | None = None

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True)
class CellError:
    """A notebook cell that raised in a run that went on with the next cell (``allow_errors``):
    the cell's label (``hw.ipynb (code cell 2, In [7])``), the line of the cell that was running,
    and the exception (with the script's traceback)."""

    cell: str
    line: int | None
    error: ErrorRecord

    def __str__(self) -> str:
        where = f", line {self.line}" if self.line is not None else ""
        return f"{self.cell}{where} raised {self.error}"


@dataclass(frozen=True)
class PassRecord:
    """One backward pass: ``root.backward(...)`` or a run of manual ``f.backward(...)`` calls.

    ``id`` counts every pass of the run from 1 (also those not kept). ``kind`` is "backward" or
    "manual". ``calls`` / ``variables`` are the forward graph reachable from the root when the
    pass started, in forward order. ``grads`` maps every variable of the pass that could be read
    at the end to its final ``.grad`` (None when ``.grad`` was None). ``values`` maps leaf
    variables to their data as this pass's forward saw it. ``root_grad`` is the gradient the pass
    started from.
    """

    id: int
    kind: str
    root: int | None
    options: dict
    calls: tuple[int, ...]
    variables: tuple[int, ...]
    steps: tuple[StepRecord, ...]
    grads: dict[int, ArraySnapshot | None]
    values: dict[int, ArraySnapshot]
    root_grad: ArraySnapshot | None = None
    error: ErrorRecord | None = None

    @property
    def inner_calls(self) -> tuple[int, ...]:
        """Calls made while this pass's steps ran (the gradient graph under create_graph)."""
        return tuple(c for step in self.steps for c in step.inner_calls)

    def step_of_call(self, call_id: int) -> StepRecord | None:
        """The first step that ran ``call_id``'s backward, or None."""
        for step in self.steps:
            if step.call == call_id:
                return step
        return None


@dataclass(frozen=True)
class EngineInfo:
    """Which classes were traced: qualified names of the Function and Variable classes hooked."""

    function_classes: tuple[str, ...]
    variable_classes: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    """A problem found by ``tracer.diagnose``, pointing at the node responsible.

    ``kind`` is one of "wrong-backward", "leaf-gradient", "premature-backward",
    "overwritten-gradient", "stale-gradient", "shape-mismatch", "missing-step", "repeated-step",
    "nan-inf".
    """

    kind: str
    message: str
    pass_id: int | None = None
    call: int | None = None
    variable: int | None = None
    step: int | None = None
    severity: str = "error"
    hint: str = ""
    numbers: dict = field(default_factory=dict)
