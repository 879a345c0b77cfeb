"""What special nodes show: folded constants, input positions, seed and root names."""

from __future__ import annotations

import bisect
import weakref
from dataclasses import dataclass

from .labels import format_array
from .snapshot import ArraySnapshot

__all__ = ["Constants", "constants", "constant_ids", "input_label", "role_names",
           "FOLDABLE", "COMMUTATIVE"]

# Binary ops whose scalar constant operand is written into the function's box: (x - 1) instead of
# a node "1" with its own edge. The symbol joins the operands in their real order.
FOLDABLE = {"Add": "+", "Sub": "\u2212", "Mul": "\u00d7", "Div": "/"}
# Multi-input ops whose input order does not matter: their edges get no position label.
COMMUTATIVE = frozenset({"Add", "Mul", "Maximum", "Minimum"})
_MAX_CONSTANT = 10


@dataclass(frozen=True)
class Constants:
    """How the picture draws Constant variables: ``folded`` (variable → call whose box shows it),
    ``fold_text`` (call → the text written after its op name), ``small`` (drawn as a small plain
    value node, no name or gradient)."""

    folded: dict
    fold_text: dict
    small: frozenset

    @property
    def plain(self) -> frozenset:
        """Every constant drawn without a gradient field (folded or small)."""
        return self.small | frozenset(self.folded)


def constant_ids(trace, var_ids, pass_record=None, full: bool = False) -> frozenset:
    """The Constant variables among ``var_ids`` drawn without a gradient field.

    With ``full`` (the debug theme) a constant some finding of the pass concerns keeps its full
    node, gradient included.
    """
    found = {v for v in var_ids if trace.is_constant(v) and not _data_array(trace, v)}
    if full and found:
        pass_id = pass_record.id if pass_record is not None else None
        found -= {f.variable for f in trace.findings if f.pass_id in (None, pass_id)}
    return frozenset(found)


def _data_array(trace, var_id: int) -> bool:
    """An array the script named and passed to a function as it is (a batch ``x``, targets
    ``t``): drawn as a variable, with its name and shape, though the engine wrapped it."""
    record = trace.variables.get(var_id)
    return record.value is not None and record.value.size > 1 and trace.name_of(var_id) is not None


def _short(value: ArraySnapshot | None) -> str | None:
    if value is None or value.size != 1:
        return None
    text = format_array(value, 4)
    return text if len(text) <= _MAX_CONSTANT else None


def constants(trace, calls, plain: frozenset) -> Constants:
    """Decide, per constant in ``plain``, whether its call's box shows it or a small node does."""
    folded: dict[int, int] = {}
    fold_text: dict[int, str] = {}
    uses: dict[int, int] = {}
    for call_id in calls:
        for v in trace.calls[call_id].inputs:
            if v in plain:
                uses[v] = uses.get(v, 0) + 1
    for call_id in calls:
        call = trace.calls[call_id]
        symbol = FOLDABLE.get(call.op)
        if symbol is None or len(call.inputs) != 2 or call.inputs[0] == call.inputs[1]:
            continue
        positions = [p for p, v in enumerate(call.inputs) if v in plain]
        if len(positions) != 1:
            continue
        position = positions[0]
        var_id = call.inputs[position]
        text = _short(trace.variables[var_id].value)
        if text is None or uses[var_id] != 1:
            continue
        operands = ["\u00b7", "\u00b7"]
        operands[position] = text
        folded[var_id] = call_id
        fold_text[call_id] = f"({operands[0]} {symbol} {operands[1]})"
    return Constants(folded, fold_text, frozenset(plain - set(folded)))


def input_label(op: str, drawn_inputs: int) -> bool:
    """True when the forward edges into a call of ``op`` are labelled with their input position."""
    return drawn_inputs >= 2 and op not in COMMUTATIVE


def _same(a: ArraySnapshot | None, b: ArraySnapshot | None) -> bool:
    return a is not None and b is not None and a.shape == b.shape and a.values is not None \
        and a.values == b.values


def role_names(trace, pass_record, var_ids) -> dict[int, str]:
    """Names for unnamed variables whose role is known: the seed gradient a pass started from,
    and the root of a pass (the gradient another pass computed, when it can be told)."""
    names: dict[int, str] = {}
    if pass_record is None:
        return names
    wanted = {v for v in var_ids if not trace.name_of(v)}
    if not wanted:
        return names
    kept = {p.id: p for p in trace.passes}
    seeds = _seeds(trace, kept)
    seed_pass = {v: seeds[v][1] for v in wanted if v in seeds}
    names.update((v, seeds[v][0]) for v in seed_pass)
    shared = [v for v, number in seed_pass.items() if number is not None and names[v].endswith(" (seed)")
              and sum(n == names[v] for n in names.values()) > 1]
    for v in shared:  # y.backward() in a loop of create_graph passes: every seed is gx.grad
        names[v] = f"{names[v][:-len(' (seed)')]} (seed of pass {seed_pass[v]})"
    root = pass_record.root
    if root in wanted and root not in names:
        names[root] = _root_name(trace, pass_record, kept)
    return names


_seeds_of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # trace -> (size, _seeds answer)


def _seeds(trace, kept: dict) -> dict[int, tuple[str, int | None]]:
    """Unnamed variables that are a pass's seed: id -> (role name, the pass when told by its own
    first use, else None). Once per trace (steps --pass all asks for every pass)."""
    size = (id(trace.calls), len(trace.calls), id(trace.variables), len(trace.variables), tuple(kept))
    cached = _seeds_of.get(trace)
    if cached is not None and cached[0] == size:
        return cached[1]
    # A seed is first used by the first step of its pass: its first use in the whole trace, as
    # a later pass's graph may use an earlier pass's seed (y's seed in the gradient gx = gy·cos x).
    first_use: dict[int, object] = {}
    # Variables get their ids when first seen: one first seen before a call's outputs were is
    # older than that call. (A pass's seed is new when its first step runs.)
    call_ids, tops, largest = [], [], 0  # tops[k]: the largest output id up to call_ids[k]
    for call_id in sorted(trace.calls):
        call = trace.calls[call_id]
        for v in call.inputs:
            first_use.setdefault(v, call)
        largest = max(largest, *call.outputs, 0)
        call_ids.append(call_id)
        tops.append(largest)
    found: dict[int, tuple[str, int | None]] = {}
    for v, call in first_use.items():
        record = trace.variables.get(v)
        if (record is None or trace.name_of(v) or call.in_step is None or call.in_step[1] != 1
                or record.creator is not None or record.kind == "Constant" or record.implicit):
            continue
        made_by = kept.get(call.in_step[0])
        if made_by is not None and made_by.root is not None and v < made_by.root:
            continue  # made before that pass's root, so not the seed its backward() made
        at = bisect.bisect_right(tops, v)  # the first call that made an output newer than v
        if at < len(call_ids) and call_ids[at] < call.id:  # an earlier pass's seed: its own first use not kept
            bound = (trace.calls[call_ids[at]].in_step or (call.in_step[0],))[0]
            found[v] = ("seed of pass 1" if min(bound, call.in_step[0] - 1) == 1 else "seed of an earlier pass",
                        None)
            continue
        root = trace.name_of(made_by.root) if made_by is not None and made_by.root else None
        found[v] = (f"{root}.grad (seed)" if root else f"seed of pass {call.in_step[0]}", call.in_step[0])
    _seeds_of[trace] = (size, found)
    return found


def _root_name(trace, pass_record, kept: dict) -> str:
    record = trace.variables.get(pass_record.root)
    creator = trace.calls.get(record.creator) if record and record.creator else None
    earlier = kept.get(creator.in_step[0]) if creator is not None and creator.in_step else None
    if earlier is not None and record.value is not None:
        for var_id, grad in earlier.grads.items():
            if var_id != pass_record.root and trace.name_of(var_id) and _same(grad, record.value):
                y = trace.name_of(earlier.root) if earlier.root else None
                x = trace.name_of(var_id)
                return f"\u2202{y}/\u2202{x}" if y else f"{x}.grad of pass {earlier.id}"
    return f"root of pass {pass_record.id}"
