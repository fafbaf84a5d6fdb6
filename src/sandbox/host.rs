//! The per-job host state: WASI context, limits, captured output and the `job` interface.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::job::FailureKind;
use crate::sandbox::clock::Clamp;
use crate::sandbox::control::JobControl;
use crate::sandbox::grants::WriteBudget;
use crate::sandbox::run::Observer;

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "objective",
        imports: { default: trappable },
    });
}

pub(crate) use bindings::wasmeval;

/// WASI state of a component job.
pub struct P2 {
    /// The WASI context.
    pub ctx: WasiCtx,
    /// The resource table.
    pub table: ResourceTable,
}

/// The data of one job's `Store`: `W` is the WASI state (`P2`, or `WasiP1Ctx` for core commands).
pub struct Host<W> {
    /// WASI state.
    pub wasi: W,
    /// Memory and table limits.
    pub limiter: Limiter,
    /// What the job sends to the host and how it is stopped.
    pub job: JobState,
}

impl WasiView for Host<P2> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi.ctx,
            table: &mut self.wasi.table,
        }
    }
}

/// A bounded byte buffer shared with WASI output streams: writes past the cap are dropped
/// and flagged, never reported to the guest as errors.
#[derive(Clone)]
pub struct CappedBuf {
    inner: Arc<Mutex<Vec<u8>>>,
    cap: usize,
    truncated: Arc<AtomicBool>,
}

impl CappedBuf {
    /// An empty buffer that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> CappedBuf {
        CappedBuf {
            inner: Arc::default(),
            cap,
            truncated: Arc::default(),
        }
    }

    /// Appends what fits and flags the rest as truncated.
    pub fn push(&self, bytes: &[u8]) {
        let mut buf = self.inner.lock().unwrap();
        let room = self.cap.saturating_sub(buf.len());
        if bytes.len() > room {
            self.truncated.store(true, Ordering::Relaxed);
        }
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Takes the contents as text (invalid UTF-8 is replaced).
    pub fn take_string(&self) -> String {
        let bytes = std::mem::take(&mut *self.inner.lock().unwrap());
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// True when something was dropped.
    pub fn truncated(&self) -> bool {
        self.truncated.load(Ordering::Relaxed)
    }
}

mod streams {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
    use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

    use super::CappedBuf;

    impl IsTerminal for CappedBuf {
        fn is_terminal(&self) -> bool {
            false
        }
    }

    impl StdoutStream for CappedBuf {
        fn p2_stream(&self) -> Box<dyn OutputStream> {
            Box::new(self.clone())
        }
        fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
            Box::new(self.clone())
        }
    }

    #[async_trait::async_trait]
    impl Pollable for CappedBuf {
        async fn ready(&mut self) {}
    }

    impl OutputStream for CappedBuf {
        fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
            self.push(&bytes);
            Ok(())
        }
        fn flush(&mut self) -> StreamResult<()> {
            Ok(())
        }
        fn check_write(&mut self) -> StreamResult<usize> {
            Ok(64 << 10)
        }
    }

    impl tokio::io::AsyncWrite for CappedBuf {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.push(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}

/// Memory and table caps of one job; records which cap was hit, so that the failure is
/// classified on the host side (a Rust guest's OOM looks like any other trap).
pub struct Limiter {
    memory: usize,
    table_elements: usize,
    /// Set when a cap refused a growth.
    pub hit: Option<String>,
}

impl Limiter {
    /// Caps of `memory` bytes and `table_elements` elements.
    pub fn new(memory: usize, table_elements: usize) -> Limiter {
        Limiter {
            memory,
            table_elements,
            hit: None,
        }
    }
}

impl Limiter {
    /// Allows growth to `desired` within `cap`, or records the refusal and traps.
    fn grow(
        &mut self,
        what: &str,
        current: usize,
        desired: usize,
        cap: usize,
    ) -> wasmtime::Result<bool> {
        if desired <= cap {
            return Ok(true);
        }
        let msg =
            format!("{what} limit: growing from {current} to {desired} exceeds the cap of {cap}");
        self.hit = Some(msg.clone());
        Err(wasmtime::Error::msg(msg))
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("memory (bytes)", current, desired, self.memory)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("table (elements)", current, desired, self.table_elements)
    }

    fn instances(&self) -> usize {
        64
    }
    fn tables(&self) -> usize {
        64
    }
    fn memories(&self) -> usize {
        16
    }
}

/// What a job exchanges with the host through the `job` interface, and its stop state.
pub struct JobState {
    /// The job id.
    pub id: String,
    /// The run-function kwargs as JSON.
    pub kwargs: Arc<str>,
    /// Stop signals.
    pub control: Arc<JobControl>,
    /// When the job's own time limit ends.
    pub deadline: Option<Instant>,
    /// How long before its deadline `stopped()` turns true.
    pub grace: Duration,
    /// The `record` series.
    pub records: Vec<(f64, f64)>,
    /// Maximum `record` calls.
    pub max_records: usize,
    /// Set when `record` went past its cap.
    pub records_overflow: bool,
    /// The log.
    pub log: CappedBuf,
    /// Set when the host stopped the job (deadline, cancel, close).
    pub stopped_by: Option<FailureKind>,
    /// What the job may still write through its grants.
    pub write_budget: Arc<WriteBudget>,
    /// Who else hears `record` and answers `stopped`.
    pub observer: Option<Arc<dyn Observer>>,
}

impl JobState {
    /// Why the job must stop now, if it must; remembered for classification.
    pub fn check(&mut self) -> Option<FailureKind> {
        let why = self.control.stop_reason(Instant::now(), self.deadline);
        if why.is_some() {
            self.stopped_by = why;
        }
        why
    }

    /// A handle to sleep without passing the job's deadline or missing a stop signal.
    pub fn clamp(&self) -> Clamp {
        Clamp {
            control: self.control.clone(),
            deadline: self.deadline,
        }
    }
}

impl wasmeval::objective::job::Host for Host<P2> {
    fn id(&mut self) -> wasmtime::Result<String> {
        Ok(self.job.id.clone())
    }

    fn kwargs(&mut self) -> wasmtime::Result<String> {
        Ok(self.job.kwargs.to_string())
    }

    fn record(&mut self, budget: f64, objective: f64) -> wasmtime::Result<()> {
        if self.job.records.len() >= self.job.max_records {
            self.job.records_overflow = true;
            return Err(wasmtime::Error::msg(format!(
                "record was called more than {} times",
                self.job.max_records
            )));
        }
        self.job.records.push((budget, objective));
        if let Some(observer) = &self.job.observer {
            observer.record(budget, objective);
        }
        Ok(())
    }

    fn stopped(&mut self) -> wasmtime::Result<bool> {
        let soon = Instant::now() + self.job.grace;
        let host = self.job.control.stop_reason(soon, self.job.deadline);
        Ok(host.is_some() || self.job.observer.as_ref().is_some_and(|o| o.stopped()))
    }

    fn log(&mut self, message: String) -> wasmtime::Result<()> {
        self.job.log.push(message.as_bytes());
        self.job.log.push(b"\n");
        Ok(())
    }
}
