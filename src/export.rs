//! Export of jobs: DeepHyper's `results.csv` columns, and JSON Lines.
//!
//! CSV columns, in DeepHyper's order: `p:<name>` for each configuration key (first-seen
//! order), `objective` (or `objective_0..k-1` for k objectives), `job_id` (the integer part),
//! `job_status`, then `m:<key>` for each metadata key not starting with `_`.
//!
//! Cells are made safe for line-based tools and spreadsheets (see [`Columns::write_job`]): no
//! cell holds a raw line break (`\n` and `\r` are written as those two characters), and a text
//! cell that a spreadsheet would run as a formula is prefixed with `'`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::job::Job;
use crate::output::Objective;
use crate::storage::Storage;

/// The most columns a `results.csv` may have; a search with more (a run function returning
/// ever new metadata keys, say) is exported as JSON Lines instead.
pub const MAX_COLUMNS: usize = 10_000;

/// The columns of a `results.csv`, fixed from a set of jobs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Columns {
    params: Names,
    multi: Option<usize>,
    metadata: Names,
}

/// Column names in first-seen order, looked up in constant time.
#[derive(Debug, Clone, PartialEq, Default)]
struct Names {
    order: Vec<String>,
    seen: HashSet<String>,
}

impl Names {
    /// Appends the keys not seen yet, up to just past [`MAX_COLUMNS`] (enough to refuse).
    fn extend<'a>(&mut self, keys: impl Iterator<Item = &'a String>) {
        for key in keys {
            if self.order.len() > MAX_COLUMNS {
                return;
            }
            if !self.seen.contains(key) {
                self.seen.insert(key.clone());
                self.order.push(key.clone());
            }
        }
    }
}

impl Columns {
    /// The columns that show every configuration key and metadata key of `jobs` (first-seen
    /// order), with as many objective columns as the longest multi-objective result has.
    pub fn of(jobs: &[Job]) -> Columns {
        let mut columns = Columns::default();
        jobs.iter().for_each(|j| columns.add(j));
        columns
    }

    /// Widens the columns to show `job` too.
    pub fn add(&mut self, job: &Job) {
        self.params.extend(job.config.keys());
        self.metadata
            .extend(job.metadata.keys().filter(|k| !k.starts_with('_')));
        if let Some(Objective::Multi(v)) = &job.objective {
            self.multi = Some(self.multi.unwrap_or(0).max(v.len()));
        }
    }

    fn objectives(&self) -> usize {
        self.multi.unwrap_or(1)
    }

    /// An error when there are more than [`MAX_COLUMNS`] columns.
    pub fn check(&self) -> Result<()> {
        let count = self.params.order.len() + self.objectives() + 2 + self.metadata.order.len();
        match count > MAX_COLUMNS {
            true => Err(Error::TooManyColumns {
                columns: count,
                max: MAX_COLUMNS,
            }),
            false => Ok(()),
        }
    }

    /// Writes the header line; an error when there are more than [`MAX_COLUMNS`] columns.
    pub fn write_header(&self, out: &mut impl Write) -> std::io::Result<()> {
        self.check().map_err(std::io::Error::other)?;
        let mut header: Vec<String> = self.params.order.iter().map(|p| format!("p:{p}")).collect();
        match self.objectives() {
            1 => header.push("objective".into()),
            k => header.extend((0..k).map(|i| format!("objective_{i}"))),
        }
        header.extend(["job_id".into(), "job_status".into()]);
        header.extend(self.metadata.order.iter().map(|m| format!("m:{m}")));
        write_row(out, header)
    }

    /// Writes one job's line; values of keys outside the columns are left out.
    pub fn write_job(&self, job: &Job, out: &mut impl Write) -> std::io::Result<()> {
        let mut row: Vec<String> = self
            .params
            .order
            .iter()
            .map(|p| cell(job.config.get(p)))
            .collect();
        row.extend(objective_cells(job.objective.as_ref(), self.objectives()));
        row.push(job.id.number().to_string());
        row.push(job.status.name().into());
        row.extend(
            self.metadata
                .order
                .iter()
                .map(|m| cell(job.metadata.get(m))),
        );
        write_row(out, row)
    }
}

/// Writes `jobs` as DeepHyper's `results.csv`.
pub fn write_csv(jobs: &[Job], mut out: impl Write) -> std::io::Result<()> {
    let columns = Columns::of(jobs);
    columns.write_header(&mut out)?;
    for job in jobs {
        columns.write_job(job, &mut out)?;
    }
    out.flush()
}

/// Writes `jobs` as JSON Lines: one object per job, with its log.
pub fn write_jsonl(jobs: &[Job], mut out: impl Write) -> std::io::Result<()> {
    for job in jobs {
        write_jsonl_line(job, &mut out)?;
    }
    out.flush()
}

fn write_jsonl_line(job: &Job, out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &job.to_json())?;
    out.write_all(b"\n")
}

/// Writes one line of the table: id, status, objective, configuration, tab-separated.
pub fn write_table_row(job: &Job, out: &mut impl Write) -> std::io::Result<()> {
    let objective = job
        .objective
        .as_ref()
        .map_or(Value::Null, Objective::to_json);
    writeln!(
        out,
        "{}\t{}\t{}\t{}",
        job.id,
        job.status.name(),
        objective,
        Value::Object(job.config.clone())
    )
}

/// The formats of an export (also the values of `wasmeval results --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// DeepHyper's results.csv columns.
    Csv,
    /// One JSON object per job, with its log.
    Jsonl,
    /// One line per job: id, status, objective, configuration.
    Table,
}

impl Format {
    /// The format of a results file, told from its extension: `.csv` for CSV, `.jsonl` (or
    /// `.json`) for JSON Lines; `None` for any other extension (the caller must be told).
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Some(Format::Csv),
            Some("jsonl") | Some("json") => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// Writes every job of a search, in creation order, reading the storage row by row (twice
/// for CSV: once for the columns, once for the rows), so a search of any size is exported
/// with bounded memory.
///
/// One row per job: its final outcome. With `attempts`, a job that a resume ran again has its
/// earlier attempts (see [`Storage::load_search_attempts`]) as rows before it, and every row has an
/// `attempt` metadata key (1 for the first).
pub fn write_search(
    storage: &dyn Storage,
    search_id: &str,
    format: Format,
    attempts: bool,
    mut out: impl Write,
) -> Result<()> {
    // Read before the jobs: a storage may not be read from inside `for_each_job`.
    // The CSV format reads the jobs twice (columns, then rows): the attempts stay borrowed.
    let earlier = match attempts {
        true => storage.load_search_attempts(search_id)?,
        false => HashMap::new(),
    };
    let each = |f: &mut dyn FnMut(&Job) -> std::io::Result<()>| {
        storage.for_each_job(search_id, &mut |job| match attempts {
            true => {
                let earlier = earlier.get(&job.id.number()).map_or(&[][..], Vec::as_slice);
                Ok(with_attempts(job, earlier, f)?)
            }
            false => Ok(f(&job)?),
        })
    };
    match format {
        Format::Jsonl => each(&mut |job| write_jsonl_line(job, &mut out))?,
        Format::Table => each(&mut |job| write_table_row(job, &mut out))?,
        Format::Csv => {
            let mut columns = Columns::default();
            each(&mut |job| {
                columns.add(job);
                Ok(())
            })?;
            columns.check()?;
            columns.write_header(&mut out)?;
            each(&mut |job| columns.write_job(job, &mut out))?;
        }
    }
    Ok(out.flush()?)
}

/// Calls `f` with each of `earlier` (the earlier attempts of `job`), then with `job`, each
/// numbered in its `attempt` metadata key.
fn with_attempts(
    mut job: Job,
    earlier: &[Job],
    f: &mut dyn FnMut(&Job) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for (k, attempt) in earlier.iter().enumerate() {
        let mut attempt = attempt.clone();
        attempt.config = job.config.clone();
        attempt.metadata.insert("attempt".into(), (k + 1).into());
        f(&attempt)?;
    }
    job.metadata
        .insert("attempt".into(), (earlier.len() + 1).into());
    f(&job)
}

fn objective_cells(objective: Option<&Objective>, k: usize) -> Vec<String> {
    match objective {
        None => vec![String::new(); k],
        Some(Objective::Value(v)) => vec![number(*v); k],
        Some(Objective::Failure(s)) => vec![s.clone(); k],
        Some(Objective::Multi(vs)) => (0..k)
            .map(|i| vs.get(i).map_or(String::new(), |v| number(*v)))
            .collect(),
    }
}

fn number(v: f64) -> String {
    crate::float::shortest(v)
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "True" } else { "False" }.into(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    }
}

fn write_row(out: &mut impl Write, cells: Vec<String>) -> std::io::Result<()> {
    let line: Vec<String> = cells.into_iter().map(escape).collect();
    writeln!(out, "{}", line.join(","))
}

/// One CSV cell, made safe to open: a line break becomes the two characters `\n` (or `\r`),
/// so that no cell spans lines; a text that a spreadsheet would run as a formula (starting
/// with `=`, `+`, `-`, `@` or a tab, and not a number) gets a leading `'`; then RFC 4180
/// quoting.
fn escape(mut c: String) -> String {
    if c.contains(['\n', '\r']) {
        c = c.replace('\n', "\\n").replace('\r', "\\r");
    }
    if c.starts_with(['=', '+', '-', '@', '\t']) && c.parse::<f64>().is_err() {
        c.insert(0, '\'');
    }
    if c.contains([',', '"']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobId, JobStatus};
    use serde_json::json;

    #[test]
    fn deephyper_columns_in_order() {
        let mut a = Job::new(
            JobId::new("0", 0),
            json!({"x": 1.5, "name": "a,b"})
                .as_object()
                .unwrap()
                .clone(),
        );
        a.status = JobStatus::Done;
        a.objective = Some(Objective::Value(2.0));
        a.metadata.insert("timestamp_submit".into(), json!(0.1));
        a.metadata.insert("_hidden".into(), json!(1));
        a.metadata.insert("timestamp_gather".into(), json!(0.2));
        let mut b = Job::new(
            JobId::new("0", 1),
            json!({"x": 2}).as_object().unwrap().clone(),
        );
        b.status = JobStatus::Cancelled;
        b.objective = Some(Objective::Failure("F_CANCELLED".into()));
        let mut out = Vec::new();
        write_csv(&[a, b], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "p:x,p:name,objective,job_id,job_status,m:timestamp_submit,m:timestamp_gather"
        );
        assert_eq!(lines[1], "1.5,\"a,b\",2,0,DONE,0.1,0.2");
        assert_eq!(lines[2], "2,,F_CANCELLED,1,CANCELLED,,");
    }

    #[test]
    fn cells_hold_no_line_break_and_no_formula() {
        let mut a = Job::new(
            JobId::new("0", 0),
            json!({"cmd": "=HYPERLINK(\"x\")", "n": -3, "s": "-2.5", "t": "@SUM", "u": "a\nb,c"})
                .as_object()
                .unwrap()
                .clone(),
        );
        a.objective = Some(Objective::Value(-1.5));
        let mut out = Vec::new();
        write_csv(&[a], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "\"'=HYPERLINK(\"\"x\"\")\",-3,-2.5,'@SUM,\"a\\nb,c\",-1.5,0,READY"
        );
    }

    #[test]
    fn multi_objective_columns() {
        let mut a = Job::new(JobId::new("0", 0), Default::default());
        a.objective = Some(Objective::Multi(vec![1.0, 2.0]));
        let mut b = Job::new(JobId::new("0", 1), Default::default());
        b.objective = Some(Objective::Failure("F_trap".into()));
        let mut out = Vec::new();
        write_csv(&[a, b], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "objective_0,objective_1,job_id,job_status\n1,2,0,READY\nF_trap,F_trap,1,READY\n"
        );
    }
}
