"""Infer variable names from the names a script bound them to (frame locals and module globals)."""

from __future__ import annotations

import types

import numpy as np

from .identity import ObjectIds

# Values never searched for attributes holding Variables (numbers, text, code, modules, arrays).
_OPAQUE = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type,
           int, float, complex, str, bytes, bool, type(None))
_MAX_VISITS = 5000  # objects looked at per search: a huge namespace is cut short, never slow

__all__ = ["NameBook", "attribute_paths", "object_array_warnings"]


class NameBook:
    """Remembers, per variable id, the first script name seen bound to it."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}

    def get(self, var_id: int) -> str | None:
        """The inferred name of a variable, or None."""
        return self._names.get(var_id)

    def forget(self, var_id: int) -> None:
        """Drop the name of a variable whose record was pruned."""
        self._names.pop(var_id, None)

    def harvest_namespace(self, namespace: dict, ids: ObjectIds, by_data=None) -> None:
        """Name every known variable bound in ``namespace`` (first name seen wins). ``by_data``, a
        callable giving ``{id(array): variable ids}`` (called only when a bound value is no known
        variable), names the Variables the engine wrapped around an array the script bound
        (``x = np.random.rand(10, 1)``; ``model(x)``)."""
        names = self._names
        for name, value in list(namespace.items()):
            if not isinstance(name, str) or name.startswith("_"):
                continue
            var_id = ids.get(value)  # by identity: no attribute of the user's object is read
            if var_id is None:
                if by_data is None or not issubclass(type(value), np.ndarray):
                    continue
                for wrapper in by_data().get(id(value), ()):  # each Variable the engine made of it
                    owner = ids.live(wrapper)
                    if owner is not None and getattr(owner, "data", None) is value and wrapper not in names:
                        names[wrapper] = name
                continue
            if var_id not in names:
                names[var_id] = name

    def harvest_frame(self, frame, ids: ObjectIds, by_data=None) -> None:
        """Harvest a frame's locals, then its module globals when they are different."""
        self.harvest_namespace(frame.f_locals, ids, by_data)
        if frame.f_globals is not frame.f_locals:
            self.harvest_namespace(frame.f_globals, ids, by_data)


# An engine's own links between variables and functions: a path through them (a.creator.inputs[0])
# names nothing the user built; model.l1.W does.
_GRAPH_LINKS = frozenset({"creator", "inputs", "outputs", "input", "output", "grad", "parent", "parents"})


def attribute_paths(namespaces, wanted: dict[int, int], depth: int = 3) -> dict[int, str]:
    """Where the objects in ``wanted`` (``id(obj)`` -> variable id) hang in ``namespaces``:
    ``model.l1.W`` for the ``W`` of a model's first layer, found breadth first (the shortest
    path wins) through attributes, list items (``layers[0].W``) and dict values, ``depth`` deep.
    A plain name in the namespace counts only when no such path exists: it may be a loop's
    variable (``for p in params``) that happens to hold the object last."""
    found: dict[int, str] = {}
    plain: dict[int, str] = {}
    seen: set[int] = set()
    level = [(name, value) for namespace in namespaces for name, value in list(namespace.items())
             if isinstance(name, str) and not name.startswith("_")]
    visits = 0
    for level_number in range(depth + 1):
        following = []
        for path, value in level:
            visits += 1
            if visits > _MAX_VISITS or len(found) == len(wanted):
                return {**plain, **found}
            key = id(value)
            if key in wanted:
                (plain if level_number == 0 else found).setdefault(wanted[key], path)
                continue  # a Variable's own attributes are not searched
            if key in seen:
                continue
            seen.add(key)
            following.extend(_children(path, value))
        level = following
    return {**plain, **found}


def _children(path: str, value) -> list:
    if isinstance(value, _OPAQUE) or type(value).__module__.split(".")[0] == "numpy":
        return []
    try:
        if isinstance(value, (list, tuple)):
            return [(f"{path}[{i}]", item) for i, item in enumerate(value[:100])]
        if isinstance(value, dict):
            return [(f"{path}[{key!r}]", item) for key, item in list(value.items())[:100]
                    if isinstance(key, (str, int))]
        try:
            # not getattr: a class's __getattr__ (or a property) is the user's code, with effects
            attributes = object.__getattribute__(value, "__dict__")
        except AttributeError:
            return []
        if not isinstance(attributes, dict):
            return []
        return [(f"{path}.{name}", item) for name, item in list(attributes.items())[:100]
                if isinstance(name, str) and not name.startswith("_") and name not in _GRAPH_LINKS]
    except Exception:  # noqa: BLE001 - a user's object whose attributes raise is not searched
        return []


def _numpy_goes_first(cls: type) -> bool:
    """Whether ``ndarray * obj`` runs numpy's operator (element by element) for objects of ``cls``
    rather than leaving it to ``cls``: no ``__array_ufunc__ = None``, no positive priority."""
    try:
        return getattr(cls, "__array_ufunc__", False) is not None and \
            not getattr(cls, "__array_priority__", 0) > 0
    except Exception:  # noqa: BLE001 - a priority that is no number: the user's own arrangement
        return False


def object_array_warnings(namespaces, ids: ObjectIds) -> list[str]:
    """Warnings for names bound to numpy arrays of recorded Variables (dtype object) whose class
    does not make numpy step aside: ``np.array([3, 4]) * x`` ran numpy's multiply element by
    element (one op per element) because the class has no ``__array_priority__``."""
    found: dict[str, list[str]] = {}
    for namespace in namespaces:
        for name, value in list(namespace.items()):
            if not isinstance(name, str) or name.startswith("_") or type(value) is not np.ndarray \
                    or value.dtype != object or value.size == 0:
                continue
            first = value.flat[0]
            cls = type(first)
            # an operator's result holds what Functions made: an array of leaves is a container
            if ids.get(first) is None or getattr(first, "creator", None) is None or not _numpy_goes_first(cls):
                continue
            names = found.setdefault(cls.__name__, [])
            if name not in names:
                names.append(name)
    return [f"{', '.join(names)} {'is a numpy array' if len(names) == 1 else 'are numpy arrays'} of {cls} "
            f"objects (dtype=object): where an operator with a numpy array on its left made it "
            f"(np.array([3, 4]) * x), numpy ran its operator element by element, one op per element, instead "
            f"of {cls}'s; give {cls} __array_priority__ = 200 (the book's step 21) so that numpy leaves the "
            f"operator to it"
            for cls, names in found.items()]
