//! The node agent: the process backend behind a different front door. An evaluator on
//! another process (MPI's rank 0; later, any host through Redis) sends it a module by value
//! and batches of jobs over a [`Link`]; it runs them in its own local pool of worker
//! processes, so a crashing or runaway guest takes down one worker, never the agent, and
//! streams back which jobs started and how they ended.
//!
//! The agent serves one search after another until the evaluator's program ends. Times of a
//! job travel as ages (nanoseconds before the message was made), since another machine's
//! monotonic clock means nothing to the evaluator: it places them at the message's arrival,
//! off by the message's transit time only.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, ProcessPool, Program, Sink, Task};
use crate::job::{Failure, FailureKind, JobId};
use crate::sandbox::{CacheDir, JobControl, ModuleHandle, RunOutput, Signals};
use crate::worker::WireOutput;

/// What an evaluator sends a node agent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToAgent {
    /// A search begins: load its module and start the pool.
    Setup(Box<Setup>),
    /// Run these jobs: (job id, configuration as JSON).
    Jobs(Vec<(String, String)>),
    /// Stop this job, queued or running.
    Cancel(String),
    /// The evaluator's deadline, from now.
    Deadline(Option<Duration>),
    /// The evaluator is closing (or not any more).
    Closing(bool),
    /// The search is over: stop the pool and wait for the next.
    End,
    /// The evaluator's program is ending: exit.
    Shutdown,
}

/// A search's module and how to run its jobs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Setup {
    /// The module, by value, and the policy its jobs run under.
    pub handle: ModuleHandle,
    /// The run-function kwargs, as JSON.
    pub kwargs: String,
    /// The evaluator's deadline, from now.
    pub deadline_in: Option<Duration>,
    /// How many times a job whose worker died runs again.
    pub retries: u32,
}

/// What a node agent sends back.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromAgent {
    /// The module is loaded and this many workers run jobs.
    Ready { workers: usize },
    /// The module could not be loaded, or the pool not started.
    Failed(String),
    /// These jobs started; these ended (their times as ages, see the module docs).
    News {
        running: Vec<String>,
        done: Vec<(String, WireOutput)>,
    },
}

/// Most job endings in one message.
const BATCH: usize = 4096;
/// How long an idle agent waits for news between looks at its link, at most.
const IDLE: Duration = Duration::from_millis(1);
/// ...and at least, right after it had something to do.
const BUSY: Duration = Duration::from_micros(20);

/// A transport between an evaluator and a node agent (MPI, Redis).
pub(crate) trait Link {
    /// The next message from the evaluator, if one came within `wait`.
    fn recv(&mut self, wait: Duration) -> Option<ToAgent>;
    /// Sends a message to the evaluator.
    fn send(&mut self, message: FromAgent);
}

/// News from the local pool.
enum News {
    Running(JobId),
    Done(JobId, RunOutput),
}

struct Relay(Sender<News>);

impl Sink for Relay {
    fn running(&self, id: &JobId) {
        let _ = self.0.send(News::Running(id.clone()));
    }

    fn finish(&self, id: JobId, output: RunOutput) {
        let _ = self.0.send(News::Done(id, output));
    }
}

/// How a search ended for the agent.
enum Ended {
    /// This search; serve the next.
    Search,
    /// The evaluator's program.
    Program,
}

/// Serves searches over `link` with `workers` local worker processes until the evaluator's
/// program ends. Once `stop` is set (SIGTERM), jobs are stopped and refused, and the agent
/// waits for the evaluator to end.
pub(crate) fn serve(link: &mut dyn Link, workers: usize, stop: &AtomicBool) {
    loop {
        match link.recv(IDLE) {
            Some(ToAgent::Setup(setup)) => {
                if let Ended::Program = session(link, *setup, workers, stop) {
                    return;
                }
            }
            Some(ToAgent::Shutdown) => return,
            // Left over from a search that ended.
            Some(_) | None => {}
        }
    }
}

/// The output of a job the agent did not run to its end.
fn stopped(message: &str) -> RunOutput {
    RunOutput::without_run(Failure::new(FailureKind::Cancelled, message))
}

const STOPPED: &str = "the node agent was stopped (SIGTERM) before the job ended";

/// Serves one search: loads its module, runs its jobs, until its end.
fn session(link: &mut dyn Link, setup: Setup, workers: usize, stop: &AtomicBool) -> Ended {
    let Setup {
        handle,
        kwargs,
        deadline_in,
        retries,
    } = setup;
    let signals = Arc::new(Signals::default());
    signals.set_deadline(crate::worker::deadline(deadline_in));
    let (news_tx, news) = crossbeam_channel::unbounded();
    let started = handle.load(&CacheDir::Default).and_then(|module| {
        let program = Program {
            module: Arc::new(module),
            policy: Arc::new(handle.policy.clone()),
            kwargs: kwargs.into(),
        };
        ProcessPool::start(
            workers,
            program,
            signals.clone(),
            retries,
            Arc::new(Relay(news_tx)),
        )
    });
    let mut pool = match started {
        Ok(pool) => Some(pool),
        Err(e) => {
            link.send(FromAgent::Failed(e.to_string()));
            return Ended::Search;
        }
    };
    link.send(FromAgent::Ready { workers });
    // The jobs given and not ended yet.
    let mut controls: HashMap<String, Arc<JobControl>> = HashMap::new();
    let mut wait = BUSY;
    loop {
        let mut active = false;
        let mut refused = Vec::new();
        while let Some(message) = link.recv(Duration::ZERO) {
            active = true;
            match message {
                ToAgent::Jobs(jobs) => {
                    for (id, config) in jobs {
                        let (Some(p), Some(job_id)) = (&pool, JobId::parse(&id)) else {
                            refused.push((id, stopped(STOPPED)));
                            continue;
                        };
                        let control = Arc::new(JobControl::new(signals.clone()));
                        controls.insert(id, control.clone());
                        p.dispatch(Task {
                            id: job_id,
                            config,
                            control,
                        });
                    }
                }
                ToAgent::Cancel(id) => {
                    if let (Some(c), Some(job_id)) = (controls.get(&id), JobId::parse(&id)) {
                        c.cancel();
                        if let Some(p) = &pool {
                            p.cancel(&job_id);
                        }
                    }
                }
                ToAgent::Deadline(d) => {
                    let deadline = crate::worker::deadline(d);
                    signals.set_deadline(deadline);
                    if let Some(p) = &pool {
                        p.set_deadline(deadline);
                    }
                }
                ToAgent::Closing(closing) => {
                    signals.set_closing(closing);
                    if let Some(p) = &pool {
                        p.set_closing(closing);
                    }
                }
                ToAgent::End => return Ended::Search,
                ToAgent::Shutdown => return Ended::Program,
                ToAgent::Setup(_) => {}
            }
        }
        if stop.load(Ordering::SeqCst) && pool.is_some() {
            // Stops and reaps the workers; their jobs end here.
            pool = None;
            refused.extend(controls.drain().map(|(id, _)| (id, stopped(STOPPED))));
        }
        let first = if active {
            news.try_recv().ok()
        } else {
            news.recv_timeout(wait).ok()
        };
        let (mut running, mut done) = (Vec::new(), Vec::new());
        for item in first.into_iter().chain(news.try_iter().take(BATCH)) {
            match item {
                News::Running(id) => running.push(id.to_string()),
                News::Done(id, output) => {
                    let id = id.to_string();
                    if controls.remove(&id).is_some() {
                        done.push((id, output));
                    }
                }
            }
        }
        done.extend(refused);
        // A job that started and ended since the last message is reported ended only.
        if !done.is_empty() && !running.is_empty() {
            let ended: std::collections::HashSet<&str> =
                done.iter().map(|(id, _)| id.as_str()).collect();
            running.retain(|id| !ended.contains(id.as_str()));
        }
        if !running.is_empty() || !done.is_empty() {
            active = true;
            let now = Instant::now();
            let age = |t: Instant| now.saturating_duration_since(t).as_nanos() as u64;
            let done = done
                .into_iter()
                .map(|(id, out)| (id, WireOutput::with_times(out, age)))
                .collect();
            link.send(FromAgent::News { running, done });
        }
        wait = if active { BUSY } else { (wait * 2).min(IDLE) };
    }
}
