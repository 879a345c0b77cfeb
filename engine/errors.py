"""Error classes raised by the engine (one base, specific subclasses)."""

__all__ = ["EngineError", "DataTypeError", "ShapeError", "BackwardError", "GradientCheckError"]


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class DataTypeError(EngineError, TypeError):
    """A value of the wrong type was given where an ndarray (or a Variable) was expected."""


class ShapeError(EngineError, ValueError):
    """Operand shapes do not fit the operation (e.g. matmul inner dimensions)."""


class BackwardError(EngineError, RuntimeError):
    """Backward cannot start or go on (no data, a non-scalar root without a gradient, a bad
    gradient returned by a backward)."""


class GradientCheckError(EngineError, AssertionError):
    """Analytic and numerical gradients disagree (``gradient_check(raise_on_failure=True)``)."""
