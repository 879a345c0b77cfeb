"""gradtrace's autograd engine: a complete, fast DeZero-style core (numpy only).

``sum``, ``max``, ``min`` and ``pow`` are public (``engine.sum(x)``) but left out of ``__all__``
so that ``from engine import *`` does not shadow the builtins.
"""

from .core import (Config, Constant, Function, Parameter, Variable, as_array, as_variable,
                   backward, no_grad, test_mode, using_config)
from .errors import (BackwardError, DataTypeError, EngineError, GradientCheckError,
                     ShapeError)
from .functions import (Add, Cos, Div, Exp, Log, Mul, Neg, Pow, ReLU, Sigmoid, Sin, Square, Sub,
                        Tanh, _install_operators, add, cos, div, exp, log, mul, neg, pow, rdiv,
                        relu, rsub, sigmoid, sin, square, sub, tanh)
from .functions_shape import (BroadcastTo, Copy, GetItem, GetItemGrad, Reshape, Sum, SumTo,
                              Transpose, broadcast_to, get_item, reshape, sum, sum_to, transpose)
from .functions_nn import (Clip, Dropout, Linear, LogSoftmax, MatMul, Max, MeanSquaredError, Min,
                           Softmax, SoftmaxCrossEntropy, clip, dropout, linear, log_softmax,
                           matmul, max, mean_squared_error, min, softmax, softmax_cross_entropy)
from .numerical import gradient_check, numerical_diff, numerical_grad

_install_operators()

__all__ = [
    # core
    "Variable", "Parameter", "Constant", "Function", "Config", "no_grad", "test_mode",
    "using_config", "as_array", "as_variable", "backward",
    # errors
    "EngineError", "DataTypeError", "ShapeError", "BackwardError", "GradientCheckError",
    # op classes
    "Square", "Exp", "Log", "Sin", "Cos", "Tanh", "Sigmoid", "ReLU", "Pow",
    "Add", "Sub", "Mul", "Div", "Neg",
    "Reshape", "Transpose", "BroadcastTo", "Sum", "SumTo", "GetItem", "GetItemGrad", "Copy",
    "MatMul", "Linear", "Clip", "Max", "Min", "MeanSquaredError", "Softmax", "LogSoftmax",
    "SoftmaxCrossEntropy", "Dropout",
    # op functions
    "square", "exp", "log", "sin", "cos", "tanh", "sigmoid", "relu",
    "add", "sub", "rsub", "mul", "div", "rdiv", "neg",
    "reshape", "transpose", "broadcast_to", "sum_to", "get_item",
    "matmul", "linear", "clip", "mean_squared_error", "softmax", "log_softmax",
    "softmax_cross_entropy", "dropout",
    # numerical
    "numerical_diff", "numerical_grad", "gradient_check",
]
