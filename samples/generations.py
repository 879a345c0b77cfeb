"""Generations: y = square(a) + square(a) with a = square(x); at x = 2 the gradient is 64.

Backward must finish both branches before it runs the function that made a; the picture's
step badges show that order.

    python samples/generations.py
    gradtrace steps samples/generations.py
"""

import sys
from pathlib import Path

import numpy as np

try:
    from engine import Variable, add, square
except ImportError:  # running from a checkout without installing gradtrace
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine import Variable, add, square

x = Variable(np.array(2.0))
a = square(x)
b = square(a)
c = square(a)
y = add(b, c)

y.backward()
print(f"y = {float(y.data)}")  # 32.0
print(f"dy/dx = {float(x.grad.data)}")  # 64.0
