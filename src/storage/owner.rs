//! Owner ids: which storage instance (of which evaluator process, on which host) submitted
//! and runs a job, `HOST/PID-SECONDS-RANDOM`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A new owner id for this process.
pub(crate) fn new_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{}/{}-{secs}-{:x}",
        host_name(),
        std::process::id(),
        rand_u64()
    )
}

/// The host and process id of an owner id.
pub(crate) fn owner_process(owner: &str) -> Option<(&str, &str)> {
    let (host, rest) = owner.split_once('/')?;
    Some((host, rest.split('-').next()?))
}

/// This machine's name, which owner ids start with.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}
