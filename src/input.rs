//! Reading configurations: JSON Lines (one object per line) or a JSON array of objects.

use std::path::Path;

use serde_json::{Map, Value};

/// A configuration file that cannot be read, with the line at fault.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct InputError {
    /// The file name (`-` for standard input).
    pub file: String,
    /// The 1-based line number (0 when the whole file is at fault).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Reads configurations from `text` (JSON Lines, or a JSON array), naming `file` in errors.
pub fn parse_configs(file: &str, text: &str) -> Result<Vec<Map<String, Value>>, InputError> {
    let err = |line, message: String| InputError {
        file: file.to_string(),
        line,
        message,
    };
    if text.trim_start().starts_with('[') {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| err(e.line(), format!("invalid JSON array: {e}")))?;
        let Value::Array(items) = value else {
            unreachable!("starts with [")
        };
        return items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(m) => Ok(m),
                other => Err(err(
                    0,
                    format!("item {i} of the array is {other}, expected a JSON object"),
                )),
            })
            .collect();
    }
    let mut configs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => configs.push(m),
            Ok(other) => return Err(err(i + 1, format!("expected a JSON object, found {other}"))),
            Err(e) => return Err(err(i + 1, format!("invalid JSON: {e}"))),
        }
    }
    Ok(configs)
}

/// Reads configurations from a file, or from standard input for `-`.
pub fn read_configs(path: &Path) -> Result<Vec<Map<String, Value>>, InputError> {
    let name = path.display().to_string();
    let text = if name == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| InputError {
        file: name.clone(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse_configs(&name, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrays_and_errors() {
        assert_eq!(
            parse_configs("f", "{\"a\":1}\n\n{\"a\":2}\n")
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            parse_configs("f", "[{\"a\":1},{\"b\":2}]").unwrap().len(),
            2
        );
        let e = parse_configs("cfg.jsonl", "{\"a\":1}\n[1]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cfg.jsonl:2: expected a JSON object, found [1]"
        );
        let e = parse_configs("cfg.jsonl", "{\"a\":1}\n{oops\n").unwrap_err();
        assert!(
            e.to_string().starts_with("cfg.jsonl:2: invalid JSON"),
            "{e}"
        );
    }
}
