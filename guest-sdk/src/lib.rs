//! Write wasmeval run functions in Rust.
//!
//! A run function takes a configuration (any `serde` type, or [`Config`]) and returns an
//! objective (a number, or anything that serializes to a valid result) or an error message:
//!
//! ```ignore
//! use wasmeval_guest::{Config, job};
//!
//! fn run(config: Config) -> Result<f64, String> {
//!     let x = config["x"].as_f64().ok_or("x must be a number")?;
//!     job::log(&format!("x = {x}"));
//!     Ok(-x * x)
//! }
//!
//! wasmeval_guest::export_run!(run);
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip2`: `cargo build --release --target wasm32-wasip2`.
//! The result is a component of the `objective` world in `wit/objective.wit`. Built for
//! `wasm32-wasip1` instead, it is a core module carrying its component type, which wasmeval
//! componentizes at load. The walkthrough is in `examples/guests/README.md`.

use std::fmt::Display;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use serde_json::{Map, Value, json};

/// A configuration as a JSON object.
pub type Config = Map<String, Value>;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "objective",
        pub_export_macro: true,
        export_macro_name: "__export_objective",
        default_bindings_module: "wasmeval_guest::bindings",
    });
}

/// The host's `job` interface: the job's id and kwargs, intermediate results, stop requests
/// and the log.
pub mod job {
    use super::bindings::wasmeval::objective::job as host;

    /// The job id, `"<search>.<n>"`.
    pub fn id() -> String {
        host::id()
    }

    /// The evaluator's run-function kwargs (a JSON object).
    pub fn kwargs() -> serde_json::Value {
        serde_json::from_str(&host::kwargs()).unwrap_or_default()
    }

    /// Reports an intermediate objective at `budget` (multi-fidelity). At most 10,000 calls.
    pub fn record(budget: f64, objective: f64) {
        host::record(budget, objective)
    }

    /// True once the job should stop early (deadline near, cancelled, or closing).
    pub fn stopped() -> bool {
        host::stopped()
    }

    /// Adds a line to the job's log.
    pub fn log(message: &str) {
        host::log(message)
    }
}

/// Runs `f` on a configuration given as JSON text and serializes its result: what the
/// [`export_run!`] glue calls.
pub fn run_json<C, R, E>(config: &str, f: impl FnOnce(C) -> Result<R, E>) -> Result<String, String>
where
    C: DeserializeOwned,
    R: Serialize,
    E: Display,
{
    let config: C =
        serde_json::from_str(config).map_err(|e| format!("invalid configuration: {e}"))?;
    let result = f(config).map_err(|e| e.to_string())?;
    serde_json::to_string(&result).map_err(|e| format!("cannot serialize the result: {e}"))
}

/// Exports `f: fn(C) -> Result<R, E>` as the component's `run` function, where `C` is
/// deserialized from the configuration, `R` serializes to the result and `E` is the message
/// of a failed job.
#[macro_export]
macro_rules! export_run {
    ($f:path) => {
        struct __WasmevalRun;
        impl $crate::bindings::Guest for __WasmevalRun {
            fn run(config: String) -> Result<String, String> {
                $crate::run_json(&config, $f)
            }
        }
        $crate::bindings::__export_objective!(__WasmevalRun with_types_in $crate::bindings);
    };
}
