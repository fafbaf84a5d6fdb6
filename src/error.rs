//! The library's error type.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::child::ChildError;

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

impl Foreign {
    /// `e` with its message and causes as `{e:#}` shows them (wasmtime's and anyhow's errors
    /// alike).
    fn of<E>(e: E) -> Foreign
    where
        E: std::fmt::Display + Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        Foreign {
            message: format!("{e:#}"),
            source: e.into(),
        }
    }
}

impl From<wasmtime::Error> for Foreign {
    fn from(e: wasmtime::Error) -> Foreign {
        Foreign::of(e)
    }
}

impl From<anyhow::Error> for Foreign {
    fn from(e: anyhow::Error) -> Foreign {
        Foreign::of(e)
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
    /// results.csv would have more columns than it may (`crate::export::MAX_COLUMNS`).
    #[error(
        "results.csv would have more than {max} columns (the configurations and the run \
         function's metadata have that many distinct keys); export the search as JSON Lines \
         (.jsonl) instead"
    )]
    TooManyColumns {
        /// The columns it would have.
        columns: usize,
        /// The most it may have.
        max: usize,
    },
    /// An input/output error outside the module file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The mpi method cannot run as asked (see [`crate::mpi`]).
    #[error(transparent)]
    Mpi(#[from] MpiError),
    /// A Redis storage, its server or the redis method failed (see [`crate::redis`]).
    #[error(transparent)]
    Redis(#[from] RedisError),
}

/// Why a Redis server cannot be used as asked (see [`crate::redis`]). Every message names
/// the server with its password redacted.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL cannot be read.
    #[error("{url}: {reason}")]
    Url {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file given for the connection cannot be read.
    #[error("{flag} {path}: {source}")]
    File {
        /// The option that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What reading it said.
        #[source]
        source: std::io::Error,
    },
    /// A server off this machine with no password, and no `--insecure`.
    #[error(
        "{server} is not on this machine and no password is given: anyone who can reach it          could make workers run a module; give one (redis://:PASSWORD@host,          $WASMEVAL_REDIS_PASSWORD or --password-file) or pass --insecure"
    )]
    Insecure {
        /// The server, password redacted.
        server: String,
    },
    /// The server refused the credentials.
    #[error("{server}: the server refused the password or user: {source}")]
    Auth {
        /// The server, password redacted.
        server: String,
        /// What the client said.
        #[source]
        source: redis::RedisError,
    },
    /// The server cannot be reached, or a command failed.
    #[error("{server}: {source}")]
    Server {
        /// The server, password redacted.
        server: String,
        /// What the client said.
        #[source]
        source: redis::RedisError,
    },
    /// The key space under the prefix is not one this version can use.
    #[error("{server}: the keys under prefix `{prefix}`: {reason}")]
    KeySpace {
        /// The server, password redacted.
        server: String,
        /// The key prefix.
        prefix: String,
        /// What they hold instead.
        reason: String,
    },
    /// `--method redis` without a Redis storage.
    #[error(
        "--method redis needs a Redis storage (--storage redis://host:port); the workers take \
         jobs from it and store their outcomes there"
    )]
    NeedsRedisStorage,
    /// A worker granting a directory or an environment variable without `--allow-module`.
    #[error(
        "a worker with --dir or --env grants runs only the modules given with --allow-module \
         SHA256: whoever can write to the Redis server could otherwise make it run any module \
         with those grants"
    )]
    GrantsWithoutAllowList,
    /// Every search a worker was told to serve refused it.
    #[error("{0}")]
    Refused(String),
}

/// Why the mpi method cannot be used as asked (see [`crate::mpi`]).
#[derive(Debug, thiserror::Error)]
pub enum MpiError {
    /// This build has no MPI.
    #[error(
        "--method mpi: this wasmeval was built without MPI; build it with `--features mpi` \
         (see the README)"
    )]
    NotBuilt,
    /// [`init`] was not called, or this is not rank 0.
    #[error("the mpi method needs MPI started on rank 0: call wasmeval::mpi::init() first in main")]
    NotInitialized,
    /// Started without a launcher: this process is the only rank.
    #[error(
        "--method mpi was started without an MPI launcher (this is the only rank): start it as \
         `mpirun -n N wasmeval run ...` or `srun -n N wasmeval run ...` with N >= 2 (rank 0 \
         evaluates, the other ranks run the jobs)"
    )]
    NoLauncher,
    /// Started by a launcher of another MPI: every rank runs alone.
    #[error(
        "--method mpi was started by {launcher} (a job of {size} ranks), but this wasmeval is \
         linked to {library}, so every rank runs alone: launch it with the mpirun of the MPI it \
         was built against, or rebuild it against this one (MPICC=...)"
    )]
    Mismatch {
        /// The launcher the environment names.
        launcher: String,
        /// The number of ranks it started.
        size: usize,
        /// The MPI library this binary is linked to.
        library: String,
    },
    /// MPI cannot give the threading this program needs.
    #[error("MPI gives threading level {0}, and wasmeval needs at least serialized")]
    Threading(String),
    /// Another evaluator of this process runs its jobs on the agents.
    #[error(
        "another evaluator of the mpi method is running in this process: the agents serve one \
         at a time; close it first"
    )]
    Busy,
    /// An agent rank could not start its pool.
    #[error("MPI rank {rank}: {message}")]
    Agent {
        /// The rank.
        rank: i32,
        /// What it reported.
        message: String,
    },
}

impl Error {
    /// The error of a wasmtime call, as an [`Error::Engine`].
    pub(crate) fn engine(e: wasmtime::Error) -> Error {
        Error::Engine { source: e.into() }
    }
}

/// Why a module cannot be used as a run function. [`crate::Error::Module`] names its file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    /// `.wat` text that does not parse.
    #[error("invalid WebAssembly text: {0}")]
    Text(#[source] wat::Error),
    /// Neither a binary nor text; what the file starts with.
    #[error(
        "not WebAssembly: the file starts with {0}; expected a .wasm binary (\\0asm) or .wat text"
    )]
    NotWasm(String),
    /// A binary of an unknown version; its version bytes.
    #[error(
        "unknown WebAssembly binary version {0:02x?}; expected a core module (01 00 00 00) or a \
         component (0d 00 01 00)"
    )]
    Version(Vec<u8>),
    /// A binary that does not parse.
    #[error("invalid WebAssembly: {0}")]
    Invalid(#[source] wasmparser::BinaryReaderError),
    /// Componentizing or compiling failed (see [`CompileError`]).
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The compiled code could not be loaded.
    #[error("cannot load the compiled code: {0}")]
    Load(#[source] Foreign),
    /// One instance needs more than the whole instance pool.
    #[error(
        "too big for the instance pool: one instance needs {} core instances, {} memories and {} \
         tables; the pool holds {}, {} and {}",
        needs[0], needs[1], needs[2], pool[0], pool[1], pool[2]
    )]
    TooBigForPool {
        /// Core instances, memories and tables one instance needs.
        needs: [u32; 3],
        /// Core instances, memories and tables the pool holds.
        pool: [u32; 3],
    },
    /// A core module with neither `_start` nor a canonical-ABI `run`; its exports.
    #[error(
        "a core module that exports neither `_start` nor `run` with `cabi_realloc` (exports: {}); \
         expected a WASI command (`_start`), a core module exporting the canonical-ABI `run` and \
         `cabi_realloc` (componentized at load), or a component exporting `run`",
        list(.0)
    )]
    NoEntry(Vec<String>),
    /// A component without `run` or `wasi:cli/run`; its exports.
    #[error(
        "a component that exports neither `run` nor `wasi:cli/run` (exports: {}); expected the \
         `objective` world (`run: func(config: string) -> result<string, string>`) or a WASI \
         command",
        list(.0)
    )]
    NoRun(Vec<String>),
    /// A component whose `run` has another type.
    #[error(
        "the component exports `run` with the wrong type; expected \
         `run: func(config: string) -> result<string, string>`"
    )]
    WrongRunType,
    /// The `wasi:cli/run` export cannot be called.
    #[error("the `wasi:cli/run` export is not usable: {0}")]
    CommandUnusable(#[source] Foreign),
    /// An import that the host does not provide.
    #[error(
        "it imports something wasmeval does not provide (only WASI and `wasmeval:objective/job` \
         are): {0}"
    )]
    Imports(#[source] Foreign),
    /// A [`crate::sandbox::ModuleHandle`]'s bytes are not the ones its sha256 names.
    #[error("the module's bytes have sha256 {found}, and the handle names {expected}")]
    Digest {
        /// The sha256 the handle names.
        expected: String,
        /// The sha256 of the bytes it carries.
        found: String,
    },
    /// The host's own functions could not be added to the linker (a defect of this build).
    #[error("cannot link the host's functions: {0}")]
    Linker(#[source] Foreign),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a module could not be compiled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The compiling child could not be started.
    #[error(transparent)]
    Start(#[from] ChildError),
    /// Compiling used more CPU time than the policy's `compile_timeout`.
    #[error(
        "compiling used more than {seconds} s of CPU; the module is refused (the limit is \
         --compile-timeout, Policy::compile_timeout in the library)"
    )]
    CpuTime {
        /// The limit, in whole seconds.
        seconds: u64,
    },
    /// Compiling took longer than its wall-clock backstop (a multiple of the policy's
    /// `compile_timeout`: see `sandbox::compile::WALL_FACTOR`).
    #[error(
        "compiling took longer than {0:?} of wall-clock time, the backstop of --compile-timeout \
         (the machine may be overloaded); the module is refused"
    )]
    Timeout(Duration),
    /// An allocation was refused under the policy's `compile_memory` limit.
    #[error(
        "the compiler process ran out of memory within the address-space limit of {limit_mib} MiB; \
         the module is too big to compile: {message}"
    )]
    OutOfMemory {
        /// The limit, in MiB.
        limit_mib: usize,
        /// What the compiler said.
        message: String,
    },
    /// The compiling child died without an answer (under the limit, an allocation failure
    /// aborts it).
    #[error(
        "the compiler process failed ({status}) within the address-space limit of {limit_mib} MiB; \
         the module is too big to compile{}",
        colon(stderr)
    )]
    Died {
        /// How it ended.
        status: std::process::ExitStatus,
        /// The limit, in MiB.
        limit_mib: usize,
        /// What it wrote on its standard error.
        stderr: String,
    },
    /// The compiling child refused the module.
    #[error(transparent)]
    Refused(Refusal),
    /// Waiting for the compiling child failed.
    #[error("cannot wait for the compiler process: {0}")]
    Wait(#[source] std::io::Error),
}

fn colon(detail: &str) -> String {
    match detail.trim() {
        "" => String::new(),
        d => format!(": {d}"),
    }
}

/// What the compiling child answers when it refuses a module. It crosses a process boundary,
/// so the reason is the child's message; the kind is kept.
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The module could not be componentized (see
    /// [`crate::sandbox::componentize::ComponentizeError`]).
    #[error("{0}")]
    Componentize(String),
    /// wasmtime refused to compile it.
    #[error("invalid WebAssembly: {0}")]
    Invalid(String),
    /// An allocation failed under the address-space limit.
    #[error("{0}")]
    OutOfMemory(String),
    /// The compiling engine could not be created.
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(String),
}

impl Refusal {
    /// A wasmtime error as a refusal of kind `kind`, or [`Refusal::OutOfMemory`] when an
    /// allocation failed under the limit (wasmtime's `OutOfMemory`, or an `ENOMEM` anywhere
    /// in its chain).
    pub(crate) fn of(e: wasmtime::Error, kind: fn(String) -> Refusal) -> Refusal {
        let oom = e.is::<wasmtime::OutOfMemory>()
            || e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| {
                    io.kind() == std::io::ErrorKind::OutOfMemory
                        || io.raw_os_error() == Some(rustix::io::Errno::NOMEM.raw_os_error())
                })
            });
        let message = format!("{e:#}");
        if oom {
            Refusal::OutOfMemory(message)
        } else {
            kind(message)
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
