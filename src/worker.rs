//! Worker processes: the process backend runs jobs in them, and every backend compiles
//! untrusted modules in one (see [`crate::sandbox::compile`]); how they are started and found
//! is `child.rs`.
//!
//! A program that embeds wasmeval calls [`init`] at the top of `main`: when the process was
//! started as a worker, `init` runs the worker and exits; otherwise it returns at once and
//! marks the current executable as the worker binary, so nothing else has to be installed.
//!
//! ```no_run
//! # fn the_program() {}
//! fn main() {
//!     wasmeval::worker::init();
//!     the_program(); // which may create evaluators, with any method
//! }
//! ```

use std::io::{BufReader, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::child::{self, COMPILE, RUN};
pub use crate::child::{BUILD, PROTOCOL, binary, set_binary};
use crate::ipc;
use crate::job::Failure;
use crate::sandbox::module::Code;
use crate::sandbox::{JobControl, JobInput, LoadedModule, Policy, RunOutput, Signals};

/// Runs the worker and exits if this process was started as one (in a role of
/// `child.rs`); otherwise returns and marks the current executable as the worker
/// binary. Call it first thing in `main`.
pub fn init() {
    let role = std::env::var(child::ENV);
    if matches!(role.as_deref(), Ok(RUN) | Ok(COMPILE)) {
        child::ignore_interrupts();
        child::watch_parent();
        let (mut input, mut out) = (std::io::stdin().lock(), std::io::stdout().lock());
        if !child::answer_hello(&mut input, &mut out) {
            std::process::exit(2);
        }
    }
    match role.as_deref() {
        Ok(RUN) => std::process::exit(run_main()),
        Ok(COMPILE) => std::process::exit(crate::sandbox::compile::child_main()),
        _ => child::mark_current_exe(),
    }
}

/// What the evaluator sends a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// First frame: the module (its code follows as a raw frame) and how to run it.
    Setup(Box<Setup>),
    /// Run a job.
    Job {
        seq: u64,
        id: String,
        config: String,
    },
    /// Stop a job (queued or running).
    Cancel { id: String },
    /// The evaluator's deadline, from now.
    Deadline { deadline_in: Option<Duration> },
    /// The evaluator is closing (or not any more).
    Closing(bool),
}

/// Decodes `bytes` as a stream of frames of both directions (the messages to a worker, then
/// those from one), until the end or the first error; returns how many decoded. For fuzzing:
/// no input may panic or allocate more than it carries.
#[doc(hidden)]
pub fn decode_frames(bytes: &[u8]) -> usize {
    let mut buf = Vec::new();
    let mut n = 0;
    let mut input = bytes;
    while let Ok(Some(_)) = ipc::read_frame::<ToWorker>(&mut input, &mut buf) {
        n += 1;
    }
    let mut input = bytes;
    while let Ok(Some(_)) = ipc::read_frame::<FromWorker>(&mut input, &mut buf) {
        n += 1;
    }
    n
}

/// A worker's first frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Setup {
    pub name: PathBuf,
    pub sha256: String,
    pub component: bool,
    pub core_instances: u32,
    /// The compiled code's file in the compile cache; `None`: the code follows as raw bytes.
    pub code_file: Option<PathBuf>,
    pub policy: Policy,
    pub kwargs: String,
    pub deadline_in: Option<Duration>,
}

/// What a worker sends back.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The module is loaded.
    Ready,
    /// The module could not be loaded.
    Failed(String),
    /// A job ended.
    Done { seq: u64, output: WireOutput },
}

/// A [`RunOutput`] on the wire: its instants as `CLOCK_MONOTONIC` nanoseconds (see
/// [`crate::monotonic`]).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireOutput {
    result: std::result::Result<String, Failure>,
    #[serde(with = "crate::float::series")]
    records: Vec<(f64, f64)>,
    log: String,
    truncated: bool,
    fuel_used: Option<u64>,
    started: u64,
    ended: u64,
    ran: bool,
}

impl WireOutput {
    fn from_output(out: RunOutput) -> WireOutput {
        let clock = crate::monotonic::Reading::of_process();
        WireOutput::with_times(out, |t| clock.to_nanos(t))
    }

    /// `out` with its instants written as `nanos` gives them (a clock of this machine, or the
    /// age of each instant for another machine).
    pub(crate) fn with_times(out: RunOutput, nanos: impl Fn(Instant) -> u64) -> WireOutput {
        WireOutput {
            started: nanos(out.started),
            ended: nanos(out.ended),
            result: out.result,
            records: out.records,
            log: out.log,
            truncated: out.truncated,
            fuel_used: out.fuel_used,
            ran: out.ran,
        }
    }

    /// How long the job ran.
    pub(crate) fn duration(&self) -> Duration {
        Duration::from_nanos(self.ended.saturating_sub(self.started))
    }

    /// The output, its instants those of this process.
    pub(crate) fn into_output(self) -> RunOutput {
        let clock = crate::monotonic::Reading::of_process();
        self.into_output_with(|n| clock.to_instant(n))
    }

    /// The output, its instants read back by `instant` (the inverse of the `nanos` of
    /// [`WireOutput::with_times`]).
    pub(crate) fn into_output_with(self, instant: impl Fn(u64) -> Instant) -> RunOutput {
        RunOutput {
            result: self.result,
            records: self.records,
            log: self.log,
            truncated: self.truncated,
            fuel_used: self.fuel_used,
            started: instant(self.started),
            ended: instant(self.ended),
            ran: self.ran,
        }
    }
}

/// `d` from now.
pub(crate) fn deadline(d: Option<Duration>) -> Option<Instant> {
    d.map(|d| Instant::now() + d)
}

/// The job-running worker: load the module, then run jobs in order until stdin closes.
fn run_main() -> i32 {
    let mut input = BufReader::new(std::io::stdin());
    // Frames go to fd 1 directly: `Stdout` is line-buffered and would flush at every 0x0a.
    let Ok(fd1) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return 2;
    };
    let out = Arc::new(Mutex::new(BufWriter::with_capacity(
        64 << 10,
        std::fs::File::from(fd1),
    )));
    let mut buf = Vec::new();
    let Ok(Some(ToWorker::Setup(setup))) = ipc::read_frame(&mut input, &mut buf) else {
        return 2;
    };
    let Setup {
        name,
        sha256,
        component,
        core_instances,
        code_file,
        policy,
        kwargs,
        deadline_in,
    } = *setup;
    let code = match code_file {
        Some(path) => Code::File(path),
        None => {
            if !matches!(ipc::read_raw(&mut input, &mut buf), Ok(true)) {
                return 2;
            }
            Code::Bytes(Arc::new(std::mem::take(&mut buf)))
        }
    };
    let send = |msg: &FromWorker| {
        let mut o = out.lock().unwrap();
        if ipc::write_frame(&mut *o, msg)
            .and_then(|()| o.flush())
            .is_err()
        {
            std::process::exit(0);
        }
    };
    let module =
        match LoadedModule::from_code(name, sha256, component, core_instances, &code, &policy) {
            Ok(m) => m,
            Err(e) => {
                send(&FromWorker::Failed(e.to_string()));
                return 1;
            }
        };
    send(&FromWorker::Ready);
    let signals = Arc::new(Signals::default());
    signals.set_deadline(deadline(deadline_in));
    let controls: Arc<Mutex<std::collections::HashMap<String, Arc<JobControl>>>> = Arc::default();
    let (jobs_tx, jobs) = crossbeam_channel::unbounded();
    {
        let (signals, controls) = (signals.clone(), controls.clone());
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            // Any end of the parent's stream, clean or not, ends the worker at once, even
            // in the middle of a job.
            while let Ok(Some(msg)) = ipc::read_frame::<ToWorker>(&mut input, &mut buf) {
                match msg {
                    ToWorker::Job { seq, id, config } => {
                        let control = Arc::new(JobControl::new(signals.clone()));
                        controls.lock().unwrap().insert(id.clone(), control.clone());
                        let _ = jobs_tx.send((seq, id, config, control));
                    }
                    ToWorker::Cancel { id } => {
                        if let Some(c) = controls.lock().unwrap().get(&id) {
                            c.cancel();
                        }
                    }
                    ToWorker::Deadline { deadline_in } => {
                        signals.set_deadline(deadline(deadline_in))
                    }
                    ToWorker::Closing(closing) => signals.set_closing(closing),
                    ToWorker::Setup(_) => {}
                }
            }
            std::process::exit(0);
        });
    }
    let unflushed = Arc::new(AtomicBool::new(false));
    {
        let (out, unflushed) = (out.clone(), unflushed.clone());
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(1));
                if unflushed.swap(false, Ordering::AcqRel) && out.lock().unwrap().flush().is_err() {
                    std::process::exit(0);
                }
            }
        });
    }
    let kwargs: Arc<str> = kwargs.into();
    for (seq, id, config, control) in &jobs {
        let output = module.run(
            &policy,
            JobInput {
                id: id.clone(),
                config,
                kwargs: kwargs.clone(),
                control,
                observer: None,
            },
        );
        controls.lock().unwrap().remove(&id);
        let mut o = out.lock().unwrap();
        let done = FromWorker::Done {
            seq,
            output: WireOutput::from_output(output),
        };
        // Flush at once when no job is waiting; otherwise results travel in batches, and the
        // flusher thread sends them within a millisecond, even if the next job runs long.
        let sent = ipc::write_frame(&mut *o, &done).and_then(|()| {
            if jobs.is_empty() {
                o.flush()
            } else {
                unflushed.store(true, Ordering::Release);
                Ok(())
            }
        });
        if sent.is_err() {
            return 0;
        }
    }
    0
}
