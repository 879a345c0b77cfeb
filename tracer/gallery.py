"""The sample scripts: find them, say what each shows, render them all (``gradtrace samples``)."""

from __future__ import annotations

import ast
import contextlib
import io
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TraceError
from .output import write_atomic
from .script import run_script

__all__ = ["Sample", "SampleResult", "SamplesNotFoundError", "find_samples_dir", "find_samples",
           "render_sample"]

_HERE = Path(__file__).resolve().parent


class SamplesNotFoundError(TraceError):
    """No samples directory was found."""


@dataclass(frozen=True)
class Sample:
    """A sample script: its name (file stem), path, the first line of its docstring, and how
    the gallery draws it (``GALLERY = {"args": [...], "options": {...}}`` in the script, read
    without running it: the script's arguments and ``to_dot`` options)."""

    name: str
    path: Path
    summary: str
    args: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)


@dataclass
class SampleResult:
    """What rendering one sample gave: the file written, the script's output, any problem."""

    sample: Sample
    path: Path | None
    output: str = ""
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def find_samples_dir(directory: str | os.PathLike | None = None) -> Path:
    """The samples directory: ``directory``, else this checkout's ``samples/``, else the installed
    copy (``share/gradtrace/samples`` under ``sys.prefix``), else ``./samples``."""
    if directory is not None:
        candidates = [Path(directory)]
    else:
        candidates = [_HERE.parent / "samples", Path(sys.prefix) / "share" / "gradtrace" / "samples",
                      Path.cwd() / "samples"]
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.py")):
            return candidate
    where = " or ".join(str(c) for c in candidates)
    raise SamplesNotFoundError(f"no sample scripts in {where}: run from a gradtrace checkout, "
                               f"or pass --dir path/to/samples")


def _gallery_settings(tree: ast.Module, path: Path) -> tuple[tuple[str, ...], dict]:
    """The literal ``GALLERY`` dict of a sample, checked; ((), {}) when there is none."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "GALLERY"):
            try:
                settings = ast.literal_eval(node.value)
            except ValueError:
                settings = None
            args = settings.get("args", []) if isinstance(settings, dict) else None
            options = settings.get("options", {}) if isinstance(settings, dict) else None
            if (not isinstance(args, list) or not all(isinstance(a, str) for a in args)
                    or not isinstance(options, dict) or set(settings) - {"args", "options"}):
                raise SamplesNotFoundError(f"{path}: GALLERY must be a literal dict with 'args' (a list "
                                           f"of strings) and 'options' (a dict of picture options)")
            return tuple(args), options
    return (), {}


def _read(path: Path) -> Sample:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return Sample(path.stem, path, "(cannot read its docstring)")
    docstring = ast.get_docstring(tree)
    summary = docstring.strip().splitlines()[0] if docstring else "(no description)"
    return Sample(path.stem, path, summary, *_gallery_settings(tree, path))


def find_samples(directory: str | os.PathLike | None = None) -> list[Sample]:
    """Every ``*.py`` in the samples directory (not ``_*.py``), sorted by name."""
    base = find_samples_dir(directory)
    return [_read(path) for path in sorted(base.glob("*.py")) if not path.name.startswith("_")]


def render_sample(sample: Sample, out_dir: str | os.PathLike, fmt: str = "svg", *,
                  renderer: str | None = None, **dot_options) -> SampleResult:
    """Run a sample with its gallery arguments (output captured) and write ``out_dir/<name>.<fmt>``.

    Problems (the sample raised, the renderer failed) are returned in ``error``, not raised.
    """
    from .export import export

    target = Path(out_dir) / f"{sample.name}.{fmt}"
    captured = io.StringIO()
    result = SampleResult(sample, None)
    cwd = os.getcwd()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
                with contextlib.redirect_stdout(captured):
                    trace = run_script(sample.path, sample.args)
            finally:
                with contextlib.suppress(OSError):
                    os.chdir(cwd)
            if trace.error is not None:
                result.error = f"the sample raised {trace.error}"
            elif not any(call.inputs or call.outputs for call in trace.calls.values()):
                result.error = ("it made no Function call on a graph (no engine found?): nothing to "
                                "draw, nothing written")  # as render refuses it: an empty picture
            else:
                options = {**sample.options, **dot_options}
                result.path = write_atomic(target, export(trace, fmt, renderer=renderer, **options))
        except TraceError as exc:
            result.error = str(exc)
    result.output = captured.getvalue()
    result.warnings = [str(w.message) for w in caught]
    return result
