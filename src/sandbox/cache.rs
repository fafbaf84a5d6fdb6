//! The compile cache: content-addressed entries in a private directory.
//!
//! An entry is named after the sha256 of the run function's binary (as given, before any
//! componentization) and of the engine's compatibility hash. It is two files: `KEY.cwasm`, the
//! compiled code exactly as wasmtime serialized it (so processes map it instead of reading
//! it), and `KEY.json`: the code's length and CRC-32, and what loading needs without the
//! binary ([`CodeInfo`]: whether it is a component, its core instance count, how it was
//! componentized).
//! The code's CRC-32 is checked before every load; an entry that does not match is compiled
//! again and replaced, never loaded. Files are written to a temporary name and renamed into
//! place, the code before its description, and never rewritten in place: processes map the
//! code file (wasmtime maps linear-memory images from it too), and a file truncated under a
//! mapping faults (SIGBUS) in every process that maps it.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;

/// Where compiled modules are kept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CacheDir {
    /// `$WASMEVAL_CACHE_DIR`, else `$XDG_CACHE_HOME/wasmeval`, else `~/.cache/wasmeval`.
    Default,
    /// This directory.
    At(PathBuf),
    /// No cache: compile every time.
    Disabled,
}

impl CacheDir {
    /// The directory, if caching is on and a location is known.
    pub fn path(&self) -> Option<PathBuf> {
        match self {
            CacheDir::Disabled => None,
            CacheDir::At(p) => Some(p.clone()),
            CacheDir::Default => std::env::var_os("WASMEVAL_CACHE_DIR")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("wasmeval"))
                })
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/wasmeval"))
                }),
        }
    }
}

/// The sha256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 15)] as char);
    }
    text
}

/// Feeds a `Hash` value into sha256, so the key is stable across processes.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

/// The format of the entries; part of every key.
const FORMAT: &[u8] = b"wasmeval cache 2";

/// The entry name for a binary of sha256 `wasm_sha256` compiled by `engine`.
pub fn key(engine: &Engine, wasm_sha256: &str) -> String {
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.update(FORMAT);
    h.0.update(wasm_sha256.as_bytes());
    hex(&h.0.finalize())
}

/// What loading compiled code needs besides the code, kept in its entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeInfo {
    /// The code is a component (the binary was one, or was componentized).
    pub component: bool,
    /// Core instances one job creates (admission control).
    pub core_instances: u32,
    /// How a core module was componentized, if it was.
    pub componentized: Option<String>,
}

/// An entry's description: the code's length and CRC-32, and what loading it needs.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    len: u64,
    crc32: u32,
    #[serde(flatten)]
    info: CodeInfo,
}

/// The code file and the description file of entry `key` in `dir`.
fn paths(dir: &Path, key: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{key}.cwasm")),
        dir.join(format!("{key}.json")),
    )
}

/// The entry `key` in `dir`: what its code needs and its code file, if both files exist and
/// the code's length and CRC-32 match its description.
pub fn lookup(dir: &Path, key: &str) -> Option<(CodeInfo, PathBuf)> {
    let (path, described) = paths(dir, key);
    let entry: Entry = serde_json::from_slice(&fs::read(described).ok()?).ok()?;
    let file = fs::File::open(&path).ok()?;
    let len = file.metadata().ok()?.len();
    (len == entry.len && crc32_of_file(&file, len)? == entry.crc32).then_some((entry.info, path))
}

/// The CRC-32 of a file of `len` bytes, read through a private read-only mapping (the code of
/// a big guest is tens of MiB; mapping it avoids copying it into this process's heap).
fn crc32_of_file(file: &fs::File, len: u64) -> Option<u32> {
    use rustix::mm::{MapFlags, ProtFlags};
    if len == 0 {
        return Some(crc32fast::hash(&[]));
    }
    let len = usize::try_from(len).ok()?;
    // SAFETY: a fresh private read-only mapping of an open file, unmapped below; cache files
    // are never truncated in place (see the module docs), so the bytes stay readable.
    unsafe {
        let p = rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ,
            MapFlags::PRIVATE,
            file,
            0,
        )
        .ok()?;
        let crc = crc32fast::hash(std::slice::from_raw_parts(p.cast::<u8>(), len));
        let _ = rustix::mm::munmap(p, len);
        Some(crc)
    }
}

/// Stores `code` as entry `key` in `dir` (the code, then its description) and returns the code
/// file.
pub fn store(dir: &Path, key: &str, code: &[u8], info: &CodeInfo) -> std::io::Result<PathBuf> {
    let entry = Entry {
        len: code.len() as u64,
        crc32: crc32fast::hash(code),
        info: info.clone(),
    };
    let (path, described) = paths(dir, key);
    write(&path, code)?;
    write(
        &described,
        &serde_json::to_vec(&entry).expect("serializable"),
    )?;
    Ok(path)
}

/// Makes sure `dir` exists, belongs to this user and is private (0700).
/// Returns false when it cannot be made so: the cache is then not used.
pub fn prepare_dir(dir: &Path) -> bool {
    if fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .is_err()
    {
        return false;
    }
    let Ok(meta) = fs::metadata(dir) else {
        return false;
    };
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return false;
    }
    if meta.mode() & 0o077 != 0 {
        return fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).is_ok();
    }
    true
}

/// Writes a file atomically: a fresh temporary file of a random name (so that two threads or
/// processes storing the same entry never share one), then a rename.
fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::safe_write::replace(path, 0o600, |out| out.write_all(bytes))
}
