"""Sorted number lists as short text (``2–5, 7, 9–300``): passes and calls in reports and notes."""

from __future__ import annotations

__all__ = ["ranges"]


def ranges(numbers) -> str:
    """``2–5, 7, 9–300`` for the sorted distinct numbers."""
    numbers = sorted(set(numbers))
    parts, start = [], None
    for position, n in enumerate(numbers):
        if start is None:
            start = n
        if position + 1 == len(numbers) or numbers[position + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}\u2013{n}")
            start = None
    return ", ".join(parts)
