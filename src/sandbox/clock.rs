//! Guest sleeps clamped to the job's deadline.
//!
//! Epoch interruption stops running wasm, not a guest blocked in a host call. So every way a
//! guest can wait on a clock (`poll_oneoff` in WASI preview1; `subscribe-duration` and
//! `subscribe-instant` in preview2) is replaced here by a sleep that ends at the earlier of
//! the requested time and the job's deadline, and also as soon as the job is cancelled.
//! Once the guest is back in wasm, the epoch check stops it.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::{Resource, ResourceTable, WasmList};
use wasmtime::{Caller, StoreContextMut};
use wasmtime_wasi::clocks::HostMonotonicClock;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use crate::sandbox::control::JobControl;
use crate::sandbox::host::{Host, P2};

/// How often a sleeping guest re-checks its stop signals.
const CHECK: Duration = Duration::from_millis(5);

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// The guests' monotonic clock: nanoseconds since a process-wide origin, so that an absolute
/// `subscribe-instant` maps back to an `Instant`.
pub struct Monotonic;

impl HostMonotonicClock for Monotonic {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        base().elapsed().as_nanos() as u64
    }
}

fn from_monotonic(ns: u64) -> Instant {
    base()
        .checked_add(Duration::from_nanos(ns))
        .unwrap_or_else(far_future)
}

fn after(ns: u64) -> Instant {
    Instant::now()
        .checked_add(Duration::from_nanos(ns))
        .unwrap_or_else(far_future)
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 86_400)
}

/// A job's stop signals, for sleeping.
#[derive(Clone)]
pub struct Clamp {
    pub(crate) control: Arc<JobControl>,
    pub(crate) deadline: Option<Instant>,
}

impl Clamp {
    fn end(&self, until: Instant) -> Instant {
        self.control
            .end(self.deadline)
            .map_or(until, |d| d.min(until))
    }

    fn must_stop(&self) -> bool {
        self.control
            .stop_reason(Instant::now(), self.deadline)
            .is_some()
    }

    /// Sleeps the current thread until `until`, the deadline or a stop signal.
    pub fn sleep_until(&self, until: Instant) {
        let end = self.end(until);
        loop {
            let now = Instant::now();
            if now >= end || self.must_stop() {
                return;
            }
            std::thread::sleep((end - now).min(CHECK));
        }
    }

    async fn sleep_until_async(&self, until: Instant) {
        let end = self.end(until);
        loop {
            let now = Instant::now();
            if now >= end || self.must_stop() {
                return;
            }
            tokio::time::sleep((end - now).min(CHECK)).await;
        }
    }
}

struct Sleep {
    until: Instant,
    clamp: Clamp,
}

#[async_trait::async_trait]
impl Pollable for Sleep {
    async fn ready(&mut self) {
        self.clamp.sleep_until_async(self.until).await;
    }
}

fn push_sleep(
    table: &mut ResourceTable,
    until: Instant,
    clamp: Clamp,
) -> wasmtime::Result<Resource<DynPollable>> {
    let sleep = table.push(Sleep { until, clamp })?;
    subscribe(table, sleep)
}

/// Replaces the preview2 clock subscriptions in `linker` by clamped ones.
pub fn add_p2(linker: &mut wasmtime::component::Linker<Host<P2>>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clocks = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    clocks.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, Host<P2>>, (ns,): (u64,)| {
            let clamp = store.data().job.clamp();
            Ok((push_sleep(
                &mut store.data_mut().wasi.table,
                after(ns),
                clamp,
            )?,))
        },
    )?;
    clocks.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, Host<P2>>, (when,): (u64,)| {
            let clamp = store.data().job.clamp();
            Ok((push_sleep(
                &mut store.data_mut().wasi.table,
                from_monotonic(when),
                clamp,
            )?,))
        },
    )?;
    // `poll` takes the list lazily, so that its length is checked before the host builds a
    // pollable per entry (a guest list of a few bytes an entry would cost the host far more).
    let mut poll = linker.instance("wasi:io/poll@0.2.12")?;
    poll.func_wrap(
        "poll",
        |mut store: StoreContextMut<'_, Host<P2>>, (list,): (WasmList<Resource<DynPollable>>,)| {
            if list.len() > MAX_SUBSCRIPTIONS {
                return Err(wasmtime::Error::msg(format!(
                    "poll of {} pollables; at most {MAX_SUBSCRIPTIONS} are allowed",
                    list.len()
                )));
            }
            let pollables = list
                .iter(&mut store)?
                .collect::<wasmtime::Result<Vec<_>>>()?;
            let table = &mut store.data_mut().wasi.table;
            Ok((wasmtime_wasi::p2::bindings::sync::io::poll::Host::poll(
                table, pollables,
            )?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

// WASI preview1 constants.
const ERRNO_SUCCESS: u16 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
const EVENTTYPE_CLOCK: u8 = 0;
const CLOCK_REALTIME: u32 = 0;
const SUBCLOCKFLAGS_ABSTIME: u16 = 1;
const SUBSCRIPTION_SIZE: usize = 48;
/// The most subscriptions one preview1 `poll_oneoff` takes (more is `EINVAL`), and the most
/// pollables one preview2 `poll` takes (more ends the job as a trap).
pub const MAX_SUBSCRIPTIONS: usize = 4096;
const EVENT_SIZE: usize = 32;

/// Replaces preview1 `poll_oneoff` in `linker` by a clamped one. Clock subscriptions sleep
/// (clamped); file descriptor subscriptions are reported ready at once, which is true of
/// everything a job can hold (in-memory stdio, regular files).
pub fn add_p1(linker: &mut wasmtime::Linker<Host<WasiP1Ctx>>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        |mut caller: Caller<'_, Host<WasiP1Ctx>>,
         subs: i32,
         events: i32,
         n: i32,
         out: i32|
         -> i32 {
            poll_oneoff(
                &mut caller,
                subs as u32 as usize,
                events as u32 as usize,
                n as u32 as usize,
                out as u32 as usize,
            )
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn poll_oneoff(
    caller: &mut Caller<'_, Host<WasiP1Ctx>>,
    subs: usize,
    events: usize,
    n: usize,
    out: usize,
) -> i32 {
    // The host copies and parses the subscriptions: their number is bounded, so that a guest
    // cannot make the host allocate many times its own memory.
    if n == 0 || n > MAX_SUBSCRIPTIONS {
        return ERRNO_INVAL;
    }
    let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
        return ERRNO_FAULT;
    };
    let Some(bytes) = memory
        .data(&*caller)
        .get(subs..subs + n * SUBSCRIPTION_SIZE)
        .map(<[u8]>::to_vec)
    else {
        return ERRNO_FAULT;
    };
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    // (userdata, tag, Some(when) for clocks)
    let mut parsed = Vec::with_capacity(n);
    for s in bytes.chunks_exact(SUBSCRIPTION_SIZE) {
        let (userdata, tag) = (u64_at(s, 0), s[8]);
        let when = (tag == EVENTTYPE_CLOCK).then(|| {
            let id = u32::from_le_bytes(s[16..20].try_into().unwrap());
            let timeout = u64_at(s, 24);
            let flags = u16::from_le_bytes(s[40..42].try_into().unwrap());
            match (flags & SUBCLOCKFLAGS_ABSTIME != 0, id) {
                (false, _) => after(timeout),
                (true, CLOCK_REALTIME) => {
                    let now = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default();
                    after((timeout as u128).saturating_sub(now.as_nanos()) as u64)
                }
                (true, _) => from_monotonic(timeout),
            }
        });
        parsed.push((userdata, tag, when));
    }
    let any_fd = parsed.iter().any(|(_, _, when)| when.is_none());
    if !any_fd {
        let earliest = parsed
            .iter()
            .filter_map(|p| p.2)
            .min()
            .unwrap_or_else(Instant::now);
        caller.data().job.clamp().sleep_until(earliest);
    }
    let now = Instant::now();
    let mut written = 0usize;
    let mut buf = Vec::with_capacity(n * EVENT_SIZE);
    for (userdata, tag, when) in parsed {
        let ready = match when {
            None => true,
            Some(w) => !any_fd && (w <= now || written == 0),
        };
        if !ready {
            continue;
        }
        let mut ev = [0u8; EVENT_SIZE];
        ev[0..8].copy_from_slice(&userdata.to_le_bytes());
        ev[8..10].copy_from_slice(&ERRNO_SUCCESS.to_le_bytes());
        ev[10] = tag;
        buf.extend_from_slice(&ev);
        written += 1;
    }
    if memory.write(&mut *caller, events, &buf).is_err()
        || memory
            .write(&mut *caller, out, &(written as u32).to_le_bytes())
            .is_err()
    {
        return ERRNO_FAULT;
    }
    0
}
