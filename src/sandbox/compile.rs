//! Bounded compilation: an untrusted module is componentized (when it is a core module that
//! asks for it) and compiled in a child process under a CPU-time limit (`RLIMIT_CPU`, with a
//! wall-clock backstop of [`WALL_FACTOR`] times it) and an address-space limit (`RLIMIT_AS`),
//! so a module that is too slow or too big to componentize or compile is refused with a clear
//! error, and the evaluator lives on (and still hears its signals).

use std::io::{BufWriter, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use serde::{Deserialize, Serialize};

pub use crate::error::{CompileError, Refusal};
use crate::ipc;
use crate::sandbox::cache::CodeInfo;
use crate::sandbox::{Policy, admission, componentize, engine};

/// The wall-clock backstop of compiling, in multiples of its CPU-time limit: compiling is
/// single-threaded, so only a loaded machine (or a child stopped by a debugger) makes it
/// slower than its CPU time.
pub const WALL_FACTOR: u32 = 5;

/// What the compiling child is asked.
#[derive(Serialize, Deserialize)]
pub(crate) struct Request {
    pub policy: Policy,
    pub component: bool,
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
    let backstop = policy.compile_timeout * WALL_FACTOR;
    let answer = rx.recv_timeout(backstop);
    if answer.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(CompileError::Timeout(backstop));
    }
    let status = child.wait().map_err(CompileError::Wait)?;
    let limit_mib = policy.compile_memory >> 20;
    if status.signal() == Some(rustix::process::Signal::XCPU.as_raw()) {
        let seconds = crate::child::cpu_seconds(policy.compile_timeout);
        return Err(CompileError::CpuTime { seconds });
    }
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

/// The compiling child: reads a [`Request`] and the wasm, limits its own address space and CPU
/// time, compiles, and answers with the code or the error.
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
    if crate::child::limit_address_space(request.policy.compile_memory).is_err()
        || crate::child::limit_cpu(request.policy.compile_timeout).is_err()
    {
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
