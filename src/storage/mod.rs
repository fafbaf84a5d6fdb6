//! Storage of searches and jobs, shared by evaluators: DeepHyper's operations plus a
//! completion cursor, so that an evaluator gathers the jobs others finished in O(new jobs).

mod buffer;
mod memory;
mod owner;
pub mod redis;
mod sqlite;

pub use buffer::COMMIT_WINDOW;
pub use memory::MemoryStorage;
pub(crate) use owner::new_id as owner_id;
pub use redis::{RedisOptions, RedisStorage};
pub use sqlite::{SCHEMA_VERSION, SqliteStorage};

use serde_json::{Map, Value};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobStatus};

/// Where searches and jobs are kept. Every method may be called from several threads.
pub trait Storage: Send + Sync {
    /// Creates a search and returns its id (`"0"`, `"1"`, ...).
    fn create_new_search(&self) -> Result<String>;
    /// Creates a job in `search_id` and returns its id (`"<search>.<n>"`).
    fn create_new_job(&self, search_id: &str) -> Result<JobId>;
    /// Creates one READY job per configuration in `search_id`, in one step: the ids are
    /// contiguous and follow the search's last id, whatever other evaluators of the storage
    /// create at the same time, and every id has its row, holding its configuration.
    fn create_new_jobs(
        &self,
        search_id: &str,
        configs: &[Map<String, Value>],
    ) -> Result<Vec<JobId>> {
        configs
            .iter()
            .map(|config| {
                let id = self.create_new_job(search_id)?;
                self.store_job_in(&id, config)?;
                Ok(id)
            })
            .collect()
    }
    /// Starts a finished or abandoned job over under the same id: its outcome so far (status,
    /// objective, metadata, series, log) is kept apart as an earlier attempt (see
    /// [`load_attempts`](Self::load_attempts)), and the job is READY again with its
    /// configuration, owned by this storage. A resume runs a configuration again this way.
    fn restart_job(&self, job_id: &JobId) -> Result<()>;
    /// The earlier attempts of a job, oldest first (their configuration left empty).
    fn load_attempts(&self, job_id: &JobId) -> Result<Vec<Job>>;
    /// The earlier attempts of every job of a search that has any, by job number, each
    /// oldest first: [`load_attempts`](Self::load_attempts) for a whole search in one read.
    fn load_search_attempts(&self, search_id: &str) -> Result<HashMap<u64, Vec<Job>>>;
    /// Stores a value attached to the search.
    fn store_search_value(&self, search_id: &str, key: &str, value: Value) -> Result<()>;
    /// Loads a value attached to the search.
    fn load_search_value(&self, search_id: &str, key: &str) -> Result<Option<Value>>;
    /// Stores a job's input: its configuration.
    fn store_job_in(&self, job_id: &JobId, config: &Map<String, Value>) -> Result<()>;
    /// Stores a job's output: its objective as JSON.
    fn store_job_out(&self, job_id: &JobId, objective: Value) -> Result<()>;
    /// Stores one metadata item of a job.
    fn store_job_metadata(&self, job_id: &JobId, key: &str, value: Value) -> Result<()>;
    /// Stores a job's status.
    fn store_job_status(&self, job_id: &JobId, status: JobStatus) -> Result<()>;
    /// Stores a job's intermediate `(budget, objective)` series.
    fn store_job_intermediate(&self, job_id: &JobId, series: &[(f64, f64)]) -> Result<()>;
    /// Stores a job's log.
    fn store_job_log(&self, job_id: &JobId, log: &str) -> Result<()>;
    /// Stores a finished job's outcome (status, objective, series, log; its metadata is merged
    /// into the stored metadata, keys already stored staying) and appends it to the search's
    /// completion list, once. The configuration is not touched.
    fn store_job_done(&self, job: &Job) -> Result<()>;
    /// All search ids.
    fn load_all_search_ids(&self) -> Result<Vec<String>>;
    /// All job ids of a search, in creation order.
    fn load_all_job_ids(&self, search_id: &str) -> Result<Vec<JobId>>;
    /// One job.
    fn load_job(&self, job_id: &JobId) -> Result<Job>;
    /// Several jobs, in the order asked.
    fn load_jobs(&self, job_ids: &[JobId]) -> Result<Vec<Job>>;
    /// Every job of a search, in creation order.
    fn load_search(&self, search_id: &str) -> Result<Vec<Job>>;
    /// Calls `f` with every job of a search, in creation order, without holding them all
    /// (a SQLite storage reads them row by row); stops at the first error of `f`, which must
    /// not call this storage.
    fn for_each_job(&self, search_id: &str, f: &mut dyn FnMut(Job) -> Result<()>) -> Result<()> {
        self.load_search(search_id)?.into_iter().try_for_each(f)
    }
    /// A job's status.
    fn load_job_status(&self, job_id: &JobId) -> Result<JobStatus> {
        self.load_job(job_id).map(|j| j.status)
    }
    /// The objectives of every job that has one.
    fn load_out_from_all_jobs(&self, search_id: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        self.for_each_job(search_id, &mut |j| {
            out.extend(j.objective.as_ref().map(crate::output::Objective::to_json));
            Ok(())
        })?;
        Ok(out)
    }
    /// One metadata key of every job that has it.
    fn load_metadata_from_all_jobs(&self, search_id: &str, key: &str) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        self.for_each_job(search_id, &mut |mut j| {
            values.extend(j.metadata.remove(key));
            Ok(())
        })?;
        Ok(values)
    }
    /// Another evaluator still running jobs of the search: who it is (`process PID on HOST`),
    /// the owner of an unfinished job whose heartbeat is younger than `lease`, and how long ago
    /// it beat. Storages that only one process can see (memory) have none.
    fn live_owner(&self, _search_id: &str, _lease: Duration) -> Result<Option<(String, Duration)>> {
        Ok(None)
    }
    /// The jobs finished (stored with `store_job_done`) since position `cursor` of the
    /// search's completion list, and the new cursor. Objective 0 is included.
    fn finished_since(&self, search_id: &str, cursor: u64) -> Result<(Vec<JobId>, u64)>;
    /// Removes a search: its jobs, attempts and values. Its id is not given out again.
    fn delete_search(&self, search_id: &str) -> Result<()>;
    /// This storage as a Redis storage, if it is one (the redis method needs one).
    fn as_redis(&self) -> Option<&RedisStorage> {
        None
    }
}

/// Every job of a search through [`Storage::for_each_job`]: `load_search` of the storages
/// that read row by row.
pub(crate) fn collect_search(storage: &dyn Storage, search_id: &str) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    storage.for_each_job(search_id, &mut |job| {
        jobs.push(job);
        Ok(())
    })?;
    Ok(jobs)
}

/// A stored job's typed failure, read back from its `failure`, `failure_message` and
/// `trap_code` metadata.
pub(crate) fn failure_of(metadata: &Map<String, Value>) -> Option<crate::job::Failure> {
    let kind: crate::job::FailureKind =
        serde_json::from_value(metadata.get("failure")?.clone()).ok()?;
    let message = metadata
        .get("failure_message")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut f = crate::job::Failure::new(kind, message);
    f.trap_code = metadata
        .get("trap_code")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(f)
}

/// Opens the storage named by `url`: `memory`, `sqlite:PATH`, a path (a SQLite file), or
/// `redis://…`/`rediss://…` (see [`crate::redis`]; its password may come from
/// `$WASMEVAL_REDIS_PASSWORD`).
pub fn open(url: &str) -> Result<Arc<dyn Storage>> {
    open_with(url, &redis::RedisOptions::default())
}

/// [`open`], with the options of a Redis server (a password file, a TLS CA, `insecure`).
pub fn open_with(url: &str, options: &redis::RedisOptions) -> Result<Arc<dyn Storage>> {
    match url {
        url if redis::is_redis_url(url) => Ok(Arc::new(redis::RedisStorage::open(url, options)?)),
        "memory" => Ok(Arc::new(MemoryStorage::new())),
        "" => Err(Error::Option(
            "an empty storage URL; use `memory` or a SQLite file path".into(),
        )),
        other => {
            let path = other.strip_prefix("sqlite:").unwrap_or(other);
            Ok(Arc::new(SqliteStorage::open(path)?))
        }
    }
}
