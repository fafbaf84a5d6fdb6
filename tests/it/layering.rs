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

/// The top-level modules of `src/` and, for each, the top-level modules its code names as
/// `crate::<module>` (comments and test modules left out).
fn module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = std::collections::BTreeMap::<_, std::collections::BTreeSet<_>>::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.iter().next().unwrap().to_str().unwrap();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let uses = graph.entry(module.clone()).or_default();
        for line in code.lines() {
            let line = line.split("//").next().unwrap();
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    uses.insert(name);
                }
            }
        }
    }
    graph
}

#[test]
fn the_library_modules_import_each_other_without_a_cycle() {
    let graph = module_graph();
    assert!(graph.len() > 15, "{graph:?}");
    assert!(
        graph["backend"].contains("sandbox"),
        "the graph is read: {graph:?}"
    );
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
    ) {
        if let Some(at) = path.iter().position(|m| *m == module) {
            panic!("an import cycle: {} -> {module}", path[at..].join(" -> "));
        }
        if !done.insert(module) {
            return;
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
    }
    let mut done = std::collections::BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
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
