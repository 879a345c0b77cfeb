"""The Goldstein-Price function at (1, 1): a big graph from one formula; the gradient is (-5376, 8064).

    python samples/goldstein_price.py
    gradtrace render samples/goldstein_price.py --rankdir LR -o goldstein.svg
"""

import sys
from pathlib import Path

import numpy as np

try:
    from engine import Variable
except ImportError:  # running from a checkout without installing gradtrace
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine import Variable


def goldstein(x, y):
    z = (1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x ** 2 - 14 * y + 6 * x * y + 3 * y ** 2)) * \
        (30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x ** 2 + 48 * y - 36 * x * y + 27 * y ** 2))
    return z


x = Variable(np.array(1.0))
y = Variable(np.array(1.0))
z = goldstein(x, y)

z.backward()
print(f"z = {float(z.data)}")  # 1876.0
print(f"dz/dx = {float(x.grad.data)}, dz/dy = {float(y.grad.data)}")  # -5376.0, 8064.0
