//! The build id: a hash of the library's sources and lock file, so that a parent and a worker
//! binary built from different sources refuse each other at the hello even when they share a
//! version number (a stale `wasmeval` beside a rebuilt Python package, say).

use std::hash::Hasher;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let mut inputs = Vec::new();
    for dir in ["src", "wit"] {
        println!("cargo:rerun-if-changed={dir}");
        files(Path::new(dir), &mut inputs);
    }
    for file in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={file}");
        inputs.push(PathBuf::from(file));
    }
    inputs.sort();
    // FNV-1a, 64 bits: stable across builds and toolchains (std's hashers promise neither).
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
        }
        fn finish(&self) -> u64 {
            self.0
        }
    }
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    for path in &inputs {
        hash.write(path.to_string_lossy().as_bytes());
        hash.write(&std::fs::read(path).unwrap_or_default());
    }
    println!("cargo:rustc-env=WASMEVAL_BUILD_ID={:016x}", hash.finish());
}
