"""Ackley in n dimensions, shared by the objective run function (app.py) and the WASI
command (command.py).

Configuration: {"x": [x1, x2, ...]}; result: -ackley(x) (DeepHyper maximizes).
An empty or missing "x" is an error.
"""

import json
import math


def ackley(x):
    n = len(x)
    sum_sq = sum(v * v for v in x)
    sum_cos = sum(math.cos(2 * math.pi * v) for v in x)
    return -20 * math.exp(-0.2 * math.sqrt(sum_sq / n)) - math.exp(sum_cos / n) + 20 + math.e


def evaluate(config):
    """The objective of a configuration given as JSON text, or raises ValueError(message)."""
    x = json.loads(config).get("x")
    if not isinstance(x, list) or not all(isinstance(v, (int, float)) for v in x):
        raise ValueError("x must be a list of numbers")
    if not x:
        raise ValueError("x must hold at least one coordinate")
    return -ackley(x)
