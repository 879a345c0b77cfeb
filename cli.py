"""gradtrace's command line (click): parse the arguments, call into ``tracer``, report."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import warnings

import click

import tracer
from tracer import check_notes as _check_notes
from tracer import error_text as _error_text
from tracer import export as _export
from tracer import frames_dir as _frames_dir
from tracer import out_format as _formats
from tracer import output as _output
from tracer import pass_choice as _passes
from tracer import run_report as _outcome
from tracer import script_args as _script_args
from tracer import stdio as _stdio
from tracer.render import BUNDLED_NO_PDF

__all__ = ["main"]

# Options may come before or after SCRIPT; options gradtrace does not know go to the script,
# and everything after `--` goes to the script untouched.
_SCRIPT_COMMAND = {"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]}


class _ScriptCommand(click.Command):
    """A command that runs a script: an option passed on to the script that looks like a
    misspelt gradtrace option (``--frame`` for ``--frames``) and that the script's text does not
    name (argparse's ``--steps``) is named in a warning."""

    def parse_args(self, ctx, args):
        ctx.meta["gradtrace.after_dashes"] = len(args) - args.index("--") - 1 if "--" in args else 0
        takes_value = _options_taking_values(self)
        dashed = _script_args.dashed_script(_script_args.before_dashes(args), takes_value)
        if dashed is not None:
            raise click.UsageError(_script_args.dashed_script_message(dashed, ctx.info_name), ctx)
        short = {name for param in self.params if isinstance(param, click.Option)
                 for name in param.opts + param.secondary_opts if re.fullmatch(r"-[^-]", name)}
        short.update(name for name in ctx.help_option_names if re.fullmatch(r"-[^-]", name))
        mixed = _script_args.mixed_cluster(_script_args.before_dashes(args), takes_value, short)
        if mixed is not None:
            raise click.UsageError(mixed, ctx)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        script = str(ctx.params.get("script"))
        if ctx.params.get("allow_errors") and not script.lower().endswith((".ipynb", ".json")):
            raise click.UsageError(
                f"--allow-errors goes on with a notebook's next cell after one raises; {script} is not "
                f"a notebook (.ipynb): a script stops at its first error, as under python (catch the "
                f"error in the script to go on; an option of the script's own goes after --)", ctx)
        script_args = list(ctx.params.get("args") or ())
        undelimited = script_args[:len(script_args) - ctx.meta.get("gradtrace.after_dashes", 0)]
        every = [name for param in self.params if isinstance(param, click.Option)
                 for name in param.opts + param.secondary_opts]
        ours = [name for name in every if name.startswith("--")]
        names = _script_args.option_like(undelimited, every)
        script_text = _script_args.read_text(ctx.params.get("script")) if names else ""
        for name in names:
            if _script_args.names_itself(script_text, name):
                continue  # the script's own option
            warning = _script_args.misplaced_option(name, ours, _commands_with_option(ctx, name),
                                                    ctx.command.name)
            if warning is not None:
                _warn(warning)
        return super().invoke(ctx)


def _options_taking_values(command) -> set[str]:
    """The names of ``command``'s options that take a value (``-o OUT``, not ``--json``)."""
    return {name for p in command.params if isinstance(p, click.Option) and not p.is_flag
            and not p.count for name in p.opts + p.secondary_opts}


def _has_option(command, name: str) -> bool:
    return any(name in param.opts + param.secondary_opts for param in command.params
               if isinstance(param, click.Option))


def _commands_with_option(ctx, name: str) -> list[str]:
    """The other gradtrace commands that have the option ``name`` (``--timeout``: render)."""
    group = ctx.parent.command if ctx.parent is not None else None
    if group is not None and _has_option(group, name):
        return ["itself (before the command)"]
    return [command_name for command_name, command in sorted(getattr(group, "commands", {}).items())
            if command_name != ctx.command.name and _has_option(command, name)]


_ARGS_NOTE = """
SCRIPT is a .py file, a Jupyter notebook (.ipynb: its code cells run in order, in the
notebook's folder, up to the first cell that raises, or past it with --allow-errors; cells are
named "code cell 2, In [7]" (markdown cells not counted; In [n] when saved executed); %run,
%cd, %env, %%writefile and %%capture work, %time runs its statement,
display magics and !shell commands are skipped), or a trace
saved with -o trace.json (drawn again without running anything). Options
gradtrace knows may come before or after SCRIPT; any other option goes to the script, in order.
Put the script's own arguments after `--` when they share a name with a gradtrace option
(everything after `--` goes to the script untouched).
"""


# ----- parameter types --------------------------------------------------------------------------

class _PassType(click.ParamType):
    """``last``, ``first``, a pass number >= 1, and (where allowed) ``all``."""

    name = "PASS"

    def __init__(self, allow_all: bool = False) -> None:
        self.allow_all = allow_all

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value in ("last", "first") or (self.allow_all and value == "all"):
            return value
        text = str(value).strip().lower()
        if text in ("last", "first") or (self.allow_all and text == "all"):
            return text
        if text.isascii() and text.isdigit() and int(text) >= 1:  # not "³", which isdigit() accepts
            return int(text)
        choices = "last, first, all" if self.allow_all else "last, first"
        self.fail(f"{value!r} is not a pass: give {choices} or a pass number (1 = the first backward pass)",
                  param, ctx)


class _ScriptType(click.Path):
    """An existing script file; a leading dash means an option was put where SCRIPT belongs."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.startswith("-") and value != "-":
            command = ctx.info_name if ctx else "render"
            if os.path.isfile(value):  # a script whose name starts with a dash
                raise click.UsageError(_script_args.dashed_script_message(value, command), ctx)
            raise click.UsageError(
                f"no such option: {value} (options for the script go after SCRIPT, e.g. "
                f"gradtrace {command} script.py {value} ...)", ctx)
        return super().convert(value, param, ctx)


PASS = _PassType()
PASS_OR_ALL = _PassType(allow_all=True)
KEEP = _PassType(allow_all=True)


# ----- the group --------------------------------------------------------------------------------

_AS_PROGRAM = False  # set by _Group.main when gradtrace runs as the program (it then exits)


class _Group(click.Group):
    """Turns gradtrace's own errors into one ``Error: ...`` line (exit 1), never a traceback."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        global _AS_PROGRAM
        _AS_PROGRAM = standalone_mode
        try:
            return super().main(*args, standalone_mode=standalone_mode, **kwargs)
        except OSError as exc:  # --help or --version to a full disk: outside any command
            if not standalone_mode:
                raise
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"Error: cannot write to standard output: {exc.strerror or exc}\n")
            sys.exit(1)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:  # while drawing or checking: exit as an interrupted program does
            _echo("Error: interrupted (Ctrl-C); files are written whole or not at all", err=True)
            raise click.exceptions.Exit(130) from None
        except BrokenPipeError:  # e.g. `gradtrace samples | head -2`: the reader left, say nothing
            _stdio.silence_stdout()
            raise click.exceptions.Exit(1) from None
        except tracer.TraceError as exc:
            raise click.ClickException(_error_text.trace_error_line(exc)) from None
        except OSError as exc:
            raise click.ClickException(_error_text.os_error_line(exc)) from None
        except Exception as exc:  # a bug of ours: one line, the traceback only on request
            if os.environ.get("GRADTRACE_DEBUG"):
                raise
            raise click.ClickException(_error_text.internal_error_line(exc)) from None


def _stdout_finished() -> None:
    """Our result is on stdout: what the script's atexit handlers and threads still print goes to
    stderr. Only when gradtrace is the program: called in-process (``main(..., standalone_mode=False)``),
    the host keeps its stdout."""
    if _AS_PROGRAM:
        _stdio.stdout_to_stderr()


def _echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """``click.echo``, with characters the terminal's encoding lacks written as escapes (a
    Korean Windows console in cp949 has no emoji) instead of failing."""
    try:
        click.echo(message, err=err, nl=nl)
    except UnicodeEncodeError:
        stream = sys.stderr if err else sys.stdout
        encoding = getattr(stream, "encoding", None) or "ascii"
        click.echo(message.encode(encoding, "backslashreplace").decode(encoding), err=err, nl=nl)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="""\b
Examples:
  gradtrace render samples/seed_example.py -o seed.svg
  gradtrace steps samples/own_engine_bug.py
  gradtrace expr 'square(exp(square(x)))' --let x=0.5 -o expr.svg
  gradtrace check my_step.py
  gradtrace samples --out gallery/
""")
@click.version_option(tracer.__version__, "-V", "--version", prog_name="gradtrace")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and warnings to stderr.")
@click.pass_context
def main(ctx, quiet):
    """See backpropagation: run DeZero-style autograd code under a tracer and draw its graph
    with values, gradients and the backward order."""
    ctx.obj = {"quiet": quiet}


# ----- reporting helpers --------------------------------------------------------------------------

def _info(message: str) -> None:
    ctx = click.get_current_context(silent=True)
    if not (ctx and ctx.find_root().obj and ctx.find_root().obj.get("quiet")):
        _echo(message, err=True)


def _warn(message: str) -> None:
    _echo(_outcome.warning_line(message), err=True)


def _report_run(trace, script: str, **options) -> None:
    """The script's traceback and the warnings about what was (not) recorded, on stderr."""
    for line in _outcome.run_report(trace, script, **options):
        _echo(line, err=True)


def _nothing(trace, message: str) -> click.ClickException:
    """The error for a run that left nothing to show; Ctrl-C (before the first call) keeps 130."""
    error = click.ClickException(message)
    error.exit_code = _outcome.failure_status(trace)
    return error


def _run(script, args, *, keep, max_elements, function_class, variable_class, allow_errors=False,
         quiet_stdout=False, which=None):
    """Run the script under the tracer (its stdout to stderr when ours carries the result).

    The working directory is restored afterwards, so a script that changes it (os.chdir) does
    not move OUT or the frames directory, which are relative to where gradtrace was started.
    """
    if str(script).lower().endswith(".json"):
        return _saved_trace(script, args, which)
    prints = _stdio.prints_to_stderr() if quiet_stdout else contextlib.nullcontext()
    cwd = os.getcwd()
    try:
        with prints:
            trace = tracer.run_script(script, list(args), keep=keep, max_elements=max_elements,
                                      function_names=function_class, variable_names=variable_class,
                                      allow_errors=allow_errors)
    finally:
        with contextlib.suppress(OSError):
            os.chdir(cwd)
    for problem in trace.warnings:
        _warn(problem)
    if _passes.beyond_the_run(trace, keep):
        _report_run(trace, script)
        raise _passes.missing_pass_error(trace, script, keep,
                                         getattr(_current_param_type("which"), "allow_all", False))
    note = _passes.kept_note(trace, which, keep)
    if note is not None:
        _warn(note)
    return trace


def _current_param_type(name: str):
    """The type of the running command's parameter ``name`` (None outside a command)."""
    ctx = click.get_current_context(silent=True)
    param = next((p for p in ctx.command.params if p.name == name), None) if ctx is not None else None
    return param.type if param is not None else None


def _saved_trace(path, args, which):
    """A trace saved with ``-o trace.json``: drawn again without running anything."""
    if args:
        raise click.UsageError(f"{path} is a saved trace, which takes no script arguments "
                               f"(got {' '.join(args)}): leave them out")
    ctx = click.get_current_context()
    ignored = [f"--{name.replace('_', '-')}" for name in ("keep", "max_elements", "function_class",
                                                          "variable_class", "allow_errors")
               if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)]
    if ignored:
        _warn(f"{' and '.join(ignored)} only appl{'y' if len(ignored) > 1 else 'ies'} when a script "
              f"runs; {path} is drawn as it was saved")
    trace = tracer.load(path)
    for problem in trace.warnings:
        _warn(problem)
    for message in _passes.saved_notes(trace, path, which):
        _warn(message)
    return trace


def _keep_for(which, keep):
    """The keep policy: as asked, else just what ``--pass`` shows. A ``--keep`` that can never
    keep the pass ``--pass K`` names is refused before the script runs."""
    if isinstance(which, int) and (keep == "first" and which > 1 or isinstance(keep, int) and keep != which) \
            and not str(click.get_current_context().params.get("script", "")).lower().endswith(".json"):
        raise click.UsageError(f"--pass {which} is never kept with --keep {keep}: leave out --keep "
                               f"(pass {which} is then kept), or give --keep {which} or --keep all")
    if keep is not None:
        return keep
    return "all" if which == "all" else which


def _apply(func, decorators):
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _set_quiet(ctx, param, value):
    if value:
        ctx.find_root().obj["quiet"] = True


quiet_option = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_set_quiet,
                            help="Print only errors and warnings to stderr (as gradtrace -q).")


# check records arrays whole up to this size: its numerical checks need the values themselves
# (the default of 100 left a book-sized model's MatMul, Sigmoid and Add unchecked).
CHECK_MAX_ELEMENTS = 1_000


def _script_options(whole: int):
    """The arguments and options every command that runs a script shares (``whole``: the
    --max-elements default)."""
    return lambda func: _apply(func, [
        quiet_option,
        click.argument("script", type=_ScriptType()),
        click.argument("args", nargs=-1, type=click.UNPROCESSED),
        click.option("--keep", type=KEEP, default=None, metavar="PASS",
                     help="Backward passes to record: last, first, all or a number "
                          "(default: the pass shown)."),
        click.option("--max-elements", type=click.IntRange(min=0), default=whole, show_default=True,
                     help="Arrays up to this size are recorded whole; bigger ones summarised"
                          + (" (and not checked numerically)." if whole == CHECK_MAX_ELEMENTS else ".")),
        click.option("--function-class", multiple=True, metavar="NAME",
                     help="The engine's Function base class, when auto-detection guesses wrong "
                          "(repeatable)."),
        click.option("--variable-class", multiple=True, metavar="NAME",
                     help="The engine's Variable class (repeatable)."),
        click.option("--allow-errors", is_flag=True,
                     help="Notebooks only: after a cell raises, go on with the next cell (as nbconvert "
                          "--allow-errors); each such cell is named in a warning. Ctrl-C and sys.exit() "
                          "still stop the run."),
    ])


script_options = _script_options(100)


def output_options(func):
    """-o OUT and --format."""
    return _apply(func, [
        click.option("-o", "--output", "out", metavar="OUT",
                     help="Output file; the format comes from its extension (.dot .gv .svg .png .pdf "
                          ".json .html). '-' writes a text format to stdout (DOT unless --format)."),
        click.option("-f", "--format", "fmt", type=click.Choice(_export.FORMATS, case_sensitive=False),
                     help="Output format (overrides the extension). json: the whole trace; html: a "
                          "step-by-step player."),
    ])


def picture_options(func):
    """How the graph is drawn (the options of tracer.dot.to_dot and tracer.render)."""
    return _apply(func, [
        click.option("--values/--no-values", default=True, show_default=True, help="Show forward values."),
        click.option("--grads/--no-grads", default=True, show_default=True, help="Show gradients."),
        click.option("--shapes/--no-shapes", default=True, show_default=True,
                     help="Show shape and dtype of arrays."),
        click.option("--precision", type=click.IntRange(1, 17), default=4, show_default=True,
                     help="Significant digits of numbers (the first elements and min/max/mean of "
                          "an array too big to show whole: at most 3, unless you ask for 5 or more)."),
        click.option("--rankdir", type=click.Choice(["TB", "LR", "BT", "RL"], case_sensitive=False),
                     default="TB", show_default=True,
                     help="Layout direction: top-bottom, left-right, bottom-top or right-left."),
        click.option("--theme", type=click.Choice(["lecture", "debug"]), default=None,
                     help="lecture (printable) or debug (NaN/Inf and the failing step in colour; "
                          "check -o draws its findings in it too). "
                          "Default: lecture, or debug when the run raised."),
        click.option("--inner", type=click.Choice(["auto", "show", "hide"]), default="auto",
                     show_default=True,
                     help="Calls made inside backward steps: auto shows them when the pass used "
                          "create_graph."),
        click.option("--grad-edges/--no-grad-edges", default=False, show_default=True,
                     help="Draw each gradient a step sent as a dashed edge."),
        click.option("--legend/--no-legend", default=False, show_default=True, help="Add a key to the picture."),
        click.option("--renderer", type=click.Choice(["auto", "bundled", "system"]), default=None,
                     help="bundled: graphviz-pure (svg, png); system: Graphviz dot (also pdf). "
                          "Default: auto, or $GRADTRACE_RENDERER."),
        click.option("--dpi", type=click.IntRange(min=10, max=1200), default=None,
                     help="PNG resolution (default 120)."),
        click.option("--timeout", type=click.FloatRange(min=0), default=120, show_default=True,
                     metavar="SECONDS", callback=_seconds,
                     help="Stop a layout that takes longer (0: no limit); huge graphs can take minutes."),
    ])


def _seconds(ctx, param, value):
    """--timeout: a number of seconds; inf means no limit, like 0; NaN is refused."""
    if value is not None and math.isnan(value):
        raise click.BadParameter("NaN is not a number of seconds: give e.g. 120, or 0 for no limit")
    return 0 if value is not None and math.isinf(value) else value


def _fraction(ctx, param, value):
    """--tolerance: a number strictly between 0 and 1; NaN is refused."""
    if value is not None and math.isnan(value):
        raise click.BadParameter("NaN is not a tolerance: give a number between 0 and 1, e.g. 1e-3")
    return value


def _picture(trace, *, theme=None, rankdir="TB", timeout=120, **options) -> dict:
    """The export options: the debug theme by default when the run raised."""
    return dict(options, rankdir=rankdir.upper(), timeout=timeout or None,
                theme=theme or ("debug" if trace.error is not None else "lecture"))


_OPTION_HINTS = {"output": "'-o' / '--output'", "format": "'-f' / '--format'"}


def _prepare_output(out, fmt, renderer=None, *, format_option=True, script=None):
    """Format from --format / OUT; OUT and the renderer checked before anything runs (OUT must
    not be the script or saved trace that is read: writing it would destroy it)."""
    if out not in (None, "-") and script is not None and _formats.same_file(out, script):
        raise click.BadParameter(f"{out} is {script} itself, which would be overwritten: choose "
                                 f"another output path, e.g. -o graph.svg", param_hint="'-o' / '--output'")
    try:
        fmt = _formats.choose_format(out, fmt)
    except _formats.OutputChoiceError as exc:
        # `check -o` has no --format to point at
        message = str(exc) if format_option else str(exc).replace(", or give --format", "")
        raise click.BadParameter(message, param_hint=_OPTION_HINTS[exc.option]) from None
    if fmt == "pdf" and (renderer or "").strip().lower() == "bundled":  # a usage error, as system for html
        raise click.BadParameter(BUNDLED_NO_PDF, param_hint="'--renderer'")
    if out not in (None, "-"):
        _output.check_writable(out)
        _export.check_ready(fmt, renderer)
    return fmt


def _deliver(trace, out, fmt, what: str = "script", **options) -> None:
    """Export the trace and write it atomically to OUT (or to stdout for ``-``)."""
    data = _rendered(trace, fmt, **options)
    if out == "-":  # the file's own bytes (UTF-8, as SVG and JSON declare), whatever the console's encoding
        if sys.stdout is None:  # started with stdout closed (>&-): the picture would go nowhere
            raise click.ClickException("standard output is closed: write to a file with -o FILE")
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:  # a text-only stdout (an embedding host)
            _echo(data.decode("utf-8"), nl=False)
            return
        sys.stdout.flush()
        buffer.write(data)
        buffer.flush()
        _stdout_finished()
    else:
        _output.write_atomic(out, data)
        _info(f"wrote {out}{_outcome.partial_note(trace, what)}")


# ----- render -----------------------------------------------------------------------------------

@main.command(cls=_ScriptCommand, context_settings=_SCRIPT_COMMAND,
              short_help="Run a script and draw its computation graph.", epilog="""\b
Examples:
  gradtrace render samples/seed_example.py -o seed.svg
  gradtrace render train.py --lr 0.1 -o graph.png       (--lr 0.1 goes to train.py)
  gradtrace render -o graph.svg train.py -- -o model.pkl (all after -- goes to train.py)
  gradtrace render samples/newton.py --pass first --grad-edges -o newton.pdf
  gradtrace render samples/mlp_step.py -o - | dot -Tpng > mlp.png
  gradtrace render samples/generations.py --frames frames/ -o player.html
  gradtrace render homework.ipynb -o graph.svg          (a notebook's code cells)
""" + _ARGS_NOTE)
@output_options
@click.option("--pass", "which", type=PASS, default="last", show_default=True,
              help="The backward pass to draw: last, first or a number (1 = the first).")
@click.option("--step", type=click.IntRange(min=0), default=None,
              help="Draw the state after backward step K (0 = before the first step).")
@picture_options
@click.option("--frames", "frames_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Also write one SVG per backward step into DIR (created if missing): "
                   "step-000.svg (before backward), step-001.svg, ... on one layout.")
@script_options
def render(script, args, keep, max_elements, function_class, variable_class, allow_errors, out, fmt, which,
           step, frames_dir, renderer, dpi, **picture):
    """Run SCRIPT [ARGS]... under the tracer and draw its computation graph to OUT."""
    if out is None and frames_dir is None:
        raise click.UsageError("give the output file with -o OUT (e.g. -o graph.svg), or --frames DIR")
    if out not in (None, "-") and frames_dir is not None and \
            os.path.realpath(out) == os.path.realpath(frames_dir):
        raise click.UsageError(f"-o and --frames both name {out}: give the frames their own directory, "
                               f"e.g. --frames frames/")
    if out not in (None, "-") and frames_dir is not None and _frames_dir.is_a_frame_in(out, frames_dir):
        raise click.UsageError(f"-o {out} is inside --frames {frames_dir} with a frame's name: the frames "
                               f"would replace it, or remove it as an old frame; give OUT another name "
                               f"or directory")
    fmt = _prepare_output(out, fmt, renderer, script=script)
    if fmt == "html" and step is not None:
        page = f"{out}#step={step}" if out not in (None, "-") else f"the page with #step={step} after its address"
        raise click.BadParameter(f"the HTML player shows every step: leave out --step and open {page} "
                                 f"to start at step {step}, or draw that step alone (e.g. -o graph.svg "
                                 f"--step {step})", param_hint="'--step'")
    if (fmt == "html" or frames_dir is not None) and not picture["grads"]:
        raise click.BadParameter("frames and the HTML player step through the gradients: leave out "
                                 "--no-grads", param_hint="'--no-grads'")
    if (fmt == "html" or frames_dir is not None) and (renderer or "").lower() == "system":
        raise click.BadParameter("frames and the HTML player are laid out by the bundled renderer "
                                 "(the system dot drops the cell marks they restyle): leave out "
                                 "--renderer system", param_hint="'--renderer'")
    created_frames_dir = False
    if frames_dir is not None:
        _export.check_ready("svg", renderer)
        created_frames_dir = _prepare_frames_dir(frames_dir)
    trace = _run(script, args, keep=_keep_for(which, keep), max_elements=max_elements,
                 function_class=function_class, variable_class=variable_class, allow_errors=allow_errors,
                 quiet_stdout=_stdio.is_stdout(out), which=which)
    _report_run(trace, script, named=bool(function_class))
    # an empty picture (or bare function boxes) would only replace a good one
    if not _outcome.recorded_graph(trace):
        if created_frames_dir:
            _frames_dir.remove_if_empty(frames_dir)  # made for this run, still empty
        raise _nothing(trace, _outcome.nothing_drawn(script, [p for p in (out, frames_dir) if p is not None]))
    if _outcome.interrupted(trace):
        kept = [str(out)] if out not in (None, "-") and os.path.exists(out) else []
        if frames_dir is not None and _frames_dir.holds_frames(frames_dir):
            kept.append(str(frames_dir))
        if kept:  # the user stopped the run: a partial picture must not replace a good one
            raise _nothing(trace, _outcome.left_as_it_was(script, kept))
    options = _picture(trace, which=which, **picture)
    if frames_dir is not None:  # first: frames that cannot be written leave OUT as it was
        _write_frames(trace, frames_dir, created_frames_dir, renderer=renderer, **options)
    if out is not None:
        _deliver(trace, out, fmt, renderer=renderer, dpi=dpi, step=step, source=_source_name(script), **options)
    if trace.error is not None:
        raise click.exceptions.Exit(_outcome.failure_status(trace))


def _source_name(script) -> str:
    """What a page is titled after: the script's (or saved trace's) file name, without its
    folder, so that the same run gives the same bytes wherever it is drawn."""
    return os.path.basename(os.path.normpath(str(script)))


def _prepare_frames_dir(path) -> bool:
    """Create the frames directory before the script runs; whether it was created."""
    if not str(path).strip():
        raise click.UsageError("an empty name is no directory: give one, e.g. frames/")
    return _frames_dir.prepare(path)


def _write_frames(trace, frames_dir, created: bool, **options) -> None:
    """One SVG per step; frames an earlier run left there (step-NNN.svg) are removed."""
    with _warnings_as_lines():
        done = _frames_dir.write(trace, frames_dir, created, **options)
    _info(done)


def _rendered(trace, fmt, **options) -> bytes:
    """Export, turning renderer warnings into ``Warning:`` lines."""
    with _warnings_as_lines():
        return _export.export(trace, fmt, **options)


@contextlib.contextmanager
def _warnings_as_lines():
    """Python warnings become ``Warning:`` lines at once (a slow-layout warning comes before the
    wait, not after it, and is not lost when the export then fails); repeats are shown once."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = _error_text.one_line(str(message))
        if text not in seen:
            seen.add(text)
            _warn(text)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


# ----- steps ------------------------------------------------------------------------------------

@main.command(cls=_ScriptCommand, context_settings=_SCRIPT_COMMAND,
              short_help="Run a script and print the backward order as a table.", epilog="""\b
Examples:
  gradtrace steps samples/generations.py
  gradtrace steps samples/own_engine_bug.py          (Square#1 runs twice: the bug)
  gradtrace steps samples/newton.py --iterations 2 --pass all
  gradtrace steps --json samples/reuse.py > steps.json
""" + _ARGS_NOTE)
@click.option("--pass", "which", type=PASS_OR_ALL, default="last", show_default=True,
              help="The backward pass to show: last, first, all or a number.")
@click.option("--precision", type=click.IntRange(1, 17), default=4, show_default=True,
              help="Significant digits of numbers.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema gradtrace.steps/1) instead of a table.")
@script_options
def steps(script, args, keep, max_elements, function_class, variable_class, allow_errors, which, precision,
          as_json):
    """Run SCRIPT [ARGS]... and print the backward order as a table.

    One row per backward step: the function (op and call number; "(run 2)" when it ran
    again), its generation, the gradient it received for each output, the gradient it
    returned for each input, and each input's .grad after the engine stored it.
    """
    from tracer import steps_table
    trace = _run(script, args, keep=_keep_for(which, keep), max_elements=max_elements,
                 function_class=function_class, variable_class=variable_class, allow_errors=allow_errors,
                 quiet_stdout=as_json, which=which)
    _report_run(trace, script, no_backward="there are no backward steps to show", named=bool(function_class))
    if not _outcome.recorded_graph(trace):  # a pass without calls would show its root as a leaf with a gradient
        raise _nothing(trace, f"nothing to show: {script} left no Function call on a graph (see above)")
    if as_json:
        import json
        _echo(json.dumps(steps_table.steps_to_dict(trace, which), indent=1, ensure_ascii=False))
        _stdout_finished()
    elif trace.passes or isinstance(which, int):
        _echo(steps_table.format_steps(trace, which, precision))
    if trace.error is not None:
        raise click.exceptions.Exit(_outcome.failure_status(trace))


# ----- check ------------------------------------------------------------------------------------

@main.command(cls=_ScriptCommand, context_settings=_SCRIPT_COMMAND,
              short_help="Run a script and report the usual backprop bugs.", epilog="""\b
Examples:
  gradtrace check samples/own_engine_bug.py       (exit 1: functions ran out of order)
  gradtrace check samples/forgot_cleargrad.py --pass all   (warnings: x.grad never cleared)
  gradtrace check my_step.py --pass all -o findings.svg
  gradtrace check --json train.py --epochs 1 > findings.json
  gradtrace check model.py --only wrong-backward --tolerance 1e-4

Exit status: 0 when nothing was found, 1 when something was (or the script raised; a
notebook's cells that --allow-errors went past do not count), 2 for bad arguments.
""" + _ARGS_NOTE)
@click.option("--pass", "which", type=PASS_OR_ALL, default="last",
              show_default="the first 10 and the last",
              help="The backward pass(es) to check: last, first, all or a number.")
@click.option("--only", "checks", multiple=True, metavar="KIND",
              help="Run only this check (repeatable): nan-inf, shape-mismatch, changed-input, "
                   "wrong-backward, wrong-gradient-passed, premature-backward, repeated-step, "
                   "missing-step, overwritten-gradient, stale-gradient, leaf-gradient.")
@click.option("--tolerance", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              callback=_fraction,
              help="Relative error the numerical gradient check accepts (default 1e-3).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (schema gradtrace.check/1).")
@click.option("-o", "--output", "out", metavar="OUT",
              help="Also draw the checked pass with the findings marked (debug theme); format from "
                   "the extension.")
@_script_options(CHECK_MAX_ELEMENTS)
def check(script, args, keep, max_elements, function_class, variable_class, allow_errors, which, checks,
          tolerance, as_json, out):
    """Run SCRIPT [ARGS]... and report the usual backprop bugs, pointing at the node responsible."""
    try:
        _check(script, args, keep, max_elements, function_class, variable_class, allow_errors, which,
               checks, tolerance, as_json, out)
    except tracer.PassSelectionError as exc:
        if as_json:  # a grading loop still gets its one document
            _echo(_check_notes.document([], [_error_text.one_line(str(exc))], None), err=_stdio.is_stdout(out))
        raise


def _check(script, args, keep, max_elements, function_class, variable_class, allow_errors, which, checks,
           tolerance, as_json, out):
    from tracer import diagnose as diagnosis
    unknown = sorted(set(checks) - set(diagnosis.CHECKS))
    if unknown:
        raise click.BadParameter(f"unknown check {', '.join(unknown)}: choose from {', '.join(diagnosis.CHECKS)}",
                                 param_hint="'--only'")
    fmt = _prepare_output(out, None, format_option=False, script=script)
    to_stdout = _stdio.is_stdout(out)
    source = click.get_current_context().get_parameter_source("which")
    # no --pass: the first 10 passes and the last (a bug in an early experiment, or one that
    # shows before a loop converges, would be missed by the last alone)
    sampled = source == click.core.ParameterSource.DEFAULT and keep is None \
        and not str(script).lower().endswith(".json")
    trace = _run(script, args, keep="sample" if sampled else _keep_for(which, keep), max_elements=max_elements,
                 function_class=function_class, variable_class=variable_class, allow_errors=allow_errors,
                 quiet_stdout=as_json or to_stdout, which=which)
    _report_run(trace, script, no_backward="only the forward values can be checked", named=bool(function_class))
    if not _outcome.recorded_graph(trace):  # "no problems found" would read as a clean bill of health
        message = f"nothing to check: {script} left no Function call on a graph (see above)"
        if as_json:  # a grading loop still gets a document, with the reason
            _echo(_check_notes.document([], [message], trace), err=to_stdout)
            _stdout_finished()
        raise _nothing(trace, message)
    notes: list[str] = []
    whole_forward = source == click.core.ParameterSource.DEFAULT or which == "all"  # --pass K: K's graph
    every_kept = which == "all" or sampled
    findings = diagnosis.diagnose(
        trace, checks=checks or None, passes=None if every_kept or not trace.passes else [which],
        notes=notes, whole_forward=whole_forward,
        **({"tolerance": tolerance} if tolerance is not None else {}))
    checked = _check_notes.checked_passes(trace, which, every_kept)
    notes += _check_notes.unchecked_notes(trace, checked, from_saved_file=str(script).lower().endswith(".json"))
    notes = _check_notes.option_wording(notes)
    if as_json:
        _echo(_check_notes.document(diagnosis.findings_to_json(findings), notes, trace), err=to_stdout)
        if not to_stdout:
            _stdout_finished()
    else:
        _echo(diagnosis.format_report(findings, trace, notes), nl=False, err=to_stdout)
    if out is not None and trace.calls:  # nothing recorded: an empty picture would replace a good one
        if _outcome.interrupted(trace) and out != "-" and os.path.exists(out):
            _warn(_outcome.left_as_it_was(script, [out]))
        else:
            _deliver(trace, out, fmt, which="last" if which == "all" else which, theme="debug",
                     source=_source_name(script))
    if findings or trace.error is not None:
        raise click.exceptions.Exit(_outcome.failure_status(trace))


# ----- expr -------------------------------------------------------------------------------------

class _ExprCommand(click.Command):
    """An EXPRESSION may start with a minus (``gradtrace expr '-x**2' --let x=1``): an argument
    that starts with ``-`` but is not one of the command's options is the expression."""

    def parse_args(self, ctx, args):
        args = list(args)
        plain: list[int] = []
        if "--" not in args:
            takes_value = _options_taking_values(self)
            known = {name for p in self.params if isinstance(p, click.Option)
                     for name in p.opts + p.secondary_opts} | set(self.get_help_option_names(ctx))
            plain, dashed, position = [], [], 0
            while position < len(args):
                arg = args[position]
                if arg in takes_value:
                    position += 2
                    continue
                if not arg.startswith("-") or arg == "-":
                    plain.append(position)
                elif not arg.startswith("--") and not _is_option(arg, known):
                    dashed.append(position)
                position += 1
            if not plain and len(dashed) == 1:  # no other EXPRESSION: this is it, not an option
                arg = args.pop(dashed[0])
                args += ["--", arg]
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            if not exc.possibilities and not plain and exc.option_name.startswith("--"):  # maybe an expression
                exc.message = (f"No such option: {exc.option_name} (an expression that starts with -- "
                               f"goes after a lone --: gradtrace expr [OPTIONS] -- '{exc.option_name}')")
            raise


def _is_option(arg: str, known: set) -> bool:
    """``--name``, ``--name=value``, ``-o``, ``-oFILE`` for a known option."""
    if arg.startswith("--"):
        return arg.split("=", 1)[0] in known
    return arg[:2] in known


@main.command(cls=_ExprCommand, epilog="""\b
Examples:
  gradtrace expr 'square(exp(square(x)))' --let x=0.5 -o seed.svg
  gradtrace expr 'sum(x @ W)' --let 'x=[[1,2]]' --let 'W=[[1,2],[3,4]]' -o mm.png
  gradtrace expr 'tanh(x)' --let x=1 --steps
  gradtrace expr 'x ** 2 + 3 * x' --let x=2 -o - --format dot

\b
Allowed: names bound with --let, numbers, pi, + - * / ** @, indexing x[0, 1:],
and engine functions: square exp log sin cos tanh sigmoid relu pow add sub mul div
neg reshape transpose broadcast_to sum sum_to matmul linear clip max min
mean_squared_error softmax log_softmax softmax_cross_entropy (keywords: axis keepdims
axes shape). Anything else is refused before it runs. backward() is called on the
result; a result with several elements starts from a gradient of ones (the gradients
of the sum of its elements, without drawing a Sum node).
""")
@click.argument("expression")
@quiet_option
@click.option("--let", "lets", multiple=True, metavar="NAME=VALUE",
              help="Bind a variable: a number (pi/2 allowed) or nested lists of numbers (repeatable).")
@output_options
@click.option("--steps", "show_steps", is_flag=True, help="Print the backward order table.")
@click.option("--retain-grad", is_flag=True, help="Keep the gradients of intermediate variables.")
@click.option("--no-backward", is_flag=True, help="Draw the forward graph only.")
@picture_options
def expr(expression, lets, out, fmt, show_steps, retain_grad, no_backward, renderer, dpi, **picture):
    """Trace one EXPRESSION with gradtrace's engine, no script needed."""
    from tracer import expr as expressions
    try:
        bindings = expressions.parse_bindings(lets)
    except expressions.BindingError as exc:
        raise click.BadParameter(str(exc), param_hint="'--let'") from None
    try:
        expressions.check_expression(expression, bindings)
    except expressions.ExprError as exc:
        raise click.BadParameter(str(exc), param_hint="'EXPRESSION'") from None
    if out is None and not show_steps:
        raise click.UsageError("give the output file with -o OUT (e.g. -o expr.svg), or --steps")
    if show_steps and no_backward:
        raise click.UsageError("--steps lists backward steps, and --no-backward runs none: leave out "
                               "one of them")
    fmt = _prepare_output(out, fmt, renderer)
    try:
        with _warnings_as_lines():  # numpy's "overflow encountered in power": one line each
            trace = expressions.trace_expression(expression, bindings, backward=not no_backward,
                                                 retain_grad=retain_grad)
    except expressions.ExprError as exc:
        raise click.BadParameter(str(exc), param_hint="'EXPRESSION'") from None
    if show_steps and trace.passes:
        from tracer import steps_table
        _echo(steps_table.format_steps(trace, "last", picture["precision"]), err=_stdio.is_stdout(out))
    if out is not None and trace.calls:  # nothing recorded: keep whatever OUT holds
        _deliver(trace, out, fmt, what="expression", renderer=renderer, dpi=dpi, source=expression,
                 **_picture(trace, **picture))
    if trace.error is not None:
        raised = f"{trace.error.type}: {trace.error.message}"
        hint = (" (check the shapes of the --let values and the arguments of the functions)"
                if "shape" in raised.lower() else "")
        raise click.ClickException(_error_text.one_line(f"the expression raised {raised}{hint}"))


# ----- samples ----------------------------------------------------------------------------------

@main.command(epilog="""\b
Examples:
  gradtrace samples                          (list them)
  gradtrace samples --out samples/gallery    (regenerate the gallery's SVGs)
  gradtrace samples --out /tmp/png --format png
""")
@quiet_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Render every sample into DIR (created if its parent exists).")
@click.option("-f", "--format", "fmt", type=click.Choice(["svg", "png", "pdf", "dot"]), default="svg",
              show_default=True, help="Picture format when rendering.")
@click.option("--dir", "samples_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Where the samples are (default: the samples/ of this checkout, else the installed "
                   "copy in share/gradtrace/samples, else ./samples).")
@click.option("--renderer", type=click.Choice(["auto", "bundled", "system"]), default=None,
              help="Renderer for svg/png/pdf.")
def samples(out_dir, fmt, samples_dir, renderer):
    """List the sample scripts, or render them all with --out DIR."""
    from tracer import gallery
    found = gallery.find_samples(samples_dir)
    if out_dir is None:
        width = max(len(s.name) for s in found)
        for sample in found:
            _echo(f"{sample.name.ljust(width)}  {sample.summary}")
        return
    _export.check_ready(fmt, renderer)
    _prepare_frames_dir(out_dir)
    failed, warned = [], []
    quiet = bool(click.get_current_context().find_root().obj.get("quiet"))
    progress = contextlib.nullcontext(found) if quiet else click.progressbar(
        found, label="Rendering samples", file=sys.stderr, item_show_func=lambda s: s.name if s else "")
    with progress as bar:
        for sample in bar:
            result = gallery.render_sample(sample, out_dir, fmt, renderer=renderer)
            if result.error:
                failed.append(f"{sample.name}: {result.error}")
            warned.extend(f"{sample.name}: {message}" for message in result.warnings)
    for line in warned + failed:
        _warn(line)
    _info(f"wrote {len(found) - len(failed)} of {len(found)} samples to {out_dir}")
    if failed:
        raise click.exceptions.Exit(1)


if __name__ == "__main__":
    main(prog_name="gradtrace")
