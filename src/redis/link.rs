//! A worker's side of the redis method: the node agent's [`Link`] to a Redis server. Between
//! searches it picks the next active one this worker may serve; during one it reads batches
//! of jobs from the search's stream (as a consumer of the group), passes the evaluators'
//! cancels on, stores the outcomes and acknowledges each entry with them, and renews its
//! claim on the entries it holds every [`BEAT`], taking over those of a worker that stopped
//! beating.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::search::{BEAT, GROUP, Keys, Offer};
use super::worker::Admission;
use crate::agent::{FromAgent, Link, Setup, ToAgent};
use crate::backend::Recorder;
use crate::job::{FailureKind, JobId, JobStatus};
use crate::sandbox::ModuleHandle;
use crate::storage::redis::blob;
use crate::storage::{RedisStorage, Storage};

/// How much work the worker holds per process, once a job's length is known.
const AHEAD: Duration = Duration::from_millis(20);
/// Most jobs held per process.
const PER_PROCESS: usize = 256;
/// How often new jobs are looked for while there is room.
const READ_EVERY: Duration = Duration::from_millis(1);
/// How often cancels and the search's end are looked for.
const CONTROL_EVERY: Duration = Duration::from_millis(20);
/// How often an idle worker looks for a search to serve.
const PICK_EVERY: Duration = Duration::from_millis(250);
/// An idle session ends after this long when another search waits.
const ROTATE_AFTER: Duration = Duration::from_secs(1);
/// A consumer idle this long with nothing pending is removed from the group.
const DEAD_CONSUMER: Duration = Duration::from_secs(30);

/// One search being served.
struct Session {
    sid: String,
    keys: Keys,
    recorder: Recorder,
    processes: usize,
    ready: bool,
    /// Job id -> (entry id, configuration).
    held: HashMap<String, (String, String)>,
    /// Entry id -> jobs of it not ended yet.
    entries: HashMap<String, usize>,
    /// Jobs the agent stopped on a SIGTERM: (id, configuration), put back on the stream.
    given_back: Vec<(String, String)>,
    /// Entries ended while stopping: acknowledged once the stopped jobs are put back.
    to_ack: Vec<String>,
    cancels: u64,
    cancelled: HashSet<String>,
    avg_run: Option<Duration>,
    /// Outcomes it stored.
    stored: u64,
    entry_size: usize,
    read_at: Instant,
    control_at: Instant,
    beat_at: Instant,
    cleaned_at: Instant,
    busy_at: Instant,
    ending: bool,
}

/// The link (see the module docs).
pub(crate) struct RedisLink {
    storage: Arc<dyn Storage>,
    admission: Admission,
    consumer: String,
    stop: Arc<AtomicBool>,
    inbox: VecDeque<ToAgent>,
    refused: HashMap<String, String>,
    picked_at: Option<Instant>,
    last_served: Option<u64>,
    session: Option<Session>,
    /// Why the worker ended on its own (every search it was told to serve refused).
    pub failure: Option<String>,
}

fn redis(storage: &Arc<dyn Storage>) -> &RedisStorage {
    storage
        .as_redis()
        .expect("a worker's storage is a Redis storage")
}

impl RedisLink {
    pub fn new(storage: Arc<dyn Storage>, admission: Admission, stop: Arc<AtomicBool>) -> Self {
        RedisLink {
            storage,
            admission,
            consumer: crate::storage::owner_id(),
            stop,
            inbox: VecDeque::new(),
            refused: HashMap::new(),
            picked_at: None,
            last_served: None,
            session: None,
            failure: None,
        }
    }

    fn log(&self, message: std::fmt::Arguments<'_>) {
        eprintln!("wasmeval worker: {message}");
    }

    /// Looks for the next active search this worker may serve, after the last one served.
    fn pick(&mut self) {
        self.picked_at = Some(Instant::now());
        let redis = redis(&self.storage);
        let active_key = redis.key("active");
        let Ok(mut active) =
            redis.peek(|c| redis::cmd("SMEMBERS").arg(&active_key).query::<Vec<u64>>(c))
        else {
            return;
        };
        active.retain(|sid| self.admission.wants(&sid.to_string()));
        active.sort_unstable();
        let start = self
            .last_served
            .map_or(0, |last| active.partition_point(|&s| s <= last));
        let order: Vec<u64> = active[start..]
            .iter()
            .chain(&active[..start])
            .copied()
            .collect();
        let mut refusals = Vec::new();
        for sid in order {
            let sid_text = sid.to_string();
            if self.refused.contains_key(&sid_text) {
                continue;
            }
            match self.setup(&sid_text) {
                Ok(Some(setup)) => {
                    self.last_served = Some(sid);
                    self.open(&sid_text, setup);
                    break;
                }
                Ok(None) => {}
                Err(why) => {
                    refusals.push(sid_text.clone());
                    self.refused.insert(sid_text, why);
                }
            }
        }
        let named = self.admission.searches();
        let all_refused = !named.is_empty() && named.iter().all(|s| self.refused.contains_key(s));
        if !all_refused {
            // Said once, as it is decided; a worker refused everything it was told to serve
            // says it in its error instead.
            for sid in refusals {
                let why = &self.refused[&sid];
                self.log(format_args!("not taking the jobs of search {sid}: {why}"));
            }
            return;
        }
        self.failure = Some(format!(
            "every search it was told to serve was refused ({})",
            named
                .iter()
                .map(|s| format!("search {s}: {}", self.refused[s]))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        self.inbox.push_back(ToAgent::Shutdown);
    }

    /// The setup of search `sid` if this worker may serve it (None: it has no offer yet).
    fn setup(&self, sid: &str) -> Result<Option<Setup>, String> {
        let redis = redis(&self.storage);
        let keys = Keys::of(redis, sid);
        let offer: Option<String> = redis
            .peek(|c| redis::cmd("HGET").arg(&keys.setup).arg("offer").query(c))
            .map_err(|e| e.to_string())?;
        let Some(offer) = offer else {
            return Ok(None);
        };
        let offer: Offer = serde_json::from_str(&offer)
            .map_err(|e| format!("its offer cannot be read by this wasmeval ({e})"))?;
        if offer.build != crate::worker::BUILD {
            return Err(format!(
                "its evaluator is wasmeval {}, and this worker wasmeval {}: run the same build",
                offer.build,
                crate::worker::BUILD
            ));
        }
        let policy = self.admission.admit(&offer)?;
        if !blob::valid_sha256(&offer.sha256) {
            return Err("its module's sha256 is not one".into());
        }
        let wasm = blob::fetch(redis, &offer.sha256)?;
        self.log(format_args!(
            "search {sid}: fetched module {} ({} bytes, sha256 {} checked)",
            offer.name,
            wasm.len(),
            offer.sha256
        ));
        Ok(Some(Setup {
            handle: ModuleHandle {
                name: offer.name.into(),
                sha256: offer.sha256,
                policy,
                wasm: Arc::new(wasm),
            },
            kwargs: offer.kwargs,
            // The evaluators cancel their jobs themselves at their deadlines.
            deadline_in: None,
            retries: offer.retries,
        }))
    }

    fn open(&mut self, sid: &str, setup: Setup) {
        let recorder = match Recorder::of_search(self.storage.clone(), sid) {
            Ok(r) => r,
            Err(e) => {
                self.log(format_args!("search {sid}: {e}"));
                return;
            }
        };
        let now = Instant::now();
        self.session = Some(Session {
            sid: sid.to_string(),
            keys: Keys::of(redis(&self.storage), sid),
            recorder,
            processes: 1,
            ready: false,
            held: HashMap::new(),
            entries: HashMap::new(),
            given_back: Vec::new(),
            to_ack: Vec::new(),
            cancels: 0,
            cancelled: HashSet::new(),
            avg_run: None,
            stored: 0,
            entry_size: 1,
            read_at: now,
            control_at: now - CONTROL_EVERY,
            beat_at: now,
            cleaned_at: now,
            busy_at: now,
            ending: false,
        });
        self.inbox.push_back(ToAgent::Setup(Box::new(setup)));
    }

    /// Looks at the server for the session's news, as often as each kind is due.
    fn poll(&mut self) {
        let Some(s) = &mut self.session else { return };
        if !s.ready {
            return;
        }
        let redis = redis(&self.storage);
        let now = Instant::now();
        if now.duration_since(s.control_at) >= CONTROL_EVERY {
            s.control_at = now;
            control(redis, s, &mut self.inbox);
        }
        if now.duration_since(s.beat_at) >= BEAT {
            s.beat_at = now;
            beat(redis, s, &self.consumer);
            if s.room() > 0 {
                reclaim(redis, s, &self.consumer, &mut self.inbox);
            }
        }
        if now.duration_since(s.cleaned_at) >= DEAD_CONSUMER {
            s.cleaned_at = now;
            remove_dead_consumers(redis, s);
        }
        if !s.ending && s.room() > 0 && now.duration_since(s.read_at) >= READ_EVERY {
            s.read_at = now;
            read(redis, s, &self.consumer, &mut self.inbox);
        }
        if !s.held.is_empty() {
            s.busy_at = now;
        }
        let idle = s.held.is_empty() && now.duration_since(s.busy_at) >= ROTATE_AFTER;
        let (sid, stored, over) = (s.sid.clone(), s.stored, s.ending && s.held.is_empty());
        if over || (idle && self.another_waits()) {
            self.log(format_args!("search {sid}: {stored} jobs run here"));
            self.session = None;
            self.inbox.push_back(ToAgent::End);
        }
    }

    /// Another active search this worker may serve.
    fn another_waits(&self) -> bool {
        let Some(s) = &self.session else { return false };
        let redis = redis(&self.storage);
        let key = redis.key("active");
        redis
            .peek(|c| redis::cmd("SMEMBERS").arg(&key).query::<Vec<String>>(c))
            .is_ok_and(|ids| {
                ids.iter().any(|id| {
                    *id != s.sid && self.admission.wants(id) && !self.refused.contains_key(id)
                })
            })
    }

    /// After a SIGTERM, once the agent stopped every job held: those it stopped go back on
    /// the stream, as a new entry, for other workers; the entries held are acknowledged.
    fn give_back(&mut self) {
        let Some(s) = &mut self.session else { return };
        if !s.held.is_empty() {
            return;
        }
        let (sid, stored) = (s.sid.clone(), s.stored);
        self.log(format_args!("search {sid}: {stored} jobs run here"));
        let redis = redis(&self.storage);
        let Some(s) = &mut self.session else { return };
        let jobs: Vec<(&str, &str)> = s
            .given_back
            .iter()
            .map(|(id, config)| (id.as_str(), config.as_str()))
            .collect();
        let requeued = serde_json::to_string(&jobs).expect("serializable");
        let mut pipe = redis::pipe();
        pipe.atomic();
        if !jobs.is_empty() {
            pipe.cmd("XADD")
                .arg(&s.keys.jobs)
                .arg("*")
                .arg("jobs")
                .arg(&requeued)
                .ignore();
        }
        for entry in &s.to_ack {
            pipe.cmd("XACK")
                .arg(&s.keys.jobs)
                .arg(GROUP)
                .arg(entry)
                .ignore();
            pipe.cmd("XDEL").arg(&s.keys.jobs).arg(entry).ignore();
        }
        // The outcomes stored before are committed first (`run` flushes).
        match redis.run(|c| pipe.exec(c)) {
            Ok(()) if !jobs.is_empty() => {
                let n = jobs.len();
                self.log(format_args!("stopped: {n} jobs put back for other workers"));
            }
            Ok(()) => {}
            Err(e) => self.log(format_args!(
                "stopped, and the jobs held could not be put back ({e}): another worker takes \
                 them over after 3 missed beats"
            )),
        }
        self.session = None;
        self.inbox.push_back(ToAgent::Shutdown);
    }
}

impl Session {
    /// Jobs it may take now.
    fn room(&self) -> usize {
        let per_process = self.avg_run.map_or(1, |d| {
            ((AHEAD.as_nanos() / d.as_nanos().max(1)) as usize).clamp(1, PER_PROCESS)
        });
        (self.processes * per_process).saturating_sub(self.held.len())
    }

    /// Takes the jobs of a stream entry (those not finished yet, for a reclaimed one).
    fn take(&mut self, entry: String, jobs: Vec<(String, String)>, inbox: &mut VecDeque<ToAgent>) {
        let mut batch = Vec::new();
        let mut cancels = Vec::new();
        for (id, config) in jobs {
            let Some(job) = JobId::parse(&id) else {
                continue;
            };
            if job.search() != self.sid || self.held.contains_key(&id) {
                continue;
            }
            if self.cancelled.contains(&id) {
                cancels.push(ToAgent::Cancel(id.clone()));
            }
            self.held
                .insert(id.clone(), (entry.clone(), config.clone()));
            batch.push((id, config));
        }
        self.entry_size = batch.len().max(1);
        if batch.is_empty() {
            // Nothing left to run of it: acknowledged with the next writes.
            return;
        }
        *self.entries.entry(entry).or_default() += batch.len();
        inbox.push_back(ToAgent::Jobs(batch));
        inbox.extend(cancels);
    }
}

/// Reads the search's new cancels, and whether it is still active.
fn control(redis: &RedisStorage, s: &mut Session, inbox: &mut VecDeque<ToAgent>) {
    let read: crate::error::Result<(Vec<String>, bool)> = redis.peek(|c| {
        redis::pipe()
            .cmd("LRANGE")
            .arg(&s.keys.cancels)
            .arg(s.cancels)
            .arg(-1)
            .cmd("SISMEMBER")
            .arg(&s.keys.active)
            .arg(&s.sid)
            .query(c)
    });
    let Ok((cancels, active)) = read else {
        return;
    };
    s.cancels += cancels.len() as u64;
    for id in cancels {
        if s.held.contains_key(&id) {
            inbox.push_back(ToAgent::Cancel(id.clone()));
        }
        s.cancelled.insert(id);
    }
    s.ending |= !active;
}

/// The entries of an `XREADGROUP`/`XAUTOCLAIM` reply: (entry id, its jobs).
fn entries(reply: redis::streams::StreamReadReply) -> Vec<(String, Vec<(String, String)>)> {
    reply
        .keys
        .into_iter()
        .flat_map(|k| k.ids)
        .map(|e| {
            let jobs = e
                .get::<String>("jobs")
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default();
            (e.id, jobs)
        })
        .collect()
}

/// Reads new entries, as many as there is room for.
fn read(redis: &RedisStorage, s: &mut Session, consumer: &str, inbox: &mut VecDeque<ToAgent>) {
    let count = s.room().div_ceil(s.entry_size).max(1);
    let reply: crate::error::Result<Option<redis::streams::StreamReadReply>> = redis.peek(|c| {
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(&s.keys.jobs)
            .arg(">")
            .query(c)
    });
    match reply {
        Ok(Some(reply)) => {
            for (entry, jobs) in entries(reply) {
                s.take(entry.clone(), jobs, inbox);
                if !s.entries.contains_key(&entry) {
                    redis.ack_with_writes(s.keys.jobs.clone(), GROUP, entry);
                }
            }
        }
        Ok(None) => {}
        // The group is gone: the search ended.
        Err(e) if e.to_string().contains("NOGROUP") => s.ending = true,
        Err(_) => {}
    }
}

/// Renews the claim on the entries held, so that no other worker takes them.
fn beat(redis: &RedisStorage, s: &Session, consumer: &str) {
    if s.entries.is_empty() {
        return;
    }
    let ids: Vec<&String> = s.entries.keys().collect();
    let _ = redis.peek(|c| {
        redis::cmd("XCLAIM")
            .arg(&s.keys.jobs)
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(&ids)
            .arg("JUSTID")
            .exec(c)
    });
}

/// Takes over entries whose worker missed 3 beats, and runs their jobs not finished yet.
fn reclaim(redis: &RedisStorage, s: &mut Session, consumer: &str, inbox: &mut VecDeque<ToAgent>) {
    let reply: crate::error::Result<(String, redis::streams::StreamRangeReply)> = redis.peek(|c| {
        let value: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(&s.keys.jobs)
            .arg(GROUP)
            .arg(consumer)
            .arg((3 * BEAT).as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(s.room().div_ceil(s.entry_size).clamp(1, 64))
            .query(c)?;
        let redis::Value::Array(mut parts) = value else {
            return Ok((String::new(), Default::default()));
        };
        parts.truncate(2);
        let range = redis::from_redis_value(parts.pop().unwrap_or(redis::Value::Nil))?;
        let next = redis::from_redis_value(parts.pop().unwrap_or(redis::Value::Nil))?;
        Ok((next, range))
    });
    let Ok((_, range)) = reply else { return };
    for entry in range.ids {
        let jobs: Vec<(String, String)> = entry
            .get::<String>("jobs")
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        let ids: Vec<JobId> = jobs.iter().filter_map(|(id, _)| JobId::parse(id)).collect();
        // A job whose outcome is stored (the dead worker finished it) does not run again.
        let finished: HashSet<String> = redis
            .load_jobs(&ids)
            .map(|jobs| {
                jobs.into_iter()
                    .filter(|j| matches!(j.status, JobStatus::Done | JobStatus::Cancelled))
                    .map(|j| j.id.to_string())
                    .collect()
            })
            .unwrap_or_default();
        let left = jobs
            .into_iter()
            .filter(|(id, _)| !finished.contains(id))
            .collect();
        s.take(entry.id.clone(), left, inbox);
        if !s.entries.contains_key(&entry.id) {
            redis.ack_with_writes(s.keys.jobs.clone(), GROUP, entry.id);
        }
    }
}

/// Removes the group's consumers that hold nothing and have not been seen for a while.
fn remove_dead_consumers(redis: &RedisStorage, s: &Session) {
    let Ok(consumers) = redis.peek(|c| {
        redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(&s.keys.jobs)
            .arg(GROUP)
            .query::<redis::streams::StreamInfoConsumersReply>(c)
    }) else {
        return;
    };
    for consumer in consumers.consumers {
        if consumer.pending == 0 && consumer.idle as u128 > DEAD_CONSUMER.as_millis() {
            let _ = redis.peek(|c| {
                redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(&s.keys.jobs)
                    .arg(GROUP)
                    .arg(&consumer.name)
                    .exec(c)
            });
        }
    }
}

impl Link for RedisLink {
    fn recv(&mut self, wait: Duration) -> Option<ToAgent> {
        if let Some(m) = self.inbox.pop_front() {
            return Some(m);
        }
        if self.stop.load(Ordering::SeqCst) {
            if self.session.is_none() {
                return Some(ToAgent::Shutdown);
            }
            self.give_back();
        } else if self.session.is_none() {
            if self.picked_at.is_none_or(|t| t.elapsed() >= PICK_EVERY) {
                self.pick();
            }
        } else {
            self.poll();
        }
        let message = self.inbox.pop_front();
        if message.is_none() && !wait.is_zero() {
            std::thread::sleep(wait);
        }
        message
    }

    fn send(&mut self, message: FromAgent) {
        let stopping = self.stop.load(Ordering::SeqCst);
        let Some(s) = &mut self.session else { return };
        match message {
            FromAgent::Ready { workers } => {
                s.ready = true;
                s.processes = workers.max(1);
                let (sid, processes) = (s.sid.clone(), s.processes);
                self.log(format_args!(
                    "serving search {sid} with {processes} worker processes"
                ));
            }
            FromAgent::Failed(why) => {
                let sid = s.sid.clone();
                self.log(format_args!("not taking the jobs of search {sid}: {why}"));
                self.refused.insert(sid, why);
                self.session = None;
            }
            FromAgent::News { running, done } => {
                let storage = &s.recorder.storage;
                for id in running {
                    if let (true, Some(job)) = (s.held.contains_key(&id), JobId::parse(&id)) {
                        let _ = storage.store_job_status(&job, JobStatus::Running);
                    }
                }
                let now = Instant::now();
                for (id, wire) in done {
                    let Some((entry, config)) = s.held.remove(&id) else {
                        continue;
                    };
                    let output = wire.into_output_with(|age| {
                        now.checked_sub(Duration::from_nanos(age)).unwrap_or(now)
                    });
                    let stopped = !output.ran
                        && matches!(&output.result, Err(f) if f.kind == FailureKind::Cancelled);
                    if stopping && stopped {
                        s.given_back.push((id.clone(), config));
                    } else if let Some(job) = JobId::parse(&id) {
                        if output.ran {
                            let ran = output.ended.saturating_duration_since(output.started);
                            s.avg_run = Some(s.avg_run.map_or(ran, |avg| (avg * 7 + ran) / 8));
                        }
                        s.recorder.complete(job, output);
                        s.stored += 1;
                    }
                    let left = s.entries.get_mut(&entry).map(|n| {
                        *n -= 1;
                        *n
                    });
                    if left == Some(0) {
                        s.entries.remove(&entry);
                        if stopping {
                            s.to_ack.push(entry);
                        } else {
                            redis(&self.storage).ack_with_writes(s.keys.jobs.clone(), GROUP, entry);
                        }
                    }
                }
            }
        }
    }
}
