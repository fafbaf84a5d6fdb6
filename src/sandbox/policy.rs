//! The sandbox policy: what a job may use, and for how long.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One MiB.
pub const MIB: usize = 1 << 20;

/// The largest memory limit: a wasm32 linear memory holds at most 4 GiB.
pub const MAX_MEMORY: usize = 4 << 30;

/// Parses a size in bytes (the command line's and the Python package's): a number with an optional unit (`KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB`).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: usize = num
        .parse()
        .map_err(|_| format!("invalid size `{text}`: expected a number and a unit, like 64MiB"))?;
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "invalid size `{text}`: unknown unit `{other}` (use KiB, MiB or GiB)"
            ));
        }
    };
    value
        .checked_mul(factor)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("invalid size `{text}`"))
}

/// A host directory made visible to guests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// The path the guest sees (defaults to the host path).
    pub guest: String,
    /// Whether the guest may write (read-only otherwise).
    pub writable: bool,
}

impl DirGrant {
    /// A read-only grant of `host`, seen by the guest at `guest`.
    pub fn read_only(host: impl Into<PathBuf>, guest: impl Into<String>) -> DirGrant {
        DirGrant {
            host: host.into(),
            guest: guest.into(),
            writable: false,
        }
    }

    /// True when the file `path` (which need not exist) lies inside this grant's host
    /// directory, symbolic links resolved: a guest could replace it when the grant is
    /// writable.
    pub fn holds(&self, path: &Path) -> bool {
        let Ok(root) = self.host.canonicalize() else {
            return false;
        };
        resolved(path).is_some_and(|p| p.starts_with(&root))
    }

    /// A read-write grant of `host`, seen by the guest at `guest`.
    pub fn read_write(host: impl Into<PathBuf>, guest: impl Into<String>) -> DirGrant {
        DirGrant {
            writable: true,
            ..DirGrant::read_only(host, guest)
        }
    }
}

/// Per-job limits and grants, fixed for an evaluator. Deny by default: no directories, no
/// environment variables, no arguments, no sockets, stdin closed (commands get the
/// configuration on stdin). The defaults are finite except the wall-clock limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Wall-clock limit of one job; `None` (the default) means no limit. (The evaluator's
    /// own limit, DeepHyper's `timeout`, is [`crate::Evaluator::set_timeout`].)
    #[serde(rename = "timeout")]
    pub job_timeout: Option<Duration>,
    /// Maximum linear memory of one job, in bytes (default 512 MiB).
    pub memory: usize,
    /// Maximum table elements of one job (default 1,000,000).
    pub table_elements: usize,
    /// Fuel budget of one job (a count of wasm instructions); `None` (default) means unmetered.
    pub fuel: Option<u64>,
    /// Maximum wasm stack, in bytes (default 512 KiB).
    pub max_wasm_stack: usize,
    /// Cap of captured standard output (default 1 MiB; beyond it, truncated and flagged).
    pub stdout_cap: usize,
    /// Cap of captured standard error (default 1 MiB; beyond it, truncated and flagged).
    pub stderr_cap: usize,
    /// Cap of the job's `log` (default 1 MiB; beyond it, truncated and flagged).
    pub log_cap: usize,
    /// Maximum size of the result text (default 1 MiB; beyond it, the job fails).
    pub result_cap: usize,
    /// Maximum number of `record` calls (default 10,000; beyond it, the job fails).
    pub max_records: usize,
    /// Directories granted to the guest.
    pub dirs: Vec<DirGrant>,
    /// Environment variables granted to the guest.
    pub env: Vec<(String, String)>,
    /// Bytes one job may write through its read-write grants (default 64 MiB); past it, the
    /// job ends `F_quota`. Counted by the host on every write, wherever in the files.
    pub write_quota: u64,
    /// CPU time compiling the module may use (default 60 s), counted in whole seconds
    /// (rounded up: `RLIMIT_CPU`), with a wall-clock backstop of
    /// [`crate::sandbox::compile::WALL_FACTOR`] times it; a slower module is refused. It does
    /// not take part in the policy a resumed search must match.
    pub compile_timeout: Duration,
    /// Address-space limit of the compiling process, in bytes (default 4 GiB); a module that
    /// needs more to compile is refused. It does not take part in the policy a resumed search
    /// must match.
    pub compile_memory: usize,
}

/// Where `path` is, or will be once created: its longest existing prefix resolved (links
/// followed), the rest appended. None for a path that cannot be placed (`..` past what
/// exists).
fn resolved(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let mut rest = Vec::new();
    let mut at = absolute.as_path();
    loop {
        if let Ok(real) = at.canonicalize() {
            return Some(rest.iter().rev().fold(real, |p, part| p.join(part)));
        }
        rest.push(at.file_name()?);
        at = at.parent()?;
    }
}

impl Policy {
    /// Refuses a policy no job can run under: a granted directory that is not one, a memory
    /// limit of 0 or past [`MAX_MEMORY`].
    pub fn check(&self) -> Result<()> {
        for dir in &self.dirs {
            if !dir.host.is_dir() {
                return Err(Error::Option(format!(
                    "the granted directory {} does not exist or is not a directory",
                    dir.host.display()
                )));
            }
        }
        if self.memory == 0 {
            return Err(Error::Option(
                "the memory limit must be more than 0 bytes".into(),
            ));
        }
        if self.memory > MAX_MEMORY {
            return Err(Error::Option(format!(
                "the memory limit of {} bytes is more than 4 GiB, the most a wasm32 memory (and the \
                 instance pool) can hold",
                self.memory
            )));
        }
        Ok(())
    }

    /// Refuses a compile cache inside a read-write grant: a guest could plant compiled code
    /// there, which the host would then load and run natively.
    pub fn check_cache(&self, cache: &Path) -> Result<()> {
        match self.dirs.iter().find(|g| g.writable && g.holds(cache)) {
            Some(grant) => Err(Error::Option(format!(
                "the compile cache {} is inside the read-write grant {}: a guest could plant \
                 compiled code there; grant another directory or move the cache \
                 (WASMEVAL_CACHE_DIR)",
                cache.display(),
                grant.host.display()
            ))),
            None => Ok(()),
        }
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            job_timeout: None,
            memory: 512 * MIB,
            table_elements: 1_000_000,
            fuel: None,
            max_wasm_stack: 512 << 10,
            stdout_cap: MIB,
            stderr_cap: MIB,
            log_cap: MIB,
            result_cap: MIB,
            max_records: 10_000,
            dirs: Vec::new(),
            env: Vec::new(),
            write_quota: 64 << 20,
            compile_timeout: Duration::from_secs(60),
            compile_memory: 4 << 30,
        }
    }
}
