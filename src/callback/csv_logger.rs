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
///   then renamed into place); a named pipe or device, which got the rows as they came, is
///   not written again.
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
        // A named pipe or device that received rows as they came cannot be rewritten: a
        // rewrite would send every row a second time.
        let streamed = self.open.as_ref().is_some_and(|(_, out)| {
            out.get_ref()
                .metadata()
                .is_ok_and(|m| !m.file_type().is_file())
        });
        if !self.jobs.is_empty() && !streamed {
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

    #[test]
    fn a_named_pipe_gets_each_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("results.csv");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        let mut log = CsvLogger::new(&fifo);
        log.on_gather(&[job(0, Objective::Value(1.0), &["a"])], &[]);
        log.on_gather(&[job(1, Objective::Value(2.0), &["a", "b"])], &[]);
        // Closing must not open the pipe again: that open would wait for a reader forever.
        let closer = std::thread::spawn(move || log.on_close());
        let t = std::time::Instant::now();
        while !closer.is_finished() && t.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let reopened = !closer.is_finished();
        if reopened {
            let _ = std::fs::read_to_string(&fifo); // lets the second write through
        }
        closer.join().unwrap();
        let text = reader.join().unwrap();
        assert!(!reopened, "close wrote the pipe a second time");
        assert_eq!(
            text,
            "p:x,objective,job_id,job_status,m:a\n0,1,0,DONE,1\n1,2,1,DONE,1\n"
        );
    }
}
