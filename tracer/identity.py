"""Map live objects to record ids (from a counter) without keeping the user's graph alive."""

from __future__ import annotations

import weakref

__all__ = ["ObjectIds"]


class _Strong:
    """Stand-in for a weak reference to an object that does not allow weak references."""

    __slots__ = ("obj",)

    def __init__(self, obj) -> None:
        self.obj = obj

    def __call__(self):
        return self.obj


def _reference(obj):
    """A weak reference to ``obj``, or a strong stand-in when it does not allow weak references."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return _Strong(obj)


class ObjectIds:
    """Assigns ids 1, 2, 3… to objects; looks them up by identity.

    Objects are held by weak reference where they allow it (so a training loop's old graphs can
    be freed), strongly otherwise. ``id()`` is only a lookup key here, never a record id: an entry
    is trusted only while its reference still points at the very same object.
    """

    def __init__(self) -> None:
        self._by_address: dict[int, tuple] = {}
        self._refs: dict[int, object] = {}
        self._next = 1

    def get(self, obj) -> int | None:
        """The id of ``obj``, or None if it was never seen (or died and its address was reused)."""
        entry = self._by_address.get(id(obj))
        if entry is not None and entry[0]() is obj:
            return entry[1]
        return None

    def add(self, obj) -> int:
        """Give ``obj`` the next id and return it (``obj`` must not be known yet)."""
        record_id = self._next
        self._next = record_id + 1
        self._bind(obj, _reference(obj), record_id)
        return record_id

    def assign(self, obj, record_id: int) -> None:
        """Point ``obj`` at an existing id (e.g. a Function object reused for a new call)."""
        entry = self._by_address.get(id(obj))
        ref = entry[0] if entry is not None and entry[0]() is obj else _reference(obj)
        self._bind(obj, ref, record_id)

    def _bind(self, obj, ref, record_id: int) -> None:
        address = id(obj)
        self._by_address[address] = (ref, record_id)
        self._refs[record_id] = (ref, address)

    def live(self, record_id: int):
        """The object with this id if it is still alive, else None."""
        entry = self._refs.get(record_id)
        return entry[0]() if entry is not None else None

    def drop(self, record_id: int) -> None:
        """Forget the object with this id (its record was pruned)."""
        entry = self._refs.pop(record_id, None)
        if entry is None:
            return
        current = self._by_address.get(entry[1])
        if current is not None and current[1] == record_id:
            del self._by_address[entry[1]]

    def clear(self) -> None:
        """Forget everything (drops strong references to objects without weakref support)."""
        self._by_address.clear()
        self._refs.clear()
