"""Shared fixtures: the example guests (built once with cargo) and a Python Ackley."""

import math
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUESTS = ROOT / "examples" / "guests" / "rust"
BUILT = GUESTS / "target" / "wasm32-wasip2" / "release"


@pytest.fixture(scope="session")
def guests():
    """Paths of the example guests, built (wasm32-wasip2, release) if needed."""
    names = ["ackley", "probe", "multifidelity"]
    command = ["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip2"]
    for name in names:
        command += ["-p", name]
    subprocess.run(command, cwd=GUESTS, check=True)
    return {name: str(BUILT / f"{name}.wasm") for name in names}


def ackley(x):
    """The Ackley guest's function, in Python, in the guest's order of operations."""
    n = max(len(x), 1)
    sum_sq = 0.0
    sum_cos = 0.0
    for v in x:
        sum_sq += v * v
    for v in x:
        sum_cos += math.cos(2.0 * math.pi * v)
    return -20.0 * math.exp(-0.2 * math.sqrt(sum_sq / n)) - math.exp(sum_cos / n) + 20.0 + math.e


def run_ackley(job):
    """DeepHyper's run function for the Python side of the comparisons."""
    return -ackley([job.parameters[f"x{i}"] for i in range(5)])


@pytest.fixture(autouse=True)
def _no_ray_usage_stats(monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
