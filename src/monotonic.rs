//! Instants that cross a process boundary: a job's start and end are measured in the worker
//! process and sent as `CLOCK_MONOTONIC` nanoseconds, the clock every process of one machine
//! shares (and the one `Instant` reads on Linux), so the parent places them exactly, however
//! late the frame arrives. A conversion goes through a [`Reading`] of both clocks taken
//! together; a job's start and end go through the same one.
//!
//! A worker on another node does not share this clock. Its times will be sent as durations
//! since it received the job, on its own monotonic clock, and anchored by the parent at the
//! time it sent the job plus half the round trip it measures (Cristian's method): jobs of one
//! worker then overlap by at most the network's jitter.

use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};

/// Readings of `Instant` and of `CLOCK_MONOTONIC` taken together: every instant converted
/// through one reading moves by the same error, so the order and spacing of a job's start and
/// end are exact.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    instant: Instant,
    nanos: u64,
}

impl Reading {
    /// Reads both clocks, again if this thread was paused between the reads (the error is
    /// then at most a few microseconds, rarely more on a loaded machine).
    pub fn now() -> Reading {
        let mut best = None;
        for _ in 0..5 {
            let before = Instant::now();
            let t = clock_gettime(ClockId::Monotonic);
            let after = Instant::now();
            let gap = after - before;
            let reading = Reading {
                instant: before + gap / 2,
                nanos: t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64,
            };
            if gap < Duration::from_micros(20) {
                return reading;
            }
            best = match best {
                Some((g, r)) if g <= gap => Some((g, r)),
                _ => Some((gap, reading)),
            };
        }
        best.expect("read five times").1
    }

    /// `t` as `CLOCK_MONOTONIC` nanoseconds.
    pub fn to_nanos(self, t: Instant) -> u64 {
        match self.instant.checked_duration_since(t) {
            Some(ago) => self.nanos.saturating_sub(ago.as_nanos() as u64),
            None => self.nanos + t.duration_since(self.instant).as_nanos() as u64,
        }
    }

    /// The instant of this process at `CLOCK_MONOTONIC` nanoseconds `nanos` (of any process
    /// of this machine).
    pub fn to_instant(self, nanos: u64) -> Instant {
        if nanos <= self.nanos {
            let ago = Duration::from_nanos(self.nanos - nanos);
            self.instant.checked_sub(ago).unwrap_or(self.instant)
        } else {
            self.instant + Duration::from_nanos(nanos - self.nanos)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip() {
        let t = Instant::now() - Duration::from_millis(250);
        let back = Reading::now().to_instant(Reading::now().to_nanos(t));
        let error = back.max(t) - back.min(t);
        assert!(error < Duration::from_micros(100), "{error:?}");
        let r = Reading::now();
        assert_eq!(r.to_instant(r.to_nanos(t)), t);
    }
}
