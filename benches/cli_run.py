#!/usr/bin/env python3
"""End-to-end figures of `wasmeval run` (issue 5), with the real binary.

1. N JSON Lines configurations of the trivial `sum` guest -> results.csv, SQLite storage,
   2 workers: wall time and peak memory (RSS) of the whole command.
2. The first result committed: time from starting the command to the first row of the
   storage's completion table, module already in the compile cache (median of R runs).

Usage (after `cargo build --release` and building the Rust guests):
    python3 benches/cli_run.py [--jobs 100000] [--runs 5] [--memory-jobs 1000000]
"""
import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# WASMEVAL_BIN: another build to measure (an older commit's, side by side).
BIN = os.environ.get("WASMEVAL_BIN", os.path.join(ROOT, "target", "release", "wasmeval"))
SUM = os.path.join(ROOT, "examples", "guests", "rust", "target", "wasm32-wasip2", "release", "sum.wasm")


def write_configs(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"x0": i, "x1": i * 0.5, "x2": -1}) + "\n")


def run(args, cwd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.monotonic()
    p = subprocess.run([BIN, "run", SUM, *args], cwd=cwd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"wasmeval failed ({p.returncode}): {p.stderr}")
    # ru_maxrss of children is the largest of any waited-for child so far (KiB).
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, rss if rss > before else None, p.stderr


def first_commit(tmp, configs):
    db = os.path.join(tmp, "first.sqlite")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    t0 = time.monotonic()
    p = subprocess.Popen([BIN, "run", SUM, "-i", configs, "--storage", db, "--workers", "2", "-q"], cwd=tmp)
    seen = None
    while seen is None and time.monotonic() - t0 < 10:
        if os.path.exists(db):
            try:
                c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.001)
                if c.execute("SELECT count(*) FROM completions").fetchone()[0] > 0:
                    seen = time.monotonic() - t0
                c.close()
            except sqlite3.Error:
                pass
        time.sleep(0.0005)
    p.wait()
    return seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--memory-jobs", type=int, default=0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configs = os.path.join(tmp, "configs.jsonl")
        write_configs(configs, a.jobs)
        subprocess.run([BIN, "compile", SUM], check=True, capture_output=True)
        walls = []
        for r in range(a.runs):
            db = os.path.join(tmp, f"r{r}.sqlite")
            wall, rss, err = run(["-i", configs, "-o", os.path.join(tmp, "results.csv"),
                                  "--storage", db, "--workers", "2"], tmp)
            walls.append(wall)
            print(f"run {r}: {a.jobs} jobs -> results.csv in {wall:.2f} s wall "
                  f"({a.jobs / wall:,.0f} jobs/s end to end); {err.strip().splitlines()[-1]}")
        print(f"{a.jobs} configurations: median wall {statistics.median(walls):.2f} s "
              f"(min {min(walls):.2f}, max {max(walls):.2f})")
        with open(configs) as f:
            rows = sum(1 for _ in f)
        assert rows == a.jobs
        small = os.path.join(tmp, "one.jsonl")
        write_configs(small, 1)
        for name, path in (("1 configuration", small), (f"{a.jobs} configurations", configs)):
            times = [first_commit(tmp, path) for _ in range(a.runs)]
            ok = [t for t in times if t is not None]
            print(f"first result committed ({name}): median {statistics.median(ok) * 1000:.1f} ms "
                  f"(min {min(ok) * 1000:.1f}, max {max(ok) * 1000:.1f}) from the command's start")
        if a.memory_jobs:
            big = os.path.join(tmp, "big.jsonl")
            write_configs(big, a.memory_jobs)
            for n, path in ((a.jobs, configs), (a.memory_jobs, big)):
                cmd = ["/usr/bin/time", "-f", "%M", BIN, "run", SUM, "-i", path, "-o",
                       os.path.join(tmp, "big.csv"), "--storage", os.path.join(tmp, f"m{n}.sqlite"),
                       "--workers", "2"]
                t0 = time.monotonic()
                p = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
                wall = time.monotonic() - t0
                rss = p.stderr.strip().splitlines()[-1]
                print(f"{n:,} configurations: peak RSS of the command {int(rss) / 1024:.1f} MiB, "
                      f"wall {wall:.1f} s")


if __name__ == "__main__":
    main()
