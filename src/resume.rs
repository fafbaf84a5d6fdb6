//! Resuming a search after a crash: a configuration is identified by its input position and
//! the sha256 of its canonical JSON (hidden metadata `_input_pos`, `_input_hash`); a search
//! records the module's sha256 and the policy it runs with, and a resume with another module
//! or policy is refused, and so is a resume of a search that another evaluator is still
//! running (its jobs' heartbeat is younger than [`LEASE`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::job::{Failure, FailureKind, Job, JobId, JobStatus};
use crate::sandbox::Policy;
use crate::storage::Storage;

/// Hidden metadata key: the configuration's position in the input (0-based).
pub const INPUT_POS: &str = "_input_pos";
/// Hidden metadata key: the sha256 of the configuration's canonical JSON.
pub const INPUT_HASH: &str = "_input_hash";

/// How long after its last heartbeat an evaluator's unfinished jobs count as abandoned (the
/// SQLite storage beats every second while jobs run).
pub const LEASE: Duration = Duration::from_secs(10);

/// The sha256 (hex) of `config` as canonical JSON (object keys sorted, at every depth).
pub fn config_hash(config: &Map<String, Value>) -> String {
    fn canonical(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), canonical(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }
    let text = canonical(&Value::Object(config.clone())).to_string();
    crate::sandbox::cache::sha256_hex(text.as_bytes())
}

/// The policy as a search records it: what shapes its jobs, without the compile limits (a
/// resume may give the compiler more time or memory).
fn job_policy(policy: &Policy) -> Result<Value> {
    let mut value = serde_json::to_value(policy).map_err(|e| Error::Option(e.to_string()))?;
    without_compile_limits(&mut value);
    Ok(value)
}

fn without_compile_limits(policy: &mut Value) -> &Value {
    if let Some(map) = policy.as_object_mut() {
        map.remove("compile_timeout");
        map.remove("compile_memory");
    }
    policy
}

/// Records the module and policy of a new search, or, when `resume`, checks that a search
/// being resumed was run with the same ones.
pub fn record_or_check(
    storage: &dyn Storage,
    search_id: &str,
    module_sha256: &str,
    policy: &Policy,
    resume: bool,
) -> Result<()> {
    let policy = job_policy(policy)?;
    if resume && let Some((who, ago)) = storage.live_owner(search_id, LEASE)? {
        return Err(Error::Resume(format!(
            "search {search_id} is still being run by another evaluator ({who}, alive \
             {:.1} s ago); resume it after that process has stopped",
            ago.as_secs_f64()
        )));
    }
    if resume {
        let stored_module = storage.load_search_value(search_id, "module_sha256")?;
        if let Some(Value::String(m)) = &stored_module
            && m != module_sha256
        {
            return Err(Error::Resume(format!(
                "search {search_id} was run with the module of sha256 {m}, and this module's is {module_sha256}"
            )));
        }
        if let Some(mut p) = storage.load_search_value(search_id, "policy")?
            && without_compile_limits(&mut p) != &policy
        {
            return Err(Error::Resume(format!(
                "search {search_id} was run with another sandbox policy (timeout, memory, fuel, grants…): \
                 it was {p}, now {policy}"
            )));
        }
        if stored_module.is_some() {
            return Ok(());
        }
    }
    storage.store_search_value(search_id, "module_sha256", Value::from(module_sha256))?;
    storage.store_search_value(search_id, "policy", policy)
}

/// The latest search of the storage (the highest id) that ran the module of sha256
/// `module_sha256`: what `--resume` without a search id resumes.
pub fn latest_search_of(storage: &dyn Storage, module_sha256: &str) -> Result<Option<String>> {
    let mut ids = storage.load_all_search_ids()?;
    ids.sort_by_key(|id| std::cmp::Reverse(id.parse::<u64>().unwrap_or(0)));
    for id in ids {
        if storage.load_search_value(&id, "module_sha256")? == Some(Value::from(module_sha256)) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// What a resume finds in the search it resumes, by (input position, hash) of configuration.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Configurations that finished DONE: skipped.
    pub finished: HashSet<(u64, String)>,
    /// Configurations whose job did not finish (cancelled, or abandoned by a dead evaluator):
    /// run again under that job's id.
    pub unfinished: HashMap<(u64, String), JobId>,
}

/// The configurations of the search that finished DONE, and the jobs of those that did not.
pub fn inputs(storage: &dyn Storage, search_id: &str) -> Result<Inputs> {
    let mut found = Inputs::default();
    storage.for_each_job(search_id, &mut |job| {
        if let Some(input) = input_of(&job) {
            if job.status == JobStatus::Done && job.objective.is_some() {
                found.unfinished.remove(&input);
                found.finished.insert(input);
            } else if !found.finished.contains(&input) {
                found.unfinished.insert(input, job.id);
            }
        }
        Ok(())
    })?;
    Ok(found)
}

fn input_of(job: &Job) -> Option<(u64, String)> {
    let pos = job.metadata.get(INPUT_POS)?.as_u64()?;
    let hash = job.metadata.get(INPUT_HASH)?.as_str()?;
    Some((pos, hash.to_string()))
}

/// Marks every job of the search that never finished (its evaluator died) CANCELLED, so the
/// search shows each configuration's latest attempt. Returns how many there were.
pub fn cancel_unfinished(storage: &dyn Storage, search_id: &str) -> Result<usize> {
    let mut stale = Vec::new();
    storage.for_each_job(search_id, &mut |job| {
        if job.objective.is_none() {
            stale.push(job.id);
        }
        Ok(())
    })?;
    for id in &stale {
        let mut outcome = Job::new(id.clone(), Map::new());
        outcome.status = JobStatus::Cancelled;
        outcome.fail(Failure::new(
            FailureKind::Cancelled,
            "abandoned: its evaluator stopped before the job finished; the search was resumed",
        ));
        storage.store_job_done(&outcome)?;
    }
    Ok(stale.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_hash_ignores_key_order_but_not_values() {
        let a = json!({"x": 1, "y": {"b": 2, "a": [1, {"d": 1, "c": 2}]}});
        let b = json!({"y": {"a": [1, {"c": 2, "d": 1}], "b": 2}, "x": 1});
        let c = json!({"x": 2, "y": {"b": 2, "a": [1, {"d": 1, "c": 2}]}});
        let h = |v: &Value| config_hash(v.as_object().unwrap());
        assert_eq!(h(&a), h(&b));
        assert_ne!(h(&a), h(&c));
        assert_eq!(h(&a).len(), 64);
    }
}
