"""The output format from --format and OUT's name, checked before anything runs."""

from __future__ import annotations

import os

from .export import SUFFIXES, TEXT_FORMATS, FormatError, format_for_path
from .output import check_writable

__all__ = ["OutputChoiceError", "choose_format", "same_file"]


class OutputChoiceError(FormatError):
    """OUT and the format do not go together; ``option`` is the one to change: "output" or "format"."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


def choose_format(out, fmt):
    """The output format from ``fmt`` (--format) or OUT's extension (``-`` is stdout: DOT unless
    told otherwise; binary formats never go there); None when there is neither."""
    if out is None:
        return fmt.lower() if fmt else None
    if out != "-" and os.path.isdir(out):
        check_writable(out)  # "OUT is a directory: give a file name, e.g. ..."
    if fmt:
        fmt = fmt.lower()
        suffix = os.path.splitext(out)[1].lower()
        told = SUFFIXES.get(suffix)
        if out != "-" and told is not None and told != fmt:
            raise OutputChoiceError(
                f"{out} is named as {told} but --format is {fmt}: name the file "
                f"{os.path.splitext(out)[0]}.{fmt}, or leave out --format", "format")
    elif out == "-":
        fmt = "dot"
    else:
        try:
            fmt = format_for_path(out)
        except FormatError as exc:
            raise OutputChoiceError(str(exc), "output") from None
    if out == "-" and fmt not in TEXT_FORMATS:
        raise OutputChoiceError(f"{fmt} is binary and cannot go to stdout: give a file name, "
                                f"e.g. -o graph.{fmt}", "output")
    return fmt


def same_file(out, script) -> bool:
    """True when OUT names SCRIPT's file (also through a link, and before OUT exists)."""
    try:
        return os.path.samefile(out, script)
    except OSError:  # OUT does not exist yet: the same path once links are followed?
        return os.path.realpath(out) == os.path.realpath(script)
