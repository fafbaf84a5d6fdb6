//! Ackley in n dimensions: `{"x": [..]}` → `-ackley(x)`; with `"repeat": N`, a compute-bound
//! Rastrigin over N evaluations instead. An empty `x` is an error. Each job logs a line through
//! the `job` interface.

use serde::Deserialize;
use wasmeval_guest::job;

#[derive(Deserialize)]
struct Config {
    x: Vec<f64>,
    #[serde(default)]
    repeat: Option<u64>,
}

fn run(config: Config) -> Result<f64, String> {
    if config.x.is_empty() {
        return Err("x must hold at least one coordinate".into());
    }
    job::log(&format!("ackley in Rust, job {}", job::id()));
    Ok(match config.repeat {
        Some(n) => -objectives::rastrigin_repeated(&config.x, n),
        None => -objectives::ackley(&config.x),
    })
}

wasmeval_guest::export_run!(run);
