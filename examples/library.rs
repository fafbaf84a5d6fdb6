//! The README's library example, as it is shown there (CI runs it with an empty compile cache;
//! a test checks that the two agree). Build the guest first:
//!
//! ```text
//! (cd examples/guests/rust && cargo build --release --target wasm32-wasip2 -p ackley)
//! cargo run --example library
//! ```

use serde_json::json;
use wasmeval::{Evaluator, Gather, Method};

fn main() -> Result<(), wasmeval::Error> {
    // First thing: compiling a module and the process method re-run this program as a worker.
    wasmeval::worker::init();
    let guest = "examples/guests/rust/target/wasm32-wasip2/release/ackley.wasm";
    let mut evaluator = Evaluator::builder(guest)
        .method(Method::Thread)
        .num_workers(2)
        .job_timeout(std::time::Duration::from_secs(5))
        .memory_limit(64 << 20)
        .build()?; // a bad module is refused here, with the reason
    evaluator.submit([json!({"x": [0.0, 0.0]}), json!({"x": [1.5, -2.0]})])?; // jobs start now
    for job in evaluator.gather(Gather::All)?.local {
        println!("{} {:?} {:?}", job.id, job.objective, job.failure);
    }
    evaluator.close();
    Ok(())
}
