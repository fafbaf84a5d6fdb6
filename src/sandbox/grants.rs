//! Host-side checks on granted directories, on top of wasmtime-wasi's path resolution:
//! - only regular files and directories can be opened: a named pipe, socket or device inside a
//!   grant is refused (`access`), since opening or reading one can block the host thread past
//!   any deadline (epoch interruption only stops running wasm);
//! - every byte written through a grant counts against the job's write budget
//!   ([`Policy::write_quota`](crate::Policy::write_quota)); past it the job ends `F_quota`.
//!
//! Both wrap the component functions that open and write files. Core (preview1) commands are
//! run through wasmtime's preview1 command adapter when they are granted directories, so the
//! same checks hold for them (see `componentize`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use wasmtime::StoreContextMut;
use wasmtime::component::Resource;
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    self as fs, Descriptor, DescriptorFlags, DescriptorType, ErrorCode, HostDescriptor, OpenFlags,
    PathFlags,
};
use wasmtime_wasi::p2::{DynOutputStream, FsResult, OutputStream, Pollable, StreamError};

use crate::sandbox::host::{Host, P2};

/// The filesystem interface whose functions are wrapped (wasmtime-wasi 48's version; guests
/// importing any 0.2.x version are served by it).
const FILESYSTEM: &str = "wasi:filesystem/types@0.2.12";

/// Bytes a job may still write through its grants; shared with the streams it opened.
#[derive(Debug)]
pub struct WriteBudget {
    quota: u64,
    left: AtomicU64,
    exceeded: AtomicBool,
}

impl WriteBudget {
    /// A budget of `quota` bytes.
    pub fn new(quota: u64) -> Arc<WriteBudget> {
        Arc::new(WriteBudget {
            quota,
            left: AtomicU64::new(quota),
            exceeded: AtomicBool::new(false),
        })
    }

    /// Takes `bytes` from the budget, or marks it exceeded and returns the trap that ends the job.
    pub fn charge(&self, bytes: u64) -> Result<(), wasmtime::Error> {
        let taken = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            });
        if taken.is_err() {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(wasmtime::Error::msg(self.message()));
        }
        Ok(())
    }

    /// True once a write went past the budget.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// Why the job ended.
    pub fn message(&self) -> String {
        format!(
            "the job wrote more than its quota of {} bytes through its read-write grants",
            self.quota
        )
    }
}

/// An output stream to a granted file, charging what is written to the job's budget.
struct Budgeted {
    inner: DynOutputStream,
    budget: Arc<WriteBudget>,
}

impl Budgeted {
    fn charge(&self, bytes: usize) -> Result<(), StreamError> {
        self.budget.charge(bytes as u64).map_err(StreamError::Trap)
    }
}

impl OutputStream for Budgeted {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.charge(bytes.len())?;
        self.inner.write(bytes)
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        self.inner.flush()
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        self.inner.check_write()
    }
    fn write_zeroes(&mut self, n: usize) -> Result<(), StreamError> {
        self.charge(n)?;
        self.inner.write_zeroes(n)
    }
}

#[async_trait::async_trait]
impl Pollable for Budgeted {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

/// The error code of `result`'s error, or the trap it stands for.
fn code<T>(host: &mut Host<P2>, result: FsResult<T>) -> wasmtime::Result<Result<T, ErrorCode>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) => Ok(Err(fs::Host::convert_error_code(
            &mut host.filesystem(),
            e,
        )?)),
    }
}

/// A borrow of the same descriptor, to call two functions with it.
fn again(fd: &Resource<Descriptor>) -> Resource<Descriptor> {
    Resource::new_borrow(fd.rep())
}

/// The stream a descriptor opened for writing, replaced by one that charges the budget (or the
/// error code of the opening).
fn budgeted(
    host: &mut Host<P2>,
    opened: FsResult<Resource<DynOutputStream>>,
) -> wasmtime::Result<Result<Resource<DynOutputStream>, ErrorCode>> {
    let stream = match code(host, opened)? {
        Ok(stream) => stream,
        Err(e) => return Ok(Err(e)),
    };
    let table = &mut host.wasi.table;
    let inner = table.delete(stream)?;
    let budget = host.job.write_budget.clone();
    Ok(Ok(table.push(
        Box::new(Budgeted { inner, budget }) as DynOutputStream
    )?))
}

type Store<'a> = StoreContextMut<'a, Host<P2>>;

/// Wraps the functions of the filesystem interface that open and write files in `linker`.
pub fn add_p2(linker: &mut wasmtime::component::Linker<Host<P2>>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(FILESYSTEM)?;
    types.func_wrap(
        "[method]descriptor.open-at",
        |mut store: Store<'_>,
         (fd, path_flags, path, oflags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            let host = store.data_mut();
            let mut view = host.filesystem();
            // What is there now (nothing, for a file being created).
            if let Ok(stat) = view.stat_at(again(&fd), path_flags, path.clone())
                && !matches!(
                    stat.type_,
                    DescriptorType::RegularFile | DescriptorType::Directory
                )
            {
                return Ok((Err(ErrorCode::Access),));
            }
            let opened = view.open_at(fd, path_flags, path, oflags, flags);
            Ok((code(host, opened)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write",
        |mut store: Store<'_>, (fd, buffer, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            let host = store.data_mut();
            host.job.write_budget.charge(buffer.len() as u64)?;
            let written = host.filesystem().write(fd, buffer, offset);
            Ok((code(host, written)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: Store<'_>, (fd, offset): (Resource<Descriptor>, u64)| {
            let host = store.data_mut();
            let opened = host.filesystem().write_via_stream(fd, offset);
            Ok((budgeted(host, opened)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: Store<'_>, (fd,): (Resource<Descriptor>,)| {
            let host = store.data_mut();
            let opened = host.filesystem().append_via_stream(fd);
            Ok((budgeted(host, opened)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
