"""A Jupyter notebook's code cells as Python source, so that gradtrace runs it like a script."""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path
from typing import NamedTuple

from .errors import ScriptNotFoundError

__all__ = ["NotebookError", "Notebook", "read_notebook", "notebook_cells", "as_python", "timed_statement",
           "writefile_arguments", "cell_name", "raising_cell", "is_cell_label"]

# Cell magics whose body is Python that runs once; a cell under any other cell magic
# (%%bash, %%html, %%writefile ...) is not Python and is skipped.
_PYTHON_CELL_MAGICS = {"%%time", "%%timeit", "%%capture", "%%prun"}
# A line magic or shell escape (`%matplotlib inline`, `!pip install x`), maybe after `name =`.
_MAGIC_LINE = re.compile(r"^(?P<indent>[ \t]*)(?P<target>[A-Za-z_][\w.]*[ \t]*=[ \t]*)?(?P<magic>[%!].*)$")
# IPython's help syntax: `os.path?`, `??len`.
_HELP_LINE = re.compile(r"^(?P<indent>[ \t]*)(?:\?{1,2}[\w.]+|[\w.]+\?{1,2})[ \t]*$")
# %%writefile [-a] FILE: the cell's text is written to FILE (a notebook may write its own engine).
_WRITEFILE = re.compile(r"^(?P<append>(?:-a|--append)(?:[ \t]+|$))?(?P<file>.+?)[ \t]*$")
# Magics that time or profile a statement: the statement runs (once); options as IPython's.
_TIMING_OPTIONS = {"time": ("", ""), "timeit": ("nrp", "tcqo"), "prun": ("DlsT", "rq")}
# The cell that was running, in a traceback: its frame at module level (a function it called,
# defined in an earlier cell, has frames of its own further down), or a SyntaxError's location.
_RAISING_CELL = re.compile(r'\.(?i:ipynb) \((code cell \d+(?:, In \[\d+\])?)\)", line \d+(?:, in <module>)?\n')
_CELL_LABEL = re.compile(r"\.(?i:ipynb) \(code cell \d+(?:, In \[\d+\])?\)\Z")


class NotebookError(ScriptNotFoundError):
    """The notebook cannot be read as a Jupyter notebook (format 4)."""


class Notebook(NamedTuple):
    """A notebook read for running: its code cells as (label, Python source), in order, the files
    its ``%%writefile`` cells write, and each cell's own text by label (what tracebacks show)."""

    units: list[tuple[str, str]]
    writes: list[str]
    sources: dict[str, str]


def cell_name(number: int, execution_count=None) -> str:
    """How a code cell is named: ``code cell 2, In [7]`` (its place among the code cells, markdown
    cells not counted, and the execution count Jupyter shows beside it when the notebook was saved
    with one), or ``code cell 2`` for a cell saved unexecuted."""
    if type(execution_count) is int and execution_count >= 0:  # nbformat: an integer or null
        return f"code cell {number}, In [{execution_count}]"
    return f"code cell {number}"


def raising_cell(traceback_text: str) -> str | None:
    """The name (``code cell 2, In [7]``) of the notebook cell that was running when the
    exception of ``traceback_text`` was raised, or None when no notebook cell is in it."""
    found = _RAISING_CELL.search(traceback_text or "")
    return found.group(1) if found else None


def is_cell_label(filename) -> bool:
    """Whether ``filename`` (a code object's or a SyntaxError's) is a notebook cell's label
    (``hw.ipynb (code cell 2, In [7])``), not a file's name."""
    return isinstance(filename, str) and _CELL_LABEL.search(filename) is not None


def _source_of(cell: dict, path: Path, name: str) -> str:
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(part, str) for part in source):
        return "".join(source)
    if isinstance(source, str):
        return source
    raise NotebookError(f"{path} ({name}) has a source that is not text (Jupyter saves a cell's source "
                        f"as text): open the notebook in Jupyter and save it again")


def timed_statement(magic: str) -> str | None:
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
    """For a ``%%writefile [-a] FILE`` cell (also under ``%%time``): (index of the magic line,
    FILE, append), else None."""
    magics = [i for i, line in enumerate(lines) if line.strip()][:2]
    if len(magics) == 2 and lines[magics[0]].split(maxsplit=1)[0] in _PYTHON_CELL_MAGICS:
        magics = magics[1:]  # `%%time` over `%%writefile engine.py`
    first = magics[0] if magics else None
    words = lines[first].split(maxsplit=1) if first is not None else []
    arguments = writefile_arguments(words[1] if len(words) > 1 else "") \
        if words and words[0] == "%%writefile" else None
    return (first, *arguments) if arguments else None


def writefile_arguments(line: str) -> tuple[str, bool] | None:
    """``[-a] FILE`` after ``%%writefile``: (FILE without its quotes, append), None without a FILE.
    The one reading of that line: for what a notebook will write, and when the cell runs."""
    match = _WRITEFILE.match(line.strip())
    return (_unquoted(match.group("file")), bool(match.group("append"))) if match else None


def _shell_call(text: str) -> str:
    """A line magic or shell escape as the call IPython makes of it: ``%run x.py`` becomes
    ``get_ipython().run_line_magic('run', 'x.py')``, ``!ls`` ``get_ipython().system('ls')``."""
    if text.startswith("!"):
        return f"get_ipython().system({text[1:].strip()!r})"
    name, _, line = text[1:].partition(" ")
    return f"get_ipython().run_line_magic({name.strip()!r}, {line.strip()!r})"


def as_python(source: str) -> str | None:
    """The cell as Python, IPython syntax turned into Python line for line (line numbers are kept).

    ``%time stmt`` / ``%timeit stmt`` / ``%prun stmt`` keep ``stmt`` in place; other line magics
    and ``!shell`` lines become the ``get_ipython()`` calls IPython makes of them (``x = !ls``
    becomes ``x = get_ipython().getoutput('ls')``), ``%%writefile`` and ``%%capture`` cells a
    ``run_cell_magic`` call, ``name?`` help ``pass`` (see ``tracer.ipyshell`` for what runs).
    Only lines that begin a statement are touched (a ``%`` continuing an expression or inside a
    string is Python). None when the cell is not Python (a cell magic such as ``%%bash``).
    """
    lines = _lines(source)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].startswith("%%"):
        words = lines[first].split(maxsplit=1)
        magic_line = words[1].strip() if len(words) > 1 else ""
        if words[0] in ("%%writefile", "%%capture"):
            body = "\n".join(lines[first + 1:])
            where = f", _first_line={first + 1}" if words[0] == "%%capture" else ""
            return "\n" * first + (f"get_ipython().run_cell_magic({words[0][2:]!r}, {magic_line!r}, "
                                    f"{body!r}{where})\n")
        if words[0] not in _PYTHON_CELL_MAGICS:
            return None
        setup = timed_statement(lines[first][1:]) if words[0] in ("%%timeit", "%%prun") else None
        lines[first] = setup or ""
        rest = lines[first + 1:]
        second = next((line for line in rest if line.strip()), "")
        if second.startswith("%%"):  # `%%time` over `%%capture c`: the inner cell magic runs
            inner = as_python("\n" * (first + 1) + "\n".join(rest))  # lines keep their numbers
            if inner is None or not setup:
                return inner
            inner_lines = inner.split("\n")
            inner_lines[first] = setup  # %%timeit's setup statement, on its own line
            return "\n".join(inner_lines)
    out: list[str] = []
    position = 0
    while position < len(lines):
        line = lines[position]
        position += 1
        magic, help_line = _MAGIC_LINE.match(line), _HELP_LINE.match(line)
        if (magic is None and help_line is None) or not _starts_a_statement(out):
            out.append(line)
            continue
        if help_line is not None:
            out.append(f"{help_line.group('indent')}pass")
            continue
        indent, target, text = magic.group("indent"), magic.group("target") or "", magic.group("magic")
        continued = 0
        while text.endswith("\\") and position + continued < len(lines):  # a magic on several lines
            text = text[:-1] + lines[position + continued]
            continued += 1
        position += continued
        timed = timed_statement(text)
        while timed and timed.startswith(("%", "!")):  # `%time %timeit f()`
            timed = timed_statement(timed) or _shell_call(timed)
        if target and text.startswith("!"):
            out.append(f"{indent}{target}get_ipython().getoutput({text[1:].strip()!r})")
        else:
            out.append(f"{indent}{target}{timed or _shell_call(text)}")
        out.extend([""] * continued)
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

    A cell's label is ``PATH (code cell 2, In [7])`` (see ``cell_name``): what tracebacks,
    warnings and findings show, and what a student finds in Jupyter. Line and cell magics are
    blanked; ``%%writefile`` cells become a call of
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
        letters = language.rstrip("#+")
        spelled = len(letters) == 1 and letters.upper() in "AEFHILMNORSX"  # an R, an F#, a C++
        article = "an" if spelled or language[:1].lower() in "aeiou" else "a"
        raise NotebookError(f"{path} is {article} {language} notebook: gradtrace runs Python notebooks (export "
                            f"the Python part, or trace a .py script)")
    units, writes, sources = [], [], {}
    code_cells = 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        code_cells += 1
        name = cell_name(code_cells, cell.get("execution_count"))
        source = _source_of(cell, path, name)
        python = as_python(source)
        if python is not None and python.strip():
            label = f"{path} ({name})"
            units.append((label, python))
            sources[label] = "\n".join(_lines(source)) + "\n"
        written = _written_file(_lines(source))
        if written is not None:
            writes.append(written[1])
    return Notebook(units, writes, sources)
