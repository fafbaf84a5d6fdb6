//! The real `wasmeval` binary.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{fixture, guest, root};

fn wasmeval(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .args(args)
        .current_dir(root())
        .env("WASMEVAL_STORAGE", "memory")
        .output()
        .expect("run wasmeval")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_evaluates_the_bundled_example_into_deephyper_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("results.csv");
    let ackley = guest("ackley");
    let out = wasmeval(&[
        "run",
        ackley.to_str().unwrap(),
        "--input",
        "examples/configs/ackley.jsonl",
        "--output",
        csv.to_str().unwrap(),
        "--timeout",
        "2s",
        "--memory",
        "64MiB",
        "--workers",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 42, "header + 41 jobs");
    assert!(
        lines[0].starts_with("p:x,objective,job_id,job_status,m:timestamp_submit,"),
        "{}",
        lines[0]
    );
    assert!(
        lines[41].contains("F_guest_error") && lines[41].contains(",40,DONE,"),
        "{}",
        lines[41]
    );
    let summary = stderr(&out);
    assert!(
        summary.contains("41 jobs: 40 succeeded, 1 failed (guest_error 1)"),
        "{summary}"
    );
    assert!(summary.contains("best objective"), "{summary}");
}

#[test]
fn jsonl_output_stdin_input_kwargs_and_grants() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.jsonl");
    std::fs::write(dir.path().join("v.txt"), "granted").unwrap();
    let grant = format!("{}::/data", dir.path().display());
    let probe = guest("probe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .env("WASMEVAL_STORAGE", "memory")
        .args([
            "run",
            probe.to_str().unwrap(),
            "--method",
            "serial",
            "--output",
            out_path.to_str().unwrap(),
        ])
        .args([
            "--kwargs",
            r#"{"k": 2}"#,
            "--dir",
            &grant,
            "--env",
            "A=b",
            "--quiet",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"action\": \"kwargs\"}\n{\"action\": \"read_file\", \"path\": \"/data/v.txt\"}\n{\"action\": \"env\", \"path\": \"A\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stderr.is_empty() && out.stdout.is_empty(), "--quiet");
    let jobs: Vec<serde_json::Value> = std::fs::read_to_string(&out_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(jobs[0]["metadata"]["kwargs"], serde_json::json!({"k": 2}));
    assert_eq!(jobs[1]["metadata"]["value"], "granted");
    assert_eq!(jobs[2]["metadata"]["value"], "b");
}

#[test]
fn bad_input_gets_a_clear_error_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"x\": [1]}\n{\"x\": [2]\n").unwrap();
    let bad_csv = dir.path().join("bad.csv");
    std::fs::write(&bad_csv, "x0,x1\n1,2\n3,4,5\n").unwrap();
    let d = dir.path().to_str().unwrap();
    let ackley = guest("ackley");
    let ackley = ackley.to_str().unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["run", ackley, "-i", bad_csv.to_str().unwrap()],
            format!(
                "error: {}:3: the row has 3 fields, the header has 2",
                bad_csv.display()
            ),
        ),
        (
            vec!["run", ackley, "-i", d],
            format!("error: {d}:0: is a directory"),
        ),
        (
            vec!["run", ackley, "--progress", "sometimes"],
            "invalid value 'sometimes' for '--progress".into(),
        ),
        (
            vec!["run", ackley, "--max-jobs", "many"],
            "invalid value 'many' for '--max-jobs".into(),
        ),
        (
            vec!["run", ackley, "--search-timeout", "2 parsecs"],
            "invalid duration `2 parsecs`".into(),
        ),
        (
            vec!["run", ackley, "--memory", "512"],
            "`512` has no unit".into(),
        ),
        (
            vec!["run", ackley, "--kwargs", "[1]"],
            "--kwargs must be a JSON object".into(),
        ),
        (
            vec!["run", ackley, "--dir", "::/x"],
            "expected HOST[::GUEST][:rw]".into(),
        ),
        (
            vec!["run", ackley, "--resume"],
            "--resume needs a --storage file".into(),
        ),
        (
            vec!["inspect"],
            "required arguments were not provided".into(),
        ),
        (
            vec!["run", ackley, "-o", "/nonexistent/dir/r.csv"],
            "error: --output /nonexistent/dir/r.csv: No such file or directory".into(),
        ),
        (
            vec!["run", ackley, "-i", bad.to_str().unwrap()],
            format!("error: {}:2: invalid JSON", bad.display()),
        ),
        (
            vec!["run", ackley, "-i", "nope.jsonl"],
            "error: nope.jsonl:0: cannot read".into(),
        ),
        (
            vec!["run", "missing.wasm", "-i", "examples/configs/ackley.jsonl"],
            "error: missing.wasm: No such file".into(),
        ),
        (
            vec!["run", ackley, "--timeout", "soon"],
            "invalid duration `soon`".into(),
        ),
        (
            vec!["run", ackley, "--memory", "lots"],
            "invalid size `lots`".into(),
        ),
        (
            vec!["run", ackley, "--kwargs", "{oops"],
            "--kwargs is not JSON".into(),
        ),
        (
            vec!["run", ackley, "--method", "fast"],
            "unknown method `fast`".into(),
        ),
        (
            vec!["run", ackley, "--frobnicate"],
            "unexpected argument '--frobnicate'".into(),
        ),
        (
            vec!["run", ackley, "--env", "NOEQUALS"],
            "expected KEY=VALUE".into(),
        ),
    ];
    for (args, expected) in cases {
        let out = wasmeval(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    for (module, reason) in [
        (fixture("not_wasm.txt"), "not WebAssembly"),
        (
            fixture("no_start.wat"),
            "exports neither `_start` nor `run` with `cabi_realloc`",
        ),
        (fixture("unknown_import.wat"), "launch_missiles"),
    ] {
        let out = wasmeval(&[
            "run",
            module.to_str().unwrap(),
            "-i",
            "examples/configs/ackley.jsonl",
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        let name = Path::new(&module).file_name().unwrap().to_str().unwrap();
        assert!(err.contains(name) && err.contains(reason), "{err}");
    }
}

#[test]
fn compile_fills_the_cache_and_results_reads_a_storage_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let ackley = guest("ackley");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .args(["compile", ackley.to_str().unwrap()])
        .env("WASMEVAL_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("objective component"));
    let mut files: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .extension()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert_eq!(files, ["cwasm", "json"], "one compiled module in the cache");
    let out = wasmeval(&["compile", fixture("not_wasm.txt").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not WebAssembly"));

    let db = dir.path().join("r.sqlite");
    let db = db.to_str().unwrap();
    let out = wasmeval(&[
        "run",
        ackley.to_str().unwrap(),
        "-i",
        "examples/configs/ackley.jsonl",
        "--storage",
        db,
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = wasmeval(&["results", "--storage", db]);
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = String::from_utf8_lossy(&table.stdout).to_string();
    assert_eq!(text.lines().count(), 41);
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("0.40\tDONE\t\"F_guest_error\""),
        "{text}"
    );
    let csv = wasmeval(&["results", "--storage", db, "--format", "csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout).to_string();
    assert!(
        csv.starts_with("p:x,objective,job_id,job_status,m:timestamp_submit,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 42);
    // --format names the format of an --output file of any name.
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("r.txt");
    let to_txt = |format: &[&str]| {
        let mut args = vec!["results", "--storage", db, "-o", txt.to_str().unwrap()];
        args.extend_from_slice(format);
        wasmeval(&args)
    };
    let refused = to_txt(&[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("give --format csv|jsonl"),
        "{}",
        stderr(&refused)
    );
    let written = to_txt(&["--format", "csv"]);
    assert_eq!(written.status.code(), Some(0), "{}", stderr(&written));
    assert_eq!(std::fs::read_to_string(&txt).unwrap(), csv);
    let one = wasmeval(&["results", "--storage", db, "--job", "0.40"]);
    let job: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(job["objective"], "F_guest_error");
    assert_eq!(
        job["metadata"]["failure_message"],
        "x must hold at least one coordinate"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .args(["results", "--format", "csv"])
        .env_remove("WASMEVAL_STORAGE")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("wasmeval.sqlite: no such storage file"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("wasmeval.sqlite").exists(),
        "not created by reading"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .args(["results", "--format", "csv"])
        .env("WASMEVAL_STORAGE", db)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        csv,
        "the storage from the environment"
    );
    let missing = wasmeval(&["results", "--storage", db, "--search-id", "7"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no search 7"));
    // A job id that is no job id is named as such, not as a search that does not exist.
    let bad = wasmeval(&["results", "--storage", db, "--job", "abc"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("--job abc: a job id is SEARCH.NUMBER"),
        "{}",
        stderr(&bad)
    );
    // A well-formed id of no job: the typed error, exit 2.
    let unknown = wasmeval(&["results", "--storage", db, "--job", "0.999999"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    assert!(
        stderr(&unknown).contains("unknown job id 0.999999"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn the_default_storage_is_a_sqlite_file_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let input = root().join("examples/configs/ackley.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .args([
            "run",
            guest("ackley").to_str().unwrap(),
            "-i",
            input.to_str().unwrap(),
            "--quiet",
        ])
        .env_remove("WASMEVAL_STORAGE")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let db = dir.path().join("wasmeval.sqlite");
    let jobs = wasmeval::SqliteStorage::open(&db).unwrap();
    use wasmeval::Storage;
    assert_eq!(jobs.load_search("0").unwrap().len(), 41);
}
