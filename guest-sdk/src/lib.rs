//! Write wasmeval run functions in Rust.
//!
//! A run function takes a configuration (any `serde` type, or [`Config`]) and returns an
//! objective (a number, or anything that serializes to a valid result) or an error message:
//!
//! ```ignore
//! use wasmeval_guest::{Config, job};
//!
//! fn run(config: Config) -> Result<f64, String> {
//!     let x = config.f64("x")?;          // a missing or non-numeric "x" fails the job
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

/// A configuration: a JSON object, read through accessors that return a [`ConfigError`]
/// (never a panic, which would trap the job) for a missing key or a value of another type.
/// The `?` operator turns it into the job's error message.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, Serialize)]
#[serde(transparent)]
pub struct Config(pub Map<String, Value>);

/// Why a configuration value cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// The key is not in the configuration.
    Missing(String),
    /// The key holds another kind of value: the key, what was expected, what was found.
    Type(String, &'static str, Value),
}

impl Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Missing(key) => write!(f, "the configuration has no \"{key}\""),
            ConfigError::Type(key, expected, found) => {
                write!(f, "\"{key}\" must be {expected}, found {found}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for String {
    fn from(e: ConfigError) -> String {
        e.to_string()
    }
}

impl Config {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Result<&Value, ConfigError> {
        self.0
            .get(key)
            .ok_or_else(|| ConfigError::Missing(key.into()))
    }

    /// The value of `key`, if the configuration has it.
    pub fn maybe(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let value = self.get(key)?;
        read(value).ok_or_else(|| ConfigError::Type(key.into(), expected, value.clone()))
    }

    /// The number at `key`.
    pub fn f64(&self, key: &str) -> Result<f64, ConfigError> {
        self.typed(key, "a number", Value::as_f64)
    }

    /// The integer at `key`.
    pub fn i64(&self, key: &str) -> Result<i64, ConfigError> {
        self.typed(key, "an integer", Value::as_i64)
    }

    /// The boolean at `key`.
    pub fn bool(&self, key: &str) -> Result<bool, ConfigError> {
        self.typed(key, "true or false", Value::as_bool)
    }

    /// The string at `key`.
    pub fn str(&self, key: &str) -> Result<&str, ConfigError> {
        self.typed(key, "a string", Value::as_str)
    }

    /// The list of numbers at `key`.
    pub fn f64s(&self, key: &str) -> Result<Vec<f64>, ConfigError> {
        self.typed(key, "a list of numbers", |v| {
            v.as_array()?.iter().map(Value::as_f64).collect()
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_return_errors_instead_of_panicking() {
        let c: Config =
            serde_json::from_str(r#"{"x": 1.5, "n": 3, "s": "a", "v": [1, 2.5]}"#).unwrap();
        assert_eq!(c.f64("x"), Ok(1.5));
        assert_eq!(c.i64("n"), Ok(3));
        assert_eq!(c.str("s"), Ok("a"));
        assert_eq!(c.f64s("v"), Ok(vec![1.0, 2.5]));
        assert_eq!(c.f64("y"), Err(ConfigError::Missing("y".into())));
        assert_eq!(
            String::from(c.f64("s").unwrap_err()),
            "\"s\" must be a number, found \"a\""
        );
        let run = |c: Config| -> Result<f64, String> { Ok(c.f64("missing")?) };
        assert_eq!(run(c).unwrap_err(), "the configuration has no \"missing\"");
    }
}
