//! Writing a search's results to a file: `.csv` (DeepHyper's columns) or `.jsonl`.

use std::path::Path;

use crate::Storage;
use crate::export::{self, Format};

/// Writes every job of `search` (with `attempts`, every attempt: see
/// [`export::write_search`]) to `path`, in `format` or else the one its extension names;
/// `-` is standard output, which needs `format`. Errors name the file.
pub fn write_file(
    storage: &dyn Storage,
    search: &str,
    path: &Path,
    format: Option<Format>,
    attempts: bool,
) -> crate::Result<()> {
    if is_stdout(path) {
        let format = format.ok_or_else(|| crate::Error::Option(STDOUT_FORMAT.into()))?;
        return export::write_search(storage, search, format, attempts, std::io::stdout().lock());
    }
    let named =
        |e: &dyn std::fmt::Display| crate::Error::Option(format!("{}: {e}", path.display()));
    let format = file_format(path, format).map_err(crate::Error::Option)?;
    crate::safe_write::replace(path, 0o666, |out| {
        export::write_search(storage, search, format, attempts, out).map_err(std::io::Error::other)
    })
    .map_err(|e| named(&e))
}

/// Checks, before any job runs, that [`write_file`] can write `path` in `format`.
pub fn check(path: &Path, format: Option<Format>) -> Result<(), String> {
    if is_stdout(path) {
        return format.map(drop).ok_or_else(|| STDOUT_FORMAT.to_string());
    }
    file_format(path, format)?;
    crate::safe_write::check_writable(path).map_err(|e| format!("--output {}: {e}", path.display()))
}

/// The format of file `path`: `format` if given, else the one its extension names.
fn file_format(path: &Path, format: Option<Format>) -> Result<Format, String> {
    format.or_else(|| Format::of_path(path)).ok_or_else(|| {
        format!(
            "--output {}: name the file .csv or .jsonl, or give --format csv|jsonl",
            path.display()
        )
    })
}

const STDOUT_FORMAT: &str = "--output - (standard output) needs --format csv or jsonl";

/// `-`: standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}
