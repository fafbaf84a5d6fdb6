//! Reading configurations, streamed one at a time so that a file of any length is evaluated
//! with bounded memory: JSON Lines (one object per line), a JSON array of objects, or CSV with
//! a header row.
//!
//! The format is told from the file: a `.csv` extension is CSV; otherwise the first
//! character decides (`[` a JSON array, `{` JSON Lines, anything else CSV).

mod array;
mod csv;
mod lines;

use std::io::{BufRead, BufReader, Read};
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

/// The formats of a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line; blank lines are skipped.
    JsonLines,
    /// One JSON array of objects.
    JsonArray,
    /// A header row of parameter names, then one configuration per row. Cells that read as
    /// numbers become numbers, `true`/`false` (any case) booleans, `[...]`/`{...}` JSON, and
    /// empty cells are left out. When some header starts with `p:` (a DeepHyper
    /// `results.csv`), only the `p:` columns are read, without the prefix.
    Csv,
}

/// One configuration and the line it starts on.
pub type Config = (usize, Map<String, Value>);

/// What a format's reader yields: configurations, or the line and message of an error.
type Items = Box<dyn Iterator<Item = Result<Config, (usize, String)>> + Send>;

/// A stream of configurations read from a file or standard input.
pub struct Configs {
    name: String,
    format: Format,
    items: Items,
    failed: bool,
}

impl Configs {
    /// Opens `path` (`-` for standard input) and tells its format.
    pub fn open(path: &Path) -> Result<Configs, InputError> {
        Configs::open_for(path, false)
    }

    /// Opens `path`; with `check_only`, JSON Lines are checked without being built (each
    /// valid line yields an empty map), for a fast validation pass with the same errors.
    fn open_for(path: &Path, check_only: bool) -> Result<Configs, InputError> {
        let name = path.display().to_string();
        let reader: Box<dyn Read + Send> = if name == "-" {
            Box::new(Ended::new(std::io::stdin()))
        } else {
            match std::fs::File::open(path) {
                Ok(f) if f.metadata().is_ok_and(|m| m.is_dir()) => {
                    return Err(whole(&name, "is a directory, not a file of configurations"));
                }
                Ok(f) => Box::new(f),
                Err(e) => return Err(whole(&name, &format!("cannot read: {e}"))),
            }
        };
        let csv_ext = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let reader = BufReader::with_capacity(1 << 16, reader);
        Configs::build(&name, reader, csv_ext, check_only)
    }

    /// Reads configurations from `reader`, naming `name` in errors; `csv` forces CSV.
    pub fn from_reader(
        name: &str,
        reader: impl BufRead + Send + 'static,
        csv: bool,
    ) -> Result<Configs, InputError> {
        Configs::build(name, reader, csv, false)
    }

    fn build(
        name: &str,
        mut reader: impl BufRead + Send + 'static,
        csv: bool,
        check_only: bool,
    ) -> Result<Configs, InputError> {
        let first =
            first_byte(&mut reader).map_err(|e| whole(name, &format!("cannot read: {e}")))?;
        let format = match first {
            _ if csv => Format::Csv,
            Some(b'[') => Format::JsonArray,
            Some(b'{') | None => Format::JsonLines,
            Some(_) => Format::Csv,
        };
        let items = match format {
            Format::JsonLines => lines::read(reader, check_only),
            Format::JsonArray => array::read(reader),
            Format::Csv => csv::read(reader),
        };
        Ok(Configs {
            name: name.to_string(),
            format,
            items,
            failed: false,
        })
    }

    /// The format found.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The file name used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Iterator for Configs {
    type Item = Result<Config, InputError>;

    /// The next configuration with its line; after an error, nothing more.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.items.next()?;
        Some(item.map_err(|(line, message)| {
            self.failed = true;
            InputError {
                file: self.name.clone(),
                line,
                message,
            }
        }))
    }
}

/// A reader that stays at its end once it reached it. On a terminal, Ctrl-D ends one read
/// only: a reader that read again (a format's reader after the first bytes were peeked, say)
/// would wait for a second Ctrl-D.
struct Ended<R> {
    inner: R,
    ended: bool,
}

impl<R> Ended<R> {
    fn new(inner: R) -> Ended<R> {
        Ended {
            inner,
            ended: false,
        }
    }
}

impl<R: Read> Read for Ended<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ended || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        self.ended = n == 0;
        Ok(n)
    }
}

/// Reads a whole file (`-` for standard input) into memory.
pub fn read_configs(path: &Path) -> Result<Vec<Map<String, Value>>, InputError> {
    Configs::open(path)?.map(|c| c.map(|(_, m)| m)).collect()
}

/// Reads configurations from `text`, naming `file` in errors.
pub fn parse_configs(file: &str, text: &str) -> Result<Vec<Map<String, Value>>, InputError> {
    let reader = std::io::Cursor::new(text.as_bytes().to_vec());
    Configs::from_reader(file, reader, false)?
        .map(|c| c.map(|(_, m)| m))
        .collect()
}

/// Reads the whole file once, checking every configuration; returns how many there are. It
/// fails exactly where reading the file with [`Configs`] would (same line, same message).
pub fn validate(path: &Path) -> Result<u64, InputError> {
    count(Configs::open_for(path, true)?)
}

/// [`validate`] for a reader (what [`Configs::from_reader`] would read).
pub fn validate_reader(
    name: &str,
    reader: impl BufRead + Send + 'static,
    csv: bool,
) -> Result<u64, InputError> {
    count(Configs::build(name, reader, csv, true)?)
}

fn count(configs: Configs) -> Result<u64, InputError> {
    let mut n = 0;
    for item in configs {
        item?;
        n += 1;
    }
    Ok(n)
}

fn whole(file: &str, message: &str) -> InputError {
    InputError {
        file: file.to_string(),
        line: 0,
        message: message.to_string(),
    }
}

/// The first byte that is not whitespace in the first buffered chunk, left unread (a chunk
/// of whitespace only reads as JSON Lines, whose blank lines are skipped).
fn first_byte(reader: &mut impl BufRead) -> std::io::Result<Option<u8>> {
    let buf = reader.fill_buf()?;
    Ok(match buf.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b) => Some(*b),
        None if buf.is_empty() => None,
        None => Some(b'{'),
    })
}

/// What is wrong with a JSON value that should be a configuration.
fn not_an_object(value: &Value) -> String {
    let mut shown = value.to_string();
    if shown.len() > 60 {
        shown.truncate(shown.char_indices().nth(57).map_or(shown.len(), |(i, _)| i));
        shown.push_str("...");
    }
    format!("expected a JSON object, found {shown}")
}

#[cfg(test)]
mod tests;
