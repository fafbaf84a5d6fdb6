//! `wasmeval::batch`: a stream of configurations with a bounded window of pending jobs.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use wasmeval::Method;
use wasmeval::internal::batch;

use crate::common::{builder, guest};

#[test]
fn a_long_stream_never_holds_more_than_the_window() {
    let mut evaluator = builder(guest("sum"))
        .method(Method::Thread)
        .num_workers(2)
        .build()
        .unwrap();
    let pulled = Arc::new(Mutex::new(0u64));
    let p = pulled.clone();
    let configs = (0..5_000u64).map(move |i| {
        *p.lock().unwrap() += 1;
        let mut m = Map::new();
        m.insert("x0".into(), Value::from(i));
        batch::Next::Config(Ok::<_, String>(m))
    });
    let options = batch::Options {
        window: Some(32),
        ..Default::default()
    };
    let (mut done, mut sum, mut most_ahead) = (0u64, 0.0, 0u64);
    let (end, counts) = batch::run(
        &mut evaluator,
        configs,
        &options,
        &AtomicBool::new(false),
        |job| {
            done += 1;
            sum += job.value().unwrap();
            most_ahead = most_ahead.max(*pulled.lock().unwrap() - done);
        },
    )
    .unwrap();
    assert!(matches!(end, batch::End::Finished), "{end:?}");
    assert_eq!(counts.submitted, 5_000);
    assert_eq!(done, 5_000);
    assert_eq!(sum, (0..5_000).sum::<u64>() as f64);
    assert!(most_ahead <= 32, "at most the window pending: {most_ahead}");
}

#[test]
fn an_input_error_cancels_the_jobs_in_flight_and_max_jobs_stops_early() {
    let mut evaluator = builder(crate::common::fixture("loop.wat"))
        .method(Method::Thread)
        .num_workers(2)
        .build()
        .unwrap();
    let configs =
        (0..3).map(|i| batch::Next::Config(if i < 2 { Ok(Map::new()) } else { Err("line 3") }));
    let mut statuses = Vec::new();
    let (end, counts) = batch::run(
        &mut evaluator,
        configs,
        &batch::Options::default(),
        &AtomicBool::new(false),
        |job| statuses.push(job.status),
    )
    .unwrap();
    assert!(
        matches!(
            end,
            batch::End::Input {
                next: 2,
                error: "line 3"
            }
        ),
        "{end:?}"
    );
    assert_eq!(counts.submitted, 2);
    assert_eq!(statuses, [wasmeval::JobStatus::Cancelled; 2]);

    let mut evaluator = builder(guest("sum")).build().unwrap();
    let configs = std::iter::repeat_with(|| batch::Next::Config(Ok::<_, String>(Map::new())));
    let options = batch::Options {
        max_jobs: Some(10),
        ..Default::default()
    };
    let (end, counts) = batch::run(
        &mut evaluator,
        configs,
        &options,
        &AtomicBool::new(false),
        |_| {},
    )
    .unwrap();
    assert!(matches!(end, batch::End::Finished));
    assert_eq!(counts.submitted, 10);
}
