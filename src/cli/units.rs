//! Parsers for durations (`500ms`, `2s`, `1m`, `1h`) and sizes (`64MiB`, `1GiB`, `4096`).

use std::time::Duration;

/// Parses a duration: a number followed by `ms`, `s`, `m` or `h` (seconds when bare).
pub fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("invalid duration `{text}`: expected a number and a unit, like 500ms, 2s or 1m")
    })?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration `{text}`: unknown unit `{unit}` (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration `{text}`"))
}

/// Parses a size in bytes: a number with an optional unit (`KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB`).
pub fn size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: usize = num
        .parse()
        .map_err(|_| format!("invalid size `{text}`: expected a number and a unit, like 64MiB"))?;
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "invalid size `{text}`: unknown unit `{other}` (use KiB, MiB or GiB)"
            ));
        }
    };
    value
        .checked_mul(factor)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("invalid size `{text}`"))
}

/// Parses a job's memory cap: a size of at most 4 GiB (a wasm32 memory holds no more).
pub fn memory(text: &str) -> Result<usize, String> {
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
        assert!(duration("3 days").is_err());
        assert_eq!(size("64MiB").unwrap(), 64 << 20);
        assert_eq!(size("4096").unwrap(), 4096);
        assert!(size("lots").is_err());
        assert!(size("0").is_err());
        assert_eq!(memory("4GiB").unwrap(), 4 << 30);
        assert!(memory("5GiB").unwrap_err().contains("more than 4GiB"));
    }
}
