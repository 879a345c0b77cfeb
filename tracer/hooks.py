"""Install and remove the hooks on Function / Variable classes, and recognise such classes."""

from __future__ import annotations

import builtins
import functools
import inspect
import sys
import threading
import weakref

from .errors import HookError

get_ident = threading.get_ident

__all__ = ["Hooks", "looks_like_function_base", "looks_like_variable_class", "matches_name"]

# The class watchers of the open traces, and the ``builtins.__build_class__`` their one wrapper wraps.
_watchers: list = []
_real_build_class = None

# The recorder all hooks report to; None when no trace is recording. Hooks installed by a trace
# stay harmless (pass-through) if they are ever called after it ended.
_active = None


def active_recorder():
    """The recorder of the running trace, or None."""
    return _active


def _set_active(recorder) -> None:
    global _active
    _active = recorder


def _code_names(function) -> tuple[str, ...]:
    if _is_hook(function):  # a class an outer trace hooked: read the method it wraps
        function = function.__wrapped__
    code = getattr(function, "__code__", None)
    return code.co_names if code is not None else ()


def looks_like_function_base(cls: type) -> bool:
    """A class defining ``__call__`` itself that is DeZero's Function.

    Either it has ``forward`` and ``backward`` (the book's base class), or its ``__call__`` runs
    ``forward`` and links a ``creator``, or runs ``forward`` on its input's ``data`` and keeps
    its ``input`` (a base class that leaves both to its subclasses; the book's step 6 has no
    creator yet). A Layer, whose ``__call__`` runs ``forward`` on Variables (not on their data)
    but which has no ``backward`` and links no creator, is not one.
    """
    own = cls.__dict__
    if "__call__" not in own:
        return False
    if callable(getattr(cls, "forward", None)) and callable(getattr(cls, "backward", None)):
        return True
    names = _code_names(own["__call__"])
    return "forward" in names and ("set_creator" in names or "creator" in names
                                   or ("data" in names and ("input" in names or "inputs" in names)))


def _init_names(cls: type) -> tuple[str, ...]:
    return _code_names(cls.__dict__.get("__init__"))


def looks_like_variable_class(cls: type) -> bool:
    """A class defining ``backward`` but neither ``forward`` nor ``__call__``, holding a ``grad``."""
    own = cls.__dict__
    if "backward" not in own or "forward" in own or "__call__" in own:
        return False
    if getattr(cls, "forward", None) is not None:
        return False
    return "grad" in own or "grad" in _init_names(cls) or any(
        "grad" in _init_names(base) or "grad" in base.__dict__ for base in cls.__mro__[1:-1])


def matches_name(cls: type, wanted: str) -> bool:
    """True when ``wanted`` is the class's name, qualified name, or module-qualified name."""
    module = getattr(cls, "__module__", "")
    return wanted in (cls.__name__, cls.__qualname__, f"{module}.{cls.__qualname__}",
                      f"{module}:{cls.__qualname__}")


def _owner_of(cls: type, attribute: str) -> type | None:
    for klass in cls.__mro__:
        if attribute in klass.__dict__:
            return klass
    return None


def _plain_function(owner: type, attribute: str):
    original = owner.__dict__[attribute]
    if not inspect.isfunction(original):
        raise HookError(f"{owner.__qualname__}.{attribute} is a {type(original).__name__}, not a plain "
                        f"method: gradtrace can only hook methods defined with def")
    return original


def _stop_recording(recorder, exc: Exception) -> None:
    """A bug of ours must never break the traced program: stop recording, keep what we have."""
    global _active
    if _active is recorder:
        _active = None
    for member in getattr(recorder, "members", ()):  # a FanOut: every trace it feeds stops too
        member.internal_error = member.internal_error or f"{type(exc).__name__}: {exc}"
    recorder.internal_error = f"{type(exc).__name__}: {exc}"


# gradtrace's hooks, known by identity: a marker attribute would be copied by functools.wraps
# onto a user's own wrapper, which would then be taken for ours.
_HOOKS: weakref.WeakSet = weakref.WeakSet()


def _marked(hook):
    """Register a hook as gradtrace's, so that a trace opened inside another never wraps it twice."""
    _HOOKS.add(hook)
    return hook


def _is_hook(value) -> bool:
    try:
        return value in _HOOKS
    except TypeError:  # not weak-referenceable: not one of ours
        return False


def _make_call_hook(original):
    @functools.wraps(original)
    def __call__(self, *args, **kwargs):
        recorder = _active
        if recorder is None or get_ident() != recorder.thread_id:
            if recorder is not None:
                recorder.elsewhere[0] += 1  # not recorded: said after the run
            return original(self, *args, **kwargs)
        stack = recorder.call_stack
        if stack and stack[-1] is self:
            return original(self, *args, **kwargs)  # a nested call on the same object
        stack.append(self)
        passed = args + tuple(kwargs.values()) if kwargs else args
        try:
            recorder.call_enter(self, passed)
        except Exception as ours:  # noqa: BLE001 - see _stop_recording
            _stop_recording(recorder, ours)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            try:
                recorder.call_exit(self, passed, None, exc)
            except Exception as ours:  # noqa: BLE001 - see _stop_recording
                _stop_recording(recorder, ours)
            raise
        try:
            recorder.call_exit(self, passed, result, None)
        except Exception as ours:  # noqa: BLE001 - see _stop_recording
            _stop_recording(recorder, ours)
        return result
    return _marked(__call__)


def _make_step_hook(original):
    @functools.wraps(original)
    def backward(self, *grads, **kwargs):
        recorder = _active
        if recorder is None or get_ident() != recorder.thread_id:
            return original(self, *grads, **kwargs)
        try:
            step = recorder.step_enter(self, grads)
        except Exception as ours:  # noqa: BLE001 - see _stop_recording
            _stop_recording(recorder, ours)
            step = None
        if step is None:
            return original(self, *grads, **kwargs)
        try:
            result = original(self, *grads, **kwargs)
        except BaseException as exc:
            try:
                recorder.step_exit(step, None, exc)
            except Exception as ours:  # noqa: BLE001 - see _stop_recording
                _stop_recording(recorder, ours)
            raise
        try:
            recorder.step_exit(step, result, None)
        except Exception as ours:  # noqa: BLE001 - see _stop_recording
            _stop_recording(recorder, ours)
        return result
    return _marked(backward)


def _make_pass_hook(original):
    signature = inspect.signature(original)

    @functools.wraps(original)
    def backward(self, *args, **kwargs):
        recorder = _active
        if recorder is None or get_ident() != recorder.thread_id:
            if recorder is not None:
                recorder.elsewhere[1] += 1
            return original(self, *args, **kwargs)
        options = {}
        if args or kwargs:
            try:
                bound = signature.bind(self, *args, **kwargs)
                options = {k: v for k, v in bound.arguments.items() if k != "self"}
                options = {k: v for k, v in options.items() if isinstance(v, (bool, int, float, str))}
            except TypeError:
                options = {}
        try:
            recorder.pass_enter(self, options, sys._getframe(1))
        except Exception as ours:  # noqa: BLE001 - see _stop_recording
            _stop_recording(recorder, ours)
            return original(self, *args, **kwargs)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            try:
                recorder.pass_exit(exc)
            except Exception as ours:  # noqa: BLE001 - see _stop_recording
                _stop_recording(recorder, ours)
            raise
        try:
            recorder.pass_exit(None)
        except Exception as ours:  # noqa: BLE001 - see _stop_recording
            _stop_recording(recorder, ours)
        return result
    return _marked(backward)


class Hooks:
    """The patches one trace made; ``remove()`` undoes them all, in reverse order."""

    def __init__(self) -> None:
        self._undo: list[tuple[type, str, object]] = []
        self._patched: set[tuple[type, str]] = set()
        self.function_classes: list[type] = []
        self.variable_classes: list[type] = []
        self._stepped: set[type] = set()
        self.adopted = False  # holds patches another trace made (see hand_over)
        self.replaced: list[str] = []  # methods the user replaced while hooked (kept, see remove)

    def _patch(self, owner: type, attribute: str, make_hook) -> None:
        if (owner, attribute) in self._patched:
            return
        if _is_hook(owner.__dict__.get(attribute)):
            return  # hooked by the trace this one runs inside: its hook reports to both
        original = _plain_function(owner, attribute)
        try:
            setattr(owner, attribute, make_hook(original))
        except (TypeError, AttributeError) as exc:
            raise HookError(f"cannot hook {owner.__qualname__}.{attribute}: {exc}") from exc
        self._patched.add((owner, attribute))
        self._undo.append((owner, attribute, original))

    def hook_function_class(self, cls: type) -> None:
        """Hook ``__call__`` where ``cls`` defines or inherits it."""
        owner = _owner_of(cls, "__call__")
        if owner is None or owner is object or owner is type:
            raise HookError(f"{cls.__qualname__} has no __call__: pass the Function base class "
                            f"(the class whose __call__ runs forward)")
        self._patch(owner, "__call__", _make_call_hook)
        if cls not in self.function_classes:
            self.function_classes.append(cls)

    def hook_variable_class(self, cls: type) -> None:
        """Hook ``backward`` where ``cls`` defines or inherits it. A Variable without one (the
        book's step 6, before ``backward`` moved into Variable) has nothing to hook: its passes
        are the Functions' own ``backward`` calls, recorded as manual passes."""
        owner = _owner_of(cls, "backward")
        if owner is not None:
            self._patch(owner, "backward", _make_pass_hook)
        if cls not in self.variable_classes:
            self.variable_classes.append(cls)

    def hook_steps_of(self, cls: type) -> None:
        """Hook the ``backward`` a Function subclass uses (done lazily, on its first call)."""
        if cls in self._stepped:
            return
        self._stepped.add(cls)
        owner = _owner_of(cls, "backward")
        if owner is not None and inspect.isfunction(owner.__dict__["backward"]):
            self._patch(owner, "backward", _make_step_hook)

    def hand_over(self, outer: Hooks) -> None:
        """Give these patches to the trace this one ran inside: they are undone when it ends
        (it may have come to rely on them for classes first used inside this trace). Its own
        classes stay its own: events of the patches it was given do not reach its recorder."""
        outer._undo.extend(self._undo)
        outer._patched.update(self._patched)
        outer._stepped.update(self._stepped)
        outer.adopted = outer.adopted or bool(self._undo)
        self._undo.clear()
        self._patched.clear()
        self._stepped.clear()

    def remove(self) -> None:
        """Undo every patch, newest first; the classes end exactly as they were. A method the
        user replaced while the trace ran is left as they made it (named in ``replaced``)."""
        while self._undo:
            owner, attribute, original = self._undo.pop()
            current = owner.__dict__.get(attribute)
            if current is None or current is original or _is_hook(current):
                setattr(owner, attribute, original)
            else:
                self.replaced.append(f"{owner.__qualname__}.{attribute}")
        self._patched.clear()
        self._stepped.clear()


class ClassWatcher:
    """While installed, hooks every DeZero-style class as soon as a ``class`` statement creates it."""

    def __init__(self, hooks: Hooks, function_names=(), variable_names=()) -> None:
        self._hooks = hooks
        self._function_names = tuple(function_names)
        self._variable_names = tuple(variable_names)
        self.problems: list[str] = []
        self.matched: set[str] = set()  # the given names that named a class

    def consider(self, cls) -> None:
        """Hook ``cls`` if it is (or is named as) a Function base or a Variable class."""
        if not isinstance(cls, type):
            return
        if self._function_names:
            is_function = self._named(cls, self._function_names)
        else:
            is_function = looks_like_function_base(cls)
        if self._variable_names:
            is_variable = self._named(cls, self._variable_names)
        else:
            is_variable = looks_like_variable_class(cls)
        try:
            if is_function:
                self._hooks.hook_function_class(cls)
            elif is_variable:
                self._hooks.hook_variable_class(cls)
        except HookError as exc:
            self.problems.append(str(exc))

    def _named(self, cls: type, names: tuple[str, ...]) -> bool:
        found = [name for name in names if matches_name(cls, name)]
        self.matched.update(found)
        return bool(found)

    def unmatched(self) -> list[str]:
        """A warning for each given class name that named no class the run defined or imported."""
        return [f"no class named {name!r} was defined or imported, so it was not traced: give the "
                f"class's own name (e.g. Function) or module.Class"
                for name in dict.fromkeys(self._function_names + self._variable_names)
                if name not in self.matched]

    def install(self) -> None:
        """Watch every ``class`` statement (one wrapper of ``builtins.__build_class__`` serves
        all watchers, so traces may end in any order and the original always comes back)."""
        global _real_build_class
        if not _watchers:
            original = builtins.__build_class__
            _real_build_class = original

            def __build_class__(func, name, *bases, **kwargs):
                cls = original(func, name, *bases, **kwargs)
                recorder = _active  # read once: a trace may end in another thread meanwhile
                if recorder is not None and threading.get_ident() == recorder.thread_id:
                    for watcher in list(_watchers):
                        watcher.consider(cls)
                return cls

            builtins.__build_class__ = __build_class__
        _watchers.append(self)

    def remove(self) -> None:
        """Stop watching; the last watcher to go restores ``builtins.__build_class__``."""
        global _real_build_class
        if self in _watchers:
            _watchers.remove(self)
        if not _watchers and _real_build_class is not None:
            builtins.__build_class__ = _real_build_class
            _real_build_class = None
