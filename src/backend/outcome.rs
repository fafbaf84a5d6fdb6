//! A finished run turned into the job it decided: the one place where a run function's output
//! meets the job model.

use serde_json::Map;

use crate::job::{Failure, FailureKind, HOST_KEYS_DROPPED, Job, JobId, JobStatus, is_host_key};
use crate::origin::Origin;
use crate::output::parse_result;
use crate::sandbox::RunOutput;

/// The outcome of a finished run, as a job holding only what the run decided: status,
/// objective or failure, `timestamp_start` and `timestamp_end` (on the search's time axis; none
/// for a job that never started),
/// the run function's metadata, fuel, the series and the log.
pub fn outcome(id: JobId, out: RunOutput, origin: &Origin) -> Job {
    let mut job = Job::new(id, Map::new());
    let secs = |t| origin.secs(t);
    if out.ran {
        job.metadata
            .insert("timestamp_start".into(), secs(out.started).into());
        job.metadata
            .insert("timestamp_end".into(), secs(out.ended).into());
    }
    let failure = match out.result.map(|text| parse_result(&text)) {
        Ok(Ok(normalized)) => {
            let mut dropped = false;
            for (k, v) in normalized.metadata {
                if is_host_key(&k) {
                    dropped = true;
                } else {
                    job.metadata.insert(k, v);
                }
            }
            if dropped {
                job.metadata.insert(HOST_KEYS_DROPPED.into(), true.into());
            }
            job.objective = Some(normalized.objective);
            job.extra_output = normalized.extra;
            None
        }
        Ok(Err(e)) => Some(Failure::new(FailureKind::BadOutput, e.to_string())),
        Err(failure) => Some(failure),
    };
    if let Some(fuel) = out.fuel_used {
        job.metadata.insert("fuel_used".into(), fuel.into());
    }
    job.status = JobStatus::Done;
    if let Some(failure) = failure {
        if failure.kind == FailureKind::Cancelled {
            job.status = JobStatus::Cancelled;
        }
        job.fail(failure);
    }
    if out.truncated {
        job.metadata.insert("truncated".into(), true.into());
    }
    job.intermediate = out.records;
    job.log = out.log;
    job
}
