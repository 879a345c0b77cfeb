"""Gradient descent that forgets cleargrad(): every step adds its gradient to the last one's.

Minimises (x - 3)**2 from x = 0 with a learning rate of 0.25. Without x.cleargrad() the
engine adds each new gradient to the .grad left by the previous step, so the steps grow
and x overshoots 3 and wanders off; with --fixed, x approaches 3. The picture shows the last
pass, where x.grad is the sum of all four steps' gradients; `gradtrace check` names it.

    python samples/forgot_cleargrad.py [--fixed] [--steps 4]
    gradtrace check samples/forgot_cleargrad.py
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

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--fixed", action="store_true", help="call x.cleargrad() before each backward")
parser.add_argument("--steps", type=int, default=4, help="gradient-descent steps (default 4)")
options = parser.parse_args()

learning_rate = 0.25
x = Variable(np.array(0.0), name="x")
for step in range(options.steps):
    if options.fixed:
        x.cleargrad()
    loss = (x - 3.0) ** 2
    loss.backward()
    x.data -= learning_rate * x.grad.data
    print(f"step {step + 1}: x.grad = {float(x.grad.data):g}, x = {float(x.data):g}")
