//! `wasmeval worker redis://…`: a node agent that serves the redis method's searches from a
//! Redis server, on any machine. Its limits are ceilings: a search whose policy asks for more
//! (memory, time, fuel, output, grants) is refused with a logged reason, never clamped, so
//! one search's jobs end the same on every worker.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::link::RedisLink;
use super::search::Offer;
use crate::error::{RedisError, Result};
use crate::sandbox::Policy;
use crate::storage::RedisOptions;

/// What a worker serves and under which ceilings.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The server: `redis[s]://[[user]:password@]host[:port][/db][?prefix=NAME]`.
    pub url: String,
    /// How to reach it (password file, TLS CA, insecure).
    pub redis: RedisOptions,
    /// The searches to serve; empty: every search.
    pub searches: Vec<String>,
    /// Worker processes (default: the number of cores).
    pub workers: Option<usize>,
    /// The ceilings: the most a search's policy may ask (memory, timeout, fuel, caps, write
    /// quota), and the grants it may have (`dirs`, `env`); its compile limits are the ones
    /// modules are compiled under here.
    pub ceilings: Policy,
    /// The modules (sha256) it may run; required when the ceilings grant a directory or an
    /// environment variable.
    pub allow_modules: Vec<String>,
}

/// Which searches a worker takes.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    searches: Vec<String>,
    ceilings: Policy,
    allow_modules: Vec<String>,
}

impl Admission {
    /// True for a search this worker was told to serve (every one by default).
    pub fn wants(&self, sid: &str) -> bool {
        self.searches.is_empty() || self.searches.iter().any(|s| s == sid)
    }

    /// The searches it was told to serve.
    pub fn searches(&self) -> &[String] {
        &self.searches
    }

    /// The policy the search's jobs run under here, or why it is refused.
    pub fn admit(&self, offer: &Offer) -> std::result::Result<Policy, String> {
        if !self.allow_modules.is_empty() && !self.allow_modules.contains(&offer.sha256) {
            return Err(format!(
                "its module {} ({}) is not one of --allow-module",
                offer.sha256, offer.name
            ));
        }
        let (c, p) = (&self.ceilings, &offer.policy);
        let over = |what: &str, asked: String, most: String, flag: &str| {
            Err(format!(
                "its {what} ({asked}) is above this worker's {most} ({flag})"
            ))
        };
        for (what, asked, most, flag) in [
            ("memory limit", p.memory, c.memory, "--memory"),
            (
                "table limit",
                p.table_elements,
                c.table_elements,
                "the default",
            ),
            (
                "stack limit",
                p.max_wasm_stack,
                c.max_wasm_stack,
                "the default",
            ),
            ("stdout cap", p.stdout_cap, c.stdout_cap, "the default"),
            ("stderr cap", p.stderr_cap, c.stderr_cap, "the default"),
            ("log cap", p.log_cap, c.log_cap, "the default"),
            ("result cap", p.result_cap, c.result_cap, "the default"),
            ("record cap", p.max_records, c.max_records, "the default"),
        ] {
            if asked > most {
                return over(what, asked.to_string(), most.to_string(), flag);
            }
        }
        if p.write_quota > c.write_quota {
            return over(
                "write quota",
                p.write_quota.to_string(),
                c.write_quota.to_string(),
                "--dir-quota",
            );
        }
        if let Some(most) = c.job_timeout
            && p.job_timeout.is_none_or(|t| t > most)
        {
            let asked = p.job_timeout.map_or("none".into(), |t| format!("{t:?}"));
            return over("job timeout", asked, format!("{most:?}"), "--timeout");
        }
        if let Some(most) = c.fuel
            && p.fuel.is_none_or(|f| f > most)
        {
            let asked = p.fuel.map_or("unmetered".into(), |f| f.to_string());
            return over("fuel budget", asked, most.to_string(), "--fuel");
        }
        for dir in &p.dirs {
            let granted = c.dirs.iter().any(|g| {
                g.host == dir.host && g.guest == dir.guest && (g.writable || !dir.writable)
            });
            if !granted {
                return Err(format!(
                    "it grants the directory {} as {}{}, which this worker does not (--dir)",
                    dir.host.display(),
                    dir.guest,
                    if dir.writable { " read-write" } else { "" }
                ));
            }
        }
        for (key, value) in &p.env {
            if !c.env.iter().any(|(k, v)| k == key && v == value) {
                return Err(format!(
                    "it grants the environment variable {key} with a value this worker does not \
                     (--env)"
                ));
            }
        }
        let mut policy = p.clone();
        policy.compile_timeout = c.compile_timeout;
        policy.compile_memory = c.compile_memory;
        Ok(policy)
    }
}

/// Serves searches from the server of `options.url` until SIGTERM or SIGINT: jobs running
/// then are stopped and put back on their stream for other workers. Returns an error for
/// options it cannot run with, an unreachable server, or when every search it was told to
/// serve refused it.
pub fn serve(options: WorkerOptions) -> Result<()> {
    let grants = !options.ceilings.dirs.is_empty() || !options.ceilings.env.is_empty();
    if grants && options.allow_modules.is_empty() {
        return Err(RedisError::GrantsWithoutAllowList.into());
    }
    if let Some(bad) = options
        .allow_modules
        .iter()
        .find(|m| !crate::storage::redis::blob::valid_sha256(m))
    {
        return Err(RedisError::Url {
            url: "--allow-module".into(),
            reason: format!("`{bad}` is not a sha256 (64 hex digits)"),
        }
        .into());
    }
    options.ceilings.check()?;
    let storage = crate::storage::open_with(&options.url, &options.redis)?;
    if storage.as_redis().is_none() {
        return Err(RedisError::Url {
            url: options.url.clone(),
            reason: "a worker needs a redis:// or rediss:// URL".into(),
        }
        .into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let workers = options
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let admission = Admission {
        searches: options.searches,
        ceilings: options.ceilings,
        allow_modules: options.allow_modules,
    };
    let mut link = RedisLink::new(storage, admission, stop.clone());
    crate::agent::serve(&mut link, workers, &stop);
    match link.failure {
        Some(why) => Err(RedisError::Refused(why).into()),
        None => Ok(()),
    }
}
