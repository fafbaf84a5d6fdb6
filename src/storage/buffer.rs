//! Write buffering shared by the storages that sit behind a file or a server: writes are
//! collected per job and committed by a background thread at most [`COMMIT_WINDOW`] after
//! they were made, in one batch, and the thread renews the owner's heartbeat in between.
//! Reads commit what is buffered first ([`Buffer::flush`]), so a storage reads its own writes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::error::Result;
use crate::job::JobId;

/// The longest a write waits before it is committed.
pub const COMMIT_WINDOW: Duration = Duration::from_millis(10);

/// How often the owner of running jobs renews its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// The buffered writes of one job.
#[derive(Debug, Default)]
pub(crate) struct Delta {
    /// DeepHyper's integer status.
    pub status: Option<i64>,
    /// The configuration, as JSON text.
    pub config: Option<String>,
    /// The objective as JSON text (`Some(None)`: cleared).
    pub objective: Option<Option<String>>,
    /// Metadata to merge over the stored metadata.
    pub metadata: Map<String, Value>,
    /// The series, as JSON text.
    pub intermediate: Option<String>,
    /// The log.
    pub log: Option<String>,
    /// Claim the job for this storage instance (owner and heartbeat).
    pub owned: bool,
    /// The job finished (`store_job_done`): append it to the completion list, once.
    pub finished: bool,
}

impl Delta {
    /// True when the write adds metadata and nothing else.
    pub fn only_metadata(&self) -> bool {
        !self.metadata.is_empty()
            && self.status.is_none()
            && self.config.is_none()
            && self.objective.is_none()
            && self.intermediate.is_none()
            && self.log.is_none()
            && !self.finished
    }

    /// Takes a finished job's outcome (see [`crate::Storage::store_job_done`]).
    pub fn take_outcome(&mut self, job: &crate::job::Job) {
        self.status = Some(job.status as i64);
        self.objective = Some(job.objective.as_ref().map(|o| o.to_json().to_string()));
        for (k, v) in &job.metadata {
            self.metadata.entry(k.clone()).or_insert_with(|| v.clone());
        }
        self.intermediate = Some(crate::float::series::to_value(&job.intermediate).to_string());
        self.log = Some(job.log.clone());
        self.finished = true;
    }
}

/// Writes waiting for their commit.
#[derive(Debug, Default)]
pub(crate) struct Pending<X> {
    /// Per job.
    pub jobs: HashMap<JobId, Delta>,
    /// Search values: (search id, key, JSON text), in the order stored.
    pub values: Vec<(String, String, String)>,
    /// What else the storage commits with them.
    pub extra: X,
    since: Option<Instant>,
}

impl<X> Pending<X> {
    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.values.is_empty() && self.since.is_none()
    }
}

/// A storage's side of the buffer: how a batch is committed and a heartbeat renewed.
pub(crate) trait Commit: Send + Sync + 'static {
    /// Extra writes committed with the batch (nothing for most storages).
    type Extra: Default + Send;
    /// Commits a batch in one step (all of it or nothing).
    fn commit(&self, pending: &Pending<Self::Extra>) -> Result<()>;
    /// Renews the heartbeat of the jobs this instance owns.
    fn beat(&self);
}

struct Inner<C: Commit> {
    commit: C,
    pending: Mutex<Pending<C::Extra>>,
    /// A batch whose commit failed: committed before any later one, and held (never
    /// dropped) until it is. Its lock is held while a batch is taken and committed, so that
    /// batches commit in order.
    retry: Mutex<Option<Pending<C::Extra>>>,
    wake: Condvar,
    stop: AtomicBool,
}

/// Buffered writes and the thread that commits them.
pub(crate) struct Buffer<C: Commit> {
    inner: Arc<Inner<C>>,
    thread: Option<JoinHandle<()>>,
}

impl<C: Commit> Buffer<C> {
    /// Starts the committing thread, named `name`.
    pub fn start(commit: C, name: &str) -> Result<Buffer<C>> {
        let inner = Arc::new(Inner {
            commit,
            pending: Mutex::new(Pending::default()),
            retry: Mutex::new(None),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let i = inner.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || i.run())?;
        Ok(Buffer {
            inner,
            thread: Some(thread),
        })
    }

    /// The storage's side.
    pub fn commit(&self) -> &C {
        &self.inner.commit
    }

    /// Buffers a write of job `id`.
    pub fn job(&self, id: &JobId, f: impl FnOnce(&mut Delta)) {
        self.with(|p| f(p.jobs.entry(id.clone()).or_default()));
    }

    /// Buffers a search value.
    pub fn value(&self, search_id: &str, key: &str, value: &Value) {
        self.with(|p| {
            p.values
                .push((search_id.into(), key.into(), value.to_string()))
        });
    }

    /// Buffers some other write.
    pub fn with(&self, f: impl FnOnce(&mut Pending<C::Extra>)) {
        let mut p = self.inner.pending.lock().unwrap();
        f(&mut p);
        if p.since.is_none() {
            p.since = Some(Instant::now());
            self.inner.wake.notify_one();
        }
    }

    /// Commits every buffered write now (a batch whose commit failed before first).
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
}

impl<C: Commit> Inner<C> {
    fn flush(&self) -> Result<()> {
        let mut retry = self.retry.lock().unwrap();
        if let Some(failed) = retry.as_ref() {
            self.commit.commit(failed)?;
            *retry = None;
        }
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        if pending.is_empty() {
            return Ok(());
        }
        self.commit
            .commit(&pending)
            .inspect_err(|_| *retry = Some(pending))
    }

    fn run(&self) {
        let mut last_beat = Instant::now();
        let mut failing = false;
        while !self.stop.load(Ordering::SeqCst) {
            {
                let p = self.pending.lock().unwrap();
                // After a failed commit, the next attempt waits a heartbeat.
                let wait = match p.since {
                    Some(_) if failing => HEARTBEAT,
                    Some(s) => COMMIT_WINDOW.saturating_sub(s.elapsed()),
                    None => HEARTBEAT,
                };
                if !wait.is_zero() {
                    let _ = self.wake.wait_timeout(p, wait).unwrap();
                }
            }
            // A failure is reported by the next read or flush, which tries again.
            failing = self.flush().is_err();
            if last_beat.elapsed() >= HEARTBEAT {
                last_beat = Instant::now();
                self.commit.beat();
            }
        }
    }
}

impl<C: Commit> Drop for Buffer<C> {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.inner.flush();
    }
}
