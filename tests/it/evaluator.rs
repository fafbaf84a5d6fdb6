//! The Evaluator API, against every method.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use wasmeval::{
    Callback, Error, Evaluator, EvaluatorOptions, FailureKind, Gather, Job, JobId, JobStatus,
    MemoryStorage, Method, Objective, Storage,
};

use crate::common::{METHODS, WITHIN, builder, guest, meta};

fn ackley() -> std::path::PathBuf {
    guest("ackley")
}

fn points(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| json!({"x": [i as f64 * 0.25, -1.0]}))
        .collect()
}

#[test]
fn submit_and_gather_all_give_ids_statuses_objectives_and_timestamps() {
    for method in METHODS {
        let mut e = builder(ackley())
            .method(method)
            .num_workers(2)
            .build()
            .unwrap();
        let ids = e.submit(points(6)).unwrap();
        assert_eq!(
            ids,
            (0..6).map(|n| JobId::new("0", n)).collect::<Vec<_>>(),
            "{method:?}"
        );
        assert_eq!(e.num_jobs_submitted(), 6);
        let g = e.gather(Gather::All).unwrap();
        assert!(g.other.is_empty());
        assert_eq!(g.local.len(), 6);
        assert_eq!(e.num_jobs_gathered(), 6);
        for job in &g.local {
            assert_eq!(job.status, JobStatus::Done);
            let x: Vec<f64> = job.config["x"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let expected = -objective_ackley(&x);
            assert!(
                (job.value().unwrap() - expected).abs() < 1e-12,
                "{method:?} {job:?}"
            );
            let keys: Vec<&str> = job.metadata.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                [
                    "timestamp_submit",
                    "timestamp_start",
                    "timestamp_end",
                    "timestamp_gather"
                ],
                "{method:?}"
            );
            let t = |k| meta(job, k).as_f64().unwrap();
            assert!(t("timestamp_submit") <= t("timestamp_start"));
            assert!(t("timestamp_start") <= t("timestamp_end"));
            assert!(t("timestamp_end") <= t("timestamp_gather"));
            assert_eq!(
                job.duration(),
                Some(t("timestamp_end") - t("timestamp_start"))
            );
            let stored = e.storage().load_job(&job.id).unwrap();
            assert_eq!(&stored, job, "the storage holds the gathered job");
        }
        assert_eq!(
            e.storage()
                .load_out_from_all_jobs(e.search_id())
                .unwrap()
                .len(),
            6
        );
        assert!(
            e.gather(Gather::All).unwrap().local.is_empty(),
            "nothing left"
        );
        assert!(matches!(
            e.gather(Gather::Batch(1)),
            Err(Error::NoJobsPending)
        ));
    }
}

fn objective_ackley(x: &[f64]) -> f64 {
    use std::f64::consts::{E, PI};
    let n = x.len() as f64;
    let s: f64 = x.iter().map(|v| v * v).sum();
    let c: f64 = x.iter().map(|v| (2.0 * PI * v).cos()).sum();
    -20.0 * (-0.2 * (s / n).sqrt()).exp() - (c / n).exp() + 20.0 + E
}

#[test]
fn gather_batch_returns_at_least_n_in_a_search_loop() {
    for method in METHODS {
        let mut e = builder(ackley())
            .method(method)
            .num_workers(2)
            .build()
            .unwrap();
        e.submit(points(2)).unwrap();
        let mut total = 0;
        while total < 20 {
            let got = e.gather(Gather::Batch(1)).unwrap().local;
            assert!(!got.is_empty());
            total += got.len();
            if e.num_jobs_submitted() < 20 {
                e.submit(points(got.len().min(20 - e.num_jobs_submitted())))
                    .unwrap();
            }
        }
        assert_eq!(
            (e.num_jobs_submitted(), e.num_jobs_gathered()),
            (20, 20),
            "{method:?}"
        );
        // Batch(n) larger than what is pending is clamped.
        e.submit(points(3)).unwrap();
        assert_eq!(e.gather(Gather::Batch(10)).unwrap().local.len(), 3);
    }
}

#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Callback for Recorder {
    fn on_launch(&mut self, job: &Job) {
        self.0.lock().unwrap().push(format!("launch {}", job.id));
    }
    fn on_done(&mut self, job: &Job) {
        self.0.lock().unwrap().push(format!("done {}", job.id));
    }
    fn on_done_other(&mut self, job: &Job) {
        self.0.lock().unwrap().push(format!("other {}", job.id));
    }
    fn on_gather(&mut self, local: &[Job], other: &[Job]) {
        self.0
            .lock()
            .unwrap()
            .push(format!("gather {} {}", local.len(), other.len()));
    }
    fn on_close(&mut self) {
        self.0.lock().unwrap().push("close".into());
    }
}

#[test]
fn callbacks_are_called_in_order() {
    for method in METHODS {
        let rec = Recorder::default();
        let mut e = builder(ackley())
            .method(method)
            .callback(rec.clone())
            .build()
            .unwrap();
        e.submit(points(2)).unwrap();
        e.gather(Gather::All).unwrap();
        e.close();
        let log = rec.0.lock().unwrap().clone();
        assert_eq!(&log[..2], ["launch 0.0", "launch 0.1"], "{method:?}");
        let mut done = log[2..4].to_vec();
        done.sort();
        assert_eq!(done, ["done 0.0", "done 0.1"]);
        assert_eq!(&log[4..], ["gather 2 0", "gather 0 0", "close"]);
    }
}

#[test]
fn evaluators_sharing_a_storage_gather_each_others_jobs_including_objective_zero() {
    for method in METHODS {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let mut a = builder(guest("sum"))
            .method(method)
            .storage(storage.clone())
            .build()
            .unwrap();
        let search = a.search_id().to_string();
        let rec = Recorder::default();
        let mut b = builder(guest("sum"))
            .method(method)
            .storage(storage.clone())
            .search_id(&search)
            .callback(rec.clone())
            .build()
            .unwrap();
        // An objective of exactly 0, which DeepHyper would skip.
        a.submit([json!({"x0": 0.0}), json!({"x0": 1.0})]).unwrap();
        a.gather(Gather::All).unwrap();
        b.submit([json!({"x0": 2.0})]).unwrap();
        let g = b.gather(Gather::All).unwrap();
        assert_eq!(g.local.len(), 1);
        let mut other: Vec<String> = g.other.iter().map(|j| j.id.to_string()).collect();
        other.sort();
        assert_eq!(
            other,
            [format!("{search}.0"), format!("{search}.1")],
            "{method:?}"
        );
        assert!(
            g.other
                .iter()
                .any(|j| j.objective == Some(Objective::Value(0.0)))
        );
        assert_eq!(b.num_jobs_gathered(), 3);
        assert!(
            rec.0
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with("other"))
                .count()
                == 2
        );
        // Nothing is returned twice.
        b.submit([json!({"x0": 3.0})]).unwrap();
        assert!(b.gather(Gather::All).unwrap().other.is_empty());
        let a_sees = a.gather(Gather::All).unwrap();
        assert_eq!(a_sees.other.len(), 2, "a gets b's two jobs");
        assert_eq!(storage.load_all_job_ids(&search).unwrap().len(), 4);
    }
    let err = builder(ackley())
        .storage(Arc::new(MemoryStorage::new()))
        .search_id("7")
        .build()
        .err();
    assert!(matches!(err, Some(Error::UnknownSearch(id)) if id == "7"));
}

#[test]
fn the_evaluator_deadline_cancels_running_jobs_and_queued_ones_never_start() {
    for method in METHODS {
        let mut e = builder(guest("probe"))
            .method(method)
            .num_workers(2)
            .build()
            .unwrap();
        e.set_timeout(Some(Duration::from_millis(500)));
        assert!(e.time_left().unwrap() > 0.0);
        let t = Instant::now();
        e.submit((0..6).map(|_| json!({"action": "spin"}))).unwrap();
        let jobs = e.gather(Gather::All).unwrap().local;
        assert!(t.elapsed() < WITHIN, "{method:?}");
        assert_eq!(jobs.len(), 6);
        for job in &jobs {
            assert_eq!(job.status, JobStatus::Cancelled, "{method:?}");
            assert_eq!(
                job.objective,
                Some(Objective::Failure("F_CANCELLED".into()))
            );
            assert_eq!(job.failure.as_ref().unwrap().kind, FailureKind::Cancelled);
        }
        // As in DeepHyper, a job that never started has neither start nor end time.
        let started = |j: &&wasmeval::Job| j.metadata.contains_key("timestamp_start");
        assert!(
            jobs.iter()
                .all(|j| started(&j) == j.metadata.contains_key("timestamp_end"))
        );
        let never_ran = jobs.iter().filter(|j| !started(j)).count();
        assert!(
            never_ran >= 4,
            "queued jobs must not start: {never_ran} {method:?}"
        );
        assert!(e.time_left().unwrap() < 0.0);
        e.set_timeout(None);
        assert!(e.time_left().is_none());
    }
}

#[test]
fn cancel_and_close_stop_jobs_for_real() {
    for method in METHODS {
        let mut e = builder(guest("probe"))
            .method(method)
            .num_workers(1)
            .build()
            .unwrap();
        let ids = e
            .submit([json!({"action": "spin"}), json!({"action": "env_count"})])
            .unwrap();
        assert!(e.cancel(&ids[0]));
        let jobs = e.gather(Gather::All).unwrap().local;
        let first = jobs.iter().find(|j| j.id == ids[0]).unwrap();
        assert_eq!(first.status, JobStatus::Cancelled, "{method:?}");
        assert_eq!(
            jobs.iter().find(|j| j.id == ids[1]).unwrap().value(),
            Some(0.0)
        );
        assert!(!e.cancel(&ids[0]), "already gathered");

        let rec = Recorder::default();
        let mut e = builder(guest("probe"))
            .method(method)
            .callback(rec.clone())
            .build()
            .unwrap();
        e.submit([
            json!({"action": "spin"}),
            json!({"action": "spin"}),
            json!({"action": "until_stopped"}),
        ])
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        let closed = e.close();
        assert!(t.elapsed() < WITHIN);
        assert_eq!(closed.len(), 3);
        assert!(
            closed.iter().all(|j| j.status == JobStatus::Cancelled),
            "{method:?} {closed:?}"
        );
        assert_eq!(rec.0.lock().unwrap().last().unwrap(), "close");
        // The evaluator is usable after close.
        e.submit([json!({"action": "env_count"})]).unwrap();
        assert_eq!(e.gather(Gather::All).unwrap().local[0].value(), Some(0.0));
    }
}

#[test]
fn a_stopped_poll_sees_cancel() {
    let mut e = builder(guest("probe")).build().unwrap();
    let ids = e.submit([json!({"action": "until_stopped"})]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    e.cancel(&ids[0]);
    let job = e.gather(Gather::All).unwrap().local.remove(0);
    // The guest either returned on its own after `stopped()` or was stopped: both are
    // within bounds, and the job never runs on.
    assert!(
        job.status == JobStatus::Cancelled || meta(&job, "polls").as_u64().is_some(),
        "{job:?}"
    );
}

#[test]
fn the_mpi_method_needs_a_build_with_mpi_and_mpi_started() {
    let Err(err) = builder(ackley()).method(Method::Mpi).build() else {
        panic!("the mpi method started without MPI")
    };
    let expected = if cfg!(feature = "mpi") {
        "call wasmeval::mpi::init() first"
    } else {
        "built without MPI"
    };
    assert!(matches!(err, Error::Mpi(_)), "{err:?}");
    assert!(err.to_string().contains(expected), "{err}");
}

#[test]
fn maximum_jobs_to_json_and_counters() {
    for method in METHODS {
        let mut e = builder(ackley())
            .method(method)
            .num_workers(3)
            .build()
            .unwrap();
        let expected = match method {
            Method::Serial => json!({"type": "SerialEvaluator", "num_workers": 1}),
            Method::Thread => json!({"type": "ThreadPoolEvaluator", "num_workers": 3}),
            Method::Process => json!({"type": "ProcessPoolEvaluator", "num_workers": 3}),
            Method::Mpi | Method::Redis => unreachable!("not one of METHODS"),
        };
        assert_eq!(e.to_json(), expected);
        e.set_maximum_num_jobs_submitted(3);
        let err = e.submit(points(5)).unwrap_err();
        assert!(matches!(err, Error::MaximumJobsSpawnReached(3)));
        assert_eq!(e.num_jobs_submitted(), 3, "the first three stay submitted");
        assert_eq!(e.gather(Gather::All).unwrap().local.len(), 3);
        assert!(e.submit(points(1)).is_err());
        assert!(
            e.submit([json!([1, 2])]).is_err(),
            "a configuration must be an object"
        );
    }
}

#[test]
fn create_takes_dee_hyper_style_options() {
    let storage = Arc::new(MemoryStorage::new());
    let mut e = Evaluator::create(
        ackley(),
        Method::Thread,
        EvaluatorOptions {
            num_workers: Some(2),
            storage: Some(storage.clone()),
            cache: wasmeval::CacheDir::Disabled,
            ..Default::default()
        },
    )
    .unwrap();
    e.submit(points(4)).unwrap();
    assert_eq!(e.gather(Gather::All).unwrap().local.len(), 4);
    assert_eq!(storage.load_search("0").unwrap().len(), 4);
    assert_eq!(
        storage.load_job_status(&JobId::new("0", 2)).unwrap(),
        JobStatus::Done
    );
}

#[test]
fn a_timeout_set_after_submit_applies_to_running_jobs() {
    let mut e = builder(guest("probe"))
        .method(Method::Thread)
        .num_workers(2)
        .build()
        .unwrap();
    e.submit([
        json!({"action": "spin"}),
        json!({"action": "sleep", "n": 1_000_000_000u64}),
    ])
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    e.set_timeout(Some(Duration::from_millis(200)));
    let jobs = e.gather(Gather::All).unwrap().local;
    assert!(t.elapsed() < WITHIN);
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Cancelled),
        "{jobs:?}"
    );
}
