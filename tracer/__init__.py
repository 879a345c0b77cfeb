"""gradtrace's tracer: record a DeZero-style engine's run and export it as pictures and JSON.

Submodules with more: ``tracer.render`` (``render(trace, "svg")`` → bytes), ``tracer.frames``,
``tracer.diagnose`` (``diagnose(trace)`` → findings), ``tracer.jsonio``.
"""

from ._version import __version__
from .api import trace
from .errors import (ArgumentError, EngineNotFoundError, HookError, NotATraceError, OutputError,
                     ScriptNotFoundError, TraceActiveError, TraceError, TraceWarning)
from .records import (GRAD_STATES, CallRecord, CellError, EngineInfo, ErrorRecord, Finding, PassRecord,
                      StepRecord, VariableRecord)
from .jsonio import SCHEMA, SchemaError, load, loads
from .dot import to_dot
from .frames import write_frames
from .player import player_html, write_player
from .render import RenderError, RendererNotFoundError
from .render import write as write_picture
from .script import run_script
from .snapshot import ArraySnapshot
from .trace import PassSelectionError, Trace

__all__ = [
    "__version__", "trace", "run_script", "Trace", "ArraySnapshot",
    "to_dot", "write_picture", "write_frames", "player_html", "write_player",
    "RenderError", "RendererNotFoundError",
    "VariableRecord", "CallRecord", "StepRecord", "PassRecord", "ErrorRecord", "CellError", "EngineInfo",
    "Finding", "GRAD_STATES",
    "TraceError", "TraceWarning", "HookError", "EngineNotFoundError", "TraceActiveError", "OutputError",
    "ScriptNotFoundError", "NotATraceError", "ArgumentError", "PassSelectionError", "SchemaError", "SCHEMA", "load", "loads",
]


def __getattr__(name):
    """``tracer.diagnose`` without importing it first (it is loaded when first used)."""
    if name == "diagnose":
        import importlib
        return importlib.import_module(".diagnose", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
