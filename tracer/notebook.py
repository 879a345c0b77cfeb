"""A Jupyter notebook's code cells as Python source, so that gradtrace runs it like a script."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import ScriptNotFoundError

__all__ = ["NotebookError", "notebook_cells", "display"]

# Cell magics whose body is Python that runs once; a cell under any other cell magic
# (%%bash, %%html, %%writefile ...) is not Python and is skipped.
_PYTHON_CELL_MAGICS = {"%%time", "%%timeit", "%%capture", "%%prun"}
# A line magic or shell escape (`%matplotlib inline`, `!pip install x`), maybe after `name =`.
_MAGIC_LINE = re.compile(r"^(?P<indent>[ \t]*)(?P<target>[A-Za-z_][\w.]*\s*=\s*)?[%!]")


class NotebookError(ScriptNotFoundError):
    """The notebook cannot be read as a Jupyter notebook (format 4)."""


def display(*objects, **_options) -> None:
    """Stand-in for IPython's ``display``: prints each object's repr, as a console would."""
    for obj in objects:
        print(repr(obj))


def _source_of(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _as_python(source: str) -> str | None:
    """The cell as Python, magics blanked line for line (tracebacks keep their line numbers)."""
    lines = source.splitlines()
    if lines and lines[0].startswith("%%"):
        if lines[0].split()[0] not in _PYTHON_CELL_MAGICS:
            return None
        lines[0] = ""
    out = []
    for line in lines:
        match = _MAGIC_LINE.match(line)
        if match is None:
            out.append(line)
        elif match.group("target"):
            out.append(f"{match.group('indent')}{match.group('target')}None")
        else:
            out.append(f"{match.group('indent')}pass")
    return "\n".join(out) + "\n"


def notebook_cells(text: bytes, path: Path) -> list[tuple[str, str]]:
    """(label, Python source) of each code cell, in order; the label names the file and the cell.

    Cells are numbered by position among all cells (markdown included), as they appear in the
    notebook. Line and cell magics are blanked; a cell of another language is skipped.
    """
    try:
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookError(f"{path} is not a Jupyter notebook ({exc}): open it in Jupyter and save "
                            f"it again, or export it as a .py script") from exc
    cells = document.get("cells") if isinstance(document, dict) else None
    if not isinstance(cells, list):
        found = document.get("nbformat") if isinstance(document, dict) else None
        raise NotebookError(f"{path} is not a Jupyter notebook of format 4 (nbformat {found}): open it in "
                            f"a current Jupyter and save it again")
    units = []
    for position, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        python = _as_python(_source_of(cell))
        if python is not None and python.strip():
            units.append((f"{path} (cell {position})", python))
    return units
