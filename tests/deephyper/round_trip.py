"""A DeepHyper search whose evaluations go through `wasmeval run`, batch by batch, joined into
one search with --search-id; its results.csv then goes back into DeepHyper: loaded, restarted
from (checkpoint_restart) and plotted.

Usage: python round_trip.py WASMEVAL_BINARY SUM_GUEST.wasm
(`.ci/run` runs it with DeepHyper 0.13.2 from PyPI in .venv-deephyper.) Exits non-zero on a
mismatch, with what differs.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")

from deephyper.analysis.hpo import (  # noqa: E402
    plot_search_trajectory_single_objective_hpo,
    read_results_from_csv,
)
from deephyper.evaluator import Evaluator  # noqa: E402
from deephyper.hpo import CBO, HpProblem  # noqa: E402

BATCHES, BATCH, WORKERS = 4, 8, 2


def problem():
    p = HpProblem()
    for name in ("x0", "x1", "x2"):
        p.add_hyperparameter((-10.0, 10.0), name)
    return p


def run(job):
    return job.parameters["x0"] + job.parameters["x1"] + job.parameters["x2"]


def main(wasmeval, guest):
    tmp = tempfile.mkdtemp()
    db = os.path.join(tmp, "search.sqlite")
    search = CBO(problem(), random_state=42, log_dir=os.path.join(tmp, "asking"))
    asked = []
    problems = []
    for b in range(BATCHES):
        configs = search.ask(BATCH)
        asked.extend(configs)
        batch = os.path.join(tmp, f"batch{b}.jsonl")
        with open(batch, "w") as f:
            f.writelines(json.dumps(c) + "\n" for c in configs)
        out = os.path.join(tmp, f"out{b}.jsonl")
        command = [wasmeval, "run", guest, "-i", batch, "-o", out, "--storage", db]
        command += ["--method", "process", "--workers", str(WORKERS), "--quiet"]
        if b > 0:
            command += ["--search-id", "0"]
        subprocess.run(command, check=True)
        with open(out) as f:
            jobs = [json.loads(line) for line in f]
        # The output holds the whole search so far; this batch is its last BATCH jobs.
        search.tell([(j["config"], j["objective"]) for j in jobs[-BATCH:]])

    results = os.path.join(tmp, "results.csv")
    subprocess.run([wasmeval, "results", "--storage", db, "--search-id", "0", "-o", results], check=True)
    df = read_results_from_csv(results)

    # 1. Exact configurations, contiguous ids.
    if df["job_id"].tolist() != list(range(BATCHES * BATCH)):
        problems.append(f"job ids are not 0..{BATCHES * BATCH - 1}: {df['job_id'].tolist()}")
    for i, config in enumerate(asked):
        for name, value in config.items():
            got = df[f"p:{name}"].iloc[i]
            if got != value:
                problems.append(f"job {i}: p:{name} is {got!r}, DeepHyper asked {value!r}")

    # 2. One clock: each batch starts after the one before ended.
    for b in range(1, BATCHES):
        before = df.iloc[(b - 1) * BATCH : b * BATCH]
        this = df.iloc[b * BATCH : (b + 1) * BATCH]
        if this["m:timestamp_submit"].min() < before["m:timestamp_end"].max():
            problems.append(f"batch {b} was submitted before batch {b - 1} ended: clocks restarted")

    # 3. At most WORKERS jobs at once.
    events = sorted(
        [(t, 1) for t in df["m:timestamp_start"]] + [(t, -1) for t in df["m:timestamp_end"]],
        key=lambda e: (e[0], e[1]),
    )
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    if most > WORKERS:
        problems.append(f"{most} jobs ran at once on {WORKERS} workers")

    # 4. The best-so-far curve, over time: at the end of each batch, the best of the batches so far.
    _, ax = plot_search_trajectory_single_objective_hpo(df, x_units="seconds")
    x, y = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    for b in range(BATCHES):
        done = df.iloc[: (b + 1) * BATCH]
        end = done["m:timestamp_end"].max()
        shown = max(yi for xi, yi in zip(x, y) if xi <= end)
        if shown != done["objective"].max():
            problems.append(f"the curve shows {shown} at the end of batch {b}, the best was {done['objective'].max()}")

    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1

    # 5. checkpoint_restart from wasmeval's results.csv finishes (it waited forever on gaps).
    restart_dir = os.path.join(tmp, "restart")
    os.makedirs(restart_dir)
    os.rename(results, os.path.join(restart_dir, "results.csv"))
    signal.alarm(120)
    restarted = CBO(problem(), random_state=42, log_dir=restart_dir, checkpoint_restart=True)
    evaluator = Evaluator.create(run, method="thread", method_kwargs={"num_workers": 1})
    # max_evals counts the evaluations of this call; the reloaded ones come on top.
    more = restarted.search(evaluator, max_evals=4)
    signal.alarm(0)
    if len(more) != BATCHES * BATCH + 4:
        problems.append(f"the restarted search ended with {len(more)} results")

    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(
        f"DeepHyper round trip: {BATCHES} batches of {BATCH} through wasmeval, exact floats, "
        f"ids 0..{BATCHES * BATCH - 1}, one clock, at most {most} jobs at once, "
        f"restarted to {len(more)} results"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
