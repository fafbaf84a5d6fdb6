//! Running one job: a fresh `Store` and instance, the call, and the classification of how it
//! ended. Nothing here panics or returns an error: every ending is a [`RunOutput`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::job::{Failure, FailureKind};
use crate::sandbox::Policy;
use crate::sandbox::clock::Monotonic;
use crate::sandbox::control::JobControl;
use crate::sandbox::grants::WriteBudget;
use crate::sandbox::host::{CappedBuf, Host, JobState, Limiter, P2};
use crate::sandbox::module::{LoadedModule, Prepared};

/// Epoch ticks between two checks of a running job's stop signals.
const CHECK_TICKS: u64 = 5;

/// What a job needs to run.
pub struct JobInput {
    /// The job id.
    pub id: String,
    /// The configuration as JSON text.
    pub config: String,
    /// The run-function kwargs as JSON text.
    pub kwargs: Arc<str>,
    /// Its stop signals.
    pub control: Arc<JobControl>,
    /// Who else hears the job's `record` calls and answers its `stopped()` (DeepHyper's
    /// `RunningJob`, from Python); `None` for most callers.
    pub observer: Option<Arc<dyn Observer>>,
}

/// Another party to a running job's `record` and `stopped` calls, such as a search's
/// multi-fidelity stopper. Called on the job's thread, while the guest waits.
pub trait Observer: Send + Sync {
    /// The guest recorded `objective` at `budget` (after the host stored it).
    fn record(&self, budget: f64, objective: f64);
    /// True when the job should stop early; the guest sees `stopped()` true when this or the
    /// host's own signals (deadline, cancel, close) say so.
    fn stopped(&self) -> bool;
}

/// How a job ended.
#[derive(Debug)]
pub struct RunOutput {
    /// The result text, or why there is none.
    pub result: Result<String, Failure>,
    /// The `record` series.
    pub records: Vec<(f64, f64)>,
    /// The log: `log` lines, then what the guest wrote to stderr (and, for objective
    /// components, stdout).
    pub log: String,
    /// True when stdout, stderr or the log went past its cap.
    pub truncated: bool,
    /// Fuel used, when fuel is metered.
    pub fuel_used: Option<u64>,
    /// When the instance was started.
    pub started: Instant,
    /// When the job ended.
    pub ended: Instant,
    /// False for a job stopped before its instance started (cancelled while queued): it has
    /// no start and end times, as in DeepHyper.
    pub ran: bool,
}

impl RunOutput {
    /// The ending of a job whose worker ended it from outside (killed, crashed).
    pub fn without_run(failure: Failure) -> RunOutput {
        let now = Instant::now();
        RunOutput {
            result: Err(failure),
            records: Vec::new(),
            log: String::new(),
            truncated: false,
            fuel_used: None,
            started: now,
            ended: now,
            ran: true,
        }
    }

    /// The ending of a job stopped (`why`) before it started.
    pub fn never_started(why: FailureKind) -> RunOutput {
        let message = "the job was stopped before it started: cancelled, evaluator closing or \
                       its deadline passed";
        RunOutput {
            ran: false,
            ..RunOutput::without_run(Failure::new(why, message))
        }
    }
}

/// How the call ended: a result (`None` for commands, whose result is on stdout), an error the
/// guest reported, or a trap.
enum Ending {
    Done(Option<String>),
    GuestError(String),
    Trapped(wasmtime::Error),
}

type CallResult = wasmtime::Result<Result<Option<String>, String>>;

fn ending(result: CallResult) -> Ending {
    match result {
        Ok(Ok(text)) => Ending::Done(text),
        Ok(Err(msg)) => Ending::GuestError(msg),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(0)) => Ending::Done(None),
            Some(I32Exit(code)) => Ending::GuestError(format!("exit code {code}")),
            None => Ending::Trapped(e),
        },
    }
}

impl LoadedModule {
    /// Runs one job in a fresh instance under `policy`.
    pub fn run(&self, policy: &Policy, input: JobInput) -> RunOutput {
        let started = Instant::now();
        if let Some(why) = input.control.stop_reason(started, None) {
            return RunOutput::never_started(why);
        }
        let deadline = policy.job_timeout.map(|t| started + t);
        let grace = policy
            .job_timeout
            .map_or(Duration::from_secs(1), |t| t / 10)
            .min(Duration::from_secs(1));
        let job = JobState {
            id: input.id.clone(),
            kwargs: input.kwargs.clone(),
            control: input.control.clone(),
            deadline,
            grace,
            records: Vec::new(),
            max_records: policy.max_records,
            records_overflow: false,
            log: CappedBuf::new(policy.log_cap),
            stopped_by: None,
            write_budget: WriteBudget::new(policy.write_quota),
            observer: input.observer.clone(),
        };
        let stdout = CappedBuf::new(policy.stdout_cap);
        let stderr = CappedBuf::new(policy.stderr_cap);
        let mut out = RunOutput {
            result: Err(Failure::new(FailureKind::Startup, "not started")),
            records: Vec::new(),
            log: String::new(),
            truncated: false,
            fuel_used: None,
            started,
            ended: started,
            ran: true,
        };
        let is_command = !matches!(self.prepared, Prepared::Objective { .. });
        let mut builder = match wasi_builder(policy, &input, &stdout, &stderr, is_command) {
            Ok(b) => b,
            Err(failure) => {
                out.result = Err(failure);
                return out;
            }
        };
        let limiter = Limiter::new(policy.memory, policy.table_elements);
        let (result, limiter, job, fuel_used) = match &self.prepared {
            Prepared::CommandCore(pre) => {
                let host = Host {
                    wasi: builder.build_p1(),
                    limiter,
                    job,
                };
                let (result, host, fuel) = self.in_store(policy, host, |store| {
                    let instance = pre.instantiate(&mut *store)?;
                    let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
                    start.call(&mut *store, ())?;
                    Ok(Ok(None))
                });
                (result, host.limiter, host.job, fuel)
            }
            Prepared::CommandComponent(pre) => {
                let (result, host, fuel) =
                    self.in_store(policy, p2_host(&mut builder, limiter, job), |store| {
                        let command = pre.instantiate(&mut *store)?;
                        Ok(match command.wasi_cli_run().call_run(&mut *store)? {
                            Ok(()) => Ok(None),
                            Err(()) => {
                                Err("the command returned an error (exit code 1)".to_string())
                            }
                        })
                    });
                (result, host.limiter, host.job, fuel)
            }
            Prepared::Objective { pre, run } => {
                let (result, host, fuel) =
                    self.in_store(policy, p2_host(&mut builder, limiter, job), |store| {
                        let instance = pre.instantiate(&mut *store)?;
                        let f = instance.get_typed_func::<(&str,), (Result<String, String>,)>(
                            &mut *store,
                            run,
                        )?;
                        Ok(f.call(&mut *store, (input.config.as_str(),))?.0.map(Some))
                    });
                (result, host.limiter, host.job, fuel)
            }
        };
        out.ended = Instant::now();
        out.fuel_used = fuel_used;
        let mut job = job;
        // A job that outlived its deadline (a clamped sleep returned to a guest that then
        // ended on its own) or was stopped meanwhile has no trustworthy result.
        let result = match (result, job.check()) {
            (Ok(_), Some(why)) => Err(wasmtime::Error::msg(format!("stopped by the host: {why}"))),
            (result, _) => result,
        };
        let stdout_text = stdout.take_string();
        let mut log = job.log.take_string();
        log.push_str(&stderr.take_string());
        let ending = ending(result);
        let text = match &ending {
            // A command's result is the last non-empty line of its stdout.
            Ending::Done(None) => Some(
                stdout_text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .to_string(),
            ),
            _ => {
                log.push_str(&stdout_text);
                None
            }
        };
        out.truncated = stdout.truncated() || stderr.truncated() || job.log.truncated();
        out.log = log;
        out.result = match ending {
            Ending::Done(result) => {
                let text = result.or(text).unwrap_or_default();
                if text.len() > policy.result_cap {
                    Err(Failure::new(
                        FailureKind::OutputTooLarge,
                        format!(
                            "the result is {} bytes, more than the cap of {} bytes",
                            text.len(),
                            policy.result_cap
                        ),
                    ))
                } else if text.trim().is_empty() {
                    Err(Failure::new(
                        FailureKind::BadOutput,
                        "the command printed no result line on stdout",
                    ))
                } else {
                    Ok(text)
                }
            }
            Ending::GuestError(msg) => Err(Failure::new(FailureKind::GuestError, msg)),
            Ending::Trapped(e) => Err(classify(&e, &job, limiter.hit, policy)),
        };
        // A failure's message can come from the guest (`Err(message)`, names in a trap's
        // backtrace): it gets the result's cap.
        if let Err(failure) = &mut out.result
            && crate::output::cut(&mut failure.message, policy.result_cap)
        {
            out.truncated = true;
        }
        out.records = job.records;
        out
    }

    /// Runs `call` in a fresh store holding `host`; returns its result, the host back, and
    /// the fuel used when metered.
    fn in_store<W: Send + 'static>(
        &self,
        policy: &Policy,
        host: Host<W>,
        call: impl FnOnce(&mut Store<Host<W>>) -> CallResult,
    ) -> (CallResult, Host<W>, Option<u64>) {
        let mut store = Store::new(&self.engine, host);
        store.limiter(|h| &mut h.limiter);
        store.set_epoch_deadline(CHECK_TICKS);
        store.epoch_deadline_callback(|mut ctx| match ctx.data_mut().job.check() {
            Some(why) => Err(wasmtime::Error::msg(format!("stopped by the host: {why}"))),
            None => Ok(UpdateDeadline::Continue(CHECK_TICKS)),
        });
        if let Some(fuel) = policy.fuel {
            let _ = store.set_fuel(fuel);
        }
        // Wait for room in the pool; the slot is given back once the store is gone.
        let slot = self.admission.admit(self.shape, || {
            store.data_mut().job.check().map(|w| w.to_string())
        });
        let stopped = |why: &dyn std::fmt::Display| {
            Err(wasmtime::Error::msg(format!(
                "stopped before it started: {why}"
            )))
        };
        let result = match (&slot, store.data_mut().job.check()) {
            (Err(why), _) => stopped(why),
            (Ok(_), Some(why)) => stopped(&why),
            (Ok(_), None) => call(&mut store),
        };
        let fuel_used = policy
            .fuel
            .map(|f| f.saturating_sub(store.get_fuel().unwrap_or(0)));
        let host = store.into_data();
        drop(slot);
        (result, host, fuel_used)
    }
}

fn p2_host(builder: &mut WasiCtxBuilder, limiter: Limiter, job: JobState) -> Host<P2> {
    Host {
        wasi: P2 {
            ctx: builder.build(),
            table: wasmtime::component::ResourceTable::new(),
        },
        limiter,
        job,
    }
}

/// The WASI context of a job: nothing granted but what the policy grants; stdout and stderr
/// captured with caps; for commands, the configuration on stdin and the job id and kwargs in
/// the environment.
fn wasi_builder(
    policy: &Policy,
    input: &JobInput,
    stdout: &CappedBuf,
    stderr: &CappedBuf,
    is_command: bool,
) -> Result<WasiCtxBuilder, Failure> {
    let mut b = WasiCtxBuilder::new();
    b.stdout(stdout.clone())
        .stderr(stderr.clone())
        .monotonic_clock(Monotonic)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if is_command {
        b.stdin(MemoryInputPipe::new(input.config.clone()))
            .env("WASMEVAL_JOB_ID", &input.id)
            .env("WASMEVAL_KWARGS", &*input.kwargs);
    }
    for (k, v) in &policy.env {
        b.env(k, v);
    }
    for dir in &policy.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&dir.host, &dir.guest, perms).map_err(|e| {
            Failure::new(
                FailureKind::Startup,
                format!(
                    "cannot open the granted directory {}: {e:#}",
                    dir.host.display()
                ),
            )
        })?;
    }
    Ok(b)
}

/// Why a call trapped, decided on the host side first (deadline, cancel, caps), then from the
/// trap itself.
fn classify(
    e: &wasmtime::Error,
    job: &JobState,
    memory_hit: Option<String>,
    policy: &Policy,
) -> Failure {
    match job.stopped_by {
        Some(FailureKind::Timeout) => {
            let limit = policy.job_timeout.unwrap_or_default();
            return Failure::new(
                FailureKind::Timeout,
                format!("the job ran past its time limit of {limit:?}"),
            );
        }
        Some(kind) => {
            return Failure::new(
                kind,
                "the job was stopped: cancelled, evaluator closing or its deadline passed",
            );
        }
        None => {}
    }
    if job.write_budget.exceeded() {
        return Failure::new(FailureKind::Quota, job.write_budget.message());
    }
    if let Some(msg) = memory_hit {
        return Failure::new(FailureKind::MemoryLimit, msg);
    }
    if job.records_overflow {
        return Failure::new(
            FailureKind::OutputTooLarge,
            format!("`record` was called more than {} times", policy.max_records),
        );
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure::new(
            FailureKind::FuelExhausted,
            format!(
                "the job used up its fuel budget of {}",
                policy.fuel.unwrap_or(0)
            ),
        ),
        Some(trap) => Failure {
            kind: FailureKind::Trap,
            message: trap.to_string(),
            trap_code: Some(format!("{trap:?}")),
        },
        None => Failure::new(FailureKind::Trap, format!("{e:#}")),
    }
}
