//! Backends: where jobs run. Every backend takes tasks in submit order and reports each one's
//! ending on the evaluator's channel.

pub mod outcome;
pub mod process;
pub mod remote;
pub mod threads;

pub use process::{ProcessPool, Program, Sink};
pub use remote::{Control, Remote};
pub use threads::ThreadPool;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::job::{Failure, FailureKind, Job, JobId};
use crate::output::Objective;
use crate::sandbox::{JobControl, LoadedModule, Policy, RunOutput};
use crate::storage::Storage;

/// Where jobs run. A backend takes tasks in submit order and reports each one's ending on
/// the channel it was started with; dropping it stops its workers and waits for them.
pub trait Backend: Send {
    /// Queues a task.
    fn dispatch(&self, task: Task);
    /// Tells the workers that a job was cancelled (in-process backends share the flag).
    fn cancel(&self, _id: &JobId) {}
    /// Tells the workers the evaluator's new deadline (in-process backends share it).
    fn set_deadline(&self, _deadline: Option<Instant>) {}
    /// Tells the workers the evaluator is closing (in-process backends share the flag).
    fn set_closing(&self, _closing: bool) {}
    /// The pids of worker processes, if any.
    fn worker_pids(&self) -> Vec<u32> {
        Vec::new()
    }
}

/// What every worker shares.
#[derive(Clone)]
pub struct Shared {
    /// Where and how outcomes are stored.
    pub recorder: Recorder,
    /// The run function.
    pub module: Arc<LoadedModule>,
    /// The sandbox policy.
    pub policy: Arc<Policy>,
    /// The run-function kwargs, as JSON.
    pub kwargs: Arc<str>,
}

/// What turns a finished run into a stored outcome: the search, its time axis and storage.
#[derive(Clone)]
pub struct Recorder {
    /// The search's time axis, the zero of the jobs' timestamps.
    pub origin: crate::origin::Origin,
    /// Where the RUNNING status and the outcomes are written.
    pub storage: Arc<dyn Storage>,
    /// The search the jobs belong to.
    pub search_id: Arc<str>,
    /// How many objectives the search's results have: fixed by its first result (and kept
    /// with the search, under [`OBJECTIVES`]).
    pub objectives: Arc<OnceLock<usize>>,
}

/// The evaluator's end of a pool: outcomes are stored and sent on its channel.
pub struct Local {
    /// What the workers share.
    pub shared: Shared,
    /// The evaluator's channel.
    pub done: crossbeam_channel::Sender<Finished>,
}

impl Sink for Local {
    fn running(&self, id: &JobId) {
        let _ = self
            .shared
            .recorder
            .storage
            .store_job_status(id, crate::job::JobStatus::Running);
    }

    fn finish(&self, id: JobId, output: RunOutput) {
        let _ = self.done.send(self.shared.recorder.complete(id, output));
    }
}

/// The search value holding the number of objectives of a search's results.
pub const OBJECTIVES: &str = "objectives";

impl Shared {
    /// What every job runs.
    pub fn program(&self) -> Program {
        Program {
            module: self.module.clone(),
            policy: self.policy.clone(),
            kwargs: self.kwargs.clone(),
        }
    }
}

impl Recorder {
    /// The recorder of `search_id` in `storage`: its origin, and the number of objectives
    /// its results have if one is stored.
    pub fn of_search(storage: Arc<dyn Storage>, search_id: &str) -> crate::error::Result<Recorder> {
        let objectives = OnceLock::new();
        if let Some(n) = storage
            .load_search_value(search_id, OBJECTIVES)?
            .and_then(|v| v.as_u64())
        {
            let _ = objectives.set(n as usize);
        }
        Ok(Recorder {
            origin: crate::origin::Origin::of_search(&*storage, search_id)?,
            storage,
            search_id: search_id.into(),
            objectives: Arc::new(objectives),
        })
    }

    /// Stores a job's outcome as soon as it ends (so it is committed within the storage's
    /// commit window, whenever the evaluator gathers it) and makes the report for the
    /// evaluator.
    pub fn complete(&self, id: JobId, output: RunOutput) -> Finished {
        let mut outcome = outcome::outcome(id.clone(), output, &self.origin);
        self.check_objectives(&mut outcome);
        // A storage failure here loses no result: the evaluator still gets the outcome, and
        // its own writes at gather report the failure.
        let _ = self.storage.store_job_done(&outcome);
        Finished { id, outcome }
    }

    /// Fails a result whose number of objectives is not the search's (a results.csv has one
    /// set of objective columns); the first result fixes it.
    fn check_objectives(&self, outcome: &mut Job) {
        let found = match &outcome.objective {
            Some(Objective::Value(_)) => 1,
            Some(Objective::Multi(v)) => v.len(),
            _ => return,
        };
        let fixed = *self.objectives.get_or_init(|| {
            // Losing this value only loses the check for evaluators that join later.
            let _ = self
                .storage
                .store_search_value(&self.search_id, OBJECTIVES, found.into());
            found
        });
        if found != fixed {
            outcome.fail(Failure::new(
                FailureKind::BadOutput,
                format!(
                    "the result has {found} objectives, and this search's results have {fixed} \
                     (fixed by its first result)"
                ),
            ));
        }
    }
}

/// A job handed to a backend.
pub struct Task {
    /// The job id.
    pub id: JobId,
    /// The configuration as JSON text.
    pub config: String,
    /// Its stop signals.
    pub control: Arc<JobControl>,
}

/// A job's ending, sent back by a backend once it is stored.
pub struct Finished {
    /// The job id.
    pub id: JobId,
    /// Its outcome (see [`outcome::outcome`]).
    pub outcome: Job,
}

/// How jobs are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One library-owned thread runs the jobs one after another.
    Serial,
    /// `num_workers` library-owned threads.
    Thread,
    /// `num_workers` worker processes (one per core by default): a crash or a runaway job
    /// takes down at most one worker, which is replaced.
    Process,
    /// Under `mpirun` or `srun`: this process (rank 0) evaluates, and every other rank runs
    /// jobs in its own pool of worker processes (see [`crate::mpi`]; cargo feature `mpi`).
    Mpi,
    /// Through a Redis server (the evaluator's storage must be a Redis storage): the jobs go
    /// on a stream, and `wasmeval worker` processes on any machines run them (see
    /// [`crate::redis`]). `num_workers` is what the search is told to expect.
    Redis,
}

impl Method {
    /// DeepHyper's class name for this method (used by `to_json`).
    pub fn class_name(self) -> &'static str {
        match self {
            Method::Serial => "SerialEvaluator",
            Method::Thread => "ThreadPoolEvaluator",
            Method::Process => "ProcessPoolEvaluator",
            Method::Mpi => "MPICommEvaluator",
            Method::Redis => "RedisEvaluator",
        }
    }
}
