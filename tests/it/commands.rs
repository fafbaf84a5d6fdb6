//! WASI commands: configuration on stdin, result on the last stdout line, stderr as the log.

use serde_json::json;
use wasmeval::{FailureKind, Gather, ModuleKind, Objective};

use crate::common::{builder, fixture, guest, guest_for, run_one};

fn both_commands() -> [(std::path::PathBuf, ModuleKind); 2] {
    [
        (
            guest_for("command", "wasm32-wasip1"),
            ModuleKind::CommandCore,
        ),
        (guest("command"), ModuleKind::CommandComponent),
    ]
}

#[test]
fn commands_of_both_kinds_read_stdin_and_answer_on_stdout() {
    for (module, kind) in both_commands() {
        let mut e = builder(&module)
            .run_function_kwargs(json!({"k": 1}).as_object().unwrap().clone())
            .build()
            .unwrap();
        assert_eq!(e.module().kind, kind);
        e.submit([
            json!({"x": [0.0, 0.0]}),
            json!({"x": [0.5]}),
            json!({"x": [1.0], "exit": 3}),
        ])
        .unwrap();
        let jobs = e.gather(Gather::All).unwrap().local;
        let first = jobs.iter().find(|j| j.id.number() == 0).unwrap();
        assert_eq!(first.value(), Some(-0.0), "{kind}: {first:?}");
        assert!(
            first.log.contains("job 0.0 kwargs {\"k\":1}"),
            "{kind}: log {:?}",
            first.log
        );
        let second = jobs.iter().find(|j| j.id.number() == 1).unwrap();
        assert_eq!(second.value(), Some(-20.25), "{kind}");
        let third = jobs.iter().find(|j| j.id.number() == 2).unwrap();
        let f = third.failure.as_ref().unwrap();
        // WASI 0.2 `exit` carries only success or failure: a command component's code is 1.
        let code = if kind == ModuleKind::CommandCore {
            "exit code 3"
        } else {
            "exit code 1"
        };
        assert_eq!(
            (f.kind, f.message.as_str()),
            (FailureKind::GuestError, code),
            "{kind}"
        );
        assert!(third.log.contains("exiting with 3"), "{kind}");
    }
}

#[test]
fn a_command_result_that_is_not_json_is_a_bad_output() {
    for (module, kind) in both_commands() {
        let job = run_one(builder(&module), json!({"raw": "done!"}));
        assert_eq!(job.failure.unwrap().kind, FailureKind::BadOutput, "{kind}");
        let job = run_one(builder(&module), json!({"raw": "[1, NaN]"}));
        let Some(Objective::Multi(v)) = job.objective else {
            panic!("{kind}")
        };
        assert!(v[0] == 1.0 && v[1].is_nan());
    }
    let job = run_one(builder(fixture("hello.wat")), json!({}));
    assert_eq!(job.value(), Some(42.0));
}
