"""RunFunction on DeepHyper's engines that reach clusters: Ray (loopback only) and mpicomm
(Open MPI from Debian, mpi4py from PyPI, under a real mpirun)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deephyper.evaluator import Evaluator, HPOJob

import wasmeval
from conftest import ackley

HERE = Path(__file__).resolve().parent


def test_ray_runs_a_run_function(guests):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        # Ray's driver replaces the handlers of the signals wasm traps raise: a trap here, in
        # this process, must still end its job, not Python.
        probe = wasmeval.RunFunction(guests["probe"])
        assert probe({"action": "panic"})["objective"] == "F_trap"
        rf = wasmeval.RunFunction(guests["ackley"], job_timeout=10)
        evaluator = Evaluator.create(rf, method="ray", method_kwargs={"num_cpus": 2})
        evaluator._job_class = HPOJob
        configs = [{f"x{i}": 0.2 * (i + k) for i in range(5)} for k in range(6)]
        evaluator.submit(configs)
        jobs = evaluator.gather("ALL")
        assert len(jobs) == 6
        for job in jobs:
            x = [job.args[f"x{i}"] for i in range(5)]
            assert abs(job.objective - -ackley(x)) <= 1e-12
        # The jobs ran in Ray's worker processes, not here.
        assert all(job.metadata["timestamp_start"] > 0 for job in jobs)
        evaluator.close()
    finally:
        ray.shutdown()


def test_mpicomm_runs_a_run_function_under_mpirun(guests):
    mpirun = shutil.which("mpirun")
    assert mpirun, "mpirun (Debian's openmpi-bin) is not installed"
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PYTHONPATH=str(HERE))
    p = subprocess.run(
        [mpirun, "-n", "3", "--oversubscribe", sys.executable, "-m", "mpi4py",
         str(HERE / "mpi_search.py"), guests["ackley"]],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "mpicomm: 8 jobs on 2 worker ranks" in p.stdout, p.stdout + p.stderr
