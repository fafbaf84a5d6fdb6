//! Evaluate the Ackley example guest on a few configurations with two worker threads.
//!
//! Build the guest, then run this example:
//!
//! ```text
//! (cd examples/guests/rust && cargo build --release --target wasm32-wasip2 -p ackley)
//! cargo run --release --example quickstart
//! ```

use serde_json::json;
use wasmeval::{Evaluator, Gather, Method};

fn main() -> Result<(), wasmeval::Error> {
    // Worker processes (compiling, and the process method) re-run this executable.
    wasmeval::worker::init();
    let guest = "examples/guests/rust/target/wasm32-wasip2/release/ackley.wasm";
    let mut evaluator = Evaluator::builder(guest)
        .method(Method::Thread)
        .num_workers(2)
        .job_timeout(std::time::Duration::from_secs(5))
        .build()?;
    println!(
        "loaded {} as {}",
        evaluator.module().name.display(),
        evaluator.module().kind
    );
    evaluator.submit([
        json!({"x": [0.0, 0.0]}),
        json!({"x": [1.5, -2.0]}),
        json!({"x": [3.0, 0.5, -1.0]}),
        json!({"x": []}),
    ])?;
    for job in evaluator.gather(Gather::All)?.local {
        match &job.failure {
            None => println!(
                "{} x={} -> {:.6}",
                job.id,
                job.config["x"],
                job.value().unwrap_or(f64::NAN)
            ),
            Some(f) => println!(
                "{} x={} -> failed ({}): {}",
                job.id, job.config["x"], f.kind, f.message
            ),
        }
    }
    evaluator.close();
    Ok(())
}
