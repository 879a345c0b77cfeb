"""Find the DeZero-style classes a caller's namespace uses (a notebook's cells, a test's locals)."""

from __future__ import annotations

import sys
import types

from .hooks import looks_like_function_base, looks_like_variable_class

__all__ = ["engine_classes_in"]

# Packages whose namespaces hold no one's engine: not scanned when a name comes from them.
_NOT_ENGINES = frozenset(getattr(sys, "stdlib_module_names", ())) | {"numpy", "tracer", "IPython", "ipykernel",
                                                                     "matplotlib", "pandas", "scipy"}
# Values whose type is never part of an engine: skipped without looking at their class.
_PLAIN = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
          int, float, complex, str, bytes, bool, list, tuple, dict, set, frozenset, type(None))


def _classes_of_value(value) -> list[type]:
    """The classes a namespace value leads to: itself (a class), or its own class (an object: in
    a notebook whose engine cell ran again, ``x`` is still an instance of the old Variable)."""
    if isinstance(value, type):
        return [value]
    return [] if isinstance(value, _PLAIN) else [type(value)]


def _module_classes(module, own_only: bool) -> list[type]:
    """The classes in a module's namespace (with ``own_only``, those it or its submodules define)."""
    prefix = module.__name__ + "."
    return [v for v in list(vars(module).values()) if isinstance(v, type)
            and (not own_only or v.__module__ == module.__name__ or str(v.__module__).startswith(prefix))]


# (module name, own_only) -> (module, its classes, functions, variables): a module's answer is
# kept while it holds the very same classes (the answer depends on nothing else), so tracing in
# a loop does not rescan numpy each time, and a reloaded module (new classes under the same
# names) is scanned again. Only classes are kept alive by this, never the module's data.
_scanned: dict[tuple[str, bool], tuple] = {}


def _engine_classes_of_module(module, own_only: bool) -> tuple[tuple, tuple]:
    key = (module.__name__, own_only)
    classes = tuple([v for v in list(vars(module).values()) if isinstance(v, type)])
    cached = _scanned.get(key)
    if (cached is not None and cached[0] is module and len(cached[1]) == len(classes)
            and all(old is new for old, new in zip(cached[1], classes))):
        return cached[2], cached[3]
    found = _Found()
    for cls in _module_classes(module, own_only):
        found.consider(cls)
    answer = (tuple(found.functions), tuple(found.variables))
    _scanned[key] = (module, classes, *answer)
    return answer


class _Found:
    """Function bases and Variable classes seen so far, in the order first seen."""

    def __init__(self) -> None:
        self.functions: dict[type, None] = {}
        self.variables: dict[type, None] = {}

    def add(self, functions, variables) -> None:
        """Take classes already known to be Function bases and Variable classes."""
        self.functions.update(dict.fromkeys(functions))
        self.variables.update(dict.fromkeys(variables))

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


def _names(module_name: str, cls: type) -> bool:
    module = sys.modules.get(module_name)
    try:
        return module is not None and any(v is cls for v in list(vars(module).values()))
    except TypeError:  # a sys.modules entry without a namespace
        return False


def _pairs(function: type, variable: type) -> bool:
    """A Function base and a Variable class of one engine: defined together, or one's module
    names the other (``__call__`` makes Variables; a Variable module may import Function)."""
    return (function.__module__ == variable.__module__ or _names(function.__module__, variable)
            or _names(variable.__module__, function))


def engine_classes_in(*namespaces: dict) -> tuple[list[type], list[type]]:
    """Function base classes and Variable classes of the engines the ``namespaces`` use.

    A class counts through its bases too (``Square`` leads to its ``Function``); a Variable
    class leads to the Function base defined beside it and the other way round (``from dezero
    import Variable`` alone finds ``dezero.core.Function``). Only classes that make an engine
    together count: a lone class with ``forward``/``backward`` (a layer) is not one.
    """
    found = _Found()
    homes: dict[str, None] = {}  # modules that define the namespace's own classes and functions
    for namespace in namespaces:
        for value in list(namespace.values()):
            try:
                if isinstance(value, types.ModuleType):  # import mydezero as dz
                    found.add(*_engine_classes_of_module(value, own_only=True))
                    continue
                if isinstance(value, (type, types.FunctionType)):
                    homes[getattr(value, "__module__", None) or ""] = None
                classes = _classes_of_value(value)
            except Exception:  # noqa: BLE001 - an object whose class cannot be read is skipped
                continue
            for cls in classes:
                found.consider(cls)
    # `from mylayers import TwoLayerNet, SGD`: the engine is what mylayers itself imported.
    for name in homes:
        module = sys.modules.get(name)
        if module is None or name.split(".")[0] in _NOT_ENGINES:
            continue
        try:
            found.add(*_engine_classes_of_module(module, own_only=False))
        except Exception:  # noqa: BLE001 - a sys.modules entry that is no real module is skipped
            continue
    for cls in [*found.functions, *found.variables]:  # the classes defined or imported beside it
        module = sys.modules.get(getattr(cls, "__module__", None) or "")
        try:
            if module is not None:
                found.add(*_engine_classes_of_module(module, own_only=False))
        except Exception:  # noqa: BLE001 - a sys.modules entry that is no real module is skipped
            continue
    functions = [f for f in found.functions if any(_pairs(f, v) for v in found.variables)]
    variables = [v for v in found.variables if any(_pairs(f, v) for f in functions)]
    return functions, variables
