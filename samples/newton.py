"""Newton's method with second derivatives: minimise x**4 - 2 x**2 from x = 2 (it converges to 1).

Each iteration differentiates twice: backward(create_graph=True) builds the graph of the first
derivative, and backward through that graph gives the second. The picture shows the last
iteration's second backward pass: the graph of f'(x) that the first one built.

    python samples/newton.py --start 2.0 --iterations 10
    gradtrace render samples/newton.py --iterations 1 -o newton.svg
"""

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    from engine import Variable
except ImportError:  # running from a checkout without installing gradtrace
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine import Variable


# How `gradtrace samples --out DIR` draws this sample: the first iteration (later ones sit at x = 1).
GALLERY = {"args": ["--iterations", "1"]}


def f(x):
    return x ** 4 - 2 * x ** 2


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--start", type=float, default=2.0, help="starting point (default 2.0)")
parser.add_argument("--iterations", type=int, default=10, help="Newton steps (default 10)")
options = parser.parse_args()

x = Variable(np.array(options.start))
for i in range(options.iterations):
    y = f(x)
    x.cleargrad()
    y.backward(create_graph=True)

    gx = x.grad          # f'(x), itself a Variable with a graph
    x.cleargrad()
    gx.backward()
    gx2 = x.grad         # f''(x)

    print(f"{i}: x = {float(x.data):.6f}, f'(x) = {float(gx.data):.6f}, f''(x) = {float(gx2.data):.6f}")
    x.data = x.data - gx.data / gx2.data
print(f"x = {float(x.data):.6f}")
