//! A running summary of finished jobs: counts, failures by kind, and the best objective
//! (maximized, DeepHyper's convention) or, for multi-objective runs, the Pareto front.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::job::{FailureKind, Job, JobId};
use crate::output::Objective;

/// Counts and bests over the jobs added so far; memory stays bounded by the Pareto front.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Jobs added.
    pub jobs: u64,
    /// Jobs whose objective is not a failure.
    pub succeeded: u64,
    /// Jobs cancelled before they finished (`F_CANCELLED`: Ctrl-C, a search timeout, `cancel`);
    /// counted apart from the failures.
    pub cancelled: u64,
    /// Of the cancelled jobs, those that never started (queued when cancelled: no
    /// `timestamp_start`); the others were running.
    pub never_started: u64,
    /// Failed jobs by kind (`timeout`, `trap`, ..., or `objective F` for a failure returned by
    /// the run function itself).
    pub failures: BTreeMap<String, u64>,
    /// The best single objective, its job and configuration.
    pub best: Option<(f64, JobId, Map<String, Value>)>,
    /// The Pareto-optimal jobs of multi-objective results (every objective maximized), at
    /// most [`MAX_PARETO`] of them.
    pub pareto: Vec<(Vec<f64>, JobId)>,
    /// Pareto-optimal results left out of `pareto` because it was full.
    pub pareto_left_out: u64,
}

/// The most Pareto-optimal jobs a summary keeps (the front of a many-objective search can hold
/// nearly every job).
pub const MAX_PARETO: usize = 1000;

impl Summary {
    /// Counts `job`, which has finished.
    pub fn add(&mut self, job: &Job) {
        self.jobs += 1;
        if job.is_failure() {
            match job.failure.as_ref().map(|f| f.kind) {
                Some(FailureKind::Cancelled) => {
                    self.cancelled += 1;
                    if !job.metadata.contains_key("timestamp_start") {
                        self.never_started += 1;
                    }
                }
                kind => {
                    let kind = kind.map_or("objective F".to_string(), |k| k.to_string());
                    *self.failures.entry(kind).or_default() += 1;
                }
            }
            return;
        }
        self.succeeded += 1;
        match &job.objective {
            Some(Objective::Value(v))
                if !v.is_nan() && self.best.as_ref().is_none_or(|(b, ..)| v > b) =>
            {
                self.best = Some((*v, job.id.clone(), job.config.clone()));
            }
            Some(Objective::Multi(vs)) if !vs.iter().any(|v| v.is_nan()) => {
                self.add_pareto(vs, &job.id)
            }
            _ => {}
        }
    }

    fn add_pareto(&mut self, vs: &[f64], id: &JobId) {
        if self.pareto.iter().any(|(p, _)| dominates(p, vs) || p == vs) {
            return;
        }
        self.pareto.retain(|(p, _)| !dominates(vs, p));
        if self.pareto.len() < MAX_PARETO {
            self.pareto.push((vs.to_vec(), id.clone()));
        } else {
            self.pareto_left_out += 1;
        }
    }

    /// Failed jobs (cancelled ones apart).
    pub fn failed(&self) -> u64 {
        self.jobs - self.succeeded - self.cancelled
    }

    /// The best objective so far, as shown on a progress line: a number, `N Pareto-optimal`
    /// for multi-objective runs, or nothing yet.
    pub fn best_text(&self) -> Option<String> {
        match (&self.best, self.pareto.len()) {
            (Some((v, ..)), _) => Some(shown(*v)),
            (None, 0) => None,
            (None, n) if self.pareto_left_out > 0 => Some(format!("over {n} Pareto-optimal")),
            (None, n) => Some(format!("{n} Pareto-optimal")),
        }
    }
}

/// `jobs` done in `secs` as a rate for people: `1234 jobs/s`, `2.5 jobs/s`, `0.25 jobs/s`
/// (a slow stream of configurations is not "0 jobs/s").
pub fn rate_text(jobs: u64, secs: f64) -> String {
    let rate = jobs as f64 / secs.max(1e-9);
    match rate {
        r if r >= 10.0 || r == 0.0 => format!("{r:.0} jobs/s"),
        r if r >= 1.0 => format!("{r:.1} jobs/s"),
        r => format!("{r:.2} jobs/s"),
    }
}

/// An objective as the summary shows it: its shortest round-trip form, and a negative zero
/// as `0` (a run function that returns `-x` returns -0 for x = 0).
fn shown(v: f64) -> String {
    crate::float::shortest(if v == 0.0 { 0.0 } else { v })
}

/// True when `a` is at least as good as `b` everywhere and better somewhere (maximizing).
fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| x >= y)
        && a.iter().zip(b).any(|(x, y)| x > y)
}

impl fmt::Display for Summary {
    /// The end-of-run lines: counts with failures by kind, then the best objective and its
    /// configuration (or the Pareto-optimal count).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} jobs: {} succeeded, {} failed",
            self.jobs,
            self.succeeded,
            self.failed()
        )?;
        if !self.failures.is_empty() {
            let kinds: Vec<String> = self
                .failures
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            write!(f, " ({})", kinds.join(", "))?;
        }
        if self.cancelled > 0 {
            write!(
                f,
                ", {} cancelled ({} running, {} never started)",
                self.cancelled,
                self.cancelled - self.never_started,
                self.never_started
            )?;
        }
        writeln!(f)?;
        if let Some((v, id, config)) = &self.best {
            writeln!(
                f,
                "best objective {} (job {id}): {}",
                shown(*v),
                Value::Object(config.clone())
            )?;
        } else if !self.pareto.is_empty() {
            let ids: Vec<String> = self
                .pareto
                .iter()
                .take(10)
                .map(|(_, id)| id.to_string())
                .collect();
            let more = if self.pareto.len() > 10 { ", ..." } else { "" };
            let over = if self.pareto_left_out > 0 {
                "over "
            } else {
                ""
            };
            writeln!(
                f,
                "{over}{} Pareto-optimal jobs: {}{more}",
                self.pareto.len(),
                ids.join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Failure;

    fn job(n: u64, objective: Objective) -> Job {
        let mut j = Job::new(JobId::new("0", n), Map::new());
        j.objective = Some(objective);
        j
    }

    #[test]
    fn best_and_failures() {
        let mut s = Summary::default();
        s.add(&job(0, Objective::Value(1.0)));
        s.add(&job(1, Objective::Value(3.0)));
        s.add(&job(2, Objective::Value(f64::NAN)));
        s.add(&job(3, Objective::Failure("F_mine".into())));
        let mut t = job(4, Objective::Value(0.0));
        t.fail(Failure::new(FailureKind::Timeout, "slow"));
        s.add(&t);
        let mut c = job(5, Objective::Value(0.0));
        c.fail(Failure::new(FailureKind::Cancelled, "cancelled"));
        c.metadata.insert("timestamp_start".into(), 0.5.into());
        s.add(&c);
        let mut queued = job(6, Objective::Value(0.0));
        queued.fail(Failure::new(FailureKind::Cancelled, "cancelled"));
        s.add(&queued);
        assert_eq!(
            (
                s.jobs,
                s.succeeded,
                s.failed(),
                s.cancelled,
                s.never_started
            ),
            (7, 3, 2, 2, 1)
        );
        assert_eq!(s.best.as_ref().unwrap().1, JobId::new("0", 1));
        let text = s.to_string();
        assert!(text.starts_with("7 jobs: 3 succeeded, 2 failed (objective F 1, timeout 1), 2 cancelled (1 running, 1 never started)\nbest objective 3 (job 0.1): {}"), "{text}");
    }

    #[test]
    fn pareto_front() {
        let mut s = Summary::default();
        for (n, v) in [
            [1.0, 1.0],
            [2.0, 0.0],
            [0.0, 2.0],
            [2.0, 2.0],
            [3.0, 0.0],
            [2.0, 2.0],
        ]
        .into_iter()
        .enumerate()
        {
            s.add(&job(n as u64, Objective::Multi(v.to_vec())));
        }
        let ids: Vec<u64> = s.pareto.iter().map(|(_, id)| id.number()).collect();
        assert_eq!(ids, [3, 4]);
        assert_eq!(s.best_text().unwrap(), "2 Pareto-optimal");
        assert_eq!(rate_text(3, 12.0), "0.25 jobs/s");
        assert_eq!(rate_text(5, 2.0), "2.5 jobs/s");
        assert_eq!(rate_text(12345, 1.0), "12345 jobs/s");
    }

    #[test]
    fn the_pareto_front_is_bounded() {
        let mut s = Summary::default();
        for n in 0..(MAX_PARETO as u64 + 5) {
            let x = n as f64;
            s.add(&job(n, Objective::Multi(vec![x, -x])));
        }
        assert_eq!(s.pareto.len(), MAX_PARETO);
        assert_eq!(s.pareto_left_out, 5);
        assert_eq!(
            s.best_text().unwrap(),
            format!("over {MAX_PARETO} Pareto-optimal")
        );
    }
}
