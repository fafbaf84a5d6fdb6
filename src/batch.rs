//! Batch evaluation of a stream of configurations with bounded memory: never more than a
//! window of jobs pending, every finished job handed to the caller and then dropped.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use wasmeval::Evaluator;
//! use wasmeval::internal::batch;
//! use serde_json::{Map, Value};
//!
//! let mut evaluator = Evaluator::builder("ackley.wasm").build()?;
//! let configs = (0..1_000_000).map(|i| {
//!     let mut m = Map::new();
//!     m.insert("x".into(), Value::from(vec![i as f64 / 1e6]));
//!     batch::Next::Config(Ok::<_, std::convert::Infallible>(m))
//! });
//! let stop = AtomicBool::new(false);
//! let mut summary = wasmeval::Summary::default();
//! let end = batch::run(&mut evaluator, configs, &batch::Options::default(), &stop, |job| {
//!     summary.add(job)
//! })?;
//! println!("{end:?}\n{summary}");
//! # Ok::<(), wasmeval::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::job::{Job, JobId};

/// What an input gives next.
#[derive(Debug)]
pub enum Next<E> {
    /// A configuration, or the error reading it.
    Config(std::result::Result<Map<String, Value>, E>),
    /// Nothing ready yet (a pipe waiting on its writer): the batch submits what it has read
    /// and gathers finished jobs meanwhile.
    Waiting,
}

/// How a batch runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Jobs pending at most (default: 32 per worker, at least 256).
    pub window: Option<usize>,
    /// Submit at most this many jobs.
    pub max_jobs: Option<u64>,
    /// Skip the configurations whose (input position, [`crate::resume::config_hash`]) is in
    /// this set: those that finished in the search being resumed.
    pub skip: HashSet<(u64, String)>,
    /// Run the configurations whose (input position, hash) is a key here again under the job
    /// id it maps to: those that did not finish in the search being resumed.
    pub rerun: HashMap<(u64, String), JobId>,
}

/// Why a batch ended.
#[derive(Debug)]
pub enum End<E> {
    /// Every configuration was submitted (up to `max_jobs`) and every job finished.
    Finished,
    /// The evaluator's time limit passed: configurations from input position `next` on were
    /// not submitted.
    TimedOut {
        /// The input position of the first configuration not submitted.
        next: u64,
    },
    /// `stop` was set: jobs in flight were cancelled, and configurations from input position
    /// `next` on were not submitted.
    Interrupted {
        /// The input position of the first configuration not submitted.
        next: u64,
    },
    /// The input failed at position `next`: jobs in flight were cancelled.
    Input {
        /// The input position of the configuration that could not be read.
        next: u64,
        /// What the input reported.
        error: E,
    },
}

/// Counts of a batch that has ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Jobs submitted.
    pub submitted: u64,
    /// Configurations skipped because they finished before (resume).
    pub skipped: u64,
}

/// Submits `configs` in input order (positions 0, 1, ...) through `evaluator`, keeping at
/// most a window of jobs pending, and calls `on_job` with each job as it finishes (cancelled
/// ones included). Configurations are submitted in chunks (once half the window is free, or
/// when the input has nothing more ready), so that a storage creates their jobs in few
/// steps. Setting `stop` (from a signal handler, say) stops submitting and cancels the jobs in
/// flight. The evaluator is closed at the end.
pub fn run<E>(
    evaluator: &mut Evaluator,
    configs: impl IntoIterator<Item = Next<E>>,
    options: &Options,
    stop: &AtomicBool,
    mut on_job: impl FnMut(&Job),
) -> Result<(End<E>, Counts)> {
    let window = options
        .window
        .unwrap_or_else(|| evaluator.jobs_in_flight())
        .max(1);
    let refill_below = window.div_ceil(2);
    let mut configs = configs.into_iter();
    let mut counts = Counts::default();
    let mut pos = 0u64;
    let mut input_done = false;
    let end = loop {
        if stop.load(Ordering::SeqCst) {
            break End::Interrupted { next: pos };
        }
        if evaluator.time_left().is_some_and(|t| t <= 0.0) {
            break End::TimedOut { next: pos };
        }
        let (mut chunk, mut rerun) = (Vec::new(), Vec::new());
        let mut failed = None;
        while !input_done && evaluator.num_pending() <= refill_below {
            let read = (chunk.len() + rerun.len()) as u64;
            // The first chunk only feeds the workers, so the first jobs start at once.
            let most = match counts.submitted {
                0 => evaluator.num_workers().min(window),
                _ => window,
            };
            if evaluator.num_pending() as u64 + read >= most as u64 {
                break;
            }
            if options
                .max_jobs
                .is_some_and(|m| counts.submitted + read >= m)
            {
                input_done = true;
                break;
            }
            match configs.next() {
                None => input_done = true,
                Some(Next::Waiting) => break,
                Some(Next::Config(Err(error))) => {
                    failed = Some(error);
                    break;
                }
                Some(Next::Config(Ok(config))) => {
                    let p = pos;
                    pos += 1;
                    if !options.skip.is_empty() || !options.rerun.is_empty() {
                        let key = (p, crate::resume::config_hash(&config));
                        if options.skip.contains(&key) {
                            counts.skipped += 1;
                            continue;
                        }
                        if let Some(id) = options.rerun.get(&key) {
                            rerun.push((id.clone(), p, config));
                            continue;
                        }
                    }
                    chunk.push((p, config));
                }
            }
        }
        if !rerun.is_empty() {
            counts.submitted += rerun.len() as u64;
            evaluator.rerun_inputs(rerun)?;
        }
        if !chunk.is_empty() {
            counts.submitted += chunk.len() as u64;
            evaluator.submit_inputs(chunk)?;
        }
        if let Some(error) = failed {
            let end = End::Input { next: pos, error };
            finish(evaluator, &mut on_job);
            return Ok((end, counts));
        }
        if input_done && evaluator.num_pending() == 0 {
            break End::Finished;
        }
        for job in evaluator.poll(Duration::from_millis(100))?.local {
            on_job(&job);
        }
    };
    finish(evaluator, &mut on_job);
    Ok((end, counts))
}

/// Closes the evaluator (cancelling what still runs) and hands over the jobs it returns.
fn finish(evaluator: &mut Evaluator, on_job: &mut impl FnMut(&Job)) {
    for job in evaluator.close() {
        on_job(&job);
    }
}
