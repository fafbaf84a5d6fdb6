"""Benchmarks of the Python package, side by side in one run (BENCHMARKS.md, "Python").

Usage, from the repository (the package installed in the interpreter's environment, with
DeepHyper 0.13.2; the `sum` and `ackley` guests built for wasm32-wasip2):
    python python/bench/evaluators.py [--jobs 20000] [--calls 20000] [--cbo 200] [--only ...]

1) throughput: N trivial jobs (the `sum` guest; DeepHyper's `run_sum` for Python), submit
   all then gather("ALL"), 2 workers: wasmeval.deephyper.Evaluator with DeepHyper's
   MemoryStorage, the standalone wasmeval.Evaluator, and DeepHyper's `process` evaluator on
   the pure-Python function.
2) overhead: RunFunction called from Python on a dict, against the library's own per-job
   cost measured in the same process (the same job looped in Rust, no Python between jobs).
3) cbo: a CBO search (random_state=42, acq_optimizer="sampling") of 200 evaluations of 5-d
   Ackley with wasmeval.deephyper.Evaluator, and with DeepHyper's process evaluator on the
   Python Ackley; wall times.
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python", "tests"))
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "peers", "deephyper"))
BUILT = os.path.join(ROOT, "examples", "guests", "rust", "target", "wasm32-wasip2", "release")
SUM = os.path.join(BUILT, "sum.wasm")
ACKLEY = os.path.join(BUILT, "ackley.wasm")


def configs(n):
    rng = random.Random(0)
    return [{f"x{k}": rng.uniform(-5.0, 5.0) for k in range(3)} for _ in range(n)]


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def throughput(n):
    import wasmeval
    import wasmeval.deephyper
    from deephyper.evaluator import Evaluator, HPOJob
    from deephyper.evaluator.storage import MemoryStorage

    cs = configs(n)
    rows = {}

    def deephyper_native():
        ev = wasmeval.deephyper.Evaluator(SUM, num_workers=2, storage=MemoryStorage())
        ev._job_class = HPOJob
        ev.submit(cs[:2]), ev.gather("ALL")  # workers started
        took = timed(lambda: (ev.submit(cs), ev.gather("ALL")))
        ev.close()
        return took

    def standalone():
        ev = wasmeval.Evaluator(SUM, num_workers=2)
        ev.submit(cs[:2]), ev.gather("ALL")
        took = timed(lambda: (ev.submit(cs), ev.gather("ALL")))
        ev.close()
        return took

    def deephyper_process():
        from peer_bench_funcs import run_sum

        ev = Evaluator.create(run_sum, method="process", method_kwargs={"num_workers": 2})
        ev._job_class = HPOJob
        ev.submit(cs[:2]), ev.gather("ALL")
        m = min(n, 2000)  # DeepHyper's pool is slow: fewer jobs, the rate is what counts
        took = timed(lambda: (ev.submit(cs[:m]), ev.gather("ALL"))) * n / m
        ev.close()
        ev.executor.shutdown(wait=True)
        return took

    for name, f in [("wasmeval.deephyper.Evaluator (MemoryStorage)", deephyper_native),
                    ("wasmeval.Evaluator (standalone)", standalone),
                    ("DeepHyper process, pure Python", deephyper_process)]:
        rows[name] = n / f()
        print(f"  {name}: {rows[name]:,.0f} jobs/s", flush=True)
    base = rows.pop("DeepHyper process, pure Python")
    for name, rate in rows.items():
        print(f"  ratio {name} / DeepHyper process: {rate / base:.1f}x")


def overhead(calls):
    import wasmeval

    rf = wasmeval.RunFunction(SUM)
    native = rf._loaded
    cfg = {"x0": 1.0, "x1": 2.0, "x2": 3.0}
    text = json.dumps(cfg)
    for _ in range(1000):
        rf(cfg)
    py, rust = [], []
    for _ in range(5):
        py.append(timed(lambda: [rf(cfg) for _ in range(calls)]) / calls * 1e6)
        rust.append(native._time_runs(text, calls) * 1e6)
    p, r = statistics.median(py), statistics.median(rust)
    print(f"  RunFunction(dict) call: {p:.1f} us; the library's per-job cost (LoadedModule::run and "
          f"the outcome, looped in Rust): {r:.1f} us; overhead from Python {p - r:.1f} us")


def cbo(evals):
    import wasmeval.deephyper
    from conftest import run_ackley
    from deephyper.evaluator import Evaluator
    from deephyper.hpo import CBO, HpProblem

    problem = HpProblem()
    for i in range(5):
        problem.add_hyperparameter((-32.768, 32.768), f"x{i}")
    for name, make in [
        ("wasmeval.deephyper.Evaluator, wasm Ackley", lambda: wasmeval.deephyper.Evaluator(ACKLEY, num_workers=2)),
        ("DeepHyper process, Python Ackley", lambda: Evaluator.create(run_ackley, method="process", method_kwargs={"num_workers": 2})),
    ]:
        ev = make()
        search = CBO(problem, random_state=42, log_dir=tempfile.mkdtemp(), acq_optimizer="sampling")
        took = timed(lambda: search.search(ev, max_evals=evals))
        print(f"  CBO {evals} evaluations, {name}: {took:.1f} s", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--cbo", type=int, default=200)
    ap.add_argument("--only", default="throughput,overhead,cbo")
    a = ap.parse_args()
    only = a.only.split(",")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus", flush=True)
    if "throughput" in only:
        print(f"throughput: {a.jobs} trivial jobs, submit all, gather ALL, 2 workers")
        throughput(a.jobs)
    if "overhead" in only:
        print(f"overhead: {a.calls} calls x 5, median")
        overhead(a.calls)
    if "cbo" in only:
        print("cbo:")
        cbo(a.cbo)
