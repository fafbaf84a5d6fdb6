//! Parsers for durations (`500ms`, `2s`, `1m`, `1h30m`, or a bare number of seconds) and
//! sizes (`64MiB`, `1GiB`, `4096`).

use std::time::Duration;

/// Parses a duration: humantime's forms (`500ms`, `2s`, `1m`, `1h30m`, `2 days`), or a bare
/// number of seconds (`1.5`).
pub fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("invalid duration `{text}`: not a number of seconds"));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!(
            "invalid duration `{text}`: {e} (write it like 500ms, 2s, 1m or 1h30m; a bare \
             number is seconds)"
        )
    })
}

pub use crate::sandbox::policy::parse_size as size;

/// Parses a job's memory cap: a size with its unit (a bare `512` would be 512 bytes, which no
/// job fits in), of at most 4 GiB (a wasm32 memory holds no more).
pub fn memory(text: &str) -> Result<usize, String> {
    if text.trim().chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "`{text}` has no unit: write the memory cap like 512MiB or 2GiB"
        ));
    }
    let bytes = size(text)?;
    if bytes > crate::evaluator::MAX_MEMORY {
        return Err(format!(
            "`{text}` is more than 4GiB, the most a wasm32 memory (and the instance pool) can hold"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(duration("soon").is_err());
        assert_eq!(duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(duration("3 days").unwrap(), Duration::from_secs(3 * 86_400));
        assert!(duration("-1").is_err());
        assert!(
            duration("2 parsecs")
                .unwrap_err()
                .contains("a bare number is seconds")
        );
        assert_eq!(size("64MiB").unwrap(), 64 << 20);
        assert_eq!(size("4096").unwrap(), 4096);
        assert!(size("lots").is_err());
        assert!(size("0").is_err());
        assert_eq!(memory("4GiB").unwrap(), 4 << 30);
        assert!(memory("512").unwrap_err().contains("no unit"));
        assert!(memory("5GiB").unwrap_err().contains("more than 4GiB"));
    }
}
