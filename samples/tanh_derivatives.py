"""tanh and its higher derivatives: differentiate tanh(x) at x = 1 again and again with create_graph.

The n-th derivative is the gradient of the (n-1)-th, whose graph backward(create_graph=True)
recorded; the graphs grow quickly, so the picture keeps the order small.

    python samples/tanh_derivatives.py --order 3
    gradtrace render samples/tanh_derivatives.py --order 2 --inner hide -o tanh.svg
"""

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    from engine import Variable, tanh
except ImportError:  # running from a checkout without installing gradtrace
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine import Variable, tanh

# How `gradtrace samples --out DIR` draws this sample: the graph of the first derivative, without
# the calls its create_graph backward made for the next one.
GALLERY = {"options": {"inner": "hide"}}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--order", type=int, default=2, help="highest derivative to compute (default 2)")
options = parser.parse_args()

x = Variable(np.array(1.0))
y = tanh(x)
y.backward(create_graph=True)
print(f"d1 tanh/dx1 at 1 = {float(x.grad.data):.6f}")  # 0.419974
for n in range(2, options.order + 1):
    gx = x.grad
    x.cleargrad()
    gx.backward(create_graph=True)
    print(f"d{n} tanh/dx{n} at 1 = {float(x.grad.data):.6f}")  # -0.639700, 0.621627, ...
