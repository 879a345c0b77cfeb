"""A Function object's state without its graph links: what the recorder keeps so its forward can be re-run."""

from __future__ import annotations

import types
import weakref

import numpy as np

__all__ = ["function_state", "DROPPED", "NO_STATE"]

# A state attribute left out because it held a large array (the call then cannot be replayed).
DROPPED = "<dropped: large array>"

_PLAIN = frozenset({int, float, bool, complex, str, bytes, type(None), slice, np.ndarray})
_SKIP_SLOTS = frozenset({"__dict__", "__weakref__"})
# Graph links, and the generation (bookkeeping for backward that no forward reads).
_LINK_NAMES = frozenset({"inputs", "outputs", "input", "output", "generation"})
NO_STATE = types.MappingProxyType({})  # the state of a function that kept nothing


def _is_link(value) -> bool:
    """True for a graph link: a Variable-like object (it has ``creator``), a Function-like one
    (``forward`` and ``backward``: it would keep its inputs alive) or a weak reference."""
    if type(value) in _PLAIN:
        return False
    return (isinstance(value, weakref.ref) or hasattr(value, "creator")
            or (hasattr(value, "forward") and hasattr(value, "backward")))


def _slot_attributes(fn) -> dict:
    found = {}
    for klass in type(fn).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in _SKIP_SLOTS and name not in found and hasattr(fn, name):
                found[name] = getattr(fn, name)
    return found


def function_state(fn, max_elements: int):
    """A Function object's attributes without its links to the graph, to re-run its forward later.

    Called by the recorder after every forward, so it is kept cheap: values are kept by
    reference, except arrays (copied, as they were when the forward ran);
    ``inputs``/``outputs``/``input``/``output``, ``generation``,
    Variables, weak references and lists of them are left out, and arrays with more than
    ``max_elements`` elements are replaced by ``DROPPED`` so memory stays bounded. A function
    with nothing to keep (most ops) shares one empty read-only mapping.
    """
    attributes = getattr(fn, "__dict__", None)
    if attributes is None:
        attributes = _slot_attributes(fn)
    state = None
    for name, value in attributes.items():
        if name in _LINK_NAMES:
            continue
        kind = type(value)
        if kind in _PLAIN:
            if kind is np.ndarray:  # copied: the script may change it later (w -= lr * gw)
                value = DROPPED if value.size > max_elements else value.copy()
        elif kind is list or kind is tuple:
            if any(map(_is_link, value)):
                continue
        elif _is_link(value):
            continue
        if state is None:
            state = {}
        state[name] = value
    return NO_STATE if state is None else state
