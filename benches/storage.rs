//! A storage alone, without jobs running: what an evaluator asks of it per trivial job
//! (create in batches, the submit metadata, the outcome, the completion cursor, reading the
//! finished jobs back, the gather time). Prints jobs/s per storage URL, in the order given.
//!
//! `cargo bench --bench storage -- [--jobs N] URL...` (URLs as `--storage` takes them:
//! `memory`, `sqlite:PATH`, `redis://127.0.0.1:6379/?prefix=bench`).

use std::time::Instant;

use serde_json::{Map, json};
use wasmeval::{Job, JobStatus, Objective, Storage};

const BATCH: usize = 256;

fn one_pass(storage: &dyn Storage, jobs: usize) -> f64 {
    let search = storage.create_new_search().unwrap();
    let config = json!({"x0": 1, "x1": 2.5, "x2": 3})
        .as_object()
        .unwrap()
        .clone();
    let started = Instant::now();
    let mut cursor = 0;
    let mut done = 0;
    while done < jobs {
        let n = BATCH.min(jobs - done);
        let ids = storage
            .create_new_jobs(&search, &vec![config.clone(); n])
            .unwrap();
        for id in &ids {
            storage
                .store_job_metadata(id, "timestamp_submit", json!(0.25))
                .unwrap();
            let mut outcome = Job::new(id.clone(), Map::new());
            outcome.status = JobStatus::Done;
            outcome.objective = Some(Objective::Value(6.5));
            outcome
                .metadata
                .insert("timestamp_start".into(), json!(0.5));
            outcome.metadata.insert("timestamp_end".into(), json!(0.75));
            storage.store_job_done(&outcome).unwrap();
        }
        let (finished, next) = storage.finished_since(&search, cursor).unwrap();
        cursor = next;
        for job in storage.load_jobs(&finished).unwrap() {
            storage
                .store_job_metadata(&job.id, "timestamp_gather", json!(1.0))
                .unwrap();
        }
        done += finished.len();
    }
    jobs as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut jobs = 20_000;
    if let Some(i) = args.iter().position(|a| a == "--jobs") {
        jobs = args[i + 1].parse().expect("--jobs N");
        args.drain(i..i + 2);
    }
    for url in &args {
        let storage = wasmeval::storage::open(url).unwrap();
        let rate = one_pass(&*storage, jobs);
        println!("{url}: {jobs} jobs, {rate:.0} jobs/s");
    }
}
