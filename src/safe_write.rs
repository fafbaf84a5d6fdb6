//! Files the host writes (results, exports, compile-cache entries) are never written through
//! whatever sits at their path: a guest with a read-write grant could have planted a symbolic
//! link there. Each file is written to a fresh temporary file in the same directory (created
//! with `O_CREAT | O_EXCL` under a random name, so nothing planted is followed or reused) and
//! renamed over the path: a link at the path is replaced, never followed, and readers never see
//! half a file.

use std::fs::{File, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes the file at `path` with `write`, then renames it into place with `mode` (less the
/// umask). On an error, the file already at `path`, if any, is left as it was.
pub fn replace(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut BufWriter<&File>) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temporary(path, mode)?;
    {
        let mut out = BufWriter::new(tmp.as_file());
        write(&mut out)?;
        out.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Checks that a file can be created next to `path` (a temporary one, removed at once),
/// without touching `path` itself.
pub fn check_writable(path: &Path) -> io::Result<()> {
    temporary(path, 0o600).map(drop)
}

/// The directory `path` is in (`.` for a bare file name).
pub fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn temporary(path: &Path, mode: u32) -> io::Result<tempfile::NamedTempFile> {
    let dir = dir_of(path);
    let name = path
        .file_name()
        .map_or("wasmeval".into(), |n| n.to_string_lossy());
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let out = dir.path().join("results.csv");
        std::os::unix::fs::symlink("victim", &out).unwrap();
        replace(&out, 0o644, |w| w.write_all(b"a,b\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&out).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "a,b\n");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("results.csv");
        std::fs::write(&out, "old").unwrap();
        let e = replace(&out, 0o644, |_| Err(io::Error::other("boom"))).unwrap_err();
        assert_eq!(e.to_string(), "boom");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
