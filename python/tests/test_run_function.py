"""RunFunction on its own: calls, pickling, the GIL, fork, hostile guests, bad arguments."""

import json
import os
import pickle
import threading
import time

import pytest

import wasmeval
from conftest import ackley


def test_a_dict_call_returns_deephyper_output_with_monotonic_times(guests):
    rf = wasmeval.RunFunction(guests["ackley"], job_timeout=10)
    before = time.monotonic()
    out = rf({"x0": 0.5, "x1": -1.25, "x2": 3.0})
    after = time.monotonic()
    assert abs(out["objective"] - -ackley([0.5, -1.25, 3.0])) <= 1e-12
    m = out["metadata"]
    assert before <= m["timestamp_start"] < m["timestamp_end"] <= after


def test_the_running_job_hears_records_and_answers_stopped(guests):
    class Job:
        id = "7.3"
        parameters = {"lr": 0.5, "epochs": 50, "epoch_ms": 15}

        def __init__(self):
            self.records = []
            self.asked = 0

        def record(self, budget, objective):
            self.records.append((budget, objective))

        def stopped(self):
            self.asked += 1
            return len(self.records) >= 4

    job = Job()
    out = wasmeval.RunFunction(guests["multifidelity"])(job)
    assert [b for b, _ in job.records] == [1.0, 2.0, 3.0, 4.0]
    assert out["metadata"]["epochs"] == 4
    assert out["metadata"]["job"] == "7.3"


def test_a_guest_polling_stopped_asks_python_at_most_every_10_ms(guests):
    class Job:
        id = "0.1"
        parameters = {"lr": 0.1, "epochs": 9000, "epoch_ms": 0}  # under the 10,000 records
        asked = 0
        started = None

        def record(self, budget, objective):
            pass

        def stopped(self):
            Job.asked += 1
            Job.started = Job.started or time.monotonic()
            return time.monotonic() - Job.started > 0.3

    rf = wasmeval.RunFunction(guests["multifidelity"], job_timeout=10)
    t = time.monotonic()
    out = rf(Job())
    took = time.monotonic() - t
    assert out["metadata"]["epochs"] >= 1000, out  # the guest polled after every record...
    assert Job.asked <= took / 0.010 + 2, (Job.asked, took)  # ...Python was asked every 10 ms


def test_pickling_round_trips_and_reuses_the_loaded_module(guests):
    rf = wasmeval.RunFunction(guests["ackley"], job_timeout=5, memory="64MiB", kwargs={"a": 1})
    back = pickle.loads(pickle.dumps(rf))
    assert back.sha256 == rf.sha256 and back.policy == rf.policy
    assert back._loaded is rf._loaded  # the per-process cache, by sha256 and policy
    assert back({"x0": 1.0})["objective"] == rf({"x0": 1.0})["objective"]


def test_two_threads_run_two_half_second_jobs_at_once(guests):
    rf = wasmeval.RunFunction(guests["probe"], job_timeout=10)
    rf({"action": "sleep", "n": 1})
    threads = [threading.Thread(target=rf, args=({"action": "sleep", "n": 500},)) for _ in range(2)]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    took = time.monotonic() - t
    assert took < 0.9, f"two 0.5 s jobs took {took:.2f} s: the GIL was held"


def test_a_forked_child_loads_again_and_its_timeouts_fire(guests):
    rf = wasmeval.RunFunction(guests["probe"], job_timeout=0.3)
    assert rf({"action": "spin"})["objective"] == "F_timeout"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            out = rf({"action": "spin"})
            os.write(write, out["objective"].encode())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 30
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child's spinning job never timed out")
        time.sleep(0.02)
    assert os.read(read, 100) == b"F_timeout"


@pytest.mark.parametrize(
    "config, kind",
    [
        ({"action": "spin"}, "F_timeout"),
        ({"action": "alloc", "n": 4096}, "F_memory"),
        ({"action": "panic"}, "F_trap"),
        ({"action": "recurse", "n": 10**9}, "F_trap"),
    ],
)
def test_hostile_guests_are_failed_jobs_and_python_goes_on(guests, config, kind):
    rf = wasmeval.RunFunction(guests["probe"], job_timeout=1, memory="64MiB")
    out = rf(config)
    assert out["objective"].startswith(kind), out
    assert out["metadata"]["failure_message"]
    assert rf({"action": "echo", "x": 2.5})["objective"] == 2.5


def test_bad_modules_and_arguments_raise_clear_python_errors(tmp_path, guests):
    text = tmp_path / "notwasm.wasm"
    text.write_text("hello")
    with pytest.raises(wasmeval.LoadError, match="notwasm.wasm"):
        wasmeval.RunFunction(text)
    with pytest.raises(wasmeval.LoadError, match="missing.wasm"):
        wasmeval.RunFunction(tmp_path / "missing.wasm")
    with pytest.raises(TypeError):
        wasmeval.RunFunction(42)
    with pytest.raises(ValueError, match="memory"):
        wasmeval.RunFunction(guests["ackley"], memory="lots")
    with pytest.raises(ValueError, match="job_timeout"):
        wasmeval.RunFunction(guests["ackley"], job_timeout=-1)
    with pytest.raises(ValueError, match="does not exist"):
        wasmeval.RunFunction(guests["ackley"], dirs=[str(tmp_path / "nowhere")])
    with pytest.raises(TypeError, match="RunningJob"):
        wasmeval.RunFunction(guests["ackley"])(["x0"])


def test_the_standalone_evaluator_has_deephyper_semantics(guests):
    ev = wasmeval.Evaluator(guests["ackley"], num_workers=2)
    ids = ev.submit([{"x0": i / 10} for i in range(6)])
    assert ids == [f"{ev.search_id}.{i}" for i in range(6)]
    first = ev.gather("BATCH", size=2)
    rest = ev.gather("ALL")
    jobs = first + rest
    assert sorted(j["job_id"] for j in jobs) == ids
    for j in jobs:
        assert abs(j["objective"] - -ackley([j["config"]["x0"]])) <= 1e-12
        m = j["metadata"]
        assert m["timestamp_submit"] <= m["timestamp_start"] <= m["timestamp_end"] <= m["timestamp_gather"]
    assert ev.to_json() == {"type": "ProcessPoolEvaluator", "num_workers": 2}
    ev.close()


def test_the_standalone_evaluator_gathers_inside_a_running_event_loop(guests):
    import asyncio

    async def main():
        ev = wasmeval.Evaluator(guests["ackley"], num_workers=2)
        ev.submit([{"x0": 1.0}, {"x0": 2.0}])
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.ensure_future(tick())
        jobs = await ev.agather("ALL")
        ticker.cancel()
        ev.close()
        return jobs

    assert len(asyncio.run(main())) == 2


def test_ctrl_c_interrupts_a_blocking_gather(guests, tmp_path):
    import signal
    import subprocess
    import sys

    script = tmp_path / "gather.py"
    script.write_text(
        "import sys, wasmeval\n"
        f"ev = wasmeval.Evaluator({guests['probe']!r}, num_workers=2)\n"
        "ev.submit([{'action': 'spin'}] * 2)\n"
        "print('gathering', flush=True)\n"
        "try:\n"
        "    ev.gather('ALL')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    ev.close()\n"
        "    sys.exit(3)\n"
    )
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "gathering\n"
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    try:
        out, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail("Ctrl-C did not interrupt gather")
    assert out == "interrupted\n" and p.returncode == 3


def _python(code, env, cwd):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_the_worker_binary_comes_from_the_package(guests, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WASMEVAL_WORKER_BIN"}
    env.update(PATH="/usr/bin:/bin", WASMEVAL_CACHE_DIR=str(tmp_path / "cache"))
    code = (
        "import wasmeval\n"
        f"ev = wasmeval.Evaluator({guests['ackley']!r}, num_workers=2)\n"
        "ev.submit([{'x0': 0.0}]); print(ev.gather('ALL')[0]['status']); ev.close()\n"
        "import pathlib; assert pathlib.Path(wasmeval.__file__).parent.joinpath('bin', 'wasmeval').is_file()\n"
    )
    p = _python(code, env, tmp_path)
    assert p.returncode == 0 and p.stdout == "DONE\n", p.stderr


def test_a_worker_binary_of_another_build_is_refused(guests, tmp_path):
    version, protocol = wasmeval._native.build()
    stale = version.split("+")[0] + "+0000000000000000"
    answer = json.dumps({"Child": {"protocol": protocol, "build": stale}}).encode()
    fake = tmp_path / "wasmeval"
    fake.write_text(
        "#!/usr/bin/env python3\nimport sys, struct\n"
        "n = struct.unpack('<I', sys.stdin.buffer.read(4))[0]\nsys.stdin.buffer.read(n)\n"
        f"a = {answer!r}\nsys.stdout.buffer.write(struct.pack('<I', len(a)) + a)\n"
        "sys.stdout.buffer.flush()\n"
    )
    fake.chmod(0o755)
    env = dict(os.environ, WASMEVAL_WORKER_BIN=str(fake), WASMEVAL_CACHE_DIR=str(tmp_path / "c"))
    code = (
        "import wasmeval\n"
        "try:\n"
        f"    wasmeval.RunFunction({guests['ackley']!r})\n"
        "except wasmeval.WasmevalError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    p = _python(code, env, tmp_path)
    assert str(fake) in p.stdout and f"is wasmeval {stale}" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("fixture, why", [("no_start.wat", "run"), ("unknown_import.wat", "import")])
def test_modules_without_run_or_with_unknown_imports_raise_load_error(fixture, why):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", fixture)
    with pytest.raises(wasmeval.LoadError, match=fixture) as e:
        wasmeval.RunFunction(path)
    assert why in str(e.value)
