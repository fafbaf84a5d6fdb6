//! A search served through Redis: its keys, and what its evaluator offers the workers.
//!
//! - `PREFIX:active`: the searches whose evaluators run (a set of search ids).
//! - `PREFIX:search:SID.setup`: a hash: `offer` (an [`Offer`] as JSON), `module` (its
//!   sha256), `evaluators` (how many run the search).
//! - `PREFIX:search:SID.jobs`: the jobs, a stream read by the consumer group [`GROUP`]; each
//!   entry holds a batch (`jobs`: `[[id, configuration], …]` as JSON).
//! - `PREFIX:search:SID.cancels`: the ids of cancelled jobs, in order (an evaluator cancels
//!   its own jobs one by one, at its deadline and when it closes too: other evaluators may
//!   share the search).

use std::time::Duration;

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
