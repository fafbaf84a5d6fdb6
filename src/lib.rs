//! # wasmeval
//!
//! Evaluate *run functions* (the objective functions of a hyperparameter search, as
//! DeepHyper's `Evaluator` runs them) compiled to WebAssembly. Every job (one configuration,
//! a JSON object) runs in a fresh, isolated wasmtime instance under limits: wall-clock
//! timeout, memory cap, optional fuel, output caps, and no file, socket or environment
//! access unless granted.
//!
//! The [`Evaluator`] follows DeepHyper's API: [`Evaluator::create`], [`Evaluator::submit`],
//! [`Evaluator::gather`], [`Evaluator::close`], [`Evaluator::to_json`], timeouts, callbacks,
//! a shared [`Storage`] and search ids. Failed jobs are outcomes, with an `"F_<reason>"`
//! objective and a typed [`Failure`].
//!
//! ```no_run
//! use serde_json::json;
//! use wasmeval::{Evaluator, Gather, Method};
//!
//! // A component of the `objective` world (see `wit/objective.wit`), a core module that
//! // wasmeval componentizes at load (see `sandbox::componentize`), or a WASI command.
//! let mut evaluator = Evaluator::builder("ackley.wasm")
//!     .method(Method::Thread)
//!     .num_workers(2)
//!     .job_timeout(std::time::Duration::from_secs(10))
//!     .build()?;
//! evaluator.submit([json!({"x": [0.5, -1.0]}), json!({"x": [2.0, 3.0]})])?;
//! for job in evaluator.gather(Gather::All)?.local {
//!     match &job.failure {
//!         None => println!("{}: {:?}", job.id, job.objective),
//!         Some(failure) => println!("{} failed: {} ({})", job.id, failure.kind, failure.message),
//!     }
//! }
//! evaluator.close();
//! # Ok::<(), wasmeval::Error>(())
//! ```
//!
//! Run functions in Rust, C, C++, Zig, Go, AssemblyScript, JavaScript and Python:
//! `examples/guests/README.md` in the repository.
//!
//! Modules: [`sandbox`] loads and runs modules, [`evaluator`] schedules jobs on a
//! [`backend`], [`storage`] keeps them, [`output`] normalizes results, [`export`] writes
//! DeepHyper's `results.csv`.

#![warn(missing_docs)]

mod agent;
pub mod backend;
mod batch;
pub mod callback;
mod child;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
pub mod error;
pub mod evaluator;
pub mod export;
mod float;
mod input;
mod ipc;
pub mod job;
pub mod monotonic;
pub mod mpi;
mod origin;
pub mod output;
pub mod redis;
mod resume;
mod safe_write;
pub mod sandbox;
pub mod storage;
pub mod summary;
pub mod worker;

pub use backend::Method;
pub use callback::{Callback, CsvLogger};
pub use child::{ChildError, Refused};
pub use error::{Error, Foreign, Result};
pub use evaluator::{Evaluator, EvaluatorBuilder, EvaluatorOptions, Gather, Gathered};
pub use export::Format;
pub use job::{Failure, FailureKind, Job, JobId, JobStatus};
pub use origin::Origin;
pub use output::{Objective, ResultError};
pub use sandbox::compile::CompileError;
pub use sandbox::{CacheDir, DirGrant, LoadedModule, ModuleError, ModuleKind, Policy, RunFunction};
pub use storage::{MemoryStorage, SqliteStorage, Storage};
pub use summary::Summary;

/// What only this repository's command, fuzz targets, benches and tests use: no stable API,
/// and not documented.
#[doc(hidden)]
pub mod internal {
    /// See the crate's `batch` module.
    pub mod batch {
        pub use crate::batch::*;
    }
    /// See the crate's `input` module.
    pub mod input {
        pub use crate::input::*;
    }
    /// See the crate's `resume` module.
    pub mod resume {
        pub use crate::resume::*;
    }
    /// See the crate's `ipc` module.
    pub mod ipc {
        pub use crate::ipc::*;
    }
    pub use crate::worker::decode_frames;
}
