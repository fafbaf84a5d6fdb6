//! Rank 0's backend: one thread talks MPI, keeping each agent a window of jobs in flight
//! (sized, like the process pool's, to about [`AHEAD`] of work), sending them in batches and
//! turning the agents' news into stored outcomes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use mpi::topology::{Communicator, Rank, SimpleCommunicator};

use super::MpiError;
use super::link::{self, Sends, TO_AGENT};
use super::world::{POOLS, root_world};
use crate::agent::{FromAgent, Setup, ToAgent};
use crate::backend::{Control, Finished, Remote, Shared, Task};
use crate::error::Result;
use crate::job::{Failure, FailureKind, JobId, JobStatus};
use crate::sandbox::{RunOutput, Signals};

/// How much work an agent may hold: enough to hide the message latency and batching.
const AHEAD: Duration = Duration::from_millis(20);
/// Most jobs in flight per worker of an agent.
const PER_WORKER: usize = 256;
/// How long a closing evaluator waits for an agent that does not answer before it gives its
/// jobs up as cancelled (an agent that lost its rank, say).
const SILENT: Duration = Duration::from_millis(500);

/// The mpi method's backend on rank 0 (see the [module docs](crate::mpi)).
pub struct MpiPool;

impl MpiPool {
    /// Sends the module to every agent and waits until each has started its pool; returns
    /// the backend and the total number of the agents' workers.
    pub fn start(
        shared: Shared,
        signals: Arc<Signals>,
        retries: u32,
        done: Sender<Finished>,
    ) -> Result<(Remote, usize)> {
        root_world()?;
        let handle = shared
            .module
            .handle(&shared.policy)
            .expect("an evaluator loads its module from its bytes");
        let setup = Setup {
            handle,
            kwargs: shared.kwargs.to_string(),
            deadline_in: signals
                .deadline()
                .map(|d| d.saturating_duration_since(Instant::now())),
            retries,
        };
        let (ready_tx, ready) = crossbeam_channel::bounded(1);
        if POOLS
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(MpiError::Busy.into());
        }
        let remote = Remote::spawn("wasmeval-mpi", move |rx| {
            let world = root_world().expect("checked by start");
            talk(&world, shared, setup, rx, done, ready_tx);
            POOLS.fetch_sub(1, Ordering::SeqCst);
        })
        .inspect_err(|_| POOLS.store(0, Ordering::SeqCst))?;
        match ready.recv() {
            Ok(Ok(workers)) => Ok((remote, workers)),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(MpiError::NotInitialized.into()),
        }
    }
}

/// One agent, as rank 0 sees it.
struct Agent {
    rank: Rank,
    workers: usize,
    held: usize,
    /// Moving average of how long its jobs run; `None` before the first.
    avg_run: Option<Duration>,
    heard: Instant,
}

impl Agent {
    /// Jobs it may hold: one per worker until a job's length is known, then about [`AHEAD`]
    /// of work.
    fn window(&self) -> usize {
        let per_worker = self.avg_run.map_or(1, |d| {
            ((AHEAD.as_nanos() / d.as_nanos().max(1)) as usize).clamp(1, PER_WORKER)
        });
        self.workers * per_worker
    }
}

/// The MPI thread: sets the agents up, then moves jobs out and news in until the evaluator
/// drops its backend.
fn talk(
    world: &SimpleCommunicator,
    shared: Shared,
    setup: Setup,
    controls: Receiver<Control>,
    done: Sender<Finished>,
    ready: Sender<std::result::Result<usize, MpiError>>,
) {
    let mut sends = Sends::default();
    let tell_all = |sends: &mut Sends, message: &ToAgent| {
        let bytes = serde_json::to_vec(message).expect("serializable");
        for rank in 1..world.size() {
            sends.post(world, rank, TO_AGENT, bytes.clone());
        }
    };
    link::send_setup(world, &mut sends, setup);
    let mut agents = Vec::new();
    let mut failure = None;
    while agents.len() + usize::from(failure.is_some()) < world.size() as usize - 1 {
        match link::try_recv(world) {
            Some((rank, Some(FromAgent::Ready { workers }))) => agents.push(Agent {
                rank,
                workers: workers.max(1),
                held: 0,
                avg_run: None,
                heard: Instant::now(),
            }),
            Some((rank, Some(FromAgent::Failed(message)))) => {
                failure.get_or_insert(MpiError::Agent { rank, message });
            }
            Some(_) => {}
            None => std::thread::sleep(Duration::from_micros(100)),
        }
        sends.test();
    }
    if let Some(e) = failure {
        tell_all(&mut sends, &ToAgent::End);
        let _ = ready.send(Err(e));
        return;
    }
    agents.sort_by_key(|a| a.rank);
    let _ = ready.send(Ok(agents.iter().map(|a| a.workers).sum()));
    // Every rank from 1 answered: the agent of rank r is `agents[r - 1]`.
    let count = agents.len();
    let index = |rank: Rank| usize::try_from(rank - 1).ok().filter(|&i| i < count);
    let mut pending: VecDeque<Task> = VecDeque::new();
    let mut held: HashMap<String, (JobId, usize)> = HashMap::new();
    let mut closing: Option<Instant> = None;
    let mut wait = Duration::from_micros(20);
    // A request that came while the thread waited.
    let mut next: Option<Control> = None;
    let complete = |id: JobId, output: RunOutput| {
        let _ = done.send(shared.recorder.complete(id, output));
    };
    loop {
        let mut active = false;
        // The evaluator's requests.
        loop {
            let control = match next.take().map_or_else(|| controls.try_recv(), Ok) {
                Ok(c) => c,
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    tell_all(&mut sends, &ToAgent::End);
                    return;
                }
            };
            active = true;
            match control {
                Control::Task(task) => pending.push_back(task),
                Control::Cancel(id) => {
                    if let Some((_, i)) = held.get(id.as_str()) {
                        let bytes = serde_json::to_vec(&ToAgent::Cancel(id.to_string()))
                            .expect("serializable");
                        sends.post(world, agents[*i].rank, TO_AGENT, bytes);
                    }
                }
                Control::Deadline(d) => tell_all(
                    &mut sends,
                    &ToAgent::Deadline(d.map(|d| d.saturating_duration_since(Instant::now()))),
                ),
                Control::Closing(c) => {
                    closing = c.then(Instant::now);
                    tell_all(&mut sends, &ToAgent::Closing(c));
                }
            }
        }
        // Jobs out, to the agents with room, the least loaded first.
        let now = Instant::now();
        while !pending.is_empty() {
            let Some(i) = (0..agents.len())
                .filter(|&i| agents[i].held < agents[i].window())
                .min_by_key(|&i| agents[i].held * 1024 / agents[i].workers)
            else {
                break;
            };
            let room = agents[i].window() - agents[i].held;
            let mut batch = Vec::new();
            while batch.len() < room
                && let Some(task) = pending.pop_front()
            {
                if let Some(why) = task.control.stop_reason(now, None) {
                    complete(task.id, RunOutput::never_started(why));
                    continue;
                }
                held.insert(task.id.to_string(), (task.id.clone(), i));
                batch.push((task.id.to_string(), task.config));
            }
            if batch.is_empty() {
                continue;
            }
            active = true;
            agents[i].held += batch.len();
            let bytes = serde_json::to_vec(&ToAgent::Jobs(batch)).expect("serializable");
            sends.post(world, agents[i].rank, TO_AGENT, bytes);
        }
        // News in.
        while let Some((rank, news)) = link::try_recv(world) {
            active = true;
            let received = Instant::now();
            let Some(i) = index(rank) else { continue };
            agents[i].heard = received;
            let Some(FromAgent::News { running, done }) = news else {
                continue;
            };
            for id in running {
                if let Some((job, _)) = held.get(&id) {
                    let _ = shared
                        .recorder
                        .storage
                        .store_job_status(job, JobStatus::Running);
                }
            }
            for (id, output) in done {
                let Some((job, at)) = held.remove(&id) else {
                    continue;
                };
                let output = output.into_output_with(|age| {
                    received
                        .checked_sub(Duration::from_nanos(age))
                        .unwrap_or(received)
                });
                let agent = &mut agents[at];
                agent.held -= 1;
                if output.ran {
                    let ran = output.ended - output.started;
                    agent.avg_run = Some(agent.avg_run.map_or(ran, |avg| (avg * 7 + ran) / 8));
                }
                complete(job, output);
            }
        }
        sends.test();
        // A closing evaluator waits for every job; an agent that stopped answering gives its
        // jobs up.
        if closing.is_some_and(|c| c.elapsed() > SILENT) {
            for (i, agent) in agents.iter_mut().enumerate() {
                if agent.held == 0 || agent.heard.elapsed() < SILENT {
                    continue;
                }
                for (_, (job, _)) in held.extract_if(|_, (_, at)| *at == i) {
                    let message = format!(
                        "MPI rank {} did not answer for {SILENT:?} while the evaluator closed",
                        agent.rank
                    );
                    complete(
                        job,
                        RunOutput::without_run(Failure::new(FailureKind::Cancelled, message)),
                    );
                }
                agent.held = 0;
            }
        }
        if active {
            wait = Duration::from_micros(20);
            continue;
        }
        // Nothing to do: wait for the evaluator (at once) or the agents (within `wait`).
        match controls.recv_timeout(wait) {
            Ok(control) => next = Some(control),
            Err(RecvTimeoutError::Timeout) => wait = (wait * 2).min(Duration::from_millis(1)),
            Err(RecvTimeoutError::Disconnected) => {
                tell_all(&mut sends, &ToAgent::End);
                return;
            }
        }
    }
}
