//! The process method: long-lived worker processes, one per core by default. A crash or a
//! runaway job takes down at most one worker, which is replaced at once.
//!
//! The parent keeps one dispatcher thread, which streams each job into the stdin of the
//! least-loaded worker, with a window of several jobs in flight for short jobs and one for
//! long ones; and for each worker a supervisor thread, which reads the results from its
//! stdout, in order, and replaces the worker when it dies. A watchdog kills a worker whose
//! job outlives its time limit plus a grace period.

use std::collections::VecDeque;
use std::io::{BufReader, BufWriter, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};

use crate::backend::{Backend, Task};
use crate::child::ChildError;
use crate::ipc;
use crate::job::{Failure, FailureKind, JobId};
use crate::sandbox::module::Code;
use crate::sandbox::{LoadedModule, Policy, RunOutput, Signals};
use crate::worker::{self, FromWorker, ToWorker};

/// Most jobs in flight per worker: enough to hide the pipe latency of short jobs.
pub const WINDOW: usize = 16;

/// How much queued work a worker may hold: the window is sized so that the jobs sent ahead
/// take about this long, and long jobs go one at a time to whichever worker is free.
const AHEAD: Duration = Duration::from_millis(2);

/// How long past its limit a job may run before the parent kills its worker.
pub const GRACE: Duration = Duration::from_secs(2);

struct Queued {
    task: Task,
    attempts: u32,
}

struct Sent {
    seq: u64,
    queued: Queued,
}

#[derive(Default)]
struct SlotState {
    stdin: Option<BufWriter<ChildStdin>>,
    pid: Option<u32>,
    in_flight: VecDeque<Sent>,
    head_since: Option<Instant>,
    killed: Option<FailureKind>,
    next_seq: u64,
    /// Moving average of how long this worker's jobs run; `None` before the first.
    avg_run: Option<Duration>,
}

impl SlotState {
    /// Jobs this worker may hold: one until a job's length is known, then enough for about
    /// [`AHEAD`] of work, at most [`WINDOW`].
    fn window(&self) -> usize {
        self.avg_run.map_or(1, |d| {
            let per = d.as_nanos().max(1);
            ((AHEAD.as_nanos() / per) as usize).clamp(1, WINDOW)
        })
    }
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
}

/// What every job of a pool runs.
#[derive(Clone)]
pub struct Program {
    /// The run function.
    pub module: Arc<LoadedModule>,
    /// The sandbox policy.
    pub policy: Arc<Policy>,
    /// The run-function kwargs, as JSON.
    pub kwargs: Arc<str>,
}

/// Where a pool reports its jobs: the evaluator's storage and channel
/// ([`crate::backend::Local`]), or a node agent's link back to the evaluator.
pub trait Sink: Send + Sync + 'static {
    /// The job has started on a worker (it heads the worker's queue).
    fn running(&self, id: &JobId);
    /// The job ended.
    fn finish(&self, id: JobId, output: RunOutput);
}

struct Pool {
    program: Program,
    binary: std::path::PathBuf,
    signals: Arc<Signals>,
    sink: Arc<dyn Sink>,
    tasks: Receiver<Queued>,
    retry_tx: Sender<Queued>,
    retry: Receiver<Queued>,
    slots: Vec<Slot>,
    /// Signalled when a worker may take more jobs (a result came back, a worker started).
    room: Condvar,
    room_lock: Mutex<()>,
    retries: u32,
    stopping: AtomicBool,
}

/// A pool of worker processes.
pub struct ProcessPool {
    pool: Arc<Pool>,
    tasks: Option<Sender<Queued>>,
    threads: Vec<JoinHandle<()>>,
}

impl ProcessPool {
    /// Starts `workers` worker processes running `program`, reporting to `sink`. A job whose
    /// worker dies is run again up to `retries` times.
    pub fn start(
        workers: usize,
        program: Program,
        signals: Arc<Signals>,
        retries: u32,
        sink: Arc<dyn Sink>,
    ) -> crate::Result<ProcessPool> {
        let binary = worker::binary()?;
        let (tasks_tx, tasks) = crossbeam_channel::unbounded();
        let (retry_tx, retry) = crossbeam_channel::unbounded();
        let pool = Arc::new(Pool {
            program,
            binary,
            signals,
            sink,
            tasks,
            retry_tx,
            retry,
            slots: (0..workers.max(1)).map(|_| Slot::default()).collect(),
            room: Condvar::new(),
            room_lock: Mutex::new(()),
            retries,
            stopping: AtomicBool::new(false),
        });
        // Each supervisor starts its own worker (a worker dies with the thread that started
        // it). Their first starts are awaited, so that a module or binary that cannot run is
        // an error of `create`, not of every job.
        let (first_tx, first_rx) = crossbeam_channel::bounded(pool.slots.len());
        let mut threads = Vec::new();
        for i in 0..pool.slots.len() {
            let (p, tx) = (pool.clone(), Some(first_tx.clone()));
            threads.push(named(format!("wasmeval-supervise-{i}"), move || {
                supervise(&p, i, tx)
            })?);
        }
        let p = pool.clone();
        threads.push(named("wasmeval-dispatch".into(), move || dispatch(&p))?);
        drop(first_tx);
        let started = (0..pool.slots.len())
            .try_for_each(|_| first_rx.recv().unwrap_or(Err(ChildError::Supervisor)));
        if let Err(e) = started {
            let mut failed = ProcessPool {
                pool,
                tasks: Some(tasks_tx),
                threads,
            };
            failed.stop();
            return Err(e.into());
        }
        let p = pool.clone();
        threads.push(named("wasmeval-watchdog".into(), move || watchdog(&p))?);
        Ok(ProcessPool {
            pool,
            tasks: Some(tasks_tx),
            threads,
        })
    }
}

fn named(name: String, f: impl FnOnce() + Send + 'static) -> crate::Result<JoinHandle<()>> {
    Ok(std::thread::Builder::new().name(name).spawn(f)?)
}

impl Backend for ProcessPool {
    fn dispatch(&self, task: Task) {
        if let Some(tx) = &self.tasks {
            let _ = tx.send(Queued { task, attempts: 0 });
        }
    }

    fn cancel(&self, id: &JobId) {
        self.pool
            .broadcast(&ToWorker::Cancel { id: id.to_string() });
    }

    fn set_deadline(&self, deadline: Option<Instant>) {
        self.pool.broadcast(&ToWorker::Deadline {
            deadline_in: deadline.map(|d| d.saturating_duration_since(Instant::now())),
        });
    }

    fn set_closing(&self, closing: bool) {
        self.pool.broadcast(&ToWorker::Closing(closing));
    }

    fn worker_pids(&self) -> Vec<u32> {
        self.pool
            .slots
            .iter()
            .filter_map(|s| s.state.lock().unwrap().pid)
            .collect()
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ProcessPool {
    /// Stops every worker (SIGKILL), reaps it, and joins the threads.
    fn stop(&mut self) {
        self.pool.stopping.store(true, Ordering::SeqCst);
        self.tasks.take();
        for slot in &self.pool.slots {
            let mut st = slot.state.lock().unwrap();
            st.stdin.take();
            if let Some(pid) = st.pid {
                kill(pid);
            }
        }
        self.pool.notify_room();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn kill(pid: u32) {
    // A child we spawned and have not reaped yet; gone already is fine.
    let _ = crate::child::kill(pid);
}

impl Pool {
    /// Wakes the dispatcher; called after a slot's state changed, without holding it.
    fn notify_room(&self) {
        let _guard = self.room_lock.lock().unwrap();
        self.room.notify_all();
    }

    /// The live worker with room that holds the fewest jobs.
    fn free_slot(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let st = s.state.lock().unwrap();
                (st.stdin.is_some() && st.in_flight.len() < st.window())
                    .then_some((st.in_flight.len(), i))
            })
            .min()
            .map(|(_, i)| i)
    }

    fn broadcast(&self, msg: &ToWorker) {
        for slot in &self.slots {
            let mut st = slot.state.lock().unwrap();
            if let Some(w) = st.stdin.as_mut() {
                // A dead worker is replaced by its supervisor, which sends the current state.
                let _ = ipc::write_frame(w, msg).and_then(|()| w.flush());
            }
        }
    }

    fn finish(&self, task: Task, output: RunOutput) {
        self.sink.finish(task.id, output);
    }
}

type Worker = (Child, BufWriter<ChildStdin>, BufReader<ChildStdout>);

/// Starts a worker and waits until it has loaded the module.
fn spawn(pool: &Pool) -> Result<Worker, ChildError> {
    let crate::child::Child {
        process: mut child,
        mut stdin,
        mut stdout,
    } = crate::child::spawn(crate::child::RUN, Stdio::inherit())?;
    let m = &pool.program.module;
    let setup = ToWorker::Setup(Box::new(worker::Setup {
        name: m.name.clone(),
        sha256: m.sha256.clone(),
        component: m.component,
        core_instances: m.shape.core_instances,
        code_file: match &m.code {
            Code::File(path) => Some(path.clone()),
            Code::Bytes(_) => None,
        },
        policy: (*pool.program.policy).clone(),
        kwargs: pool.program.kwargs.to_string(),
        deadline_in: pool
            .signals
            .deadline()
            .map(|d| d.saturating_duration_since(Instant::now())),
    }));
    let sent = ipc::write_frame(&mut stdin, &setup)
        .and_then(|()| match &m.code {
            Code::Bytes(bytes) => ipc::write_raw(&mut stdin, bytes),
            Code::File(_) => Ok(()),
        })
        .and_then(|()| stdin.flush());
    let answer = ipc::read_frame::<FromWorker>(&mut stdout, &mut Vec::new());
    match (sent, answer) {
        (Ok(()), Ok(Some(FromWorker::Ready))) => Ok((child, stdin, stdout)),
        (_, Ok(Some(FromWorker::Failed(e)))) => {
            let _ = child.wait();
            Err(ChildError::Setup(e))
        }
        (_, other) => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            Err(ChildError::NotStarted {
                binary: pool.binary.clone(),
                status,
                detail: other.err(),
            })
        }
    }
}

/// Keeps slot `i` supplied with a live worker and turns its output into results. The
/// first start is reported on `first`, if given; a failed start then ends the supervisor.
fn supervise(pool: &Pool, i: usize, mut first: Option<Sender<Result<(), ChildError>>>) {
    let slot = &pool.slots[i];
    let mut buf = Vec::new();
    while !pool.stopping.load(Ordering::SeqCst) {
        let (mut child, stdin, mut stdout) = match spawn(pool) {
            Ok(w) => w,
            Err(e) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
                fail_in_flight(pool, slot, &e.to_string());
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        {
            let mut st = slot.state.lock().unwrap();
            st.pid = Some(child.id());
            st.stdin = Some(stdin);
            if pool.stopping.load(Ordering::SeqCst) {
                kill(child.id());
            }
        }
        // Reported once the worker is in its slot, so `start` returns with every pid known.
        if let Some(tx) = first.take() {
            let _ = tx.send(Ok(()));
        }
        pool.notify_room();
        while let Ok(Some(FromWorker::Done { seq, output })) =
            ipc::read_frame(&mut stdout, &mut buf)
        {
            let received = Instant::now();
            let sent = {
                let mut st = slot.state.lock().unwrap();
                if st.in_flight.front().map(|s| s.seq) != Some(seq) {
                    break;
                }
                let sent = st.in_flight.pop_front().expect("checked");
                let ran = output.duration();
                st.avg_run = Some(st.avg_run.map_or(ran, |avg| (avg * 7 + ran) / 8));
                st.head_since = st.in_flight.front().map(|_| received);
                if let Some(next) = st.in_flight.front() {
                    pool.sink.running(&next.queued.task.id);
                }
                sent
            };
            pool.notify_room();
            pool.finish(sent.queued.task, output.into_output());
        }
        // The worker is gone (or spoke out of turn): reap it and settle its jobs.
        let (in_flight, killed) = {
            let mut st = slot.state.lock().unwrap();
            st.stdin = None;
            st.pid = None;
            kill(child.id());
            st.head_since = None;
            (std::mem::take(&mut st.in_flight), st.killed.take())
        };
        let status = child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        if pool.stopping.load(Ordering::SeqCst) {
            return;
        }
        let mut rest = in_flight.into_iter();
        if let Some(head) = rest.next() {
            let Queued { task, attempts } = head.queued;
            match killed {
                Some(kind) => pool.finish(
                    task,
                    RunOutput::without_run(Failure::new(
                        kind,
                        format!("the worker was killed: the job ran {GRACE:?} past its time limit"),
                    )),
                ),
                None if attempts < pool.retries => {
                    let _ = pool.retry_tx.send(Queued {
                        task,
                        attempts: attempts + 1,
                    });
                }
                None => pool.finish(
                    task,
                    RunOutput::without_run(Failure::new(
                        FailureKind::WorkerCrashed,
                        format!("worker crashed: the worker process ended ({status})"),
                    )),
                ),
            }
        }
        // Jobs behind the running one never started: they go back to the queue as they were.
        for sent in rest {
            let _ = pool.retry_tx.send(sent.queued);
        }
    }
}

fn fail_in_flight(pool: &Pool, slot: &Slot, error: &str) {
    let in_flight = std::mem::take(&mut slot.state.lock().unwrap().in_flight);
    for sent in in_flight {
        pool.finish(
            sent.queued.task,
            RunOutput::without_run(Failure::new(FailureKind::WorkerCrashed, error)),
        );
    }
}

/// Streams jobs to the workers: each job goes to the live worker with room that holds the
/// fewest, and buffered frames are flushed whenever the dispatcher would otherwise wait.
fn dispatch(pool: &Pool) {
    let mut dirty = vec![false; pool.slots.len()];
    let flush = |dirty: &mut Vec<bool>| {
        for (i, d) in dirty.iter_mut().enumerate().filter(|(_, d)| **d) {
            if let Some(w) = pool.slots[i].state.lock().unwrap().stdin.as_mut() {
                let _ = w.flush();
            }
            *d = false;
        }
    };
    loop {
        let next = match pool.retry.try_recv().or_else(|_| pool.tasks.try_recv()) {
            Ok(q) => q,
            Err(_) => {
                flush(&mut dirty);
                select! {
                    recv(pool.retry) -> q => match q { Ok(q) => q, Err(_) => return },
                    recv(pool.tasks) -> q => match q { Ok(q) => q, Err(_) => return },
                }
            }
        };
        if let Some(why) = next.task.control.stop_reason(Instant::now(), None) {
            pool.finish(next.task, RunOutput::never_started(why));
            continue;
        }
        let i = loop {
            if let Some(i) = pool.free_slot() {
                break i;
            }
            flush(&mut dirty);
            let guard = pool.room_lock.lock().unwrap();
            if pool.stopping.load(Ordering::SeqCst) {
                return;
            }
            if let Some(i) = pool.free_slot() {
                break i;
            }
            let _ = pool
                .room
                .wait_timeout(guard, Duration::from_millis(100))
                .unwrap();
        };
        let mut st = pool.slots[i].state.lock().unwrap();
        let seq = st.next_seq;
        let frame = ToWorker::Job {
            seq,
            id: next.task.id.to_string(),
            config: next.task.config.clone(),
        };
        let written = st.stdin.as_mut().map(|w| ipc::write_frame(w, &frame));
        if !matches!(written, Some(Ok(()))) {
            // The worker died meanwhile; its supervisor settles what was in flight.
            drop(st);
            let _ = pool.retry_tx.send(next);
            continue;
        }
        // A cancel that came between the check above and this write was broadcast before the
        // worker knew the job, and lost: send it again, after the job, on the same stream
        // (later cancels are broadcast under this slot's lock, so after the job too).
        if next
            .task
            .control
            .stop_reason(Instant::now(), None)
            .is_some()
            && let Some(w) = st.stdin.as_mut()
        {
            let _ = ipc::write_frame(
                w,
                &ToWorker::Cancel {
                    id: next.task.id.to_string(),
                },
            );
        }
        dirty[i] = true;
        st.next_seq += 1;
        if st.in_flight.is_empty() {
            st.head_since = Some(Instant::now());
            pool.sink.running(&next.task.id);
        }
        st.in_flight.push_back(Sent { seq, queued: next });
    }
}

/// Kills workers whose running job outlived its limit by [`GRACE`].
fn watchdog(pool: &Pool) {
    while !pool.stopping.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        for slot in &pool.slots {
            let mut st = slot.state.lock().unwrap();
            let (Some(since), Some(pid)) = (st.head_since, st.pid) else {
                continue;
            };
            let own = pool
                .program
                .policy
                .job_timeout
                .map(|t| (since + t, FailureKind::Timeout));
            let evaluator = pool.signals.deadline().map(|d| (d, FailureKind::Cancelled));
            let late = [own, evaluator]
                .into_iter()
                .flatten()
                .find(|(limit, _)| now > *limit + GRACE);
            if let Some((_, kind)) = late
                && st.killed.is_none()
            {
                st.killed = Some(kind);
                kill(pid);
            }
        }
    }
}
