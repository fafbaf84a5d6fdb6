//! `wasmeval inspect MODULE [--json]`: what a run function imports and exports, which WASI
//! interfaces it asks for, and whether it compiles and can run.

use std::path::PathBuf;

use clap::Args;

use crate::cli::printable;
use crate::sandbox::inspect::{Inspection, Item, inspect as inspect_module};
use crate::{CacheDir, Policy, RunFunction};

/// Options of `wasmeval inspect`.
#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes:\n  0  the module can run\n  2  it cannot (the report says why), or it is not WebAssembly"
)]
pub struct InspectArgs {
    /// The run function: a `.wasm` binary or `.wat` text.
    pub module: PathBuf,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs `wasmeval inspect`; returns the exit code.
pub fn inspect(args: InspectArgs) -> i32 {
    let report = match inspect_module(
        &RunFunction::File(args.module),
        &Policy::default(),
        &CacheDir::Default,
    ) {
        Ok(r) => r,
        Err(e) => return crate::cli::report(e.into()),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializable")
        );
    } else {
        print!("{}", text(&report));
    }
    if report.runnable == Some(true) { 0 } else { 2 }
}

/// `1 memory`, `2 memories`, `3 tables`.
fn count(n: u32, thing: &str) -> String {
    match (n, thing.strip_suffix('y')) {
        (1, _) => format!("1 {thing}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {thing}s"),
    }
}

fn text(r: &Inspection) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let list = |items: &[Item]| {
        if items.is_empty() {
            return " none\n".to_string();
        }
        items
            .iter()
            .map(|i| format!("\n  {} ({})", printable(&i.name), printable(&i.kind)))
            .collect::<String>()
            + "\n"
    };
    let mut s = format!(
        "file      {}\nbinary    {}{}, {} bytes, sha256 {}\n",
        r.file.display(),
        r.binary,
        if r.text { " (from text)" } else { "" },
        r.size,
        r.sha256
    );
    s += &format!("kind      {}\n", r.kind.as_deref().unwrap_or("-"));
    if let Some(how) = &r.componentized {
        s += &format!("component {how}\n");
    }
    s += &format!(
        "wasi      {}\n",
        if r.wasi.is_empty() {
            "none".to_string()
        } else {
            printable(&r.wasi.join(", "))
        }
    );
    s += &format!("compiles  {}\n", yes(r.compiles));
    s += &format!(
        "runnable  {}\n",
        r.runnable.map_or("unknown (it does not compile)", yes)
    );
    if let Some(p) = &r.pool {
        s += &format!(
            "per job   {}, {}, {} (jobs wait for room in the pool)\n",
            count(p.core_instances, "core instance"),
            count(p.memories, "memory"),
            count(p.tables, "table")
        );
    }
    if let Some(e) = &r.error {
        s += &format!("error     {}\n", printable(e));
    }
    s += &format!("imports{}", list(&r.imports));
    s += &format!("exports{}", list(&r.exports));
    s
}
