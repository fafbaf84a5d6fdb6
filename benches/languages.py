#!/usr/bin/env python3
"""Run functions in eight languages (issue 7), with the real binary: for every artifact of
examples/guests/*/out/, the same Ackley objective:

- size of the artifact;
- first compile: `wasmeval compile` into an empty cache (read, componentize if a core module
  asks for it, Cranelift in the bounded child, store), best of R;
- cached load: `wasmeval compile` again with the entry cached (read, hash, check, map, link),
  median of R;
- start: a whole `wasmeval run` of one configuration with the module cached (2 workers, the CLI
  default), median of R; the issue's target is within 50 ms of the Rust guest's;
- per job: (wall of N configurations - wall of 1) / (N - 1), one worker, memory storage,
  median of R; N is sized from a first estimate so that a run takes about two seconds
  (--jobs at least, 50,000 at most).

Usage (after `cargo build --release` and `examples/guests/build.sh`):
    python3 benches/languages.py [--jobs 2000] [--runs 5]
"""
import argparse
import glob
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "wasmeval")
ORDER = ["rust", "c", "cpp", "zig", "go", "assemblyscript", "javascript", "python"]


def timed(args, env):
    start = time.perf_counter()
    out = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {out.stderr.decode()}")
    return elapsed


def write_configs(path, n):
    rng = random.Random(7)
    with open(path, "w") as f:
        for _ in range(n):
            x = [round(rng.uniform(-5, 5), 3) for _ in range(5)]
            f.write(json.dumps({"x": x}) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    tmp = tempfile.mkdtemp()
    one, many = os.path.join(tmp, "one.jsonl"), os.path.join(tmp, "many.jsonl")
    write_configs(one, 1)
    artifacts = []
    for language in ORDER:
        for path in sorted(glob.glob(os.path.join(ROOT, "examples", "guests", language, "out", "*.wasm"))):
            artifacts.append((language, path))
    rows = []
    for language, path in artifacts:
        name = f"{language}/{os.path.basename(path)}"
        env = dict(os.environ, WASMEVAL_STORAGE="memory")
        firsts = []
        for r in range(max(1, a.runs // 2)):
            env["WASMEVAL_CACHE_DIR"] = os.path.join(tmp, f"cache-{language}-{os.path.basename(path)}-{r}")
            firsts.append(timed([BIN, "compile", path], env))
        loads = [timed([BIN, "compile", path], env) for _ in range(a.runs)]
        out = os.path.join(tmp, "out.jsonl")
        starts = [timed([BIN, "run", path, "--input", one, "--output", out], env) for _ in range(a.runs)]
        run = lambda inp: timed([BIN, "run", path, "--input", inp, "--output", out, "--workers", "1"], env)
        write_configs(many, a.jobs)
        estimate = (run(many) - run(one)) / (a.jobs - 1)
        n = min(50000, max(a.jobs, int(2.0 / max(estimate, 1e-6))))
        write_configs(many, n)
        per_job = [(run(many) - run(one)) / (n - 1) for _ in range(a.runs)]
        rows.append(
            {
                "artifact": name,
                "size": os.path.getsize(path),
                "first_compile_s": min(firsts),
                "cached_load_ms": statistics.median(loads) * 1e3,
                "start_ms": statistics.median(starts) * 1e3,
                "per_job_us": statistics.median(per_job) * 1e6,
                "jobs": n,
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    rust = next(r for r in rows if r["artifact"] == "rust/ackley.wasm")
    print(f"5-dimensional Ackley; medians of {a.runs} runs; per job over N configurations\n")
    print("| artifact | size | first compile | cached load | `run` start (Δ Rust) | per job (N) | ÷ Rust |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        size = r["size"]
        size_s = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 1024:.0f} KiB"
        print(
            f"| {r['artifact']} | {size_s} | {r['first_compile_s']:.2f} s | {r['cached_load_ms']:.1f} ms "
            f"| {r['start_ms']:.0f} ms ({r['start_ms'] - rust['start_ms']:+.0f}) "
            f"| {r['per_job_us']:.0f} µs ({r['jobs']}) | {r['per_job_us'] / rust['per_job_us']:.1f} |"
        )


if __name__ == "__main__":
    main()
