//! `wasmeval run MODULE --input FILE`: evaluate every configuration and write the results.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Map, Value};

use crate::cli::units;
use crate::{DirGrant, Error, Evaluator, Gather, Job, Method, input};

/// Options of `wasmeval run`.
#[derive(Args, Debug)]
#[command(after_help = crate::cli::EXIT_CODES)]
pub struct RunArgs {
    /// The run function: a `.wasm` binary or `.wat` text.
    pub module: PathBuf,
    /// Configurations: JSON Lines (one object per line) or a JSON array; `-` for stdin.
    #[arg(long, short, default_value = "-")]
    pub input: PathBuf,
    /// Write the results here: `.csv` (DeepHyper's columns) or `.jsonl`. Default: a table on stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// How jobs run: serial, thread or process (`loky` is an alias of process).
    #[arg(long, default_value = "process")]
    pub method: Method,
    /// Number of workers, threads or processes (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Wall-clock limit of each job, like 500ms, 2s or 1m.
    #[arg(long, value_parser = units::duration)]
    pub timeout: Option<Duration>,
    /// Wall-clock limit of the whole run; jobs cut off end CANCELLED.
    #[arg(long, value_parser = units::duration)]
    pub search_timeout: Option<Duration>,
    /// Memory cap of each job, like 64MiB (default 512MiB).
    #[arg(long, value_parser = units::size)]
    pub memory: Option<usize>,
    /// Fuel budget of each job (wasm instructions).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Run-function kwargs, a JSON object.
    #[arg(long, value_parser = parse_kwargs)]
    pub kwargs: Option<Map<String, Value>>,
    /// Grant a directory: HOST[::GUEST][:rw] (read-only unless :rw).
    #[arg(long = "dir", value_parser = parse_dir)]
    pub dirs: Vec<DirGrant>,
    /// Run a job again up to N times when its worker process dies (process method).
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// Grant an environment variable: KEY=VALUE.
    #[arg(long = "env", value_parser = parse_env)]
    pub envs: Vec<(String, String)>,
    /// Where results are stored: a SQLite file (`sqlite:PATH` or a path), or `memory` for none.
    #[arg(long, env = "WASMEVAL_STORAGE", default_value = "wasmeval.sqlite")]
    pub storage: String,
    /// Join this existing search of the storage instead of creating one.
    #[arg(long)]
    pub search_id: Option<String>,
    /// Resume the search given with --search-id: configurations of the input that finished
    /// DONE there (same position, same JSON) are skipped; the others run again. Refused if the
    /// module or the policy differ from the search's.
    #[arg(long, requires = "search_id")]
    pub resume: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Method, String> {
        match s {
            "serial" => Ok(Method::Serial),
            "thread" => Ok(Method::Thread),
            "process" | "loky" => Ok(Method::Process),
            other => Err(format!(
                "unknown method `{other}`; expected serial, thread or process"
            )),
        }
    }
}

fn parse_kwargs(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!("--kwargs must be a JSON object, got {other}")),
        Err(e) => Err(format!("--kwargs is not JSON: {e}")),
    }
}

fn parse_dir(text: &str) -> Result<DirGrant, String> {
    let (rest, writable) = match text.strip_suffix(":rw") {
        Some(r) => (r, true),
        None => (text.strip_suffix(":ro").unwrap_or(text), false),
    };
    let (host, guest) = rest.split_once("::").unwrap_or((rest, rest));
    if host.is_empty() || guest.is_empty() {
        return Err(format!(
            "invalid --dir `{text}`: expected HOST[::GUEST][:rw]"
        ));
    }
    Ok(DirGrant {
        host: host.into(),
        guest: guest.into(),
        writable,
    })
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("invalid --env `{text}`: expected KEY=VALUE")),
    }
}

/// Runs `wasmeval run`; returns the exit code.
pub fn run(args: RunArgs) -> i32 {
    let configs = match input::read_configs(&args.input) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if args.resume && args.storage == "memory" {
        eprintln!("error: --resume needs a --storage file that holds the search to resume");
        return 2;
    }
    let storage = match crate::storage::open(&args.storage) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --storage: {e}");
            return 2;
        }
    };
    let mut b = Evaluator::builder(args.module.clone())
        .storage(storage)
        .method(args.method)
        .num_workers(workers)
        .retries(args.retries)
        .resume(args.resume)
        .run_function_kwargs(args.kwargs.unwrap_or_default());
    if let Some(id) = args.search_id {
        b = b.search_id(id);
    }
    if let Some(t) = args.timeout {
        b = b.job_timeout(t);
    }
    if let Some(m) = args.memory {
        b = b.memory_limit(m);
    }
    if let Some(f) = args.fuel {
        b = b.fuel(f);
    }
    for d in args.dirs {
        b = b.dir(d);
    }
    for (k, v) in args.envs {
        b = b.env(k, v);
    }
    let mut evaluator = match b.build() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return if matches!(
                e,
                Error::Resume(_)
                    | Error::UnknownSearch(_)
                    | Error::Module { .. }
                    | Error::Read { .. }
                    | Error::Option(_)
            ) {
                2
            } else {
                1
            };
        }
    };
    evaluator.set_timeout(args.search_timeout);
    let started = Instant::now();
    let jobs = match evaluate(&mut evaluator, configs, args.resume) {
        Ok(jobs) => jobs,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let wall = started.elapsed();
    if let Err(e) = crate::cli::output::write_results(&jobs, args.output.as_deref(), args.quiet) {
        eprintln!("error: {e}");
        return 1;
    }
    if !args.quiet {
        eprint!("{}", summary(&jobs, wall));
    }
    0
}

/// Runs the configurations (numbered by input position); on resume, only those that did not
/// finish, and returns the whole search.
fn evaluate(
    evaluator: &mut Evaluator,
    configs: Vec<Map<String, Value>>,
    resume: bool,
) -> crate::Result<Vec<Job>> {
    let inputs = (0u64..).zip(configs);
    if !resume {
        evaluator.submit_inputs(inputs)?;
        let mut jobs = evaluator.gather(Gather::All)?.local;
        jobs.extend(evaluator.close());
        jobs.sort_by_key(|j| j.id.number());
        return Ok(jobs);
    }
    let (storage, search) = (
        evaluator.storage().clone(),
        evaluator.search_id().to_string(),
    );
    let done = crate::resume::finished_inputs(&*storage, &search)?;
    crate::resume::cancel_unfinished(&*storage, &search)?;
    let todo: Vec<_> = inputs
        .filter(|(pos, c)| !done.contains(&(*pos, crate::resume::config_hash(c))))
        .collect();
    if !todo.is_empty() {
        evaluator.submit_inputs(todo)?;
        evaluator.gather(Gather::All)?;
    }
    evaluator.close();
    let mut jobs = storage.load_search(&search)?;
    jobs.sort_by_key(|j| j.id.number());
    Ok(jobs)
}

fn summary(jobs: &[Job], wall: Duration) -> String {
    let failed: Vec<&Job> = jobs.iter().filter(|j| j.is_failure()).collect();
    let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
    for job in &failed {
        let kind = job
            .failure
            .as_ref()
            .map_or("objective F".to_string(), |f| f.kind.to_string());
        *by_kind.entry(kind).or_default() += 1;
    }
    let mut s = format!(
        "{} jobs: {} succeeded, {} failed",
        jobs.len(),
        jobs.len() - failed.len(),
        failed.len()
    );
    if !by_kind.is_empty() {
        let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
        s.push_str(&format!(" ({})", kinds.join(", ")));
    }
    s.push('\n');
    if let Some(best) = jobs
        .iter()
        .filter(|j| j.value().is_some())
        .max_by(|a, b| a.value().unwrap().total_cmp(&b.value().unwrap()))
    {
        s.push_str(&format!(
            "best objective {} (job {}): {}\n",
            best.value().unwrap(),
            best.id,
            Value::Object(best.config.clone())
        ));
    }
    let secs = wall.as_secs_f64();
    s.push_str(&format!(
        "wall time {secs:.3} s, {:.0} jobs/s\n",
        jobs.len() as f64 / secs.max(1e-9)
    ));
    s
}
