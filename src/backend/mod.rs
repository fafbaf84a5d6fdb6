//! Backends: where jobs run. Every backend takes tasks in submit order and reports each one's
//! ending on the evaluator's channel.

pub mod threads;

pub use threads::ThreadPool;

use std::sync::Arc;

use crate::job::JobId;
use crate::sandbox::{JobControl, RunOutput};

/// A job handed to a backend.
pub struct Task {
    /// The job id.
    pub id: JobId,
    /// The configuration as JSON text.
    pub config: String,
    /// Its stop signals.
    pub control: Arc<JobControl>,
}

/// A job's ending, sent back by a backend.
pub struct Finished {
    /// The job id.
    pub id: JobId,
    /// How it ended.
    pub output: RunOutput,
}

/// How jobs are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One library-owned thread runs the jobs one after another.
    Serial,
    /// `num_workers` library-owned threads.
    Thread,
}

impl Method {
    /// DeepHyper's class name for this method (used by `to_json`).
    pub fn class_name(self) -> &'static str {
        match self {
            Method::Serial => "SerialEvaluator",
            Method::Thread => "ThreadPoolEvaluator",
        }
    }
}
