//! Module loading: kinds, and clear refusals before any job starts.

use wasmeval::{Error, Evaluator, Method, ModuleKind, RunFunction};

use crate::common::{builder, fixture, guest};

fn refusal(module: impl Into<RunFunction>) -> String {
    let module = module.into();
    match wasmeval::LoadedModule::load(&module, &Default::default(), &wasmeval::CacheDir::Disabled)
    {
        Err(e @ (Error::Module { .. } | Error::Read { .. })) => e.to_string(),
        Err(other) => panic!("unexpected error kind: {other}"),
        Ok(m) => panic!("{m:?} was accepted"),
    }
}

#[test]
fn kinds_are_told_apart_from_the_binary() {
    let kind = |p| builder(p).build().unwrap().module().kind;
    assert_eq!(kind(guest("ackley")), ModuleKind::Objective);
    assert_eq!(
        kind(guest("sum")),
        ModuleKind::Objective,
        "a world without the job import loads"
    );
    assert_eq!(kind(guest("command")), ModuleKind::CommandComponent);
    assert_eq!(
        kind(crate::common::guest_for("command", "wasm32-wasip1")),
        ModuleKind::CommandCore
    );
    assert_eq!(kind(fixture("loop.wat")), ModuleKind::CommandCore);
}

#[test]
fn bad_modules_are_refused_with_the_file_name_and_the_reason() {
    let msg = refusal(fixture("not_wasm.txt"));
    assert!(
        msg.contains("not_wasm.txt") && msg.contains("not WebAssembly"),
        "{msg}"
    );
    let msg = refusal(fixture("no_start.wat"));
    assert!(
        msg.contains("no_start.wat") && msg.contains("`_start`") && msg.contains("`compute`"),
        "{msg}"
    );
    let msg = refusal(fixture("unknown_import.wat"));
    assert!(
        msg.contains("unknown_import.wat") && msg.contains("launch_missiles"),
        "{msg}"
    );
    let msg = refusal(fixture("empty_component.wat"));
    assert!(msg.contains("neither `run` nor `wasi:cli/run`"), "{msg}");
    let msg = refusal(fixture("missing.wasm"));
    assert!(
        msg.contains("missing.wasm") && msg.contains("No such file"),
        "{msg}"
    );
    let msg = refusal(RunFunction::Bytes {
        name: "broken.wat".into(),
        bytes: b"(module (func".to_vec(),
    });
    assert!(
        msg.contains("broken.wat") && msg.contains("invalid WebAssembly text"),
        "{msg}"
    );
    let msg = refusal(RunFunction::Bytes {
        name: "empty.wasm".into(),
        bytes: Vec::new(),
    });
    assert!(msg.contains("empty"), "{msg}");
    // The evaluator refuses the same way, before any job starts.
    let err = Evaluator::create(fixture("no_start.wat"), Method::Thread, Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, Error::Module { .. }), "{err}");
}

#[test]
fn a_component_importing_an_unknown_interface_is_refused_naming_it() {
    let wat = r#"(component
        (import "acme:rockets/launch" (instance (export "fire" (func))))
    )"#;
    let msg = refusal(RunFunction::Bytes {
        name: "rockets.wat".into(),
        bytes: wat.as_bytes().to_vec(),
    });
    assert!(
        msg.contains("rockets.wat") && msg.contains("acme:rockets/launch"),
        "{msg}"
    );
}

#[test]
fn a_component_whose_run_has_the_wrong_type_is_refused() {
    let wat = r#"(component
        (core module $m (func (export "run") (result i32) i32.const 1))
        (core instance $i (instantiate $m))
        (func (export "run") (result u32) (canon lift (core func $i "run")))
    )"#;
    let msg = refusal(RunFunction::Bytes {
        name: "typed.wat".into(),
        bytes: wat.as_bytes().to_vec(),
    });
    assert!(
        msg.contains("typed.wat") && msg.contains("wrong type"),
        "{msg}"
    );
}

#[test]
fn compilation_is_bounded_in_time_and_memory_and_the_next_load_works() {
    use wasmeval::{CacheDir, LoadedModule, Policy};
    let module = RunFunction::File(guest("ackley"));
    let slow = Policy {
        compile_timeout: std::time::Duration::from_millis(1),
        ..Default::default()
    };
    let err = LoadedModule::load(&module, &slow, &CacheDir::Disabled)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ackley.wasm") && err.contains("compiling took longer than 5ms"),
        "{err}"
    );
    let small = Policy {
        compile_memory: 8 << 20,
        ..Default::default()
    };
    let err = LoadedModule::load(&module, &small, &CacheDir::Disabled)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ackley.wasm") && err.contains("too big to compile"),
        "{err}"
    );
    let ok = LoadedModule::load(&module, &Policy::default(), &CacheDir::Disabled).unwrap();
    assert_eq!(ok.kind, ModuleKind::Objective);
}

#[test]
fn a_core_module_exporting_the_canonical_abi_run_is_componentized_and_runs() {
    let m = wasmeval::LoadedModule::load(
        &fixture("canonical_run.wat").into(),
        &Default::default(),
        &wasmeval::CacheDir::Disabled,
    )
    .unwrap();
    assert_eq!(m.kind, ModuleKind::Objective);
    let job = crate::common::run_one(builder(fixture("canonical_run.wat")), serde_json::json!({}));
    assert_eq!(
        job.objective,
        Some(wasmeval::Objective::Value(42.0)),
        "{job:?}"
    );

    let msg = refusal(fixture("canonical_run_wrong_type.wat"));
    assert!(
        msg.contains("canonical_run_wrong_type.wat") && msg.contains("cannot componentize"),
        "{msg}"
    );
}

#[test]
fn a_module_handle_travels_as_json_and_loads_again_with_its_policy() {
    let policy = wasmeval::Policy {
        fuel: Some(1_000_000),
        ..Default::default()
    };
    let evaluator = builder(guest("ackley"))
        .policy(policy.clone())
        .build()
        .unwrap();
    let handle = evaluator.module_handle();
    assert_eq!(handle.sha256, evaluator.module().sha256);
    assert_eq!(handle.policy, policy);
    let sent = serde_json::to_string(&handle).unwrap();
    let received: wasmeval::sandbox::ModuleHandle = serde_json::from_str(&sent).unwrap();
    assert_eq!(received, handle);
    let loaded = received.load(&wasmeval::CacheDir::Disabled).unwrap();
    assert_eq!(
        (loaded.kind, &loaded.sha256),
        (ModuleKind::Objective, &handle.sha256)
    );
    // Bytes that are not the ones named are refused, with both digests.
    let mut tampered = received.clone();
    let mut wasm = tampered.wasm.to_vec();
    *wasm.last_mut().unwrap() ^= 1;
    tampered.wasm = wasm.into();
    match tampered.load(&wasmeval::CacheDir::Disabled) {
        Err(Error::Module {
            source: wasmeval::ModuleError::Digest { expected, .. },
            ..
        }) => assert_eq!(expected, handle.sha256),
        other => panic!("expected a digest refusal, got {other:?}"),
    }
}

#[test]
fn an_invalid_core_module_to_componentize_is_blamed_not_the_component_made_of_it() {
    // `run` returns an i64 where its type says i32: text that parses, a module that does not
    // validate.
    let wat = r#"(module
        (memory (export "memory") 1)
        (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0))
        (func (export "run") (param i32 i32) (result i32) (i64.const 0)))"#;
    let err = refusal(RunFunction::Bytes {
        name: "bad.wat".into(),
        bytes: wat.as_bytes().to_vec(),
    });
    assert!(err.starts_with("bad.wat: invalid WebAssembly: "), "{err}");
    assert!(!err.contains("component output"), "{err}");
}

#[test]
fn a_wat_syntax_error_is_located_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.wat");
    std::fs::write(&path, "(module\n  (func\n    (oops)))\n").unwrap();
    let err = refusal(path.clone());
    assert!(
        err.contains(&format!("{}:3:", path.display())),
        "the file and line, not <anon>: {err}"
    );
}
