//! Evaluator options (DeepHyper's `method_kwargs` plus the sandbox policy) and a builder.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::backend::Method;
use crate::callback::Callback;
use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::sandbox::{CacheDir, DirGrant, Policy, RunFunction};
use crate::storage::Storage;

/// What DeepHyper's `method_kwargs` hold, plus the sandbox policy and the compile cache.
pub struct EvaluatorOptions {
    /// Number of workers (threads or processes); `serial` always uses one. Default: the
    /// number of cores.
    pub num_workers: Option<usize>,
    /// Hooks called on submit, done, gather and close.
    pub callbacks: Vec<Box<dyn Callback>>,
    /// Passed to every job as JSON (`job.kwargs()`, or `WASMEVAL_KWARGS` for commands).
    pub run_function_kwargs: Map<String, Value>,
    /// Where jobs are stored; a fresh [`crate::MemoryStorage`] when `None`.
    pub storage: Option<Arc<dyn Storage>>,
    /// Join this existing search instead of creating one.
    pub search_id: Option<String>,
    /// Per-job limits and grants.
    pub policy: Policy,
    /// Where compiled modules are cached.
    pub cache: CacheDir,
    /// How many times a job whose worker process died is run again (process method).
    pub retries: u32,
    /// Resume a search: the one of `search_id`, or else the latest search of the storage that
    /// ran this module; refused if that search ran another module or policy, or another
    /// evaluator still runs it (a configuration is recognized by the hash of its JSON).
    pub resume: bool,
}

impl Default for EvaluatorOptions {
    fn default() -> Self {
        EvaluatorOptions {
            num_workers: None,
            callbacks: Vec::new(),
            run_function_kwargs: Map::new(),
            storage: None,
            search_id: None,
            policy: Policy::default(),
            cache: CacheDir::Default,
            retries: 0,
            resume: false,
        }
    }
}

/// Builds an [`Evaluator`] step by step.
///
/// ```no_run
/// use std::time::Duration;
/// use wasmeval::{Evaluator, Method};
///
/// let evaluator = Evaluator::builder("ackley.wasm")
///     .method(Method::Thread)
///     .num_workers(2)
///     .job_timeout(Duration::from_secs(2))
///     .memory_limit(64 << 20)
///     .build()?;
/// # Ok::<(), wasmeval::Error>(())
/// ```
pub struct EvaluatorBuilder {
    run_function: RunFunction,
    method: Method,
    options: EvaluatorOptions,
}

impl EvaluatorBuilder {
    pub(crate) fn new(run_function: RunFunction) -> EvaluatorBuilder {
        EvaluatorBuilder {
            run_function,
            method: Method::Serial,
            options: EvaluatorOptions::default(),
        }
    }

    /// Serial (the library's default: no worker binary needed), thread or process (the
    /// default of `wasmeval run`, which is its own worker binary).
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }
    /// Number of workers.
    pub fn num_workers(mut self, n: usize) -> Self {
        self.options.num_workers = Some(n);
        self
    }
    /// Adds a callback.
    pub fn callback(mut self, callback: impl Callback + 'static) -> Self {
        self.options.callbacks.push(Box::new(callback));
        self
    }
    /// Sets the run-function kwargs.
    pub fn run_function_kwargs(mut self, kwargs: Map<String, Value>) -> Self {
        self.options.run_function_kwargs = kwargs;
        self
    }
    /// Uses `storage`.
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.options.storage = Some(storage);
        self
    }
    /// Joins the existing search `id`.
    pub fn search_id(mut self, id: impl Into<String>) -> Self {
        self.options.search_id = Some(id.into());
        self
    }
    /// Replaces the whole policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.options.policy = policy;
        self
    }
    /// Wall-clock limit of each job.
    pub fn job_timeout(mut self, timeout: Duration) -> Self {
        self.options.policy.job_timeout = Some(timeout);
        self
    }
    /// Memory cap of each job, in bytes.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.options.policy.memory = bytes;
        self
    }
    /// Fuel budget of each job.
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.options.policy.fuel = Some(fuel);
        self
    }
    /// CPU time compiling the module may use (default 60 s; see
    /// [`Policy::compile_timeout`]).
    pub fn compile_timeout(mut self, limit: Duration) -> Self {
        self.options.policy.compile_timeout = limit;
        self
    }
    /// Bytes each job may write through its read-write grants (default 64 MiB).
    pub fn write_quota(mut self, bytes: u64) -> Self {
        self.options.policy.write_quota = bytes;
        self
    }
    /// Grants a directory.
    pub fn dir(mut self, grant: DirGrant) -> Self {
        self.options.policy.dirs.push(grant);
        self
    }
    /// Grants an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.policy.env.push((key.into(), value.into()));
        self
    }
    /// Runs a job again, up to `n` times, when its worker process dies (process method).
    pub fn retries(mut self, n: u32) -> Self {
        self.options.retries = n;
        self
    }
    /// Resumes the search given with `search_id`, or else the latest search of the storage
    /// that ran this module (checks its module, its policy and that no live evaluator runs it).
    pub fn resume(mut self, resume: bool) -> Self {
        self.options.resume = resume;
        self
    }
    /// Sets the compile cache.
    pub fn cache(mut self, cache: CacheDir) -> Self {
        self.options.cache = cache;
        self
    }
    /// Loads the run function and starts the workers.
    pub fn build(self) -> Result<Evaluator> {
        Evaluator::create(self.run_function, self.method, self.options)
    }
}
