"""Infer variable names from the names a script bound them to (frame locals and module globals)."""

from __future__ import annotations

from .identity import ObjectIds

__all__ = ["NameBook"]


class NameBook:
    """Remembers, per variable id, the first script name seen bound to it."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}

    def get(self, var_id: int) -> str | None:
        """The inferred name of a variable, or None."""
        return self._names.get(var_id)

    def harvest_namespace(self, namespace: dict, ids: ObjectIds) -> None:
        """Name every known variable bound in ``namespace`` (first name seen wins)."""
        names = self._names
        for name, value in list(namespace.items()):
            if not isinstance(name, str) or name.startswith("_"):
                continue
            try:
                if not hasattr(value, "data"):
                    continue
            except Exception:  # noqa: BLE001 - an object whose attributes raise is no Variable
                continue
            var_id = ids.get(value)
            if var_id is not None and var_id not in names:
                names[var_id] = name

    def harvest_frame(self, frame, ids: ObjectIds) -> None:
        """Harvest a frame's locals, then its module globals when they are different."""
        self.harvest_namespace(frame.f_locals, ids)
        if frame.f_globals is not frame.f_locals:
            self.harvest_namespace(frame.f_globals, ids)
