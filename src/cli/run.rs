//! `wasmeval run MODULE --input FILE`: evaluate every configuration and write the results.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Map, Value};

use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::progress::{Mode, Progress};
use crate::cli::units;
use crate::cli::{interrupt, loading};
use crate::{DirGrant, Evaluator, EvaluatorBuilder, Method, Summary, batch, export, input};

/// Options of `wasmeval run`.
#[derive(Args, Debug)]
#[command(after_help = crate::cli::EXIT_CODES, args_override_self = true)]
pub struct RunArgs {
    /// The run function: a `.wasm` binary or `.wat` text.
    pub module: PathBuf,
    /// Configurations: JSON Lines (one object per line), a JSON array, or CSV with a header
    /// row (`.csv`); `-` for stdin. A file is checked whole before any job starts.
    #[arg(long, short, default_value = "-")]
    pub input: PathBuf,
    /// Write the results here when the run ends, every job in job order: `.csv` (DeepHyper's
    /// columns) or `.jsonl`, or `-` for stdout (with --format). Default: a table on stdout,
    /// one line per job in the order jobs finish (not job order).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The format of --output: csv or jsonl (default: told from the file's extension; needed
    /// for `--output -`).
    #[arg(long, value_enum)]
    pub format: Option<export::Format>,
    /// How jobs run: serial, thread, process (`loky` is an alias), mpi (`mpicomm`) under
    /// `mpirun`/`srun`: rank 0 evaluates, the other ranks run jobs; or redis, with a Redis
    /// --storage: `wasmeval worker` processes on any machines run them. The library's
    /// builder defaults to serial.
    #[arg(long, default_value = "process")]
    pub method: Method,
    /// Number of workers, threads or processes (default: the number of cores). With mpi: per
    /// agent rank (default: the rank's cores divided by the ranks on its node).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Wall-clock limit of each job, like 500ms, 2s or 1m.
    #[arg(long, value_parser = units::duration)]
    pub timeout: Option<Duration>,
    /// Wall-clock limit of the whole run; jobs cut off end CANCELLED.
    #[arg(long, value_parser = units::duration)]
    pub search_timeout: Option<Duration>,
    /// Memory cap of each job, like 64MiB (default 512MiB, at most 4GiB).
    #[arg(long, value_parser = units::memory)]
    pub memory: Option<usize>,
    /// Fuel budget of each job (wasm instructions).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// CPU time compiling the module may use, like 2m (default 60s; whole seconds); the wall
    /// clock stops it at 5 times that.
    #[arg(long, value_parser = units::duration)]
    pub compile_timeout: Option<Duration>,
    /// Run-function kwargs, a JSON object.
    #[arg(long, value_parser = parse_kwargs)]
    pub kwargs: Option<Map<String, Value>>,
    /// Grant a directory: `HOST[::GUEST][:rw]` (read-only unless `:rw`).
    #[arg(long = "dir", value_parser = parse_dir)]
    pub dirs: Vec<DirGrant>,
    /// Bytes each job may write through its read-write grants, like 64MiB (the default);
    /// past it the job ends `F_quota`.
    #[arg(long, value_parser = units::size)]
    pub dir_quota: Option<usize>,
    /// Run a job again up to N times when its worker process dies (process method).
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// Grant an environment variable: KEY=VALUE.
    #[arg(long = "env", value_parser = parse_env)]
    pub envs: Vec<(String, String)>,
    /// Where results are stored: a SQLite file (`sqlite:PATH` or a path), a Redis server
    /// (`redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME]`), or `memory` for none.
    #[arg(long, env = "WASMEVAL_STORAGE", default_value = "wasmeval.sqlite")]
    pub storage: String,
    /// How to reach a Redis --storage.
    #[command(flatten)]
    pub server: crate::cli::server::ServerArgs,
    /// Join this existing search of the storage instead of creating one.
    #[arg(long)]
    pub search_id: Option<String>,
    /// Resume the search given with --search-id (by default the latest search of the storage
    /// that ran this module): configurations of the input that finished DONE there (same
    /// position, same JSON) are skipped; the others run again. Refused if the module or the
    /// policy differ from the search's, or if another process still runs it.
    #[arg(long)]
    pub resume: bool,
    /// In --output, every attempt of a job that --resume ran again, each a row with an
    /// `attempt` number (`m:attempt` in CSV); by default one row per job, its final outcome.
    #[arg(long)]
    pub all_attempts: bool,
    /// Submit at most N jobs (configurations skipped by --resume do not count).
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<u64>,
    /// Progress display: auto (a bar on a terminal), always (a line a second off a terminal)
    /// or never.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Mode,
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
            "mpi" | "mpicomm" => Ok(Method::Mpi),
            "redis" => Ok(Method::Redis),
            other => Err(format!(
                "unknown method `{other}`; expected serial, thread, process, mpi or redis"
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

pub(crate) fn parse_dir(text: &str) -> Result<DirGrant, String> {
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

pub(crate) fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("invalid --env `{text}`: expected KEY=VALUE")),
    }
}

/// Runs `wasmeval run`; returns the exit code.
pub fn run(args: RunArgs) -> i32 {
    // Under MPI every rank runs this command: the agent ranks serve jobs inside `mpi::init`
    // and exit there; rank 0 goes on, before it reads or opens anything, and ends MPI (and
    // the agents) when this returns, after the evaluator.
    let _mpi = match start_mpi(&args) {
        Ok(root) => root,
        Err(code) => return code,
    };
    let total = if args.input.as_os_str() == "-" {
        None
    } else {
        match input::validate(&args.input) {
            Ok(n) => Some(n),
            Err(e) => {
                crate::cli::error(&e);
                return 2;
            }
        }
    };
    // Fail now, not after the run, when the results cannot be written (the file the user
    // may already have there is left alone until the run ends).
    if let Some(path) = &args.output
        && let Err(e) = crate::cli::output::check(path, args.format)
    {
        crate::cli::error(&e);
        return 2;
    }
    if args.quiet && args.output.is_none() && args.storage == "memory" {
        crate::cli::error(
            "--quiet with --storage memory and no --output would keep no result: give --output \
             FILE (or - with --format) or a --storage file",
        );
        return 2;
    }
    if let Some(message) = inside_writable_grant(&args) {
        crate::cli::error(&message);
        return 2;
    }
    if args.method == Method::Redis && !crate::redis::is_redis_url(&args.storage) {
        crate::cli::error(crate::redis::RedisError::NeedsRedisStorage);
        return 2;
    }
    if args.resume && args.storage == "memory" {
        eprintln!("error: --resume needs a --storage file that holds the search to resume");
        return 2;
    }
    let storage = match crate::storage::open_with(&args.storage, &args.server.options()) {
        Ok(s) => s,
        Err(e) => {
            crate::cli::error(format_args!("--storage: {e}"));
            return 2;
        }
    };
    let built = loading::showing(&args.module, args.progress, args.quiet, || {
        builder(&args, storage).build()
    });
    let mut evaluator = match built {
        Ok(e) => e,
        Err(e) => return crate::cli::report(e.into()),
    };
    // Only now: until the jobs start, a signal ends the command at once (loading a module can
    // take a while, and has nothing to stop cleanly).
    let stop = interrupt::install();
    evaluator.set_timeout(args.search_timeout);
    evaluate(&args, &mut evaluator, total, stop).unwrap_or_else(|e| crate::cli::report(e.into()))
}

/// Starts MPI for `--method mpi` (see [`crate::mpi::init`]).
#[cfg(feature = "mpi")]
fn start_mpi(args: &RunArgs) -> Result<Option<crate::mpi::Root>, i32> {
    if args.method != Method::Mpi {
        return Ok(None);
    }
    crate::mpi::init(args.workers).map(Some).map_err(|e| {
        crate::cli::error(&e);
        2
    })
}

/// Refuses `--method mpi` in a build without MPI.
#[cfg(not(feature = "mpi"))]
fn start_mpi(args: &RunArgs) -> Result<Option<std::convert::Infallible>, i32> {
    if args.method != Method::Mpi {
        return Ok(None);
    }
    crate::cli::error(crate::mpi::MpiError::NotBuilt);
    Err(2)
}

/// Why the output or storage file cannot be written where asked: inside a read-write grant,
/// where a run function could replace it (by a link to a file of the user's, say).
fn inside_writable_grant(args: &RunArgs) -> Option<String> {
    let file = args.storage != "memory" && !crate::redis::is_redis_url(&args.storage);
    let storage = file.then(|| {
        std::path::Path::new(
            args.storage
                .strip_prefix("sqlite:")
                .unwrap_or(&args.storage),
        )
    });
    let output = args
        .output
        .as_deref()
        .filter(|p| !crate::cli::output::is_stdout(p));
    let files = [("--output", output), ("--storage", storage)];
    for grant in args.dirs.iter().filter(|d| d.writable) {
        for (flag, path) in files {
            if let Some(path) = path.filter(|p| grant.holds(p)) {
                return Some(format!(
                    "{flag} {} is inside the read-write grant --dir {}:rw, where the run function \
                     could replace it; write it outside the granted directory",
                    path.display(),
                    grant.host.display()
                ));
            }
        }
    }
    None
}

fn builder(args: &RunArgs, storage: std::sync::Arc<dyn crate::Storage>) -> EvaluatorBuilder {
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut b = Evaluator::builder(args.module.clone())
        .storage(storage)
        .method(args.method)
        .num_workers(workers)
        .retries(args.retries)
        .resume(args.resume)
        .run_function_kwargs(args.kwargs.clone().unwrap_or_default());
    if let Some(id) = &args.search_id {
        b = b.search_id(id.clone());
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
    if let Some(t) = args.compile_timeout {
        b = b.compile_timeout(t);
    }
    if let Some(q) = args.dir_quota {
        b = b.write_quota(q as u64);
    }
    for d in &args.dirs {
        b = b.dir(d.clone());
    }
    for (k, v) in &args.envs {
        b = b.env(k.clone(), v.clone());
    }
    b
}

/// Streams the input through the evaluator, shows progress, writes the output and the
/// summary; returns the exit code.
fn evaluate(
    args: &RunArgs,
    evaluator: &mut Evaluator,
    total: Option<u64>,
    stop: &'static AtomicBool,
) -> crate::Result<i32> {
    let storage = evaluator.storage().clone();
    let search = evaluator.search_id().to_string();
    let mut options = batch::Options {
        max_jobs: args.max_jobs,
        ..Default::default()
    };
    if args.resume {
        crate::resume::cancel_unfinished(&*storage, &search)?;
        let inputs = crate::resume::inputs(&*storage, &search)?;
        options.skip = inputs.finished;
        options.rerun = inputs.unfinished;
    }
    let to_run = total.map(|n| {
        let n = n.saturating_sub(options.skip.len() as u64);
        args.max_jobs.map_or(n, |m| n.min(m))
    });
    if !args.quiet {
        let resumed = if args.resume { " (resumed)" } else { "" };
        eprintln!(
            "search {search} in storage {}{resumed}",
            crate::redis::redact(&args.storage)
        );
        if args.input.as_os_str() == "-" && std::io::stdin().is_terminal() {
            eprintln!(
                "reading configurations from standard input (--input FILE reads a file): one \
                 JSON object per line; end with Ctrl-D"
            );
        }
    }
    let mut progress = Progress::new(args.progress, to_run, args.quiet, &search);
    let table = args.output.is_none() && !args.quiet;
    let mut summary = Summary::default();
    let started = Instant::now();
    let (end, counts) = batch::run(
        evaluator,
        read_ahead(&args.input, stop),
        &options,
        stop,
        |job| {
            summary.add(job);
            progress.update(&summary);
            if table {
                progress.suspend(|| {
                    let _ = export::write_table_row(job, &mut std::io::stdout().lock());
                });
            }
        },
    )?;
    let wall = started.elapsed();
    progress.finish();
    if let Some(path) = &args.output {
        crate::cli::output::write_file(&*storage, &search, path, args.format, args.all_attempts)?;
    }
    if !args.quiet {
        eprint!("{summary}");
        if counts.skipped > 0 {
            eprintln!(
                "{} configurations skipped: they finished before",
                counts.skipped
            );
        }
        let secs = wall.as_secs_f64();
        eprintln!(
            "wall time {secs:.3} s, {}",
            crate::summary::rate_text(summary.jobs - summary.cancelled, secs)
        );
    }
    let hint = || resume_hint(args, &search);
    Ok(match end {
        batch::End::Finished => 0,
        batch::End::TimedOut { next } => {
            if !args.quiet && to_run.is_none_or(|n| counts.submitted < n) {
                eprintln!(
                    "search timeout: configurations from input position {next} on were not started{}",
                    hint()
                );
            }
            0
        }
        batch::End::Interrupted { .. } => {
            eprintln!("interrupted: jobs in flight were cancelled{}", hint());
            interrupt::exit_code()
        }
        batch::End::Input { error, .. } => {
            crate::cli::error(format_args!("{error}{}", hint()));
            2
        }
    })
}

/// How to run the rest of the input later.
fn resume_hint(args: &RunArgs, search: &str) -> String {
    if args.storage == "memory" {
        return "; nothing was stored (--storage memory)".into();
    }
    let command = resume_command(std::env::args(), &args.storage, search);
    let launcher = match args.method {
        Method::Mpi => " under your MPI launcher (mpirun -n N or srun -n N, N >= 2)",
        Method::Redis => " (with `wasmeval worker` processes serving the server)",
        _ => "",
    };
    format!("; to resume, run{launcher}: {command}")
}

/// The command line `argv` with `--storage STORAGE --search-id SEARCH --resume` in place of
/// any it had, quoted for a POSIX shell, passwords in URLs redacted: ready to paste.
fn resume_command(argv: impl IntoIterator<Item = String>, storage: &str, search: &str) -> String {
    let mut words = Vec::new();
    let mut argv = argv.into_iter();
    while let Some(word) = argv.next() {
        match word.as_str() {
            "--resume" => {}
            "--storage" | "--search-id" => {
                argv.next();
            }
            w if w.starts_with("--storage=") || w.starts_with("--search-id=") => {}
            _ => words.push(word),
        }
    }
    words.extend(["--storage", storage, "--search-id", search, "--resume"].map(String::from));
    words
        .iter()
        .map(|w| {
            let w = crate::redis::redact(w);
            shlex::try_quote(&w).map_or_else(|_| format!("{w:?}"), |q| q.into_owned())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads configurations in a thread, a bounded number ahead, so that parsing overlaps the
/// jobs and a Ctrl-C is noticed while standard input has nothing to read.
fn read_ahead(
    path: &std::path::Path,
    stop: &'static AtomicBool,
) -> impl Iterator<Item = batch::Next<input::InputError>> {
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        // Opening reads the first bytes (to tell the format), which waits on standard input.
        let configs = match input::Configs::open(&path) {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        for item in configs {
            if tx.send(item.map(|(_, config)| config)).is_err() {
                break;
            }
        }
    });
    // Nothing read for 50 ms: the batch submits what it has and gathers meanwhile.
    std::iter::from_fn(move || match rx.recv_timeout(Duration::from_millis(50)) {
        Ok(item) => Some(batch::Next::Config(item)),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => None,
        Err(crossbeam_channel::RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => None,
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => Some(batch::Next::Waiting),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resume_command_is_the_command_with_the_search_and_no_password() {
        let argv = [
            "wasmeval",
            "run",
            "my guest.wasm",
            "--search-id",
            "3",
            "--storage=x",
            "-i",
            "-",
        ];
        assert_eq!(
            resume_command(argv.map(String::from), "redis://u:secret@h:6379/0", "3"),
            "wasmeval run 'my guest.wasm' -i - --storage 'redis://u:***@h:6379/0' --search-id 3 --resume"
        );
    }
}
