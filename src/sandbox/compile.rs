//! Bounded compilation: an untrusted module is componentized (when it is a core module that
//! asks for it) and compiled in a child process under a time limit and an address-space
//! limit (`RLIMIT_AS`), so a module that is too slow or too big to componentize or compile is
//! refused with a clear error, and the evaluator lives on (and still hears its signals).

use std::io::{BufWriter, Write};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::child::ChildError;
use crate::ipc;
use crate::sandbox::cache::CodeInfo;
use crate::sandbox::{Policy, admission, componentize, engine};

/// What the compiling child is asked.
#[derive(Serialize, Deserialize)]
pub(crate) struct Request {
    pub policy: Policy,
    pub component: bool,
}

/// Why a module could not be compiled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The compiling child could not be started.
    #[error(transparent)]
    Start(#[from] ChildError),
    /// Compiling took longer than the policy's `compile_timeout`.
    #[error("compiling took longer than the limit of {0:?}; the module is refused")]
    Timeout(Duration),
    /// An allocation was refused under the policy's `compile_memory` limit.
    #[error(
        "the compiler process ran out of memory within the address-space limit of {limit_mib} MiB; \
         the module is too big to compile: {message}"
    )]
    OutOfMemory {
        /// The limit, in MiB.
        limit_mib: usize,
        /// What the compiler said.
        message: String,
    },
    /// The compiling child died without an answer (under the limit, an allocation failure
    /// aborts it).
    #[error(
        "the compiler process failed ({status}) within the address-space limit of {limit_mib} MiB; \
         the module is too big to compile{}",
        colon(stderr)
    )]
    Died {
        /// How it ended.
        status: std::process::ExitStatus,
        /// The limit, in MiB.
        limit_mib: usize,
        /// What it wrote on its standard error.
        stderr: String,
    },
    /// The compiling child refused the module.
    #[error(transparent)]
    Refused(Refusal),
    /// Waiting for the compiling child failed.
    #[error("cannot wait for the compiler process: {0}")]
    Wait(#[source] std::io::Error),
}

fn colon(detail: &str) -> String {
    match detail.trim() {
        "" => String::new(),
        d => format!(": {d}"),
    }
}

/// What the compiling child answers when it refuses a module. It crosses a process boundary,
/// so the reason is the child's message; the kind is kept.
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The module could not be componentized (see [`componentize::ComponentizeError`]).
    #[error("{0}")]
    Componentize(String),
    /// wasmtime refused to compile it.
    #[error("invalid WebAssembly: {0}")]
    Invalid(String),
    /// An allocation failed under the address-space limit.
    #[error("{0}")]
    OutOfMemory(String),
    /// The compiling engine could not be created.
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(String),
}

impl Refusal {
    /// A wasmtime error as a refusal of kind `kind`, or [`Refusal::OutOfMemory`] when an
    /// allocation failed under the limit (wasmtime's `OutOfMemory`, or an `ENOMEM` anywhere
    /// in its chain).
    fn of(e: wasmtime::Error, kind: fn(String) -> Refusal) -> Refusal {
        let oom = e.is::<wasmtime::OutOfMemory>()
            || e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| {
                    io.kind() == std::io::ErrorKind::OutOfMemory
                        || io.raw_os_error() == Some(rustix::io::Errno::NOMEM.raw_os_error())
                })
            });
        let message = format!("{e:#}");
        if oom {
            Refusal::OutOfMemory(message)
        } else {
            kind(message)
        }
    }
}

/// Componentizes (see [`componentize`]) and compiles `wasm` in a child process under
/// `policy`'s compile limits; returns the code and what loading it needs.
pub fn compile_bounded(
    policy: &Policy,
    wasm: &[u8],
    component: bool,
) -> Result<(Vec<u8>, CodeInfo), CompileError> {
    let crate::child::Child {
        process: mut child,
        mut stdin,
        stdout,
    } = crate::child::spawn(crate::child::COMPILE, Stdio::piped())?;
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = stdout;
        let mut buf = Vec::new();
        let answer: Option<Result<CodeInfo, Refusal>> =
            ipc::read_frame(&mut out, &mut buf).ok().flatten();
        let code = match answer {
            Some(Ok(info)) => ipc::read_raw(&mut out, &mut buf)
                .ok()
                .filter(|got| *got)
                .map(|_| Ok((buf, info))),
            Some(Err(e)) => Some(Err(e)),
            None => None,
        };
        let _ = tx.send(code);
    });
    let request = Request {
        policy: policy.clone(),
        component,
    };
    // A child that dies early closes its stdin: its exit status tells why, below.
    let _ = ipc::write_frame(&mut stdin, &request)
        .and_then(|()| ipc::write_raw(&mut stdin, wasm))
        .and_then(|()| stdin.flush());
    drop(stdin);
    let answer = rx.recv_timeout(policy.compile_timeout);
    if answer.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(CompileError::Timeout(policy.compile_timeout));
    }
    let status = child.wait().map_err(CompileError::Wait)?;
    let limit_mib = policy.compile_memory >> 20;
    match answer.ok().flatten() {
        Some(Ok(code)) => Ok(code),
        Some(Err(Refusal::OutOfMemory(message))) => {
            Err(CompileError::OutOfMemory { limit_mib, message })
        }
        Some(Err(refusal)) => Err(CompileError::Refused(refusal)),
        None => Err(CompileError::Died {
            status,
            limit_mib,
            stderr: std::io::read_to_string(stderr).unwrap_or_default(),
        }),
    }
}

/// The compiling child: reads a [`Request`] and the wasm, limits its own address space,
/// compiles, and answers with the code or the error.
pub(crate) fn child_main() -> i32 {
    let mut input = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut buf = Vec::new();
    let Ok(Some(request)) = ipc::read_frame::<Request>(&mut input, &mut buf) else {
        return 2;
    };
    if !matches!(ipc::read_raw(&mut input, &mut buf), Ok(true)) {
        return 2;
    }
    if crate::child::limit_address_space(request.policy.compile_memory).is_err() {
        return 2;
    }
    let sent = match componentize_and_compile(&request, &buf) {
        Ok((code, info)) => ipc::write_frame(&mut out, &Ok::<CodeInfo, Refusal>(info))
            .and_then(|()| ipc::write_raw(&mut out, &code)),
        Err(e) => ipc::write_frame(&mut out, &Err::<CodeInfo, Refusal>(e)),
    };
    if sent.and_then(|()| out.flush()).is_err() {
        return 1;
    }
    0
}

/// Why componentizing `wasm` failed: the module itself when wasmtime finds it invalid (rather
/// than the component made of it), else the componentizer's reason.
fn blame(policy: &Policy, wasm: &[u8], e: componentize::ComponentizeError) -> Refusal {
    let invalid =
        engine::compile_engine(policy).and_then(|engine| wasmtime::Module::validate(&engine, wasm));
    match invalid {
        Err(invalid) => Refusal::of(invalid, Refusal::Invalid),
        Ok(()) => Refusal::Componentize(e.to_string()),
    }
}

/// What the compiling child does with `wasm`: componentize a core module that asks for it,
/// count what one instance takes from the pool, compile.
fn componentize_and_compile(
    request: &Request,
    wasm: &[u8],
) -> Result<(Vec<u8>, CodeInfo), Refusal> {
    let made = match request.component {
        true => None,
        false => componentize::componentize(wasm, !request.policy.dirs.is_empty())
            .map_err(|e| blame(&request.policy, wasm, e))?,
    };
    let (wasm, component) = match &made {
        Some(c) => (&c.component[..], true),
        None => (wasm, request.component),
    };
    let info = CodeInfo {
        component,
        core_instances: admission::core_instances(wasm, component),
        componentized: made.as_ref().map(|c| c.how.clone()),
    };
    let engine =
        engine::compile_engine(&request.policy).map_err(|e| Refusal::of(e, Refusal::Engine))?;
    let code = if component {
        engine.precompile_component(wasm)
    } else {
        engine.precompile_module(wasm)
    }
    .map_err(|e| Refusal::of(e, Refusal::Invalid))?;
    Ok((code, info))
}
