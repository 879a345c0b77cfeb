"""``gradtrace expr``: check one expression against a whitelist, then evaluate and trace it."""

from __future__ import annotations

import ast
import inspect
import math
import operator
import unicodedata
from keyword import iskeyword

import numpy as np

from .api import trace
from .errors import TraceError
from .records import ErrorRecord
from .snapshot import DEFAULT_MAX_ELEMENTS
from .trace import Trace

__all__ = ["ExprError", "BindingError", "FUNCTIONS", "KEYWORDS", "CONSTANTS", "MAX_LENGTH",
           "parse_binding", "parse_bindings", "check_expression", "evaluate", "trace_expression"]

# Engine functions an expression may call (the op functions of ``engine.__all__`` that take
# Variables; rsub/rdiv/get_item are what operators and indexing use, dropout is random).
FUNCTIONS = (
    "square", "exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "pow",
    "add", "sub", "mul", "div", "neg",
    "reshape", "transpose", "broadcast_to", "sum", "sum_to",
    "matmul", "linear", "clip", "max", "min", "mean_squared_error", "softmax", "log_softmax",
    "softmax_cross_entropy",
)
KEYWORDS = ("axis", "keepdims", "axes", "shape")
CONSTANTS = {"pi": math.pi}
MAX_LENGTH = 2000

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow, ast.MatMult: operator.matmul}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_ALLOWED = "engine functions, numbers, names bound with --let and + - * / ** @ ( ) [ ]"
_SYMBOLS = {ast.FloorDiv: "//", ast.Mod: "%", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
            ast.BitAnd: "&", ast.BitXor: "^", ast.Invert: "~", ast.Not: "not"}

# Readable names for the syntax an expression may not use.
_REFUSED = {
    ast.Attribute: "attribute access", ast.Lambda: "lambda", ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression", ast.Compare: "a comparison",
    ast.BoolOp: "and/or", ast.IfExp: "if/else", ast.NamedExpr: "an assignment (:=)",
    ast.Dict: "a dict", ast.Set: "a set", ast.JoinedStr: "an f-string", ast.Starred: "*unpacking",
    ast.List: "a list (bind arrays with --let, e.g. --let 'W=[[1,2],[3,4]]')", ast.Tuple: "a tuple",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}


class ExprError(TraceError, ValueError):
    """An expression gradtrace refuses (never evaluated) or cannot evaluate."""


class BindingError(ExprError):
    """A ``--let NAME=VALUE`` that is not a name and a number or nested list of numbers."""


# ----- bindings -------------------------------------------------------------------------------

def _literal_number(node: ast.AST):
    """The number a literal node spells (with an optional sign), else None."""
    sign = 1
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return sign * node.value
    if isinstance(node, ast.Name) and node.id in ("nan", "inf"):
        return sign * float(node.id)
    if isinstance(node, ast.Name) and node.id in CONSTANTS:
        return sign * CONSTANTS[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:  # pi/2, 2*pi
        left, right = _literal_number(node.left), _literal_number(node.right)
        if left is None or right is None:
            return None
        try:
            return sign * _ARITHMETIC[type(node.op)](left, right)
        except ZeroDivisionError:
            return None
    return None


_ARITHMETIC = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
               ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}


def _literal_array(node: ast.AST):
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal_array(item) for item in node.elts]
    number = _literal_number(node)
    if number is None:
        raise ValueError
    return number


def parse_binding(text: str) -> tuple[str, np.ndarray]:
    """``"x=0.5"`` or ``"W=[[1,2],[3,4]]"`` → (name, float64 array); BindingError otherwise."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not value:
        raise BindingError(f"{text!r} is not NAME=VALUE: write e.g. --let x=0.5 or --let 'W=[[1,2],[3,4]]'")
    name = unicodedata.normalize("NFKC", name)  # as Python reads the names in the expression
    if not name.isidentifier() or iskeyword(name) or name.startswith("__"):
        raise BindingError(f"{name!r} is not a usable name: use letters, digits and _ (not first), "
                           f"e.g. --let x=0.5")
    if name in FUNCTIONS or name in CONSTANTS:
        raise BindingError(f"{name!r} is an engine function or constant: choose another name")
    shown = value if len(value) <= 60 else f"{value[:40]}...({len(value):,} characters)"
    try:
        node = ast.parse(value, mode="eval").body
        data = np.array(_literal_array(node), dtype=np.float64)
    except OverflowError:
        raise BindingError(f"--let {name}={shown}: the number is too large for a float (at most about "
                           f"1.8e308; inf is allowed)") from None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise BindingError(f"--let {name}={shown}: the value must be a number or a nested list of "
                           f"numbers of equal lengths, e.g. 0.5, pi/2 or [[1,2],[3,4]]") from None
    if data.dtype == object:
        raise BindingError(f"--let {name}={value}: the nested lists must have equal lengths")
    return name, data


def parse_bindings(texts) -> dict[str, np.ndarray]:
    """Several ``NAME=VALUE`` texts; a name given twice is an error."""
    bindings: dict[str, np.ndarray] = {}
    for text in texts:
        name, value = parse_binding(text)
        if name in bindings:
            raise BindingError(f"{name!r} is bound twice: give each --let name once")
        bindings[name] = value
    return bindings


# ----- checking -------------------------------------------------------------------------------

def _where(node: ast.AST) -> str:
    column = getattr(node, "col_offset", None)
    return f" at column {column + 1}" if column is not None else ""


def _refuse(node: ast.AST, what: str) -> ExprError:
    return ExprError(f"{what}{_where(node)} is not allowed: use only {_ALLOWED}")


def _check_int_literal(node: ast.AST, role: str) -> None:
    """Shapes, axes and slice bounds: whole numbers (or tuples of them), None."""
    if isinstance(node, ast.Tuple):
        for item in node.elts:
            _check_int_literal(item, role)
        return
    if isinstance(node, ast.Constant) and node.value is None:
        return
    if isinstance(node, ast.Constant) and type(node.value) is bool and role == "keepdims":
        return
    number = _literal_number(node)
    if not isinstance(number, int):
        raise ExprError(f"{role}{_where(node)} must be a whole number or a tuple of them, "
                        f"got {ast.unparse(node)!r}")


class _Checker(ast.NodeVisitor):
    """Walks the whole tree before anything runs; raises ExprError at the first refused node."""

    def __init__(self, names) -> None:
        self.names = set(names)
        self.used: list[str] = []

    def generic_visit(self, node: ast.AST) -> None:
        what = _REFUSED.get(type(node), f"{type(node).__name__} syntax")
        raise _refuse(node, what)

    def visit_Expression(self, node: ast.Expression) -> None:
        self.visit(node.body)

    def visit_Constant(self, node: ast.Constant) -> None:
        if type(node.value) not in (int, float):
            raise _refuse(node, f"the constant {ast.unparse(node)}")

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name.startswith("__"):
            raise _refuse(node, f"the name {name!r}")
        if name in self.names:
            if name not in self.used:
                self.used.append(name)
            return
        if name in CONSTANTS:
            return
        if name in FUNCTIONS:
            raise ExprError(f"{name!r}{_where(node)} is a function: call it, e.g. {name}(x)")
        raise ExprError(f"unknown name {name!r}{_where(node)}: bind it with --let {name}=VALUE")

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) not in _BINARY:
            raise _refuse(node, f"the operator {_SYMBOLS.get(type(node.op), type(node.op).__name__)}")
        if isinstance(node.op, ast.Pow) and _uses_names(node.left) and _uses_names(node.right):
            raise ExprError(f"a variable exponent{_where(node.right)}: ** takes a number after a variable "
                            f"(x ** 3) or a number before one (2 ** x); write exp(y * log(x)) for x ** y")
        self.visit(node.left)
        self.visit(node.right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if type(node.op) not in _UNARY:
            raise _refuse(node, f"the operator {_SYMBOLS.get(type(node.op), type(node.op).__name__)}")
        self.visit(node.operand)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Name):
            raise _refuse(func, "calling anything but an engine function by name"
                          if not isinstance(func, ast.Attribute) else "attribute access")
        if func.id.startswith("__"):
            raise _refuse(func, f"the name {func.id!r}")
        if func.id not in FUNCTIONS:
            raise ExprError(f"unknown function {func.id!r}{_where(func)}: use one of {', '.join(FUNCTIONS)}")
        for arg in node.args:
            if isinstance(arg, ast.Tuple):
                _check_int_literal(arg, "a shape")
            else:
                self.visit(arg)
        for keyword in node.keywords:
            if keyword.arg not in KEYWORDS:
                shown = f"**{ast.unparse(keyword.value)}" if keyword.arg is None else f"{keyword.arg}="
                raise _refuse(keyword.value, f"the keyword argument {shown}")
            _check_int_literal(keyword.value, keyword.arg)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.visit(node.value)
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for part in parts:
            if isinstance(part, ast.Slice):
                for bound in (part.lower, part.upper, part.step):
                    if bound is not None:
                        _check_int_literal(bound, "an index")
            else:
                _check_int_literal(part, "an index")


def _uses_names(node: ast.AST) -> bool:
    return any(isinstance(inner, ast.Name) for inner in ast.walk(node))


def check_expression(source: str, names=()) -> ast.Expression:
    """Parse ``source`` and check every node against the whitelist; nothing is evaluated.

    ``names`` are the names bound with ``--let``. Raises ExprError (one line, saying what to
    change) for syntax errors and anything outside the whitelist.
    """
    if len(source) > MAX_LENGTH:
        raise ExprError(f"the expression is {len(source)} characters long: keep it under {MAX_LENGTH}, "
                        f"or write a script and use gradtrace render")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        column = f" at column {exc.offset}" if exc.offset else ""
        raise ExprError(f"invalid expression{column}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExprError(f"invalid expression: {exc or 'too deeply nested'}") from None
    checker = _Checker(names)
    try:
        checker.visit(tree)
    except RecursionError:
        raise ExprError("the expression is too deeply nested: split it up in a script") from None
    return tree


# ----- evaluating -----------------------------------------------------------------------------

class _Evaluator:
    """Evaluates a checked tree (only the node types the checker lets through)."""

    def __init__(self, functions: dict, variables: dict) -> None:
        self.functions = functions
        self.variables = variables

    def value(self, node: ast.AST):
        kind = type(node)
        if kind is ast.Constant:
            return node.value
        if kind is ast.Name:
            return self.variables[node.id] if node.id in self.variables else CONSTANTS[node.id]
        if kind is ast.BinOp:
            return self._binary(node)
        if kind is ast.UnaryOp:
            return _UNARY[type(node.op)](self.value(node.operand))
        if kind is ast.Call:
            args = [self.literal(a) if isinstance(a, ast.Tuple) else self.value(a) for a in node.args]
            kwargs = {k.arg: self.literal(k.value) for k in node.keywords}
            function = self.functions[node.func.id]
            try:
                inspect.signature(function).bind(*args, **kwargs)
            except TypeError as exc:
                raise ExprError(f"{node.func.id}(){_where(node)}: {exc}") from None
            return function(*args, **kwargs)
        if kind is ast.Subscript:
            return self.value(node.value)[self.literal(node.slice)]
        raise ExprError(f"internal: unchecked node {kind.__name__}")  # the checker refuses these

    def _binary(self, node: ast.BinOp):
        left, right = self.value(node.left), self.value(node.right)
        op = _BINARY[type(node.op)]
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            try:  # plain numbers: float arithmetic, so 9**9**9 overflows instead of running forever
                return float(op(float(left), float(right)))
            except ZeroDivisionError:
                raise ExprError(f"{ast.unparse(node)}{_where(node)} divides by zero") from None
            except (OverflowError, TypeError):
                raise ExprError(f"{ast.unparse(node)}{_where(node)} is too large to compute") from None
        return op(left, right)

    def literal(self, node: ast.AST):
        """Shapes, axes, indices: ints, tuples of them, slices, None, booleans."""
        if isinstance(node, ast.Tuple):
            return tuple(self.literal(item) for item in node.elts)
        if isinstance(node, ast.Slice):
            return slice(*(None if b is None else self.literal(b) for b in (node.lower, node.upper, node.step)))
        if isinstance(node, ast.Constant):
            return node.value
        return _literal_number(node)


def _label_names(tree: ast.AST) -> set[str]:
    """Names given as the labels (second argument) of ``softmax_cross_entropy``: class indices."""
    return {call.args[1].id for call in ast.walk(tree)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            and call.func.id == "softmax_cross_entropy" and len(call.args) > 1
            and isinstance(call.args[1], ast.Name)}


def _as_labels(name: str, value: np.ndarray) -> np.ndarray:
    """A --let value used as class labels: whole numbers, kept as integers."""
    if (not np.all(np.isfinite(value)) or not np.all(value == np.round(value))
            or not np.all((value >= 0) & (value < 2 ** 31))):
        raise BindingError(f"--let {name}=...: {name} holds the labels of softmax_cross_entropy, which "
                           f"are class indices: give whole numbers from 0, e.g. --let {name}=[1,0]")
    return value.astype(np.int64)


def evaluate(source: str, bindings: dict[str, np.ndarray]):
    """Check, then evaluate ``source`` with the engine; returns (result, {name: Variable}).

    Each binding becomes a named ``engine.Variable``. Engine errors propagate unchanged.
    """
    import engine

    tree = check_expression(source, bindings)
    labels = _label_names(tree)
    variables = {name: engine.Variable(_as_labels(name, value) if name in labels
                                       else np.array(value, dtype=np.float64), name=name)
                 for name, value in bindings.items()}
    functions = {name: getattr(engine, name) for name in FUNCTIONS}
    result = _Evaluator(functions, variables).value(tree.body)
    return result, variables


def trace_expression(source: str, bindings: dict[str, np.ndarray], *, backward: bool = True,
                     retain_grad: bool = False, create_graph: bool = False,
                     max_elements: int = DEFAULT_MAX_ELEMENTS) -> Trace:
    """Evaluate ``source`` under the tracer and call ``backward()`` on the result.

    A result with more than one element gets a starting gradient of ones, so the gradients
    are those of the sum of its elements (no extra Sum node appears in the graph). The
    expression is checked first (ExprError, nothing runs); an error the engine raises while
    evaluating is recorded in ``trace.error`` as for a script, and the partial Trace returned.
    """
    import engine

    check_expression(source, bindings)
    recording = trace(max_elements=max_elements, find_in_caller=False, warn=False)
    try:
        with recording:
            result, variables = evaluate(source, bindings)
            if not isinstance(result, engine.Variable):
                raise ExprError(f"{source.strip()!r} does not use any --let variable: "
                                f"bind one, e.g. --let x=0.5, and use it")
            if result.creator is None:
                raise ExprError(f"{source.strip()!r} calls no function, so there is no graph to draw: "
                                f"use one, e.g. square({source.strip()})")
            if result.name is None:
                result.name = "y" if "y" not in variables else "out"
            if backward:
                if result.data.size != 1:
                    result.grad = engine.Variable(np.ones_like(result.data))
                result.backward(retain_grad=retain_grad, create_graph=create_graph)
    except ExprError:
        raise
    except Exception as exc:  # the engine's error on these inputs: reported like a script's
        recorded = recording.trace
        step = recorded.passes[-1].error.step if recorded.passes and recorded.passes[-1].error else None
        recorded.error = ErrorRecord(type(exc).__name__, str(exc), step, None)
    return recording.trace
