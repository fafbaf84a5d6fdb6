"""wasm run functions in DeepHyper 0.13.2: its searches, evaluators, stoppers and results.csv."""

import csv
import inspect
import os

import pytest
from deephyper.evaluator import Evaluator as DHEvaluator
from deephyper.evaluator import HPOJob, RunningJob
from deephyper.hpo import CBO, HpProblem

import wasmeval
import wasmeval.deephyper
from conftest import ackley

COLUMNS = {"p:x0", "p:x1", "p:x2", "p:x3", "p:x4", "objective", "job_id", "job_status",
           "m:timestamp_submit", "m:timestamp_gather"}


def problem():
    p = HpProblem()
    for i in range(5):
        p.add_hyperparameter((-32.768, 32.768), f"x{i}")
    return p


def check_results(log_dir, evaluations):
    with open(os.path.join(log_dir, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= evaluations
    assert COLUMNS <= set(rows[0]), rows[0].keys()
    assert sorted(int(r["job_id"]) for r in rows) == list(range(len(rows)))
    for r in rows:
        x = [float(r[f"p:x{i}"]) for i in range(5)]
        assert r["job_status"] == "DONE"
        assert abs(float(r["objective"]) - -ackley(x)) <= 1e-12, r
    return rows


def test_cbo_searches_a_wasm_ackley_on_the_native_pool(guests, tmp_path):
    evaluator = wasmeval.deephyper.Evaluator(guests["ackley"], num_workers=2)
    assert isinstance(evaluator, DHEvaluator)
    search = CBO(problem(), random_state=42, log_dir=str(tmp_path), acq_optimizer="sampling")
    search.search(evaluator, max_evals=100)
    rows = check_results(tmp_path, 100)
    # The workers' own start and end times, on DeepHyper's axis.
    for r in rows:
        submit, start, end, gather = (float(r[f"m:timestamp_{k}"]) for k in ("submit", "start", "end", "gather"))
        assert submit <= start <= end <= gather, r


def test_cbo_searches_a_run_function_on_deephyper_s_process_method(guests, tmp_path):
    rf = wasmeval.RunFunction(guests["ackley"], job_timeout=10)
    evaluator = DHEvaluator.create(rf, method="process", method_kwargs={"num_workers": 2})
    CBO(problem(), random_state=42, log_dir=str(tmp_path), acq_optimizer="sampling").search(evaluator, max_evals=100)
    check_results(tmp_path, 100)


@pytest.mark.parametrize("method", ["serial", "thread", "process", "loky"])
def test_every_local_deephyper_method_runs_a_run_function(guests, method):
    rf = wasmeval.RunFunction(guests["ackley"], job_timeout=10)
    run_function = rf.coroutine if method == "serial" else rf
    if method == "serial":
        assert inspect.iscoroutinefunction(run_function)
    evaluator = DHEvaluator.create(run_function, method=method, method_kwargs={"num_workers": 2})
    evaluator._job_class = HPOJob  # as DeepHyper's searches set it
    configs = [{f"x{i}": 0.1 * (i + k) for i in range(5)} for k in range(6)]
    evaluator.submit(configs)
    jobs = evaluator.gather("ALL")
    assert len(jobs) == 6
    for job in jobs:
        x = [job.args[f"x{i}"] for i in range(5)]
        assert abs(job.objective - -ackley(x)) <= 1e-12
        assert job.metadata["timestamp_start"] <= job.metadata["timestamp_end"]
    evaluator.close()


def test_hostile_guests_are_failed_jobs_in_deephyper_s_results(guests, tmp_path):
    rf = wasmeval.RunFunction(guests["probe"], job_timeout=1, memory="64MiB")
    for evaluator in (
        DHEvaluator.create(rf, method="thread", method_kwargs={"num_workers": 2}),
        wasmeval.deephyper.Evaluator(rf, num_workers=2),
    ):
        evaluator._job_class = HPOJob
        evaluator.submit([{"action": "spin"}, {"action": "alloc", "n": 4096},
                          {"action": "panic"}, {"action": "echo", "x": 1.5}])
        jobs = {j.args["action"]: j for j in evaluator.gather("ALL")}
        assert jobs["spin"].objective == "F_timeout"
        assert jobs["alloc"].objective == "F_memory_limit"
        assert jobs["panic"].objective == "F_trap"
        assert jobs["echo"].objective == 1.5
        evaluator.close()


def test_a_stopper_stops_a_wasm_multi_fidelity_job_early(guests, tmp_path):
    from deephyper.stopper import SuccessiveHalvingStopper

    p = HpProblem()
    p.add_hyperparameter((0.001, 1.0, "log-uniform"), "lr")
    p.add_hyperparameter([10], "epochs")
    p.add_hyperparameter([12], "epoch_ms")
    rf = wasmeval.RunFunction(guests["multifidelity"], job_timeout=30)
    evaluator = DHEvaluator.create(rf, method="thread", method_kwargs={"num_workers": 2})
    stopper = SuccessiveHalvingStopper(max_steps=10, min_steps=1, reduction_factor=3)
    search = CBO(p, random_state=42, log_dir=str(tmp_path), stopper=stopper, acq_optimizer="sampling")
    results = search.search(evaluator, max_evals=20)
    epochs = results["m:epochs"].tolist()
    assert max(epochs) == 10, epochs
    assert min(epochs) < 10, f"no job was stopped early: {epochs}"


def test_a_running_job_is_what_the_run_function_reads(guests):
    job = RunningJob(id="3.4", parameters={"action": "kwargs"})
    out = wasmeval.RunFunction(guests["probe"], kwargs={"a": 1})(job, b=2)
    assert out["metadata"]["id"] == job.id
    assert out["metadata"]["kwargs"] == {"a": 1, "b": 2}


def test_the_native_pool_keeps_deephyper_s_ids_and_statuses_over_many_chunks(guests):
    from deephyper.evaluator.storage import MemoryStorage

    storage = MemoryStorage()
    evaluator = wasmeval.deephyper.Evaluator(guests["ackley"], num_workers=2, storage=storage)
    evaluator._job_class = HPOJob
    configs = [{"x0": i / 1000} for i in range(1300)]  # past two chunks of 512
    evaluator.submit(configs)
    jobs = evaluator.gather("ALL")
    sid = evaluator._search_id
    assert sorted(int(j.id.split(".")[1]) for j in jobs) == list(range(1300))
    for job in jobs:
        assert job.status.name == "DONE"
        assert abs(job.objective - -ackley([job.args["x0"]])) <= 1e-12
        stored = storage.load_job(job.id)
        assert stored["out"] == job.objective and stored["in"]["args"][0] == job.args
    assert evaluator.num_jobs_gathered == 1300
    assert len(storage.load_all_job_ids(sid)) == 1300
    evaluator.close()


def test_the_native_pool_s_timeout_cancels_running_jobs_and_its_gather_awaits(guests):
    import asyncio
    import time

    rf = wasmeval.RunFunction(guests["probe"])
    evaluator = wasmeval.deephyper.Evaluator(rf, num_workers=2)
    evaluator._job_class = HPOJob
    evaluator.timeout = 0.5
    evaluator.submit([{"action": "spin"}] * 3)
    t = time.monotonic()
    jobs = asyncio.run(evaluator.agather("ALL"))
    assert time.monotonic() - t < 10
    assert [j.objective for j in jobs] == ["F_CANCELLED"] * 3
    assert all(j.status.name == "CANCELLED" for j in jobs)
    assert evaluator.time_left <= 0
    evaluator.close()
