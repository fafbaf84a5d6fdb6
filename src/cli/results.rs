//! `wasmeval results`: show or export the jobs of a search kept in a storage file.

use std::path::PathBuf;

use clap::Args;

use crate::JobId;
use crate::cli::Fail;
use crate::cli::output;
use crate::export::{self, Format};

/// Options of `wasmeval results`.
#[derive(Args, Debug)]
pub struct ResultsArgs {
    /// The storage: a SQLite file (`sqlite:PATH` or a path) or a Redis server
    /// (`redis://…`) (default: as `wasmeval run`).
    #[arg(long, env = "WASMEVAL_STORAGE", default_value = "wasmeval.sqlite")]
    pub storage: String,
    /// How to reach a Redis --storage.
    #[command(flatten)]
    pub server: crate::cli::server::ServerArgs,
    /// Remove this search from the storage: its jobs, attempts and values (its id is not
    /// given out again).
    #[arg(long, value_name = "ID", conflicts_with_all = ["search_id", "job", "output", "format", "all_attempts"])]
    pub delete_search: Option<String>,
    /// The search (default: the last one).
    #[arg(long)]
    pub search_id: Option<String>,
    /// Write to this file (`.csv` or `.jsonl`, or another name with --format) instead of
    /// stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The format: table (the default on stdout), csv or jsonl; with --output, default from
    /// the file's extension.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Show one job, with its log, as JSON.
    #[arg(long)]
    pub job: Option<String>,
    /// Every attempt of a job that `run --resume` ran again, each a row with an `attempt`
    /// number (`m:attempt` in CSV); by default one row per job, its final outcome.
    #[arg(long)]
    pub all_attempts: bool,
}

/// Runs `wasmeval results`; returns the exit code.
pub fn results(args: ResultsArgs) -> i32 {
    show(args).map_or_else(crate::cli::report, |()| 0)
}

fn show(args: ResultsArgs) -> Result<(), Fail> {
    let path = args
        .storage
        .strip_prefix("sqlite:")
        .unwrap_or(&args.storage);
    let redis = crate::redis::is_redis_url(&args.storage);
    if !redis && args.storage != "memory" && !std::path::Path::new(path).exists() {
        return Err(Fail::Usage(format!(
            "--storage: {path}: no such storage file"
        )));
    }
    let storage =
        crate::storage::open_with(&args.storage, &args.server.options()).map_err(|e| match e {
            crate::Error::Redis(crate::redis::RedisError::Server { .. }) => Fail::Library(e),
            e => Fail::Usage(format!("--storage: {e}")),
        })?;
    let shown = crate::redis::redact(&args.storage);
    if let Some(id) = &args.delete_search {
        storage.delete_search(id).map_err(|e| match e {
            crate::Error::UnknownSearch(_) => {
                Fail::Usage(format!("--delete-search: no search {id} in {shown}"))
            }
            e => Fail::Library(e),
        })?;
        eprintln!("search {id} deleted from {shown}");
        return Ok(());
    }
    if let Some(id) = args.job {
        let id = JobId::parse(&id).ok_or_else(|| {
            Fail::Usage(format!(
                "--job {id}: a job id is SEARCH.NUMBER, as in results.csv's job_id column with its \
                 search id (for example 0.12)"
            ))
        })?;
        let job = storage.load_job(&id)?;
        let mut shown = job.to_json();
        // Earlier attempts of a job that a resume ran again, oldest first.
        let attempts = storage.load_attempts(&id)?;
        if let (false, Some(fields)) = (attempts.is_empty(), shown.as_object_mut()) {
            let attempts = attempts.iter().map(|a| a.to_json()).collect();
            fields.insert("attempts".into(), serde_json::Value::Array(attempts));
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&shown).unwrap_or_default()
        );
        return Ok(());
    }
    let searches = storage.load_all_search_ids()?;
    let search = match args.search_id {
        Some(id) if searches.contains(&id) => id,
        Some(id) => {
            return Err(Fail::Usage(format!(
                "--search-id: no search {id} in {shown}"
            )));
        }
        None => searches
            .iter()
            .max_by_key(|s| s.parse::<u64>().unwrap_or(0))
            .cloned()
            .ok_or_else(|| Fail::Usage(format!("{shown}: the storage holds no search")))?,
    };
    match (&args.output, args.format) {
        (Some(path), format) => {
            output::write_file(&*storage, &search, path, format, args.all_attempts)
        }
        (None, format) => export::write_search(
            &*storage,
            &search,
            format.unwrap_or(Format::Table),
            args.all_attempts,
            std::io::stdout().lock(),
        ),
    }
    .map_err(Fail::from)
}
