"""Find the DeZero-style classes a caller's namespace uses (a notebook's cells, a test's locals)."""

from __future__ import annotations

import sys
import types

from .hooks import looks_like_function_base, looks_like_variable_class

__all__ = ["engine_classes_in"]

# Values whose type is never part of an engine: skipped without looking at their class.
_PLAIN = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
          int, float, complex, str, bytes, bool, list, tuple, dict, set, frozenset, type(None))


def _classes_of_value(value) -> list[type]:
    """The classes a namespace value leads to: itself (a class), the classes a module defines
    (``import mydezero as dz``), or its own class (an object: in a notebook whose engine cell
    ran again, ``x`` is still an instance of the old Variable class)."""
    if isinstance(value, types.ModuleType):
        prefix = value.__name__ + "."
        return [v for v in list(vars(value).values()) if isinstance(v, type)
                and (v.__module__ == value.__name__ or str(v.__module__).startswith(prefix))]
    if isinstance(value, type):
        return [value]
    return [] if isinstance(value, _PLAIN) else [type(value)]


def _module_classes(cls: type) -> list[type]:
    module = sys.modules.get(getattr(cls, "__module__", None) or "")
    return [v for v in list(vars(module).values()) if isinstance(v, type)] if module is not None else []


class _Found:
    """Function bases and Variable classes seen so far, in the order first seen."""

    def __init__(self) -> None:
        self.functions: dict[type, None] = {}
        self.variables: dict[type, None] = {}

    def consider(self, cls: type) -> None:
        """Look at ``cls`` and its bases. Best effort: a class that fails to answer is skipped."""
        try:
            bases = cls.__mro__[:-1]
            for klass in bases:
                if klass in self.functions or klass in self.variables:
                    continue
                if looks_like_function_base(klass):
                    self.functions[klass] = None
                elif looks_like_variable_class(klass):
                    self.variables[klass] = None
        except Exception:  # noqa: BLE001 - a user's class whose attributes raise is not an engine
            return


def _pairs(function: type, variable: type) -> bool:
    """A Function base and a Variable class of one engine: defined together, or the Function's
    module names the Variable class (its ``__call__`` makes outputs of that class)."""
    if function.__module__ == variable.__module__:
        return True
    module = sys.modules.get(function.__module__)
    return module is not None and any(v is variable for v in list(vars(module).values()))


def engine_classes_in(*namespaces: dict) -> tuple[list[type], list[type]]:
    """Function base classes and Variable classes of the engines the ``namespaces`` use.

    A class counts through its bases too (``Square`` leads to its ``Function``); a Variable
    class leads to the Function base defined beside it and the other way round (``from dezero
    import Variable`` alone finds ``dezero.core.Function``). Only classes that make an engine
    together count: a lone class with ``forward``/``backward`` (a layer) is not one.
    """
    found = _Found()
    for namespace in namespaces:
        for value in list(namespace.values()):
            try:
                classes = _classes_of_value(value)
            except Exception:  # noqa: BLE001 - an object whose class cannot be read is skipped
                continue
            for cls in classes:
                found.consider(cls)
    for cls in [*found.functions, *found.variables]:
        for neighbour in _module_classes(cls):
            found.consider(neighbour)
    functions = [f for f in found.functions if any(_pairs(f, v) for v in found.variables)]
    variables = [v for v in found.variables if any(_pairs(f, v) for f in functions)]
    return functions, variables
