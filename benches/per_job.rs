//! Per-job cost (fresh instance + call + teardown) for each module kind, and compute-bound
//! Rastrigin in wasm against the same Rust code compiled natively.
//!
//! `cargo bench --bench per_job` (builds the example guests first). Figures in BENCHMARKS.md.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use serde_json::json;
use wasmeval::sandbox::{JobControl, JobInput, Signals};
use wasmeval::{CacheDir, LoadedModule, Policy, RunFunction};

#[allow(dead_code)]
#[path = "../tests/it/common.rs"]
mod common;

#[allow(dead_code)]
#[path = "../examples/guests/rust/objectives/src/lib.rs"]
mod objectives;

fn load(path: std::path::PathBuf, policy: &Policy) -> LoadedModule {
    LoadedModule::load(&RunFunction::File(path), policy, &CacheDir::Disabled).unwrap()
}

fn per_job(c: &mut Criterion) {
    let policy = Policy {
        job_timeout: Some(Duration::from_secs(10)),
        ..Policy::default()
    };
    let signals = Arc::new(Signals::default());
    let kwargs: Arc<str> = Arc::from("{}");
    let mut group = c.benchmark_group("per_job");
    let cases = [
        (
            "component_sum",
            common::guest("sum"),
            json!({"x0": 0.5, "x1": 1.5, "x2": -2.0}),
        ),
        (
            "component_ackley_sdk",
            common::guest("ackley"),
            json!({"x": [0.5, 1.5, -2.0]}),
        ),
        (
            "command_component",
            common::guest("command"),
            json!({"x": [0.5, 1.5, -2.0]}),
        ),
        (
            "command_core_p1",
            common::guest_for("command", "wasm32-wasip1"),
            json!({"x": [0.5, 1.5, -2.0]}),
        ),
    ];
    for (name, path, config) in cases {
        let module = load(path, &policy);
        let config = config.to_string();
        group.bench_function(name, |b| {
            b.iter(|| {
                let out = module.run(
                    &policy,
                    JobInput {
                        id: "0.0".into(),
                        config: config.clone(),
                        kwargs: kwargs.clone(),
                        control: Arc::new(JobControl::new(signals.clone())),
                        observer: None,
                    },
                );
                assert!(out.result.is_ok(), "{:?}", out.result);
            })
        });
    }
    group.finish();
}

fn compute_bound(c: &mut Criterion) {
    let policy = Policy {
        job_timeout: Some(Duration::from_secs(60)),
        ..Policy::default()
    };
    let module = load(common::guest("ackley"), &policy);
    let x: Vec<f64> = (0..10).map(|i| (i as f64 - 4.5) * 0.37).collect();
    let repeat = 2_000_000u64;
    let config = json!({"x": x, "repeat": repeat}).to_string();
    let signals = Arc::new(Signals::default());
    let wasm_value = {
        let out = module.run(&policy, input(&config, &signals));
        out.result.unwrap().parse::<f64>().unwrap()
    };
    let native_value = -objectives::rastrigin_repeated(&x, repeat);
    assert_eq!(
        wasm_value, native_value,
        "wasm and native agree bit for bit"
    );
    let mut group = c.benchmark_group("rastrigin_10d_2M");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("wasm_epoch_on_fuel_off", |b| {
        b.iter(|| {
            module
                .run(&policy, input(&config, &signals))
                .result
                .unwrap()
        })
    });
    group.bench_function("native", |b| {
        b.iter(|| objectives::rastrigin_repeated(std::hint::black_box(&x), repeat))
    });
    group.finish();
}

fn input(config: &str, signals: &Arc<Signals>) -> JobInput {
    JobInput {
        id: "0.0".into(),
        config: config.to_string(),
        kwargs: Arc::from("{}"),
        control: Arc::new(JobControl::new(signals.clone())),
        observer: None,
    }
}

criterion_group!(benches, per_job, compute_bound);
fn main() {
    // Modules are compiled by a worker process: this executable is one.
    wasmeval::worker::init();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
