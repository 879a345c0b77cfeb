"""Function classes that a later definition replaced (a notebook cell run again): who used the old one."""

from __future__ import annotations

import inspect
from pathlib import Path

from .numlists import ranges

__all__ = ["Redefinitions", "redefinitions"]


class Redefinitions:
    """What a trace's calls used of classes whose name now names another class.

    ``notes``: op class -> a sentence for the findings at its calls; ``warnings``: sentences for
    the trace (a subclass of an earlier base class, or two definitions of one op in one trace).
    """

    def __init__(self) -> None:
        self.notes: dict[type, str] = {}
        self.warnings: list[str] = []


def _where(cls: type) -> str | None:
    """``nb.ipynb (cell 4), line 2`` or ``train.py, line 10``: where the class's body is."""
    for value in vars(cls).values():
        if callable(value):
            try:
                value = inspect.unwrap(value)  # a trace's hook on it: where the method is
            except ValueError:  # a cycle of __wrapped__
                continue
        code = getattr(value, "__code__", None)
        if code is not None:
            return f"{Path(code.co_filename).name}, line {code.co_firstlineno}"
    return None


def _newer(cls: type, namespaces) -> type | None:
    """The class that ``cls``'s name names now in its module's namespace, when that is another
    class of the same qualified name (the code defining it ran again)."""
    if cls.__qualname__ != cls.__name__:
        return None  # nested or local: not a name the module binds
    for namespace in namespaces:
        if namespace.get("__name__") != cls.__module__:
            continue
        now = namespace.get(cls.__name__)
        if isinstance(now, type) and now is not cls and now.__qualname__ == cls.__qualname__ \
                and now.__module__ == cls.__module__:  # not a class of that name imported from elsewhere
            return now
    return None


def _defined(cls: type, subject: bool = False) -> str:
    """Where ``cls`` was defined, to follow its name (" in hw.ipynb (code cell 2, In [7]), line 3"),
    or between commas when the name is a sentence's subject; "" when unknown. Not in parentheses:
    a notebook cell's label has its own."""
    where = _where(cls)
    if not where:
        return ""
    return f", defined in {where}," if subject else f" in {where}"


def redefinitions(function_types: dict[int, type], namespaces) -> Redefinitions:
    """Which recorded calls used an earlier definition of their class, or of a base class of it.

    ``function_types``: call id -> its Function class; ``namespaces``: the script's (or the
    notebook's) globals as the run left them."""
    found = Redefinitions()
    calls_of: dict[type, list[int]] = {}
    for call_id, cls in function_types.items():
        calls_of.setdefault(cls, []).append(call_id)
    recorded = set(calls_of)
    stale_bases: dict[type, tuple[type, list[type]]] = {}  # old base -> (newer, its subclasses)
    for cls in sorted(calls_of, key=lambda c: min(calls_of[c])):
        newer = _newer(cls, namespaces)
        if newer is not None:
            calls = ("call f" if len(calls_of[cls]) == 1 else "calls f") + ranges(calls_of[cls]).replace(", ", ", f")
            found.notes[cls] = (f"{cls.__name__} here is an earlier definition{_defined(cls)}: the name "
                                f"{cls.__name__} now names the class defined later{_defined(newer)}")
            if newer in recorded:
                found.warnings.append(
                    f"two classes named {cls.__name__} were called: {calls} used an earlier "
                    f"definition{_defined(cls)}, the others the one defined later{_defined(newer)}")
            continue
        for base in cls.__mro__[1:-1]:
            newer_base = _newer(base, namespaces)
            if newer_base is not None:
                stale_bases.setdefault(base, (newer_base, []))[1].append(cls)
                found.notes[cls] = (
                    f"{cls.__name__}{_defined(cls, subject=True)} is a subclass of an earlier definition of "
                    f"{base.__name__}{_defined(base)}, not of the {base.__name__} defined later"
                    f"{_defined(newer_base)}: run the code defining {cls.__name__} again (a fix made "
                    f"in the later {base.__name__} does not reach it)")
                break
    for base, (newer_base, subclasses) in stale_bases.items():
        names = ", ".join(c.__name__ for c in subclasses)
        they = "it was" if len(subclasses) == 1 else "they were"
        found.warnings.append(
            f"{names} {'is a subclass' if len(subclasses) == 1 else 'are subclasses'} of an earlier "
            f"definition of {base.__name__}{_defined(base)}: {base.__name__} was defined again later"
            f"{_defined(newer_base)}, after {they} defined, so a fix made there does not reach "
            f"{'it' if len(subclasses) == 1 else 'them'}; run the code defining {names} again")
    return found
