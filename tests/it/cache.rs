//! The compile cache: private, content-addressed, verified before every load.

use std::os::unix::fs::PermissionsExt;

use wasmeval::{CacheDir, LoadedModule, Policy, RunFunction};

use crate::common::guest;

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
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    assert!(file.extension().is_some_and(|e| e == "cwasm"));
    let original = std::fs::read(file).unwrap();

    // A second load reads the same file and leaves it as it is.
    LoadedModule::load(&module, &Policy::default(), &cache).unwrap();
    assert_eq!(std::fs::read(file).unwrap(), original);

    // Flip one byte of the compiled code: the checksum no longer matches, so the module is
    // compiled again and the file replaced.
    let mut tampered = original.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    std::fs::write(file, &tampered).unwrap();
    let m = LoadedModule::load(&module, &Policy::default(), &cache).unwrap();
    assert_eq!(std::fs::read(file).unwrap(), original);
    assert_eq!(m.kind, wasmeval::ModuleKind::Objective);

    // A different engine setting (fuel) gets its own entry.
    let fuel = Policy {
        fuel: Some(1000),
        ..Default::default()
    };
    LoadedModule::load(&module, &fuel, &cache).unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
}
