"""The tracer's exception classes: one base, specific subclasses with actionable messages."""

__all__ = ["TraceError", "HookError", "EngineNotFoundError", "TraceActiveError", "OutputError",
           "ScriptNotFoundError", "NotATraceError", "ArgumentError", "TraceWarning"]


class TraceError(Exception):
    """Base of every error gradtrace raises on purpose; its message says how to fix it."""


class HookError(TraceError):
    """A class cannot be hooked (not a DeZero-style Function or Variable class)."""


class EngineNotFoundError(TraceError):
    """No Function / Variable classes were found to trace."""


class TraceActiveError(TraceError):
    """A trace is already recording in another thread (concurrent traces are not supported)."""


class OutputError(TraceError):
    """An output file cannot be written."""


class ScriptNotFoundError(TraceError):
    """The script to trace does not exist or is not a file."""


class NotATraceError(TraceError, TypeError):
    """A function that draws or checks a Trace was given something else."""


class ArgumentError(TraceError, TypeError):
    """An argument of the API has the wrong type (a string where a list of strings belongs)."""


class TraceWarning(UserWarning):
    """Something about a trace the user should know: nothing recorded, a class not hooked."""
