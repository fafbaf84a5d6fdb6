//! The command line: a thin layer that parses arguments and calls the library.

pub mod compile;
pub mod inspect;
pub mod interrupt;
pub mod loading;
pub mod output;
pub mod progress;
pub mod results;
pub mod run;
pub mod server;
pub mod units;
pub mod worker;

use clap::{Parser, Subcommand};

use crate::Error;

/// Evaluate run functions compiled to WebAssembly, one sandboxed instance per job.
#[derive(Parser, Debug)]
#[command(name = "wasmeval", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Exit codes, shown in `--help`.
pub const EXIT_CODES: &str = "Exit codes:\n  0    every job got an outcome (failed jobs are results; with --search-timeout, jobs cut off are CANCELLED)\n  1    the run could not proceed\n  2    usage or input error\n  130  interrupted by Ctrl-C (143 for SIGTERM)";

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Evaluate a run function over a file of configurations.
    Run(Box<run::RunArgs>),
    /// Compile a run function into the cache ahead of time.
    Compile(compile::CompileArgs),
    /// Show or export the jobs of a search kept in a storage file.
    Results(results::ResultsArgs),
    /// Show what a run function imports and exports, and whether it compiles and can run.
    Inspect(inspect::InspectArgs),
    /// Run the jobs of searches of the redis method (`run --method redis`) from a Redis
    /// server, on this machine, until SIGTERM or Ctrl-C.
    Worker(Box<worker::WorkerArgs>),
}

/// The exit code for a library error: 2 when what the user gave is wrong (the module, an
/// option, a search or job id, a storage file of another kind), 1 when the run could not
/// proceed (a worker, the engine, the storage, the disk). The one place that decides it.
pub fn exit_code(e: &Error) -> i32 {
    match e {
        Error::Read { .. }
        | Error::Module { .. }
        | Error::Option(_)
        | Error::UnknownSearch(_)
        | Error::UnknownJob(_)
        | Error::Resume(_)
        | Error::MaximumJobsSpawnReached(_)
        | Error::StorageFormat { .. }
        | Error::TooManyColumns { .. } => 2,
        Error::Mpi(e) => match e {
            crate::mpi::MpiError::Agent { .. } => 1,
            _ => 2,
        },
        Error::Redis(e) => match e {
            crate::redis::RedisError::Server { .. } | crate::redis::RedisError::Refused(_) => 1,
            _ => 2,
        },
        _ => 1,
    }
}

/// What ends a command early.
#[derive(Debug)]
pub enum Fail {
    /// A flag or its value is wrong: exit 2. The message names the flag.
    Usage(String),
    /// The library failed: the exit code comes from [`exit_code`].
    Library(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Library(e)
    }
}

/// Prints `fail` as an error and returns its exit code.
pub fn report(fail: Fail) -> i32 {
    match fail {
        Fail::Usage(message) => {
            error(&message);
            2
        }
        Fail::Library(e) => {
            error(&e);
            exit_code(&e)
        }
    }
}

/// Prints `error: MESSAGE` on standard error, control characters escaped: a message can quote
/// a module's import and export names, which the module's author chose.
pub fn error(message: impl std::fmt::Display) {
    eprintln!("error: {}", printable(&message.to_string()));
}

/// `text` with every control character (escape sequences, line breaks) written as a Rust
/// escape (`\u{1b}`, `\n`), so that nothing from a guest can move the cursor, recolour the
/// terminal or forge a line.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Parses the command line and runs it; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Compile(args) => compile::compile(args),
        Command::Results(args) => results::results(args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Worker(args) => worker::worker(*args),
    }
}
