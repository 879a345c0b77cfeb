"""One training step of a tiny MLP (1 -> 3 -> 1, sigmoid) on five points of sin: loss, backward, SGD.

Small on purpose so every weight's gradient fits in the picture.

    python samples/mlp_step.py --lr 0.2
    gradtrace render samples/mlp_step.py --rankdir LR -o mlp.svg
"""

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    from engine import Parameter, Variable, linear, mean_squared_error, sigmoid
except ImportError:  # running from a checkout without installing gradtrace
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine import Parameter, Variable, linear, mean_squared_error, sigmoid

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--lr", type=float, default=0.2, help="learning rate (default 0.2)")
options = parser.parse_args()

rng = np.random.default_rng(0)
x = Variable(np.linspace(0, 1, 5).reshape(5, 1))
t = Variable(np.sin(2 * np.pi * x.data))
W1 = Parameter(0.5 * rng.standard_normal((1, 3)), name="W1")
b1 = Parameter(np.zeros(3), name="b1")
W2 = Parameter(0.5 * rng.standard_normal((3, 1)), name="W2")
b2 = Parameter(np.zeros(1), name="b2")
params = [W1, b1, W2, b2]

h = sigmoid(linear(x, W1, b1))
y = linear(h, W2, b2)
loss = mean_squared_error(y, t)

loss.backward()
for p in params:
    p.data -= options.lr * p.grad.data

after = mean_squared_error(linear(sigmoid(linear(x, W1, b1)), W2, b2), t)
print(f"loss before the step = {float(loss.data):.6f}")
print(f"loss after the step  = {float(after.data):.6f}")
