"""The lecture's running example: y = square(exp(square(x))) at x = 0.5, so dy/dx = 3.2974...

Three functions A, B, C chained as in the seed notes; backward runs C, B, A and the chain rule
multiplies their derivatives: dy/dx = C'(b) * B'(a) * A'(x).

    python samples/seed_example.py
    gradtrace render samples/seed_example.py -o seed.svg
"""

import sys
from pathlib import Path

import numpy as np

try:
    from engine import Exp, Square, Variable
except ImportError:  # running from a checkout without installing gradtrace
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine import Exp, Square, Variable

A, B, C = Square(), Exp(), Square()

x = Variable(np.array(0.5))
a = A(x)
b = B(a)
y = C(b)

y.backward()
print(f"y = {float(y.data):.6f}")
print(f"dy/dx = {float(x.grad.data):.6f}")  # 3.297443
