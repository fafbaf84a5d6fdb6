//! Child processes: the worker binary (a program that calls [`crate::worker::init`] first,
//! such as the `wasmeval` command) re-executed in a role, running jobs or compiling one
//! module, with framed pipes ([`crate::ipc`]) on its standard input and output. The compile
//! child and the worker pool both start theirs here.
//!
//! Every child first answers the parent's [`Hello`] with its own: a child of another protocol
//! version or build is refused with one line naming its binary, before any job is sent.
//!
//! The worker binary is, in order: the one set with [`set_binary`], `$WASMEVAL_WORKER_BIN`,
//! the current executable when it called [`crate::worker::init`], a `wasmeval` executable next
//! to the current executable or in its parent directory (as `cargo test` lays them out), then
//! `wasmeval` on the `PATH`.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rustix::process::{Pid, Resource, Rlimit, Signal};
use serde::{Deserialize, Serialize};

use crate::ipc;

/// Why a child process could not be started or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChildError {
    /// No worker binary was found (see the module docs for where it is looked for).
    #[error(
        "no worker binary: call wasmeval::worker::init() first thing in your program's main (it \
         makes the program its own worker), or wasmeval::worker::set_binary(path), or set \
         WASMEVAL_WORKER_BIN to the `wasmeval` command"
    )]
    NoBinary,
    /// The binary could not be started.
    #[error("cannot start the worker binary {}: {source}", binary.display())]
    Spawn {
        /// The worker binary.
        binary: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The binary started, but is not a worker of this build.
    #[error("the worker binary {} {why}", binary.display())]
    Refused {
        /// The worker binary.
        binary: PathBuf,
        /// What it answered.
        why: Refused,
    },
    /// A worker passed the hello but did not get ready to run jobs.
    #[error("the worker {} did not start ({status}{})", binary.display(), detail.as_ref().map(|d| format!(", {d}")).unwrap_or_default())]
    NotStarted {
        /// The worker binary.
        binary: PathBuf,
        /// How it ended.
        status: String,
        /// What reading its answer said, if anything.
        detail: Option<std::io::Error>,
    },
    /// A worker could not load the module; its message (it crosses a process boundary).
    #[error("the worker could not load the module: {0}")]
    Setup(String),
    /// The worker pool's supervisor ended before the workers started.
    #[error("the worker supervisor ended")]
    Supervisor,
}

/// What a binary that is not a worker of this build answered to the hello.
#[derive(Debug)]
#[non_exhaustive]
pub enum Refused {
    /// A worker of another build or protocol.
    Version {
        /// Its build.
        build: String,
        /// Its protocol.
        protocol: u32,
    },
    /// Something that is no wasmeval worker; what it did.
    NotAWorker(String),
    /// No answer within this time.
    Silent(Duration),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Version { build, protocol } => write!(
                f,
                "is wasmeval {build} (protocol {protocol}), and this program wasmeval {BUILD} \
                 (protocol {PROTOCOL}): use the `wasmeval` of the same version"
            ),
            Refused::NotAWorker(what) => write!(
                f,
                "is not a wasmeval worker: it {what}; is it a program that calls \
                 wasmeval::worker::init() first?"
            ),
            Refused::Silent(after) => {
                write!(
                    f,
                    "did not answer within {after:?}; is it a wasmeval worker?"
                )
            }
        }
    }
}

type Result<T, E = ChildError> = std::result::Result<T, E>;

/// The environment variable that makes a process a child; its value is the role.
pub const ENV: &str = "WASMEVAL_WORKER";
/// The role of a job-running worker.
pub const RUN: &str = "run";
/// The role of a compiling child.
pub const COMPILE: &str = "compile";
/// The environment variable holding the parent's pid, so a child notices an early death.
pub const PARENT_ENV: &str = "WASMEVAL_PARENT_PID";

/// The version of the messages between parent and child; a change of any message changes it.
pub const PROTOCOL: u32 = 2;
/// The build of this library, which parent and child must share: its version, and a hash of
/// its sources (see `build.rs`).
pub const BUILD: &str = concat!(env!("CARGO_PKG_VERSION"), "+", env!("WASMEVAL_BUILD_ID"));

/// Prefixes of the environment variables that process launchers set, which children never
/// inherit.
pub const LAUNCHER_PREFIXES: [&str; 3] = ["OMPI_", "PMIX_", "PMI_"];

/// How long a child may take to answer the hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// The first frame each side sends: the parent's, then the child's answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum Hello {
    /// From the parent.
    Parent {
        /// [`PROTOCOL`].
        protocol: u32,
        /// [`BUILD`].
        build: String,
    },
    /// From the child.
    Child {
        /// The child's [`PROTOCOL`].
        protocol: u32,
        /// The child's [`BUILD`].
        build: String,
    },
}

static INIT: AtomicBool = AtomicBool::new(false);

fn explicit() -> &'static Mutex<Option<PathBuf>> {
    static EXPLICIT: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    EXPLICIT.get_or_init(|| Mutex::new(None))
}

/// Marks the current executable as the worker binary (it called `worker::init`).
pub(crate) fn mark_current_exe() {
    INIT.store(true, Ordering::Relaxed);
}

/// Uses `path` as the worker binary (a program that calls [`crate::worker::init`] first,
/// such as the `wasmeval` command itself).
pub fn set_binary(path: impl Into<PathBuf>) {
    *explicit().lock().unwrap() = Some(path.into());
}

/// The worker binary, found as the module docs say.
pub fn binary() -> Result<PathBuf> {
    if let Some(p) = explicit().lock().unwrap().clone() {
        return Ok(p);
    }
    if let Some(p) = std::env::var_os("WASMEVAL_WORKER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok();
    if INIT.load(Ordering::Relaxed)
        && let Some(exe) = &exe
    {
        return Ok(exe.clone());
    }
    let beside = exe.iter().flat_map(|e| {
        let dir = e.parent().map(Path::to_path_buf);
        let up = dir.as_ref().and_then(|d| d.parent()).map(Path::to_path_buf);
        [dir, up].into_iter().flatten()
    });
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    beside
        .chain(on_path)
        .map(|d| d.join("wasmeval"))
        .find(|p| p.is_file())
        .ok_or(ChildError::NoBinary)
}

/// A started child, past the hello: its process and its framed pipes.
pub struct Child {
    /// The process.
    pub process: std::process::Child,
    /// Frames to the child.
    pub stdin: BufWriter<ChildStdin>,
    /// Frames from the child.
    pub stdout: BufReader<ChildStdout>,
}

/// Starts the worker binary in `role`, its standard error going to `stderr`, and exchanges
/// the hello: a child of another protocol or build, or one that does not answer, is refused
/// with its binary's path.
pub fn spawn(role: &str, stderr: Stdio) -> Result<Child> {
    let binary = binary()?;
    let mut command = Command::new(&binary);
    // A process launcher's variables (Open MPI's, PMIx's, MPICH's PMI) would make a child of
    // an MPI rank (or of anything started by `mpirun`/`srun`) try to join the job.
    for (key, _) in std::env::vars_os() {
        if LAUNCHER_PREFIXES
            .iter()
            .any(|p| key.as_encoded_bytes().starts_with(p.as_bytes()))
        {
            command.env_remove(key);
        }
    }
    let mut process = command
        .env(ENV, role)
        .env(PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|source| ChildError::Spawn {
            binary: binary.clone(),
            source,
        })?;
    let mut stdin = BufWriter::new(process.stdin.take().expect("piped"));
    let stdout = BufReader::new(process.stdout.take().expect("piped"));
    let hello = Hello::Parent {
        protocol: PROTOCOL,
        build: BUILD.into(),
    };
    // A child that is gone closes its stdin: what it answered (or not) tells why, below.
    let _ = ipc::write_frame(&mut stdin, &hello).and_then(|()| stdin.flush());
    // Read in a thread: a binary that is no wasmeval may never answer.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = stdout;
        let answer = ipc::read_frame::<Hello>(&mut stdout, &mut Vec::new());
        let _ = tx.send((answer, stdout));
    });
    let refuse = |process: &mut std::process::Child, why: Refused| {
        let _ = process.kill();
        let _ = process.wait();
        ChildError::Refused {
            binary: binary.clone(),
            why,
        }
    };
    match rx.recv_timeout(HELLO_TIMEOUT) {
        Ok((Ok(Some(Hello::Child { protocol, build })), stdout)) => {
            if protocol == PROTOCOL && build == BUILD {
                Ok(Child {
                    process,
                    stdin,
                    stdout,
                })
            } else {
                Err(refuse(&mut process, Refused::Version { build, protocol }))
            }
        }
        Ok((answer, _)) => {
            let what = match answer {
                Ok(None) => "ended without answering".to_string(),
                Ok(Some(other)) => format!("answered {other:?}"),
                Err(e) => format!("answered something else ({e})"),
            };
            Err(refuse(&mut process, Refused::NotAWorker(what)))
        }
        Err(_) => Err(refuse(&mut process, Refused::Silent(HELLO_TIMEOUT))),
    }
}

/// The child's side of the hello: reads the parent's and answers with this build's. False
/// when the parent's is missing or of another protocol or build (the child then exits).
pub(crate) fn answer_hello(input: &mut impl std::io::Read, out: &mut impl Write) -> bool {
    let parent = ipc::read_frame::<Hello>(input, &mut Vec::new());
    let answer = Hello::Child {
        protocol: PROTOCOL,
        build: BUILD.into(),
    };
    if ipc::write_frame(out, &answer)
        .and_then(|()| out.flush())
        .is_err()
    {
        return false;
    }
    matches!(parent, Ok(Some(Hello::Parent { protocol, build })) if protocol == PROTOCOL && build == BUILD)
}

/// Makes this process die with its parent: `PR_SET_PDEATHSIG`, and a check that the parent
/// named in `WASMEVAL_PARENT_PID` is still the parent (it may have died before the call).
pub(crate) fn watch_parent() {
    if rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).is_err() {
        std::process::exit(0);
    }
    let expected = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok());
    let parent = rustix::process::getppid().map(Pid::as_raw_nonzero);
    if expected.is_some_and(|p| Some(p) != parent.map(|n| n.get())) {
        std::process::exit(0);
    }
}

/// Limits this process's address space to `bytes` (`RLIMIT_AS`).
pub(crate) fn limit_address_space(bytes: usize) -> std::io::Result<()> {
    let bytes = bytes as u64;
    rustix::process::setrlimit(
        Resource::As,
        Rlimit {
            current: Some(bytes),
            maximum: Some(bytes),
        },
    )
    .map_err(std::io::Error::from)
}

/// Limits this process's CPU time to `limit`, rounded up to whole seconds (`RLIMIT_CPU` counts
/// seconds): past it the kernel sends SIGXCPU, which ends the process, and SIGKILL a second
/// later.
pub(crate) fn limit_cpu(limit: Duration) -> std::io::Result<()> {
    let secs = cpu_seconds(limit);
    rustix::process::setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(secs),
            maximum: Some(secs + 1),
        },
    )
    .map_err(std::io::Error::from)
}

/// The CPU limit `RLIMIT_CPU` can hold for `limit`: whole seconds, rounded up, at least 1.
pub(crate) fn cpu_seconds(limit: Duration) -> u64 {
    (limit.as_secs() + u64::from(limit.subsec_nanos() > 0)).max(1)
}

/// Sends SIGKILL to process `pid` (an error when it is gone already).
pub(crate) fn kill(pid: u32) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("no process {pid}")))?;
    rustix::process::kill_process(pid, Signal::KILL).map_err(std::io::Error::from)
}

/// Lets SIGINT through without effect: Ctrl-C on a terminal reaches the whole process group,
/// and the parent decides what happens to jobs.
pub(crate) fn ignore_interrupts() {
    // SAFETY: the action does nothing, which is async-signal-safe.
    let _ = unsafe { signal_hook::low_level::register(signal_hook::consts::SIGINT, || {}) };
}
