//! Export of jobs: DeepHyper's `results.csv` columns, and JSON Lines.
//!
//! CSV columns, in DeepHyper's order: `p:<name>` for each configuration key (first-seen
//! order), `objective` (or `objective_0..k-1` for k objectives), `job_id` (the integer part),
//! `job_status`, then `m:<key>` for each metadata key not starting with `_`.

use std::io::Write;

use serde_json::Value;

use crate::job::Job;
use crate::output::Objective;

/// The columns of a `results.csv`, fixed from a set of jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    params: Vec<String>,
    objectives: usize,
    metadata: Vec<String>,
}

impl Columns {
    /// The columns that show every configuration key and metadata key of `jobs` (first-seen
    /// order), with as many objective columns as the first multi-objective result has.
    pub fn of(jobs: &[Job]) -> Columns {
        let params = union(jobs.iter().map(|j| j.config.keys()));
        let metadata = union(
            jobs.iter()
                .map(|j| j.metadata.keys().filter(|k| !k.starts_with('_'))),
        );
        let objectives = jobs
            .iter()
            .find_map(|j| match &j.objective {
                Some(Objective::Multi(v)) => Some(v.len()),
                _ => None,
            })
            .unwrap_or(1);
        Columns {
            params: params.into_iter().cloned().collect(),
            objectives,
            metadata: metadata.into_iter().cloned().collect(),
        }
    }

    /// Writes the header line.
    pub fn write_header(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut header: Vec<String> = self.params.iter().map(|p| format!("p:{p}")).collect();
        if self.objectives == 1 {
            header.push("objective".into());
        } else {
            header.extend((0..self.objectives).map(|i| format!("objective_{i}")));
        }
        header.extend(["job_id".into(), "job_status".into()]);
        header.extend(self.metadata.iter().map(|m| format!("m:{m}")));
        write_row(out, header)
    }

    /// Writes one job's line; values of keys outside the columns are left out.
    pub fn write_job(&self, job: &Job, out: &mut impl Write) -> std::io::Result<()> {
        let mut row: Vec<String> = self
            .params
            .iter()
            .map(|p| cell(job.config.get(p)))
            .collect();
        row.extend(objective_cells(job.objective.as_ref(), self.objectives));
        row.push(job.id.number().to_string());
        row.push(job.status.name().into());
        row.extend(self.metadata.iter().map(|m| cell(job.metadata.get(m))));
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
        serde_json::to_writer(&mut out, &job.to_json())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn union<'a>(keys: impl Iterator<Item = impl Iterator<Item = &'a String>>) -> Vec<&'a String> {
    let mut seen = std::collections::HashSet::new();
    let mut all = Vec::new();
    for key in keys.flatten() {
        if seen.insert(key) {
            all.push(key);
        }
    }
    all
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
    if v.is_nan() {
        "nan".into()
    } else {
        v.to_string()
    }
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
    let line: Vec<String> = cells
        .into_iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c
            }
        })
        .collect();
    writeln!(out, "{}", line.join(","))
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
