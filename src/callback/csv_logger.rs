//! A callback that writes `results.csv` as jobs are gathered, as DeepHyper's
//! `CSVLoggerCallback` does.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::callback::Callback;
use crate::export::{self, Columns};
use crate::job::Job;

/// Writes DeepHyper's `results.csv` while the search runs:
/// - rows are held back until the first job with a numeric objective, whose gather fixes the
///   columns (as DeepHyper's header is fixed by its first successful row);
/// - later rows are appended under those columns (new metadata keys are left out);
/// - at `close`, the whole file is rewritten with every column (written to a temporary file,
///   then renamed into place).
///
/// A write error is kept and returned by [`CsvLogger::error`]; the search goes on.
pub struct CsvLogger {
    path: PathBuf,
    jobs: Vec<Job>,
    held: usize,
    open: Option<(Columns, BufWriter<File>)>,
    error: Option<String>,
}

impl CsvLogger {
    /// A logger writing to `path` (created or replaced at the first write).
    pub fn new(path: impl AsRef<Path>) -> CsvLogger {
        CsvLogger {
            path: path.as_ref().to_path_buf(),
            jobs: Vec::new(),
            held: 0,
            open: None,
            error: None,
        }
    }

    /// The last write error, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn append(&mut self) -> std::io::Result<()> {
        if self.open.is_none() {
            let pending = &self.jobs[self.jobs.len() - self.held..];
            if !pending
                .iter()
                .any(|j| j.objective.is_some() && !j.is_failure())
            {
                return Ok(());
            }
            let columns = Columns::of(pending);
            let file = crate::safe_write::create(&self.path)?;
            let mut out = BufWriter::new(file);
            columns.write_header(&mut out)?;
            self.open = Some((columns, out));
        }
        let (columns, out) = self.open.as_mut().expect("opened above");
        for job in &self.jobs[self.jobs.len() - self.held..] {
            columns.write_job(job, out)?;
        }
        self.held = 0;
        out.flush()
    }

    fn rewrite(&mut self) -> std::io::Result<()> {
        self.open = None;
        crate::safe_write::replace(&self.path, 0o666, |out| export::write_csv(&self.jobs, out))
    }

    fn keep(&mut self, result: std::io::Result<()>) {
        if let Err(e) = result {
            self.error = Some(format!("{}: {e}", self.path.display()));
        }
    }
}

impl Callback for CsvLogger {
    fn on_gather(&mut self, local: &[Job], other: &[Job]) {
        self.jobs.extend(local.iter().chain(other).cloned());
        self.held += local.len() + other.len();
        let result = self.append();
        self.keep(result);
    }

    fn on_close(&mut self) {
        if !self.jobs.is_empty() {
            let result = self.rewrite();
            self.keep(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobId, JobStatus};
    use crate::output::Objective;
    use serde_json::json;

    fn job(n: u64, objective: Objective, meta: &[&str]) -> Job {
        let mut j = Job::new(
            JobId::new("0", n),
            json!({"x": n}).as_object().unwrap().clone(),
        );
        j.status = JobStatus::Done;
        j.objective = Some(objective);
        for k in meta {
            j.metadata.insert((*k).into(), json!(1));
        }
        j
    }

    #[test]
    fn header_waits_for_a_success_then_rows_append_and_close_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let mut log = CsvLogger::new(&path);
        log.on_gather(&[job(0, Objective::Failure("F_trap".into()), &["a"])], &[]);
        assert!(!path.exists(), "held back until a numeric objective");
        log.on_gather(&[job(1, Objective::Value(2.5), &["a"])], &[]);
        log.on_gather(&[job(2, Objective::Value(3.0), &["a", "b"])], &[]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "p:x,objective,job_id,job_status,m:a\n0,F_trap,0,DONE,1\n1,2.5,1,DONE,1\n2,3,2,DONE,1\n"
        );
        log.on_close();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "p:x,objective,job_id,job_status,m:a,m:b"
        );
        assert_eq!(text.lines().count(), 4);
        assert!(log.error().is_none());
    }
}
