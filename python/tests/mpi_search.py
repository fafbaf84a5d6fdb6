"""Run under `mpirun -n 3`: DeepHyper's mpicomm method (rank 0 the master, ranks 1-2 the
workers) with a wasm RunFunction, checked on rank 0 against the Python Ackley."""

import sys

from deephyper.evaluator import Evaluator, HPOJob
from mpi4py import MPI

import wasmeval
from conftest import ackley

assert "Open MPI" in MPI.Get_library_version(), MPI.Get_library_version()
rf = wasmeval.RunFunction(sys.argv[1], job_timeout=10)
with Evaluator.create(rf, method="mpicomm") as evaluator:
    if evaluator.is_master:
        evaluator._job_class = HPOJob
        configs = [{f"x{i}": 0.3 * (i - k) for i in range(5)} for k in range(8)]
        evaluator.submit(configs)
        jobs = evaluator.gather("ALL")
        assert len(jobs) == 8
        for job in jobs:
            x = [job.args[f"x{i}"] for i in range(5)]
            assert abs(job.objective - -ackley(x)) <= 1e-12, (job.objective, x)
        ranks = MPI.COMM_WORLD.Get_size()
        print(f"mpicomm: {len(jobs)} jobs on {ranks - 1} worker ranks", flush=True)
