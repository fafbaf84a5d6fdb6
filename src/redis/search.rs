//! A search served through Redis: its keys, and what its evaluator offers the workers.
//!
//! - `PREFIX:active`: the searches whose evaluators run (a set of search ids).
//! - `PREFIX:search:SID.setup`: a hash: `offer` (an [`Offer`] as JSON), `module` (its
//!   sha256), `deadline` (Unix seconds, or empty), `closing` (`0`/`1`), `evaluators` (how many
//!   run the search).
//! - `PREFIX:search:SID.jobs`: the jobs, a stream read by the consumer group [`GROUP`]; each
//!   entry holds a batch (`jobs`: `[[id, configuration], …]` as JSON).
//! - `PREFIX:search:SID.cancels`: the ids of cancelled jobs, in order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::sandbox::Policy;
use crate::storage::RedisStorage;

/// The consumer group of the workers.
pub const GROUP: &str = "workers";

/// How often a worker renews its claim on the jobs it holds; one that missed 3 beats is
/// taken for dead, and its jobs are run by another.
pub const BEAT: Duration = Duration::from_secs(1);

/// What an evaluator offers: the module to fetch and how its jobs run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offer {
    /// The evaluator's build ([`crate::worker::BUILD`]): a worker of another one refuses.
    pub build: String,
    /// The module's name, for messages.
    pub name: String,
    /// The module's sha256 (its bytes are under `PREFIX:module:SHA256`).
    pub sha256: String,
    /// The policy the jobs run under.
    pub policy: Policy,
    /// The run-function kwargs, as JSON.
    pub kwargs: String,
    /// How many times a job whose worker process died runs again.
    pub retries: u32,
}

/// The keys of search `sid`.
pub struct Keys {
    /// The setup hash.
    pub setup: String,
    /// The jobs stream.
    pub jobs: String,
    /// The cancelled jobs.
    pub cancels: String,
    /// The completion list (the storage's).
    pub done: String,
    /// The set of active searches.
    pub active: String,
}

impl Keys {
    /// The keys of `sid` in `storage`.
    pub fn of(storage: &RedisStorage, sid: &str) -> Keys {
        let key = |rest: &str| storage.key(&format!("search:{sid}.{rest}"));
        Keys {
            setup: key("setup"),
            jobs: key("jobs"),
            cancels: key("cancels"),
            done: key("done"),
            active: storage.key("active"),
        }
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A deadline of this process as Unix seconds (how it travels to other machines).
pub fn deadline_text(deadline: Option<std::time::Instant>) -> String {
    deadline.map_or_else(String::new, |d| {
        let left = d.saturating_duration_since(std::time::Instant::now());
        format!("{}", unix_now() + left.as_secs_f64())
    })
}

/// A deadline read back: how long from now (zero when past).
pub fn deadline_in(text: &str) -> Option<Duration> {
    let at: f64 = text.parse().ok()?;
    Some(Duration::from_secs_f64((at - unix_now()).max(0.0)))
}
