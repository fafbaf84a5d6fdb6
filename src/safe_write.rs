//! Files the host writes (results, exports, compile-cache entries) are never written through
//! whatever sits at their path: a guest with a read-write grant could have planted a symbolic
//! link there. A regular file is written to a fresh temporary file in the same directory
//! (created with `O_CREAT | O_EXCL` under a random name, so nothing planted is followed or
//! reused) and renamed over the path, so readers never see half a file; a link at the path is
//! refused (a link planted after that check is replaced by the rename, never followed). A
//! device or named pipe (`/dev/null`, a FIFO a reader waits on) is written in place, opened
//! with `O_NOFOLLOW`: renaming over it would replace the device node itself.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// What sits at a path the host is asked to write.
enum Target {
    /// Nothing, or a regular file: write a temporary file and rename it into place.
    File,
    /// A device, named pipe or socket: write in place.
    Special,
}

fn target(path: &Path) -> io::Result<Target> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Target::File),
        other => other?,
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a symbolic link, and no file is written through a link: name the file it \
             points to (or `-` for standard output)",
        ))
    } else if kind.is_dir() {
        Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        ))
    } else if kind.is_file() {
        Ok(Target::File)
    } else {
        Ok(Target::Special)
    }
}

/// Writes the file at `path` with `write`: a regular file (or a new one) is written aside and
/// renamed into place with `mode` (less the umask), and on an error the file already at
/// `path`, if any, is left as it was; a device or named pipe is written in place; a link or a
/// directory is refused.
pub fn replace(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut BufWriter<&File>) -> io::Result<()>,
) -> io::Result<()> {
    if let Target::Special = target(path)? {
        let file = open_special(path)?;
        let mut out = BufWriter::new(&file);
        write(&mut out)?;
        return out.flush();
    }
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

/// Opens `path` for a file written piece by piece: a new regular file (one already there is
/// removed, then the path created with `O_EXCL`, so nothing planted meanwhile is followed), or a
/// device or named pipe, written in place; a link or a directory is refused.
pub fn create(path: &Path) -> io::Result<File> {
    if let Target::Special = target(path)? {
        return open_special(path);
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    OpenOptions::new().write(true).create_new(true).open(path)
}

fn open_special(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    if file.metadata()?.is_file() {
        return Err(io::Error::other(
            "was replaced by a regular file while opening",
        ));
    }
    Ok(file)
}

/// Checks that `path` can be written by [`replace`] (for a regular file: that a file can be
/// created next to it, a temporary one removed at once), without touching `path` itself.
#[cfg(feature = "cli")]
pub fn check_writable(path: &Path) -> io::Result<()> {
    match target(path)? {
        Target::File => temporary(path, 0o600).map(drop),
        Target::Special => Ok(()),
    }
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
    fn a_planted_link_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let out = dir.path().join("results.csv");
        std::os::unix::fs::symlink("victim", &out).unwrap();
        let e = replace(&out, 0o644, |w| w.write_all(b"a,b\n")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(check_writable(&out).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(&out).unwrap().is_symlink());
    }

    #[test]
    fn a_named_pipe_is_written_in_place_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        check_writable(&fifo).unwrap();
        replace(&fifo, 0o644, |w| w.write_all(b"a,b\n")).unwrap();
        assert_eq!(reader.join().unwrap(), "a,b\n");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "{kind:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
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
