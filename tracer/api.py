"""``trace()``: record a run of a DeZero-style engine inside a ``with`` block."""

from __future__ import annotations

import sys
import threading
import warnings as _warnings
from collections.abc import Iterable
from pathlib import Path

from . import hooks as _hooks
from .discovery import engine_classes_in
from .errors import EngineNotFoundError, HookError, TraceActiveError, TraceWarning
from .fanout import FanOut
from .offgraph import leaf_root_reason
from .recorder import Recorder
from .redefined import redefinitions
from .records import EngineInfo
from .snapshot import DEFAULT_MAX_ELEMENTS
from .trace import Trace

__all__ = ["trace"]

_start_lock = threading.Lock()
_open_traces: list = []  # the traces recording now, outermost first (all in one thread)
_ENGINE_DIR = Path(__file__).resolve().parent.parent / "engine"


def _as_classes(value) -> list[type]:
    if value is None:
        return []
    classes = [value] if isinstance(value, type) else \
        list(value) if isinstance(value, Iterable) and not isinstance(value, (str, bytes)) else None
    if classes is None:
        raise HookError(f"expected a class, got {value!r}: pass the class itself, e.g. function_cls=Function")
    for cls in classes:
        if not isinstance(cls, type):
            raise HookError(f"expected classes, got {cls!r}: pass the class itself, e.g. function_cls=Function")
        if cls.__module__ == "builtins":
            raise HookError(f"{cls.__name__} is a built-in type, not an engine's class: pass your own "
                            f"Function / Variable classes, e.g. variable_cls=Variable")
    return classes


def _all_subclasses(cls: type) -> list[type]:
    found, todo = [], [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def _own_engine_module():
    """Our ``engine`` package if it is already imported (never imports it)."""
    module = sys.modules.get("engine")
    location = getattr(module, "__file__", None)
    if location and Path(location).resolve().parent == _ENGINE_DIR:
        return module
    return None


def _default_engine_classes() -> tuple[list[type], list[type]]:
    """gradtrace's engine classes; none when the ``engine`` that imports is a user's module
    without them (a student's own engine.py in the working directory)."""
    try:
        import engine  # the project's own engine is the default target
    except ImportError as exc:
        raise EngineNotFoundError(
            f"cannot import gradtrace's engine ({exc}): reinstall gradtrace, or pass "
            f"function_cls=/variable_cls= to trace your own classes") from exc
    function, variable = getattr(engine, "Function", None), getattr(engine, "Variable", None)
    if not (isinstance(function, type) and isinstance(variable, type)):
        return [], []
    return [function], [variable]


def _activate() -> None:
    """Point the hooks at the recorders of the open traces: one, or a FanOut to all of them (a
    trace opened inside another records its block while the outer one goes on). Traces may end
    in any order; a recorder stopped by an internal error gets nothing more."""
    recorders = [t._recorder for t in _open_traces if t._recorder.internal_error is None]
    if len(recorders) == 1 and not recorders[0].hooks.adopted:
        recorders[0].fanned = False
        _hooks._set_active(recorders[0])  # the usual case: no filter on the hot path
    else:
        _hooks._set_active(FanOut(*recorders) if recorders else None)


# The recursion limit before the first open trace doubled it, and the limit it set
_recursion_limits: list[int] = []


_DEEPEN_UP_TO = 2000  # a limit the user raised further is theirs: doubling it may overflow the C stack


def _deepen_recursion() -> None:
    """Double Python's default recursion limit while traces are open: a hook adds one frame to
    each level of a recursive ``backward`` (the book's step 7), which would fail at half the
    depth it reaches untraced."""
    limit = sys.getrecursionlimit()
    if limit > _DEEPEN_UP_TO:
        return
    _recursion_limits[:] = [limit, 2 * limit]
    sys.setrecursionlimit(2 * limit)


def _restore_recursion() -> None:
    """Put the limit back, unless the traced program set one of its own meanwhile."""
    if _recursion_limits and sys.getrecursionlimit() == _recursion_limits[1]:
        sys.setrecursionlimit(_recursion_limits[0])
    _recursion_limits.clear()


def _class_qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class trace:  # noqa: N801 - used like a function: ``with trace() as t``
    """Record every Function call and backward step inside a ``with`` block.

    ``t.engine`` names the hooked classes that the run actually used.

    ``with trace() as t:`` traces gradtrace's own engine and the DeZero-style classes that the
    code around the ``with`` uses (its namespace's classes and the classes of its objects: a
    notebook's own ``Function`` and ``Variable`` need no arguments). Pass ``function_cls`` /
    ``variable_cls`` (a class or a list of classes) to trace exactly those classes, or
    ``auto=True`` to also hook every such class that is defined (or was imported from
    ``search_dirs``) while tracing. ``find_in_caller=False`` turns the namespace search off
    (as do ``function_names`` / ``variable_names``). Warnings (nothing recorded, a class that
    could not be hooked) are in ``t.warnings`` and, unless ``warn=False``, also issued as
    ``TraceWarning``.
    ``keep`` chooses which backward passes to keep: "last" (default), "first", "all", a pass
    number, or "sample" (the first 10 and the last: what ``gradtrace check`` looks at). Arrays with at most ``max_elements`` elements are copied whole, larger ones
    summarised. The Trace is filled in when the block ends, also when it raises (the exception
    is stored in ``t.error`` and propagates).
    """

    def __init__(self, function_cls=None, variable_cls=None, *, auto: bool = False,
                 keep="last", max_elements: int = DEFAULT_MAX_ELEMENTS,
                 function_names: Iterable[str] = (), variable_names: Iterable[str] = (),
                 search_dirs: Iterable[str | Path] = (), find_in_caller: bool = True,
                 warn: bool = True) -> None:
        if isinstance(max_elements, bool) or not isinstance(max_elements, int) or max_elements < 0:
            raise ValueError(f"max_elements must be a whole number >= 0, got {max_elements!r}")
        self._function_classes = _as_classes(function_cls)
        self._variable_classes = _as_classes(variable_cls)
        self._auto = auto
        self._function_names = tuple(function_names)
        self._variable_names = tuple(variable_names)
        self._search_dirs = [Path(d).resolve() for d in search_dirs]
        self._recorder = Recorder(keep, max_elements)
        self._hooks = _hooks.Hooks()
        self._watcher: _hooks.ClassWatcher | None = None
        self._frame = None
        self._namespaces: list[dict] = []
        self._explicit = bool(self._function_classes or self._variable_classes)
        self._find_in_caller = (find_in_caller and not self._explicit and not self._function_names
                                and not self._variable_names)
        self._problems: list[str] = []
        self._warn = warn
        self._entered = False
        self.trace = Trace()

    def add_namespace(self, namespace: dict) -> None:
        """Also read variable names from ``namespace`` when the trace ends."""
        self._namespaces.append(namespace)

    def _install(self, caller) -> None:
        function_classes, variable_classes = self._function_classes, self._variable_classes
        if not self._auto and not self._explicit:
            function_classes, variable_classes = _default_engine_classes()
        if self._find_in_caller and caller is not None:
            self._hook_found(caller)
        for cls in function_classes:
            self._hook_function_and_steps(cls)
        for cls in variable_classes:
            self._hooks.hook_variable_class(cls)
        if self._auto:
            self._watcher = _hooks.ClassWatcher(self._hooks, self._function_names, self._variable_names)
            for module in self._modules_already_imported():
                for value in list(vars(module).values()):
                    if isinstance(value, type) and value.__module__ == module.__name__:
                        self._watcher.consider(value)
            self._watcher.install()

    def _hook_found(self, caller) -> None:
        """Hook the engine classes the caller's namespace uses; one that cannot be hooked is a warning."""
        namespaces = [caller.f_globals]
        if caller.f_locals is not caller.f_globals:
            namespaces.append(caller.f_locals)
        found_functions, found_variables = engine_classes_in(*namespaces)
        for cls, hook in [*((c, self._hook_function_and_steps) for c in found_functions),
                          *((c, self._hooks.hook_variable_class) for c in found_variables)]:
            try:
                hook(cls)
            except HookError as exc:
                self._problems.append(str(exc))

    def _hook_function_and_steps(self, cls: type) -> None:
        self._hooks.hook_function_class(cls)
        for sub in [cls, *_all_subclasses(cls)]:
            self._hooks.hook_steps_of(sub)

    def _nothing_recorded(self) -> str:
        """The warning for a block that recorded no Function call, naming the likely fix."""
        if self._hooks.function_classes and any(p.steps for p in self.trace.passes):
            return ("backward() ran on a graph built before the with block, so none of its Function "
                    "calls were recorded: put the forward computation inside the with block too")
        reason = leaf_root_reason(self.trace) if self.trace.calls_made else None
        if reason:  # the calls were made, just not on the graph of any pass
            made = self.trace.calls_made
            calls = "the Function call made" if made == 1 else f"the {made} Function calls made"
            return f"nothing was kept of {calls} inside the with block: {reason}"
        hooked = ", ".join(dict.fromkeys(map(_class_qualname, self._hooks.function_classes))) or "none"
        ours = _own_engine_module()
        theirs = [c for c in self._hooks.function_classes
                  if ours is None or c.__module__.partition(".")[0] != ours.__name__]
        if theirs:  # the user's engine was hooked: the calls were made elsewhere
            return (f"nothing was recorded: no hooked Function was called inside the with block "
                    f"(hooked: {hooked}); make the forward computation's calls inside the block")
        return (f"nothing was recorded: no hooked Function was called inside the with block "
                f"(hooked: {hooked}); to trace your own engine pass "
                f"function_cls=YourFunction, variable_cls=YourVariable")

    def _modules_already_imported(self) -> list:
        """Our engine's modules (if imported) and modules imported from ``search_dirs``."""
        modules = []
        if _own_engine_module() is not None:
            modules += [m for name, m in sorted(sys.modules.items())
                        if name == "engine" or name.startswith("engine.")]
        if self._search_dirs:
            for module in list(sys.modules.values()):
                location = getattr(module, "__file__", None)
                if not location or module in modules:
                    continue
                path = Path(location).resolve()
                if any(d == path.parent or d in path.parents for d in self._search_dirs):
                    modules.append(module)
        return modules

    def __enter__(self) -> Trace:
        with _start_lock:
            if self in _open_traces:
                raise TraceActiveError("this trace is already recording: a trace() records one with "
                                       "block; make a new one for another block")
            if self._entered:  # its Trace, which the first block returned, must not change
                raise TraceActiveError("this trace() has already recorded a with block: a trace() "
                                       "records one block; make a new one (tracer.trace()) for this one")
            if any(t._recorder.thread_id != threading.get_ident() for t in _open_traces):
                raise TraceActiveError("another thread is recording a trace: concurrent traces are "
                                       "not supported; trace in one thread at a time")
            caller = sys._getframe(1)
            try:
                self._install(caller)
            except BaseException:
                self._hooks.remove()
                raise
            self._recorder.hooks = self._hooks
            self._recorder.thread_id = threading.get_ident()  # the thread of the block, not of trace()
            self._entered = True
            if not _open_traces:
                _deepen_recursion()
            _open_traces.append(self)
            _activate()
        # names are read from the block's frame when the trace ends; run_script's own frame holds
        # gradtrace's locals (`namespace`: the script's globals), which must not name anything
        ours = caller.f_globals.get("__name__", "").partition(".")[0] == __name__.partition(".")[0]
        self._frame = None if ours else caller
        return self.trace

    def __exit__(self, exc_type, exc, tb) -> bool:
        with _start_lock:
            position = _open_traces.index(self) if self in _open_traces else len(_open_traces)
            if self in _open_traces:
                _open_traces.remove(self)
            # The hooks go to the trace this one ran inside (or, if that ended first, to the
            # earliest one opened inside this one), which removes them when it ends.
            heir = (_open_traces[position - 1] if position else _open_traces[0]) if _open_traces else None
            try:
                if self._watcher is not None:
                    self._watcher.remove()
            finally:
                try:
                    if heir is not None:  # a trace still open may rely on these hooks: it removes them
                        self._hooks.hand_over(heir._hooks)
                    else:
                        self._hooks.remove()
                finally:
                    _activate()  # after the hand-over: a trace holding others' hooks gets a filter
                    if not _open_traces:
                        _restore_recursion()
        namespaces = list(self._namespaces)
        if self._frame is not None:
            namespaces.append(self._frame.f_locals)
            self._frame = None
        recorder = self._recorder
        try:
            recorder.finish(self.trace, exc, namespaces)
        except Exception as ours:  # noqa: BLE001 - a bug of ours must not replace the user's outcome
            recorder.internal_error = recorder.internal_error or f"{type(ours).__name__}: {ours}"
            self.trace.complete = True
        used_functions = recorder.classes_used(self._hooks.function_classes, recorder.classes)
        used_variables = recorder.classes_used(self._hooks.variable_classes, recorder.variable_types_seen)
        # dict.fromkeys: a notebook cell run again leaves two classes of the same name
        self.trace.engine = EngineInfo(tuple(dict.fromkeys(map(_class_qualname, used_functions))),
                                       tuple(dict.fromkeys(map(_class_qualname, used_variables))))
        warnings = self._problems + (list(self._watcher.problems) + self._watcher.unmatched()
                                     if self._watcher else [])
        if not recorder.internal_error:
            redefined = redefinitions(self.trace.function_types, namespaces)
            self.trace.class_notes = redefined.notes
            warnings += redefined.warnings
        if self._hooks.replaced:
            names = ", ".join(self._hooks.replaced)
            warnings.insert(0, f"{names} was replaced while the trace recorded: your version is kept, and "
                               f"calls through it were recorded only if it calls the method it replaced")
        if not self.trace.calls and exc is None and not self._auto and not recorder.internal_error \
                and not self._hooks.replaced:  # then the replacement is why
            warnings.append(self._nothing_recorded())
        held = list(recorder.variables.held)
        if held and self.trace.pass_count > 1:
            names = ", ".join(held)
            warnings.append(f"{names} objects allow no weak reference (__slots__ without '__weakref__'), so "
                            f"the trace kept every one alive until it ended: memory grew with each pass "
                            f"whatever keep= said; add '__weakref__' to the __slots__ of {names}")
        warnings += recorder.object_arrays
        warned = [name for name, warn in recorder.array_inputs.items() if warn]
        if warned:
            names = ", ".join(warned)
            they = "it was" if len(warned) == 1 else "they were"
            warnings.append(f"{names} kept numpy arrays in .inputs, not the Variables {they} called with, "
                            f"so backward cannot reach those Variables (their .grad, their creator): keep "
                            f"the Variables (self.inputs = inputs) and read their arrays with x.data; "
                            f"gradtrace recorded the Variables passed instead")
        for name in recorder.array_variables:
            warnings.append(f"{name} subclasses numpy.ndarray, so its objects were taken for plain arrays "
                            f"and no variable was recorded: gradtrace records Variables that keep their "
                            f"array in .data (class {name}: with self.data = data)")
        if recorder.internal_error:
            warnings.append(f"gradtrace stopped recording after an internal error ({recorder.internal_error}); "
                            f"the trace holds what was recorded before it — please report this")
        self.trace.warnings = tuple(warnings)
        if self._warn:  # a notebook shows Python warnings; t.warnings alone would go unseen
            for warning in warnings:
                _warnings.warn(warning, TraceWarning, stacklevel=2)
        return False
