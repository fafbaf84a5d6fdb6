//! Ackley in n dimensions: `{"x": [..]}`, or DeepHyper's flat parameters `{"x0": .., "x1": ..}`,
//! → `-ackley(x)`; with `"repeat": N`, a compute-bound Rastrigin over N evaluations instead. No
//! coordinate is an error. Each job logs a line through the `job` interface.

use std::collections::BTreeMap;

use serde::Deserialize;
use wasmeval_guest::job;

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    x: Vec<f64>,
    #[serde(default)]
    repeat: Option<u64>,
    /// `x0`, `x1`, ... when `x` is not given.
    #[serde(flatten)]
    flat: BTreeMap<String, f64>,
}

fn run(mut config: Config) -> Result<f64, String> {
    if config.x.is_empty() {
        config.x = (0..)
            .map_while(|i| config.flat.get(&format!("x{i}")).copied())
            .collect();
    }
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
