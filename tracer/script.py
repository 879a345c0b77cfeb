"""``run_script``: run a Python script as ``__main__`` under the tracer and return its Trace."""

from __future__ import annotations

import contextlib
import linecache
import os
import re
import signal
import sys
import threading
import traceback
import types
from collections.abc import Sequence
from pathlib import Path

from .api import trace
from .errors import ArgumentError, ScriptNotFoundError
from .ipyshell import new_run, shell_names
from .notebook import is_cell_label, read_notebook
from .records import CellError, ErrorRecord
from .snapshot import DEFAULT_MAX_ELEMENTS
from .trace import Trace

__all__ = ["run_script", "script_traceback"]

_OUR_TOP_LEVEL = ("engine", "tracer", "cli")
_OUR_ROOT = Path(__file__).resolve().parent.parent
_EXPORTED_MAGIC = re.compile(rb"\bget_ipython\(\)\.(?:run_line_magic|run_cell_magic|system|getoutput|magic)\(")


def _shadowed_modules(script_dir: Path, will_write=()) -> tuple[set[str], dict[str, types.ModuleType]]:
    """The names of ours that the script's own files take (also files a notebook will write with
    %%writefile), and our modules of those names, removed while it runs."""
    names, removed = set(), {}
    written = {Path(name) for name in will_write}
    for name in _OUR_TOP_LEVEL:
        if (script_dir / f"{name}.py").exists() or (script_dir / name / "__init__.py").exists() \
                or Path(f"{name}.py") in written or Path(name, "__init__.py") in written:
            if (script_dir / name).resolve() == _OUR_ROOT / name or script_dir.resolve() == _OUR_ROOT:
                continue
            names.add(name)
            for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
                removed[key] = sys.modules.pop(key)
    return names, removed


def _forget_own_modules(script_dir: Path, before: set[str]) -> None:
    """Remove the modules the script imported from its own folder (its core.py, its dezero/), so
    that the next script run in this process imports its own, not these. Left alone: packages
    already imported before (a submodule loaded now stays with its parent), gradtrace's own,
    anything in an environment (site-packages, a venv in the folder) and compiled extensions,
    which Python cannot load twice."""
    installed = {Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}}
    tops_before = {name.split(".")[0] for name in before}
    for key in [k for k in sys.modules if k not in before and k.split(".")[0] not in tops_before
                and k.split(".")[0] not in _OUR_TOP_LEVEL]:
        try:
            location = getattr(sys.modules[key], "__file__", None)
            if not isinstance(location, str) or not location.endswith(".py"):
                continue
            path = Path(location).resolve()
            if script_dir not in path.parents or "site-packages" in path.parts or \
                    "dist-packages" in path.parts or any(root in path.parents for root in installed):
                continue
        except Exception:  # noqa: BLE001 - a module whose attributes raise (lazy loaders) stays
            continue
        sys.modules.pop(key, None)


class _ProcessState:
    """What a script may change for the whole process and gradtrace puts back after it: signal
    handlers (one that ignores SIGTERM would keep gradtrace from being stopped), standard output
    and error closed at the descriptor, the recursion limit, numpy's error handling and print
    options."""

    _SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGALRM")
                     if hasattr(signal, name))

    def __init__(self) -> None:
        self.main_thread = threading.current_thread() is threading.main_thread()
        self.handlers = {sig: signal.getsignal(sig) for sig in self._SIGNALS} if self.main_thread else {}
        self.recursion = sys.getrecursionlimit()
        self.descriptors = {}  # fd 1 and 2, kept: a script's os.close(1) would take our report with it
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                self.descriptors[fd] = os.dup(fd)
        numpy = sys.modules.get("numpy")
        self.numpy = (numpy.geterr(), numpy.get_printoptions()) if numpy is not None else None

    def restore(self) -> None:
        """Put everything back (a part that cannot be restored is left as the script set it)."""
        for sig, handler in self.handlers.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                with contextlib.suppress(ValueError, OSError, TypeError, AttributeError):
                    if sig == getattr(signal, "SIGALRM", None):  # the script's timer would fire into it
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    signal.signal(sig, handler)
        for fd, copy in self.descriptors.items():
            try:
                os.fstat(fd)
            except OSError:  # the script closed it
                with contextlib.suppress(OSError):
                    os.dup2(copy, fd)
            with contextlib.suppress(OSError):
                os.close(copy)
        if sys.getrecursionlimit() != self.recursion:
            with contextlib.suppress(ValueError, RecursionError):
                sys.setrecursionlimit(self.recursion)
        numpy = sys.modules.get("numpy")
        if self.numpy is not None and numpy is not None:
            errors, printing = self.numpy
            with contextlib.suppress(ValueError, TypeError):
                numpy.seterr(**errors)
                numpy.set_printoptions(**printing)


def _usable(stream, fd: int, mode: str):
    """``stream``, or a new one on its file descriptor when the script closed it (Python's own
    standard streams leave the descriptor open)."""
    if stream is None or not getattr(stream, "closed", False):
        return stream
    try:
        return open(fd, mode, buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    except OSError:  # the descriptor itself is gone (os.close(2)): nothing better to offer
        return stream


def _cache_sources(sources: dict[str, str]) -> None:
    """Let tracebacks show the lines of a notebook's cells (they have no file of their own)."""
    for label, text in sources.items():
        linecache.cache[label] = (len(text), None, text.splitlines(True), label)


def _forget_sources(sources: dict[str, str]) -> None:
    for label in sources:
        linecache.cache.pop(label, None)


def script_traceback(exc: BaseException, script: Path) -> str:
    """The traceback of ``exc`` without gradtrace's own frames (tracer, engine, cli): the script's."""
    ours = (_OUR_ROOT / "tracer", _OUR_ROOT / "engine")
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not any(Path(f.filename).resolve().is_relative_to(d) for d in ours)
              and Path(f.filename).resolve() != _OUR_ROOT / "cli.py"]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)] if frames else []
    lines += traceback.format_exception_only(type(exc), exc)  # a SyntaxError has no frames of the script
    return "".join(lines)


def run_script(path: str | os.PathLike, argv: Sequence[str] = (), *, keep="last",
               max_elements: int = DEFAULT_MAX_ELEMENTS, function_names: Sequence[str] = (),
               variable_names: Sequence[str] = (), allow_errors: bool = False) -> Trace:
    """Run ``path`` as ``__main__`` (its argv, its directory on ``sys.path``) and trace it.

    Engines are found automatically: every DeZero-style Function / Variable class the script
    defines or imports from its own directory is hooked (name them with ``function_names`` /
    ``variable_names`` when the guess is wrong). The Trace is returned also when the script
    raises (or is interrupted with Ctrl-C): ``trace.error`` then holds the exception (with the
    script's traceback) and the pass that was running keeps its failing step marked.
    ``sys.exit(0)`` counts as success. The working directory is restored afterwards.

    A Jupyter notebook (``.ipynb``) runs as Jupyter would: its code cells in order, in the
    notebook's directory, IPython magics blanked (``tracer.notebook``); a traceback names the cell.
    It stops at the first cell that raises, as Jupyter's Run All does; with ``allow_errors``
    (notebooks only, as nbconvert's option) a cell that raises an ``Exception`` is recorded in
    ``trace.cell_errors`` and the run goes on with the next cell (Ctrl-C, ``sys.exit`` and the
    other exceptions that are no ``Exception`` still end it).
    """
    if argv is None:
        argv = ()
    if isinstance(argv, (str, bytes, os.PathLike)) or not all(isinstance(a, (str, os.PathLike)) for a in argv):
        raise ArgumentError(f"argv must be a list of strings, e.g. ['--lr', '0.1'], got {argv!r}")
    argv = [os.fspath(a) for a in argv]
    script = Path(path)
    if not script.is_file():
        raise ScriptNotFoundError(f"script {script} not found: check the path"
                                  if not script.exists() else f"{script} is not a file: give a .py script")
    try:
        source = script.read_bytes()
    except OSError as exc:
        raise ScriptNotFoundError(f"cannot read {script}: {exc.strerror}") from exc
    is_notebook = script.suffix.lower() == ".ipynb"
    if allow_errors and not is_notebook:
        raise ArgumentError(f"allow_errors goes on with a notebook's next cell after one raises; {script} is "
                            f"not a notebook (.ipynb): a script stops at its first error, as under python")
    notebook = read_notebook(source, script) if is_notebook else None
    units = notebook.units if notebook is not None else [(str(script), source)]
    script_dir = script.resolve().parent
    module = types.ModuleType("__main__")
    module.__file__ = str(script)
    module.__builtins__ = __builtins__
    # A notebook, or a script exported from one (nbconvert writes `get_ipython().run_line_magic(...)`
    # for its magics), finds `get_ipython` and `display` in its namespace, as in Jupyter.
    if is_notebook or _EXPORTED_MAGIC.search(source) is not None:
        module.__dict__.update(shell_names())
        new_run()
    saved_argv, saved_path, saved_cwd = sys.argv, list(sys.path), os.getcwd()
    saved_streams = sys.stdin, sys.stdout, sys.stderr  # a script may replace (or close) them
    saved_environ = dict(os.environ)  # and set variables (a notebook's %env)
    saved_umask = os.umask(0o022)  # read it (os.umask only reads by setting): our outputs' modes
    os.umask(saved_umask)
    saved_main = sys.modules.get("__main__")
    saved_modules = set(sys.modules)
    saved_state = _ProcessState()
    shadowed_tops, shadowed = _shadowed_modules(script_dir, notebook.writes if notebook is not None else ())
    recording = trace(auto=True, keep=keep, max_elements=max_elements, function_names=function_names,
                      variable_names=variable_names, search_dirs=[script_dir], find_in_caller=False,
                      warn=False)
    recording.add_namespace(module.__dict__)
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script_dir))
    sys.modules["__main__"] = module
    if is_notebook:
        _cache_sources(notebook.sources)
    started_in = os.getpid()
    went_on: list[CellError] = []

    def _go_on(label: str, exc: Exception) -> None:
        # a SyntaxError's text repeats the cell and line, which CellError names itself
        message = exc.msg if isinstance(exc, SyntaxError) and exc.filename == label else _message(exc)
        went_on.append(CellError(label, _line_in(exc, label), ErrorRecord(
            type(exc).__name__, message, None, script_traceback(exc, script))))
    try:
        failure = _execute(units, module.__dict__, recording, script_dir if is_notebook else None,
                           _go_on if allow_errors else None)
        failure_text = script_traceback(failure, script) if failure is not None else None
        if os.getpid() != started_in:  # a child the script forked reached the script's end
            _end_forked_child(failure, failure_text)
    finally:
        sys.stdin, sys.stdout, sys.stderr = (_usable(stream, fd, mode) for stream, fd, mode
                                             in zip(saved_streams, (0, 1, 2), ("r", "w", "w")))
        if os.environ != saved_environ:
            os.environ.clear()
            os.environ.update(saved_environ)
        os.umask(saved_umask)
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        sys.path[:] = saved_path
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        for key in [k for k in sys.modules if k.split(".")[0] in shadowed_tops]:
            del sys.modules[key]  # the script's own module of that name
        _forget_own_modules(script_dir, saved_modules)
        sys.modules.update(shadowed)
        saved_state.restore()
        if is_notebook:
            _forget_sources(notebook.sources)
    result = recording.trace
    result.error = None  # a successful SystemExit is not an error; real failures are set below
    result.cell_errors = tuple(went_on)
    if failure is not None:
        step = result.passes[-1].error.step if result.passes and result.passes[-1].error else None
        message = str(failure.code) if isinstance(failure, SystemExit) else _message(failure)
        result.error = ErrorRecord(type(failure).__name__, message, step, failure_text)
    return result


def _message(exc: BaseException) -> str:
    """The exception's text; for a SyntaxError in a notebook cell "'(' was never closed in
    hw.ipynb (code cell 2, In [7]), line 3", where Python writes the place in parentheses, which
    the cell's label already has."""
    if isinstance(exc, SyntaxError) and exc.msg and is_cell_label(exc.filename):
        line = f", line {exc.lineno}" if type(exc.lineno) is int else ""
        return f"{exc.msg} in {os.path.basename(exc.filename)}{line}"
    return str(exc)


def _end_forked_child(failure, failure_text: str | None) -> None:
    """End a process the script forked where the script ends, as ``python script.py`` would:
    else it went on to draw and write OUT a second time."""
    code = 0
    if isinstance(failure, SystemExit):
        code = failure.code if isinstance(failure.code, int) else (0 if failure.code is None else 1)
    elif isinstance(failure, _HardExit):
        code = failure.code
    elif failure is not None:
        code = 1
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.__stderr__.write(failure_text or f"{type(failure).__name__}: {failure}\n")
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(code)


class _HardExit(BaseException):
    """``os._exit(code)`` called by the script itself: its run ends here, gradtrace's does not."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


_HardExit.__name__ = _HardExit.__qualname__ = "os._exit"  # what a step it ended in shows: "os._exit: 4"


@contextlib.contextmanager
def _os_exit_ends_the_script():
    """While the script runs, its own ``os._exit`` (in its thread and process) ends only the
    script, so that what it recorded is still drawn; elsewhere it ends the process, as always."""
    real_exit, pid, thread = os._exit, os.getpid(), threading.get_ident()

    def _exit(code):
        if os.getpid() != pid or threading.get_ident() != thread:  # a forked child, another thread
            real_exit(code)
        raise _HardExit(code)
    os._exit = _exit
    try:
        yield
    finally:
        os._exit = real_exit


def _line_in(exc: BaseException, label: str) -> int | None:
    """The line of the code unit ``label`` that was running when ``exc`` was raised (a
    SyntaxError's own line), None when it is not in the traceback."""
    if isinstance(exc, SyntaxError) and exc.filename == label:
        return exc.lineno
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == label:
            return tb.tb_lineno
        tb = tb.tb_next
    return None


def _execute(units, namespace: dict, recording, workdir: Path | None, go_on=None) -> BaseException | None:
    """Run the code units under ``recording``; the exception that ended the script, None for success.

    With ``go_on`` (``allow_errors``), a unit that raises an Exception is handed to
    ``go_on(label, exc)`` and the next unit runs; BaseExceptions (Ctrl-C, sys.exit) still end the run.
    """
    try:
        if workdir is not None:
            os.chdir(workdir)  # as Jupyter runs a notebook
        with recording, _os_exit_ends_the_script():
            for label, unit in units:
                try:
                    # noqa: S102 below - running the user's script is the job
                    exec(compile(unit, label, "exec", dont_inherit=True), namespace)  # noqa: S102
                except Exception as exc:  # noqa: BLE001 - the cell's own error, reported by go_on
                    if go_on is None:
                        raise
                    go_on(label, exc)
    except (SystemExit, _HardExit) as exc:
        if exc.code in (None, 0):
            return None
        return exc if isinstance(exc, SystemExit) else SystemExit(exc.code)
    except BaseException as exc:  # noqa: BLE001 - the script's own end (even GeneratorExit): reported
        return exc
    return None
