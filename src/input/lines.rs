//! JSON Lines: one object per line, blank lines skipped.

use std::io::BufRead;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{Items, not_an_object};

/// The configurations of `reader`; with `check_only`, each valid line yields an empty map
/// (checked without building it: a validation pass at a few times the speed).
pub(super) fn read(mut reader: impl BufRead + Send + 'static, check_only: bool) -> Items {
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
            if check_only && serde_json::from_slice::<Object>(&buf).is_ok() {
                return Some(Ok((line, Map::new())));
            }
            return Some(match serde_json::from_slice::<Value>(&buf) {
                Ok(Value::Object(m)) => Ok((line, m)),
                Ok(other) => Err((line, not_an_object(&other))),
                Err(e) => Err((line, invalid_json(&e))),
            });
        }
    }))
}

/// serde_json's message for one line, its position given as a column of that line (its own
/// "line 2 column 0" counts past the line's end, and the file's line number is given apart).
fn invalid_json(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = message.strip_suffix(&position).unwrap_or(&message);
    match e.line() {
        1 => format!("invalid JSON at column {}: {message}", e.column()),
        _ => format!("invalid JSON at the end of the line: {message}"),
    }
}

/// A JSON object, checked value by value and thrown away. It accepts exactly what reading a
/// [`Value`] accepts (the same `deserialize_any` calls, so the same rule for numbers out of
/// range, invalid UTF-8 and nesting), without building maps or strings.
struct Object;

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Object, D::Error> {
        d.deserialize_map(Checked).map(|_| Object)
    }
}

/// Any JSON value, checked as [`Value`] would read it.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}
