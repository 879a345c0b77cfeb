"""A stand-in for IPython's shell (``get_ipython()``, ``display``): notebooks run as plain Python."""

from __future__ import annotations

import builtins
import contextlib
import importlib
import io
import os
import re
import shlex
import sys
from pathlib import Path

from .notebook import as_python, read_notebook, timed_statement, writefile_arguments

__all__ = ["Shell", "CapturedOutput", "UsageError", "display", "writefile", "shell_names", "new_run"]


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
    """What ``%%capture out`` binds: the text the cell printed, shown again by ``out.show()``."""

    outputs: tuple = ()

    def __init__(self, stdout: str = "", stderr: str = "") -> None:
        self.stdout = stdout
        self.stderr = stderr

    def show(self) -> None:
        """Print what the cell printed, to stdout and stderr as it was."""
        sys.stdout.write(self.stdout)
        sys.stderr.write(self.stderr)

    def __call__(self) -> None:
        self.show()


def _words(line: str) -> list[str]:
    """A magic's arguments split as a shell would, quotes and all (plain split if unbalanced)."""
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def _run_source(source: str, frame, first_line: int | None, label: str) -> None:
    """Run a cell's body where the magic was called; with ``first_line``, its lines keep their
    numbers in the calling cell (tracebacks show the notebook's own lines)."""
    if first_line is None:
        code = compile(source, label, "exec", dont_inherit=True)
    else:
        code = compile("\n" * first_line + source, frame.f_code.co_filename, "exec", dont_inherit=True)
    exec(code, frame.f_globals, frame.f_locals)  # noqa: S102 - running the user's notebook is the job


class Shell:
    """What ``get_ipython()`` returns while gradtrace runs a notebook or a script exported from one.

    Magics that change what the code computes behave as in IPython: ``%run``, ``%time``,
    ``%timeit`` and ``%prun`` (their statement runs once), ``%cd``, ``%env``, ``%pwd``,
    ``%%writefile`` and ``%%capture``. Display and extension magics (``%matplotlib``,
    ``%load_ext``) and shell commands (``!pip install``) are skipped: gradtrace runs Python, not
    the shell. Any other magic is skipped with a note on stderr.
    """

    def run_line_magic(self, magic_name: str, line: str, _stack_depth: int = 1):
        """Run ``%magic_name line`` as IPython would, where it was called."""
        frame = sys._getframe(_stack_depth)
        if magic_name in _PLACES:
            return _PLACES[magic_name](_expanded(line, frame))
        if magic_name == "run":
            return self._run_file(_expanded(line, frame), frame)
        statement = timed_statement(f"%{magic_name} {line}")
        if not statement:
            if statement is None and magic_name not in _QUIET and magic_name not in _noted:
                _noted.add(magic_name)
                print(f"gradtrace: %{magic_name} has no effect outside IPython: skipped", file=sys.stderr)
            return None
        if statement.startswith("%"):  # `%time %timeit f()`
            name, _, rest = statement[1:].partition(" ")
            return self.run_line_magic(name, rest, _stack_depth + 1)
        if magic_name == "time":  # `%time expr` gives the expression's value, as in IPython
            try:
                expression = compile(statement, "<%time>", "eval", dont_inherit=True)
            except SyntaxError:
                pass
            else:
                return eval(expression, frame.f_globals, frame.f_locals)  # noqa: S307 - the user's own
        _run_source(statement, frame, None, f"<%{magic_name}>")
        return None

    def run_cell_magic(self, magic_name: str, line: str, cell: str, _first_line: int | None = None):
        """Run a ``%%magic_name line`` cell as IPython would, where it was called."""
        frame = sys._getframe(1)
        if magic_name == "writefile":
            arguments = writefile_arguments(line)
            if arguments:
                writefile(arguments[0], cell if cell.endswith("\n") else cell + "\n", arguments[1])
            return None
        python = as_python(cell) if magic_name in ("time", "timeit", "prun", "capture") else None
        if python is None:
            return None  # %%bash, %%html ...: not Python
        if magic_name == "capture":
            return self._capture(line, python, frame, _first_line)
        setup = timed_statement(f"%{magic_name} {line}") if magic_name in ("timeit", "prun") else None
        if setup:
            _run_source(setup, frame, None, f"<%%{magic_name}>")
        _run_source(python, frame, _first_line, f"<%%{magic_name} cell>")
        return None

    @staticmethod
    def _capture(line: str, python: str, frame, first_line: int | None) -> None:
        words = line.split()
        name = next((word for word in words if not word.startswith("-")), None)
        stdout, stderr = io.StringIO(), io.StringIO()
        finished = False
        try:
            with contextlib.ExitStack() as redirected:
                if "--no-stdout" not in words:
                    redirected.enter_context(contextlib.redirect_stdout(stdout))
                if "--no-stderr" not in words:
                    redirected.enter_context(contextlib.redirect_stderr(stderr))
                _run_source(python, frame, first_line, "<%%capture cell>")
            finished = True
        finally:
            captured = CapturedOutput(stdout.getvalue(), stderr.getvalue())
            if finished:
                if name is not None and name.isidentifier():
                    frame.f_globals[name] = captured
            else:
                captured.show()  # the cell failed: what it printed helps to see why

    @staticmethod
    def _run_file(line: str, frame) -> None:
        """``%run [-i] FILE [ARGS]``: the file runs as ``__main__``; its names join the notebook's."""
        words = _words(line)
        options = set()
        while words and words[0].startswith("-"):
            options.add(words.pop(0))
        if not words:
            return None
        path = Path(words[0]).expanduser()
        if not path.suffix and not path.exists():
            path = path.with_suffix(".py")
        if path.suffix.lower() == ".ipynb":
            units = read_notebook(path.read_bytes(), path).units
        else:
            units = [(str(path), path.read_text(encoding="utf-8"))]
        namespace = frame.f_globals if "-i" in options else {
            "__name__": "__main__" if "-n" not in options else path.stem, "__file__": str(path),
            "__builtins__": frame.f_globals.get("__builtins__", builtins), **shell_names()}
        saved_argv, folder = sys.argv, str(path.resolve().parent)
        sys.argv = [str(path), *words[1:]]
        sys.path.insert(0, folder)  # as IPython: the file imports what lies beside it
        try:
            for label, unit in units:
                exec(compile(unit, label, "exec", dont_inherit=True), namespace)  # noqa: S102 - the user's own file
        except SystemExit as exc:  # as IPython, sys.exit() ends the file, not the notebook
            if exc.code not in (None, 0):
                print(f"{path} exited with status {exc.code}", file=sys.stderr)
        finally:
            sys.argv = saved_argv
            if folder in sys.path:
                sys.path.remove(folder)
        if namespace is not frame.f_globals:
            frame.f_globals.update({k: v for k, v in namespace.items() if k not in ("__name__", "__file__",
                                                                                 "__builtins__")})
        return None

    def magic(self, line: str):
        """The old spelling: ``get_ipython().magic('time f()')``."""
        name, _, rest = line.lstrip("%").partition(" ")
        return self.run_line_magic(name, rest, _stack_depth=2)

    def system(self, command: str) -> None:
        """``!command``: skipped (gradtrace runs the notebook's Python, not its shell commands)."""

    def getoutput(self, command: str) -> list:
        """``x = !command``: skipped; ``x`` is an empty list."""
        return []

    def __getattr__(self, name: str):
        raise AttributeError(f"get_ipython().{name} is not available: gradtrace runs this notebook "
                             f"without IPython (run it in Jupyter to use {name})")


class UsageError(Exception):
    """A magic used in a way IPython refuses too (its UsageError)."""


def new_run() -> None:
    """Forget what an earlier run in this process noted or left (skipped magics, %cd history)."""
    _noted.clear()
    _previous_dirs.clear()


# Magics that only change how IPython shows things or loads extensions: skipped without a word.
_QUIET = frozenset({"matplotlib", "pylab", "load_ext", "reload_ext", "unload_ext", "autoreload",
                    "aimport", "config", "precision", "xmode", "pdb", "who", "whos", "history",
                    "lsmagic", "pip", "conda", "notebook", "doctest_mode", "colors", "autosave",
                    "autocall", "automagic", "pprint", "page", "pinfo", "pinfo2", "clear"})
_noted: set[str] = set()


_previous_dirs: list[str] = []


def _cd(line: str):
    """``%cd [-q] [DIR]``: DIR, ``-`` for the one before, none for home (bookmarks are not kept)."""
    words = _words(line)
    quiet = "-q" in words
    targets = [w for w in words if w == "-" or not w.startswith("-")]
    target = targets[0] if targets else "~"
    if target == "-":
        if not _previous_dirs:
            raise UsageError("%cd -: there is no previous directory")
        target = _previous_dirs[-1]
    _previous_dirs.append(os.getcwd())
    os.chdir(os.path.expanduser(target))
    if not quiet:
        print(os.getcwd())


def _env(line: str):
    """``%env NAME=value`` / ``%env NAME value`` sets, ``%env NAME`` reads (as IPython)."""
    text = line.strip()
    if not text:
        return dict(os.environ)
    name, sep, value = text.partition("=") if "=" in text.split(" ", 1)[0] else text.partition(" ")
    if not sep:
        if name not in os.environ:
            raise UsageError(f"Environment does not have key: {name}")  # IPython's words
        return os.environ[name]
    os.environ[name.strip()] = value.strip()
    print(f"env: {name.strip()}={value.strip()}")
    return None


_PLACES = {"cd": _cd, "env": _env, "pwd": lambda _line: os.getcwd()}


def _expanded(line: str, frame) -> str:
    """``$name`` and ``{expression}`` in a magic's line replaced by their values, as IPython
    does (``%run train.py --lr $lr``); what cannot be read is left as written, ``$$`` is ``$``."""
    def value_of(text: str, whole: str) -> str:
        try:
            return str(eval(text, frame.f_globals, frame.f_locals))  # noqa: S307 - the user's own
        except Exception:  # noqa: BLE001 - as IPython: an expression that fails stays as written
            return whole
    line = re.sub(r"(?<!\$)\{([^{}]+)\}", lambda m: value_of(m.group(1), m.group(0)), line)
    line = re.sub(r"(?<!\$)\$([A-Za-z_]\w*)", lambda m: value_of(m.group(1), m.group(0)), line)
    return line.replace("$$", "$")


_SHELL = Shell()


def get_ipython() -> Shell:
    """The stand-in shell (IPython's own function of this name returns the running shell)."""
    return _SHELL


def shell_names() -> dict:
    """What IPython puts in a notebook's namespace that a notebook's code calls."""
    return {"get_ipython": get_ipython, "display": display}
