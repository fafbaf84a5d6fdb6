//! The run function of the README's "Writing a run function", as it is shown there (the tests
//! run it, so that the snippet keeps working).

use wasmeval_guest::{Config, job};

fn run(config: Config) -> Result<f64, String> {
    let x = config.f64("x")?; // a missing or non-numeric "x" fails the job with the reason
    job::log(&format!("x = {x}"));
    Ok(-x * x) // DeepHyper maximizes
}

wasmeval_guest::export_run!(run);
