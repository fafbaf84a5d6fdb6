//! Floats that may be NaN or infinite, in JSON. JSON has no such numbers (serde_json writes
//! them as `null`, and a `null` does not read back as a float), yet a diverging training run
//! records a NaN loss as an ordinary value. wasmeval writes a non-finite float as one of the
//! strings `"NaN"`, `"Infinity"` and `"-Infinity"` (the spelling of JavaScript and of Python's
//! `json` module), everywhere a float is stored or sent: the worker frames, the storages'
//! intermediate series and multi-objective lists, and JSON Lines exports. A `null` reads back
//! as NaN (what older storage files hold).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The JSON form of `v`: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn to_json(v: f64) -> Value {
    if v.is_nan() {
        Value::from("NaN")
    } else if v == f64::INFINITY {
        Value::from("Infinity")
    } else if v == f64::NEG_INFINITY {
        Value::from("-Infinity")
    } else {
        Value::from(v)
    }
}

/// `v` as text, the shortest form that reads back as the same float: plain digits between
/// 1e-4 and 1e16 (`0.001`, `12.5`, `3`), Python's exponent form outside
/// (`-4.440892098500626e-16`, `1e+16`), and `nan`, `inf`, `-inf`. What results.csv and the
/// summary print.
pub fn shortest(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let magnitude = v.abs();
    if magnitude == 0.0 || (1e-4..1e16).contains(&magnitude) {
        return v.to_string();
    }
    // `{:e}` is the shortest round-trip mantissa with the exponent as `e-16`; Python writes
    // the exponent with a sign and at least two digits.
    let text = format!("{v:e}");
    let (mantissa, exponent) = text.split_once('e').expect("`{:e}` has an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` has an integer exponent");
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// Reads a float written by [`to_json`] (`null` reads as NaN); `None` for anything else.
pub fn from_json(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Null => Some(f64::NAN),
        Value::String(s) => from_name(s),
        _ => None,
    }
}

/// The float named `"NaN"`, `"Infinity"` or `"-Infinity"`.
pub fn from_name(name: &str) -> Option<f64> {
    match name {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Serde for a `(budget, objective)` series, `#[serde(with = "crate::float::series")]`:
/// `[[budget, objective], …]` with non-finite values as [`to_json`] writes them.
pub mod series {
    use super::*;

    /// Writes the series.
    pub fn serialize<S: Serializer>(series: &[(f64, f64)], s: S) -> Result<S::Ok, S::Error> {
        to_value(series).serialize(s)
    }

    /// Reads a series.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
        from_value(&Value::deserialize(d)?).ok_or_else(|| D::Error::custom("not a series"))
    }

    /// The series as JSON.
    pub fn to_value(series: &[(f64, f64)]) -> Value {
        series
            .iter()
            .map(|&(b, o)| Value::Array(vec![to_json(b), to_json(o)]))
            .collect()
    }

    /// Reads a series from JSON; `None` when it is not one.
    pub fn from_value(value: &Value) -> Option<Vec<(f64, f64)>> {
        value
            .as_array()?
            .iter()
            .map(|pair| match pair.as_array()?.as_slice() {
                [b, o] => Some((from_json(b)?, from_json(o)?)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn shortest_reads_back_and_uses_an_exponent_outside_1e_4_to_1e16() {
        use super::shortest;
        for (v, text) in [
            (-4.440892098500626e-16, "-4.440892098500626e-16"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (12.5, "12.5"),
            (3.0, "3"),
            (1e16, "1e+16"),
            (1.2345678901234567e300, "1.2345678901234567e+300"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(shortest(v), text);
            if v.is_finite() {
                assert_eq!(text.parse::<f64>().unwrap().to_bits(), v.to_bits());
            }
        }
    }
    use super::*;

    #[test]
    fn non_finite_values_round_trip() {
        let s = vec![
            (1.0, f64::NAN),
            (2.0, f64::INFINITY),
            (f64::NEG_INFINITY, -0.5),
        ];
        let text = series::to_value(&s).to_string();
        assert_eq!(text, r#"[[1.0,"NaN"],[2.0,"Infinity"],["-Infinity",-0.5]]"#);
        let back = series::from_value(&serde_json::from_str(&text).unwrap()).unwrap();
        assert!(back[0].1.is_nan());
        assert_eq!(&back[1..], &s[1..]);
        assert!(from_json(&Value::Null).unwrap().is_nan());
        assert_eq!(from_json(&Value::from("nan")), None);
    }
}
