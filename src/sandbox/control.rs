//! Stop signals shared between an evaluator and the jobs it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::job::FailureKind;

/// Evaluator-wide signals: closing, and the evaluator's deadline.
#[derive(Debug)]
pub struct Signals {
    base: Instant,
    closing: AtomicBool,
    /// Nanoseconds after `base`; `u64::MAX` for no deadline.
    deadline: AtomicU64,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            base: Instant::now(),
            closing: AtomicBool::new(false),
            deadline: AtomicU64::new(u64::MAX),
        }
    }
}

impl Signals {
    /// Sets (or clears) the evaluator-wide deadline.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        let ns = deadline.map_or(u64::MAX, |d| {
            d.saturating_duration_since(self.base)
                .as_nanos()
                .min(u128::from(u64::MAX - 1)) as u64
        });
        self.deadline.store(ns, Ordering::Relaxed);
    }

    /// The evaluator-wide deadline.
    pub fn deadline(&self) -> Option<Instant> {
        match self.deadline.load(Ordering::Relaxed) {
            u64::MAX => None,
            ns => Some(self.base + Duration::from_nanos(ns)),
        }
    }

    /// Marks the evaluator as closing (or not).
    pub fn set_closing(&self, closing: bool) {
        self.closing.store(closing, Ordering::Relaxed);
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }
}

/// The stop signals of one job.
#[derive(Debug)]
pub struct JobControl {
    cancelled: AtomicBool,
    signals: Arc<Signals>,
}

impl JobControl {
    /// A control tied to an evaluator's signals.
    pub fn new(signals: Arc<Signals>) -> JobControl {
        JobControl {
            cancelled: AtomicBool::new(false),
            signals,
        }
    }

    /// Asks the job to stop (`Evaluator::cancel`).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// When a job whose own limit ends at `own` must stop at the latest: the earlier of
    /// `own` and the evaluator's deadline (read afresh, so a later `set_timeout` applies).
    pub fn end(&self, own: Option<Instant>) -> Option<Instant> {
        match (own, self.signals.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Why the job must stop at `now`, if it must: cancelled or closing, past its own limit
    /// `own` (a timeout), or past the evaluator's deadline (cancelled).
    pub fn stop_reason(&self, now: Instant, own: Option<Instant>) -> Option<FailureKind> {
        if self.cancelled.load(Ordering::Relaxed) || self.signals.closing() {
            return Some(FailureKind::Cancelled);
        }
        if own.is_some_and(|d| now >= d) {
            return Some(FailureKind::Timeout);
        }
        self.signals
            .deadline()
            .filter(|d| now >= *d)
            .map(|_| FailureKind::Cancelled)
    }
}
