"""The Matyas function z = 0.26 (x**2 + y**2) - 0.48 x y at (1, 1): the gradient is (0.04, 0.04).

    python samples/matyas.py
    gradtrace render samples/matyas.py -o matyas.svg
"""

import sys
from pathlib import Path

import numpy as np

try:
    from engine import Variable
except ImportError:  # running from a checkout without installing gradtrace
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine import Variable


def matyas(x, y):
    return 0.26 * (x ** 2 + y ** 2) - 0.48 * x * y


x = Variable(np.array(1.0))
y = Variable(np.array(1.0))
z = matyas(x, y)

z.backward()
print(f"z = {float(z.data):.6f}")
print(f"dz/dx = {float(x.grad.data):.6f}, dz/dy = {float(y.grad.data):.6f}")  # 0.04, 0.04
