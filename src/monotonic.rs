//! Instants that cross a process boundary: a job's start and end are measured in the worker
//! process and sent as `CLOCK_MONOTONIC` nanoseconds, the clock every process of one machine
//! shares (and the one `Instant` reads on Linux), so the parent places them exactly, however
//! late the frame arrives. A conversion goes through a [`Reading`] of both clocks taken
//! together, the same one for every conversion of a process ([`Reading::of_process`]): its
//! error (a few microseconds) then shifts all of one process's instants alike, so the jobs of
//! one worker never overlap however closely they follow each other, which two readings' errors
//! could make them do.
//!
//! A worker on another node does not share this clock. Its times will be sent as durations
//! since it received the job, on its own monotonic clock, and anchored by the parent at the
//! time it sent the job plus half the round trip it measures (Cristian's method): jobs of one
//! worker then overlap by at most the network's jitter.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};

/// `t` as `CLOCK_MONOTONIC` seconds: Python's `time.monotonic()`, with which DeepHyper's
/// `@profile` stamps a run function's `timestamp_start` and `timestamp_end`.
pub fn seconds(t: Instant) -> f64 {
    Reading::of_process().to_nanos(t) as f64 / 1e9
}

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

    /// The reading every conversion of this process goes through, taken at its first use.
    pub fn of_process() -> Reading {
        static READING: OnceLock<Reading> = OnceLock::new();
        *READING.get_or_init(Reading::now)
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

    #[test]
    fn every_conversion_of_a_process_moves_by_one_offset() {
        // Two fresh readings disagree by their errors: a job's end and the next job's start,
        // converted apart, could swap.
        let t = Instant::now();
        let first = Reading::of_process().to_nanos(t);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(Reading::of_process().to_nanos(t), first);
        assert_eq!(Reading::of_process().to_instant(first), t);
    }
}
