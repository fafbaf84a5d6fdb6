//! wasmeval
pub mod backend;
pub mod callback;
pub mod cli;
pub mod error;
pub mod evaluator;
pub mod export;
pub mod input;
pub mod job;
pub mod output;
pub mod sandbox;
pub mod storage;

pub use backend::Method;
pub use callback::Callback;
pub use error::{Error, Result};
pub use evaluator::{Evaluator, EvaluatorBuilder, EvaluatorOptions, Gather, Gathered};
pub use job::{Failure, FailureKind, Job, JobId, JobStatus};
pub use output::Objective;
pub use sandbox::{CacheDir, DirGrant, LoadedModule, ModuleKind, Policy, RunFunction};
pub use storage::{MemoryStorage, Storage};
