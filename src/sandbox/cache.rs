//! The compile cache: content-addressed `.cwasm` files in a private directory.
//!
//! A file is named after the sha256 of the wasm binary and of the engine's compatibility hash.
//! It holds the sha256 of the compiled code followed by the code; the checksum is verified
//! before every deserialize, and a file that does not match is compiled again and replaced,
//! never loaded. Files are written to a temporary name and renamed into place.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
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
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// The cache file name for `wasm` compiled by `engine`.
pub fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.update(Sha256::digest(wasm));
    format!("{}.cwasm", hex(&h.0.finalize()))
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
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return false;
    }
    if meta.mode() & 0o077 != 0 {
        return fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).is_ok();
    }
    true
}

/// Reads a cache file and returns its compiled code if the checksum matches.
pub fn read(path: &Path) -> Option<Vec<u8>> {
    let mut bytes = fs::read(path).ok()?;
    if bytes.len() < 32 || Sha256::digest(&bytes[32..]).as_slice() != &bytes[..32] {
        return None;
    }
    bytes.drain(..32);
    Some(bytes)
}

/// Writes compiled code atomically (temporary file, then rename).
pub fn write(path: &Path, code: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cwasm"),
        std::process::id()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&Sha256::digest(code))?;
    f.write_all(code)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)
}
