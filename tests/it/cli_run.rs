//! `wasmeval run` with the real binary: input formats, streaming, progress, limits,
//! interruption, and `wasmeval inspect`.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmeval::Storage;

use crate::common::{fixture, guest, root};

fn wasmeval() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wasmeval"));
    c.current_dir(root()).env("WASMEVAL_STORAGE", "memory");
    c
}

fn output(args: &[&str]) -> Output {
    wasmeval().args(args).output().expect("run wasmeval")
}

fn with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = wasmeval()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn objectives(path: &Path) -> Vec<Value> {
    jsonl(path).iter().map(|j| j["objective"].clone()).collect()
}

#[test]
fn jsonl_json_array_and_csv_inputs_give_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let sum = guest("sum");
    let inputs = [
        (
            "c.jsonl",
            "{\"x0\": 1, \"x1\": 2.5, \"x2\": -1}\n\n{\"x0\": 10}\n{\"x0\": 0.25, \"x1\": 0.5}\n",
        ),
        (
            "c.json",
            "[\n {\"x0\": 1, \"x1\": 2.5, \"x2\": -1},\n {\"x0\": 10},\n {\"x0\": 0.25, \"x1\": 0.5}\n]\n",
        ),
        ("c.csv", "x0,x1,x2\n1,2.5,-1\n10,,\n0.25,0.5,\n"),
    ];
    for (name, text) in inputs {
        let input = dir.path().join(name);
        std::fs::write(&input, text).unwrap();
        let out_path = dir.path().join(format!("{name}.out.jsonl"));
        let out = output(&[
            "run",
            sum.to_str().unwrap(),
            "-i",
            input.to_str().unwrap(),
            "-o",
            out_path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert_eq!(
            objectives(&out_path),
            [2.5, 10.0, 0.75].map(Value::from),
            "{name}"
        );
    }
    // A results.csv is an input too: its `p:` columns are the configurations.
    let csv = dir.path().join("results.csv");
    let again = dir.path().join("again.jsonl");
    let input = dir.path().join("c.jsonl");
    for (i, o) in [(&input, &csv), (&csv, &again)] {
        let out = output(&[
            "run",
            sum.to_str().unwrap(),
            "-i",
            i.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert_eq!(objectives(&again), [2.5, 10.0, 0.75].map(Value::from));
}

#[test]
fn max_jobs_progress_and_the_streamed_table() {
    let ackley = guest("ackley");
    let out = output(&[
        "run",
        ackley.to_str().unwrap(),
        "-i",
        "examples/configs/ackley.jsonl",
        "--max-jobs",
        "5",
        "--progress",
        "always",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().count(), 5, "{table}");
    assert!(table.lines().all(|l| l.contains("\tDONE\t")), "{table}");
    let err = stderr(&out);
    assert!(
        err.contains("progress: search 0, 1/5 done, 0 failed"),
        "{err}"
    );
    assert!(err.contains("5 jobs: 5 succeeded, 0 failed"), "{err}");
    for progress in ["never", "auto"] {
        let out = output(&[
            "run",
            ackley.to_str().unwrap(),
            "-i",
            "examples/configs/ackley.jsonl",
            "--progress",
            progress,
        ]);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            !stderr(&out).contains("progress:"),
            "{progress}: off a terminal, no progress"
        );
    }
}

#[test]
fn a_terminal_gets_a_progress_bar() {
    // `script` runs the command on a pseudo-terminal and copies what it draws.
    let ackley = guest("ackley");
    let command = format!(
        "{} run {} -i examples/configs/ackley.jsonl -o /dev/null --format csv --storage memory --method serial",
        env!("CARGO_BIN_EXE_wasmeval"),
        ackley.display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(root())
        .output()
        .expect("script (bsdutils) runs a command on a pseudo-terminal");
    assert_eq!(out.status.code(), Some(0));
    let drawn = String::from_utf8_lossy(&out.stdout);
    assert!(drawn.contains("/41 done, 0 failed, "), "{drawn}");
    assert!(drawn.contains("jobs/s, ETA "), "{drawn}");
    assert!(drawn.contains(", best -"), "{drawn}");
    assert!(drawn.contains("41 jobs: 40 succeeded, 1 failed"), "{drawn}");
}

#[test]
fn a_file_is_validated_before_any_job_starts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("c.jsonl");
    let mut text = std::fs::read_to_string(root().join("examples/configs/ackley.jsonl")).unwrap();
    text.push_str("{\"x\": [1, 2]}\n\"not an object\"\n");
    std::fs::write(&input, text).unwrap();
    let db = dir.path().join("r.sqlite");
    let out = output(&[
        "run",
        guest("ackley").to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "--storage",
        db.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "error: {}:43: expected a JSON object, found \"not an object\"",
            input.display()
        )
    );
    assert!(!db.exists(), "no job ran, nothing was stored");
}

#[test]
fn a_bad_line_on_stdin_stops_the_run_and_resume_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let sum = guest("sum");
    let args = [
        "run",
        sum.to_str().unwrap(),
        "--storage",
        db.to_str().unwrap(),
    ];
    let good = "{\"x0\": 1}\n{\"x0\": 2}\n{\"x0\": 3}\n";
    let out = with_stdin(&args, format!("{good}{{\"x0\": oops}}\n").as_bytes());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("error: -:4: invalid JSON"), "{err}");
    // The hint is the whole command, ready to paste: run exactly what it says.
    let hint = err
        .split("to resume, run: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no resume command: {err}"));
    let hinted = shlex::split(hint).unwrap();
    assert_eq!(hinted[0], env!("CARGO_BIN_EXE_wasmeval"));
    assert!(
        hint.ends_with(&format!(
            "--storage {} --search-id 0 --resume",
            db.display()
        )),
        "{hint}"
    );
    let storage = wasmeval::SqliteStorage::open(&db).unwrap();
    let done = storage
        .load_search("0")
        .unwrap()
        .iter()
        .filter(|j| j.status == wasmeval::JobStatus::Done)
        .count();
    drop(storage);
    // The three lines before the bad one ran (or were cancelled, if still in flight).
    let resumed: Vec<&str> = hinted[1..].iter().map(String::as_str).collect();
    let out = with_stdin(&resumed, format!("{good}{{\"x0\": 4}}\n").as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    if done > 0 {
        assert!(
            err.contains(&format!("{done} configurations skipped")),
            "{err}"
        );
    }
    let storage = wasmeval::SqliteStorage::open(&db).unwrap();
    let mut values: Vec<f64> = storage
        .load_search("0")
        .unwrap()
        .iter()
        .filter_map(|j| j.value())
        .collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [1.0, 2.0, 3.0, 4.0], "each configuration once");
}

fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigint(child: &Child) {
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
}

/// A child killed if the test fails before waiting for it.
struct Reaped(Option<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn compiling_shows_feedback_and_compile_timeout_limits_its_cpu_time() {
    let dir = tempfile::tempdir().unwrap();
    let heavy = dir.path().join("heavy.wasm");
    let wasm = wat::parse_str(crate::common::heavy_module(HEAVY)).unwrap();
    std::fs::write(&heavy, wasm).unwrap();
    let compile = |cache: &str, extra: &[&str]| {
        wasmeval()
            .env("WASMEVAL_CACHE_DIR", dir.path().join(cache))
            .args(["compile", heavy.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    // Too little CPU time: refused, saying which limit and how to raise it.
    let out = compile("small", &["--compile-timeout", "1s"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("compiling used more than 1 s of CPU")
            && stderr(&out).contains("--compile-timeout"),
        "{}",
        stderr(&out)
    );
    // On a terminal, a spinner shows while it compiles (`script` draws it).
    let command = format!(
        "WASMEVAL_CACHE_DIR={} {} compile {}",
        dir.path().join("terminal").display(),
        env!("CARGO_BIN_EXE_wasmeval"),
        heavy.display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let drawn = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{drawn}");
    assert!(
        drawn.contains("loading heavy.wasm: its first load compiles it"),
        "{drawn}"
    );
    // Off a terminal, `run --progress always` says it in lines; from the cache, nothing.
    let run = |progress: &str| {
        let mut c = wasmeval();
        c.env("WASMEVAL_CACHE_DIR", dir.path().join("run"));
        c.args(["run", heavy.to_str().unwrap(), "--method", "serial"]);
        c.args(["--progress", progress]);
        c.stdin(Stdio::null()).output().unwrap()
    };
    let err = stderr(&run("always"));
    assert!(
        err.contains("loading heavy.wasm: its first") && err.contains("loading heavy.wasm took"),
        "{err}"
    );
    let err = stderr(&run("always"));
    assert!(!err.contains("loading heavy.wasm"), "{err}");
}

#[test]
fn a_resume_may_change_the_compile_limits_but_not_the_jobs_policy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let run = |extra: &[&str]| {
        let mut c = wasmeval();
        c.args([
            "run",
            guest("sum").to_str().unwrap(),
            "-i",
            "examples/configs/ackley.jsonl",
        ]);
        c.args([
            "--storage",
            db.to_str().unwrap(),
            "--quiet",
            "-o",
            "-",
            "--format",
            "csv",
        ]);
        c.args(extra).output().unwrap()
    };
    assert_eq!(run(&[]).status.code(), Some(0));
    let again = run(&["--resume", "--compile-timeout", "2m"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let other = run(&["--resume", "--timeout", "3s"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        stderr(&other).contains("another sandbox policy"),
        "{}",
        stderr(&other)
    );
}

/// Functions of [`crate::common::heavy_module`] that take well over a second of CPU to compile.
const HEAVY: usize = 2_000;

/// A pseudo-terminal: its controlling side, and the terminal a child reads.
fn pty() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two new descriptors, owned here from then on.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned by nothing else.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}

/// Waits (at most 60 s) for `child` to exit, then returns its output.
fn exited(mut child: Reaped, what: &str) -> Output {
    wait_for(
        || child.0.as_mut().unwrap().try_wait().unwrap().is_some(),
        what,
    );
    child.0.take().unwrap().wait_with_output().unwrap()
}

#[test]
fn standard_input_on_a_terminal_is_announced_and_the_first_ctrl_d_ends_it() {
    let ackley = guest("ackley");
    for (typed, jobs) in [(&b"{\"x\": [0.5, 0.5]}\n\x04"[..], 1), (b"\x04", 0)] {
        let (mut terminal, stdin) = pty();
        let child = wasmeval()
            .args(["run", ackley.to_str().unwrap(), "--method", "serial"])
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        terminal.write_all(typed).unwrap();
        let out = exited(Reaped(Some(child)), "the end of input at the first Ctrl-D");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(
            err.contains("reading configurations from standard input")
                && err.contains("end with Ctrl-D"),
            "{err}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), jobs);
    }
    // Off a terminal, nothing is announced.
    let out = with_stdin(&["run", ackley.to_str().unwrap()], b"");
    assert!(!stderr(&out).contains("standard input"), "{}", stderr(&out));
}

#[test]
fn jobs_from_a_slow_standard_input_are_gathered_as_they_finish() {
    let mut child = wasmeval()
        .args(["run", guest("ackley").to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Reaped(Some(child));
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    for i in 0..2 {
        writeln!(stdin, "{{\"x\": [{i}.5, 0.5]}}").unwrap();
        stdin.flush().unwrap();
        // The input stays open: the job's table line comes while the writer still writes.
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a job gathered before the end of input");
        assert!(line.contains("\tDONE\t"), "{line}");
    }
    drop(stdin);
    let out = exited(child, "the end of the run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 jobs: 2 succeeded"),
        "{}",
        stderr(&out)
    );
}

/// `wasmeval run loop.wat` over 20 configurations with a SQLite storage, once jobs are in it.
fn endless_run(db: &Path, input: &Path) -> Reaped {
    std::fs::write(input, "{\"i\": 0}\n".repeat(20)).unwrap();
    let child = wasmeval()
        .args([
            "run",
            fixture("loop.wat").to_str().unwrap(),
            "-i",
            input.to_str().unwrap(),
        ])
        .args(["--storage", db.to_str().unwrap(), "--workers", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = Reaped(Some(child));
    wait_for(
        || {
            wasmeval::SqliteStorage::open(db)
                .is_ok_and(|s| s.load_search("0").is_ok_and(|jobs| jobs.len() >= 2))
        },
        "jobs stored",
    );
    // The first two are running (they never end) and the others queued.
    std::thread::sleep(Duration::from_millis(300));
    child
}

#[test]
fn ctrl_c_cancels_jobs_in_flight_stores_them_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let mut child = endless_run(&db, &dir.path().join("c.jsonl"));
    sigint(child.0.as_ref().unwrap());
    let out = child.0.take().unwrap().wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("interrupted: jobs in flight were cancelled"),
        "{err}"
    );
    assert!(err.contains("--search-id 0 --resume"), "{err}");
    // The two running jobs are counted apart from the 18 that never started, and no
    // cancelled job counts in the rate.
    assert!(
        err.contains("20 jobs: 0 succeeded, 0 failed, 20 cancelled (2 running, 18 never started)"),
        "the summary: {err}"
    );
    assert!(err.contains(", 0 jobs/s"), "{err}");
    let storage = wasmeval::SqliteStorage::open(&db).unwrap();
    let jobs = storage.load_search("0").unwrap();
    assert_eq!(jobs.len(), 20);
    assert!(
        jobs.iter()
            .all(|j| j.status == wasmeval::JobStatus::Cancelled),
        "every job submitted got its CANCELLED outcome: {jobs:?}"
    );
    // As in DeepHyper, a job that never started has no start or end time.
    let started = |j: &&wasmeval::Job| j.metadata.contains_key("timestamp_start");
    assert_eq!(jobs.iter().filter(started).count(), 2, "{jobs:?}");
    assert!(
        jobs.iter()
            .all(|j| started(&j) == j.metadata.contains_key("timestamp_end"))
    );
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let mut child = endless_run(&db, &dir.path().join("c.jsonl"));
    // Another connection holds the write lock: the clean stop waits to store the outcomes.
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let c = child.0.as_mut().unwrap();
    sigint(c);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        c.try_wait().unwrap().is_none(),
        "still storing after the first Ctrl-C"
    );
    sigint(c);
    // Loose bound: the lock would hold a clean stop for a minute (SQLite's busy timeout).
    let asked = Instant::now();
    while c.try_wait().unwrap().is_none() {
        assert!(
            asked.elapsed() < Duration::from_secs(20),
            "the second Ctrl-C did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.0.take().unwrap().wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    lock.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn search_timeout_cancels_what_runs_and_exits_0() {
    let out = with_stdin(
        &[
            "run",
            fixture("loop.wat").to_str().unwrap(),
            "--search-timeout",
            "300ms",
            "--workers",
            "2",
        ],
        "{\"i\": 0}\n".repeat(5).as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().count() >= 2, "{table}");
    assert!(
        table
            .lines()
            .all(|l| l.contains("\tCANCELLED\t\"F_CANCELLED\"")),
        "{table}"
    );
    let err = stderr(&out);
    assert!(err.contains("search timeout"), "{err}");
    // Cancelled jobs are counted apart from failures in the summary.
    let cancelled = table.lines().count();
    assert!(
        err.contains(&format!(
            "{cancelled} jobs: 0 succeeded, 0 failed, {cancelled} cancelled"
        )),
        "{err}"
    );
}

#[test]
fn inspect_reports_kind_imports_wasi_and_whether_it_runs() {
    let ackley = guest("ackley");
    let out = output(&["inspect", ackley.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("binary    component"), "{text}");
    assert!(
        text.contains("kind      objective component (exports `run`)"),
        "{text}"
    );
    assert!(text.contains("compiles  yes\nrunnable  yes"), "{text}");
    assert!(text.contains("per job   "), "{text}");
    assert!(text.contains("wasi:cli/environment@0.2"), "{text}");
    assert!(text.contains("exports\n  run (func)"), "{text}");

    let out = output(&[
        "inspect",
        fixture("unknown_import.wat").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["binary"], "core module");
    assert_eq!(report["text"], true);
    assert_eq!(report["compiles"], true);
    assert_eq!(report["runnable"], false);
    assert_eq!(report["imports"][0]["name"], "env::launch_missiles");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("does not provide"),
        "{report}"
    );

    let command = crate::common::guest_for("command", "wasm32-wasip1");
    let out = output(&["inspect", command.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["wasi"],
        serde_json::json!(["wasi_snapshot_preview1"])
    );
    assert!(
        report["kind"]
            .as_str()
            .unwrap()
            .contains("preview1 command"),
        "{report}"
    );

    let out = output(&["inspect", fixture("not_wasm.txt").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not WebAssembly"), "{}", stderr(&out));
}

#[test]
fn method_thread_fuel_and_retries_reach_the_jobs() {
    let probe = guest("probe");
    let out = with_stdin(
        &[
            "run",
            probe.to_str().unwrap(),
            "--method",
            "thread",
            "--workers",
            "2",
            "--fuel",
            "5000000",
            "--retries",
            "2",
        ],
        b"{\"action\": \"spin\"}\n{\"action\": \"env_count\"}\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("\"F_fuel_exhausted\"\t{\"action\":\"spin\"}"),
        "{table}"
    );
    assert!(
        table.contains("\tDONE\t0.0\t{\"action\":\"env_count\"}"),
        "{table}"
    );
    assert!(
        stderr(&out).contains("(fuel_exhausted 1)"),
        "{}",
        stderr(&out)
    );
}

/// Floats of every magnitude: random bit patterns (finite ones), subnormals, the extremes, and
/// the values a search samples (uniform in [0, 1), printed shortest as Python does).
fn awkward_floats() -> Vec<f64> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut xs = vec![
        0.1 + 0.2,
        5e-324,
        2.2250738585072014e-308,
        1.7976931348623157e308,
        -0.0,
        0.30000000000000004,
        123456789.12345679,
    ];
    while xs.len() < 300 {
        let bits = next();
        let random = f64::from_bits(bits);
        if random.is_finite() {
            xs.push(random);
        }
        xs.push((bits >> 11) as f64 / (1u64 << 53) as f64);
    }
    xs
}

#[test]
fn floats_round_trip_exactly_from_every_input_format_through_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let xs = awkward_floats();
    let text = |x: f64| serde_json::to_string(&x).unwrap();
    let row = |x: f64| format!("{{\"action\":\"echo\",\"x\":{}}}", text(x));
    let inputs = [
        (
            "in.jsonl",
            xs.iter().map(|&x| row(x) + "\n").collect::<String>(),
        ),
        (
            "in.json",
            format!(
                "[{}]",
                xs.iter().map(|&x| row(x)).collect::<Vec<_>>().join(",")
            ),
        ),
        (
            "in.csv",
            "action,x\n".to_string()
                + &xs
                    .iter()
                    .map(|&x| format!("echo,{}\n", text(x)))
                    .collect::<String>(),
        ),
    ];
    let probe = guest("probe");
    for (name, content) in &inputs {
        let input = dir.path().join(name);
        std::fs::write(&input, content).unwrap();
        for method in ["serial", "thread", "process"] {
            let out = dir.path().join("results.csv");
            let o = output(&[
                "run",
                probe.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
                "--method",
                method,
                "--progress",
                "never",
            ]);
            assert!(o.status.success(), "{name} {method}: {}", stderr(&o));
            let mut reader = csv::Reader::from_path(&out).unwrap();
            let header = reader.headers().unwrap().clone();
            let column = |c: &str| header.iter().position(|h| h == c).unwrap();
            let (p, objective, m, id) = (
                column("p:x"),
                column("objective"),
                column("m:x"),
                column("job_id"),
            );
            let mut seen = 0;
            for record in reader.records() {
                let record = record.unwrap();
                let n: usize = record[id].parse().unwrap();
                for c in [p, objective, m] {
                    let got: f64 = record[c].parse().unwrap();
                    assert_eq!(
                        got.to_bits(),
                        xs[n].to_bits(),
                        "{name} {method}, job {n}, column {}: {} became {}",
                        &header[c],
                        text(xs[n]),
                        &record[c]
                    );
                }
                seen += 1;
            }
            assert_eq!(seen, xs.len(), "{name} {method}");
        }
    }
}

#[test]
fn output_dash_is_stdout_and_the_search_id_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"x0\": 1}\n{\"x0\": 2}\n").unwrap();
    let sum = guest("sum");
    let run = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wasmeval"));
        c.current_dir(dir.path())
            .env("WASMEVAL_STORAGE", "memory")
            .args(["run", sum.to_str().unwrap(), "--input"])
            .arg(&input)
            .args(extra);
        c.output().unwrap()
    };
    let o = run(&["--output", "-"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--format"), "{}", stderr(&o));
    let o = run(&["--output", "-", "--format", "jsonl", "--progress", "always"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["objective"], 2.0);
    assert!(!dir.path().join("-").exists());
    let err = stderr(&o);
    assert!(err.starts_with("search 0 in storage memory\n"), "{err}");
    assert!(err.contains("\nprogress: search 0, 1/2 done, "), "{err}");
    // --quiet with nothing kept anywhere is refused.
    let o = run(&["--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--quiet"), "{}", stderr(&o));
}

#[test]
fn runs_that_join_a_search_share_its_clock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"action\": \"sleep\", \"n\": 300}\n").unwrap();
    let probe = guest("probe");
    let out = dir.path().join("out.jsonl");
    for search_id in [None, Some("0")] {
        let mut args = vec![
            "run",
            probe.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--storage",
            db.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--progress",
            "never",
        ];
        if let Some(id) = search_id {
            args.extend(["--search-id", id]);
        }
        let o = output(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let jobs = jsonl(&out);
    assert_eq!(jobs.len(), 2);
    let time = |j: &Value, k: &str| j["metadata"][k].as_f64().unwrap();
    // The second batch starts after the first one ended, on the same axis (it was reset to
    // zero in every run).
    assert!(
        time(&jobs[1], "timestamp_submit") >= time(&jobs[0], "timestamp_end"),
        "{jobs:?}"
    );
    assert!(time(&jobs[1], "timestamp_end") >= 0.3 + time(&jobs[0], "timestamp_start"));
}

#[test]
fn tiny_objectives_print_in_their_shortest_form_in_results_csv_and_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("c.jsonl");
    std::fs::write(
        &input,
        "{\"x0\": 4.440892098500626e-16, \"x1\": 0, \"x2\": 0}\n",
    )
    .unwrap();
    let csv = dir.path().join("r.csv");
    let out = output(&[
        "run",
        guest("sum").to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "-o",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&csv).unwrap();
    let row = text.lines().nth(1).unwrap();
    let objective = row.split(',').nth(3).unwrap();
    assert_eq!(objective, "4.440892098500626e-16", "{text}");
    assert!(
        stderr(&out).contains("best objective 4.440892098500626e-16 (job"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_output_of_unknown_extension_needs_a_format_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("r.txt");
    let sum = guest("sum");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            sum.to_str().unwrap(),
            "-i",
            "examples/configs/ackley.jsonl",
            "-o",
            txt.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        output(&args)
    };
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("r.txt: name the file .csv or .jsonl, or give --format"),
        "{}",
        stderr(&refused)
    );
    assert!(!txt.exists());
    let given = run(&["--format", "jsonl"]);
    assert!(given.status.success(), "{}", stderr(&given));
    assert!(std::fs::read_to_string(&txt).unwrap().starts_with('{'));
}

/// The code lines of a Rust snippet: comments and blank lines dropped, whitespace collapsed.
fn code_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            l.split("//")
                .next()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// Checks that the first Rust snippet of the README after `heading` is the code of `file`.
fn same_as_readme(heading: &str, file: &str) {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme.split(heading).nth(1).unwrap();
    let snippet = section.split("```rust\n").nth(1).unwrap();
    let snippet = snippet.split("```").next().unwrap();
    let source = std::fs::read_to_string(root().join(file)).unwrap();
    assert_eq!(code_lines(snippet), code_lines(&source), "{file}");
}

#[test]
fn the_readme_run_function_is_the_guest_the_tests_build_and_a_missing_key_fails_the_job() {
    same_as_readme(
        "In Rust, with the `guest-sdk` crate",
        "examples/guests/rust/readme/src/lib.rs",
    );
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("c.jsonl");
    std::fs::write(&input, "{\"x\": 2}\n{\"y\": 1}\n{\"x\": \"a\"}\n").unwrap();
    let out_path = dir.path().join("r.jsonl");
    let out = output(&[
        "run",
        guest("readme").to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let jobs = jsonl(&out_path);
    assert_eq!(jobs[0]["objective"], -4.0);
    // Not a trap ("unreachable executed"): the accessor's error is the job's message.
    for (job, message) in [
        (&jobs[1], "the configuration has no \"x\""),
        (&jobs[2], "\"x\" must be a number, found \"a\""),
    ] {
        assert_eq!(job["objective"], "F_guest_error", "{job}");
        assert_eq!(job["metadata"]["failure_message"], message, "{job}");
    }
}

#[test]
fn the_readme_library_example_is_examples_library_rs() {
    same_as_readme("## The library\n", "examples/library.rs");
}

#[test]
fn a_flag_given_again_overrides_the_first_as_evaluate_sh_documents() {
    // `examples/evaluate.sh --output results.jsonl` adds a second --output after its own.
    let dir = tempfile::tempdir().unwrap();
    let (first, last) = (dir.path().join("a.csv"), dir.path().join("b.jsonl"));
    let out = output(&[
        "run",
        guest("sum").to_str().unwrap(),
        "-i",
        "examples/configs/ackley.jsonl",
        "--output",
        first.to_str().unwrap(),
        "--output",
        last.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!first.exists() && last.exists());
}
