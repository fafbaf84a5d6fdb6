//! The Evaluator: DeepHyper's API over sandboxed WebAssembly jobs.
//!
//! Deliberate differences from DeepHyper 0.13.2, all in the user's favour:
//! - jobs start at `submit`, not inside `gather`;
//! - a job past its time limit is really stopped (DONE with `"F_timeout"`), and the
//!   evaluator's deadline stops running jobs (CANCELLED with `"F_CANCELLED"`); queued jobs
//!   never start after it;
//! - failures are outcomes with a typed kind, never errors out of `gather`;
//! - `gather(Batch(n))` returns at least `n` jobs (every job finished by then) in completion
//!   order, always as local and other lists;
//! - `close` stops running jobs and returns every job that was not gathered yet, finished or
//!   cancelled, so no result is lost;
//! - the counters are O(1): `num_jobs_submitted` counts this evaluator's submissions (not
//!   every job of a shared search);
//! - jobs from other evaluators are picked up through the storage's completion cursor, so an
//!   objective of 0 is included.

mod options;

pub use options::{EvaluatorBuilder, EvaluatorOptions};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde_json::{Map, Value};

use crate::backend::{Backend, Finished, Local, Method, ProcessPool, Shared, Task, ThreadPool};
use crate::callback::Callback;
use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::sandbox::{JobControl, LoadedModule, RunFunction, Signals};
use crate::storage::{MemoryStorage, Storage};

/// How many jobs `gather` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gather {
    /// Every submitted job.
    All,
    /// At least this many (clamped to the number pending); every job finished by then is
    /// returned.
    Batch(usize),
}

/// What `gather` returns: this evaluator's jobs and the jobs other evaluators finished in
/// the shared search since the last gather.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gathered {
    /// This evaluator's jobs, in completion order.
    pub local: Vec<Job>,
    /// Jobs other evaluators finished.
    pub other: Vec<Job>,
}

impl Gathered {
    /// Every job: local, then other.
    pub fn all(&self) -> impl Iterator<Item = &Job> {
        self.local.iter().chain(&self.other)
    }
}

struct Pending {
    job: Job,
    control: Arc<JobControl>,
}

/// Evaluates a run function compiled to WebAssembly, each job in a fresh sandboxed instance.
///
/// ```no_run
/// use wasmeval::{Evaluator, EvaluatorOptions, Gather, Method};
/// use serde_json::json;
///
/// let mut evaluator = Evaluator::create("ackley.wasm", Method::Thread, EvaluatorOptions {
///     num_workers: Some(2),
///     ..Default::default()
/// })?;
/// evaluator.submit([json!({"x": [0.5, -1.0]}), json!({"x": [0.0, 0.0]})])?;
/// for job in evaluator.gather(Gather::All)?.local {
///     println!("{} {:?} {:?}", job.id, job.config, job.objective);
/// }
/// evaluator.close();
/// # Ok::<(), wasmeval::Error>(())
/// ```
pub struct Evaluator {
    method: Method,
    num_workers: usize,
    module: Arc<LoadedModule>,
    shared: Shared,
    retries: u32,
    storage: Arc<dyn Storage>,
    search_id: String,
    callbacks: Vec<Box<dyn Callback>>,
    signals: Arc<Signals>,
    timeout: Option<Duration>,
    timeout_set: Instant,
    pending: HashMap<JobId, Pending>,
    own: HashSet<JobId>,
    done: Receiver<Finished>,
    done_tx: Sender<Finished>,
    /// The workers; stopped by `close`, started again by the next `submit`.
    pool: Option<Box<dyn Backend>>,
    submitted: usize,
    gathered: usize,
    offset: usize,
    max_submitted: Option<usize>,
    cursor: u64,
    others_checked: Instant,
}

impl Evaluator {
    /// Loads `run_function` (a `.wasm` or `.wat` path, or [`RunFunction::Bytes`]) and starts
    /// the workers of `method`. A module that cannot run is refused here, with its name and
    /// the reason.
    pub fn create(
        run_function: impl Into<RunFunction>,
        method: Method,
        options: EvaluatorOptions,
    ) -> Result<Evaluator> {
        let EvaluatorOptions {
            num_workers,
            callbacks,
            run_function_kwargs,
            storage,
            search_id,
            policy,
            cache,
            retries,
            resume,
        } = options;
        policy.check()?;
        let module = Arc::new(LoadedModule::load(&run_function.into(), &policy, &cache)?);
        let storage: Arc<dyn Storage> = storage.unwrap_or_else(|| Arc::new(MemoryStorage::new()));
        if method == Method::Redis && storage.as_redis().is_none() {
            return Err(crate::error::RedisError::NeedsRedisStorage.into());
        }
        let search_id = match search_id {
            None if resume => Some(
                crate::resume::latest_search_of(&*storage, &module.sha256)?.ok_or_else(|| {
                    Error::Resume(
                        "no search of this storage ran this module: nothing to resume".into(),
                    )
                })?,
            ),
            other => other,
        };
        let joined = search_id.is_some();
        let search_id = match search_id {
            None => storage.create_new_search()?,
            Some(id) if storage.load_all_search_ids()?.contains(&id) => id,
            Some(id) => return Err(Error::UnknownSearch(id)),
        };
        if !joined || resume {
            crate::resume::record_or_check(&*storage, &search_id, &module.sha256, &policy, resume)?;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let num_workers = match method {
            Method::Serial => 1,
            Method::Thread | Method::Process | Method::Redis => num_workers.unwrap_or(cores).max(1),
            // Known once the agents have started (`backend`).
            Method::Mpi => 0,
        };
        let (done_tx, done) = crossbeam_channel::unbounded();
        let now = Instant::now();
        let shared = Shared {
            recorder: crate::backend::Recorder::of_search(storage.clone(), &search_id)?,
            module: module.clone(),
            policy: Arc::new(policy),
            kwargs: Value::Object(run_function_kwargs).to_string().into(),
        };
        let mut evaluator = Evaluator {
            method,
            num_workers,
            module,
            shared,
            retries,
            storage,
            search_id,
            callbacks,
            signals: Arc::new(Signals::default()),
            timeout: None,
            timeout_set: now,
            pending: HashMap::new(),
            own: HashSet::new(),
            done,
            done_tx,
            pool: None,
            submitted: 0,
            gathered: 0,
            offset: 0,
            max_submitted: None,
            cursor: 0,
            others_checked: now,
        };
        evaluator.backend()?;
        Ok(evaluator)
    }

    /// The running backend, started if needed.
    fn backend(&mut self) -> Result<&dyn Backend> {
        if self.pool.is_none() {
            let (shared, done) = (self.shared.clone(), self.done_tx.clone());
            self.pool = Some(match self.method {
                Method::Serial | Method::Thread => {
                    Box::new(ThreadPool::start(self.num_workers, shared, done)?)
                }
                Method::Process => Box::new(ProcessPool::start(
                    self.num_workers,
                    shared.program(),
                    self.signals.clone(),
                    self.retries,
                    Arc::new(Local { shared, done }),
                )?),
                #[cfg(feature = "mpi")]
                Method::Mpi => {
                    let (pool, workers) = crate::mpi::MpiPool::start(
                        shared,
                        self.signals.clone(),
                        self.retries,
                        done,
                    )?;
                    self.num_workers = workers;
                    Box::new(pool)
                }
                #[cfg(not(feature = "mpi"))]
                Method::Mpi => return Err(crate::mpi::MpiError::NotBuilt.into()),
                Method::Redis => Box::new(crate::redis::RedisPool::start(
                    shared,
                    self.signals.clone(),
                    self.retries,
                    done,
                )?),
            });
        }
        Ok(self.pool.as_deref().expect("started above"))
    }

    /// The search's time axis: the zero of the `timestamp_*` metadata is the search's
    /// creation (see [`crate::Origin`]).
    pub fn origin(&self) -> crate::origin::Origin {
        self.shared.recorder.origin
    }

    /// The pids of the worker processes (process method; empty otherwise).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.pool
            .as_ref()
            .map(|p| p.worker_pids())
            .unwrap_or_default()
    }

    /// Starts building an evaluator for `run_function`.
    pub fn builder(run_function: impl Into<RunFunction>) -> EvaluatorBuilder {
        EvaluatorBuilder::new(run_function.into())
    }

    /// The loaded run function.
    pub fn module(&self) -> &LoadedModule {
        &self.module
    }

    /// A handle on the run function and policy that a pool on another node can load (see
    /// [`crate::sandbox::ModuleHandle`]).
    pub fn module_handle(&self) -> crate::sandbox::ModuleHandle {
        self.module
            .handle(&self.shared.policy)
            .expect("an evaluator loads its module from its bytes")
    }

    /// The search id.
    pub fn search_id(&self) -> &str {
        &self.search_id
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Submits configurations (JSON objects); each job starts as soon as a worker is free.
    /// Returns the new job ids: contiguous, created in the storage in one step. Past the
    /// maximum set by [`set_maximum_num_jobs_submitted`](Self::set_maximum_num_jobs_submitted),
    /// the jobs before it are submitted and `MaximumJobsSpawnReached` is returned.
    pub fn submit<I>(&mut self, configs: I) -> Result<Vec<JobId>>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        let configs = configs
            .into_iter()
            .map(|config| match config.into() {
                Value::Object(map) => Ok((None, map)),
                other => Err(Error::Option(format!(
                    "a configuration must be a JSON object, got {other}"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        self.submit_all(configs)
    }

    /// Submits configurations with their position in an input, so that a resumed search can
    /// tell which ones finished.
    pub fn submit_inputs(
        &mut self,
        inputs: impl IntoIterator<Item = (u64, Map<String, Value>)>,
    ) -> Result<Vec<JobId>> {
        self.submit_all(inputs.into_iter().map(|(p, c)| (Some(p), c)).collect())
    }

    /// Runs jobs of this search again under their ids (see [`Storage::restart_job`]): each
    /// with its input position and configuration, as a resume does for the configurations
    /// that did not finish.
    pub fn rerun_inputs(
        &mut self,
        jobs: impl IntoIterator<Item = (JobId, u64, Map<String, Value>)>,
    ) -> Result<Vec<JobId>> {
        let mut jobs: Vec<_> = jobs.into_iter().collect();
        let over = self.keep_within_maximum(&mut jobs);
        let mut ids = Vec::with_capacity(jobs.len());
        for (id, pos, config) in jobs {
            self.storage.restart_job(&id)?;
            self.launch(id.clone(), config, Some(pos))?;
            ids.push(id);
        }
        over.map_or(Ok(ids), Err)
    }

    /// Cuts `items` to what the maximum set by
    /// [`set_maximum_num_jobs_submitted`](Self::set_maximum_num_jobs_submitted) leaves room
    /// for; the error to return once they are submitted, if any were cut.
    fn keep_within_maximum<T>(&self, items: &mut Vec<T>) -> Option<Error> {
        let max = self.max_submitted?;
        let room = max.saturating_sub(self.num_jobs_submitted());
        (items.len() > room).then(|| {
            items.truncate(room);
            Error::MaximumJobsSpawnReached(max)
        })
    }

    fn submit_all(
        &mut self,
        mut configs: Vec<(Option<u64>, Map<String, Value>)>,
    ) -> Result<Vec<JobId>> {
        let over = self.keep_within_maximum(&mut configs);
        let (inputs, maps): (Vec<_>, Vec<_>) = configs.into_iter().unzip();
        let ids = self.storage.create_new_jobs(&self.search_id, &maps)?;
        for ((input, config), id) in inputs.into_iter().zip(maps).zip(&ids) {
            self.launch(id.clone(), config, input)?;
        }
        over.map_or(Ok(ids), Err)
    }

    /// Starts the job `id` (created in the storage) on `config`.
    fn launch(&mut self, id: JobId, config: Map<String, Value>, input: Option<u64>) -> Result<()> {
        let hash = input.map(|_| crate::resume::config_hash(&config));
        let mut job = Job::new(id.clone(), config);
        let ts = self.shared.recorder.origin.now();
        job.metadata.insert("timestamp_submit".into(), ts.into());
        self.storage
            .store_job_metadata(&id, "timestamp_submit", ts.into())?;
        if let (Some(pos), Some(hash)) = (input, hash) {
            for (k, v) in [
                (crate::resume::INPUT_POS, Value::from(pos)),
                (crate::resume::INPUT_HASH, Value::from(hash)),
            ] {
                job.metadata.insert(k.into(), v.clone());
                self.storage.store_job_metadata(&id, k, v)?;
            }
        }
        for cb in &mut self.callbacks {
            cb.on_launch(&job);
        }
        let control = Arc::new(JobControl::new(self.signals.clone()));
        self.backend()?.dispatch(Task {
            id: id.clone(),
            config: Value::Object(job.config.clone()).to_string(),
            control: control.clone(),
        });
        self.pending.insert(id.clone(), Pending { job, control });
        self.own.insert(id);
        self.submitted += 1;
        Ok(())
    }

    /// Waits for jobs (see [`Gather`]) and returns them, with the jobs other evaluators of
    /// the same search finished. Failed jobs are returned like the others.
    pub fn gather(&mut self, how: Gather) -> Result<Gathered> {
        let wanted = match how {
            Gather::All => self.pending.len(),
            Gather::Batch(_) if self.pending.is_empty() => return Err(Error::NoJobsPending),
            Gather::Batch(n) => n.clamp(1, self.pending.len()),
        };
        self.collect(wanted, None, true)
    }

    /// Waits up to `timeout` for one of this evaluator's jobs to finish and returns every job
    /// finished by then (none when the time ran out; none at once when nothing is pending).
    /// Jobs other evaluators finished are looked up at most once a second, so that a loop of
    /// short polls does not force the storage to commit early.
    pub fn poll(&mut self, timeout: Duration) -> Result<Gathered> {
        let wanted = self.pending.len().min(1);
        let others = self.others_checked.elapsed() >= Duration::from_secs(1);
        self.collect(wanted, Some(Instant::now() + timeout), others)
    }

    /// The number of workers (threads or processes).
    pub fn num_workers(&self) -> usize {
        self.num_workers
    }

    /// How many jobs a batch run keeps pending to keep the workers busy: 32 per worker (at
    /// least 256); with the redis method, whose workers come and go on other machines and
    /// hear of jobs through the server, [`crate::redis::IN_FLIGHT`].
    pub fn jobs_in_flight(&self) -> usize {
        match self.method {
            Method::Redis => crate::redis::IN_FLIGHT,
            _ => (32 * self.num_workers).max(256),
        }
    }

    /// Jobs submitted and not gathered yet.
    pub fn num_pending(&self) -> usize {
        self.pending.len()
    }

    fn collect(
        &mut self,
        wanted: usize,
        deadline: Option<Instant>,
        others: bool,
    ) -> Result<Gathered> {
        let mut local = Vec::with_capacity(wanted);
        while local.len() < wanted {
            let finished = match deadline {
                None => self.done.recv().ok(),
                Some(d) => self.done.recv_deadline(d).ok(),
            };
            // The evaluator holds a sender, so only a deadline ends the wait.
            let Some(finished) = finished else { break };
            local.push(self.finish(finished)?);
        }
        while let Ok(finished) = self.done.try_recv() {
            local.push(self.finish(finished)?);
        }
        let other = if others {
            self.gather_other()?
        } else {
            Vec::new()
        };
        for cb in &mut self.callbacks {
            cb.on_gather(&local, &other);
        }
        Ok(Gathered { local, other })
    }

    /// Turns a backend's report into a finished job, stores it and calls `on_done`.
    fn finish(&mut self, finished: Finished) -> Result<Job> {
        let Pending { mut job, .. } = self
            .pending
            .remove(&finished.id)
            .expect("a backend reports only jobs this evaluator submitted");
        // The outcome was stored when the job finished; gathering adds its timestamp.
        job.merge_outcome(finished.outcome);
        let ts = self.shared.recorder.origin.now();
        job.metadata.insert("timestamp_gather".into(), ts.into());
        self.storage
            .store_job_metadata(&job.id, "timestamp_gather", ts.into())?;
        self.gathered += 1;
        for cb in &mut self.callbacks {
            cb.on_done(&job);
        }
        Ok(job)
    }

    fn gather_other(&mut self) -> Result<Vec<Job>> {
        let (mut ids, cursor) = self.storage.finished_since(&self.search_id, self.cursor)?;
        self.cursor = cursor;
        self.others_checked = Instant::now();
        // Past the cursor, an own job is never reported again: forget it, so that the set
        // stays as small as the jobs in flight.
        ids.retain(|id| !self.own.remove(id));
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let jobs = self.storage.load_jobs(&ids)?;
        self.gathered += jobs.len();
        for job in &jobs {
            for cb in &mut self.callbacks {
                cb.on_done_other(job);
            }
        }
        Ok(jobs)
    }

    /// Asks a submitted job to stop. A queued job never starts; a running one is stopped.
    /// Either ends CANCELLED with `"F_CANCELLED"`. Returns false for an unknown or
    /// already gathered job.
    pub fn cancel(&mut self, job_id: &JobId) -> bool {
        match self.pending.get(job_id) {
            Some(p) => {
                p.control.cancel();
                if let Some(pool) = &self.pool {
                    pool.cancel(job_id);
                }
                true
            }
            None => false,
        }
    }

    /// Stops every running and queued job, returns every job not gathered yet (finished ones
    /// as they are, the others CANCELLED with `"F_CANCELLED"`), and stops the workers (worker
    /// processes are reaped). The evaluator can be used again: `submit` starts new workers.
    pub fn close(&mut self) -> Vec<Job> {
        self.signals.set_closing(true);
        if let Some(pool) = &self.pool {
            pool.set_closing(true);
        }
        let mut jobs = Vec::with_capacity(self.pending.len());
        while !self.pending.is_empty() {
            let Ok(finished) = self.done.recv() else {
                break;
            };
            // A storage failure here must not lose the job: it is still returned.
            let id = finished.id.clone();
            match self.finish(finished) {
                Ok(job) => jobs.push(job),
                Err(_) => {
                    if let Ok(job) = self.storage.load_job(&id) {
                        jobs.push(job);
                    }
                }
            }
        }
        self.pool = None;
        self.signals.set_closing(false);
        for cb in &mut self.callbacks {
            cb.on_gather(&jobs, &[]);
            cb.on_close();
        }
        jobs
    }

    /// DeepHyper's `to_json`: `{"type": ..., "num_workers": ...}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"type": self.method.class_name(), "num_workers": self.num_workers})
    }

    /// The evaluator-wide time limit, if set.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Sets (or clears) the evaluator-wide time limit, counted from now. When it passes,
    /// running jobs are stopped and queued jobs never start (both end CANCELLED).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
        self.timeout_set = Instant::now();
        let deadline = timeout.map(|t| self.timeout_set + t);
        self.signals.set_deadline(deadline);
        if let Some(pool) = &self.pool {
            pool.set_deadline(deadline);
        }
    }

    /// Seconds left before the evaluator-wide time limit (negative once past), if set.
    pub fn time_left(&self) -> Option<f64> {
        self.timeout
            .map(|t| t.as_secs_f64() - self.timeout_set.elapsed().as_secs_f64())
    }

    /// Jobs submitted since the last `set_maximum_num_jobs_submitted` (O(1)).
    pub fn num_jobs_submitted(&self) -> usize {
        self.submitted - self.offset.min(self.submitted)
    }

    /// Jobs gathered, this evaluator's and others', since the last
    /// `set_maximum_num_jobs_submitted` (O(1)).
    pub fn num_jobs_gathered(&self) -> usize {
        self.gathered - self.offset.min(self.gathered)
    }

    /// Limits the number of jobs submitted from now on (DeepHyper counts from the number of
    /// jobs gathered so far).
    pub fn set_maximum_num_jobs_submitted(&mut self, max: usize) {
        self.offset = self.gathered;
        self.max_submitted = Some(max);
    }
}

impl Drop for Evaluator {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.close();
        }
        // Dropping the backend stops its workers and waits for them.
        self.pool = None;
    }
}

/// The largest memory limit: a wasm32 linear memory holds at most 4 GiB.
pub use crate::sandbox::policy::MAX_MEMORY;
