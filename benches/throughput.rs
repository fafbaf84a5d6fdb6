//! End-to-end throughput through the library: submit N trivial jobs and gather ALL; a
//! search-style loop keeping 2 jobs in flight; compute-bound jobs on 1 and 2 workers.
//! Prints one line per run with jobs/s and CPU-µs per job (parent + workers).
//!
//! `cargo bench --bench throughput -- [all|steady|compute] [--method process] [--jobs N]
//! [--storage sqlite:PATH]`

use std::time::{Duration, Instant};

use serde_json::json;
use wasmeval::{CacheDir, Evaluator, Gather, Method};

#[allow(dead_code)]
#[path = "../tests/it/common.rs"]
mod common;

fn cpu_secs() -> (f64, f64) {
    let usage = |who| {
        // SAFETY: getrusage fills the struct we pass.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    };
    (usage(libc::RUSAGE_SELF), usage(libc::RUSAGE_CHILDREN))
}

fn evaluator(method: Method, workers: usize, guest: &str, storage: Option<&str>) -> Evaluator {
    let mut b = Evaluator::builder(common::guest(guest))
        .method(method)
        .num_workers(workers)
        .cache(CacheDir::Disabled);
    if let Some(url) = storage {
        b = b.storage(wasmeval::storage::open(url).unwrap());
    }
    b.build().unwrap()
}

/// Polls the SQLite file from another connection until the first job is committed; returns
/// how long after that job finished it became visible.
fn first_commit_latency(path: &str, e: &Evaluator) -> std::thread::JoinHandle<Duration> {
    let path = path.strip_prefix("sqlite:").unwrap_or(path).to_string();
    let origin = e.origin();
    std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        loop {
            let end: Option<f64> = conn
                .query_row(
                    "SELECT json_extract(j.metadata, '$.timestamp_end') FROM completions c \
                     JOIN jobs j ON j.search_id = c.search_id AND j.n = c.n ORDER BY c.seq LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .unwrap_or(None);
            if let Some(end) = end {
                return Duration::from_secs_f64((origin.now() - end).max(0.0));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    })
}

fn report(name: &str, method: Method, jobs: usize, wall: Duration, before: (f64, f64)) {
    let after = cpu_secs();
    let (parent, children) = (after.0 - before.0, after.1 - before.1);
    println!(
        "{name:<8} {method:?} {jobs} jobs: {:.3} s, {:.0} jobs/s, CPU per job: parent {:.2} µs + workers {:.2} µs",
        wall.as_secs_f64(),
        jobs as f64 / wall.as_secs_f64(),
        parent / jobs as f64 * 1e6,
        children / jobs as f64 * 1e6,
    );
}

fn trivial(i: usize) -> serde_json::Value {
    json!({"x0": i as f64 * 0.001, "x1": 0.5, "x2": -1.0})
}

fn all(method: Method, jobs: usize, storage: Option<&str>) {
    let before = cpu_secs();
    let mut e = evaluator(method, 2, "sum", storage);
    let latency = storage.map(|s| first_commit_latency(s, &e));
    let t = Instant::now();
    e.submit((0..jobs).map(trivial)).unwrap();
    let done = e.gather(Gather::All).unwrap().local;
    let wall = t.elapsed();
    assert_eq!(done.len(), jobs);
    assert!(done.iter().all(|j| j.failure.is_none()));
    drop(e); // reaps the workers, so their CPU time is counted
    report("ALL", method, jobs, wall, before);
    if let Some(l) = latency {
        println!(
            "         storage {}: first job committed {:.1} ms after it finished",
            storage.unwrap(),
            l.join().unwrap().as_secs_f64() * 1e3
        );
    }
}

fn steady(method: Method, jobs: usize) {
    let before = cpu_secs();
    let mut e = evaluator(method, 2, "sum", None);
    let t = Instant::now();
    e.submit((0..2).map(trivial)).unwrap();
    let (mut gathered, mut submitted) = (0, 2);
    let mut marks = Vec::with_capacity(jobs);
    let mut finished = Vec::with_capacity(jobs);
    while gathered < jobs {
        let batch = e.gather(Gather::Batch(1)).unwrap().local;
        let got = batch.len();
        finished.extend(batch);
        gathered += got;
        for _ in 0..got {
            marks.push(t.elapsed());
        }
        let more = got.min(jobs - submitted);
        e.submit((submitted..submitted + more).map(trivial))
            .unwrap();
        submitted += more;
    }
    let wall = t.elapsed();
    drop(e);
    report("STEADY", method, jobs, wall, before);
    let k = 1000.min(jobs / 2);
    let first = k as f64 / marks[k - 1].as_secs_f64();
    let last = k as f64 / (marks[jobs - 1] - marks[jobs - 1 - k]).as_secs_f64();
    println!("         first {k}: {first:.0} jobs/s, last {k}: {last:.0} jobs/s");
    let tenth = jobs / 10;
    let deciles: Vec<String> = (0..10)
        .map(|d| {
            let start = if d == 0 {
                Duration::ZERO
            } else {
                marks[d * tenth - 1]
            };
            format!(
                "{:.0}",
                tenth as f64 / (marks[(d + 1) * tenth - 1] - start).as_secs_f64()
            )
        })
        .collect();
    println!("         jobs/s by tenth of the run: {}", deciles.join(" "));
    // Where a job's time goes (medians, µs): submit → start, start → end, end → gather.
    let phases = |jobs: &[wasmeval::Job]| {
        let mut cols = [Vec::new(), Vec::new(), Vec::new()];
        for j in jobs {
            let t = |k: &str| j.metadata[k].as_f64().unwrap() * 1e6;
            cols[0].push(t("timestamp_start") - t("timestamp_submit"));
            cols[1].push(t("timestamp_end") - t("timestamp_start"));
            cols[2].push(t("timestamp_gather") - t("timestamp_end"));
        }
        cols.map(|mut c| {
            c.sort_by(f64::total_cmp);
            c[c.len() / 2]
        })
    };
    finished.sort_by_key(|j| j.id.number());
    let (a, b) = (phases(&finished[..k]), phases(&finished[jobs - k..]));
    println!(
        "         median µs submit→start / run / end→gather: first {k}: {:.1} / {:.1} / {:.1}, last {k}: {:.1} / {:.1} / {:.1}",
        a[0], a[1], a[2], b[0], b[1], b[2]
    );
}

fn compute(method: Method) {
    let x: Vec<f64> = (0..10).map(|i| (i as f64 - 4.5) * 0.37).collect();
    let config = json!({"x": x, "repeat": 2_000_000});
    let mut walls = Vec::new();
    for workers in [1, 2] {
        let mut e = evaluator(method, workers, "ackley", None);
        let t = Instant::now();
        e.submit((0..8).map(|_| config.clone())).unwrap();
        let done = e.gather(Gather::All).unwrap().local;
        assert!(done.iter().all(|j| j.failure.is_none()));
        walls.push(t.elapsed().as_secs_f64());
        println!(
            "COMPUTE  {method:?} {workers} worker(s), 8 Rastrigin jobs of 2M evaluations: {:.3} s",
            walls[walls.len() - 1]
        );
    }
    println!(
        "         speed-up with 2 workers: {:.2}x",
        walls[0] / walls[1]
    );
}

fn main() {
    wasmeval::worker::init();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let method = match value("--method").as_deref() {
        Some("thread") => Method::Thread,
        Some("serial") => Method::Serial,
        _ => Method::Process,
    };
    let jobs: usize = value("--jobs")
        .and_then(|j| j.parse().ok())
        .unwrap_or(100_000);
    let what = args
        .iter()
        .find(|a| ["all", "steady", "steady2", "compute"].contains(&a.as_str()))
        .cloned();
    let storage = value("--storage");
    if what.as_deref().is_none_or(|w| w == "all") {
        all(method, jobs, storage.as_deref());
    }
    if what.as_deref().is_none_or(|w| w == "steady") {
        steady(method, jobs / 5);
    }
    if what.as_deref() == Some("steady2") {
        steady(method, jobs / 5);
        steady(method, jobs / 5);
    }
    if what.as_deref().is_none_or(|w| w == "compute") {
        compute(method);
    }
}
