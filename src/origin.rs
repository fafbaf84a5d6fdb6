//! The zero of a search's `timestamp_*` metadata: the wall-clock time the search was created,
//! kept with the search (the search value [`ORIGIN`]), so that every run joining it (the
//! batches of a search run through `wasmeval run --search-id`, other evaluators on the same
//! storage) measures its times from the same origin, as DeepHyper's plots expect of one search.
//!
//! Times are taken with the monotonic clock of this process and placed on the search's axis
//! through the wall clock read once, when the evaluator joins the search.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::error::Result;
use crate::storage::Storage;

/// The search value holding the search's origin, in seconds since the Unix epoch.
pub const ORIGIN: &str = "origin";

/// A search's time axis, as seen from this process.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    /// An instant of this process...
    anchor: Instant,
    /// ...and where it falls on the search's axis, in seconds.
    at_anchor: f64,
}

impl Origin {
    /// The origin of `search_id`: the one stored with it, or now, stored as its origin when it
    /// has none yet (a new search, or one made before origins were kept).
    pub fn of_search(storage: &dyn Storage, search_id: &str) -> Result<Origin> {
        let anchor = Instant::now();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let origin = match storage
            .load_search_value(search_id, ORIGIN)?
            .and_then(|v| v.as_f64())
        {
            Some(origin) => origin,
            None => {
                storage.store_search_value(search_id, ORIGIN, now.into())?;
                now
            }
        };
        Ok(Origin {
            anchor,
            // A wall clock set back since the search began must not make times negative.
            at_anchor: (now - origin).max(0.0),
        })
    }

    /// The axis of `CLOCK_MONOTONIC` itself (Python's `time.monotonic()`), for times that
    /// belong to no search: a run function called on its own, as DeepHyper's `@profile`
    /// stamps them. Like every origin, it places no time before it was made.
    pub fn monotonic() -> Origin {
        let anchor = Instant::now();
        Origin {
            anchor,
            at_anchor: crate::monotonic::seconds(anchor),
        }
    }

    /// Where this axis's zero falls on `CLOCK_MONOTONIC`, in seconds (may be negative): a
    /// time `s` on the axis is `monotonic_zero() + s` there.
    pub fn monotonic_zero(&self) -> f64 {
        crate::monotonic::seconds(self.anchor) - self.at_anchor
    }

    /// Where `t` falls on the search's axis, in seconds (never before this evaluator joined).
    pub fn secs(&self, t: Instant) -> f64 {
        self.at_anchor + t.saturating_duration_since(self.anchor).as_secs_f64()
    }

    /// Now, on the search's axis.
    pub fn now(&self) -> f64 {
        self.secs(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[test]
    fn a_new_search_starts_at_zero_and_a_joined_one_keeps_its_origin() {
        let storage = MemoryStorage::new();
        let search = storage.create_new_search().unwrap();
        let first = Origin::of_search(&storage, &search).unwrap();
        assert!(first.now() < 1.0);
        let stored = storage.load_search_value(&search, ORIGIN).unwrap();
        let began = stored.and_then(|v| v.as_f64()).unwrap();
        // A search that began 100 s ago: an evaluator joining it now is 100 s along its axis.
        storage
            .store_search_value(&search, ORIGIN, (began - 100.0).into())
            .unwrap();
        let later = Origin::of_search(&storage, &search).unwrap();
        assert!((100.0..101.0).contains(&later.now()), "{}", later.now());
    }
}
