//! A multi-fidelity run function: trains for up to `epochs` epochs (each `epoch_ms` long),
//! records the objective after each one, and stops early when the host asks.

use serde::Deserialize;
use wasmeval_guest::{job, json, Value};

#[derive(Deserialize)]
struct Config {
    lr: f64,
    #[serde(default = "ten")]
    epochs: u32,
    #[serde(default)]
    epoch_ms: u64,
}

fn ten() -> u32 {
    10
}

fn run(config: Config) -> Result<Value, String> {
    let mut objective = 0.0;
    let mut done = 0;
    for epoch in 1..=config.epochs {
        if job::stopped() {
            job::log(&format!("stopped early after {done} epochs"));
            break;
        }
        if config.epoch_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(config.epoch_ms));
        }
        objective = 1.0 - (-config.lr * f64::from(epoch)).exp();
        job::record(f64::from(epoch), objective);
        done = epoch;
    }
    Ok(json!({"objective": objective, "metadata": {"epochs": done, "job": job::id()}}))
}

wasmeval_guest::export_run!(run);
