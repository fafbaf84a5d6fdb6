//! The redis method's backend: one thread puts the evaluator's jobs on the search's stream in
//! batches (sized to about [`AHEAD`] of work once a job's length is known), reads the outcomes
//! the workers stored back from the completion list, as untrusted data, and cancels this
//! evaluator's own jobs (one by one, never the search: other evaluators may share it) when
//! asked, at its deadline and when it closes.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde_json::Value;

use super::search::{GROUP, Keys, Offer};
use crate::backend::{Control, Finished, Remote, Shared, Task};
use crate::error::{RedisError, Result};
use crate::job::{Failure, FailureKind, Job, JobId, JobStatus};
use crate::sandbox::{Policy, RunOutput, Signals};
use crate::storage::redis::{OWNER_TTL, blob};
use crate::storage::{RedisStorage, Storage};

/// How much work one stream entry holds, once a job's length is known.
const AHEAD: Duration = Duration::from_millis(20);
/// Most jobs in one entry.
const MAX_BATCH: usize = 256;
/// Most jobs on the stream and not finished; the rest wait here.
const OUTSTANDING: usize = 2 * IN_FLIGHT;

/// How many jobs a batch run keeps pending with the redis method (see
/// [`crate::Evaluator::jobs_in_flight`]).
pub const IN_FLIGHT: usize = 4096;
/// How often the completion list is looked at while jobs are out (workers commit their
/// outcomes in batches, every few milliseconds).
const READ_BACK_EVERY: Duration = Duration::from_millis(1);
/// How long a closing evaluator waits for the workers to report its jobs cancelled before
/// it stores them cancelled itself (none may be running).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The redis method's backend (see the [module docs](crate::redis)).
pub struct RedisPool;

impl RedisPool {
    /// Offers the search to the workers: stores the module by value and the offer, makes
    /// the stream and its group, and marks the search active; returns the backend.
    pub fn start(
        shared: Shared,
        signals: Arc<Signals>,
        retries: u32,
        done: Sender<Finished>,
    ) -> Result<Remote> {
        let storage = shared.recorder.storage.clone();
        let redis = storage.as_redis().ok_or(RedisError::NeedsRedisStorage)?;
        let sid = shared.recorder.search_id.to_string();
        let handle = shared
            .module
            .handle(&shared.policy)
            .expect("an evaluator loads its module from its bytes");
        let offer = Offer {
            build: crate::worker::BUILD.into(),
            name: handle.name.display().to_string(),
            sha256: handle.sha256.clone(),
            policy: (*shared.policy).clone(),
            kwargs: shared.kwargs.to_string(),
            retries,
        };
        blob::put(redis, &sid, &handle)?;
        let keys = Keys::of(redis, &sid);
        let offer_text = serde_json::to_string(&offer).expect("serializable");
        // This evaluator and the others whose lease is alive: an evaluator that died without
        // leaving (SIGKILL, a lost machine) is not counted, so that the last one to leave
        // still ends the search.
        let evaluators = 1 + redis.live_owners(&sid, OWNER_TTL)?.len();
        redis.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(&keys.setup)
                .arg("offer")
                .arg(&offer_text)
                .arg("module")
                .arg(&offer.sha256)
                .arg("evaluators")
                .arg(evaluators)
                .ignore()
                .cmd("SADD")
                .arg(&keys.active)
                .arg(&sid)
                .ignore()
                .exec(c)
        })?;
        let created = redis.run(|c| {
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&keys.jobs)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .exec(c)
                .or_else(|e| match e.code() {
                    Some("BUSYGROUP") => Ok(()),
                    _ => Err(e),
                })
        });
        if let Err(e) = created {
            leave(redis, &sid, &offer.sha256);
            return Err(e);
        }
        let deadline = signals.deadline();
        Ok(Remote::spawn("wasmeval-redis-pool", move |controls| {
            talk(&shared, &keys, deadline, &controls, &done);
            if let Some(redis) = shared.recorder.storage.as_redis() {
                leave(redis, &sid, &offer.sha256);
            }
        })?)
    }
}

/// This evaluator leaves the search: the last one takes it off the active set and deletes
/// its stream; the module is released.
fn leave(redis: &RedisStorage, sid: &str, sha256: &str) {
    let keys = Keys::of(redis, sid);
    let left: Result<i64> = redis.run(|c| {
        redis::cmd("HINCRBY")
            .arg(&keys.setup)
            .arg("evaluators")
            .arg(-1)
            .query(c)
    });
    if matches!(left, Ok(n) if n <= 0) {
        let _ = redis.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("SREM")
                .arg(&keys.active)
                .arg(sid)
                .ignore()
                .cmd("DEL")
                .arg(&keys.jobs)
                .arg(&keys.cancels)
                .ignore()
                .cmd("HSET")
                .arg(&keys.setup)
                .arg("evaluators")
                .arg(0)
                .ignore()
                .exec(c)
        });
    }
    let _ = blob::release(redis, sid, sha256);
}

/// The pool thread's state.
struct Talk<'a> {
    shared: &'a Shared,
    redis: &'a RedisStorage,
    keys: &'a Keys,
    queue: VecDeque<Task>,
    held: HashSet<JobId>,
    cursor: u64,
    read_at: Instant,
    avg_run: Option<Duration>,
    closing: Option<Instant>,
    deadline: Option<Instant>,
    done: &'a Sender<Finished>,
}

fn talk(
    shared: &Shared,
    keys: &Keys,
    deadline: Option<Instant>,
    controls: &Receiver<Control>,
    done: &Sender<Finished>,
) {
    let redis = shared
        .recorder
        .storage
        .as_redis()
        .expect("checked by start");
    // Outcomes stored before this evaluator joined are not its own.
    let cursor = redis
        .run(|c| redis::cmd("LLEN").arg(&keys.done).query(c))
        .unwrap_or(0);
    let mut t = Talk {
        shared,
        redis,
        keys,
        queue: VecDeque::new(),
        held: HashSet::new(),
        cursor,
        read_at: Instant::now(),
        avg_run: None,
        closing: None,
        deadline,
        done,
    };
    let mut wait = Duration::from_micros(100);
    let mut next = None;
    loop {
        let mut active = false;
        loop {
            let control = match next.take().map_or_else(|| controls.try_recv(), Ok) {
                Ok(c) => c,
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return,
            };
            active = true;
            t.control(control);
        }
        active |= t.send_out();
        active |= t.read_back();
        t.cut_off_at_deadline();
        t.give_up_if_closed();
        if active {
            wait = Duration::from_micros(100);
        }
        match controls.recv_timeout(wait) {
            Ok(control) => next = Some(control),
            Err(RecvTimeoutError::Timeout) => wait = (wait * 2).min(Duration::from_millis(2)),
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl Talk<'_> {
    fn control(&mut self, control: Control) {
        let keys = self.keys;
        // A failed write here is retried by the connection while the server comes back; past
        // that, the workers miss it and the jobs end by their own limits.
        let _ = match control {
            Control::Task(task) => {
                self.queue.push_back(task);
                Ok(())
            }
            // A queued job sees its cancel when it would be sent out.
            Control::Cancel(id) => self.redis.run(|c| {
                redis::cmd("RPUSH")
                    .arg(&keys.cancels)
                    .arg(id.as_str())
                    .exec(c)
            }),
            Control::Deadline(d) => {
                self.deadline = d;
                Ok(())
            }
            Control::Closing(closing) => {
                self.closing = closing.then(Instant::now);
                if closing {
                    self.cancel_held();
                }
                Ok(())
            }
        };
    }

    /// Cancels every job of this evaluator on the stream or running.
    fn cancel_held(&self) {
        let ids: Vec<&str> = self.held.iter().map(JobId::as_str).collect();
        for chunk in ids.chunks(1024) {
            let _ = self.redis.run(|c| {
                redis::cmd("RPUSH")
                    .arg(&self.keys.cancels)
                    .arg(chunk)
                    .exec(c)
            });
        }
    }

    /// At the deadline, the jobs out are cancelled (once).
    fn cut_off_at_deadline(&mut self) {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.deadline = None;
            self.cancel_held();
        }
    }

    /// A job that ends here, never sent: cut off by the deadline, cancelled or closing.
    fn complete_here(&self, id: JobId, why: FailureKind) {
        let _ = self.done.send(
            self.shared
                .recorder
                .complete(id, RunOutput::never_started(why)),
        );
    }

    /// Jobs per entry.
    fn batch(&self) -> usize {
        self.avg_run.map_or(1, |d| {
            ((AHEAD.as_nanos() / d.as_nanos().max(1)) as usize).clamp(1, MAX_BATCH)
        })
    }

    /// Puts queued jobs on the stream, as many as [`OUTSTANDING`] leaves room for.
    fn send_out(&mut self) -> bool {
        let now = Instant::now();
        let mut pipe = redis::pipe();
        let mut sent = Vec::new();
        while self.held.len() + sent.len() < OUTSTANDING && !self.queue.is_empty() {
            let mut entry = Vec::new();
            while entry.len() < self.batch()
                && self.held.len() + sent.len() + entry.len() < OUTSTANDING
                && let Some(task) = self.queue.pop_front()
            {
                if let Some(why) = task.control.stop_reason(now, None) {
                    self.complete_here(task.id, why);
                    continue;
                }
                entry.push(task);
            }
            if entry.is_empty() {
                continue;
            }
            let jobs: Vec<(&str, &str)> = entry
                .iter()
                .map(|t| (t.id.as_str(), t.config.as_str()))
                .collect();
            pipe.cmd("XADD")
                .arg(&self.keys.jobs)
                .arg("*")
                .arg("jobs")
                .arg(serde_json::to_string(&jobs).expect("serializable"))
                .ignore();
            sent.extend(entry);
        }
        if sent.is_empty() {
            return false;
        }
        if self.redis.run(|c| pipe.exec(c)).is_err() {
            // The server is gone past the reconnect window: these jobs cannot run.
            for task in sent {
                let out = RunOutput::without_run(Failure::new(
                    FailureKind::Startup,
                    "the Redis server could not be reached to queue the job",
                ));
                let _ = self.done.send(self.shared.recorder.complete(task.id, out));
            }
            return true;
        }
        self.held.extend(sent.into_iter().map(|t| t.id));
        true
    }

    /// Reads the outcomes the workers stored since the last look.
    fn read_back(&mut self) -> bool {
        if self.held.is_empty() || self.read_at.elapsed() < READ_BACK_EVERY {
            return false;
        }
        self.read_at = Instant::now();
        // What the workers stored; this evaluator's own writes need not be committed first.
        let Ok((ids, cursor)) = self
            .redis
            .finished_by_others(&self.shared.recorder.search_id, self.cursor)
        else {
            return false;
        };
        self.cursor = cursor;
        let mine: Vec<JobId> = ids.into_iter().filter(|id| self.held.remove(id)).collect();
        if mine.is_empty() {
            return false;
        }
        self.report(&mine);
        true
    }

    fn report(&mut self, ids: &[JobId]) {
        let ns: Vec<u64> = ids.iter().map(JobId::number).collect();
        let read = self.redis.read_jobs(&self.shared.recorder.search_id, &ns);
        let jobs = match read {
            Ok(jobs) => ids
                .iter()
                .zip(jobs)
                .map(|(id, job)| {
                    job.unwrap_or_else(|| Job::new(id.clone(), serde_json::Map::new()))
                })
                .collect::<Vec<_>>(),
            Err(e) => ids
                .iter()
                .map(|id| {
                    let mut job = Job::new(id.clone(), serde_json::Map::new());
                    job.status = JobStatus::Done;
                    job.fail(Failure::new(
                        FailureKind::BadOutput,
                        format!("its stored outcome could not be read: {e}"),
                    ));
                    job
                })
                .collect(),
        };
        for mut job in jobs {
            untrusted(&mut job, &self.shared.policy);
            if let Some(ran) = job.duration().filter(|d| d.is_finite() && *d >= 0.0) {
                let ran = Duration::from_secs_f64(ran.min(1e6));
                self.avg_run = Some(self.avg_run.map_or(ran, |avg| (avg * 7 + ran) / 8));
            }
            let _ = self.done.send(Finished {
                id: job.id.clone(),
                outcome: job,
            });
        }
    }

    /// A closing evaluator whose workers did not report its jobs cancelled in time (there
    /// may be none) stores them cancelled itself; an outcome a worker stored first wins.
    fn give_up_if_closed(&mut self) {
        if self.held.is_empty() || self.closing.is_none_or(|c| c.elapsed() <= CLOSE_WAIT) {
            return;
        }
        let ids: Vec<JobId> = self.held.drain().collect();
        for id in &ids {
            let mut job = Job::new(id.clone(), serde_json::Map::new());
            job.status = JobStatus::Cancelled;
            job.fail(Failure::new(
                FailureKind::Cancelled,
                format!(
                    "no worker reported the job within {CLOSE_WAIT:?} of the evaluator closing"
                ),
            ));
            let _ = self.redis.store_job_done(&job);
        }
        self.report(&ids);
    }
}

/// Holds an outcome read back from the storage to what this evaluator's own jobs may
/// produce: a finished status, an objective, the policy's caps on the log and the series.
fn untrusted(job: &mut Job, policy: &Policy) {
    if !matches!(job.status, JobStatus::Done | JobStatus::Cancelled) || job.objective.is_none() {
        let status = job.status.name();
        job.status = JobStatus::Done;
        job.fail(Failure::new(
            FailureKind::BadOutput,
            format!(
                "the stored outcome is not a finished job's (status {status}, or no objective)"
            ),
        ));
    }
    if crate::output::cut(
        &mut job.log,
        policy.log_cap.saturating_add(policy.stderr_cap),
    ) {
        job.metadata.insert("truncated".into(), Value::Bool(true));
    }
    if job.intermediate.len() > policy.max_records {
        job.intermediate.truncate(policy.max_records);
        job.metadata.insert("truncated".into(), Value::Bool(true));
    }
}
