//! The sandbox from inside real guests: limits, failures and grants.

use std::time::{Duration, Instant};

use serde_json::json;
use wasmeval::{DirGrant, FailureKind, Gather, JobStatus, Objective};

use crate::common::{WITHIN, builder, fixture, guest, meta, run_one};

fn probe() -> std::path::PathBuf {
    guest("probe")
}

#[test]
fn endless_loops_and_sleeps_end_at_the_timeout_and_the_next_job_succeeds() {
    let cases = [
        (probe(), json!({"action": "spin"})),
        (probe(), json!({"action": "sleep", "n": 1_000_000_000u64})),
        (fixture("loop.wat"), json!({})),
        (fixture("sleep.wat"), json!({})),
        (
            guest_p1_command(),
            json!({"x": [1.0], "sleep_ms": 1_000_000_000u64}),
        ),
    ];
    for (module, config) in cases {
        let mut e = builder(&module)
            .job_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let t = Instant::now();
        e.submit([config.clone()]).unwrap();
        let job = e.gather(Gather::All).unwrap().local.remove(0);
        let took = t.elapsed();
        assert!(took < WITHIN, "{module:?} {config} took {took:?}");
        assert!(
            took >= Duration::from_millis(900),
            "{module:?} {config} ended early: {took:?}"
        );
        assert_eq!(
            job.objective,
            Some(Objective::Failure("F_timeout".into())),
            "{module:?} {config}"
        );
        assert_eq!(job.status, JobStatus::Done);
        assert_eq!(job.failure.as_ref().unwrap().kind, FailureKind::Timeout);
        assert_eq!(meta(&job, "failure"), "timeout");
    }
    // The same evaluator goes on: a good job after a timeout succeeds.
    let mut e = builder(probe())
        .job_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    e.submit([json!({"action": "spin"}), json!({"action": "env_count"})])
        .unwrap();
    let jobs = e.gather(Gather::All).unwrap().local;
    let good = jobs
        .iter()
        .find(|j| j.config["action"] == "env_count")
        .unwrap();
    assert_eq!(good.value(), Some(0.0), "{good:?}");
}

fn guest_p1_command() -> std::path::PathBuf {
    crate::common::guest_for("command", "wasm32-wasip1")
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_bombs_end_as_memory_limit_failures_and_host_memory_stays_bounded() {
    let mut e = builder(probe()).memory_limit(64 << 20).build().unwrap();
    let before = rss_kib();
    e.submit((0..6).map(|_| json!({"action": "alloc", "n": 1000})))
        .unwrap();
    e.submit([json!({"action": "alloc", "n": 8})]).unwrap();
    let jobs = e.gather(Gather::All).unwrap().local;
    for job in &jobs[..6] {
        assert_eq!(
            job.failure.as_ref().map(|f| f.kind),
            Some(FailureKind::MemoryLimit),
            "{job:?}"
        );
        assert_eq!(
            job.objective,
            Some(Objective::Failure("F_memory_limit".into()))
        );
    }
    assert_eq!(jobs[6].value(), Some(8.0), "a small allocation still works");
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 256, "host RSS grew by {grown_mib} MiB");

    let job = run_one(
        builder(fixture("grow.wat")).memory_limit(16 << 20),
        json!({}),
    );
    assert_eq!(job.failure.unwrap().kind, FailureKind::MemoryLimit);
}

#[test]
fn traps_panics_and_errors_are_failed_jobs_with_kind_and_message() {
    let mut e = builder(probe()).build().unwrap();
    e.submit([
        json!({"action": "panic"}),
        json!({"action": "err", "text": "diverged at step 3"}),
        json!({"action": "nan"}),
        json!({"action": "nope"}),
        json!({"action": "env_count"}),
    ])
    .unwrap();
    let jobs = e.gather(Gather::All).unwrap().local;
    let by = |a: &str| jobs.iter().find(|j| j.config["action"] == a).unwrap();
    let panic = by("panic").failure.clone().unwrap();
    assert_eq!(panic.kind, FailureKind::Trap);
    assert_eq!(panic.trap_code.as_deref(), Some("UnreachableCodeReached"));
    assert!(
        by("panic").log.contains("the probe panics as asked"),
        "{:?}",
        by("panic").log
    );
    let err = by("err").failure.clone().unwrap();
    assert_eq!(
        (err.kind, err.message.as_str()),
        (FailureKind::GuestError, "diverged at step 3")
    );
    assert_eq!(
        by("err").objective,
        Some(Objective::Failure("F_guest_error".into()))
    );
    assert_eq!(
        by("nan").objective,
        Some(Objective::Failure("F".into())),
        "NaN becomes F"
    );
    assert!(by("nan").failure.is_none());
    assert_eq!(
        by("nope").failure.as_ref().unwrap().message,
        "unknown action nope"
    );
    assert_eq!(by("env_count").value(), Some(0.0));

    // Unbounded recursion hits the wasm stack cap (or the guest's shadow stack): a trap.
    let deep = run_one(
        builder(probe()),
        json!({"action": "recurse", "n": 100_000_000u64}),
    );
    assert_eq!(
        deep.failure.as_ref().map(|f| f.kind),
        Some(FailureKind::Trap),
        "{deep:?}"
    );
    let shallow = run_one(builder(probe()), json!({"action": "recurse", "n": 100}));
    assert!(shallow.failure.is_none(), "{shallow:?}");

    let trap = run_one(builder(fixture("trap.wat")), json!({}))
        .failure
        .unwrap();
    assert_eq!(trap.kind, FailureKind::Trap);
    assert!(trap.message.contains("unreachable"), "{}", trap.message);
}

#[test]
fn files_env_and_sockets_are_denied_without_a_grant() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "s3cret").unwrap();
    let secret = dir.path().join("secret.txt").display().to_string();
    let mut e = builder(probe()).build().unwrap();
    e.submit([
        json!({"action": "read_file", "path": secret}),
        json!({"action": "read_file", "path": "/etc/passwd"}),
        json!({"action": "env", "path": "HOME"}),
        json!({"action": "env_count"}),
        json!({"action": "args_count"}),
        json!({"action": "connect", "path": "127.0.0.1:22"}),
        json!({"action": "resolve", "path": "localhost"}),
    ])
    .unwrap();
    for job in e.gather(Gather::All).unwrap().local {
        let action = job.config["action"].as_str().unwrap().to_string();
        match action.as_str() {
            "env_count" | "args_count" => assert_eq!(job.value(), Some(0.0), "{action}"),
            _ => {
                assert_eq!(
                    job.value(),
                    Some(0.0),
                    "{action} must fail inside the guest: {job:?}"
                );
                assert_eq!(meta(&job, "ok"), false, "{action}");
            }
        }
    }
}

#[test]
fn grants_give_exactly_what_was_granted() {
    let ro = tempfile::tempdir().unwrap();
    let rw = tempfile::tempdir().unwrap();
    std::fs::write(ro.path().join("data.txt"), "granted data").unwrap();
    let mut e = builder(probe())
        .dir(DirGrant::read_only(ro.path(), "/data"))
        .dir(DirGrant::read_write(rw.path(), "/out"))
        .env("LEARNING_RATE", "0.1")
        .build()
        .unwrap();
    e.submit([
        json!({"action": "read_file", "path": "/data/data.txt"}),
        json!({"action": "write_file", "path": "/data/new.txt", "text": "x"}),
        json!({"action": "read_file", "path": "/data/../../etc/passwd"}),
        json!({"action": "write_file", "path": "/out/result.txt", "text": "written"}),
        json!({"action": "env", "path": "LEARNING_RATE"}),
        json!({"action": "env", "path": "HOME"}),
    ])
    .unwrap();
    let jobs = e.gather(Gather::All).unwrap().local;
    let find = |a: &str, p: &str| {
        jobs.iter()
            .find(|j| j.config["action"] == a && j.config["path"] == p)
            .unwrap()
    };
    assert_eq!(
        meta(find("read_file", "/data/data.txt"), "value"),
        "granted data"
    );
    assert_eq!(
        meta(find("write_file", "/data/new.txt"), "ok"),
        false,
        "read-only grant"
    );
    assert!(!ro.path().join("new.txt").exists());
    assert_eq!(
        meta(find("read_file", "/data/../../etc/passwd"), "ok"),
        false,
        "no escape"
    );
    assert_eq!(meta(find("write_file", "/out/result.txt"), "ok"), true);
    assert_eq!(
        std::fs::read_to_string(rw.path().join("result.txt")).unwrap(),
        "written"
    );
    assert_eq!(meta(find("env", "LEARNING_RATE"), "value"), "0.1");
    assert_eq!(meta(find("env", "HOME"), "ok"), false);
}

#[test]
fn output_caps_truncate_or_fail() {
    let mut e = builder(probe()).build().unwrap();
    e.submit([
        json!({"action": "log", "n": 3000, "text": "x".repeat(1000)}),
        json!({"action": "stdout", "n": 3000, "text": "y".repeat(1000)}),
        json!({"action": "records", "n": 10_000}),
        json!({"action": "records", "n": 10_001}),
        json!({"action": "log", "n": 2, "text": "hello"}),
    ])
    .unwrap();
    let jobs = e.gather(Gather::All).unwrap().local;
    let find = |a: &str, n: u64| {
        jobs.iter()
            .find(|j| j.config["action"] == a && j.config["n"] == n)
            .unwrap()
    };
    let flood = find("log", 3000);
    assert_eq!(flood.value(), Some(3000.0));
    assert_eq!(meta(flood, "truncated"), true);
    assert!(flood.log.len() <= 1 << 20);
    assert_eq!(meta(find("stdout", 3000), "truncated"), true);
    assert_eq!(find("records", 10_000).intermediate.len(), 10_000);
    let over = find("records", 10_001);
    assert_eq!(
        over.failure.as_ref().unwrap().kind,
        FailureKind::OutputTooLarge
    );
    let small = find("log", 2);
    assert_eq!(small.log, "hello\nhello\n");
    assert_eq!(meta(small, "truncated"), &serde_json::Value::Null);

    let job = run_one(
        builder(probe()).policy(wasmeval::Policy {
            result_cap: 4,
            ..Default::default()
        }),
        json!({"action": "records", "n": 123456}),
    );
    assert_eq!(job.failure.unwrap().kind, FailureKind::OutputTooLarge);
}

#[test]
fn fuel_budgets_stop_jobs_and_report_fuel_used() {
    let job = run_one(builder(probe()).fuel(1_000_000), json!({"action": "spin"}));
    assert_eq!(job.failure.unwrap().kind, FailureKind::FuelExhausted);
    let job = run_one(
        builder(probe()).fuel(100_000_000),
        json!({"action": "env_count"}),
    );
    let used = meta(&job, "fuel_used").as_u64().unwrap();
    assert!(used > 0 && used < 100_000_000, "{used}");
}

#[test]
fn the_job_interface_records_logs_and_stops_early() {
    // 20 epochs of 100 ms under a 1 s timeout: the guest sees `stopped` and returns early.
    let job = run_one(
        builder(guest("multifidelity")).job_timeout(Duration::from_secs(1)),
        json!({"lr": 0.5, "epochs": 20, "epoch_ms": 100}),
    );
    assert!(job.failure.is_none(), "{job:?}");
    let epochs = meta(&job, "epochs").as_u64().unwrap();
    assert!((3..20).contains(&epochs), "stopped after {epochs} epochs");
    assert_eq!(job.intermediate.len() as u64, epochs);
    assert_eq!(job.intermediate[0], (1.0, 1.0 - (-0.5f64).exp()));
    assert!(job.log.contains("stopped early"), "{}", job.log);
    assert_eq!(meta(&job, "job"), job.id.as_str());

    let job = run_one(
        builder(probe())
            .run_function_kwargs(json!({"dataset": "mnist"}).as_object().unwrap().clone()),
        json!({"action": "kwargs"}),
    );
    assert_eq!(meta(&job, "kwargs"), &json!({"dataset": "mnist"}));
    assert_eq!(meta(&job, "id"), job.id.as_str());
}

#[test]
fn a_forked_child_runs_its_own_ticker_so_its_timeouts_fire() {
    use std::sync::Arc;
    use wasmeval::sandbox::{JobControl, JobInput, forked, prepare_fork};
    use wasmeval::{CacheDir, LoadedModule, Policy};

    let policy = Policy {
        job_timeout: Some(Duration::from_millis(300)),
        ..Policy::default()
    };
    let spin = || {
        let module = LoadedModule::load(&probe().into(), &policy, &CacheDir::Disabled).unwrap();
        module.run(
            &policy,
            JobInput {
                id: "0.0".into(),
                config: r#"{"action": "spin"}"#.into(),
                kwargs: Arc::from("{}"),
                control: Arc::new(JobControl::new(Arc::default())),
                observer: None,
            },
        )
    };
    // The parent's engines and ticker exist before the fork.
    assert_eq!(spin().result.unwrap_err().kind, FailureKind::Timeout);
    prepare_fork();
    // SAFETY: the child only loads and runs a module, then leaves with _exit.
    let pid = unsafe { libc::fork() };
    forked();
    if pid == 0 {
        let timed_out = std::panic::catch_unwind(spin)
            .is_ok_and(|out| out.result.is_err_and(|f| f.kind == FailureKind::Timeout));
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if timed_out { 0 } else { 1 }) };
    }
    let t = Instant::now();
    let mut status = 0;
    // SAFETY: waits for the child made above.
    while unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == 0 {
        if t.elapsed() > Duration::from_secs(30) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the child's spinning job never timed out: no ticker after fork");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );
}
