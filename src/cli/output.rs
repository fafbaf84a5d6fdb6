//! Writing jobs for people and programs: a table on stdout, or a `.csv` / `.jsonl` file.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::{Job, export};

/// The format of a results file, told from its extension: `.jsonl` (or `.json`) for JSON
/// Lines, anything else for DeepHyper's CSV.
pub fn is_jsonl(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl") | Some("json")
    )
}

/// Writes one line per job to stdout: id, status, objective, configuration.
pub fn write_table(jobs: &[Job]) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for job in jobs {
        let objective = job
            .objective
            .as_ref()
            .map_or(Value::Null, crate::Objective::to_json);
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}",
            job.id,
            job.status.name(),
            objective,
            Value::Object(job.config.clone())
        );
    }
}

/// Writes `jobs` to `output` (CSV or JSON Lines by extension), or as a table on stdout unless
/// `quiet`.
pub fn write_results(jobs: &[Job], output: Option<&Path>, quiet: bool) -> Result<(), String> {
    let Some(path) = output else {
        if !quiet {
            write_table(jobs);
        }
        return Ok(());
    };
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let out = std::io::BufWriter::new(file);
    if is_jsonl(path) {
        export::write_jsonl(jobs, out)
    } else {
        export::write_csv(jobs, out)
    }
    .map_err(|e| format!("{}: {e}", path.display()))
}
