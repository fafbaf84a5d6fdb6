//! The storages: the Storage trait on memory, SQLite and Redis alike; SQLite's sharing,
//! durability and crashes.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, json};
use wasmeval::storage::SCHEMA_VERSION;
use wasmeval::{Gather, Job, JobId, JobStatus, Method, Objective, SqliteStorage, Storage};

use crate::common::{WITHIN, builder, guest};
use crate::redis_server::RedisServer;

/// Opens a new instance of one storage each time it is called (a memory storage: the same).
type Opener = Box<dyn Fn() -> Arc<dyn Storage>>;

/// The storages the suite runs on: memory, SQLite and Redis (a real server, which it keeps
/// running while the openers live).
fn storages(dir: &std::path::Path) -> (Vec<(&'static str, Opener)>, RedisServer) {
    let memory: Arc<dyn Storage> = Arc::new(wasmeval::MemoryStorage::new());
    let path = dir.join("suite.sqlite");
    let server = RedisServer::start();
    let url = server.url_with_prefix("suite");
    let openers: Vec<(&'static str, Opener)> = vec![
        ("memory", Box::new(move || memory.clone())),
        (
            "sqlite",
            Box::new(move || Arc::new(SqliteStorage::open(&path).unwrap())),
        ),
        (
            "redis",
            Box::new(move || wasmeval::storage::open(&url).unwrap()),
        ),
    ];
    (openers, server)
}

#[test]
fn the_storage_trait_round_trips_in_every_storage() {
    let dir = tempfile::tempdir().unwrap();
    let (storages, _server) = storages(dir.path());
    for (name, open) in &storages {
        round_trip(open).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn round_trip(open: &Opener) -> Result<(), String> {
    let (sid, id) = {
        let s = open();
        let sid = s.create_new_search().unwrap();
        assert_eq!(sid, "0");
        let id = s.create_new_job(&sid).unwrap();
        assert_eq!(id, JobId::new("0", 0));
        s.store_job_in(&id, json!({"x": 1.5}).as_object().unwrap())
            .unwrap();
        s.store_job_status(&id, JobStatus::Running).unwrap();
        s.store_job_metadata(&id, "timestamp_submit", json!(0.25))
            .unwrap();
        s.store_search_value(&sid, "module_sha256", json!("abc"))
            .unwrap();
        assert_eq!(s.load_job_status(&id).unwrap(), JobStatus::Running);
        assert_eq!(s.finished_since(&sid, 0).unwrap().0, Vec::<JobId>::new());
        let mut job = s.load_job(&id).unwrap();
        job.status = JobStatus::Done;
        job.objective = Some(Objective::Value(0.0));
        job.metadata.insert("timestamp_gather".into(), json!(0.5));
        job.intermediate = vec![(1.0, 0.5), (2.0, 0.0)];
        job.log = "a log line\n".into();
        s.store_job_done(&job).unwrap();
        let (done, cursor) = s.finished_since(&sid, 0).unwrap();
        assert_eq!(done, vec![id.clone()]);
        assert_eq!(
            s.finished_since(&sid, cursor).unwrap().0,
            Vec::<JobId>::new()
        );
        // A second outcome of a finished job is dropped: the first stored one wins.
        let mut late = job.clone();
        late.objective = Some(Objective::Value(9.0));
        late.log = "the late one\n".into();
        s.store_job_done(&late).unwrap();
        s.store_job_status(&id, JobStatus::Running).unwrap();
        assert_eq!(
            s.finished_since(&sid, cursor).unwrap().0,
            Vec::<JobId>::new()
        );
        (sid, id)
    };
    // Reopened: everything is there.
    let s = open();
    assert_eq!(s.load_all_search_ids().unwrap(), ["0"]);
    let job = s.load_job(&id).unwrap();
    assert_eq!(job.config["x"], 1.5);
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(job.objective, Some(Objective::Value(0.0)));
    let keys: Vec<&str> = job.metadata.keys().map(String::as_str).collect();
    assert_eq!(keys, ["timestamp_submit", "timestamp_gather"]);
    assert_eq!(job.intermediate, vec![(1.0, 0.5), (2.0, 0.0)]);
    assert_eq!(job.log, "a log line\n");
    assert_eq!(
        s.load_search_value(&sid, "module_sha256").unwrap(),
        Some(json!("abc"))
    );
    assert_eq!(s.load_out_from_all_jobs(&sid).unwrap(), vec![json!(0.0)]);
    assert_eq!(
        s.load_metadata_from_all_jobs(&sid, "timestamp_gather")
            .unwrap(),
        vec![json!(0.5)]
    );
    // A second instance on the same storage gets other job numbers.
    let other = open();
    let a = s.create_new_job(&sid).unwrap();
    let b = other.create_new_job(&sid).unwrap();
    assert_ne!(a, b);
    let ids = s
        .create_new_jobs(
            &sid,
            &[json!({"y": 1}), json!({"y": 2})].map(|c| c.as_object().unwrap().clone()),
        )
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1].number(), ids[0].number() + 1);
    assert_eq!(s.load_all_job_ids(&sid).unwrap().len(), 5);
    assert_eq!(
        s.load_jobs(&ids)
            .unwrap()
            .iter()
            .map(|j| j.config["y"].clone())
            .collect::<Vec<_>>(),
        [json!(1), json!(2)]
    );
    assert!(matches!(
        s.create_new_job("9"),
        Err(wasmeval::Error::UnknownSearch(_))
    ));
    // A deleted search is gone, and its id is not given out again.
    let second = s.create_new_search().unwrap();
    s.create_new_job(&second).unwrap();
    s.delete_search(&sid).unwrap();
    assert_eq!(
        s.load_all_search_ids().unwrap(),
        std::slice::from_ref(&second)
    );
    assert!(s.load_job(&id).is_err());
    let third = s.create_new_search().unwrap();
    assert_ne!(third, sid);
    assert!(s.delete_search(&sid).is_err());
    Ok(())
}

#[test]
fn a_restarted_job_keeps_its_id_and_its_earlier_attempt_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attempts.sqlite");
    // A file of schema version 1 (no attempts table) is brought up to date.
    drop(SqliteStorage::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE attempts; PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let (storages, _server) = storages(dir.path());
    for (name, open) in storages {
        let s = if name == "sqlite" {
            Arc::new(SqliteStorage::open(&path).unwrap())
        } else {
            open()
        };
        let search = s.create_new_search().unwrap();
        let config = json!({"x": 1}).as_object().unwrap().clone();
        let ids = s
            .create_new_jobs(&search, std::slice::from_ref(&config))
            .unwrap();
        let mut first = Job::new(ids[0].clone(), Map::new());
        first.status = JobStatus::Cancelled;
        first.objective = Some(Objective::Failure("F_CANCELLED".into()));
        s.store_job_done(&first).unwrap();
        let (_, cursor) = s.finished_since(&search, 0).unwrap();
        s.restart_job(&ids[0]).unwrap();
        let again = s.load_job(&ids[0]).unwrap();
        assert_eq!(again.status, JobStatus::Ready);
        assert_eq!((again.objective, again.config), (None, config));
        let attempts = s.load_attempts(&ids[0]).unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].status, JobStatus::Cancelled);
        let mut second = Job::new(ids[0].clone(), Map::new());
        second.objective = Some(Objective::Value(2.0));
        second.status = JobStatus::Done;
        s.store_job_done(&second).unwrap();
        // Finished again: other evaluators see it again.
        assert_eq!(s.finished_since(&search, cursor).unwrap().0, ids);
        assert_eq!(s.load_all_job_ids(&search).unwrap(), ids);
        assert_eq!(
            s.load_job(&ids[0]).unwrap().objective,
            Some(Objective::Value(2.0))
        );
        // The whole search's attempts in one read: the same as job by job.
        s.restart_job(&ids[0]).unwrap();
        let by_job = s.load_search_attempts(&search).unwrap();
        assert_eq!(by_job.len(), 1);
        assert_eq!(by_job[&ids[0].number()], s.load_attempts(&ids[0]).unwrap());
        assert_eq!(by_job[&ids[0].number()].len(), 2);
    }
}

#[test]
fn files_of_another_version_or_kind_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let future = dir.path().join("future.sqlite");
    drop(SqliteStorage::open(&future).unwrap());
    let conn = rusqlite::Connection::open(&future).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = SqliteStorage::open(&future).err().unwrap().to_string();
    assert!(
        err.contains("future.sqlite")
            && err.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
        "{err}"
    );

    let foreign = dir.path().join("foreign.db");
    let conn = rusqlite::Connection::open(&foreign).unwrap();
    conn.execute_batch("CREATE TABLE t (x INTEGER);").unwrap();
    drop(conn);
    let err = SqliteStorage::open(&foreign).err().unwrap().to_string();
    assert!(
        err.contains("foreign.db") && err.contains("not a wasmeval storage"),
        "{err}"
    );

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just some text that is long enough",
    )
    .unwrap();
    let err = SqliteStorage::open(&text).err().unwrap().to_string();
    assert!(err.contains("notes.txt"), "{err}");
}

#[test]
fn evaluators_share_a_search_through_one_file_and_writes_commit_on_their_own() {
    for method in [Method::Thread, Method::Process] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.sqlite");
        let a_store: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&path).unwrap());
        let b_store: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&path).unwrap());
        let mut a = builder(guest("sum"))
            .method(method)
            .storage(a_store)
            .build()
            .unwrap();
        let search = a.search_id().to_string();
        let mut b = builder(guest("sum"))
            .method(method)
            .storage(b_store)
            .search_id(&search)
            .build()
            .unwrap();
        a.submit([json!({"x0": 0.0}), json!({"x0": 1.0})]).unwrap();
        a.gather(Gather::All).unwrap();
        // A third reader sees a's jobs without anyone flushing: the commit window passes.
        let reader = rusqlite::Connection::open(&path).unwrap();
        let t = Instant::now();
        loop {
            let done: i64 = reader
                .query_row("SELECT count(*) FROM completions", [], |r| r.get(0))
                .unwrap();
            if done == 2 {
                break;
            }
            assert!(t.elapsed() < WITHIN, "a's jobs never committed");
            std::thread::sleep(Duration::from_millis(5));
        }
        b.submit([json!({"x0": 2.0})]).unwrap();
        let g = b.gather(Gather::All).unwrap();
        assert_eq!(g.local.len(), 1);
        let other: Vec<&Job> = g.other.iter().collect();
        assert_eq!(other.len(), 2, "{method:?}");
        assert!(
            other
                .iter()
                .any(|j| j.objective == Some(Objective::Value(0.0))),
            "objective 0 included"
        );
        assert!(other.iter().all(|j| j.status == JobStatus::Done && j.metadata.contains_key("timestamp_gather")));
        assert_eq!(
            a.gather(Gather::All).unwrap().other.len(),
            1,
            "a gets b's job"
        );
    }
}

/// `run MODULE -i INPUT --storage STORAGE`.
fn run_args<'a>(
    module: &'a std::path::Path,
    input: &'a std::path::Path,
    storage: &'a str,
) -> Vec<&'a str> {
    let (module, input) = (module.to_str().unwrap(), input.to_str().unwrap());
    vec!["run", module, "-i", input, "--storage", storage]
}

fn wasmeval(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wasmeval"));
    c.args(args).current_dir(crate::common::root());
    c
}

#[test]
fn processes_joining_one_search_get_contiguous_ids_each_with_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ids.sqlite");
    let storage = format!("sqlite:{}", db.display());
    let one = dir.path().join("one.jsonl");
    std::fs::write(&one, "{\"x0\": 1}\n").unwrap();
    let input = dir.path().join("in.jsonl");
    let lines: Vec<String> = (0..300).map(|i| json!({"x0": i}).to_string()).collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let sum = guest("sum");
    let run = |input: &std::path::Path, join: bool| {
        let mut args = run_args(&sum, input, &storage);
        args.push("--quiet");
        if join {
            args.extend(["--search-id", "0"]);
        }
        wasmeval(&args).stderr(Stdio::piped()).spawn().unwrap()
    };
    assert!(run(&one, false).wait().unwrap().success());
    let (p1, p2) = (run(&input, true), run(&input, true));
    for p in [p1, p2] {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let s = SqliteStorage::open(&db).unwrap();
    let mut numbers: Vec<u64> = s
        .load_all_job_ids("0")
        .unwrap()
        .iter()
        .map(|id| id.number())
        .collect();
    numbers.sort();
    // Was 0, then blocks of 256 per process: 0, 256..556, 512..812 (DeepHyper's
    // checkpoint_restart then waits for the jobs of the gaps forever).
    assert_eq!(numbers, (0..601).collect::<Vec<_>>());
    assert!(
        s.load_search("0")
            .unwrap()
            .iter()
            .all(|j| j.status == JobStatus::Done)
    );
}

#[test]
fn two_processes_write_one_file_at_once_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("two.sqlite");
    let input = dir.path().join("in.jsonl");
    let lines: Vec<String> = (0..2000).map(|i| json!({"x0": i}).to_string()).collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let sum = guest("sum");
    let storage = format!("sqlite:{}", db.display());
    let run = || {
        wasmeval(&[
            "run",
            sum.to_str().unwrap(),
            "-i",
            input.to_str().unwrap(),
            "--storage",
            &storage,
            "--quiet",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (p1, p2) = (run(), run());
    for p in [p1, p2] {
        let out = p.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let s = SqliteStorage::open(&db).unwrap();
    let mut searches = s.load_all_search_ids().unwrap();
    searches.sort();
    assert_eq!(searches, ["0", "1"]);
    for sid in searches {
        let jobs = s.load_search(&sid).unwrap();
        assert_eq!(jobs.len(), 2000);
        let mut xs: Vec<i64> = jobs
            .iter()
            .map(|j| j.config["x0"].as_i64().unwrap())
            .collect();
        xs.sort();
        assert_eq!(
            xs,
            (0..2000).collect::<Vec<_>>(),
            "each configuration exactly once"
        );
        assert!(
            jobs.iter()
                .all(|j| j.status == JobStatus::Done && j.value() == j.config["x0"].as_f64())
        );
        assert_eq!(s.finished_since(&sid, 0).unwrap().0.len(), 2000);
    }
}

#[test]
fn a_killed_evaluator_leaves_a_sound_file_with_its_finished_jobs_and_detectable_abandoned_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.sqlite");
    let probe = guest("probe");
    let storage = format!("sqlite:{}", db.display());
    let mut child = wasmeval(&[
        "run",
        probe.to_str().unwrap(),
        "--storage",
        &storage,
        "--workers",
        "1",
        "--quiet",
    ])
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for _ in 0..5 {
            writeln!(stdin, "{}", json!({"action": "env_count"})).unwrap();
        }
        writeln!(stdin, "{}", json!({"action": "spin"})).unwrap();
        writeln!(stdin, "{}", json!({"action": "env_count"})).unwrap();
    }
    // Once the five quick jobs are finished and the spinning one runs, kill the run.
    kill_when(&db, 5, 5, &mut child);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let s = SqliteStorage::open(&db).unwrap();
    let jobs = s.load_search("0").unwrap();
    let done = jobs.iter().filter(|j| j.status == JobStatus::Done).count();
    assert_eq!(done, 5, "{jobs:?}");
    // The spinning job's owner is gone: it shows as abandoned once its lease is over.
    assert!(
        s.load_abandoned("0", Duration::from_secs(3600))
            .unwrap()
            .is_empty()
    );
    std::thread::sleep(Duration::from_millis(1100));
    let abandoned = s.load_abandoned("0", Duration::from_secs(1)).unwrap();
    assert_eq!(
        abandoned,
        [JobId::new("0", 5), JobId::new("0", 6)],
        "the running and the queued job"
    );
}

#[test]
fn a_killed_run_resumes_without_running_a_finished_configuration_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("resume.sqlite");
    let input = dir.path().join("in.jsonl");
    let configs = [
        json!({"action": "env_count"}),
        json!({"action": "env_count", "path": "b"}),
        json!({"action": "env_count", "path": "c"}),
        json!({"action": "sleep", "n": 1500}),
        json!({"action": "env_count", "path": "e"}),
        json!({"action": "env_count", "path": "f"}),
    ];
    let lines: Vec<String> = configs.iter().map(|c| c.to_string()).collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let probe = guest("probe");
    let storage = format!("sqlite:{}", db.display());
    let args = |extra: &[&str]| {
        let mut a = run_args(&probe, &input, &storage);
        a.extend_from_slice(&["--method", "serial", "--timeout", "10s", "--quiet"]);
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let mut first = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .args(args(&[]))
        .spawn()
        .unwrap();
    // Once three jobs are finished and the sleeping one runs, kill the run.
    kill_when(&db, 3, 3, &mut first);

    // Another module, or another policy, is refused.
    let ackley = guest("ackley");
    let mut other = args(&["--resume", "--search-id", "0"]);
    other[1] = ackley.to_str().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .args(&other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot resume: search 0 was run with the module")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .args(args(&["--resume", "--search-id", "0", "--memory", "64MiB"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another sandbox policy"));

    // A later search of another module in the same storage: `--resume` without a search id
    // still finds the latest search that ran this module.
    let out = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .args([
            "run",
            ackley.to_str().unwrap(),
            "--storage",
            &storage,
            "--quiet",
        ])
        .args(["-i", "examples/configs/ackley.jsonl", "--max-jobs", "1"])
        .current_dir(crate::common::root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let csv = dir.path().join("results.csv");
    let mut resume = args(&["--resume", "--output", csv.to_str().unwrap()]);
    resume.retain(|a| a != "--quiet");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .args(&resume)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.starts_with(&format!("search 0 in storage {storage} (resumed)\n")),
        "{err}"
    );
    let s = SqliteStorage::open(&db).unwrap();
    let jobs = s.load_search("0").unwrap();
    // Each configuration has one job, DONE, under the id it got in the first run: the three
    // that did not finish were run again under their ids (was: new ids, and the abandoned
    // jobs left in the search as CANCELLED rows).
    assert_eq!(jobs.len(), 6, "{jobs:?}");
    for (pos, job) in jobs.iter().enumerate() {
        assert_eq!(job.status, JobStatus::Done, "{job:?}");
        assert_eq!(job.metadata["_input_pos"], pos as u64);
        assert_eq!(job.id.number(), pos as u64);
        let attempts = s.load_attempts(&job.id).unwrap();
        if pos < 3 {
            assert!(
                attempts.is_empty(),
                "finished in the first run, not run again"
            );
        } else {
            assert_eq!(attempts.len(), 1, "{attempts:?}");
            assert_eq!(attempts[0].status, JobStatus::Cancelled);
        }
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 1 + 6);
    let shown = wasmeval(&["results", "--storage", &storage, "--job", "0.3"])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["status"], "DONE", "{shown}");
    assert_eq!(shown["attempts"][0]["status"], "CANCELLED", "{shown}");
    assert!(
        !text.lines().next().unwrap().contains("_input"),
        "hidden keys stay hidden"
    );
}

/// Waits until the storage file shows `done` finished jobs and job `n` RUNNING, then kills the
/// evaluator process with SIGKILL.
fn kill_when(db: &std::path::Path, done: i64, n: i64, child: &mut std::process::Child) {
    let t = Instant::now();
    loop {
        if let Ok(conn) = rusqlite::Connection::open(db) {
            let state = conn.query_row(
                "SELECT (SELECT count(*) FROM completions), (SELECT status FROM jobs WHERE n = ?1)",
                [n],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?)),
            );
            if matches!(state, Ok((d, Some(1))) if d == done) {
                break;
            }
        }
        assert!(t.elapsed() < WITHIN, "the run never reached job {n}");
        std::thread::sleep(Duration::from_millis(10));
    }
    Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

#[test]
fn many_connections_opening_a_new_file_at_once_all_succeed() {
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.sqlite");
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let p = path.clone();
                std::thread::spawn(move || {
                    SqliteStorage::open(&p).map(|s| s.create_new_search().unwrap())
                })
            })
            .collect();
        let mut ids: Vec<String> = opens
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect();
        ids.sort_by_key(|id| id.parse::<u32>().unwrap());
        assert_eq!(ids, (0..8).map(|i| i.to_string()).collect::<Vec<_>>());
    }
}

#[test]
fn the_export_has_one_row_per_job_and_every_attempt_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("attempts.sqlite");
    {
        let s = SqliteStorage::open(&db).unwrap();
        let search = s.create_new_search().unwrap();
        let configs = [json!({"x": 1}), json!({"x": 2})].map(|c| c.as_object().unwrap().clone());
        let ids = s.create_new_jobs(&search, &configs).unwrap();
        let done = |id: &JobId, status, objective| {
            let mut j = Job::new(id.clone(), Map::new());
            (j.status, j.objective) = (status, Some(objective));
            s.store_job_done(&j).unwrap();
        };
        // Job 0 was cancelled by a Ctrl-C, then run again by --resume.
        done(
            &ids[0],
            JobStatus::Cancelled,
            Objective::Failure("F_CANCELLED".into()),
        );
        s.restart_job(&ids[0]).unwrap();
        done(&ids[0], JobStatus::Done, Objective::Value(5.0));
        done(&ids[1], JobStatus::Done, Objective::Value(7.0));
    }
    let export = |extra: &[&str]| {
        let mut args = vec![
            "results",
            "--storage",
            db.to_str().unwrap(),
            "--format",
            "csv",
        ];
        args.extend_from_slice(extra);
        let out = wasmeval(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let final_only = export(&[]);
    assert_eq!(
        final_only.lines().skip(1).collect::<Vec<_>>(),
        ["1,5,0,DONE", "2,7,1,DONE"],
        "one row per job, its final outcome: {final_only}"
    );
    let all = export(&["--all-attempts"]);
    assert_eq!(
        all.lines().collect::<Vec<_>>(),
        [
            "p:x,objective,job_id,job_status,m:attempt",
            "1,F_CANCELLED,0,CANCELLED,1",
            "1,5,0,DONE,2",
            "2,7,1,DONE,1"
        ],
        "{all}"
    );
}

#[test]
fn a_commit_the_server_refuses_is_kept_and_made_later_not_dropped() {
    let server = RedisServer::start();
    let s = wasmeval::storage::open(&server.url()).unwrap();
    let search = s.create_new_search().unwrap();
    let id = s.create_new_job(&search).unwrap();
    // The server refuses every write for a while (out of memory, no eviction)...
    server.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    server.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    let mut job = Job::new(id.clone(), Map::new());
    job.status = JobStatus::Done;
    job.objective = Some(Objective::Value(4.0));
    s.store_job_done(&job).unwrap();
    // ...so the background commit fails, and so does an explicit one.
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.finished_since(&search, 0).is_err());
    // Once it accepts writes again, the outcome is committed, not lost.
    server.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(s.finished_since(&search, 0).unwrap().0, vec![id.clone()]);
    assert_eq!(
        s.load_job(&id).unwrap().objective,
        Some(Objective::Value(4.0))
    );
}
