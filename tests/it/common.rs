//! Shared helpers: building the example guests once, and evaluators over them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use wasmeval::{CacheDir, Evaluator, EvaluatorBuilder, Gather, Job, Method};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A `.wat` fixture.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

fn guests_dir() -> PathBuf {
    root().join("examples/guests/rust")
}

/// Builds the example guests (once per test run) and returns the path of `name` built for
/// `target` (`wasm32-wasip2`, or `wasm32-wasip1` for the preview1 command).
pub fn guest_for(name: &str, target: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        for args in [
            vec!["build", "--release", "--target", "wasm32-wasip2"],
            vec![
                "build",
                "--release",
                "--target",
                "wasm32-wasip1",
                "-p",
                "command",
            ],
        ] {
            build_step(
                Command::new(&cargo)
                    .args(&args)
                    .args(["--target-dir", "target"])
                    .current_dir(guests_dir()),
                "building the example guests",
            );
        }
    });
    guests_dir()
        .join("target")
        .join(target)
        .join("release")
        .join(format!("{name}.wasm"))
}

/// Runs a step that builds guests (without the host's `RUSTFLAGS`) and fails the test with its
/// stderr if the step fails.
pub fn build_step(command: &mut Command, what: &str) {
    let out = command
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An example guest built as a component (`wasm32-wasip2`).
pub fn guest(name: &str) -> PathBuf {
    guest_for(name, "wasm32-wasip2")
}

/// A builder for `module` with a private compile cache, so tests do not share state.
pub fn builder(module: impl Into<PathBuf>) -> EvaluatorBuilder {
    Evaluator::builder(module.into()).cache(CacheDir::Disabled)
}

/// Runs one configuration through `module` under the builder's settings and returns the job.
pub fn run_one(b: EvaluatorBuilder, config: Value) -> Job {
    let mut e = b.build().expect("create the evaluator");
    e.submit([config]).unwrap();
    let mut jobs = e.gather(Gather::All).unwrap().local;
    assert_eq!(jobs.len(), 1);
    jobs.remove(0)
}

/// The methods every evaluator test runs against.
pub const METHODS: [Method; 3] = [Method::Serial, Method::Thread, Method::Process];

/// A generous bound for "stops well within".
pub const WITHIN: Duration = Duration::from_secs(10);

/// The metadata value `key` of `job`.
pub fn meta<'a>(job: &'a Job, key: &str) -> &'a Value {
    job.metadata.get(key).unwrap_or(&Value::Null)
}

/// A module of `n` functions, each a long chain of arithmetic: slow and big to compile.
pub fn heavy_module(n: usize) -> String {
    let body = "(local.set 0 (i64.mul (i64.add (local.get 0) (i64.const 7)) (i64.const 13)))\n"
        .repeat(200);
    let mut wat = String::from("(module\n");
    for i in 0..n {
        wat.push_str(&format!(
            "(func $f{i} (param i64) (result i64) {body} (local.get 0))\n"
        ));
    }
    wat.push_str("(func (export \"_start\")))\n");
    wat
}
