"""The Trace: every record of one traced run, and the questions exporters ask of it."""

from __future__ import annotations

import numbers

from .errors import NotATraceError, TraceError
from .records import CallRecord, CellError, EngineInfo, ErrorRecord, Finding, PassRecord, VariableRecord
from .snapshot import ArraySnapshot

__all__ = ["Trace", "PassSelectionError", "require_trace"]


class PassSelectionError(TraceError):
    """The requested backward pass is not in the trace."""


class Trace:
    """A recorded run: variables, calls and backward passes (all ids count from 1).

    Filled in when the ``trace()`` block (or ``run_script``) ends; until then ``complete`` is
    False. ``passes`` holds the passes kept by the ``keep`` policy; ``pass_count`` counts every
    pass the run made. ``error`` is the exception that escaped the traced code, if any;
    ``cell_errors`` the notebook cells that raised in a run that went on past them
    (``run_script(..., allow_errors=True)``), which leave ``error`` unset: the run completed.
    """

    def __init__(self) -> None:
        self.variables: dict[int, VariableRecord] = {}
        self.calls: dict[int, CallRecord] = {}
        self.passes: tuple[PassRecord, ...] = ()
        self.pass_count: int = 0
        self.calls_made: int = 0  # Function calls the run made, also those forgotten (not kept)
        # of them, calls that took and made nothing recognised as a Variable (no .data attribute)
        self.calls_without_variables: int = 0
        # calls whose Function object had made one of their inputs (one object called twice)
        self.reused_calls: frozenset[int] = frozenset()
        self.called_again: dict[int, int] = {}  # a call -> the later call of its Function object
        # Function calls and backward() calls made in other threads: not recorded (one thread is)
        self.calls_elsewhere: int = 0
        self.passes_elsewhere: int = 0
        self.error: ErrorRecord | None = None
        self.cell_errors: tuple[CellError, ...] = ()
        self.engine: EngineInfo = EngineInfo((), ())
        self.findings: tuple[Finding, ...] = ()
        self.max_elements: int = 0
        self.complete: bool = False
        self._contribution_index: dict[int, tuple] = {}  # pass id -> (pass, {var: contributions})
        self._seen_index: dict[int, tuple] = {}  # pass id -> (pass, variables whose .grad was seen)
        self.warnings: tuple[str, ...] = ()  # classes that looked like an engine but could not be hooked
        # Not serialised; filled by the recorder for tracer.diagnose: each call's Function class
        # and its state without graph links (to re-run its forward), and each kept pass's
        # non-None .grad values when it started (pass id -> variable id -> snapshot).
        self.function_types: dict[int, type] = {}
        # Function class -> why its calls' code is not what the names now show (tracer.redefined)
        self.class_notes: dict[type, str] = {}
        self.function_states: dict[int, dict] = {}
        self.initial_grads: dict[int, dict[int, ArraySnapshot]] = {}
        # pass id -> its root's value when the pass began, when it no longer held what its
        # function made (changed in place since)
        self.roots_changed: dict[int, ArraySnapshot] = {}
        # leaf id -> the first call that received it, when that call's forward changed it in
        # place (the leaf is recorded as the call received it; the call's input as it left it)
        self.leaf_changed_at: dict[int, int] = {}
        # Calls whose outputs were not linked to them (``creator``): made under no_grad, say.
        self.unlinked_calls: frozenset[int] = frozenset()
        # Read back from JSON instead of function_states: each call's parameter text ("^3").
        self.param_texts: dict[int, str] = {}

    def __repr__(self) -> str:
        return (f"<Trace {len(self.variables)} variables, {len(self.calls)} calls, "
                f"{len(self.passes)} of {self.pass_count} passes kept"
                f"{', error ' + str(self.error) if self.error else ''}>")

    # ----- passes ---------------------------------------------------------------------------

    def select_pass(self, which="last") -> PassRecord | None:
        """A kept pass: "last" (default), "first", or a pass number (1 = the run's first pass).

        Returns None when the run made no backward pass; raises PassSelectionError for a number
        that was not kept.
        """
        if isinstance(which, str) and which.isascii() and which.isdigit():
            which = int(which)
        if isinstance(which, numbers.Integral) and not isinstance(which, bool):
            which = int(which)  # numpy integers too
        if not (which in ("last", "first", None) or (type(which) is int and which >= 1)):
            raise PassSelectionError(f"which must be 'last', 'first' or a pass number >= 1, got {which!r}")
        if not self.passes and self.pass_count == 0:
            if which in ("last", "first", None):
                return None
            raise PassSelectionError(f"pass {which} was not recorded: the run made no backward pass")
        if not self.passes:
            raise PassSelectionError(f"none of the run's {self.pass_count} backward passes was kept: record "
                                     f"it again with --keep all (keep='all')")
        if which in ("last", None):
            return self.passes[-1]
        if which == "first":
            return self.passes[0]
        for record in self.passes:
            if record.id == which:
                return record
        if which > self.pass_count:
            raise PassSelectionError(f"pass {which} does not exist: the run made {self.pass_count} "
                                     f"backward pass{'es' if self.pass_count != 1 else ''}")
        kept = ", ".join(str(p.id) for p in self.passes) or "none"
        raise PassSelectionError(
            f"pass {which} was not kept (kept: {kept} of {self.pass_count}); "
            f"record it with keep='all' or keep={which} (gradtrace: --keep all or --keep {which})")

    def graph_calls(self, pass_record: PassRecord | None) -> tuple[int, ...]:
        """The forward calls to draw for a pass (all forward calls when there is no pass)."""
        if pass_record is not None:
            return pass_record.calls
        return tuple(c.id for c in self.calls.values() if c.in_step is None)

    def graph_variables(self, pass_record: PassRecord | None) -> tuple[int, ...]:
        """The variables of the forward graph of a pass (all when there is no pass)."""
        if pass_record is not None:
            return pass_record.variables
        seen: dict[int, None] = {}
        for call_id in self.graph_calls(None):
            call = self.calls[call_id]
            for v in call.inputs + call.outputs:
                seen.setdefault(v, None)
        return tuple(sorted(seen))

    # ----- values and gradients -------------------------------------------------------------

    def value(self, var_id: int, pass_record: PassRecord | None = None) -> ArraySnapshot | None:
        """The data of a variable as the pass's forward saw it (first-seen data otherwise)."""
        if pass_record is not None and var_id in pass_record.values:
            return pass_record.values[var_id]
        record = self.variables.get(var_id)
        return record.value if record else None

    def _index(self, pass_record: PassRecord) -> tuple[frozenset, dict]:
        """(the pass's variables as a set, {variable: contributions}), built once per pass."""
        cached = self._contribution_index.get(pass_record.id)
        if cached is None or cached[0] is not pass_record:
            by_variable: dict[int, list] = {}
            for step in pass_record.steps:
                call = self.calls.get(step.call)
                if call is None:
                    continue
                for position, input_id in enumerate(call.inputs):
                    if position < len(step.grads_out):
                        by_variable.setdefault(input_id, []).append((step.index, step.grads_out[position]))
            cached = (pass_record, frozenset(pass_record.variables), by_variable)
            self._contribution_index[pass_record.id] = cached
        return cached[1], cached[2]

    def contributions(self, pass_record: PassRecord, var_id: int) -> list[tuple[int, ArraySnapshot | None]]:
        """Each gradient a step returned for ``var_id`` in this pass: (step index, gradient).

        A None in the list means the step returned None for that input (no gradient).
        """
        return list(self._index(pass_record)[1].get(var_id, ()))

    def grad_state(self, pass_record: PassRecord | None, var_id: int) -> str:
        """One of GRAD_STATES for the variable at the end of the pass."""
        if pass_record is None:
            return "not-reached"
        members, by_variable = self._index(pass_record)
        if var_id not in members:
            return "not-reached"
        grad = pass_record.grads.get(var_id)
        if grad is not None:
            return "zero" if grad.is_zero else "value"
        root = var_id == pass_record.root
        if root:  # a root without seed: backward raised first (a non-scalar root)
            received = pass_record.root_grad is not None or bool(pass_record.steps)
        else:
            received = any(grad is not None for _, grad in by_variable.get(var_id, ()))
        if not received:
            return "not-computed"
        if not root and self.is_constant(var_id):
            return "not-stored"  # data an op wrapped: the engine keeps no gradient for it
        if pass_record.error is not None and var_id not in self._grads_seen(pass_record):
            return "not-stored"  # returned by a step, but backward raised before .grad held it
        return "cleared"

    def _grads_seen(self, pass_record: PassRecord) -> frozenset:
        """The variables whose ``.grad`` was seen holding a gradient during the pass (the root's
        seed, a ``.grad`` read after a step, a gradient its creator's step received), built once
        per pass."""
        cached = self._seen_index.get(pass_record.id)
        if cached is None or cached[0] is not pass_record:
            seen = {pass_record.root} if pass_record.root_grad is not None else set()
            for step in pass_record.steps:
                call = self.calls.get(step.call)
                if call is None:
                    continue
                seen.update(v for v, g in zip(call.inputs, step.accumulated) if g is not None)
                seen.update(v for v, g in zip(call.outputs, step.grads_in) if g is not None)
            cached = (pass_record, frozenset(seen))
            self._seen_index[pass_record.id] = cached
        return cached[1]

    def final_grad(self, pass_record: PassRecord | None, var_id: int) -> ArraySnapshot | None:
        """The variable's ``.grad`` at the end of the pass, or None."""
        if pass_record is None:
            return None
        return pass_record.grads.get(var_id)

    def findings_for(self, *, call: int | None = None, variable: int | None = None,
                     pass_id: int | None = None) -> list[Finding]:
        """Findings attached to a call or a variable (optionally of one pass)."""
        return [f for f in self.findings
                if (call is None or f.call == call)
                and (variable is None or f.variable == variable)
                and (pass_id is None or f.pass_id in (None, pass_id))]

    def to_json(self) -> str:
        """The trace as JSON text, schema ``gradtrace.trace/1`` (see ``tracer.jsonio``)."""
        from .jsonio import dumps
        return dumps(self)

    def is_constant(self, var_id: int) -> bool:
        """A leaf that is a number, not a parameter: gradtrace's Constant, or one the user's engine
        wrapped (``VariableRecord.implicit``). Drawn folded; no gradient for it is no loss."""
        record = self.variables.get(var_id)
        return record is not None and record.creator is None and (record.kind == "Constant" or record.implicit)

    def name_of(self, var_id: int) -> str | None:
        """The variable's name, if it has one."""
        record = self.variables.get(var_id)
        return record.name if record else None

    # ----- pictures (tracer.dot / tracer.render, imported lazily) ----------------------------

    def to_dot(self, **options):
        """The graph as a graphviz.Digraph; options as ``tracer.dot.to_dot`` (which, theme, ...)."""
        from .dot import to_dot
        return to_dot(self, **options)

    def player(self, *, height: int = 640, **options):
        """The step-through player for Jupyter (shown inline; ``.save(path)`` writes the page).

        ``height`` is the inline frame's height in pixels; options as ``tracer.player.player_html``.
        """
        from .player import PlayerView, player_html
        return PlayerView(player_html(self, **options), height)

    def picture(self, **options):
        """The picture as a notebook output (drawn by the bundled renderer: no system Graphviz
        needed); options as ``tracer.render.render`` (which, step, theme, legend, rankdir, ...).
        A tall one scrolls in its box; ``.save(path)`` writes the SVG."""
        from .inline import PictureView
        from .render import render
        return PictureView(render(self, "svg", **options).decode("utf-8"), repr(self))

    def check(self, **options):
        """Run ``gradtrace check`` on this trace (``tracer.diagnose``, options as there): sets
        ``findings`` (the pictures then show them) and returns the report, shown as the CLI
        prints it."""
        from .diagnose import diagnose, format_report
        from .inline import CheckReport
        notes: list[str] = []
        findings = diagnose(self, notes=notes, **options)
        return CheckReport(findings, notes, format_report(findings, self, notes).rstrip("\n"))

    def _default_theme(self) -> str:
        return "debug" if self.findings else "lecture"  # after check(): show what it found

    def _repr_svg_(self):
        """Inline SVG for Jupyter (None when no renderer is available)."""
        from .render import RenderError, render
        try:
            return render(self, "svg", theme=self._default_theme()).decode("utf-8")
        except RenderError:
            return None

    def _repr_mimebundle_(self, include=None, exclude=None):
        """Jupyter display: the picture (in the debug theme once findings are attached; a tall
        one scrolls in its box), with the repr (and any render error) as text."""
        from .render import RenderError
        try:
            bundle = self.picture(theme=self._default_theme())._repr_mimebundle_()
        except RenderError as exc:
            return {"text/plain": f"{self!r}\n(no picture: {exc})"}
        bundle["text/plain"] = repr(self)
        return bundle


def require_trace(obj, what: str) -> Trace:
    """``obj`` when it is a Trace; else a TypeError saying where a Trace comes from."""
    if not isinstance(obj, Trace):
        raise NotATraceError(f"{what} needs a Trace (from `with tracer.trace() as t:`, tracer.run_script "
                        f"or tracer.load), got {type(obj).__name__}")
    return obj
