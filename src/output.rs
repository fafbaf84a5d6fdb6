//! Run-function output: the wire format and its normalization, as DeepHyper's `HPOJob` does it.
//!
//! A guest returns JSON text. Accepted shapes, in DeepHyper's order of checks:
//! 1. `{"output": X, "metadata": {...}}` (the `@profile` format): the metadata is kept, X goes on.
//! 2. A number (booleans count as 0/1), or a string (by convention a failure starts with "F").
//! 3. A list of numbers: a multi-objective result.
//! 4. `{"objective": X, "metadata": {...}, ...}`: other keys are kept as extra output.
//!
//! A scalar non-finite objective becomes the failure `"F"`. On the wire, the bare tokens `NaN`,
//! `Infinity` and `-Infinity`, and a `null` objective, are accepted as non-finite values.

use serde_json::{Map, Value};

/// The objective of a finished job.
#[derive(Debug, Clone, PartialEq)]
pub enum Objective {
    /// A finite number (DeepHyper maximizes it).
    Value(f64),
    /// A failure, by convention a string starting with "F", such as `"F_timeout"`.
    Failure(String),
    /// A multi-objective result; entries may be NaN (DeepHyper leaves lists as they are).
    Multi(Vec<f64>),
}

impl Objective {
    /// True for failures (strings starting with "F", as DeepHyper's analysis tools test).
    pub fn is_failure(&self) -> bool {
        matches!(self, Objective::Failure(s) if s.starts_with('F'))
    }

    /// The single objective value, if this is one.
    pub fn value(&self) -> Option<f64> {
        match self {
            Objective::Value(v) => Some(*v),
            _ => None,
        }
    }

    /// The objective as JSON (a list's non-finite entries as `float::to_json` writes
    /// them).
    pub fn to_json(&self) -> Value {
        match self {
            Objective::Value(v) => Value::from(*v),
            Objective::Failure(s) => Value::from(s.as_str()),
            Objective::Multi(vs) => {
                Value::Array(vs.iter().map(|v| crate::float::to_json(*v)).collect())
            }
        }
    }

    /// Reads an objective back from its JSON form (the inverse of [`Objective::to_json`]).
    pub fn from_json(value: &Value) -> Option<Objective> {
        objective_of(value.clone()).ok()
    }
}

/// A normalized run-function result.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The objective.
    pub objective: Objective,
    /// Metadata returned by the run function.
    pub metadata: Map<String, Value>,
    /// Extra keys of an `{"objective": ...}` object, kept as DeepHyper keeps them.
    pub extra: Map<String, Value>,
}

/// Parses a run function's result text and normalizes it. The error says what is wrong.
pub fn parse_result(text: &str) -> Result<Normalized, ResultError> {
    let value = match serde_json::from_str::<Value>(text) {
        Ok(v) => v,
        Err(first) => serde_json::from_str::<Value>(&non_finite_to_null(text)).map_err(|_| {
            ResultError::NotJson {
                excerpt: excerpt(text),
                source: first,
            }
        })?,
    };
    normalize(value)
}

/// Normalizes a JSON result value (see the module docs).
pub fn normalize(mut value: Value) -> Result<Normalized, ResultError> {
    let mut metadata = Map::new();
    if let Value::Object(map) = &mut value
        && map.contains_key("output")
    {
        take_metadata(map, &mut metadata)?;
        value = map.remove("output").unwrap_or(Value::Null);
    }
    let mut extra = Map::new();
    let objective = match value {
        Value::Object(mut map) => {
            take_metadata(&mut map, &mut metadata)?;
            let objective = map.remove("objective").ok_or(ResultError::NoObjectiveKey)?;
            extra = map;
            objective_of(objective)?
        }
        other => objective_of(other)?,
    };
    Ok(Normalized {
        objective,
        metadata,
        extra,
    })
}

fn take_metadata(
    map: &mut Map<String, Value>,
    into: &mut Map<String, Value>,
) -> Result<(), ResultError> {
    match map.remove("metadata") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) => {
            into.extend(m);
            Ok(())
        }
        Some(other) => Err(ResultError::MetadataNotObject(kind(&other))),
    }
}

fn objective_of(value: Value) -> Result<Objective, ResultError> {
    Ok(match value {
        Value::Null => Objective::Failure("F".into()),
        Value::Bool(b) => Objective::Value(if b { 1.0 } else { 0.0 }),
        Value::Number(n) => match n.as_f64() {
            Some(v) if v.is_finite() => Objective::Value(v),
            _ => Objective::Failure("F".into()),
        },
        Value::String(s) => Objective::Failure(failure_text(s)),
        Value::Array(items) if items.is_empty() => {
            return Err(ResultError::EmptyList);
        }
        Value::Array(items) if items.len() > MAX_OBJECTIVES => {
            return Err(ResultError::TooManyObjectives(items.len()));
        }
        Value::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                values.push(match item {
                    Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                    Value::Null => f64::NAN,
                    Value::Bool(b) => f64::from(u8::from(b)),
                    Value::String(s) => match crate::float::from_name(&s) {
                        Some(v) => v,
                        None if s.starts_with('F') => {
                            return Ok(Objective::Failure(failure_text(s)));
                        }
                        None => return Err(ResultError::ListHolds("a string")),
                    },
                    other => return Err(ResultError::ListHolds(kind(&other))),
                });
            }
            Objective::Multi(values)
        }
        Value::Object(_) => return Err(ResultError::ObjectiveIsObject),
    })
}

/// Why a run function's result is not a valid objective.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultError {
    /// The text is not JSON (even with `NaN`/`Infinity` read as null).
    #[error("the result is not JSON ({source}): {excerpt}")]
    NotJson {
        /// The start of the text, quoted.
        excerpt: String,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// An object without an `"objective"` key.
    #[error("an object result needs an \"objective\" key")]
    NoObjectiveKey,
    /// `"metadata"` is not an object; the kind of value it is.
    #[error("\"metadata\" must be an object, found {0}")]
    MetadataNotObject(&'static str),
    /// `[]`.
    #[error("an empty list is not an objective")]
    EmptyList,
    /// More than [`MAX_OBJECTIVES`] objectives.
    #[error("a list of {0} objectives; at most {MAX_OBJECTIVES} are supported")]
    TooManyObjectives(usize),
    /// A multi-objective list holds something else than numbers.
    #[error("a multi-objective list holds {0}")]
    ListHolds(&'static str),
    /// The objective is an object.
    #[error("the objective is an object, expected a number")]
    ObjectiveIsObject,
}

/// The most objectives a result may have (each is a column of results.csv).
pub const MAX_OBJECTIVES: usize = 100;

/// The longest failure string kept as an objective (results.csv repeats it in every objective
/// column, as DeepHyper does); a longer one is cut and ends with `…`.
pub const MAX_FAILURE_TEXT: usize = 1024;

fn failure_text(mut s: String) -> String {
    if cut(&mut s, MAX_FAILURE_TEXT - '…'.len_utf8()) {
        s.push('…');
    }
    s
}

/// Cuts `text` to at most `max` bytes, on a character boundary; true when it was cut.
pub fn cut(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.shrink_to_fit();
    true
}

/// Replaces the bare tokens `NaN`, `Infinity` and `-Infinity` outside strings by `null`.
fn non_finite_to_null(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t))
        {
            out.push_str("null");
            rest = &rest[token.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(text: &str) -> Objective {
        parse_result(text).unwrap().objective
    }

    #[test]
    fn scalars_strings_and_lists() {
        assert_eq!(obj("1.5"), Objective::Value(1.5));
        assert_eq!(obj("3"), Objective::Value(3.0));
        assert_eq!(obj("true"), Objective::Value(1.0));
        assert_eq!(
            obj("\"F_diverged\""),
            Objective::Failure("F_diverged".into())
        );
        assert_eq!(obj("[1, 2.5]"), Objective::Multi(vec![1.0, 2.5]));
        assert!(obj("\"F_x\"").is_failure());
    }

    #[test]
    fn non_finite_tokens_become_failures() {
        for text in [
            "NaN",
            "Infinity",
            "-Infinity",
            "null",
            "{\"objective\": NaN}",
        ] {
            assert_eq!(obj(text), Objective::Failure("F".into()), "{text}");
        }
        let Objective::Multi(v) = obj("[1, NaN, -Infinity]") else {
            panic!()
        };
        assert!(v[0] == 1.0 && v[1].is_nan() && v[2].is_nan());
        // tokens inside strings are left alone
        assert_eq!(
            obj("{\"objective\": 2, \"metadata\": {\"s\": \"NaN\"}}").value(),
            Some(2.0)
        );
    }

    #[test]
    fn objective_and_output_objects() {
        let n = parse_result(r#"{"objective": 2, "metadata": {"a": 1}, "extra": true}"#).unwrap();
        assert_eq!(n.objective, Objective::Value(2.0));
        assert_eq!(n.metadata["a"], json!(1));
        assert_eq!(n.extra["extra"], json!(true));
        // the @profile format wins over "objective", as in DeepHyper
        let n = parse_result(r#"{"objective": 1, "output": 3, "metadata": {"m": 0}}"#).unwrap();
        assert_eq!(n.objective, Objective::Value(3.0));
        assert_eq!(n.metadata["m"], json!(0));
        let n = parse_result(r#"{"output": {"objective": 4, "metadata": {"k": 2}}}"#).unwrap();
        assert_eq!(
            (n.objective, n.metadata["k"].clone()),
            (Objective::Value(4.0), json!(2))
        );
    }

    #[test]
    fn bad_outputs_are_errors() {
        use ResultError::*;
        let err = |text: &str| parse_result(text).unwrap_err();
        assert!(matches!(err("{\"metadata\": {}}"), NoObjectiveKey));
        assert!(matches!(
            err("{\"objective\": 1, \"metadata\": 3}"),
            MetadataNotObject("a number")
        ));
        assert!(matches!(err("[]"), EmptyList));
        assert!(matches!(err("not json"), NotJson { .. }));
        assert!(err("not json").to_string().contains("not JSON"));
        assert!(matches!(err("{\"objective\": {}}"), ObjectiveIsObject));
    }
}
