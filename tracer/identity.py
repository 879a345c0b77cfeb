"""Map live objects to record ids (from a counter) without keeping the user's graph alive."""

from __future__ import annotations

import weakref

__all__ = ["ObjectIds"]

_weakref = weakref.ref


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

    The maps hold references and plain ints, not tuples of both: ``weakref.ref`` hands back the
    engine's own reference when it already made one (a Function's ``outputs``), so recording a
    variable usually adds no object the garbage collector must keep scanning.
    """

    def __init__(self) -> None:
        self._ref_at: dict[int, object] = {}   # address -> reference
        self._id_at: dict[int, int] = {}       # address -> record id
        self._refs: dict[int, object] = {}     # record id -> reference
        self._address_of: dict[int, int] = {}  # record id -> address
        self._next = 1
        self.held: dict[str, None] = {}  # classes whose objects allow no weak reference (kept alive)

    def get(self, obj) -> int | None:
        """The id of ``obj``, or None if it was never seen (or died and its address was reused)."""
        address = id(obj)
        ref = self._ref_at.get(address)
        if ref is not None and ref() is obj:
            return self._id_at[address]
        return None

    def add(self, obj) -> int:
        """Give ``obj`` the next id and return it (``obj`` must not be known yet)."""
        record_id = self._next
        self._next = record_id + 1
        try:  # _reference and _bind inlined: called once per new variable
            ref = _weakref(obj)
        except TypeError:
            ref = _Strong(obj)
            self.held[type(obj).__qualname__] = None
        address = id(obj)
        self._ref_at[address] = ref
        self._id_at[address] = record_id
        self._refs[record_id] = ref
        self._address_of[record_id] = address
        return record_id

    def reserve(self) -> int:
        """The next id, for a record of something that is no object of the user's (``live``
        gives None for it)."""
        record_id = self._next
        self._next = record_id + 1
        return record_id

    def assign(self, obj, record_id: int) -> None:
        """Point ``obj`` at an existing id (e.g. a Function object reused for a new call)."""
        ref = self._ref_at.get(id(obj))
        if ref is None or ref() is not obj:
            ref = _reference(obj)
        self._bind(obj, ref, record_id)

    def _bind(self, obj, ref, record_id: int) -> None:
        address = id(obj)
        self._ref_at[address] = ref
        self._id_at[address] = record_id
        self._refs[record_id] = ref
        self._address_of[record_id] = address

    def live(self, record_id: int):
        """The object with this id if it is still alive, else None."""
        ref = self._refs.get(record_id)
        return ref() if ref is not None else None

    def drop(self, record_id: int) -> None:
        """Forget the object with this id (its record was pruned)."""
        if self._refs.pop(record_id, None) is None:
            return
        address = self._address_of.pop(record_id)
        if self._id_at.get(address) == record_id:
            del self._id_at[address]
            del self._ref_at[address]

    def clear(self) -> None:
        """Forget everything (drops strong references to objects without weakref support)."""
        self._ref_at.clear()
        self._id_at.clear()
        self._refs.clear()
        self._address_of.clear()
