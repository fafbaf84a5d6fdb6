//! Ackley in n dimensions: `{"x": [..]}` → `-ackley(x)`; with `"repeat": N`, a compute-bound
//! Rastrigin over N evaluations instead. A negative dimension count is an error.

use serde::Deserialize;

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
    Ok(match config.repeat {
        Some(n) => -objectives::rastrigin_repeated(&config.x, n),
        None => -objectives::ackley(&config.x),
    })
}

wasmeval_guest::export_run!(run);
