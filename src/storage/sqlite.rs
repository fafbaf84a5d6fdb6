//! The SQLite storage: one file, no server, shared by evaluators in one process or several.
//!
//! Writes are buffered and committed by a background thread at most [`COMMIT_WINDOW`] after
//! they were made, in one transaction, with one upsert per job per batch. Reads commit what
//! is buffered first, so a storage always reads its own writes. The file uses WAL and a busy
//! timeout, so concurrent writers wait for each other instead of failing.
//!
//! Schema (version 1, in `PRAGMA user_version`):
//! - `searches(id, job_counter)`: search ids are `"0"`, `"1"`, …; `job_counter` hands out job
//!   numbers in blocks, so two evaluators never get the same id (numbers may have gaps); -1
//!   marks a deleted search (its id is not given out again).
//! - `search_values(search_id, key, value)`: values attached to a search (JSON).
//! - `jobs(search_id, n, status, config, objective, metadata, intermediate, log, owner,
//!   heartbeat)`: one row per job; `config`, `objective` (NULL until finished), `metadata`
//!   (an object) and `intermediate` (`[[budget, objective], …]`) are JSON; `status` is
//!   DeepHyper's integer; `owner` is the storage instance (of the evaluator) that submitted and
//!   runs the job (`HOST/PID-SECONDS-RANDOM`), and `heartbeat` the last time (Unix seconds) it
//!   said the job was alive.
//! - `completions(seq, search_id, n)`: the order in which jobs finished: the completion cursor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::job::{Job, JobId, JobStatus};
use crate::output::Objective;
use crate::storage::Storage;
use crate::storage::buffer::{Buffer, Commit, Delta, Pending};
use crate::storage::owner::{self, host_name, owner_process};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE searches (id INTEGER PRIMARY KEY, job_counter INTEGER NOT NULL);
CREATE TABLE search_values (search_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (search_id, key));
CREATE TABLE jobs (search_id INTEGER NOT NULL, n INTEGER NOT NULL, status INTEGER NOT NULL,
    config TEXT NOT NULL, objective TEXT, metadata TEXT NOT NULL, intermediate TEXT NOT NULL,
    log TEXT NOT NULL, owner TEXT, heartbeat REAL, PRIMARY KEY (search_id, n));
CREATE TABLE completions (seq INTEGER PRIMARY KEY AUTOINCREMENT, search_id INTEGER NOT NULL,
    n INTEGER NOT NULL, UNIQUE (search_id, n));
";

/// Version 2: the earlier attempts of jobs run again by a resume.
const ATTEMPTS: &str = "
CREATE TABLE attempts (search_id INTEGER NOT NULL, n INTEGER NOT NULL, attempt INTEGER NOT NULL,
    status INTEGER NOT NULL, objective TEXT, metadata TEXT NOT NULL, intermediate TEXT NOT NULL,
    log TEXT NOT NULL, PRIMARY KEY (search_id, n, attempt));
";

const UPSERT: &str = "
INSERT INTO jobs (search_id, n, status, config, objective, metadata, intermediate, log, owner, heartbeat)
VALUES (?1, ?2, coalesce(?3, 0), coalesce(?4, '{}'), ?5, coalesce(?6, '{}'), coalesce(?7, '[]'),
        coalesce(?8, ''), ?9, ?10)
ON CONFLICT (search_id, n) DO UPDATE SET
    status = coalesce(?3, status),
    config = coalesce(?4, config),
    objective = CASE WHEN ?11 THEN ?5 ELSE objective END,
    metadata = json_patch(metadata, coalesce(?6, '{}')),
    intermediate = coalesce(?7, intermediate),
    log = coalesce(?8, log),
    owner = coalesce(?9, owner),
    heartbeat = coalesce(?10, heartbeat)";

/// The file and this instance's owner id: what commits a batch of writes.
struct Inner {
    path: PathBuf,
    owner: String,
    conn: Mutex<Connection>,
}

/// Searches and jobs in one SQLite file.
pub struct SqliteStorage {
    buffer: Buffer<Inner>,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn parse_search(id: &str) -> Result<i64> {
    id.parse().map_err(|_| Error::UnknownSearch(id.to_string()))
}

fn job_key(id: &JobId) -> Result<(i64, i64)> {
    Ok((parse_search(id.search())?, id.number() as i64))
}

impl SqliteStorage {
    /// Opens (or creates) the storage file at `path`. A file of another schema version, or
    /// one that is not a wasmeval storage, is refused with a message naming it.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStorage> {
        let path = path.as_ref().to_path_buf();
        let err = |source: rusqlite::Error| Error::Storage {
            path: path.clone(),
            source,
        };
        // A link at the path is refused, not followed (a guest with a read-write grant could
        // have planted one).
        let flags = rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(&path, flags).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(err)?;
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL")).map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        // Checkpoint the WAL every 64 MiB rather than every 4 MiB: fewer fsyncs on the commit path.
        conn.pragma_update(None, "wal_autocheckpoint", 16384)
            .map_err(err)?;
        let mut conn = conn;
        if let Some(reason) = retry_busy(|| check_schema(&mut conn)).map_err(err)? {
            return Err(Error::StorageFormat {
                path: path.clone(),
                reason,
            });
        }
        let owner = owner::new_id();
        let inner = Inner {
            path,
            owner,
            conn: Mutex::new(conn),
        };
        Ok(SqliteStorage {
            buffer: Buffer::start(inner, "wasmeval-sqlite")?,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner().path
    }

    /// This storage instance's owner id, written on the jobs it runs.
    pub fn owner(&self) -> &str {
        &self.inner().owner
    }

    /// Commits every buffered write now.
    pub fn flush(&self) -> Result<()> {
        self.buffer.flush()
    }

    fn inner(&self) -> &Inner {
        self.buffer.commit()
    }

    /// Jobs of `search_id` left READY or RUNNING by an owner whose heartbeat is older than
    /// `lease`: their evaluator died, and they can be run again.
    pub fn load_abandoned(&self, search_id: &str, lease: Duration) -> Result<Vec<JobId>> {
        self.buffer.flush()?;
        let sid = parse_search(search_id)?;
        let conn = self.inner().conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached(
                "SELECT n FROM jobs WHERE search_id = ?1 AND status IN (0, 1) AND objective IS NULL \
                 AND (heartbeat IS NULL OR heartbeat < ?2) ORDER BY n",
            )
            .map_err(|e| self.inner().error(e))?;
        let rows = stmt
            .query_map(params![sid, now_secs() - lease.as_secs_f64()], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|e| self.inner().error(e))?;
        rows.map(|n| {
            n.map(|n| JobId::new(search_id, n as u64))
                .map_err(|e| self.inner().error(e))
        })
        .collect()
    }

    fn buffer(&self, id: &JobId, f: impl FnOnce(&mut Delta)) -> Result<()> {
        job_key(id)?;
        self.buffer.job(id, f);
        Ok(())
    }

    fn read<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R> {
        self.buffer.flush()?;
        let conn = self.inner().conn.lock().unwrap();
        f(&conn).map_err(|e| self.inner().error(e))
    }
}

/// Checks (and on a new file, creates) the schema in one write transaction, so that two
/// processes opening a new file at once agree. Returns why the file is refused, if it is.
fn check_schema(conn: &mut Connection) -> rusqlite::Result<Option<String>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    match version {
        SCHEMA_VERSION => {}
        0 => {
            let tables: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )?;
            if tables > 0 {
                return Ok(Some(
                    "this SQLite file is not a wasmeval storage (it has tables but no wasmeval schema version)".into(),
                ));
            }
            tx.execute_batch(&format!(
                "{SCHEMA} {ATTEMPTS} PRAGMA user_version = {SCHEMA_VERSION};"
            ))?;
        }
        // Version 1 lacks only the attempts table.
        1 => tx.execute_batch(&format!(
            "{ATTEMPTS} PRAGMA user_version = {SCHEMA_VERSION};"
        ))?,
        other => {
            return Ok(Some(format!(
                "the storage has schema version {other}, and this wasmeval reads version {SCHEMA_VERSION}"
            )));
        }
    }
    tx.commit()?;
    Ok(None)
}

/// Runs `f` again while SQLite answers busy or locked without waiting for its busy timeout (as
/// it can when two processes open a new file at once and switch it to WAL), for up to a minute.
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let start = Instant::now();
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && start.elapsed() < Duration::from_secs(60) =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

impl Inner {
    fn error(&self, e: rusqlite::Error) -> Error {
        Error::Storage {
            path: self.path.clone(),
            source: e,
        }
    }
}

impl Commit for Inner {
    type Extra = ();

    /// Commits the buffered writes in one transaction.
    fn commit(&self, pending: &Pending<()>) -> Result<()> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.error(e))?;
        {
            let mut upsert = tx.prepare_cached(UPSERT).map_err(|e| self.error(e))?;
            let mut done = tx
                .prepare_cached("INSERT OR IGNORE INTO completions (search_id, n) VALUES (?1, ?2)")
                .map_err(|e| self.error(e))?;
            let mut finished_before = tx
                .prepare_cached("SELECT 1 FROM completions WHERE search_id = ?1 AND n = ?2")
                .map_err(|e| self.error(e))?;
            let now = now_secs();
            for (id, d) in &pending.jobs {
                let (sid, n) = job_key(id)?;
                // The first stored outcome wins: a later one is dropped, and a finished job's
                // status and outcome are not written over (until a restart).
                let open = !finished_before
                    .exists(params![sid, n])
                    .map_err(|e| self.error(e))?;
                if !open && d.finished {
                    continue;
                }
                let metadata = (!d.metadata.is_empty())
                    .then(|| serde_json::to_string(&d.metadata).unwrap_or_else(|_| "{}".into()));
                upsert
                    .execute(params![
                        sid,
                        n,
                        d.status.filter(|_| open),
                        d.config,
                        d.objective.as_ref().and_then(|o| o.as_deref()),
                        metadata,
                        d.intermediate.as_ref().filter(|_| open),
                        d.log.as_ref().filter(|_| open),
                        d.owned.then_some(self.owner.as_str()),
                        d.owned.then_some(now),
                        d.objective.is_some() && open,
                    ])
                    .map_err(|e| self.error(e))?;
                if d.finished {
                    done.execute(params![sid, n]).map_err(|e| self.error(e))?;
                }
            }
            let mut value = tx
                .prepare_cached("INSERT OR REPLACE INTO search_values (search_id, key, value) VALUES (?1, ?2, ?3)")
                .map_err(|e| self.error(e))?;
            for (sid, k, v) in &pending.values {
                let sid = parse_search(sid)?;
                value
                    .execute(params![sid, k, v])
                    .map_err(|e| self.error(e))?;
            }
        }
        tx.commit().map_err(|e| self.error(e))
    }

    fn beat(&self) {
        let conn = self.conn.lock().unwrap();
        let _ = conn.execute(
            "UPDATE jobs SET heartbeat = ?1 WHERE owner = ?2 AND status IN (0, 1)",
            params![now_secs(), self.owner],
        );
    }
}

fn row_to_job(search_id: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let n: i64 = r.get(0)?;
    let json = |i: usize| -> rusqlite::Result<Value> {
        let text: Option<String> = r.get(i)?;
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null))
    };
    let mut job = Job::new(
        JobId::new(search_id, n as u64),
        json(2)?.as_object().cloned().unwrap_or_default(),
    );
    job.status = match r.get::<_, i64>(1)? {
        0 => JobStatus::Ready,
        1 => JobStatus::Running,
        2 => JobStatus::Done,
        3 => JobStatus::Cancelling,
        _ => JobStatus::Cancelled,
    };
    let objective: Option<String> = r.get(3)?;
    job.objective = objective
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| Objective::from_json(&v));
    job.metadata = json(4)?.as_object().cloned().unwrap_or_default();
    job.intermediate = crate::float::series::from_value(&json(5)?).unwrap_or_default();
    job.log = r.get(6)?;
    job.failure = crate::storage::failure_of(&job.metadata);
    Ok(job)
}

const JOB_COLUMNS: &str = "n, status, config, objective, metadata, intermediate, log";

impl Storage for SqliteStorage {
    fn create_new_search(&self) -> Result<String> {
        self.read(|c| {
            c.query_row(
                "INSERT INTO searches (id, job_counter) \
                 VALUES ((SELECT coalesce(max(id) + 1, 0) FROM searches), 0) RETURNING id",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|id| id.to_string())
    }

    fn create_new_job(&self, search_id: &str) -> Result<JobId> {
        let mut ids = self.create_new_jobs(search_id, &[Map::new()])?;
        Ok(ids.remove(0))
    }

    fn create_new_jobs(
        &self,
        search_id: &str,
        configs: &[Map<String, Value>],
    ) -> Result<Vec<JobId>> {
        let sid = parse_search(search_id)?;
        let count = configs.len() as i64;
        if count == 0 {
            return Ok(Vec::new());
        }
        let texts: Vec<String> = configs
            .iter()
            .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "{}".into()))
            .collect();
        let mut conn = self.inner().conn.lock().unwrap();
        // The counter and the rows in one write transaction: ids are contiguous across every
        // process of the file, and none is left without its row.
        let end = retry_busy(|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let end: Option<i64> = tx
                .query_row(
                    "UPDATE searches SET job_counter = job_counter + ?2 WHERE id = ?1 AND job_counter >= 0 \
                     RETURNING job_counter",
                    params![sid, count],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(end) = end else { return Ok(None) };
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO jobs (search_id, n, status, config, metadata, intermediate, log, \
                     owner, heartbeat) VALUES (?1, ?2, ?3, ?4, '{}', '[]', '', ?5, ?6)",
                )?;
                let now = now_secs();
                for (i, text) in texts.iter().enumerate() {
                    insert.execute(params![
                        sid,
                        end - count + i as i64,
                        JobStatus::Ready as i64,
                        text,
                        self.inner().owner,
                        now
                    ])?;
                }
            }
            tx.commit()?;
            Ok(Some(end))
        })
        .map_err(|e| self.inner().error(e))?
        .ok_or_else(|| Error::UnknownSearch(search_id.to_string()))?;
        Ok((end - count..end)
            .map(|n| JobId::new(search_id, n as u64))
            .collect())
    }

    fn restart_job(&self, job_id: &JobId) -> Result<()> {
        let (sid, n) = job_key(job_id)?;
        self.buffer.flush()?;
        let mut conn = self.inner().conn.lock().unwrap();
        let found = retry_busy(|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let copied = tx.execute(
                "INSERT INTO attempts (search_id, n, attempt, status, objective, metadata, \
                 intermediate, log) SELECT search_id, n, (SELECT count(*) FROM attempts \
                 WHERE search_id = ?1 AND n = ?2), status, objective, metadata, intermediate, \
                 log FROM jobs WHERE search_id = ?1 AND n = ?2",
                params![sid, n],
            )?;
            tx.execute(
                "UPDATE jobs SET status = ?3, objective = NULL, metadata = '{}', \
                 intermediate = '[]', log = '', owner = ?4, heartbeat = ?5 \
                 WHERE search_id = ?1 AND n = ?2",
                params![
                    sid,
                    n,
                    JobStatus::Ready as i64,
                    self.inner().owner,
                    now_secs()
                ],
            )?;
            tx.execute(
                "DELETE FROM completions WHERE search_id = ?1 AND n = ?2",
                params![sid, n],
            )?;
            tx.commit()?;
            Ok(copied == 1)
        })
        .map_err(|e| self.inner().error(e))?;
        if found {
            Ok(())
        } else {
            Err(Error::UnknownJob(job_id.to_string()))
        }
    }

    fn load_attempts(&self, job_id: &JobId) -> Result<Vec<Job>> {
        let (sid, n) = job_key(job_id)?;
        let search = job_id.search().to_string();
        self.read(|c| {
            let mut q = c.prepare_cached(
                "SELECT n, status, '{}', objective, metadata, intermediate, log FROM attempts \
                 WHERE search_id = ?1 AND n = ?2 ORDER BY attempt",
            )?;
            q.query_map(params![sid, n], |r| row_to_job(&search, r))?
                .collect()
        })
    }

    fn load_search_attempts(&self, search_id: &str) -> Result<HashMap<u64, Vec<Job>>> {
        let sid = parse_search(search_id)?;
        let attempts: Vec<Job> = self.read(|c| {
            let mut q = c.prepare_cached(
                "SELECT n, status, '{}', objective, metadata, intermediate, log FROM attempts \
                 WHERE search_id = ?1 ORDER BY n, attempt",
            )?;
            q.query_map(params![sid], |r| row_to_job(search_id, r))?
                .collect()
        })?;
        let mut by_job: HashMap<u64, Vec<Job>> = HashMap::new();
        for job in attempts {
            by_job.entry(job.id.number()).or_default().push(job);
        }
        Ok(by_job)
    }

    fn store_search_value(&self, search_id: &str, key: &str, value: Value) -> Result<()> {
        parse_search(search_id)?;
        self.buffer.value(search_id, key, &value);
        Ok(())
    }

    fn load_search_value(&self, search_id: &str, key: &str) -> Result<Option<Value>> {
        let sid = parse_search(search_id)?;
        let text: Option<String> = self.read(|c| {
            c.query_row(
                "SELECT value FROM search_values WHERE search_id = ?1 AND key = ?2",
                params![sid, key],
                |r| r.get(0),
            )
            .optional()
        })?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    fn store_job_in(&self, job_id: &JobId, config: &Map<String, Value>) -> Result<()> {
        let config = Value::Object(config.clone()).to_string();
        self.buffer(job_id, |d| d.config = Some(config))
    }

    fn store_job_out(&self, job_id: &JobId, objective: Value) -> Result<()> {
        self.buffer(job_id, |d| d.objective = Some(Some(objective.to_string())))
    }

    fn store_job_metadata(&self, job_id: &JobId, key: &str, value: Value) -> Result<()> {
        self.buffer(job_id, |d| {
            d.metadata.insert(key.to_string(), value);
        })
    }

    fn store_job_status(&self, job_id: &JobId, status: JobStatus) -> Result<()> {
        self.buffer(job_id, |d| {
            d.status = Some(status as i64);
            d.owned |= status == JobStatus::Running;
        })
    }

    fn store_job_intermediate(&self, job_id: &JobId, series: &[(f64, f64)]) -> Result<()> {
        let text = crate::float::series::to_value(series).to_string();
        self.buffer(job_id, |d| d.intermediate = Some(text))
    }

    fn store_job_log(&self, job_id: &JobId, log: &str) -> Result<()> {
        self.buffer(job_id, |d| d.log = Some(log.to_string()))
    }

    fn store_job_done(&self, job: &Job) -> Result<()> {
        self.buffer(&job.id, |d| d.take_outcome(job))
    }

    fn load_all_search_ids(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut s =
                c.prepare_cached("SELECT id FROM searches WHERE job_counter >= 0 ORDER BY id")?;
            let ids = s.query_map([], |r| r.get::<_, i64>(0))?;
            ids.map(|id| id.map(|id| id.to_string())).collect()
        })
    }

    fn load_all_job_ids(&self, search_id: &str) -> Result<Vec<JobId>> {
        let sid = parse_search(search_id)?;
        self.read(|c| {
            let mut s = c.prepare_cached("SELECT n FROM jobs WHERE search_id = ?1 ORDER BY n")?;
            let ns = s.query_map([sid], |r| r.get::<_, i64>(0))?;
            ns.map(|n| n.map(|n| JobId::new(search_id, n as u64)))
                .collect()
        })
    }

    fn load_job(&self, job_id: &JobId) -> Result<Job> {
        let (sid, n) = job_key(job_id)?;
        self.read(|c| {
            c.query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE search_id = ?1 AND n = ?2"),
                params![sid, n],
                |r| row_to_job(job_id.search(), r),
            )
            .optional()
        })?
        .ok_or_else(|| Error::UnknownJob(job_id.to_string()))
    }

    fn load_jobs(&self, job_ids: &[JobId]) -> Result<Vec<Job>> {
        job_ids.iter().map(|id| self.load_job(id)).collect()
    }

    fn load_search(&self, search_id: &str) -> Result<Vec<Job>> {
        crate::storage::collect_search(self, search_id)
    }

    fn for_each_job(&self, search_id: &str, f: &mut dyn FnMut(Job) -> Result<()>) -> Result<()> {
        let sid = parse_search(search_id)?;
        self.buffer.flush()?;
        let conn = self.inner().conn.lock().unwrap();
        let e = |e| self.inner().error(e);
        let mut s = conn
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE search_id = ?1 ORDER BY n"
            ))
            .map_err(e)?;
        let mut rows = s.query([sid]).map_err(e)?;
        while let Some(row) = rows.next().map_err(e)? {
            f(row_to_job(search_id, row).map_err(e)?)?;
        }
        Ok(())
    }

    fn live_owner(&self, search_id: &str, lease: Duration) -> Result<Option<(String, Duration)>> {
        let sid = parse_search(search_id)?;
        let now = now_secs();
        let owners: Vec<(String, f64)> = self.read(|c| {
            let mut s = c.prepare_cached(
                "SELECT owner, max(heartbeat) FROM jobs WHERE search_id = ?1 AND status IN (0, 1) \
                 AND objective IS NULL AND owner IS NOT NULL AND heartbeat >= ?2 GROUP BY owner",
            )?;
            let rows = s.query_map(params![sid, now - lease.as_secs_f64()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect()
        })?;
        // An owner of this machine whose process is gone is dead, whatever its last beat.
        let here = host_name();
        let live = owners.into_iter().find_map(|(owner, beat)| {
            let ago = Duration::from_secs_f64((now - beat).max(0.0));
            let Some((host, pid)) = owner_process(&owner) else {
                // An owner id of an older wasmeval: only its heartbeat tells.
                return Some((format!("evaluator {owner}"), ago));
            };
            if host == here && !Path::new("/proc").join(pid).exists() {
                return None;
            }
            Some((format!("process {pid} on {host}"), ago))
        });
        Ok(live)
    }

    fn finished_since(&self, search_id: &str, cursor: u64) -> Result<(Vec<JobId>, u64)> {
        let sid = parse_search(search_id)?;
        let rows: Vec<(i64, i64)> = self.read(|c| {
            let mut s = c.prepare_cached(
                "SELECT seq, n FROM completions WHERE search_id = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            let rows = s.query_map(params![sid, cursor as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let next = rows.last().map_or(cursor, |(seq, _)| *seq as u64);
        Ok((
            rows.into_iter()
                .map(|(_, n)| JobId::new(search_id, n as u64))
                .collect(),
            next,
        ))
    }

    fn delete_search(&self, search_id: &str) -> Result<()> {
        let sid = parse_search(search_id)?;
        self.buffer.flush()?;
        let mut conn = self.inner().conn.lock().unwrap();
        let found = retry_busy(|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for table in ["jobs", "attempts", "completions", "search_values"] {
                tx.execute(&format!("DELETE FROM {table} WHERE search_id = ?1"), [sid])?;
            }
            // The row stays, emptied, so that the id is not given out again.
            let found = tx.execute(
                "UPDATE searches SET job_counter = -1 WHERE id = ?1 AND job_counter >= 0",
                [sid],
            )?;
            tx.commit()?;
            Ok(found == 1)
        })
        .map_err(|e| self.inner().error(e))?;
        if found {
            Ok(())
        } else {
            Err(Error::UnknownSearch(search_id.to_string()))
        }
    }
}
