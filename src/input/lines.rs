//! JSON Lines: one object per line, blank lines skipped.

use std::io::BufRead;

use serde_json::Value;

use super::{Items, not_an_object};

/// The configurations of `reader`.
pub(super) fn read(mut reader: impl BufRead + Send + 'static) -> Items {
    let mut line = 0;
    let mut buf = Vec::new();
    Box::new(std::iter::from_fn(move || {
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(_) => line += 1,
                Err(e) => return Some(Err((line + 1, format!("cannot read: {e}")))),
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(match serde_json::from_slice::<Value>(&buf) {
                Ok(Value::Object(m)) => Ok((line, m)),
                Ok(other) => Err((line, not_an_object(&other))),
                Err(e) => Err((line, format!("invalid JSON: {e}"))),
            });
        }
    }))
}
