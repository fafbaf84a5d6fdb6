//! Attacks on the host around the sandbox (issue: host-side escapes, guest-driven
//! amplification): links planted in a read-write grant, metadata that forges the host's keys,
//! non-finite `record` values, a concurrent `--resume`, floods through error strings and
//! exports, blocking files and disk filling through grants. Each runs the real binary or a
//! real evaluator with real guests.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasmeval::{
    DirGrant, FailureKind, Gather, Method, Objective, SqliteStorage, Storage,
    internal::resume::config_hash,
};

use super::common::{builder, guest, root};
use super::{MARGIN, hostile, one_at_a_time};

fn wasmeval() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wasmeval"));
    c.current_dir(root()).env("WASMEVAL_STORAGE", "memory");
    c
}

/// The data limit of the runs of these tests, in KiB (`ulimit -d`): wasmtime's pooling
/// allocator maps about 6 GiB of writable (lazily committed) pool for tables and stacks up front,
/// which `RLIMIT_AS` cannot leave room for (the memory pool reserves far more address space), so
/// the limit is on writable data instead: the pools plus 1 GiB. A regression that amplifies a
/// guest's output into host memory then fails the run with an allocation error, instead of
/// swapping the machine.
const DATA_LIMIT_KIB: u64 = 7 << 20;

/// `wasmeval run` under [`DATA_LIMIT_KIB`], its input the file holding `input`.
fn run(args: &[&str], input: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.jsonl");
    std::fs::write(&path, input).unwrap();
    let mut c = Command::new("sh");
    c.current_dir(root())
        .env("WASMEVAL_STORAGE", "memory")
        .arg("-c")
        .arg(format!("ulimit -d {DATA_LIMIT_KIB}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_wasmeval"))
        .args(["run", "--progress", "never", "--input"])
        .arg(&path)
        .args(args);
    c.output().unwrap()
}

fn mkfifo(path: &std::path::Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn probe(action: &str, extra: Value) -> Value {
    let mut c = json!({"action": action});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c
}

#[test]
fn output_and_storage_inside_a_read_write_grant_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let grant = dir.path().join("grant");
    std::fs::create_dir(&grant).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let out = grant.join("results.csv");
    let module = hostile("plant_link.wat");
    let dir_flag = format!("{}:rw", grant.display());
    for (flag, value) in [
        ("--output", out.to_str().unwrap().to_string()),
        (
            "--storage",
            grant.join("s.sqlite").to_str().unwrap().to_string(),
        ),
    ] {
        let o = run(
            &[module.to_str().unwrap(), "--dir", &dir_flag, flag, &value],
            "{}\n",
        );
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(flag) && e.contains("--dir"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    // Outside the grant, the same guest runs and the results land where asked.
    let safe = dir.path().join("results.csv");
    let o = run(
        &[
            module.to_str().unwrap(),
            "--dir",
            &dir_flag,
            "--output",
            safe.to_str().unwrap(),
        ],
        "{}\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&safe).unwrap().contains("DONE"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn a_compile_cache_inside_a_read_write_grant_is_refused() {
    // A guest that can write the cache could plant compiled code the host then runs natively.
    let dir = tempfile::tempdir().unwrap();
    let grant = dir.path().join("grant");
    std::fs::create_dir(&grant).unwrap();
    let module = guest("sum");
    for cache in [grant.clone(), grant.join("not-yet").join("cache")] {
        let o = wasmeval()
            .env("WASMEVAL_CACHE_DIR", &cache)
            .args(["run", module.to_str().unwrap(), "--dir"])
            .arg(format!("{}:rw", grant.display()))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(
            e.contains("compile cache") && e.contains(grant.to_str().unwrap()),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            !grant.join("not-yet").exists(),
            "the cache was made inside the grant"
        );
        // The library refuses it too; a read-only grant of the same directory is fine.
        let refused = builder(&module)
            .cache(wasmeval::CacheDir::At(cache.clone()))
            .dir(DirGrant::read_write(&grant, "/data"))
            .build();
        let e = refused
            .err()
            .expect("a cache inside a read-write grant is refused");
        assert!(e.to_string().contains("compile cache"), "{e}");
        builder(&module)
            .cache(wasmeval::CacheDir::At(cache.clone()))
            .dir(DirGrant::read_only(&grant, "/data"))
            .build()
            .unwrap();
    }
}

#[test]
fn storage_and_output_paths_that_are_links_are_refused_and_a_device_is_written_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let storage = dir.path().join("s.sqlite");
    std::os::unix::fs::symlink(&victim, &storage).unwrap();
    assert!(SqliteStorage::open(&storage).is_err());
    let link = dir.path().join("results.csv");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let module = guest("probe");
    let input = "{\"action\": \"echo\", \"x\": 1}\n";
    let o = run(
        &[module.to_str().unwrap(), "--output", link.to_str().unwrap()],
        input,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    // A named pipe (like /dev/null, a node that is not a regular file) is written in place:
    // renaming a file over it would replace the node itself.
    let fifo = dir.path().join("pipe.csv");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let o = run(
        &[module.to_str().unwrap(), "--output", fifo.to_str().unwrap()],
        input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(reader.join().unwrap().contains(",DONE,"));
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "{kind:?}");
}

#[test]
fn guest_metadata_never_overwrites_the_hosts_and_resume_trusts_only_the_host() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite");
    let b_config = json!({"action": "raw", "text": "2"});
    let forged = json!({"objective": 1, "metadata": {
        "timestamp_submit": null, "timestamp_start": "x", "failure": "trap",
        "_input_pos": 1, "_input_hash": config_hash(b_config.as_object().unwrap()),
        "mine": 5}});
    let a_config = json!({"action": "raw", "text": forged.to_string()});
    let input = format!("{a_config}\n{b_config}\n");
    let probe = guest("probe");
    let db_flag = db.to_str().unwrap();
    let o = run(
        &[
            probe.to_str().unwrap(),
            "--storage",
            db_flag,
            "--max-jobs",
            "1",
        ],
        &input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    {
        let storage = SqliteStorage::open(&db).unwrap();
        let job = storage.load_search("0").unwrap().remove(0);
        assert!(job.metadata["timestamp_submit"].is_number(), "{job:?}");
        assert!(job.metadata["timestamp_start"].is_number(), "{job:?}");
        assert!(job.failure.is_none() && !job.metadata.contains_key("failure"));
        assert_eq!(job.metadata["_input_pos"], json!(0));
        assert_eq!(job.metadata["mine"], json!(5));
        assert_eq!(job.metadata["host_keys_dropped"], json!(true));
        let shown = job.to_json();
        assert!(
            !shown["metadata"]
                .as_object()
                .unwrap()
                .contains_key("_input_pos")
        );
    }
    // The configuration the guest claimed was done has never run: resume runs it.
    let o = run(
        &[
            probe.to_str().unwrap(),
            "--storage",
            db_flag,
            "--search-id",
            "0",
            "--resume",
        ],
        &input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let storage = SqliteStorage::open(&db).unwrap();
    let values: Vec<Option<f64>> = storage
        .load_search("0")
        .unwrap()
        .iter()
        .map(|j| j.value())
        .collect();
    assert!(values.contains(&Some(2.0)), "{values:?}");
}

#[test]
fn non_finite_records_keep_the_series_and_the_worker() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    for method in [Method::Process, Method::Thread] {
        let storage = std::sync::Arc::new(
            SqliteStorage::open(dir.path().join(format!("{method:?}.sqlite"))).unwrap(),
        );
        let mut e = builder(guest("probe"))
            .method(method)
            .num_workers(1)
            .retries(2)
            .storage(storage.clone())
            .build()
            .unwrap();
        let pids = e.worker_pids();
        e.submit([probe("record_non_finite", json!({}))]).unwrap();
        let job = e.gather(Gather::All).unwrap().local.remove(0);
        assert_eq!(
            job.objective,
            Some(Objective::Value(1.0)),
            "{method:?}: {job:?}"
        );
        assert_eq!(e.worker_pids(), pids, "{method:?}: the worker survived");
        e.close();
        let stored = storage.load_job(&job.id).unwrap();
        for j in [&job, &stored] {
            let o: Vec<f64> = j.intermediate.iter().map(|p| p.1).collect();
            assert!(o.len() == 3 && o[0].is_nan(), "{method:?}: {o:?}");
            assert_eq!(&o[1..], &[f64::INFINITY, f64::NEG_INFINITY]);
        }
        let shown = stored.to_json();
        assert_eq!(
            shown["intermediate"]["objective"],
            json!(["NaN", "Infinity", "-Infinity"])
        );
    }
}

#[test]
fn resume_of_a_search_another_process_runs_is_refused() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite");
    let input = dir.path().join("in.jsonl");
    let line = probe("sleep", json!({"n": 1500})).to_string();
    std::fs::write(&input, format!("{line}\n").repeat(6)).unwrap();
    let probe = guest("probe");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "run".to_string(),
            probe.to_str().unwrap().into(),
            "--input".into(),
            input.to_str().unwrap().into(),
            "--storage".into(),
            db.to_str().unwrap().into(),
            "--workers".into(),
            "1".into(),
            "--progress".into(),
            "never".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let mut first = wasmeval()
        .args(args(&[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for its first job to be stored RUNNING.
    let started = Instant::now();
    loop {
        if let Ok(s) = SqliteStorage::open(&db)
            && s.load_all_job_ids("0").is_ok_and(|ids| !ids.is_empty())
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no job started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let o = wasmeval()
        .args(args(&["--search-id", "0", "--resume"]))
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("still being run"), "{}", stderr(&o));
    // Nothing of the live search was cancelled.
    let s = SqliteStorage::open(&db).unwrap();
    assert!(
        s.load_search("0")
            .unwrap()
            .iter()
            .all(|j| j.status != wasmeval::JobStatus::Cancelled)
    );
}

/// The one job of `module` run on `config` with the process method (under the data limit), as
/// its JSON Lines output shows it.
fn run_one_process(module: &std::path::Path, config: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let o = run(
        &[
            module.to_str().unwrap(),
            "--method",
            "process",
            "--output",
            out.to_str().unwrap(),
        ],
        &format!("{config}\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out).unwrap();
    let mut lines = text.lines();
    let job = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert!(lines.next().is_none(), "{text}");
    job
}

#[test]
fn a_huge_error_string_is_capped_like_a_result() {
    let _serial = one_at_a_time();
    // 64 MiB of error text, cut to the 1 MiB cap in the worker; a host that copied it on (into
    // the IPC frame, the storage, the table) a few times would pass the data limit.
    let job = run_one_process(
        &guest("probe"),
        &probe("err", json!({"text": "e", "n": 64 << 20})),
    );
    let meta = &job["metadata"];
    assert_eq!(meta["failure"], json!("guest_error"), "{meta}");
    let message = meta["failure_message"].as_str().unwrap();
    assert!(message.len() <= 1 << 20, "{}", message.len());
    assert_eq!(meta["truncated"], json!(true));
}

#[test]
fn objectives_are_fixed_by_the_first_result_and_export_stays_linear() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite");
    let raw = |v: Value| json!({"action": "raw", "text": v.to_string()}).to_string();
    let long_failure = format!("F_{}", "x".repeat(100_000));
    let hundred: Vec<f64> = (0..100).map(f64::from).collect();
    let input = [
        raw(json!(hundred)),
        raw(json!([3, 4, 5])),
        raw(json!(long_failure)),
        raw(json!((0..200).collect::<Vec<_>>())),
    ]
    .join("\n");
    let probe = guest("probe");
    let o = run(
        &[
            probe.to_str().unwrap(),
            "--storage",
            db.to_str().unwrap(),
            "--workers",
            "1",
            "--method",
            "serial",
        ],
        &input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = SqliteStorage::open(&db).unwrap();
    let jobs = s.load_search("0").unwrap();
    assert_eq!(jobs[0].objective, Some(Objective::Multi(hundred)));
    for j in [&jobs[1], &jobs[3]] {
        assert_eq!(
            j.failure.as_ref().map(|f| f.kind),
            Some(FailureKind::BadOutput),
            "{j:?}"
        );
    }
    // The export runs under an address-space limit: a regression fails instead of swapping.
    let csv = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 1048576; exec {} results --storage {} --format csv",
            env!("CARGO_BIN_EXE_wasmeval"),
            db.display()
        ))
        .output()
        .unwrap();
    assert!(csv.status.success(), "{}", stderr(&csv));
    let text = String::from_utf8(csv.stdout).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with("p:action,p:text,objective_0,"),
        "{header}"
    );
    assert!(header.contains(",objective_99,job_id,"), "{header}");
    // The 100 KB failure string is stored cut to 1 KiB, so its 100 objective cells stay small;
    // the configurations (which hold it in full) are written once.
    assert!(text.len() < 400 << 10, "an export of {} bytes", text.len());
    assert_eq!(text.lines().count(), 5);
}

#[test]
fn the_summary_keeps_a_bounded_pareto_front() {
    let _serial = one_at_a_time();
    // 1,100 mutually non-dominated vectors: all Pareto-optimal, but the summary keeps 1,000.
    let input: String = (0..1100)
        .map(|i| json!({"action": "raw", "text": json!([i, -i]).to_string()}).to_string() + "\n")
        .collect();
    let o = run(
        &[guest("probe").to_str().unwrap(), "--method", "serial"],
        &input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("over 1000 Pareto-optimal jobs: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn metadata_with_too_many_keys_is_refused_by_the_csv_export_only() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.sqlite");
    // Four jobs of 3,000 distinct metadata keys each: 12,000 columns, past the cap.
    let input: String = (0..4)
        .map(|j| {
            let metadata: serde_json::Map<String, Value> =
                (0..3000).map(|k| (format!("k{j}_{k}"), json!(k))).collect();
            let text = json!({"objective": 1, "metadata": metadata}).to_string();
            json!({"action": "raw", "text": text}).to_string() + "\n"
        })
        .collect();
    let o = run(
        &[
            guest("probe").to_str().unwrap(),
            "--method",
            "serial",
            "--storage",
            db.to_str().unwrap(),
        ],
        &input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let export = |format: &str| {
        wasmeval()
            .args([
                "results",
                "--storage",
                db.to_str().unwrap(),
                "--format",
                format,
            ])
            .output()
            .unwrap()
    };
    let csv = export("csv");
    assert_eq!(csv.status.code(), Some(2), "{}", stderr(&csv));
    assert!(
        stderr(&csv).contains("more than 10000 columns"),
        "{}",
        stderr(&csv)
    );
    let jsonl = export("jsonl");
    assert!(jsonl.status.success(), "{}", stderr(&jsonl));
    assert_eq!(String::from_utf8_lossy(&jsonl.stdout).lines().count(), 4);
}

#[test]
fn a_named_pipe_in_a_grant_is_refused_under_every_method() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    for method in [Method::Thread, Method::Process] {
        let b = builder(guest("probe"))
            .method(method)
            .job_timeout(Duration::from_secs(1))
            .dir(DirGrant::read_only(dir.path(), "/data"));
        let (tx, rx) = std::sync::mpsc::channel();
        // A hang must fail the test, not stall it.
        std::thread::spawn(move || {
            let job = super::common::run_one(b, probe("read_file", json!({"path": "/data/fifo"})));
            let _ = tx.send(job);
        });
        let job = rx
            .recv_timeout(Duration::from_secs(1) + MARGIN)
            .unwrap_or_else(|_| panic!("{method:?}: reading a named pipe hung"));
        assert_eq!(
            job.metadata.get("ok"),
            Some(&json!(false)),
            "{method:?}: {job:?}"
        );
    }
}

#[test]
fn writes_through_a_grant_have_a_quota() {
    let _serial = one_at_a_time();
    for (module, config) in [
        (
            guest("probe"),
            probe("fill", json!({"path": "/data/big", "n": 256})),
        ),
        (hostile("fill.wat"), json!({})),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let job = super::common::run_one(
            builder(&module)
                .method(Method::Process)
                .write_quota(8 << 20)
                .dir(DirGrant::read_write(dir.path(), "/data")),
            config,
        );
        assert_eq!(
            job.failure.as_ref().map(|f| f.kind),
            Some(FailureKind::Quota),
            "{}: {job:?}",
            module.display()
        );
        let size = std::fs::metadata(dir.path().join("big")).unwrap().len();
        assert!(
            size <= 9 << 20,
            "{}: {size} bytes written",
            module.display()
        );
    }
}

#[test]
fn poll_with_millions_of_subscriptions_is_refused() {
    let _serial = one_at_a_time();
    let job = run_one_process(&hostile("poll_flood.wat"), &json!({}));
    // EINVAL, reported by the command as its exit code.
    assert_eq!(job["metadata"]["failure"], json!("guest_error"));
}

#[test]
fn control_characters_in_module_names_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ansi.wat");
    std::fs::write(
        &path,
        "(module (import \"\\1b[31mevil\" \"\\1b[2Jclear\" (func)) (func (export \"_start\")))",
    )
    .unwrap();
    for args in [
        vec!["inspect", path.to_str().unwrap()],
        vec!["run", path.to_str().unwrap(), "--input", "/dev/null"],
    ] {
        let o = wasmeval().args(&args).output().unwrap();
        let all = [o.stdout.clone(), o.stderr.clone()].concat();
        assert!(
            !all.contains(&0x1b),
            "{args:?}: {}",
            String::from_utf8_lossy(&all)
        );
        assert!(
            String::from_utf8_lossy(&all).contains("\\u{1b}[31mevil"),
            "{args:?}"
        );
    }
}

#[test]
fn memory_limits_above_4_gib_are_refused() {
    let o = run(
        &[guest("probe").to_str().unwrap(), "--memory", "5GiB"],
        "{}\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--memory"), "{}", stderr(&o));
    let big = builder(guest("probe")).memory_limit(5 << 30).build();
    assert!(matches!(big, Err(wasmeval::Error::Option(_))));
}

#[test]
fn the_cache_stores_one_key_from_many_threads() {
    use wasmeval::sandbox::cache::{self, CodeInfo};
    let dir = tempfile::tempdir().unwrap();
    let info = CodeInfo {
        component: true,
        core_instances: 1,
        componentized: None,
    };
    let code: Vec<u8> = (0..1u32 << 20).map(|i| i as u8).collect();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..20 {
                    cache::store(dir.path(), "key", &code, &info).expect("stored");
                }
            });
        }
    });
    let (found, path) = cache::lookup(dir.path(), "key").expect("a verified entry");
    assert_eq!(found, info);
    assert_eq!(std::fs::read(path).unwrap(), code);
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files, 2, "no temporary file is left");
}
