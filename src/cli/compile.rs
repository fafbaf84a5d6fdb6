//! `wasmeval compile MODULE`: compile a run function into the cache ahead of time.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::progress::Mode;
use crate::{CacheDir, LoadedModule, Policy, RunFunction};

/// Options of `wasmeval compile`.
#[derive(Args, Debug)]
pub struct CompileArgs {
    /// The run function: a `.wasm` binary or `.wat` text.
    pub module: PathBuf,
    /// Compile for fuel metering (as `run --fuel` needs).
    #[arg(long)]
    pub fuel: bool,
    /// CPU time compiling may use, like 2m (default 60s; whole seconds); the wall clock stops
    /// it at 5 times that.
    #[arg(long, value_parser = crate::cli::units::duration)]
    pub compile_timeout: Option<Duration>,
}

/// Runs `wasmeval compile`; returns the exit code.
pub fn compile(args: CompileArgs) -> i32 {
    let mut policy = Policy {
        fuel: args.fuel.then_some(u64::MAX),
        ..Policy::default()
    };
    if let Some(t) = args.compile_timeout {
        policy.compile_timeout = t;
    }
    let cache = CacheDir::Default;
    let Some(dir) = cache.path() else {
        eprintln!("error: no cache directory: set WASMEVAL_CACHE_DIR or HOME");
        return 2;
    };
    let module = RunFunction::File(args.module.clone());
    let loaded = crate::cli::loading::showing(&args.module, Mode::Auto, false, || {
        LoadedModule::load(&module, &policy, &cache)
    });
    match loaded {
        Ok(m) => {
            println!(
                "{}: {}, sha256 {}, compiled into {}",
                m.name.display(),
                m.kind,
                m.sha256,
                dir.display()
            );
            0
        }
        Err(e) => crate::cli::report(e.into()),
    }
}
