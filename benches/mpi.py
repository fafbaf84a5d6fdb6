"""The mpi method's figures (BENCHMARKS.md, "MPI"), all from one run so that ratios compare
like with like on a shared machine:

- trivial jobs (the `sum` guest, DeepHyper's trivial peer workload), memory storage:
  `mpirun -n 3` (rank 0 + 2 agents of 1 worker each) against `--method process --workers 2`,
  with the CPU microseconds per job of each role (sampled from /proc while it runs);
- DeepHyper 0.13.2's own mpicomm evaluator (mpi4py) under the same mpirun, same workload;
- compute-bound (Rastrigin, 8 jobs of 2M evaluations): 2 agents against 1.

    cargo build --release --features mpi
    (cd examples/guests/rust && cargo build --release --target wasm32-wasip2 -p sum -p ackley)
    python3 benches/mpi.py --python .venv-deephyper/bin/python
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUESTS = os.path.join(ROOT, "examples/guests/rust/target/wasm32-wasip2/release")
PEERS = os.path.join(ROOT, "..", "shared", "peers", "deephyper")
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe"]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of `pid` itself, in seconds (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except OSError:
        return None


def descendants(pid):
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out + [d for c in out for d in descendants(c)]


def role(pid, top, binary):
    """`rank N`, `parent` (the process method's), `worker`, or None (a launcher)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if os.path.basename(binary).encode() not in f.read().split(b"\0")[0]:
                return None
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
    except OSError:
        return None
    rank = env.get(b"OMPI_COMM_WORLD_RANK")
    if rank is not None:
        return f"rank {rank.decode()}"
    # Workers never inherit the launcher's variables.
    return "parent" if pid == top else "worker"


def measured(cmd, binary):
    """Runs `cmd`; returns (wall seconds, stderr, CPU seconds by role), sampling /proc
    every 20 ms (the last sample of each process counts)."""
    last, roles = {}, {}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for pid in [proc.pid] + descendants(proc.pid):
                if pid not in roles:
                    roles[pid] = role(pid, proc.pid, binary)
                t = cpu_seconds(pid)
                if t is not None and roles[pid] is not None:
                    last[pid] = t
            time.sleep(0.02)

    t0 = time.perf_counter()
    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    by_role = {}
    for pid, secs in last.items():
        r = roles[pid]
        r = "agent" if r.startswith("rank ") and r != "rank 0" else r
        by_role[r] = by_role.get(r, 0.0) + secs
    return wall, err, by_role


def rate(stderr):
    m = re.search(r"wall time ([0-9.]+) s, ([0-9]+) jobs/s", stderr)
    assert m, stderr
    return float(m.group(2))


def write_configs(path, configs):
    with open(path, "w") as f:
        for c in configs:
            f.write(json.dumps(c) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/wasmeval"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--deephyper-jobs", type=int, default=2_000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    configs = os.path.join(tmp, "configs.jsonl")
    write_configs(
        configs,
        ({"x0": i * 1e-3, "x1": 0.5, "x2": -i * 1e-4} for i in range(a.jobs)),
    )
    sum_wasm = os.path.join(GUESTS, "sum.wasm")
    common = ["-i", configs, "--storage", "memory", "--progress", "never", "-o",
              os.path.join(tmp, "out.csv")]
    mpi_cmd = MPIRUN + ["-n", "3", a.binary, "run", sum_wasm, "--method", "mpi",
                        "--workers", "1"] + common
    proc_cmd = [a.binary, "run", sum_wasm, "--method", "process", "--workers", "2"] + common
    rows = []
    for run in range(a.runs):
        for name, cmd in (("mpi", mpi_cmd), ("process", proc_cmd)):
            wall, err, cpu = measured(cmd, a.binary)
            rows.append((name, rate(err), wall, cpu))
            per_job = ", ".join(
                f"{r}: {s / a.jobs * 1e6:.1f}" for r, s in sorted(cpu.items())
            )
            print(f"run {run} {name:8} {rate(err):>8.0f} jobs/s  command {wall:.2f} s  "
                  f"CPU µs/job {per_job}", flush=True)
    mpi = statistics.median(r[1] for r in rows if r[0] == "mpi")
    proc = statistics.median(r[1] for r in rows if r[0] == "process")
    print(f"TRIVIAL  median of {a.runs}: mpi {mpi:.0f} jobs/s, process {proc:.0f} jobs/s, "
          f"ratio {mpi / proc:.2f}")

    # DeepHyper's mpicomm, same launcher, same workload: with its default storage
    # (MPIWinStorage, one-sided MPI windows) and with MemoryStorage on rank 0 (like ours).
    script = os.path.join(tmp, "mpicomm.py")
    with open(script, "w") as f:
        f.write(f"""
import sys, time
sys.path.insert(0, {PEERS!r})
from peer_bench_funcs import run_sum
from deephyper.evaluator import Evaluator
from deephyper.evaluator.storage import MemoryStorage
n, storage = int(sys.argv[1]), sys.argv[2]
kwargs = {{"storage": MemoryStorage()}} if storage == "memory" else {{}}
configs = [{{"x0": i * 1e-3, "x1": 0.5, "x2": -i * 1e-4}} for i in range(n)]
with Evaluator.create(run_sum, method="mpicomm", method_kwargs=kwargs) as ev:
    if ev.is_master:
        t = time.perf_counter()
        ev.submit(configs)
        jobs = ev.gather("ALL")
        assert len(jobs) == n
        print(f"DEEPHYPER {{n / (time.perf_counter() - t):.0f}}", flush=True)
""")
    for storage, n in (("memory", a.deephyper_jobs), ("default", a.deephyper_jobs // 10)):
        out = subprocess.run(MPIRUN + ["-n", "3", a.python, script, str(n), storage],
                             capture_output=True, text=True)
        m = re.search(r"DEEPHYPER ([0-9]+)", out.stdout)
        if not m:
            print("DeepHyper mpicomm failed:", out.stdout[-2000:], out.stderr[-2000:])
            continue
        dh = float(m.group(1))
        print(f"DEEPHYPER mpicomm, 3 ranks, {storage} storage, {n} jobs: {dh:.0f} jobs/s; "
              f"wasmeval mpi / DeepHyper mpicomm = {mpi / dh:.0f}x", flush=True)

    # Compute-bound: Rastrigin through the ackley guest's `repeat`.
    x = [(i - 4.5) * 0.37 for i in range(10)]
    rastrigin = os.path.join(tmp, "rastrigin.jsonl")
    write_configs(rastrigin, [{"x": x, "repeat": 2_000_000}] * 8)
    walls = {}
    for ranks in (2, 3):
        cmd = MPIRUN + ["-n", str(ranks), a.binary, "run",
                        os.path.join(GUESTS, "ackley.wasm"), "--method", "mpi",
                        "--workers", "1", "-i", rastrigin, "--storage", "memory",
                        "--progress", "never", "-o", os.path.join(tmp, "r.csv")]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        m = re.search(r"wall time ([0-9.]+) s", out.stderr)
        walls[ranks - 1] = float(m.group(1))
        print(f"COMPUTE  {ranks - 1} agent(s) of 1 worker, 8 Rastrigin jobs: "
              f"{walls[ranks - 1]:.2f} s (the evaluation, from the summary)", flush=True)
    print(f"         speed-up with 2 agents: {walls[1] / walls[2]:.2f}x")


if __name__ == "__main__":
    main()
