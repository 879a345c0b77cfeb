"""A Jupyter notebook's code cells as Python source, so that gradtrace runs it like a script."""

from __future__ import annotations

import importlib
import io
import json
import re
import tokenize
from pathlib import Path
from typing import NamedTuple

from .errors import ScriptNotFoundError

__all__ = ["NotebookError", "Notebook", "CapturedOutput", "read_notebook", "notebook_cells", "display",
           "writefile"]

# Cell magics whose body is Python that runs once; a cell under any other cell magic
# (%%bash, %%html, %%writefile ...) is not Python and is skipped.
_PYTHON_CELL_MAGICS = {"%%time", "%%timeit", "%%capture", "%%prun"}
# A line magic or shell escape (`%matplotlib inline`, `!pip install x`), maybe after `name =`.
_MAGIC_LINE = re.compile(r"^(?P<indent>[ \t]*)(?P<target>[A-Za-z_][\w.]*[ \t]*=[ \t]*)?(?P<magic>[%!].*)$")
# IPython's help syntax: `os.path?`, `??len`.
_HELP_LINE = re.compile(r"^(?P<indent>[ \t]*)(?:\?{1,2}[\w.]+|[\w.]+\?{1,2})[ \t]*$")
# %%writefile [-a] FILE: the cell's text is written to FILE (a notebook may write its own engine).
_WRITEFILE = re.compile(r"^%%writefile(?P<append>[ \t]+(?:-a|--append))?[ \t]+(?P<file>.+?)[ \t]*$")
# Magics that time or profile a statement: the statement runs (once); options as IPython's.
_TIMING_OPTIONS = {"time": ("", ""), "timeit": ("nrp", "tcqo"), "prun": ("DlsT", "rq")}


class NotebookError(ScriptNotFoundError):
    """The notebook cannot be read as a Jupyter notebook (format 4)."""


def display(*objects, **_options) -> None:
    """Stand-in for IPython's ``display``: prints each object's repr, as a console would."""
    for obj in objects:
        print(repr(obj))


def writefile(filename: str, text: str, append: bool = False) -> None:
    """``%%writefile``: write the cell's text to ``filename`` and say so, as IPython does."""
    target = Path(filename).expanduser()
    print(f"{'Appending to' if append else 'Overwriting' if target.exists() else 'Writing'} {filename}")
    with open(target, "a" if append else "w", encoding="utf-8") as handle:
        handle.write(text)
    importlib.invalidate_caches()  # the next cell may import the module just written


class CapturedOutput:
    """Stand-in for what ``%%capture out`` binds: the cell's output was not captured (it printed)."""

    stdout = stderr = ""
    outputs: tuple = ()

    def show(self) -> None:
        """Nothing to show: the output was printed when the cell ran."""

    def __call__(self) -> None:
        self.show()


class Notebook(NamedTuple):
    """A notebook read for running: its code cells as (label, Python source), in order, and the
    files its ``%%writefile`` cells write."""

    units: list[tuple[str, str]]
    writes: list[str]


def _source_of(cell: dict, path: Path, position: int) -> str:
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(part, str) for part in source):
        return "".join(source)
    if isinstance(source, str):
        return source
    raise NotebookError(f"{path} is not a Jupyter notebook: cell {position} has a source that is not "
                        f"text; open it in Jupyter and save it again")


def _timed_statement(magic: str) -> str | None:
    """The statement of a ``%time`` / ``%timeit`` / ``%prun`` line (options dropped), else None."""
    match = re.match(r"%(time|timeit|prun)(?:[ \t]+|$)(.*)$", magic)
    if match is None:
        return None
    with_value, flags = _TIMING_OPTIONS[match.group(1)]
    code = match.group(2)
    while True:
        option = re.match(rf"-(?:[{with_value}][ \t]*[^ \t]+|[{flags}])(?:[ \t]+|$)", code) \
            if with_value or flags else None
        if option is None:
            return code
        code = code[option.end():]


def _starts_a_statement(code_so_far: list[str]) -> bool:
    """True when the next line begins a new statement: not inside brackets, a string or after ``\\``."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO("\n".join(code_so_far) + "\n").readline):
            pass
    except tokenize.TokenError:
        return False
    except SyntaxError:  # the cell has an error of its own: compiling it will report that
        return True
    return True


def _lines(source: str) -> list[str]:
    """A cell's lines, split where Python ends lines (not at U+2028 and the like)."""
    return source.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _written_file(lines: list[str]) -> tuple[int, str, bool] | None:
    """For a ``%%writefile [-a] FILE`` cell: (index of the magic line, FILE, append), else None."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    match = _WRITEFILE.match(lines[first]) if first is not None else None
    return (first, _unquoted(match.group("file")), bool(match.group("append"))) if match else None


def _as_python(source: str) -> str | None:
    """The cell as Python, with IPython syntax blanked line for line (line numbers are kept).

    ``%time stmt`` / ``%timeit stmt`` keep ``stmt``; other line magics, ``!shell`` lines and
    ``name?`` help become ``pass``; ``x = !ls`` becomes ``x = None``. Only lines that begin a
    statement are touched (a ``%`` continuing an expression or inside a string is Python).
    None when the cell is not Python (a cell magic such as ``%%bash``).
    """
    lines = _lines(source)
    written = _written_file(lines)
    if written is not None:
        first, filename, append = written
        body = "\n".join(lines[first + 1:])
        body += "" if body.endswith("\n") else "\n"  # as IPython: appended cells stay apart
        return "\n" * first + f"_gradtrace_writefile({filename!r}, {body!r}, {append})\n"
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].startswith("%%"):
        words = lines[first].split(maxsplit=1)
        if words[0] not in _PYTHON_CELL_MAGICS:
            return None
        setup = _timed_statement(lines[first][1:]) if words[0] in ("%%timeit", "%%prun") else None
        if words[0] == "%%capture":  # `%%capture out`: the cell runs (its output is not captured)
            names = [w for w in lines[first].split()[1:] if not w.startswith("-")]
            setup = f"{names[0]} = _gradtrace_captured()" if names and names[0].isidentifier() else None
        lines[first] = setup or ""
    out: list[str] = []
    continuing = False  # the previous line was a magic ending in a backslash
    for line in lines:
        if continuing:
            out.append("")
            continuing = line.endswith("\\")
            continue
        magic, help_line = _MAGIC_LINE.match(line), _HELP_LINE.match(line)
        if (magic is None and help_line is None) or not _starts_a_statement(out):
            out.append(line)
            continue
        if help_line is not None:
            out.append(f"{help_line.group('indent')}pass")
            continue
        indent, target, text = magic.group("indent"), magic.group("target") or "", magic.group("magic")
        continuing = text.endswith("\\")
        timed = _timed_statement(text) if not continuing else None
        if timed:
            out.append(f"{indent}{target}{timed}")
        elif target:
            out.append(f"{indent}{target}None")
        else:
            out.append(f"{indent}pass")
    return "\n".join(out) + "\n"


def _language(document: dict) -> str | None:
    """The notebook's kernel language ("python", "R", ...); None when the notebook does not say."""
    metadata = document.get("metadata")
    for section, key in (("language_info", "name"), ("kernelspec", "language")):
        part = metadata.get(section) if isinstance(metadata, dict) else None
        value = part.get(key) if isinstance(part, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def _unquoted(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"" else name


def notebook_cells(text: bytes, path: Path) -> list[tuple[str, str]]:
    """(label, Python source) of each code cell, in order (see ``read_notebook``)."""
    return read_notebook(text, path).units


def read_notebook(text: bytes, path: Path) -> Notebook:
    """The code cells of a notebook, each labelled with the file and the cell, in order.

    Cells are numbered by position among all cells (markdown included), as they appear in the
    notebook. Line and cell magics are blanked; ``%%writefile`` cells become a call of
    ``writefile`` (``_gradtrace_writefile`` in the namespace they run in); a cell under a cell
    magic that is not Python (``%%bash``) is skipped, a notebook of another language refused.
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
    language = _language(document)
    if language is not None and language.lower() != "python":
        raise NotebookError(f"{path} is a {language} notebook: gradtrace runs Python notebooks (export "
                            f"the Python part, or trace a .py script)")
    units, writes = [], []
    for position, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = _source_of(cell, path, position)
        python = _as_python(source)
        if python is not None and python.strip():
            units.append((f"{path} (cell {position})", python))
        written = _written_file(_lines(source))
        if written is not None:
            writes.append(written[1])
    return Notebook(units, writes)
