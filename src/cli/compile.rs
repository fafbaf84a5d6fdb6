//! `wasmeval compile MODULE`: compile a run function into the cache ahead of time.

use std::path::PathBuf;

use clap::Args;

use crate::{CacheDir, LoadedModule, Policy, RunFunction};

/// Options of `wasmeval compile`.
#[derive(Args, Debug)]
pub struct CompileArgs {
    /// The run function: a `.wasm` binary or `.wat` text.
    pub module: PathBuf,
    /// Compile for fuel metering (as `run --fuel` needs).
    #[arg(long)]
    pub fuel: bool,
}

/// Runs `wasmeval compile`; returns the exit code.
pub fn compile(args: CompileArgs) -> i32 {
    let policy = Policy {
        fuel: args.fuel.then_some(u64::MAX),
        ..Policy::default()
    };
    let cache = CacheDir::Default;
    let Some(dir) = cache.path() else {
        eprintln!("error: no cache directory: set WASMEVAL_CACHE_DIR or HOME");
        return 2;
    };
    match LoadedModule::load(&RunFunction::File(args.module), &policy, &cache) {
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
