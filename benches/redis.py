"""The redis method's figures (BENCHMARKS.md, "Redis"), all from one run so that ratios
compare like with like on a shared machine:

- trivial jobs (the `sum` guest) end to end through a Redis server: `--method redis` with two
  `wasmeval worker --workers 1` against `--method process --workers 2` (memory storage), runs
  alternated, the median of each reported (the CLI's own `wall time … jobs/s` line), with the
  CPU seconds of redis-server and of the workers (their agents and job processes);
- how long after a job finished its outcome is visible in the Redis storage: a poller reads
  the completion list every millisecond while jobs of 20 ms run one at a time, and each job's
  `timestamp_end` (on the search's axis, whose origin is stored with the search) is compared
  with when it became visible.

    cargo build --release
    (cd examples/guests/rust && cargo build --release --target wasm32-wasip2 -p sum -p probe)
    python3 benches/redis.py [--jobs 20000] [--repeat 5]
"""

import argparse
import csv
import os
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUESTS = os.path.join(ROOT, "examples/guests/rust/target/wasm32-wasip2/release")
BINARY = os.path.join(ROOT, "target/release/wasmeval")
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu(pid):
    """utime + stime of `pid` and its reaped children, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / TICK
    except OSError:
        return 0.0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def tree_cpu(pid):
    return cpu(pid) + sum(tree_cpu(c) for c in children(pid))


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def rate(out):
    m = re.search(r"wall time ([\d.]+) s, (\d+) jobs/s", out)
    return float(m.group(2)) if m else None


def trivial(port, jobs, repeat, tmp):
    sum_wasm = os.path.join(GUESTS, "sum.wasm")
    configs = os.path.join(tmp, "trivial.jsonl")
    with open(configs, "w") as f:
        for i in range(jobs):
            f.write(f'{{"x0": {i}, "x1": 1.5, "x2": 2}}\n')
    url = f"redis://127.0.0.1:{port}"
    workers = [subprocess.Popen([BINARY, "worker", url, "--workers", "1"],
                                stderr=subprocess.DEVNULL) for _ in range(2)]
    time.sleep(0.5)
    redis_pid = int(redis_cli(port, "info", "server").split("process_id:")[1].split()[0])
    rates = {"redis": [], "process": []}
    cpu_per_job = {"redis-server": [], "workers": [], "evaluator": []}
    try:
        for _ in range(repeat):
            out = subprocess.run([BINARY, "run", sum_wasm, "-i", configs, "--method", "process",
                                  "--workers", "2", "--storage", "memory", "--progress", "never"],
                                 capture_output=True, text=True, check=True)
            rates["process"].append(rate(out.stderr))
            redis_cli(port, "flushall")
            before = (cpu(redis_pid), sum(tree_cpu(w.pid) for w in workers))
            err_path = os.path.join(tmp, "evaluator.err")
            with open(err_path, "w") as err_file:
                proc = subprocess.Popen([BINARY, "run", sum_wasm, "-i", configs, "--method",
                                         "redis", "--storage", url, "--progress", "never"],
                                        stdout=subprocess.DEVNULL, stderr=err_file)
                # The evaluator's CPU with its reaped children, read once at its end.
                _, _, usage = os.wait4(proc.pid, 0)
            evaluator_cpu = usage.ru_utime + usage.ru_stime
            with open(err_path) as f:
                rates["redis"].append(rate(f.read()))
            cpu_per_job["redis-server"].append((cpu(redis_pid) - before[0]) / jobs * 1e6)
            cpu_per_job["workers"].append(
                (sum(tree_cpu(w.pid) for w in workers) - before[1]) / jobs * 1e6)
            cpu_per_job["evaluator"].append(evaluator_cpu / jobs * 1e6)
    finally:
        for w in workers:
            w.terminate()
            w.wait()
    return rates, cpu_per_job


def latency(port, tmp, jobs=40):
    probe = os.path.join(GUESTS, "probe.wasm")
    configs = os.path.join(tmp, "sleep.jsonl")
    with open(configs, "w") as f:
        for _ in range(jobs):
            f.write('{"action": "sleep", "n": 20}\n')
    url = f"redis://127.0.0.1:{port}/?prefix=latency"
    worker = subprocess.Popen([BINARY, "worker", url, "--workers", "1"],
                              stderr=subprocess.DEVNULL)
    seen = {}
    stop = threading.Event()

    def poll():
        cursor = 0
        while not stop.is_set():
            for n in redis_cli(port, "lrange", "latency:search:0.done", str(cursor), "-1").split():
                seen[int(n)] = time.time()
                cursor += 1
            time.sleep(0.001)

    poller = threading.Thread(target=poll)
    poller.start()
    out = os.path.join(tmp, "latency.csv")
    try:
        subprocess.run([BINARY, "run", probe, "-i", configs, "--method", "redis", "--storage", url,
                        "-q", "-o", out], check=True)
    finally:
        time.sleep(0.1)
        stop.set()
        poller.join()
        worker.terminate()
        worker.wait()
    origin = float(redis_cli(port, "hget", "latency:search:0.values", "origin"))
    delays = []
    with open(out) as f:
        for row in csv.DictReader(f):
            end = origin + float(row["m:timestamp_end"])
            delays.append((seen[int(row["job_id"])] - end) * 1000)
    return delays


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", tmp],
                                  stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            rates, cpu_per_job = trivial(port, args.jobs, args.repeat, tmp)
            delays = latency(port, tmp)
        finally:
            server.terminate()
            server.wait()
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"trivial jobs, {args.jobs} per run, {args.repeat} runs each, alternated:")
    for k, v in rates.items():
        print(f"  {k:8} median {med[k]:8.0f} jobs/s  (runs: {', '.join(f'{x:.0f}' for x in v)})")
    print(f"  redis / process: {med['redis'] / med['process']:.2f}")
    for k, v in cpu_per_job.items():
        print(f"  CPU per job, {k}: {statistics.median(v):.1f} us")
    delays.sort()
    print(f"first visible after the job ended ({len(delays)} jobs of 20 ms, one at a time): "
          f"median {statistics.median(delays):.1f} ms, max {delays[-1]:.1f} ms")


if __name__ == "__main__":
    main()
