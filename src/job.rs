//! Jobs: ids, statuses, outcomes and failures.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::output::Objective;

/// A job id, `"<search>.<n>"` as in DeepHyper.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl JobId {
    /// Builds the id of job `n` of search `search`.
    pub fn new(search: &str, n: u64) -> JobId {
        JobId(format!("{search}.{n}"))
    }

    /// `text` as a job id if it has the form `"<search>.<n>"`.
    pub fn parse(text: &str) -> Option<JobId> {
        let (search, n) = text.rsplit_once('.')?;
        (!search.is_empty() && n.parse::<u64>().is_ok()).then(|| JobId(text.to_string()))
    }

    /// The search part of the id.
    pub fn search(&self) -> &str {
        self.0.rsplit_once('.').map_or("", |(s, _)| s)
    }

    /// The job number within its search (DeepHyper's integer `job_id` column).
    pub fn number(&self) -> u64 {
        self.0
            .rsplit_once('.')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job's status, with DeepHyper's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobStatus {
    /// Submitted, waiting for a worker.
    Ready = 0,
    /// Running in a worker.
    Running = 1,
    /// Finished and gathered (failed jobs are DONE too: failures are outcomes).
    Done = 2,
    /// Being stopped.
    Cancelling = 3,
    /// Stopped by `cancel`, `close` or the evaluator's timeout.
    Cancelled = 4,
}

impl JobStatus {
    /// The enum name DeepHyper writes in `results.csv` (`DONE`, `CANCELLED`, ...).
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Ready => "READY",
            JobStatus::Running => "RUNNING",
            JobStatus::Done => "DONE",
            JobStatus::Cancelling => "CANCELLING",
            JobStatus::Cancelled => "CANCELLED",
        }
    }
}

/// Why a job failed. Each kind has its own objective string, e.g. `"F_timeout"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The job ran past its own time limit (the job is DONE with `"F_timeout"`).
    Timeout,
    /// The job tried to use more memory (or table space) than its cap.
    MemoryLimit,
    /// The job used up its fuel budget.
    FuelExhausted,
    /// The guest trapped (a panic, an out-of-bounds access, a stack overflow, ...).
    Trap,
    /// The guest reported an error: `Err(message)` or a non-zero exit code.
    GuestError,
    /// The guest's result is not a valid objective.
    BadOutput,
    /// The result or the `record` series went past its cap.
    OutputTooLarge,
    /// The job was stopped by `cancel`, `close` or the evaluator's timeout.
    Cancelled,
    /// The job could not be started (for example, no free instance slot).
    Startup,
    /// The worker process running the job died (process method).
    WorkerCrashed,
    /// The job wrote more than its quota through its read-write grants.
    Quota,
}

impl FailureKind {
    /// The job's objective for this failure.
    pub fn objective(self) -> &'static str {
        match self {
            FailureKind::Timeout => "F_timeout",
            FailureKind::MemoryLimit => "F_memory_limit",
            FailureKind::FuelExhausted => "F_fuel_exhausted",
            FailureKind::Trap => "F_trap",
            FailureKind::GuestError => "F_guest_error",
            FailureKind::BadOutput => "F_bad_output",
            FailureKind::OutputTooLarge => "F_output_too_large",
            FailureKind::Cancelled => "F_CANCELLED",
            FailureKind::Startup => "F_startup",
            FailureKind::WorkerCrashed => "F_worker_crashed",
            FailureKind::Quota => "F_quota",
        }
    }

    /// The kind's name, as written in the `failure` metadata.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::MemoryLimit => "memory_limit",
            FailureKind::FuelExhausted => "fuel_exhausted",
            FailureKind::Trap => "trap",
            FailureKind::GuestError => "guest_error",
            FailureKind::BadOutput => "bad_output",
            FailureKind::OutputTooLarge => "output_too_large",
            FailureKind::Cancelled => "cancelled",
            FailureKind::Startup => "startup",
            FailureKind::WorkerCrashed => "worker_crashed",
            FailureKind::Quota => "quota",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed job's typed reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The kind of failure.
    pub kind: FailureKind,
    /// A human-readable message (the guest's error, the trap message, ...).
    pub message: String,
    /// For traps, wasmtime's trap code, such as `UnreachableCodeReached`.
    pub trap_code: Option<String>,
}

impl Failure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            trap_code: None,
        }
    }
}

/// The metadata keys the host writes. A run function's metadata key that is one of these, or
/// that starts with `_` (the host's internal keys, such as the resume identity), is dropped,
/// and the job is flagged with [`HOST_KEYS_DROPPED`].
pub const HOST_KEYS: &[&str] = &[
    "timestamp_submit",
    "timestamp_start",
    "timestamp_end",
    "timestamp_gather",
    "fuel_used",
    "failure",
    "failure_message",
    "trap_code",
    "truncated",
    "attempt",
    HOST_KEYS_DROPPED,
];

/// The metadata flag of a job whose run function returned metadata keys of the host's.
pub const HOST_KEYS_DROPPED: &str = "host_keys_dropped";

/// True for a metadata key only the host may write (see [`HOST_KEYS`]).
pub fn is_host_key(key: &str) -> bool {
    key.starts_with('_') || HOST_KEYS.contains(&key)
}

/// One evaluation of the run function: its configuration, status and outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The id, `"<search>.<n>"`.
    pub id: JobId,
    /// The configuration (DeepHyper's `job.args`).
    pub config: Map<String, Value>,
    /// The status.
    pub status: JobStatus,
    /// The objective, once the job has finished.
    pub objective: Option<Objective>,
    /// Extra keys of an `{"objective": ...}` result.
    pub extra_output: Map<String, Value>,
    /// Metadata in insertion order: `timestamp_submit`, `timestamp_start`, `timestamp_end`,
    /// the run function's own keys (never one of [`HOST_KEYS`]), `fuel_used`, `failure`,
    /// `failure_message`, `truncated`, then `timestamp_gather`; the host's internal keys
    /// start with `_`.
    pub metadata: Map<String, Value>,
    /// The intermediate `(budget, objective)` series sent by `record`.
    pub intermediate: Vec<(f64, f64)>,
    /// The job's log: `log` lines, and the standard error of commands (capped).
    pub log: String,
    /// Why the job failed, if it did.
    pub failure: Option<Failure>,
}

impl Job {
    /// A fresh READY job.
    pub fn new(id: JobId, config: Map<String, Value>) -> Job {
        Job {
            id,
            config,
            status: JobStatus::Ready,
            objective: None,
            extra_output: Map::new(),
            metadata: Map::new(),
            intermediate: Vec::new(),
            log: String::new(),
            failure: None,
        }
    }

    /// The objective value when the job succeeded with a single objective.
    pub fn value(&self) -> Option<f64> {
        self.objective.as_ref().and_then(Objective::value)
    }

    /// How long the job ran, in seconds (`timestamp_end` − `timestamp_start`), once it ended.
    /// Derived rather than stored, so that results.csv keeps DeepHyper's columns.
    pub fn duration(&self) -> Option<f64> {
        let t = |k: &str| self.metadata.get(k).and_then(Value::as_f64);
        Some(t("timestamp_end")? - t("timestamp_start")?)
    }

    /// True when the job failed (its objective is an "F…" string).
    pub fn is_failure(&self) -> bool {
        self.objective.as_ref().is_some_and(Objective::is_failure)
    }

    /// Marks the job finished with `failure`: its objective becomes the kind's "F…" string
    /// and the metadata records the kind and message.
    pub fn fail(&mut self, failure: Failure) {
        self.objective = Some(Objective::Failure(failure.kind.objective().into()));
        self.metadata
            .insert("failure".into(), failure.kind.name().into());
        self.metadata
            .insert("failure_message".into(), failure.message.clone().into());
        if let Some(code) = &failure.trap_code {
            self.metadata
                .insert("trap_code".into(), code.clone().into());
        }
        self.failure = Some(failure);
    }

    /// Takes the outcome of its run (see [`crate::backend::outcome`]): everything but the id and the
    /// configuration; metadata keys already present (such as `timestamp_submit`) stay.
    pub fn merge_outcome(&mut self, outcome: Job) {
        self.status = outcome.status;
        self.objective = outcome.objective;
        self.extra_output = outcome.extra_output;
        for (k, v) in outcome.metadata {
            self.metadata.entry(k).or_insert(v);
        }
        self.intermediate = outcome.intermediate;
        self.log = outcome.log;
        self.failure = outcome.failure;
    }

    /// The job as one JSON object: id, status, config, objective, metadata, intermediate, log.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("job_id".into(), self.id.as_str().into());
        o.insert("status".into(), self.status.name().into());
        o.insert("config".into(), Value::Object(self.config.clone()));
        o.insert(
            "objective".into(),
            self.objective
                .as_ref()
                .map_or(Value::Null, Objective::to_json),
        );
        // The host's internal keys (`_input_pos`, ...) are not the user's.
        let metadata = self
            .metadata
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        o.insert("metadata".into(), Value::Object(metadata));
        let (budget, objective): (Vec<Value>, Vec<Value>) = self
            .intermediate
            .iter()
            .map(|&(b, o)| (crate::float::to_json(b), crate::float::to_json(o)))
            .unzip();
        o.insert(
            "intermediate".into(),
            serde_json::json!({"budget": budget, "objective": objective}),
        );
        o.insert("log".into(), self.log.clone().into());
        Value::Object(o)
    }
}

/// `for (config, objective) in jobs`, as DeepHyper's `HPOJob[i]` allows.
impl<'a> From<&'a Job> for (&'a Map<String, Value>, Option<&'a Objective>) {
    fn from(job: &'a Job) -> Self {
        (&job.config, job.objective.as_ref())
    }
}
