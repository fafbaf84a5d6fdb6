//! How the library's modules depend on each other, and how the worker binary is checked.

use std::path::Path;
use std::process::Command;

use crate::common::{guest, root};

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_sandbox_imports_no_worker_backend_or_command_line() {
    let mut files = Vec::new();
    rust_files(&root().join("src/sandbox"), &mut files);
    assert!(files.len() > 10, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for layer in [
            "crate::worker",
            "crate::backend",
            "crate::cli",
            "crate::evaluator",
        ] {
            assert!(
                !text.contains(layer),
                "{} uses {layer}: the sandbox sits below it",
                file.display()
            );
        }
    }
}

#[test]
fn a_worker_binary_of_another_build_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("old-wasmeval");
    // Reads the parent's hello frame and answers as a wasmeval of another version would.
    let answer = r#"{"Child":{"protocol":1,"build":"0.0.1"}}"#;
    std::fs::write(
        &fake,
        format!(
            "#!/usr/bin/env python3\nimport sys, struct\n\
             n = struct.unpack('<I', sys.stdin.buffer.read(4))[0]\nsys.stdin.buffer.read(n)\n\
             a = b'{answer}'\nsys.stdout.buffer.write(struct.pack('<I', len(a)) + a)\n\
             sys.stdout.buffer.flush()\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"x0\": 1}\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_wasmeval"))
        .env("WASMEVAL_STORAGE", "memory")
        .env("WASMEVAL_WORKER_BIN", &fake)
        .env("WASMEVAL_CACHE_DIR", dir.path().join("cache"))
        .arg("run")
        .arg(guest("sum"))
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&fake.display().to_string()) && err.contains("is wasmeval 0.0.1 (protocol 1)"),
        "{err}"
    );
}
