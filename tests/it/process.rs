//! The process method: crash isolation, retries, the watchdog, and no orphans.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use wasmeval::{FailureKind, Gather, JobStatus, Method};

use crate::common::{WITHIN, builder, guest};

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; its state is Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn sigkill(pid: u32) {
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < WITHIN, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_worker_costs_at_most_its_running_job_and_is_replaced() {
    let mut e = builder(guest("sum"))
        .method(Method::Process)
        .num_workers(2)
        .build()
        .unwrap();
    let configs: Vec<_> = (0..10_000).map(|i| json!({"x0": i, "x1": 1})).collect();
    e.submit(configs).unwrap();
    let mut jobs = e.gather(Gather::Batch(1000)).unwrap().local;
    let pids = e.worker_pids();
    assert_eq!(pids.len(), 2);
    sigkill(pids[0]);
    jobs.extend(e.gather(Gather::All).unwrap().local);
    assert_eq!(jobs.len(), 10_000);
    let ids: HashSet<_> = jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids.len(), 10_000, "no duplicates");
    let failed: Vec<_> = jobs.iter().filter(|j| j.failure.is_some()).collect();
    assert!(failed.len() <= 1, "{failed:?}");
    for job in &failed {
        assert_eq!(
            job.failure.as_ref().unwrap().kind,
            FailureKind::WorkerCrashed
        );
        assert!(
            job.failure.as_ref().unwrap().message.contains("signal: 9"),
            "{job:?}"
        );
    }
    for job in jobs.iter().filter(|j| j.failure.is_none()) {
        let expected = job.config["x0"].as_f64().unwrap() + 1.0;
        assert_eq!(job.value(), Some(expected));
    }
    wait_until("the worker is replaced", || {
        e.worker_pids().len() == 2 && !e.worker_pids().contains(&pids[0])
    });
    e.submit([json!({"x0": 1})]).unwrap();
    assert_eq!(e.gather(Gather::All).unwrap().local[0].value(), Some(1.0));
}

#[test]
fn with_retries_the_job_of_a_killed_worker_runs_again() {
    let mut e = builder(guest("probe"))
        .method(Method::Process)
        .num_workers(1)
        .retries(1)
        .build()
        .unwrap();
    e.submit([
        json!({"action": "sleep", "n": 1500}),
        json!({"action": "env_count"}),
    ])
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // An abort (SIGABRT) this time: any way a worker dies counts the same.
    Command::new("kill")
        .args(["-ABRT", &e.worker_pids()[0].to_string()])
        .status()
        .unwrap();
    let jobs = e.gather(Gather::All).unwrap().local;
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.failure.is_none()), "{jobs:?}");
}

#[test]
fn timeouts_stop_the_job_inside_the_worker_which_lives_on() {
    let mut e = builder(guest("probe"))
        .method(Method::Process)
        .num_workers(1)
        .job_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let before = e.worker_pids();
    e.submit([json!({"action": "spin"}), json!({"action": "env_count"})])
        .unwrap();
    let jobs = e.gather(Gather::All).unwrap().local;
    let spin = jobs.iter().find(|j| j.config["action"] == "spin").unwrap();
    assert_eq!(spin.failure.as_ref().unwrap().kind, FailureKind::Timeout);
    assert!(jobs.iter().any(|j| j.value() == Some(0.0)));
    assert_eq!(e.worker_pids(), before, "the same worker");
}

#[test]
fn the_watchdog_kills_a_worker_that_stops_answering() {
    let mut e = builder(guest("probe"))
        .method(Method::Process)
        .num_workers(1)
        .job_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let pid = e.worker_pids()[0];
    e.submit([json!({"action": "sleep", "n": 100_000})])
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // A stopped process runs nothing, epoch checks included: only the parent can end it.
    Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    let t = Instant::now();
    let job = e.gather(Gather::All).unwrap().local.remove(0);
    assert!(t.elapsed() < WITHIN);
    assert_eq!(
        job.failure.as_ref().unwrap().kind,
        FailureKind::Timeout,
        "{job:?}"
    );
    assert!(job.failure.unwrap().message.contains("killed"));
    wait_until("the old worker is reaped", || !exists(pid));
    e.submit([json!({"action": "env_count"})]).unwrap();
    assert_eq!(e.gather(Gather::All).unwrap().local[0].value(), Some(0.0));
}

#[test]
fn close_drop_and_host_panics_stop_and_reap_every_worker() {
    let mut e = builder(guest("probe"))
        .method(Method::Process)
        .num_workers(2)
        .build()
        .unwrap();
    e.submit([
        json!({"action": "spin"}),
        json!({"action": "spin"}),
        json!({"action": "spin"}),
    ])
    .unwrap();
    let pids = e.worker_pids();
    assert_eq!(pids.len(), 2);
    let closed = e.close();
    assert_eq!(closed.len(), 3);
    assert!(closed.iter().all(|j| j.status == JobStatus::Cancelled));
    assert!(pids.iter().all(|p| !exists(*p)), "reaped after close");
    // Usable again: new workers.
    e.submit([json!({"action": "env_count"})]).unwrap();
    assert_eq!(e.gather(Gather::All).unwrap().local[0].value(), Some(0.0));
    let pids = e.worker_pids();
    drop(e);
    assert!(pids.iter().all(|p| !exists(*p)), "reaped after drop");

    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::panic::catch_unwind(move || {
        let mut e = builder(guest("probe"))
            .method(Method::Process)
            .num_workers(2)
            .build()
            .unwrap();
        e.submit([json!({"action": "spin"})]).unwrap();
        tx.send(e.worker_pids()).unwrap();
        panic!("the host program fails");
    });
    assert!(panicked.is_err());
    let pids = rx.recv().unwrap();
    assert!(pids.iter().all(|p| !exists(*p)), "reaped after a panic");
}

/// `wasmeval run` of two spinning jobs on two worker processes, with `env` added, writing to
/// `out`: the CLI, and its workers once both run.
fn spinning_cli(env: &[(&str, &str)], out: &std::path::Path) -> (std::process::Child, Vec<u32>) {
    use std::io::Write;
    let probe = guest("probe");
    let mut cli = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .env("WASMEVAL_STORAGE", "memory")
        .envs(env.iter().copied())
        .args(["run", probe.to_str().unwrap(), "--method", "process"])
        .args(["--workers", "2", "--quiet", "--output"])
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = cli.stdin.take().unwrap();
    stdin
        .write_all(b"{\"action\": \"spin\"}\n{\"action\": \"spin\"}\n")
        .unwrap();
    drop(stdin);
    let mut workers = Vec::new();
    wait_until("two workers run", || {
        workers = children_of(cli.id());
        workers.len() >= 2
    });
    (cli, workers)
}

fn children_of(parent: u32) -> Vec<u32> {
    let mut kids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = stat.rsplit(')').next().unwrap_or("");
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            kids.push(pid);
        }
    }
    kids
}

#[test]
fn workers_exit_when_the_parent_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cli, workers) = spinning_cli(&[], &dir.path().join("results.csv"));
    sigkill(cli.id());
    cli.wait().unwrap();
    for pid in workers {
        wait_until("the orphaned worker exits", || !alive(pid));
    }
}

#[test]
fn worker_children_never_inherit_a_process_launcher_s_variables() {
    // Under mpirun or srun, a worker that inherited these would try to join the MPI job.
    let dir = tempfile::tempdir().unwrap();
    let launcher = [
        ("OMPI_COMM_WORLD_RANK", "1"),
        ("PMIX_RANK", "1"),
        ("PMI_RANK", "1"),
        ("WASMEVAL_KEPT", "yes"),
    ];
    let (mut cli, workers) = spinning_cli(&launcher, &dir.path().join("results.csv"));
    let environs: Vec<Vec<u8>> = workers
        .iter()
        .map(|pid| std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default())
        .collect();
    // Stopped before any assertion, so that a failure leaves no spinning worker behind.
    sigkill(cli.id());
    cli.wait().unwrap();
    for pid in &workers {
        wait_until("the orphaned worker exits", || !alive(*pid));
    }
    for environ in environs {
        let names: Vec<String> = environ
            .split(|b| *b == 0)
            .map(|v| {
                String::from_utf8_lossy(v)
                    .split('=')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert!(names.iter().any(|n| n == "WASMEVAL_KEPT"), "{names:?}");
        assert!(names.iter().any(|n| n == "WASMEVAL_WORKER"), "{names:?}");
        for prefix in ["OMPI_", "PMIX_", "PMI_"] {
            assert!(
                !names.iter().any(|n| n.starts_with(prefix)),
                "{prefix}: {names:?}"
            );
        }
    }
}

#[test]
fn job_times_come_from_the_worker_so_at_most_num_workers_jobs_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let lines: Vec<String> = (0..3000).map(|i| format!("{{\"x0\": {i}}}")).collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = dir.path().join("out.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .env("WASMEVAL_STORAGE", "memory")
        .arg("run")
        .arg(guest("sum"))
        .args([
            "--method",
            "process",
            "--workers",
            "2",
            "--progress",
            "never",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // (time, +1 at a start, -1 at an end); ends first at equal times.
    let mut events: Vec<(f64, i32)> = Vec::new();
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let job: serde_json::Value = serde_json::from_str(line).unwrap();
        let meta = &job["metadata"];
        let (start, end) = (
            meta["timestamp_start"].as_f64().unwrap(),
            meta["timestamp_end"].as_f64().unwrap(),
        );
        assert!(start <= end, "{meta}");
        events.extend([(start, 1), (end, -1)]);
    }
    assert_eq!(events.len(), 6000);
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut running, mut most) = (0, 0);
    for (_, step) in events {
        running += step;
        most = most.max(running);
    }
    // Was up to 10 with 2 workers: start and end were rebuilt from when the parent read them.
    assert!(most <= 2, "{most} jobs at once on 2 workers");
}
