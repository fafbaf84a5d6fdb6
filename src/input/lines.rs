//! JSON Lines: one object per line, blank lines skipped.

use std::io::BufRead;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
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
                Err(e) => Err((line, format!("invalid JSON: {e}"))),
            });
        }
    }))
}

/// A JSON object, read and thrown away.
struct Object;

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Object, D::Error> {
        d.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Object;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Object)
    }
}
