"""What a traced run did, in words: the lines reported after a script ran, and its exit status."""

from __future__ import annotations

from .notebook import raising_cell
from .offgraph import leaf_root_reason

__all__ = ["warning_line", "exit_status", "other_threads", "run_report", "partial_note", "interrupted",
           "failure_status", "recorded_graph",
           "nothing_drawn", "left_as_it_was"]


def warning_line(message: str) -> str:
    """``Warning: message`` on one line (runs of white space, newlines too, become one space)."""
    return f"Warning: {' '.join(message.split())}"


def exit_status(message: str) -> str:
    """The status ``sys.exit(code)`` gives: the number, or 1 for a message."""
    return message if message.isascii() and message.lstrip("-").isdigit() else "1"


def other_threads(trace) -> str:
    """What other threads did that was not recorded ("made 3 Function calls"), or ""."""
    done = []
    if trace.calls_elsewhere:
        done.append(f"made {trace.calls_elsewhere} Function call{'s' if trace.calls_elsewhere != 1 else ''}")
    if trace.passes_elsewhere:  # not counted: a recursive backward calls itself once per function
        done.append("called backward()")
    return " and ".join(done)


def run_report(trace, script: str, no_backward: str = "showing the forward graph only",
               named: bool = False) -> list[str]:
    """The lines for stderr after ``script`` ran: its traceback, and warnings about what was (not)
    recorded. ``no_backward`` ends the warning for a run without backward(); ``named``: the user
    named the Function classes (so no hint to name them)."""
    lines = [warning_line(f"{cell_error} (went on: --allow-errors)") for cell_error in trace.cell_errors]
    if trace.error is not None:
        if trace.error.type == "SystemExit":
            status = exit_status(trace.error.message)
            if status != trace.error.message:  # sys.exit("message"): Python prints it, exits 1
                lines.append(trace.error.message)
            lines.append(f"{script} exited with status {status}")
        else:
            lines.append((trace.error.traceback or str(trace.error)).rstrip("\n"))
            cell = raising_cell(trace.error.traceback)
            if str(script).lower().endswith(".ipynb") and cell:
                lines.append(warning_line(
                    f"{script} ({cell}) raised: gradtrace runs the code cells in order and stops at the "
                    f"first error, as Jupyter's Run All does; fix or delete that cell to get past it, or "
                    f"give --allow-errors to go on with the next cell"))
    threads = other_threads(trace)
    if threads and (not trace.calls or (trace.pass_count == 0 and trace.passes_elsewhere)):
        lines.append(warning_line(
            f"{script} {threads} in another thread, which gradtrace does not record (it records the "
            f"thread that runs the script): build the graph and call backward() in the main thread"))
        if not trace.calls or trace.error is None:
            return lines  # that was the reason
    if trace.calls_made and trace.calls_without_variables == trace.calls_made:
        made = trace.calls_made
        lines.append(warning_line(
            f"{script} made {made} Function call{'s' if made != 1 else ''}, but none took or made anything "
            f"gradtrace recognised as a Variable: a Variable keeps its array in .data (self.data = data), "
            f"and is no numpy array itself"))
    elif not trace.calls and trace.calls_made:
        made = trace.calls_made
        why = (leaf_root_reason(trace)
               or "made under no_grad() (no graph is built), or freed before a backward pass")
        lines.append(warning_line(
            f"{script} made {made} Function call{'s' if made != 1 else ''}, but none is on a graph that "
            f"was kept: {why}"))
    elif not trace.calls and trace.error is not None:
        lines.append(warning_line(f"{script} stopped before its first Function call: nothing was recorded"))
    elif not trace.calls:
        classes = trace.engine.function_classes
        hint = ("" if classes or named else ": no DeZero-style Function class was found; name yours "
                "with --function-class NAME --variable-class NAME (functions must be objects that are "
                "called, f(x): Function.apply and closures, as in PyTorch or micrograd, are not traced)")
        lines.append(warning_line(f"{script} made no Function calls{hint}"))
    elif trace.pass_count == 0 and trace.error is None:
        lines.append(warning_line(f"{script} never called backward(): {no_backward}"))
    elif trace.pass_count == 0:  # the run ended early: said as render's "(partial: ...)" says it
        lines.append(warning_line(f"{script} {_ended(trace.error)} before it called backward(): {no_backward}"))
    return lines


def _ended(error) -> str:
    """How the traced code ended: "exited with status 3" or "raised ValueError"."""
    if error.type == "SystemExit":
        return f"exited with status {exit_status(error.message)}"
    return f"raised {error.type}"


def partial_note(trace, what: str = "script") -> str:
    """`` (partial: ...)`` after "wrote OUT" when the traced code raised, else ""."""
    error = trace.error
    if error is None:
        return ""
    where = f" in backward step {error.step}" if error.step and error.type != "SystemExit" else ""
    return f" (partial: the {what} {_ended(error)}{where})"


def nothing_drawn(script, targets: list) -> str:
    """Why nothing was written to ``targets`` (OUT and/or the frames directory): ``script`` left
    no Function call on a graph."""
    targets = [str(target) for target in targets]
    written = f"neither {targets[0]} nor {targets[1]} was" if len(targets) == 2 else f"{targets[0]} was not"
    return f"nothing to draw, so {written} written: {script} left no Function call on a graph (see above)"


def left_as_it_was(script, kept: list) -> str:
    """Why the files ``kept`` were not replaced: the user stopped ``script`` with Ctrl-C, and a
    partial picture must not replace a good one."""
    return (f"{script} was interrupted (Ctrl-C), so {' and '.join(map(str, kept))} "
            f"{'was' if len(kept) == 1 else 'were'} left as it was; to see the partial graph, write to a "
            f"new file")


def interrupted(trace) -> bool:
    """Whether the user stopped the script with Ctrl-C."""
    return trace.error is not None and trace.error.type == "KeyboardInterrupt"


def failure_status(trace) -> int:
    """The exit status of a run that raised: 130 for Ctrl-C (a shell loop stops, as for any
    program), else 1."""
    return 130 if interrupted(trace) else 1


def recorded_graph(trace) -> bool:
    """Whether the run left Function calls with variables to show (not none, nor bare calls whose
    Variables were not recognised)."""
    return any(call.inputs or call.outputs for call in trace.calls.values())
