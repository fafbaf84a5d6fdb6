"""Checks that wasmeval's results.csv has the columns DeepHyper 0.13.2 writes, name for name and
in order, for the same jobs, with the run function wrapped in @profile; and that pandas loads it.

Usage: python check_columns.py WASMEVAL_BINARY SUM_GUEST.wasm CONFIGS.jsonl
(`.ci/run` runs it with DeepHyper from PyPI in .venv-deephyper.) Exits non-zero on a mismatch.
"""

import json
import os
import subprocess
import sys
import tempfile

import pandas as pd
from deephyper.evaluator import Evaluator, HPOJob, profile
from deephyper.evaluator.callback import CSVLoggerCallback


@profile
def run(job):
    return job["x0"] + job["x1"] + job["x2"]


def main(wasmeval, guest, configs_path):
    with open(configs_path) as f:
        configs = [json.loads(line) for line in f if line.strip()]
    tmp = tempfile.mkdtemp()
    dh_csv = os.path.join(tmp, "deephyper.csv")
    ev = Evaluator.create(
        run,
        method="thread",
        method_kwargs={"num_workers": 1, "callbacks": [CSVLoggerCallback(dh_csv)]},
    )
    ev._job_class = HPOJob  # what deephyper.hpo.Search does
    ev.submit(configs)
    ev.gather("ALL")
    ev.close()

    ours_csv = os.path.join(tmp, "wasmeval.csv")
    subprocess.run(
        [wasmeval, "run", guest, "-i", configs_path, "-o", ours_csv, "--method", "serial", "--storage", "memory", "--quiet"],
        check=True,
    )
    dh = pd.read_csv(dh_csv).sort_values("job_id").reset_index(drop=True)
    ours = pd.read_csv(ours_csv).sort_values("job_id").reset_index(drop=True)
    problems = []
    if list(ours.columns) != list(dh.columns):
        problems.append(f"columns differ:\n  wasmeval:  {list(ours.columns)}\n  deephyper: {list(dh.columns)}")
    else:
        if ours["job_id"].tolist() != dh["job_id"].tolist():
            problems.append(f"job ids differ: {ours['job_id'].tolist()} vs {dh['job_id'].tolist()}")
        if ours["job_status"].tolist() != dh["job_status"].tolist():
            problems.append(f"statuses differ: {ours['job_status'].tolist()} vs {dh['job_status'].tolist()}")
        for name in [c for c in dh.columns if c.startswith("p:")] + ["objective"]:
            diff = (ours[name].astype(float) - dh[name].astype(float)).abs().max()
            if diff > 1e-12:
                problems.append(f"column {name} differs by {diff}")
        for name in [c for c in dh.columns if c.startswith("m:")]:
            if ours[name].dtype.kind != "f":
                problems.append(f"column {name} is {ours[name].dtype}, expected seconds as floats")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(f"results.csv matches DeepHyper 0.13.2 for {len(ours)} jobs: {list(ours.columns)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
