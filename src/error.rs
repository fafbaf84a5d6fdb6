//! The library's error type.

use std::path::PathBuf;

/// Everything that can go wrong outside a job. A job's own failures (timeout, trap, memory
/// limit, ...) are not errors: they are outcomes, see [`crate::Failure`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The module file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The module's path.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The module was read but cannot be used as a run function.
    #[error("{path}: {reason}")]
    Module {
        /// The module's path (or `<bytes>` for modules given as bytes).
        path: PathBuf,
        /// What was found, and what was expected.
        reason: String,
    },
    /// The sandbox could not be set up (engine, pooling allocator, compile cache).
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// An invalid option was given to the evaluator.
    #[error("invalid option: {0}")]
    Option(String),
    /// `submit` would go past the limit set by `set_maximum_num_jobs_submitted`.
    #[error("the maximum number of submitted jobs ({0}) is reached")]
    MaximumJobsSpawnReached(usize),
    /// The given search id does not exist in the storage.
    #[error("the given search_id={0} does not exist in the linked storage")]
    UnknownSearch(String),
    /// A search cannot be resumed as asked (another module or policy).
    #[error("cannot resume: {0}")]
    Resume(String),
    /// `gather(Batch(n))` was called with no job pending.
    #[error("no jobs pending, call Evaluator::submit first")]
    NoJobsPending,
    /// The storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// An input/output error outside the module file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
