//! The hostile-guest catalogue: each attack an untrusted run function could try, with the
//! outcome wasmeval promises (a typed failure, a truncation flag, a denial seen by the guest,
//! or a refusal at load). Every case runs in a process-method evaluator next to a benign job:
//! the benign job must succeed, the worker processes must survive, the attack must stop
//! within its limit plus a margin, and the host's memory must stay bounded.
//!
//! `HOSTILE_ROUNDS=3 cargo test --test hostile -- --nocapture` runs the whole catalogue three
//! times and prints the table of attacks with the longest time each took to stop (the figures
//! of SECURITY.md and BENCHMARKS.md).

#[path = "../it/common.rs"]
#[allow(dead_code)]
mod common;
mod host;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasmeval::{DirGrant, Error, EvaluatorBuilder, FailureKind, Gather, Job, Method, Objective};

use common::{builder, fixture, guest, guest_for, heavy_module};

/// The tests of this file run one at a time: the catalogue measures the memory of this process,
/// which the 300 threads of the many-jobs test would inflate.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The per-job limits of the catalogue.
const TIMEOUT: Duration = Duration::from_secs(1);
const MEMORY: usize = 64 << 20;
/// Loose: what a loaded 2-core machine may add to a limit.
const MARGIN: Duration = Duration::from_secs(5);

/// What an attack must end as.
#[derive(Debug, Clone)]
enum Expect {
    /// A failed job of this kind.
    Failure(FailureKind),
    /// The guest ran on, but the host refused it: the probe reports `ok: false`.
    Denied,
    /// The job succeeded with its output cut at the cap and flagged `truncated`.
    Truncated,
    /// The job's objective is exactly this.
    Is(Objective),
    /// The module is refused when the evaluator is created, with this in the reason.
    Refused(&'static str),
}

struct Case {
    name: &'static str,
    module: PathBuf,
    config: Value,
    expect: Expect,
    /// Changes to the catalogue's policy.
    setup: fn(EvaluatorBuilder, &Path) -> EvaluatorBuilder,
}

fn plain(b: EvaluatorBuilder, _: &Path) -> EvaluatorBuilder {
    b
}

fn hostile(name: &str) -> PathBuf {
    common::root().join("tests/hostile/guests").join(name)
}

fn probe(config: Value) -> (PathBuf, Value) {
    (guest("probe"), config)
}

fn case(name: &'static str, (module, config): (PathBuf, Value), expect: Expect) -> Case {
    Case {
        name,
        module,
        config,
        expect,
        setup: plain,
    }
}

/// A granted directory holding `data.txt`, a symlink to `/etc/passwd` and one to its parent.
fn grant_dir(b: EvaluatorBuilder, dir: &Path) -> EvaluatorBuilder {
    b.dir(DirGrant::read_only(dir, "/data"))
}

fn catalogue() -> Vec<Case> {
    use Expect::*;
    use FailureKind::*;
    let p1_command = guest_for("command", "wasm32-wasip1");
    let p2_command = guest("command");
    let mut cases = vec![
        case(
            "endless loop (component)",
            probe(json!({"action": "spin"})),
            Failure(Timeout),
        ),
        case(
            "endless loop (p1 command)",
            (fixture("loop.wat"), json!({})),
            Failure(Timeout),
        ),
        case(
            "endless loop in a start function",
            (hostile("start_loop.wat"), json!({})),
            Failure(Timeout),
        ),
        case(
            "sleep forever (component)",
            probe(json!({"action": "sleep", "n": u64::MAX / 2})),
            Failure(Timeout),
        ),
        case(
            "sleep forever (p1 poll_oneoff)",
            (fixture("sleep.wat"), json!({})),
            Failure(Timeout),
        ),
        case(
            "sleep forever (p2 command)",
            (
                p2_command.clone(),
                json!({"x": [1.0], "sleep_ms": 1u64 << 40}),
            ),
            Failure(Timeout),
        ),
        case(
            "sleep forever (p1 command)",
            (p1_command, json!({"x": [1.0], "sleep_ms": 1u64 << 40})),
            Failure(Timeout),
        ),
        case(
            "memory bomb (component)",
            probe(json!({"action": "alloc", "n": 100_000})),
            Failure(MemoryLimit),
        ),
        case(
            "memory bomb (memory.grow)",
            (fixture("grow.wat"), json!({})),
            Failure(MemoryLimit),
        ),
        case(
            "table bomb",
            (hostile("table_bomb.wat"), json!({})),
            Failure(MemoryLimit),
        ),
        case(
            "deep recursion",
            probe(json!({"action": "recurse", "n": 100_000_000u64})),
            Failure(Trap),
        ),
        case("panic", probe(json!({"action": "panic"})), Failure(Trap)),
        case(
            "trap (unreachable)",
            (fixture("trap.wat"), json!({})),
            Failure(Trap),
        ),
        case(
            "read a host file without a grant",
            probe(json!({"action": "read_file", "path": "/etc/passwd"})),
            Denied,
        ),
        case(
            "write a host file without a grant",
            probe(json!({"action": "write_file", "path": "/tmp/wasmeval-owned", "text": "x"})),
            Denied,
        ),
        case(
            "read an env var without a grant",
            probe(json!({"action": "env", "path": "HOME"})),
            Denied,
        ),
        case(
            "count env vars without a grant",
            probe(json!({"action": "env_count"})),
            Is(wasmeval::Objective::Value(0.0)),
        ),
        case(
            "open a socket",
            probe(json!({"action": "connect", "path": "127.0.0.1:22"})),
            Denied,
        ),
        case(
            "resolve a name",
            probe(json!({"action": "resolve", "path": "localhost"})),
            Denied,
        ),
        case(
            "flood stdout",
            probe(json!({"action": "stdout", "n": 4096, "text": "y".repeat(1024)})),
            Truncated,
        ),
        case(
            "flood stderr",
            probe(json!({"action": "stderr", "n": 4096, "text": "z".repeat(1024)})),
            Truncated,
        ),
        case(
            "flood log",
            probe(json!({"action": "log", "n": 4096, "text": "x".repeat(1024)})),
            Truncated,
        ),
        case(
            "flood record",
            probe(json!({"action": "records", "n": 1_000_000})),
            Failure(OutputTooLarge),
        ),
        case(
            "gigantic result string",
            probe(json!({"action": "big_result", "n": 4u64 << 20})),
            Failure(OutputTooLarge),
        ),
        case(
            "invalid UTF-8 result",
            (hostile("bad_utf8.wat"), json!({})),
            Failure(BadOutput),
        ),
        case(
            "non-JSON result",
            (hostile("not_json.wat"), json!({})),
            Failure(BadOutput),
        ),
        case(
            "NaN result",
            probe(json!({"action": "nan"})),
            Is(wasmeval::Objective::Failure("F".into())),
        ),
        case(
            "infinite result",
            (hostile("infinity.wat"), json!({})),
            Is(wasmeval::Objective::Failure("F".into())),
        ),
        case(
            "number out of range",
            (hostile("out_of_range.wat"), json!({})),
            Failure(BadOutput),
        ),
        case(
            "exit with a code",
            (hostile("exit_code.wat"), json!({})),
            Failure(GuestError),
        ),
        case(
            "`stopped` in a tight loop",
            probe(json!({"action": "until_stopped"})),
            Is(wasmeval::Objective::Value(1.0)),
        ),
        case(
            "import the host does not provide",
            (fixture("unknown_import.wat"), json!({})),
            Refused("launch_missiles"),
        ),
    ];
    for (name, path, expect) in [
        ("path escape with `..`", "/data/../../../etc/passwd", Denied),
        ("absolute path outside the grant", "/etc/passwd", Denied),
        ("symlink out of the grant", "/data/passwd-link", Denied),
        (
            "symlink to the grant's parent",
            "/data/up/etc/passwd",
            Denied,
        ),
        (
            "read inside the grant (control)",
            "/data/data.txt",
            Is(wasmeval::Objective::Value(1.0)),
        ),
    ] {
        cases.push(Case {
            name,
            module: guest("probe"),
            config: json!({"action": "read_file", "path": path}),
            expect,
            setup: grant_dir,
        });
    }
    cases.push(Case {
        name: "write into a read-only grant",
        module: guest("probe"),
        config: json!({"action": "write_file", "path": "/data/new.txt", "text": "x"}),
        expect: Denied,
        setup: grant_dir,
    });
    cases
}

/// The resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn check(case: &Case, job: &Job) {
    let name = case.name;
    match &case.expect {
        Expect::Failure(kind) => {
            assert_eq!(
                job.failure.as_ref().map(|f| f.kind),
                Some(*kind),
                "{name}: {job:?}"
            );
        }
        Expect::Denied => {
            assert!(job.failure.is_none(), "{name}: {job:?}");
            assert_eq!(
                job.metadata.get("ok"),
                Some(&Value::Bool(false)),
                "{name}: {job:?}"
            );
        }
        Expect::Truncated => {
            assert!(job.failure.is_none(), "{name}: {job:?}");
            assert_eq!(
                job.metadata.get("truncated"),
                Some(&Value::Bool(true)),
                "{name}"
            );
            assert!(
                job.log.len() <= 2 << 20,
                "{name}: a log of {} bytes",
                job.log.len()
            );
        }
        Expect::Is(o) => assert_eq!(job.objective.as_ref(), Some(o), "{name}: {job:?}"),
        Expect::Refused(_) => unreachable!("checked at load"),
    }
}

/// Runs one case; returns how long the attack took to end.
fn run_case(case: &Case, grant: &Path) -> Duration {
    let b = builder(&case.module)
        .method(Method::Process)
        .num_workers(1)
        .job_timeout(TIMEOUT)
        .memory_limit(MEMORY);
    let b = (case.setup)(b, grant);
    let mut evaluator = match (b.build(), &case.expect) {
        (Err(Error::Module { path, source }), Expect::Refused(what)) => {
            assert_eq!(path, case.module, "{}", case.name);
            let reason = source.to_string();
            assert!(reason.contains(what), "{}: {reason}", case.name);
            return Duration::ZERO;
        }
        (Ok(e), Expect::Refused(_)) => {
            drop(e);
            panic!("{}: loaded, expected a refusal", case.name)
        }
        (Err(e), _) => panic!("{}: {e}", case.name),
        (Ok(e), _) => e,
    };
    let pids = evaluator.worker_pids();
    let started = Instant::now();
    evaluator.submit([case.config.clone()]).unwrap();
    let job = evaluator.gather(Gather::All).unwrap().local.remove(0);
    let took = started.elapsed();
    check(case, &job);
    assert!(
        took < TIMEOUT + MARGIN,
        "{}: stopped after {took:?}",
        case.name
    );
    // The same worker goes on with a benign job.
    assert_eq!(
        evaluator.worker_pids(),
        pids,
        "{}: the worker survived",
        case.name
    );
    for pid in &pids {
        let mib = rss_mib(*pid);
        assert!(mib < 512, "{}: the worker holds {mib} MiB", case.name);
    }
    // A .wat attack has no benign path: the next job is the attack again, and it must end
    // the same way.
    let benign = benign_config(&case.module);
    let again = benign.is_null();
    evaluator
        .submit([if again { case.config.clone() } else { benign }])
        .unwrap();
    let next = evaluator.gather(Gather::All).unwrap().local.remove(0);
    if again {
        check(case, &next);
    } else {
        assert!(!next.is_failure(), "{}: the next job: {next:?}", case.name);
    }
    assert_eq!(evaluator.worker_pids(), pids, "{}", case.name);
    evaluator.close();
    took
}

/// A job of the same module that must succeed.
fn benign_config(module: &Path) -> Value {
    let name = module.file_name().unwrap().to_str().unwrap();
    match name {
        "probe.wasm" => json!({"action": "env_count"}),
        "command.wasm" => json!({"x": [1.0, 2.0]}),
        _ => Value::Null,
    }
}

#[test]
fn every_attack_ends_as_documented_and_the_host_carries_on() {
    let _serial = one_at_a_time();
    let grant = tempfile::tempdir().unwrap();
    std::fs::write(grant.path().join("data.txt"), "granted").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", grant.path().join("passwd-link")).unwrap();
    std::os::unix::fs::symlink("/", grant.path().join("up")).unwrap();
    let rounds: usize = std::env::var("HOSTILE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let parent_before = rss_mib(std::process::id());
    let cases = catalogue();
    assert!(cases.len() >= 20);
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, case) in cases.iter().enumerate() {
            times[i].push(run_case(case, grant.path()));
        }
    }
    let grown = rss_mib(std::process::id()).saturating_sub(parent_before);
    assert!(grown < 256, "the host process grew by {grown} MiB");
    println!("| attack | outcome | time to stop (max of {rounds}) |\n|---|---|---|");
    for (case, t) in cases.iter().zip(&times) {
        let outcome = match &case.expect {
            Expect::Failure(k) => {
                format!("`F_{}`", serde_json::to_value(k).unwrap().as_str().unwrap())
            }
            Expect::Denied => "denied inside the guest".into(),
            Expect::Truncated => "truncated, flagged".into(),
            Expect::Is(o) => format!("objective {}", o.to_json()),
            Expect::Refused(_) => "refused at load".into(),
        };
        let max = t.iter().max().unwrap();
        println!("| {} | {outcome} | {} ms |", case.name, max.as_millis());
    }
}

#[test]
fn a_module_slow_or_huge_to_compile_is_refused_at_load() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heavy.wat");
    std::fs::write(&path, heavy_module(2_000)).unwrap();
    use wasmeval::sandbox::{ModuleError::Compile, compile::CompileError};
    let timeout = |e: &CompileError| matches!(e, CompileError::Timeout(_));
    let cpu = |e: &CompileError| matches!(e, CompileError::CpuTime { seconds: 1 });
    let memory = |e: &CompileError| {
        matches!(
            e,
            CompileError::OutOfMemory { .. } | CompileError::Died { .. }
        )
    };
    for (policy, reason, kind) in [
        // Under a second of CPU, the wall-clock backstop (5 times the limit) stops it.
        (
            wasmeval::Policy {
                compile_timeout: Duration::from_millis(50),
                ..Default::default()
            },
            "compiling took longer than 250ms of wall-clock time",
            &timeout as &dyn Fn(&CompileError) -> bool,
        ),
        (
            wasmeval::Policy {
                compile_timeout: Duration::from_secs(1),
                ..Default::default()
            },
            "compiling used more than 1 s of CPU",
            &cpu,
        ),
        (
            wasmeval::Policy {
                compile_memory: 32 << 20,
                ..Default::default()
            },
            "too big to compile",
            &memory,
        ),
    ] {
        let started = Instant::now();
        let err = builder(&path)
            .policy(policy.clone())
            .build()
            .err()
            .expect("refused");
        let Error::Module {
            path: p,
            source: Compile(e),
        } = err
        else {
            panic!("{err}")
        };
        assert_eq!(p, path);
        assert!(kind(&e), "{e:?}");
        assert!(e.to_string().contains(reason), "{e}");
        let backstop = policy.compile_timeout * wasmeval::sandbox::compile::WALL_FACTOR;
        assert!(started.elapsed() < backstop + MARGIN);
    }
}

#[test]
fn many_jobs_at_once_wait_for_room_in_the_instance_pool() {
    let _serial = one_at_a_time();
    // 300 threads in one process, more than the pool's 128 component instances: jobs wait for
    // a slot instead of failing `startup`.
    let mut evaluator = builder(guest("probe"))
        .method(Method::Thread)
        .num_workers(300)
        .build()
        .unwrap();
    let shape = evaluator.module().shape;
    assert_eq!(shape.component_instances, 1);
    assert!(
        shape.core_instances >= 1 && shape.memories >= 1,
        "{shape:?}"
    );
    let configs = (0..600).map(|_| json!({"action": "sleep", "n": 100}));
    evaluator.submit(configs).unwrap();
    let jobs = evaluator.gather(Gather::All).unwrap().local;
    assert_eq!(jobs.len(), 600);
    let failed: Vec<_> = jobs.iter().filter(|j| j.is_failure()).collect();
    assert!(
        failed.is_empty(),
        "{} failed, first: {:?}",
        failed.len(),
        failed.first().map(|j| &j.metadata)
    );
}
