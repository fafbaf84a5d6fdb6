//! The compile cache: private, content-addressed, verified before every load.

use std::os::unix::fs::PermissionsExt;

use wasmeval::{CacheDir, LoadedModule, Policy, RunFunction};

use crate::common::guest;

/// Replaces a cache file with other contents, as a corrupting copy would: a new file renamed
/// into place (processes map code files, so none is ever rewritten in place).
fn replace(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("tampered");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn modules_are_cached_privately_and_a_tampered_file_is_recompiled_not_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let cache = CacheDir::At(dir.clone());
    let module = RunFunction::File(guest("ackley"));
    LoadedModule::load(&module, &Policy::default(), &cache).unwrap();
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let (file, entry) = (&files[0], &files[1]);
    assert!(file.extension().is_some_and(|e| e == "cwasm"));
    assert!(entry.extension().is_some_and(|e| e == "json"));
    assert_eq!(file.file_stem(), entry.file_stem());
    let original = std::fs::read(file).unwrap();
    let described: serde_json::Value =
        serde_json::from_slice(&std::fs::read(entry).unwrap()).unwrap();
    assert_eq!(described["len"], original.len());
    assert_eq!(described["component"], true);

    // A second load reads the same file and leaves it as it is.
    LoadedModule::load(&module, &Policy::default(), &cache).unwrap();
    assert_eq!(std::fs::read(file).unwrap(), original);

    // Flip one byte of the compiled code: its CRC-32 no longer matches, so the module is
    // compiled again and the file replaced.
    let mut tampered = original.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    replace(file, &tampered);
    let m = LoadedModule::load(&module, &Policy::default(), &cache).unwrap();
    assert_eq!(std::fs::read(file).unwrap(), original);
    assert_eq!(m.kind, wasmeval::ModuleKind::Objective);

    // A truncated file, or a description that does not parse, is a miss too.
    replace(file, &original[..original.len() / 2]);
    LoadedModule::load(&module, &Policy::default(), &cache).unwrap();
    assert_eq!(std::fs::read(file).unwrap(), original);
    replace(entry, b"{");
    LoadedModule::load(&module, &Policy::default(), &cache).unwrap();
    assert_eq!(std::fs::read(file).unwrap(), original);
    assert!(serde_json::from_slice::<serde_json::Value>(&std::fs::read(entry).unwrap()).is_ok());

    // A different engine setting (fuel) gets its own entry.
    let fuel = Policy {
        fuel: Some(1000),
        ..Default::default()
    };
    LoadedModule::load(&module, &fuel, &cache).unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);
}
