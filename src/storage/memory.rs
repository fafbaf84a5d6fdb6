//! The in-memory storage: the library's default, shared by the evaluators of one process.

use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobStatus};
use crate::output::Objective;
use crate::storage::Storage;

/// Which jobs of a search finished, in order and as a set.
#[derive(Default)]
struct Done {
    finished: Vec<u64>,
    done: std::collections::HashSet<u64>,
}

#[derive(Default)]
struct Search {
    values: Map<String, Value>,
    jobs: Vec<Job>,
    done: Done,
    attempts: std::collections::HashMap<u64, Vec<Job>>,
    deleted: bool,
}

/// Searches and jobs in memory. Share one between evaluators with an `Arc`.
#[derive(Default)]
pub struct MemoryStorage {
    searches: Mutex<Vec<Search>>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    fn with_search<R>(&self, search_id: &str, f: impl FnOnce(&mut Search) -> R) -> Result<R> {
        let mut searches = self.searches.lock().unwrap();
        let search = search_id
            .parse::<usize>()
            .ok()
            .and_then(|i| searches.get_mut(i))
            .filter(|s| !s.deleted)
            .ok_or_else(|| Error::UnknownSearch(search_id.to_string()))?;
        Ok(f(search))
    }

    fn with_job<R>(&self, job_id: &JobId, f: impl FnOnce(&mut Job, &mut Done) -> R) -> Result<R> {
        self.with_search(job_id.search(), |s| {
            let n = job_id.number();
            match s.jobs.get_mut(n as usize) {
                Some(job) if job.id == *job_id => Ok(f(job, &mut s.done)),
                _ => Err(Error::UnknownJob(job_id.to_string())),
            }
        })?
    }

    /// Writes a job that has no outcome yet (a finished job's status and outcome stay).
    fn with_open_job(&self, job_id: &JobId, f: impl FnOnce(&mut Job)) -> Result<()> {
        self.with_job(job_id, |j, s| {
            if !s.done.contains(&job_id.number()) {
                f(j)
            }
        })
    }
}

impl Storage for MemoryStorage {
    fn create_new_search(&self) -> Result<String> {
        let mut searches = self.searches.lock().unwrap();
        searches.push(Search::default());
        Ok((searches.len() - 1).to_string())
    }

    fn create_new_job(&self, search_id: &str) -> Result<JobId> {
        self.with_search(search_id, |s| {
            let id = JobId::new(search_id, s.jobs.len() as u64);
            s.jobs.push(Job::new(id.clone(), Map::new()));
            id
        })
    }

    fn create_new_jobs(
        &self,
        search_id: &str,
        configs: &[Map<String, Value>],
    ) -> Result<Vec<JobId>> {
        self.with_search(search_id, |s| {
            configs
                .iter()
                .map(|config| {
                    let id = JobId::new(search_id, s.jobs.len() as u64);
                    s.jobs.push(Job::new(id.clone(), config.clone()));
                    id
                })
                .collect()
        })
    }

    fn restart_job(&self, job_id: &JobId) -> Result<()> {
        let earlier = self.with_job(job_id, |j, d| {
            d.done.remove(&job_id.number());
            let fresh = Job::new(j.id.clone(), j.config.clone());
            let mut earlier = std::mem::replace(j, fresh);
            earlier.config = Map::new();
            earlier
        })?;
        self.with_search(job_id.search(), |s| {
            s.attempts.entry(job_id.number()).or_default().push(earlier)
        })
    }

    fn load_attempts(&self, job_id: &JobId) -> Result<Vec<Job>> {
        self.with_search(job_id.search(), |s| {
            s.attempts
                .get(&job_id.number())
                .cloned()
                .unwrap_or_default()
        })
    }

    fn load_search_attempts(
        &self,
        search_id: &str,
    ) -> Result<std::collections::HashMap<u64, Vec<Job>>> {
        self.with_search(search_id, |s| s.attempts.clone())
    }

    fn store_search_value(&self, search_id: &str, key: &str, value: Value) -> Result<()> {
        self.with_search(search_id, |s| {
            s.values.insert(key.to_string(), value);
        })
    }

    fn load_search_value(&self, search_id: &str, key: &str) -> Result<Option<Value>> {
        self.with_search(search_id, |s| s.values.get(key).cloned())
    }

    fn store_job_in(&self, job_id: &JobId, config: &Map<String, Value>) -> Result<()> {
        self.with_job(job_id, |j, _| j.config = config.clone())
    }

    fn store_job_out(&self, job_id: &JobId, objective: Value) -> Result<()> {
        self.with_open_job(job_id, |j| j.objective = Objective::from_json(&objective))
    }

    fn store_job_metadata(&self, job_id: &JobId, key: &str, value: Value) -> Result<()> {
        self.with_job(job_id, |j, _| {
            j.metadata.insert(key.to_string(), value);
        })
    }

    fn store_job_status(&self, job_id: &JobId, status: JobStatus) -> Result<()> {
        self.with_open_job(job_id, |j| j.status = status)
    }

    fn store_job_intermediate(&self, job_id: &JobId, series: &[(f64, f64)]) -> Result<()> {
        self.with_open_job(job_id, |j| j.intermediate = series.to_vec())
    }

    fn store_job_log(&self, job_id: &JobId, log: &str) -> Result<()> {
        self.with_open_job(job_id, |j| j.log = log.to_string())
    }

    fn store_job_done(&self, job: &Job) -> Result<()> {
        self.with_job(&job.id, |j, s| {
            // The first stored outcome wins.
            if s.done.insert(job.id.number()) {
                j.merge_outcome(job.clone());
                s.finished.push(job.id.number());
            }
        })
    }

    fn load_all_search_ids(&self) -> Result<Vec<String>> {
        let searches = self.searches.lock().unwrap();
        Ok((0..searches.len())
            .filter(|&i| !searches[i].deleted)
            .map(|i| i.to_string())
            .collect())
    }

    fn load_all_job_ids(&self, search_id: &str) -> Result<Vec<JobId>> {
        self.with_search(search_id, |s| s.jobs.iter().map(|j| j.id.clone()).collect())
    }

    fn load_job(&self, job_id: &JobId) -> Result<Job> {
        self.with_job(job_id, |j, _| j.clone())
    }

    fn load_jobs(&self, job_ids: &[JobId]) -> Result<Vec<Job>> {
        job_ids.iter().map(|id| self.load_job(id)).collect()
    }

    fn load_search(&self, search_id: &str) -> Result<Vec<Job>> {
        self.with_search(search_id, |s| s.jobs.clone())
    }

    fn load_job_status(&self, job_id: &JobId) -> Result<JobStatus> {
        self.with_job(job_id, |j, _| j.status)
    }

    fn load_out_from_all_jobs(&self, search_id: &str) -> Result<Vec<Value>> {
        self.with_search(search_id, |s| {
            s.jobs
                .iter()
                .filter_map(|j| j.objective.as_ref().map(Objective::to_json))
                .collect()
        })
    }

    fn load_metadata_from_all_jobs(&self, search_id: &str, key: &str) -> Result<Vec<Value>> {
        self.with_search(search_id, |s| {
            s.jobs
                .iter()
                .filter_map(|j| j.metadata.get(key).cloned())
                .collect()
        })
    }

    fn finished_since(&self, search_id: &str, cursor: u64) -> Result<(Vec<JobId>, u64)> {
        self.with_search(search_id, |s| {
            let finished = &s.done.finished;
            let from = (cursor as usize).min(finished.len());
            let ids = finished[from..]
                .iter()
                .map(|n| JobId::new(search_id, *n))
                .collect();
            (ids, finished.len() as u64)
        })
    }

    fn delete_search(&self, search_id: &str) -> Result<()> {
        self.with_search(search_id, |s| {
            *s = Search {
                deleted: true,
                ..Search::default()
            }
        })
    }
}
