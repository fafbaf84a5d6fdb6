//! CSV with a header row of parameter names.

use std::io::BufRead;

use serde_json::{Map, Value};

use super::Items;

/// The configurations of `reader`.
pub(super) fn read(reader: impl BufRead + Send + 'static) -> Items {
    let mut csv = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut columns: Option<Vec<Option<String>>> = None;
    let mut record = ::csv::StringRecord::new();
    Box::new(std::iter::from_fn(move || {
        loop {
            let line = csv.position().line() as usize;
            match csv.read_record(&mut record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => return Some(Err((error_line(&e, line), describe(&e)))),
            }
            let line = record.position().map_or(line, |p| p.line() as usize);
            if record.iter().all(str::is_empty) {
                continue;
            }
            let Some(columns) = &columns else {
                match header(&record) {
                    Ok(h) => columns = Some(h),
                    Err(m) => return Some(Err((line, m))),
                }
                continue;
            };
            if record.len() != columns.len() {
                return Some(Err((
                    line,
                    format!(
                        "the row has {} fields, the header has {}",
                        record.len(),
                        columns.len()
                    ),
                )));
            }
            let config: Map<String, Value> = columns
                .iter()
                .zip(record.iter())
                .filter_map(|(name, cell)| Some((name.clone()?, cell_value(cell)?)))
                .collect();
            return Some(Ok((line, config)));
        }
    }))
}

/// The parameter name of each column (`None` for columns left out).
fn header(record: &::csv::StringRecord) -> Result<Vec<Option<String>>, String> {
    let prefixed = record.iter().any(|h| h.starts_with("p:"));
    let mut seen = std::collections::HashSet::new();
    record
        .iter()
        .map(|h| {
            let name = if prefixed {
                h.strip_prefix("p:")
            } else {
                Some(h)
            };
            match name {
                Some("") => Err("the header has an empty column name".to_string()),
                Some(n) if !seen.insert(n.to_string()) => {
                    Err(format!("the header names `{n}` twice"))
                }
                Some(n) => Ok(Some(n.to_string())),
                None => Ok(None),
            }
        })
        .collect()
}

/// A cell's value: a number, a boolean, JSON for `[...]` and `{...}`, else the text; `None`
/// for an empty cell.
fn cell_value(cell: &str) -> Option<Value> {
    let t = cell.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(f) = t.parse::<f64>()
        && f.is_finite()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return Some(f.into());
    }
    if t.eq_ignore_ascii_case("true") {
        return Some(true.into());
    }
    if t.eq_ignore_ascii_case("false") {
        return Some(false.into());
    }
    if (t.starts_with('[') || t.starts_with('{'))
        && let Ok(v) = serde_json::from_str(t)
    {
        return Some(v);
    }
    Some(cell.into())
}

fn error_line(e: &::csv::Error, fallback: usize) -> usize {
    e.position().map_or(fallback.max(1), |p| p.line() as usize)
}

fn describe(e: &::csv::Error) -> String {
    match e.kind() {
        ::csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".into(),
        ::csv::ErrorKind::Io(io) => format!("cannot read: {io}"),
        _ => format!("unreadable CSV row: {e}"),
    }
}
