"""Reusing a variable: y = x + x, where both gradients reaching x add up to dy/dx = 2.

An engine that overwrote x.grad instead of accumulating it would report 1 here.

    python samples/reuse.py
    gradtrace steps samples/reuse.py
"""

import sys
from pathlib import Path

import numpy as np

try:
    from engine import Variable, add
except ImportError:  # running from a checkout without installing gradtrace
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine import Variable, add

x = Variable(np.array(3.0))
y = add(x, x)

y.backward()
print(f"y = {float(y.data)}")
print(f"dy/dx = {float(x.grad.data)}")  # 2.0
