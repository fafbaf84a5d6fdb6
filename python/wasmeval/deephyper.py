"""DeepHyper's ``Evaluator`` on wasmeval's worker processes.

``wasmeval.deephyper.Evaluator(module_or_run_function, num_workers=...)`` is a subclass of
``deephyper.evaluator.Evaluator``: DeepHyper's searches take it as it is::

    from deephyper.hpo import CBO
    from wasmeval.deephyper import Evaluator

    evaluator = Evaluator("ackley.wasm", num_workers=2)
    CBO(problem, random_state=42).search(evaluator, max_evals=100)  # writes results.csv

Jobs keep DeepHyper's ids, statuses, storage (any of DeepHyper's ``Storage`` objects),
callbacks, ``search_id``, ``timeout`` and ``results.csv`` columns, and run on the library's
worker processes: no Python in the job path. Their ``timestamp_start`` and
``timestamp_end`` are measured in the workers, on DeepHyper's time axis (``timestamp_submit``
and ``timestamp_gather``'s). DeepHyper's stoppers (multi-fidelity) need the Python job
object while the job runs: use ``Evaluator.create(RunFunction(...), method="thread")`` for
them.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from typing import Any, Hashable, List, Mapping, Optional, Union

from deephyper.evaluator import Evaluator as _DeepHyperEvaluator
from deephyper.evaluator import JobStatus
from deephyper.evaluator._evaluator import MaximumJobsSpawnReached
from deephyper.evaluator.storage import Storage

from . import RunFunction, _gather_size, _pool, _run_function, _seconds

__all__ = ["Evaluator"]

# Jobs sent to the workers, or finished jobs stored, at a time.
_CHUNK = 512


class _Flat(dict):
    """Parameters whose values are all immutable scalars: DeepHyper's ``Job`` deep-copies
    its args, and a copy of the dict is as deep as that copy goes (5x faster)."""

    def __deepcopy__(self, memo):
        return dict(self)


_SCALARS = (int, float, str, bool, type(None))


def _flat(args):
    if type(args) is dict and all(type(v) in _SCALARS for v in args.values()):
        return _Flat(args)
    return args


class Evaluator(_DeepHyperEvaluator):
    """DeepHyper's ``Evaluator`` whose jobs run on wasmeval's worker processes.

    Args:
        module_or_run_function: a path to a ``.wasm`` file, its bytes, or a
            :class:`wasmeval.RunFunction` (whose sandbox policy the jobs keep).
        num_workers: worker processes (default: one per core).
        callbacks: DeepHyper callbacks.
        run_function_kwargs: keyword arguments the guest reads with ``job::kwargs()``.
        storage: a DeepHyper ``Storage`` (default ``MemoryStorage``).
        search_id: a search of ``storage`` to join.
        method: ``"process"`` (default) or ``"thread"``: the library's workers.
        job_timeout, memory, fuel, dirs, env: the sandbox policy, when a path or bytes is given.
    """

    def __init__(
        self,
        module_or_run_function: Union[str, os.PathLike, bytes, RunFunction],
        num_workers: Optional[int] = None,
        callbacks: Optional[list] = None,
        run_function_kwargs: Optional[dict] = None,
        storage: Optional[Storage] = None,
        search_id: Optional[Hashable] = None,
        *,
        method: str = "process",
        job_timeout: Optional[float] = None,
        memory: Union[int, str] = "512MiB",
        fuel: Optional[int] = None,
        dirs=(),
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        run_function = _run_function(
            module_or_run_function, job_timeout=job_timeout, memory=memory, fuel=fuel,
            dirs=dirs, env=env,
        )
        # The pool checks num_workers; DeepHyper's base keeps its own copy of it.
        self._pool = _pool(run_function, method, num_workers, run_function_kwargs or {})
        super().__init__(
            run_function=run_function,
            num_workers=self._pool.num_workers,
            callbacks=callbacks,
            run_function_kwargs=run_function_kwargs,
            storage=storage,
            search_id=search_id,
        )
        # The pool's time axis is placed on DeepHyper's (`time.monotonic() - self.timestamp`).
        self._shift = self._pool.monotonic_zero() - self.timestamp
        self._running = {}  # the pool's job id -> DeepHyper's job

    def to_json(self) -> dict:
        return {"type": type(self).__name__, "num_workers": self.num_workers}

    @property
    def timeout(self) -> Optional[float]:
        return self._timeout

    @timeout.setter
    def timeout(self, value: Optional[float]) -> None:
        self._time_timeout_set = time.monotonic()
        self._timeout = value
        # Past it, running jobs are stopped and queued ones never start (CANCELLED).
        self._pool.set_timeout(_seconds(value, "timeout"))

    def submit(self, args_list: List[dict]) -> None:
        """Sends configurations to the workers: each becomes a job of DeepHyper's storage.
        They are sent in chunks, so the workers start while the rest are being stored."""
        chunk = []
        submitted = 0
        for args in args_list:
            if (
                self.maximum_num_jobs_submitted > 0
                and self.num_jobs_submitted >= self.maximum_num_jobs_submitted
            ):
                break
            job_id = self._storage.create_new_job(self._search_id)
            self._storage.store_job_in(job_id, args=(args,))
            job = self._create_job(job_id, _flat(args), self.run_function, self._storage)
            job.context.search = self.search
            self.job_id_submitted.append(job_id)
            self._on_launch(job)
            chunk.append(job)
            if len(chunk) == _CHUNK:
                self._send(chunk)
                submitted += len(chunk)
                chunk = []
        self._send(chunk)
        if submitted + len(chunk) < len(args_list):
            raise MaximumJobsSpawnReached

    def _send(self, jobs: list) -> None:
        if jobs:
            ids = self._pool.submit(json.dumps([j.args for j in jobs]))
            self._running.update(zip(ids, jobs))

    def gather(self, type: str, size: int = 1):
        """Waits for ``"ALL"`` submitted jobs or a ``"BATCH"`` of at least ``size`` (Ctrl-C
        interrupts the wait); returns the local jobs, or ``(local, other)``."""
        assert type in ["ALL", "BATCH"], f"Unsupported gather operation: {type}."
        if type == "BATCH" and not self._running:
            raise ValueError("No jobs pending, call Evaluator.submit(jobs)!")
        if type == "BATCH":
            local = self._finish(self._pool.gather(_gather_size(type, size), True)[0])
        else:
            # In chunks, so that finished jobs are stored while the workers run the others.
            local = []
            while self._running:
                local += self._finish(self._pool.gather(min(len(self._running), _CHUNK), True)[0])
        other = self.gather_other_jobs_done()
        for cb in self._callbacks:
            cb.on_gather(local, other)
        return (local, other) if other else local

    async def agather(self, type: str, size: int = 1):
        """:meth:`gather` for a running event loop (Jupyter): waits on a thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.gather, type, size)

    def _finish(self, done_json: str) -> list:
        """DeepHyper's jobs for the pool's finished ones, stored and called back as
        DeepHyper's ``_on_done`` does (`_evaluator.py:364–383`), without reading each job's
        status back from the storage (a deep copy of the job in ``MemoryStorage``)."""
        jobs = []
        storage = self._storage
        for d in json.loads(done_json):
            job = self._running.pop(d["job_id"])
            metadata = job.metadata
            for k, v in d["metadata"].items():
                if k in ("timestamp_start", "timestamp_end"):
                    metadata[k] = v + self._shift
                elif k not in ("timestamp_submit", "timestamp_gather"):
                    metadata[k] = v
            objective = d["objective"]
            if isinstance(objective, float) and not math.isfinite(objective):
                objective = _DeepHyperEvaluator.FAIL_RETURN_VALUE
            job.output = {"objective": objective}
            cancelled = d["status"] == "CANCELLED"
            job.status = JobStatus.CANCELLED if cancelled else JobStatus.DONE
            metadata["timestamp_gather"] = time.monotonic() - self.timestamp
            storage.store_job_out(job.id, objective)
            for k, v in metadata.items():
                storage.store_job_metadata(job.id, k, v)
            for cb in self._callbacks:
                cb.on_done(job)
            jobs.append(job)
        if jobs:
            gathered = {j.id for j in jobs}
            self.job_id_gathered.extend(j.id for j in jobs)
            self.job_id_submitted = [i for i in self.job_id_submitted if i not in gathered]
        return jobs

    def close(self) -> list:
        """Stops running and queued jobs (they end CANCELLED with ``"F_CANCELLED"``),
        stores and returns them, and stops the workers."""
        jobs = self._finish(self._pool.close(True)) if hasattr(self, "_pool") else []
        if jobs:
            for cb in self._callbacks:
                cb.on_gather(jobs, [])
        for cb in self._callbacks:
            cb.on_close()
        return jobs

    def __del__(self):
        """Nothing to store at collection (DeepHyper's closes, storing jobs then): the pool's
        workers are stopped and reaped when the pool itself is dropped."""

    async def execute(self, job):
        """One job through the run function on a thread (DeepHyper's abstract method; this
        evaluator's :meth:`submit` sends jobs to the workers instead)."""
        running = job.create_running_job(self._stopper)
        output = await self.run_function.coroutine(running, **self.run_function_kwargs)
        return self._update_job_when_done(job, output)
