//! Writing a search's results to a file: `.csv` (DeepHyper's columns) or `.jsonl`.

use std::path::Path;

use crate::Storage;
use crate::export::{self, Format};

/// Writes every job of `search` to `path`, CSV or JSON Lines by its extension, naming the
/// file in errors.
pub fn write_file(storage: &dyn Storage, search: &str, path: &Path) -> crate::Result<()> {
    let named =
        |e: &dyn std::fmt::Display| crate::Error::Option(format!("{}: {e}", path.display()));
    crate::safe_write::replace(path, 0o666, |out| {
        export::write_search(storage, search, Format::of_path(path), out)
            .map_err(std::io::Error::other)
    })
    .map_err(|e| named(&e))
}
