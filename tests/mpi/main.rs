//! The mpi method under a real launcher: the real binary (built with `--features mpi`) started
//! by `mpirun` (Open MPI by default; `WASMEVAL_MPIRUN` names another, like `mpirun.mpich`),
//! and by `srun` on a one-node Slurm the test starts (`slurm.rs`).
//!
//! Environment: `WASMEVAL_MPI_BIN` (the binary; default the one cargo built),
//! `WASMEVAL_MPIRUN` (the launcher and its flags; default Open MPI's mpirun with the flags
//! root and this 2-core machine need), `WASMEVAL_OTHER_MPIRUN` (the other MPI's launcher, for
//! the mismatch refusal; default `mpirun.mpich`).

#[path = "../it/common.rs"]
#[allow(dead_code)]
mod common;
mod slurm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The binary under test.
fn binary() -> PathBuf {
    std::env::var_os("WASMEVAL_MPI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_wasmeval")))
}

/// The launcher, as words.
fn launcher() -> Vec<String> {
    let given = std::env::var("WASMEVAL_MPIRUN")
        .unwrap_or_else(|_| "mpirun --allow-run-as-root --oversubscribe".into());
    given.split_whitespace().map(String::from).collect()
}

/// `launcher -n ranks binary run module --method mpi args...`, in `dir`.
fn mpirun(dir: &Path, ranks: usize, module: &Path, args: &[&str]) -> Command {
    let words = launcher();
    let mut c = Command::new(&words[0]);
    c.args(&words[1..])
        .arg("-n")
        .arg(ranks.to_string())
        .arg(binary())
        .arg("run")
        .arg(module)
        .args(["--method", "mpi", "--progress", "never"])
        .args(args)
        .current_dir(dir);
    c
}

/// The same run with the process method (the reference).
fn local(dir: &Path, module: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(binary());
    c.arg("run")
        .arg(module)
        .args([
            "--method",
            "process",
            "--workers",
            "2",
            "--progress",
            "never",
        ])
        .args(args)
        .current_dir(dir);
    c
}

fn run(c: &mut Command) -> Output {
    let out = c.output().expect("the launcher starts");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn write_jsonl(path: &Path, configs: &[Value]) {
    let text: String = configs.iter().map(|c| format!("{c}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// A directory holding `configs` as `in.jsonl`.
fn input_dir(configs: &[Value]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(&dir.path().join("in.jsonl"), configs);
    dir
}

/// A quiet run over `in.jsonl`, results kept in memory, then written to `out.csv`.
const TO_CSV: [&str; 7] = [
    "-i",
    "in.jsonl",
    "--storage",
    "memory",
    "-q",
    "-o",
    "out.csv",
];

/// The rows of a results.csv, by job id: (configuration columns, objective, status).
fn rows(path: &Path) -> HashMap<String, (Vec<String>, String, String)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (id, objective, status) = (col("job_id"), col("objective"), col("job_status"));
    let params: Vec<usize> = (0..headers.len())
        .filter(|&i| headers[i].starts_with("p:"))
        .collect();
    let mut rows = HashMap::new();
    for record in reader.records() {
        let r = record.unwrap();
        let config = params.iter().map(|&i| r[i].to_string()).collect();
        let previous = rows.insert(
            r[id].to_string(),
            (config, r[objective].to_string(), r[status].to_string()),
        );
        assert!(previous.is_none(), "job {} has two rows", &r[id]);
    }
    rows
}

#[test]
fn twenty_thousand_jobs_have_one_outcome_each_and_the_process_methods_results() {
    let configs: Vec<Value> = (0..20_000)
        .map(|i| json!({"x": [i as f64 * 0.001 - 10.0, (i % 7) as f64 * 0.5]}))
        .collect();
    let dir = input_dir(&configs);
    let ackley = common::guest("ackley");
    let args = ["-i", "in.jsonl", "--storage", "memory", "-q"];
    let out = run(&mut mpirun(
        dir.path(),
        3,
        &ackley,
        &[&args[..], &["-o", "mpi.csv"]].concat(),
    ));
    assert!(out.status.success(), "{:?}", out.status);
    let out = run(&mut local(
        dir.path(),
        &ackley,
        &[&args[..], &["-o", "process.csv"]].concat(),
    ));
    assert!(out.status.success());
    let (mpi, process) = (
        rows(&dir.path().join("mpi.csv")),
        rows(&dir.path().join("process.csv")),
    );
    assert_eq!(mpi.len(), 20_000);
    assert!(mpi.values().all(|(_, _, status)| status == "DONE"));
    assert_eq!(mpi, process, "the same objective for every configuration");
}

#[test]
fn hostile_guests_end_on_a_rank_as_they_do_locally() {
    let configs = [
        json!({"action": "spin"}),
        json!({"action": "alloc", "n": 256}),
        json!({"action": "panic"}),
        json!({"action": "recurse", "n": 100_000_000}),
        json!({"action": "echo", "x": 1.5}),
        json!({"action": "read_file", "path": "/etc/passwd"}),
        json!({"action": "env", "path": "OMPI_COMM_WORLD_RANK"}),
    ];
    let dir = input_dir(&configs);
    let probe = common::guest("probe");
    let args = [
        "-i",
        "in.jsonl",
        "--storage",
        "memory",
        "-q",
        "--timeout",
        "1s",
        "--memory",
        "64MiB",
    ];
    let t = Instant::now();
    let out = run(&mut mpirun(
        dir.path(),
        3,
        &probe,
        &[&args[..], &["-o", "mpi.jsonl"]].concat(),
    ));
    assert!(out.status.success());
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "the spin was stopped"
    );
    let out = run(&mut local(
        dir.path(),
        &probe,
        &[&args[..], &["-o", "process.jsonl"]].concat(),
    ));
    assert!(out.status.success());
    let read = |name: &str| -> Vec<(Value, Value, Value)> {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let m = &v["metadata"];
                (
                    v["objective"].clone(),
                    m["failure"].clone(),
                    m["ok"].clone(),
                )
            })
            .collect()
    };
    let (mpi, process) = (read("mpi.jsonl"), read("process.jsonl"));
    let objectives: Vec<&Value> = mpi.iter().map(|r| &r.0).collect();
    assert_eq!(
        objectives,
        [
            &json!("F_timeout"),
            &json!("F_memory_limit"),
            &json!("F_trap"),
            &json!("F_trap"),
            &json!(1.5),
            &json!(0.0),
            &json!(0.0),
        ]
    );
    assert_eq!(mpi, process);
}

/// The pids of the processes `parent` started, from any of its threads.
fn children(parent: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .flat_map(|task| {
            std::fs::read_to_string(task.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The MPI rank of `pid`, from the launcher's variables.
fn rank_of(pid: u32) -> Option<u32> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ.split(|&b| b == 0).find_map(|var| {
        let var = std::str::from_utf8(var).ok()?;
        let (key, value) = var.split_once('=')?;
        matches!(
            key,
            "OMPI_COMM_WORLD_RANK" | "PMI_RANK" | "PMIX_RANK" | "SLURM_PROCID"
        )
        .then(|| value.parse().ok())
        .flatten()
    })
}

/// The rank processes under `launcher` (its children, or its children's children under a
/// launcher that starts a proxy), by rank, once `ranks` are up.
fn ranks_of(launcher: &Child, ranks: usize) -> HashMap<u32, u32> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let mut found = HashMap::new();
        let mut todo = vec![launcher.id()];
        while let Some(pid) = todo.pop() {
            for child in children(pid) {
                match rank_of(child) {
                    Some(rank) if !found.contains_key(&rank) => {
                        found.insert(rank, child);
                    }
                    Some(_) => {}
                    None => todo.push(child),
                }
            }
        }
        if found.len() >= ranks || Instant::now() > until {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` has ended (gone, or a zombie its new parent has not reaped yet).
fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
}

#[test]
fn a_killed_worker_costs_its_job_only_and_is_replaced() {
    let mut configs = vec![json!({"action": "sleep", "n": 4000}); 2];
    configs.extend((0..10).map(|i| json!({"action": "echo", "x": i})));
    let dir = input_dir(&configs);
    let probe = common::guest("probe");
    let mut c = mpirun(dir.path(), 3, &probe, &TO_CSV);
    let mut launched = c.stderr(Stdio::inherit()).spawn().unwrap();
    let ranks = ranks_of(&launched, 3);
    std::thread::sleep(Duration::from_millis(1500));
    // Both agents' workers, each in the middle of a sleep.
    for rank in [1, 2] {
        for worker in children(ranks[&rank]) {
            kill(worker, "-KILL");
        }
    }
    assert!(launched.wait().unwrap().success());
    let rows = rows(&dir.path().join("out.csv"));
    let crashed = rows.values().filter(|r| r.1 == "F_worker_crashed").count();
    let done = rows
        .values()
        .filter(|r| r.2 == "DONE" && !r.1.starts_with('F'))
        .count();
    assert_eq!((crashed, done), (2, 10), "{rows:?}");
}

#[test]
fn a_killed_rank_ends_the_run_and_resume_finishes_it_without_rerunning_a_finished_job() {
    let configs: Vec<Value> = (0..300)
        .map(|i| json!({"action": "sleep", "n": 40, "x": i}))
        .collect();
    let dir = input_dir(&configs);
    let probe = common::guest("probe");
    let args = ["-i", "in.jsonl", "--storage", "s.sqlite", "-q"];
    let first = mpirun(dir.path(), 3, &probe, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ranks = ranks_of(&first, 3);
    std::thread::sleep(Duration::from_millis(2000));
    kill(ranks[&2], "-KILL");
    let out = first.wait_with_output().unwrap();
    // Hydra writes its messages on stdout.
    let stderr = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    eprintln!("{stderr}");
    assert!(!out.status.success());
    // The launcher names the lost rank's signal. Open MPI's mpirun sends the other ranks
    // SIGTERM, so rank 0 prints how to resume; MPICH's Hydra sends SIGKILL.
    assert!(stderr.contains("Killed"), "{stderr}");
    if !launcher()[0].contains("mpich") {
        assert!(stderr.contains("to resume, run"), "{stderr}");
    }
    let jobs = |dir: &Path| -> HashMap<String, Value> {
        let out = Command::new(binary())
            .args(["results", "--storage", "s.sqlite", "--format", "jsonl"])
            .current_dir(dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| (v["job_id"].as_str().unwrap().to_string(), v))
            .collect()
    };
    let before = jobs(dir.path());
    let finished: Vec<&String> = before
        .iter()
        .filter(|(_, v)| v["status"] == "DONE" && v["objective"] == json!(1.0))
        .map(|(id, _)| id)
        .collect();
    assert!(
        !finished.is_empty() && finished.len() < 300,
        "{} finished before the kill",
        finished.len()
    );
    // Fewer ranks this time.
    let out = run(&mut mpirun(
        dir.path(),
        2,
        &probe,
        &[&args[..], &["--resume"]].concat(),
    ));
    assert!(out.status.success());
    let after = jobs(dir.path());
    let done: Vec<&Value> = after
        .values()
        .filter(|v| v["status"] == "DONE" && v["objective"] == json!(1.0))
        .collect();
    assert_eq!((after.len(), done.len()), (300, 300));
    let mut xs: Vec<i64> = done
        .iter()
        .map(|v| v["config"]["x"].as_i64().unwrap())
        .collect();
    xs.sort();
    xs.dedup();
    assert_eq!(xs.len(), 300, "every configuration finished once");
    for id in finished {
        assert_eq!(
            before[id]["metadata"]["timestamp_start"], after[id]["metadata"]["timestamp_start"],
            "job {id} finished before the kill and did not run again"
        );
    }
}

#[test]
fn sigterm_to_every_rank_stops_the_run_with_rank_0s_code_and_the_resume_command() {
    let configs = vec![json!({"action": "sleep", "n": 100}); 200];
    let dir = input_dir(&configs);
    let probe = common::guest("probe");
    let args = ["-i", "in.jsonl", "--storage", "s.sqlite", "-q"];
    let launched = mpirun(dir.path(), 3, &probe, &args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ranks = ranks_of(&launched, 3);
    std::thread::sleep(Duration::from_millis(1500));
    // What a batch system does at the end of an allocation.
    for pid in ranks.values() {
        kill(*pid, "-TERM");
    }
    let t = Instant::now();
    let out = launched.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert_eq!(out.status.code(), Some(143));
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        stderr.contains("interrupted: jobs in flight were cancelled"),
        "{stderr}"
    );
    assert!(stderr.contains("--resume"), "{stderr}");
    let until = Instant::now() + Duration::from_secs(10);
    while !ranks.values().all(|&pid| exited(pid)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in ranks.values() {
        assert!(exited(*pid), "rank {pid} exited");
    }
}

#[test]
fn the_search_timeout_stops_jobs_on_the_ranks() {
    let dir = input_dir(&vec![json!({"action": "spin"}); 6]);
    let probe = common::guest("probe");
    let args = [&TO_CSV[..], &["--search-timeout", "1s"]].concat();
    let t = Instant::now();
    let out = run(&mut mpirun(dir.path(), 3, &probe, &args));
    assert!(out.status.success());
    assert!(t.elapsed() < Duration::from_secs(20));
    let rows = rows(&dir.path().join("out.csv"));
    assert_eq!(rows.len(), 6);
    assert!(
        rows.values()
            .all(|r| r.1 == "F_CANCELLED" && r.2 == "CANCELLED"),
        "{rows:?}"
    );
}

/// The one-line refusal, on every rank.
fn assert_refused(out: &Output, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert!(
        !errors.is_empty() && errors.iter().all(|l| l.contains(says)),
        "{stderr}"
    );
}

#[test]
fn a_launch_without_launcher_or_by_another_mpi_is_refused_before_anything_is_opened() {
    let dir = input_dir(&[json!({"x": [1.0]})]);
    let ackley = common::guest("ackley");
    let launch = |words: &[&str]| {
        Command::new(words[0])
            .args(&words[1..])
            .arg(binary())
            .arg("run")
            .arg(&ackley)
            .args(["--method", "mpi", "-i", "in.jsonl", "-o", "out.csv"])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    // No launcher: the binary itself ("env" starts it).
    assert_refused(&launch(&["env"]), "without an MPI launcher");
    let other = std::env::var("WASMEVAL_OTHER_MPIRUN").unwrap_or_else(|_| "mpirun.mpich".into());
    let words: Vec<&str> = other.split_whitespace().chain(["-n", "2"]).collect();
    let out = launch(&words);
    assert_refused(&out, "so every rank runs alone");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no storage or output was made: {left:?}");
}

#[test]
fn srun_on_a_one_node_slurm_runs_the_mpi_method() {
    let Some(slurm) = slurm::Slurm::start() else {
        panic!("Slurm could not start (see above)");
    };
    let configs: Vec<Value> = (0..2000).map(|i| json!({"x": [i as f64 * 0.01]})).collect();
    let dir = input_dir(&configs);
    let ackley = common::guest("ackley");
    let out = run(slurm
        .srun(3)
        .arg(binary())
        .arg("run")
        .arg(&ackley)
        .args(["--method", "mpi", "--progress", "never"])
        .args(TO_CSV)
        .current_dir(dir.path()));
    assert!(out.status.success());
    let rows = rows(&dir.path().join("out.csv"));
    assert_eq!(rows.len(), 2000);
    assert!(
        rows.values()
            .all(|r| r.2 == "DONE" && !r.1.starts_with('F'))
    );
}

#[test]
fn an_input_error_on_rank_0_ends_every_rank_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let ackley = common::guest("ackley");
    let t = Instant::now();
    let out = run(&mut mpirun(
        dir.path(),
        3,
        &ackley,
        &["-i", "missing.jsonl"],
    ));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "rank 0 alone reports it: {stderr}");
    assert!(errors[0].contains("missing.jsonl"), "{stderr}");
    assert!(t.elapsed() < Duration::from_secs(20), "the agents ended");
}

/// Set in the ranks of the library-form test: the test binary itself runs under the launcher.
const LIBRARY_RANK: &str = "WASMEVAL_TEST_MPI_LIBRARY_MODULE";

#[test]
fn the_library_form_evaluates_on_rank_0_and_serves_jobs_on_the_other_ranks() {
    if let Some(module) = std::env::var_os(LIBRARY_RANK) {
        return library_rank(Path::new(&module));
    }
    let words = launcher();
    let out = run(Command::new(&words[0])
        .args(&words[1..])
        .args(["-n", "3"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_library_form_evaluates_on_rank_0_and_serves_jobs_on_the_other_ranks",
        ])
        .args(["--nocapture", "--test-threads", "1"])
        .env(LIBRARY_RANK, common::guest("probe")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("library: 40 jobs on 2 workers, the spin cancelled"),
        "{stdout}"
    );
}

/// One rank of the library-form test: `mpi::init` serves on ranks 1 and 2 (and exits there);
/// rank 0 runs an evaluator with the mpi method, cancels a job, closes, ends MPI.
fn library_rank(module: &Path) {
    use wasmeval::{Evaluator, FailureKind, Gather, Method, Objective};
    // The agents' workers: the real binary (this one is a test harness).
    wasmeval::worker::set_binary(binary());
    let root = wasmeval::mpi::init(Some(1)).expect("started by the launcher");
    assert_eq!(root.size(), 3);
    let mut e = Evaluator::builder(module)
        .method(Method::Mpi)
        .build()
        .unwrap();
    assert_eq!(e.num_workers(), 2);
    assert_eq!(e.to_json()["type"], "MPICommEvaluator");
    let Err(busy) = Evaluator::builder(module).method(Method::Mpi).build() else {
        panic!("a second evaluator of the mpi method started beside the first");
    };
    assert!(busy.to_string().contains("one at a time"), "{busy}");
    let spin = e.submit([json!({"action": "spin"})]).unwrap().remove(0);
    e.submit((0..40).map(|i| json!({"action": "echo", "x": i})))
        .unwrap();
    let done = e.gather(Gather::Batch(40)).unwrap().local;
    assert!(done.len() >= 40);
    assert!(e.cancel(&spin));
    let rest = e.close();
    let spun = done.iter().chain(&rest).find(|j| j.id == spin).unwrap();
    assert_eq!(spun.failure.as_ref().unwrap().kind, FailureKind::Cancelled);
    let mut xs: Vec<f64> = done
        .iter()
        .chain(&rest)
        .filter_map(|j| match &j.objective {
            Some(Objective::Value(v)) => Some(*v),
            _ => None,
        })
        .collect();
    xs.sort_by(f64::total_cmp);
    assert_eq!(xs, (0..40).map(f64::from).collect::<Vec<_>>());
    println!(
        "library: 40 jobs on {} workers, the spin cancelled",
        e.num_workers()
    );
    drop(e);
    drop(root);
}
