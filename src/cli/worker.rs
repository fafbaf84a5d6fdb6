//! `wasmeval worker redis://host:port`: run the jobs of the redis method's searches.

use std::time::Duration;

use clap::Args;

use crate::DirGrant;
use crate::cli::run::{parse_dir, parse_env};
use crate::cli::server::ServerArgs;
use crate::cli::units;
use crate::redis::WorkerOptions;
use crate::sandbox::Policy;

/// Options of `wasmeval worker`.
#[derive(Args, Debug)]
#[command(after_help = crate::cli::EXIT_CODES)]
pub struct WorkerArgs {
    /// The Redis server the evaluators use (their --storage):
    /// redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME].
    pub url: String,
    /// Serve only this search (repeat for several); by default every search of the server.
    #[arg(long = "search", value_name = "ID")]
    pub searches: Vec<String>,
    /// Worker processes (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// The most memory a search's jobs may ask (default 512MiB): a search asking more is
    /// refused, never clamped.
    #[arg(long, value_parser = units::memory)]
    pub memory: Option<usize>,
    /// The longest job timeout a search may have; a search with none or a longer one is
    /// refused (default: any).
    #[arg(long, value_parser = units::duration)]
    pub timeout: Option<Duration>,
    /// The largest fuel budget a search may have; an unmetered search is refused (default:
    /// any).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// The largest write quota a search may have (default 64MiB).
    #[arg(long, value_parser = units::size)]
    pub dir_quota: Option<usize>,
    /// CPU time compiling a module may use here (default 60s).
    #[arg(long, value_parser = units::duration)]
    pub compile_timeout: Option<Duration>,
    /// A directory a search may grant its jobs, `HOST[::GUEST][:rw]` (needs --allow-module).
    #[arg(long = "dir", value_parser = parse_dir)]
    pub dirs: Vec<DirGrant>,
    /// An environment variable a search may grant, KEY=VALUE (needs --allow-module).
    #[arg(long = "env", value_parser = parse_env)]
    pub envs: Vec<(String, String)>,
    /// Run only the module of this sha256 (repeat for several); required with --dir or --env.
    #[arg(long = "allow-module", value_name = "SHA256")]
    pub allow_modules: Vec<String>,
    /// How to reach the server.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs `wasmeval worker`; returns the exit code.
pub fn worker(args: WorkerArgs) -> i32 {
    let mut ceilings = Policy::default();
    if let Some(m) = args.memory {
        ceilings.memory = m;
    }
    ceilings.job_timeout = args.timeout;
    ceilings.fuel = args.fuel;
    if let Some(q) = args.dir_quota {
        ceilings.write_quota = q as u64;
    }
    if let Some(t) = args.compile_timeout {
        ceilings.compile_timeout = t;
    }
    ceilings.dirs = args.dirs;
    ceilings.env = args.envs;
    let options = WorkerOptions {
        url: args.url,
        redis: args.server.options(),
        searches: args.searches,
        workers: args.workers,
        ceilings,
        allow_modules: args.allow_modules,
    };
    match crate::redis::serve(options) {
        Ok(()) => 0,
        Err(e) => crate::cli::report(e.into()),
    }
}
