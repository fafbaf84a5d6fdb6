//! The library's error type.

use std::path::PathBuf;

use crate::child::ChildError;
use crate::sandbox::ModuleError;

/// An error of wasmtime or `wit-component`, shown with its whole chain of causes.
#[derive(Debug)]
pub struct Foreign {
    message: String,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Foreign {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

impl From<wasmtime::Error> for Foreign {
    fn from(e: wasmtime::Error) -> Foreign {
        Foreign {
            message: format!("{e:#}"),
            source: e.into(),
        }
    }
}

impl From<anyhow::Error> for Foreign {
    fn from(e: anyhow::Error) -> Foreign {
        Foreign {
            message: format!("{e:#}"),
            source: e.into(),
        }
    }
}

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
    #[error("{path}: {source}")]
    Module {
        /// The module's path (or `<bytes>` for modules given as bytes).
        path: PathBuf,
        /// What was found, and what was expected.
        #[source]
        source: ModuleError,
    },
    /// The wasmtime engine (and its pooling allocator) could not be created.
    #[error("cannot create the wasmtime engine: {source}")]
    Engine {
        /// What wasmtime said.
        #[source]
        source: Foreign,
    },
    /// A child process (a worker, or the compiler) could not be started or refused to work.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// An invalid option was given to the evaluator.
    #[error("invalid option: {0}")]
    Option(String),
    /// `submit` would go past the limit set by `set_maximum_num_jobs_submitted`.
    #[error("the maximum number of submitted jobs ({0}) is reached")]
    MaximumJobsSpawnReached(usize),
    /// The given search id does not exist in the storage.
    #[error("the given search_id={0} does not exist in the linked storage")]
    UnknownSearch(String),
    /// The given job id does not exist in the storage.
    #[error("unknown job id {0}")]
    UnknownJob(String),
    /// A search cannot be resumed as asked (another module or policy).
    #[error("cannot resume: {0}")]
    Resume(String),
    /// `gather(Batch(n))` was called with no job pending.
    #[error("no jobs pending, call Evaluator::submit first")]
    NoJobsPending,
    /// The storage file failed.
    #[error("storage: {path}: {source}")]
    Storage {
        /// The storage file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The storage file is not one this version can use.
    #[error("storage: {path}: {reason}")]
    StorageFormat {
        /// The storage file.
        path: PathBuf,
        /// What it holds instead.
        reason: String,
    },
    /// results.csv would have this many columns, more than [`crate::export::MAX_COLUMNS`].
    #[error(
        "results.csv would have more than {max} columns (the configurations and the run \
         function's metadata have that many distinct keys); export the search as JSON Lines \
         (.jsonl) instead",
        max = crate::export::MAX_COLUMNS
    )]
    TooManyColumns(usize),
    /// An input/output error outside the module file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The error of a wasmtime call, as an [`Error::Engine`].
    pub(crate) fn engine(e: wasmtime::Error) -> Error {
        Error::Engine { source: e.into() }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
