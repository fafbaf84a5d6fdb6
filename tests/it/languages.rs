//! Run functions in eight languages agree: every example guest (`examples/guests/<language>/`,
//! built by its `build.sh`) runs through the real `wasmeval run` under the default sandbox
//! policy over the same configurations, and all return the same objectives and fail the same
//! way. `WASMEVAL_GUEST_LANGUAGES=rust,c` narrows the languages (all eight by default).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::{build_step, root};

const LANGUAGES: [&str; 8] = [
    "rust",
    "c",
    "cpp",
    "zig",
    "go",
    "assemblyscript",
    "javascript",
    "python",
];

/// The languages whose objective run functions log `ackley in <language>, job <id>` through the
/// `job` interface (the C++ example does not log).
const LOGS_JOB_ID: [&str; 7] = [
    "rust",
    "c",
    "zig",
    "go",
    "assemblyscript",
    "javascript",
    "python",
];

/// The error every Ackley guest returns for `{"x": []}`.
const EMPTY_X: &str = "x must hold at least one coordinate";

fn languages() -> Vec<String> {
    match std::env::var("WASMEVAL_GUEST_LANGUAGES") {
        Ok(list) if !list.trim().is_empty() => {
            list.split(',').map(|l| l.trim().to_string()).collect()
        }
        _ => LANGUAGES.iter().map(|l| l.to_string()).collect(),
    }
}

/// Builds the guests of [`languages`] (once per test run) and returns every artifact, with its
/// language.
fn artifacts() -> &'static [(String, PathBuf)] {
    static BUILT: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    BUILT.get_or_init(|| build(&languages()))
}

fn build(languages: &[String]) -> Vec<(String, PathBuf)> {
    build_step(
        Command::new("bash")
            .arg(root().join("examples/guests/build.sh"))
            .args(languages),
        "building the guests",
    );
    let mut artifacts = Vec::new();
    for language in languages {
        let dir = root().join("examples/guests").join(language).join("out");
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        found.sort();
        assert!(
            found.iter().any(|p| p.ends_with("ackley.wasm")),
            "{language}: no out/ackley.wasm after its build.sh"
        );
        artifacts.extend(found.into_iter().map(|p| (language.clone(), p)));
    }
    artifacts
}

fn ackley(x: &[f64]) -> f64 {
    use std::f64::consts::{E, PI};
    let n = x.len() as f64;
    let sum_sq: f64 = x.iter().map(|v| v * v).sum();
    let sum_cos: f64 = x.iter().map(|v| (2.0 * PI * v).cos()).sum();
    -20.0 * (-0.2 * (sum_sq / n).sqrt()).exp() - (sum_cos / n).exp() + 20.0 + E
}

/// Runs `wasm` over the agreement configurations with the CLI's defaults; the results in
/// input order.
fn evaluate(wasm: &Path, input: &Path, output: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .arg("run")
        .arg(wasm)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .env("WASMEVAL_STORAGE", "memory")
        .output()
        .expect("run wasmeval");
    assert!(
        out.status.success(),
        "{}: wasmeval run failed:\n{}",
        wasm.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut jobs: Vec<Value> = std::fs::read_to_string(output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    jobs.sort_by_key(|j| j["metadata"]["_input_pos"].as_u64());
    jobs
}

#[test]
fn every_language_computes_the_same_objectives_and_fails_the_same_way() {
    let input = root().join("examples/guests/agreement.jsonl");
    let configs: Vec<Value> = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    for (language, wasm) in artifacts() {
        let name = format!("{language}/{}", wasm.file_name().unwrap().to_string_lossy());
        let command = name.contains("command");
        let jobs = evaluate(wasm, &input, &dir.path().join("out.jsonl"));
        assert_eq!(
            jobs.len(),
            configs.len(),
            "{name}: one result per configuration"
        );
        for (config, job) in configs.iter().zip(&jobs) {
            let context = format!("{name} on {config}: {job}");
            assert_eq!(job["status"], "DONE", "{context}");
            let x: Option<Vec<f64>> = config.get("x").map(|x| {
                x.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            });
            match &x {
                Some(x) if !x.is_empty() => {
                    let want = -ackley(x);
                    let got = job["objective"].as_f64().unwrap_or(f64::NAN);
                    assert!(
                        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                        "{context}: objective {got}, expected {want}"
                    );
                    // The `job` imports reach the host: the run function's log line names
                    // the job, through `log` and `id`.
                    if !command && LOGS_JOB_ID.contains(&language.as_str()) {
                        let line = format!("job {}", job["job_id"].as_str().unwrap());
                        let log = job["log"].as_str().unwrap_or_default();
                        assert!(
                            log.contains(&line),
                            "{context}: expected {line:?} in the log"
                        );
                    }
                }
                _ => {
                    assert_eq!(job["objective"], "F_guest_error", "{context}");
                    assert_eq!(job["metadata"]["failure"], "guest_error", "{context}");
                }
            }
            if x.as_deref() == Some(&[]) {
                // Objective run functions return the message; commands print it on stderr,
                // which becomes the job's log.
                let said = if command {
                    job["log"].as_str().unwrap_or_default()
                } else {
                    job["metadata"]["failure_message"]
                        .as_str()
                        .unwrap_or_default()
                };
                assert!(said.contains(EMPTY_X), "{context}: expected {EMPTY_X:?}");
            }
        }
        checked.push(name);
    }
    eprintln!("agreeing guests: {}", checked.join(", "));
}

#[test]
fn core_modules_are_componentized_at_load_and_inspect_says_so() {
    let core = ["rust", "c", "go"];
    for (language, wasm) in artifacts() {
        if !core.contains(&language.as_str()) {
            continue;
        }
        let name = wasm.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains("command") || (language == "rust" && name == "ackley.wasm") {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
            .args(["inspect", "--json"])
            .arg(wasm)
            .output()
            .unwrap();
        assert!(out.status.success(), "{language}/{name}: {out:?}");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["binary"], "core module", "{language}/{name}");
        let how = report["componentized"].as_str().unwrap_or_default();
        assert!(
            how.contains("componentized at load"),
            "{language}/{name}: {report}"
        );
        let expected = if language == "rust" {
            "its own component type information"
        } else {
            "wasmeval's `objective` world"
        };
        assert!(how.contains(expected), "{language}/{name}: {how}");
        assert!(how.contains("reactor adapter"), "{language}/{name}: {how}");
        assert!(
            report["kind"]
                .as_str()
                .unwrap()
                .starts_with("objective component"),
            "{language}/{name}: {report}"
        );
    }
}
