//! `wasmeval._native`: the Rust library as the Python package sees it. [`Module`] runs one
//! job in this process (the package's `RunFunction`), [`Pool`] is the library's evaluator
//! (the package's two `Evaluator`s). Values cross as JSON text, which keeps floats exact
//! (serde_json's `float_roundtrip` here, Python's `repr` there). Every wait releases the GIL,
//! and blocking waits check for Ctrl-C.

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!(
    "wasmeval's Python package is built for Linux x86_64 only (its worker processes, limits \
     and tests are Linux's)"
);

use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use serde_json::{Map, Value};
use wasmeval::backend::outcome::outcome;
use wasmeval::sandbox::{JobControl, JobInput, Observer, Signals};
use wasmeval::{
    CacheDir, Error, Evaluator, Job, JobId, LoadedModule, Method, Origin, Policy, RunFunction,
};

create_exception!(
    _native,
    WasmevalError,
    PyException,
    "An error of wasmeval itself (not of a job: a failed job is an outcome)."
);
create_exception!(
    _native,
    LoadError,
    WasmevalError,
    "A run function that cannot be loaded: not WebAssembly, no `run` export, imports the \
     sandbox does not provide, or it failed to compile."
);

/// The Python exception for a library error: [`LoadError`] for a module that cannot be used,
/// `ValueError` for an invalid option, [`WasmevalError`] for the rest.
fn py_err(e: Error) -> PyErr {
    match e {
        Error::Read { .. } | Error::Module { .. } => LoadError::new_err(e.to_string()),
        Error::Option(_) => PyValueError::new_err(e.to_string()),
        _ => WasmevalError::new_err(e.to_string()),
    }
}

fn policy_of(json: &str) -> PyResult<Policy> {
    serde_json::from_str(json).map_err(|e| PyValueError::new_err(format!("invalid policy: {e}")))
}

fn json_map(json: &str, what: &str) -> PyResult<Map<String, Value>> {
    serde_json::from_str(json)
        .map_err(|e| PyValueError::new_err(format!("{what} must be a JSON object: {e}")))
}

fn source(name: String, wasm: Vec<u8>) -> RunFunction {
    RunFunction::Bytes { name, bytes: wasm }
}

/// A job as DeepHyper's run functions return it: `{"objective": ..., "metadata": {...}}`
/// with the extra keys of the result; the host's internal keys (`_...`) left out.
fn deephyper_output(job: Job) -> Value {
    let mut out = job.extra_output;
    out.insert(
        "objective".into(),
        job.objective.as_ref().map_or(Value::Null, |o| o.to_json()),
    );
    let metadata: Map<String, Value> = job
        .metadata
        .into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .collect();
    out.insert("metadata".into(), Value::Object(metadata));
    Value::Object(out)
}

/// DeepHyper's `RunningJob` as the guest's `record` and `stopped` reach it.
struct RunningJob {
    job: Py<PyAny>,
    /// Set at the first `record`: until then no stopper has anything to judge (DeepHyper's
    /// raise when asked), so `stopped()` is false without asking.
    recorded: std::sync::atomic::AtomicBool,
    /// When `stopped()` was last asked, and its answer: asked at most every 10 ms, so that a
    /// guest polling in a loop cannot hammer the GIL.
    last: Mutex<Option<(Instant, bool)>>,
}

/// How often a guest's `stopped()` reaches the Python job at most.
const STOPPED_EVERY: Duration = Duration::from_millis(10);

impl Observer for RunningJob {
    fn record(&self, budget: f64, objective: f64) {
        self.recorded
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Python::attach(|py| {
            if let Err(e) = self.job.call_method1(py, "record", (budget, objective)) {
                e.write_unraisable(py, Some(self.job.bind(py)));
            }
        });
    }

    fn stopped(&self) -> bool {
        if !self.recorded.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, answer)) = *last
            && at.elapsed() < STOPPED_EVERY
        {
            return answer;
        }
        let answer = Python::attach(|py| {
            self.job
                .call_method0(py, "stopped")
                .and_then(|r| r.is_truthy(py))
                .unwrap_or_else(|e| {
                    e.write_unraisable(py, Some(self.job.bind(py)));
                    false
                })
        });
        *last = Some((Instant::now(), answer));
        answer
    }
}

/// The signals wasmtime's traps raise (out-of-bounds access, `unreachable`, ...).
const TRAP_SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGILL, libc::SIGBUS, libc::SIGFPE];

/// wasmtime's handlers of [`TRAP_SIGNALS`], as its first engine installed them.
static TRAP_HANDLERS: std::sync::OnceLock<Vec<(libc::c_int, libc::sigaction)>> =
    std::sync::OnceLock::new();

fn handler_of(signal: libc::c_int) -> libc::sigaction {
    // SAFETY: a query (no new action) into a zeroed struct of the right type.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut action);
        action
    }
}

/// Remembers wasmtime's trap handlers; called once an engine exists.
fn remember_trap_handlers() {
    TRAP_HANDLERS.get_or_init(|| TRAP_SIGNALS.iter().map(|&s| (s, handler_of(s))).collect());
}

/// Puts wasmtime's trap handlers back where another library replaced them (Ray's driver
/// does: measured, a guest's `unreachable` then killed Python with SIGILL). A job's trap must
/// reach wasmtime, which ends the job; wasmtime passes faults that are not a guest's on to
/// the handler it found.
fn restore_trap_handlers() {
    for (signal, ours) in TRAP_HANDLERS.get().into_iter().flatten() {
        if handler_of(*signal).sa_sigaction != ours.sa_sigaction {
            // SAFETY: reinstalls an action this process had installed.
            unsafe { libc::sigaction(*signal, ours, std::ptr::null_mut()) };
        }
    }
}

/// One job's input, with stop signals of its own (a call stands alone: no evaluator).
fn job_input(
    id: String,
    config: String,
    kwargs: &str,
    observer: Option<Arc<dyn Observer>>,
) -> JobInput {
    JobInput {
        id,
        config,
        kwargs: Arc::from(kwargs),
        control: Arc::new(JobControl::new(Arc::new(Signals::default()))),
        observer,
    }
}

/// A run function loaded in this process: every [`Module::run`] is a fresh sandboxed
/// instance on the calling thread, with the GIL released.
#[pyclass(frozen, module = "wasmeval._native")]
struct Module {
    /// Never dropped in a child of `fork`: its engine belongs to the parent.
    loaded: ManuallyDrop<Arc<LoadedModule>>,
    policy: Policy,
    /// The process that loaded it.
    pid: u32,
    /// `time.monotonic()`'s axis, anchored when the module was loaded (before any of its
    /// jobs started).
    origin: Origin,
}

#[pymethods]
impl Module {
    /// Loads (compiles, or finds in the compile cache) `wasm` under the policy (JSON).
    #[new]
    fn new(py: Python<'_>, name: String, wasm: Vec<u8>, policy: &str) -> PyResult<Module> {
        let policy = policy_of(policy)?;
        policy.check().map_err(py_err)?;
        let loaded = py
            .detach(|| LoadedModule::load(&source(name, wasm), &policy, &CacheDir::Default))
            .map_err(py_err)?;
        remember_trap_handlers();
        Ok(Module {
            loaded: ManuallyDrop::new(Arc::new(loaded)),
            policy,
            pid: std::process::id(),
            origin: Origin::monotonic(),
        })
    }

    /// The sha256 of the module's bytes, hex.
    #[getter]
    fn sha256(&self) -> String {
        self.loaded.sha256.clone()
    }

    /// Runs one job: the configuration and kwargs as JSON objects; `job`, when given, hears
    /// `record` and answers `stopped`. Returns DeepHyper's run-function output as JSON.
    #[pyo3(signature = (job_id, config, kwargs, job=None))]
    fn run(
        &self,
        py: Python<'_>,
        job_id: String,
        config: String,
        kwargs: &str,
        job: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        if self.pid != std::process::id() {
            return Err(WasmevalError::new_err(
                "this module was loaded before a fork; load it again in this process",
            ));
        }
        let observer = job.map(|job| {
            Arc::new(RunningJob {
                job,
                recorded: Default::default(),
                last: Mutex::new(None),
            }) as Arc<dyn Observer>
        });
        let input = job_input(job_id, config, kwargs, observer);
        restore_trap_handlers();
        let out = py.detach(|| self.loaded.run(&self.policy, input));
        let job = outcome(JobId::new("0", 0), out, &self.origin);
        Ok(deephyper_output(job).to_string())
    }

    /// The library's own per-job cost, for the benchmarks: runs `config` `n` times from Rust
    /// (no Python between the jobs) and returns the mean seconds per job.
    fn _time_runs(&self, py: Python<'_>, config: String, n: u32) -> f64 {
        let started = Instant::now();
        py.detach(|| {
            for _ in 0..n {
                let input = job_input("0.0".into(), config.clone(), "{}", None);
                let out = self.loaded.run(&self.policy, input);
                std::hint::black_box(outcome(JobId::new("0", 0), out, &self.origin));
            }
        });
        started.elapsed().as_secs_f64() / f64::from(n.max(1))
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        if self.pid == std::process::id() {
            // SAFETY: dropped once, here; never used again.
            unsafe { ManuallyDrop::drop(&mut self.loaded) };
        }
    }
}

/// The library's evaluator: jobs on its threads or worker processes, none of them Python.
#[pyclass(module = "wasmeval._native")]
struct Pool {
    /// Held by the one call using it. A call from another thread meanwhile is refused, not
    /// made to wait: it would wait holding the GIL that the first call needs back.
    evaluator: Mutex<Evaluator>,
    num_workers: usize,
    search_id: String,
    monotonic_zero: f64,
    to_json: String,
}

impl Pool {
    fn evaluator(&self) -> PyResult<std::sync::MutexGuard<'_, Evaluator>> {
        match self.evaluator.try_lock() {
            Ok(guard) => Ok(guard),
            Err(std::sync::TryLockError::Poisoned(e)) => Ok(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => Err(WasmevalError::new_err(
                "the evaluator is in use by another thread (gather or close)",
            )),
        }
    }
}

/// How long a blocking wait sleeps between two checks for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Jobs as a JSON array: whole, or `brief` (id, status, objective and metadata only: what
/// DeepHyper's jobs take).
fn jobs_json<'a>(jobs: impl IntoIterator<Item = &'a Job>, brief: bool) -> String {
    let json = |job: &Job| {
        if !brief {
            return job.to_json();
        }
        serde_json::json!({
            "job_id": job.id.as_str(),
            "status": job.status.name(),
            "objective": job.objective.as_ref().map_or(Value::Null, |o| o.to_json()),
            "metadata": job.metadata,
        })
    };
    Value::Array(jobs.into_iter().map(json).collect()).to_string()
}

#[pymethods]
impl Pool {
    /// An evaluator of `wasm` (`method`: "serial", "thread" or "process").
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: String,
        wasm: Vec<u8>,
        policy: &str,
        method: &str,
        num_workers: usize,
        kwargs: &str,
    ) -> PyResult<Pool> {
        let method = match method {
            "serial" => Method::Serial,
            "thread" => Method::Thread,
            "process" => Method::Process,
            other => {
                return Err(PyValueError::new_err(format!(
                    "method must be \"serial\", \"thread\" or \"process\", not {other:?}"
                )));
            }
        };
        let builder = Evaluator::builder(source(name, wasm))
            .method(method)
            .num_workers(num_workers)
            .policy(policy_of(policy)?)
            .run_function_kwargs(json_map(kwargs, "kwargs")?);
        let evaluator = py.detach(|| builder.build()).map_err(py_err)?;
        remember_trap_handlers();
        Ok(Pool {
            num_workers: evaluator.num_workers(),
            search_id: evaluator.search_id().to_owned(),
            monotonic_zero: evaluator.origin().monotonic_zero(),
            to_json: evaluator.to_json().to_string(),
            evaluator: Mutex::new(evaluator),
        })
    }

    /// Submits configurations (a JSON array of objects); returns their job ids.
    fn submit(&self, configs: &str) -> PyResult<Vec<String>> {
        restore_trap_handlers();
        let configs: Vec<Value> = serde_json::from_str(configs)
            .map_err(|e| PyValueError::new_err(format!("configurations: {e}")))?;
        let ids = self.evaluator()?.submit(configs).map_err(py_err)?;
        Ok(ids.iter().map(|id| id.as_str().to_owned()).collect())
    }

    /// Waits for every pending job (`size` None) or at least `size` of them, checking for
    /// Ctrl-C; returns this evaluator's jobs and the other evaluators', as JSON arrays
    /// (`brief`: see [`jobs_json`]).
    #[pyo3(signature = (size=None, brief=false))]
    fn gather(
        &self,
        py: Python<'_>,
        size: Option<usize>,
        brief: bool,
    ) -> PyResult<(String, String)> {
        let mut guard = self.evaluator()?;
        let evaluator = &mut *guard;
        let pending = evaluator.num_pending();
        let wanted = match size {
            None => pending,
            Some(_) if pending == 0 => return Err(py_err(Error::NoJobsPending)),
            Some(n) => n.clamp(1, pending),
        };
        let (mut local, mut other) = (Vec::new(), Vec::new());
        loop {
            let got = py.detach(|| {
                if local.len() >= wanted {
                    evaluator.poll(Duration::ZERO)
                } else {
                    evaluator.poll(SIGNAL_CHECK)
                }
            });
            let got = got.map_err(py_err)?;
            local.extend(got.local);
            other.extend(got.other);
            if local.len() >= wanted {
                break;
            }
            py.check_signals()?;
        }
        let gathered = if size.is_none() {
            // The others are looked up at most once a second by polls: once more at the end.
            py.detach(|| evaluator.poll(Duration::ZERO))
                .map_err(py_err)?
        } else {
            Default::default()
        };
        local.extend(gathered.local);
        other.extend(gathered.other);
        Ok((jobs_json(&local, brief), jobs_json(&other, brief)))
    }

    /// Stops running and queued jobs; returns every job not gathered yet (JSON array;
    /// `brief`: see [`jobs_json`]).
    #[pyo3(signature = (brief=false))]
    fn close(&self, py: Python<'_>, brief: bool) -> PyResult<String> {
        let mut guard = self.evaluator()?;
        let evaluator = &mut *guard;
        let jobs = py.detach(|| evaluator.close());
        Ok(jobs_json(&jobs, brief))
    }

    /// Asks a submitted job to stop; false for an unknown or gathered one.
    fn cancel(&self, job_id: &str) -> PyResult<bool> {
        let mut evaluator = self.evaluator()?;
        Ok(JobId::parse(job_id).is_some_and(|id| evaluator.cancel(&id)))
    }

    /// Sets (or clears) the evaluator-wide time limit, in seconds from now.
    fn set_timeout(&self, seconds: Option<f64>) -> PyResult<()> {
        let timeout = seconds
            .map(|s| {
                Duration::try_from_secs_f64(s)
                    .map_err(|e| PyValueError::new_err(format!("timeout {s}: {e}")))
            })
            .transpose()?;
        self.evaluator()?.set_timeout(timeout);
        Ok(())
    }

    /// Seconds left before the time limit (negative once past), if set.
    fn time_left(&self) -> PyResult<Option<f64>> {
        Ok(self.evaluator()?.time_left())
    }

    /// Jobs submitted and not gathered yet.
    fn num_pending(&self) -> PyResult<usize> {
        Ok(self.evaluator()?.num_pending())
    }

    /// The number of workers.
    #[getter]
    fn num_workers(&self) -> usize {
        self.num_workers
    }

    /// The search id.
    #[getter]
    fn search_id(&self) -> String {
        self.search_id.clone()
    }

    /// DeepHyper's `to_json`, as JSON.
    fn to_json(&self) -> String {
        self.to_json.clone()
    }

    /// Where the search's time axis starts on `time.monotonic()`'s, in seconds.
    fn monotonic_zero(&self) -> f64 {
        self.monotonic_zero
    }

    /// The pids of the worker processes (none for threads).
    fn worker_pids(&self) -> PyResult<Vec<u32>> {
        Ok(self.evaluator()?.worker_pids())
    }
}

/// Uses `path` as the worker binary (the `wasmeval` command shipped in the package).
#[pyfunction]
fn set_worker_binary(path: std::path::PathBuf) {
    wasmeval::worker::set_binary(path);
}

/// Takes the engines' lock just before `fork()` (`os.register_at_fork(before=...)`).
#[pyfunction]
fn prepare_fork() {
    wasmeval::sandbox::prepare_fork();
}

/// Releases it after `fork()`, in the parent and in the child.
#[pyfunction]
fn forked() {
    wasmeval::sandbox::forked();
}

/// The default policy, as JSON.
#[pyfunction]
fn default_policy() -> String {
    serde_json::to_value(Policy::default())
        .expect("a policy is JSON")
        .to_string()
}

/// A size in bytes (`64MiB`, `1GiB`, `100MB`, `4096`), as the command line reads it.
#[pyfunction]
fn parse_size(text: &str) -> PyResult<usize> {
    wasmeval::sandbox::policy::parse_size(text).map_err(PyValueError::new_err)
}

/// The library's version and worker protocol, which the worker binary must share.
#[pyfunction]
fn build() -> (String, u32) {
    (
        wasmeval::worker::BUILD.to_owned(),
        wasmeval::worker::PROTOCOL,
    )
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Module>()?;
    m.add_class::<Pool>()?;
    m.add_function(wrap_pyfunction!(set_worker_binary, m)?)?;
    m.add_function(wrap_pyfunction!(prepare_fork, m)?)?;
    m.add_function(wrap_pyfunction!(forked, m)?)?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add_function(wrap_pyfunction!(default_policy, m)?)?;
    m.add_function(wrap_pyfunction!(parse_size, m)?)?;
    m.add("WasmevalError", m.py().get_type::<WasmevalError>())?;
    m.add("LoadError", m.py().get_type::<LoadError>())?;
    Ok(())
}
