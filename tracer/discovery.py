"""Find the DeZero-style classes a caller's namespace uses (a notebook's cells, a test's locals)."""

from __future__ import annotations

import sys
import types

from .hooks import looks_like_function_base, looks_like_variable_class

__all__ = ["engine_classes_in"]

# Values whose type is never part of an engine: skipped without looking at their class.
_PLAIN = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
          int, float, complex, str, bytes, bool, list, tuple, dict, set, frozenset, type(None))


def _candidate_classes(namespace: dict) -> list[type]:
    """The classes in ``namespace`` and the classes of the other objects in it, in namespace order.

    Classes of objects matter in a notebook: a cell run again defines new classes, and ``x``
    made earlier is still an instance of the old Variable class.
    """
    found: dict[type, None] = {}
    for value in list(namespace.values()):
        if isinstance(value, type):
            found[value] = None
        elif not isinstance(value, _PLAIN):
            found[type(value)] = None
    return list(found)


def engine_classes_in(*namespaces: dict) -> tuple[list[type], list[type]]:
    """Function base classes and Variable classes used by the values of ``namespaces``.

    A class counts through its bases too (``Square`` leads to its ``Function``), and a Variable
    class leads to the Function base defined beside it (``from dezero import Variable`` alone
    finds ``dezero.core.Function``).
    """
    functions: dict[type, None] = {}
    variables: dict[type, None] = {}

    def consider(cls: type) -> None:
        for klass in cls.__mro__[:-1]:
            if klass in functions or klass in variables:
                continue
            if looks_like_function_base(klass):
                functions[klass] = None
            elif looks_like_variable_class(klass):
                variables[klass] = None

    for namespace in namespaces:
        for cls in _candidate_classes(namespace):
            consider(cls)
    for variable in list(variables):
        module = sys.modules.get(getattr(variable, "__module__", ""))
        if module is not None and not any(f.__module__ == variable.__module__ for f in functions):
            for value in list(vars(module).values()):
                if isinstance(value, type) and value.__module__ == variable.__module__:
                    consider(value)
    return list(functions), list(variables)
