//! Callbacks: hooks called by the evaluator on the thread that calls it, as in DeepHyper.

use crate::job::Job;

/// Evaluator hooks; every method does nothing by default.
pub trait Callback: Send {
    /// A job was submitted (status READY, `timestamp_submit` set).
    fn on_launch(&mut self, _job: &Job) {}
    /// One of this evaluator's jobs was gathered (after the storage writes).
    fn on_done(&mut self, _job: &Job) {}
    /// A job finished by another evaluator sharing the search was gathered.
    fn on_done_other(&mut self, _job: &Job) {}
    /// Once per gather, after every `on_done`; and once in `close` with the cancelled jobs.
    fn on_gather(&mut self, _local: &[Job], _other: &[Job]) {}
    /// The evaluator was closed.
    fn on_close(&mut self) {}
}

mod csv_logger;

pub use csv_logger::CsvLogger;
