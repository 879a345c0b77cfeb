"""The sphere function z = x**2 + y**2 at (1, 1): the gradient is (2, 2).

    python samples/sphere.py
    gradtrace render samples/sphere.py -o sphere.svg
"""

import sys
from pathlib import Path

import numpy as np

try:
    from engine import Variable
except ImportError:  # running from a checkout without installing gradtrace
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine import Variable


def sphere(x, y):
    return x ** 2 + y ** 2


x = Variable(np.array(1.0))
y = Variable(np.array(1.0))
z = sphere(x, y)

z.backward()
print(f"z = {float(z.data)}")
print(f"dz/dx = {float(x.grad.data)}, dz/dy = {float(y.grad.data)}")  # 2.0, 2.0
