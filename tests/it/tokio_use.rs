//! The evaluator from async code: wasm runs on the library's threads, never on the runtime's.

use serde_json::json;
use wasmeval::{Gather, Method};

use crate::common::{builder, guest};

#[tokio::test]
async fn works_inside_a_current_thread_runtime() {
    let mut e = builder(guest("ackley"))
        .method(Method::Thread)
        .num_workers(2)
        .build()
        .unwrap();
    e.submit([json!({"x": [0.0]}), json!({"x": [1.0]})])
        .unwrap();
    let jobs = e.gather(Gather::All).unwrap().local;
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.failure.is_none()));
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_spawn_blocking_in_a_multi_thread_runtime() {
    let module = guest("multifidelity");
    let jobs = tokio::task::spawn_blocking(move || {
        let mut e = builder(module).method(Method::Serial).build().unwrap();
        e.submit([json!({"lr": 0.1, "epochs": 3, "epoch_ms": 10})])
            .unwrap();
        e.gather(Gather::All).unwrap().local
    })
    .await
    .unwrap();
    assert_eq!(jobs[0].intermediate.len(), 3);
}
