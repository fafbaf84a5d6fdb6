//! The Redis storage: DeepHyper's key layout on plain Redis types (no RedisJSON), under a
//! key prefix (`PREFIX`, `wasmeval` unless the URL says `?prefix=NAME`), so that several
//! projects and searches share one server:
//!
//! - `PREFIX:version`: the layout ([`LAYOUT`]); keys under a prefix without it are refused.
//! - `PREFIX:search_id_counter`, `PREFIX:search_id_list`: search ids `"0"`, `"1"`, …
//! - `PREFIX:search:SID.job_id_counter`: job numbers, handed out in blocks.
//! - `PREFIX:job:SID.N`: a hash: `status` (DeepHyper's integer), `in` (the configuration),
//!   `out` (the objective), `intermediate` (the series), `log`, `done` (`1` once an outcome
//!   is stored); `PREFIX:job:SID.N.meta` its metadata: a list of JSON objects, merged on
//!   reading (later keys win, first positions stay), so that adding metadata is one `RPUSH`.
//! - `PREFIX:job:SID.N.attempts`: earlier attempts (a resume ran the job again);
//!   `PREFIX:search:SID.attempted` the jobs that have any.
//! - `PREFIX:search:SID.values`: the search's values (JSON).
//! - `PREFIX:search:SID.done`: job numbers in the order they finished: the completion cursor.
//! - `PREFIX:search:SID.owners`, `PREFIX:search:SID.owner:ID`: evaluators running the search;
//!   each owner key expires [`OWNER_TTL`] after its last heartbeat.
//! - The redis method's keys ([`crate::redis`]): `PREFIX:active`, `PREFIX:search:SID.setup`,
//!   `.jobs` (a stream), `.cancels`, and the modules `PREFIX:module:SHA256` ([`blob`]).
//!
//! Writes are buffered like the SQLite storage's (committed within
//! [`COMMIT_WINDOW`](crate::storage::COMMIT_WINDOW), one pipeline per batch) and applied by
//! Lua scripts, so that each job's write is atomic: the first finished outcome of a job wins
//! and a later one is dropped. What is read back is capped ([`MAX_FIELD`]): the storage may
//! hold what a worker on another machine wrote.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

pub mod blob;
mod server;

use crate::error::{Error, RedisError, Result};
use crate::job::{Failure, FailureKind, Job, JobId, JobStatus};
use crate::output::Objective;
use crate::storage::Storage;
use crate::storage::buffer::{Buffer, Commit, Delta, Pending};
pub use server::{
    Conn, DEFAULT_PREFIX, PASSWORD_ENV, RECONNECT, RedisOptions, Server, is_redis_url, redact,
};

/// The storage layout this build reads and writes, kept in `PREFIX:version`.
pub const LAYOUT: &str = "wasmeval-redis-storage 1";

/// The largest field of a job read back (configuration, objective, metadata, series, log);
/// a larger one is dropped and the job flagged (`truncated`, or failed for an objective).
pub const MAX_FIELD: usize = 16 << 20;

/// How long an owner's lease on a search lasts without a heartbeat: a key TTL, renewed every
/// second, so no clocks of two machines are ever compared.
pub const OWNER_TTL: Duration = Duration::from_secs(10);

/// Jobs per script call.
const CHUNK: usize = 500;

/// A job's hash fields (absent ones `None`) and its metadata list, as read back.
type Plain = (Vec<Option<Vec<u8>>>, Vec<Vec<u8>>);

/// The fields of a job hash read back (the metadata is its own list).
const FIELDS: [&str; 5] = ["status", "in", "out", "intermediate", "log"];

const NEW_SEARCH: usize = 0;
const NEW_JOBS: usize = 1;
const WRITE: usize = 2;
const READ: usize = 3;
const RESTART: usize = 4;

/// The storage's scripts (loaded on every connection).
pub(crate) static SCRIPTS: LazyLock<Vec<redis::Script>> = LazyLock::new(|| {
    [
        // NEW_SEARCH: ARGV prefix.
        r"local sid = redis.call('INCR', ARGV[1] .. ':search_id_counter') - 1
        redis.call('RPUSH', ARGV[1] .. ':search_id_list', sid)
        redis.call('SET', ARGV[1] .. ':search:' .. sid .. '.job_id_counter', 0)
        return sid",
        // NEW_JOBS: ARGV prefix, search, configurations; returns the end of the new ids.
        r"local p, sid = ARGV[1], ARGV[2]
        local counter = p .. ':search:' .. sid .. '.job_id_counter'
        if redis.call('EXISTS', counter) == 0 then return -1 end
        local count = #ARGV - 2
        local last = redis.call('INCRBY', counter, count)
        for i = 1, count do
          redis.call('HSET', p .. ':job:' .. sid .. '.' .. string.format('%d', last - count + i - 1),
            'status', 0, 'in', ARGV[2 + i])
        end
        return last",
        // WRITE: per job, KEYS its hash, its metadata list and its search's completion list;
        // ARGV a mask, then the values it names. The mask is 7 characters and the job number:
        // for status, in, out, intermediate and log '=' (a value follows), 'c' (cleared) or
        // '-' (left); then 'm' (a metadata object follows) or '-'; then 'f' (finished) or
        // '-'. A finished outcome of a job that has one is dropped whole (the first wins).
        r"local fields = {'status', 'in', 'out', 'intermediate', 'log'}
        local a = 1
        for j = 1, #KEYS, 3 do
          local k, mask = KEYS[j], ARGV[a]
          a = a + 1
          local set, clear = {}, {}
          for i = 1, 5 do
            local c = string.byte(mask, i)
            if c == 61 then
              set[#set + 1] = fields[i]
              set[#set + 1] = ARGV[a]
              a = a + 1
            elseif c == 99 then
              clear[#clear + 1] = fields[i]
            end
          end
          local meta = nil
          if string.byte(mask, 6) == 109 then
            meta = ARGV[a]
            a = a + 1
          end
          local finished = string.byte(mask, 7) == 102
          local cur = redis.call('HMGET', k, 'status', 'done')
          local done = cur[2] == '1'
          if cur[1] and not (done and finished) then
            if meta then redis.call('RPUSH', KEYS[j + 1], meta) end
            if not done then
              if #clear > 0 then redis.call('HDEL', k, unpack(clear)) end
              if finished then
                set[#set + 1] = 'done'
                set[#set + 1] = '1'
                redis.call('RPUSH', KEYS[j + 2], string.sub(mask, 8))
              end
              if #set > 0 then redis.call('HSET', k, unpack(set)) end
            end
          end
        end
        return 0",
        // READ: KEYS jobs, ARGV cap; per job {too-big fields, status, in, out, metadata,
        // intermediate, log}, or {'-'} for none. A field past the cap is not returned.
        r"local cap = tonumber(ARGV[1])
        local fields = {'status', 'in', 'out', 'intermediate', 'log'}
        local out = {}
        for i, k in ipairs(KEYS) do
          local row = redis.call('HMGET', k, unpack(fields))
          if not row[1] then
            out[i] = {'-'}
          else
            local meta = redis.call('LRANGE', k .. '.meta', 0, -1)
            local size = 0
            for _, m in ipairs(meta) do size = size + string.len(m) end
            table.insert(row, 4, size <= cap and table.concat(meta) or false)
            local big = size > cap and 'metadata ' or ''
            for j = 1, 6 do
              if row[j] and string.len(row[j]) > cap then
                big = big .. ({'status', 'in', 'out', 'metadata', 'intermediate', 'log'})[j] .. ' '
                row[j] = false
              end
            end
            table.insert(row, 1, big)
            out[i] = row
          end
        end
        return out",
        // RESTART: ARGV prefix, search, n; keeps the outcome so far as an attempt.
        r"local p, sid, n = ARGV[1], ARGV[2], ARGV[3]
        local k = p .. ':job:' .. sid .. '.' .. n
        if redis.call('EXISTS', k) == 0 then return 0 end
        local r = redis.call('HMGET', k, 'status', 'out', 'intermediate', 'log')
        local meta = table.concat(redis.call('LRANGE', k .. '.meta', 0, -1))
        redis.call('RPUSH', k .. '.attempts', cjson.encode({status = r[1] or '0', out = r[2] or '',
          metadata = meta, intermediate = r[3] or '', log = r[4] or ''}))
        redis.call('SADD', p .. ':search:' .. sid .. '.attempted', n)
        redis.call('HDEL', k, 'out', 'intermediate', 'log', 'done')
        redis.call('DEL', k .. '.meta')
        redis.call('HSET', k, 'status', 0)
        return 1",
    ]
    .into_iter()
    .map(redis::Script::new)
    .collect()
});

/// What the committing thread holds: the connection, and this instance's owner id and the
/// searches it runs jobs of (whose lease it renews).
pub(crate) struct Inner {
    server: Server,
    conn: Mutex<Conn>,
    owner: String,
    owned: Mutex<HashSet<String>>,
}

/// Writes committed with a batch of job writes, in the same transaction.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    /// Stream entries to acknowledge and delete: (stream key, group, entry id).
    pub acks: Vec<(String, &'static str, String)>,
}

/// Searches and jobs on a Redis server (see the [module docs](crate::redis)).
pub struct RedisStorage {
    buffer: Buffer<Inner>,
}

/// A search id as used in keys: digits only.
fn search(id: &str) -> Result<&str> {
    (!id.is_empty() && id.len() < 20 && id.bytes().all(|b| b.is_ascii_digit()))
        .then_some(id)
        .ok_or_else(|| Error::UnknownSearch(id.to_string()))
}

fn job_parts(id: &JobId) -> Result<(&str, u64)> {
    Ok((search(id.search())?, id.number()))
}

impl RedisStorage {
    /// Connects to the server of `url` (see [`Server::parse`]) and checks the key space
    /// under its prefix: empty (it is made a storage) or a storage of this layout.
    pub fn open(url: &str, options: &RedisOptions) -> Result<RedisStorage> {
        let server = Server::parse(url, options)?;
        let mut conn = server.connect(&SCRIPTS)?;
        check_layout(&server, &mut conn)?;
        let inner = Inner {
            server,
            conn: Mutex::new(conn),
            owner: crate::storage::owner::new_id(),
            owned: Mutex::new(HashSet::new()),
        };
        Ok(RedisStorage {
            buffer: Buffer::start(inner, "wasmeval-redis")?,
        })
    }

    fn inner(&self) -> &Inner {
        self.buffer.commit()
    }

    /// The server and prefix.
    pub fn server(&self) -> &Server {
        &self.inner().server
    }

    /// A key under the storage's prefix.
    pub(crate) fn key(&self, rest: &str) -> String {
        self.inner().server.key(rest)
    }

    /// Runs commands on the connection, after the buffered writes are committed.
    pub(crate) fn run<T>(
        &self,
        f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        self.buffer.flush()?;
        self.inner().conn.lock().unwrap().run(f)
    }

    /// Runs commands on the connection without committing the buffered writes first: for
    /// reads of what others wrote.
    pub(crate) fn peek<T>(
        &self,
        f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        self.inner().conn.lock().unwrap().run(f)
    }

    /// The jobs of search `sid` finished since `cursor` (see [`Storage::finished_since`]),
    /// without committing this storage's buffered writes first.
    pub(crate) fn finished_by_others(&self, sid: &str, cursor: u64) -> Result<(Vec<JobId>, u64)> {
        let sid = search(sid)?;
        let key = self.key(&format!("search:{sid}.done"));
        let ns: Vec<u64> = self.peek(|c| {
            redis::cmd("LRANGE")
                .arg(&key)
                .arg(cursor)
                .arg(cursor + 9_999)
                .query(c)
        })?;
        let next = cursor + ns.len() as u64;
        Ok((ns.into_iter().map(|n| JobId::new(sid, n)).collect(), next))
    }

    /// The other storage instances (evaluators) whose lease on search `search_id` is
    /// younger than `lease`: who each is, and how long ago it beat.
    pub(crate) fn live_owners(
        &self,
        search_id: &str,
        lease: Duration,
    ) -> Result<Vec<(String, Duration)>> {
        let sid = search(search_id)?;
        let set = self.key(&format!("search:{sid}.owners"));
        let owners: Vec<String> = self.run(|c| redis::cmd("SMEMBERS").arg(&set).query(c))?;
        let mine = &self.inner().owner;
        let mut live = Vec::new();
        for owner in owners.iter().filter(|o| *o != mine) {
            let key = self.key(&format!("search:{sid}.owner:{owner}"));
            let (who, ttl): (Option<String>, i64) =
                self.run(|c| redis::pipe().get(&key).pttl(&key).query(c))?;
            let Some(who) = who else {
                // Its lease ran out: forget it.
                self.run(|c| redis::cmd("SREM").arg(&set).arg(owner).exec(c))?;
                continue;
            };
            let ago = OWNER_TTL.saturating_sub(Duration::from_millis(ttl.max(0) as u64));
            if ago < lease {
                live.push((who, ago));
            }
        }
        Ok(live)
    }

    /// Commits every buffered write now.
    pub fn flush(&self) -> Result<()> {
        self.buffer.flush()
    }

    /// Acknowledges and deletes a stream entry with the next batch of writes, in its
    /// transaction (a worker's outcomes and the entry they answer go together).
    pub(crate) fn ack_with_writes(&self, stream: String, group: &'static str, entry: String) {
        self.buffer
            .with(|p| p.extra.acks.push((stream, group, entry)));
    }

    fn own(&self, search_id: &str) {
        let new = self
            .inner()
            .owned
            .lock()
            .unwrap()
            .insert(search_id.to_string());
        if new {
            self.inner().beat();
        }
    }

    fn buffer(&self, id: &JobId, f: impl FnOnce(&mut Delta)) -> Result<()> {
        job_parts(id)?;
        self.buffer.job(id, f);
        Ok(())
    }

    /// Jobs of search `sid`, `None` for one with no hash, as committed (this storage's
    /// buffered writes are not committed first). A job whose keys take more memory
    /// than [`MAX_FIELD`] (`MEMORY USAGE`, cheap) is read field by field by the READ script,
    /// which leaves out a field past the cap; the others are read with plain commands.
    pub(crate) fn read_jobs(&self, sid: &str, ns: &[u64]) -> Result<Vec<Option<Job>>> {
        let mut jobs = Vec::with_capacity(ns.len());
        for chunk in ns.chunks(CHUNK) {
            let keys: Vec<String> = chunk
                .iter()
                .map(|n| self.key(&format!("job:{sid}.{n}")))
                .collect();
            let sizes: Vec<Option<u64>> = self.peek(|c| {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
                    pipe.cmd("MEMORY")
                        .arg("USAGE")
                        .arg(format!("{k}.meta"))
                        .arg("SAMPLES")
                        .arg(0);
                }
                pipe.query(c)
            })?;
            let large: Vec<bool> = sizes
                .chunks(2)
                .map(|s| s.iter().flatten().sum::<u64>() > MAX_FIELD as u64)
                .collect();
            let plain: Vec<Plain> = self.peek(|c| {
                let mut pipe = redis::pipe();
                for (k, _) in keys.iter().zip(&large).filter(|(_, large)| !**large) {
                    pipe.cmd("HMGET").arg(k).arg(&FIELDS[..]);
                    pipe.cmd("LRANGE").arg(format!("{k}.meta")).arg(0).arg(-1);
                }
                let mut replies = pipe.query::<Vec<redis::Value>>(c)?.into_iter();
                let mut rows = Vec::new();
                while let (Some(fields), Some(meta)) = (replies.next(), replies.next()) {
                    rows.push((
                        redis::from_redis_value(fields)?,
                        redis::from_redis_value(meta)?,
                    ));
                }
                Ok(rows)
            })?;
            let mut plain = plain.into_iter();
            for ((&n, key), large) in chunk.iter().zip(&keys).zip(large) {
                let row = if large {
                    let mut rows: Vec<Vec<Option<Vec<u8>>>> =
                        self.peek(|c| SCRIPTS[READ].key(key).arg(MAX_FIELD).invoke(c))?;
                    rows.pop().unwrap_or_default()
                } else {
                    let (mut fields, meta) = plain.next().unwrap_or_default();
                    if fields.first().is_none_or(Option::is_none) {
                        vec![Some(b"-".to_vec())]
                    } else {
                        fields.insert(3, Some(meta.concat()));
                        fields.insert(0, Some(Vec::new()));
                        fields
                    }
                };
                jobs.push(job_from_row(sid, n, row));
            }
        }
        Ok(jobs)
    }

    fn job_count(&self, sid: &str) -> Result<u64> {
        let key = self.key(&format!("search:{sid}.job_id_counter"));
        let count: Option<u64> = self.run(|c| redis::cmd("GET").arg(&key).query(c))?;
        Ok(count.unwrap_or(0))
    }
}

/// Checks that the keys under the prefix are a storage of this layout, or none, which it
/// makes one.
fn check_layout(server: &Server, conn: &mut Conn) -> Result<()> {
    let version_key = server.key("version");
    let pattern = server.key("*");
    let (version, others): (Option<String>, (u64, Vec<String>)) = conn.run(|c| {
        redis::pipe()
            .cmd("GET")
            .arg(&version_key)
            .cmd("SCAN")
            .arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query(c)
    })?;
    let refuse = |reason: String| -> Error {
        RedisError::KeySpace {
            server: server.shown.clone(),
            prefix: server.prefix.clone(),
            reason,
        }
        .into()
    };
    match version {
        Some(v) if v == LAYOUT => Ok(()),
        Some(v) => Err(refuse(format!(
            "they are a storage of layout `{}`, and this wasmeval reads `{LAYOUT}`",
            v.chars().take(80).collect::<String>()
        ))),
        None if !others.1.is_empty() => Err(refuse(format!(
            "they were written by something else (`{}`, …, and no `{version_key}`); give \
             another prefix with ?prefix=NAME",
            others.1[0].chars().take(80).collect::<String>()
        ))),
        None => {
            let set: bool = conn.run(|c| {
                redis::cmd("SET")
                    .arg(&version_key)
                    .arg(LAYOUT)
                    .arg("NX")
                    .query::<Option<String>>(c)
                    .map(|r| r.is_some())
            })?;
            if set {
                Ok(())
            } else {
                check_layout(server, conn)
            }
        }
    }
}

impl Commit for Inner {
    type Extra = Extra;

    fn commit(&self, pending: &Pending<Extra>) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        // Metadata alone (a submit or gather time) is one RPUSH; the rest goes through WRITE.
        let (only_metadata, others): (Vec<_>, Vec<_>) =
            pending.jobs.iter().partition(|(_, d)| d.only_metadata());
        for (id, d) in only_metadata {
            let (sid, n) = job_parts(id)?;
            pipe.cmd("RPUSH")
                .arg(self.server.key(&format!("job:{sid}.{n}.meta")))
                .arg(serde_json::to_string(&d.metadata).unwrap_or_else(|_| "{}".into()))
                .ignore();
        }
        // Per chunk of jobs: (KEYS, ARGV) of one WRITE.
        let mut writes: Vec<(Vec<String>, Vec<&[u8]>)> = Vec::new();
        let mut owned: Vec<String> = Vec::new();
        let mut metadata = Vec::new();
        for (id, d) in &others {
            metadata.push(
                (!d.metadata.is_empty())
                    .then(|| serde_json::to_string(&d.metadata).unwrap_or_else(|_| "{}".into())),
            );
            let (_, n) = job_parts(id)?;
            let mark = |set: bool| if set { '=' } else { '-' };
            let objective = match &d.objective {
                None => '-',
                Some(None) => 'c',
                Some(Some(_)) => '=',
            };
            owned.push(format!(
                "{}{}{objective}{}{}{}{}{n}",
                mark(d.status.is_some()),
                mark(d.config.is_some()),
                mark(d.intermediate.is_some()),
                mark(d.log.is_some()),
                if d.metadata.is_empty() { '-' } else { 'm' },
                if d.finished { 'f' } else { '-' },
            ));
        }
        let statuses: Vec<Option<String>> = others
            .iter()
            .map(|(_, d)| d.status.map(|s| s.to_string()))
            .collect();
        for (chunk, start) in others.chunks(CHUNK).zip((0..).step_by(CHUNK)) {
            let (mut keys, mut args) = (Vec::new(), Vec::new());
            for (i, (id, d)) in chunk.iter().enumerate() {
                let (sid, n) = job_parts(id)?;
                let job = self.server.key(&format!("job:{sid}.{n}"));
                let meta = format!("{job}.meta");
                keys.extend([job, meta, self.server.key(&format!("search:{sid}.done"))]);
                let at = start + i;
                args.push(owned[at].as_bytes());
                let values = [
                    statuses[at].as_deref(),
                    d.config.as_deref(),
                    d.objective.as_ref().and_then(|o| o.as_deref()),
                    d.intermediate.as_deref(),
                    d.log.as_deref(),
                    metadata[at].as_deref(),
                ];
                args.extend(values.into_iter().flatten().map(str::as_bytes));
            }
            writes.push((keys, args));
        }
        for (sid, key, value) in &pending.values {
            pipe.cmd("HSET")
                .arg(self.server.key(&format!("search:{}.values", search(sid)?)))
                .arg(key)
                .arg(value)
                .ignore();
        }
        for (keys, args) in &writes {
            pipe.cmd("EVALSHA")
                .arg(SCRIPTS[WRITE].get_hash())
                .arg(keys.len())
                .arg(keys)
                .arg(args)
                .ignore();
        }
        for (stream, group, entry) in &pending.extra.acks {
            pipe.cmd("XACK").arg(stream).arg(*group).arg(entry).ignore();
            pipe.cmd("XDEL").arg(stream).arg(entry).ignore();
        }
        self.conn.lock().unwrap().run(|c| pipe.exec(c))
    }

    fn beat(&self) {
        let owned: Vec<String> = self.owned.lock().unwrap().iter().cloned().collect();
        if owned.is_empty() {
            return;
        }
        let who = describe(&self.owner);
        let mut pipe = redis::pipe();
        for sid in &owned {
            pipe.cmd("SET")
                .arg(
                    self.server
                        .key(&format!("search:{sid}.owner:{}", self.owner)),
                )
                .arg(&who)
                .arg("PX")
                .arg(OWNER_TTL.as_millis() as u64)
                .ignore()
                .cmd("SADD")
                .arg(self.server.key(&format!("search:{sid}.owners")))
                .arg(&self.owner)
                .ignore();
        }
        // A beat waits for the connection (a skipped one could let the lease lapse while
        // the connection is busy); one that fails is tried again at the next.
        let _ = self.conn.lock().unwrap().run(|c| pipe.exec(c));
    }
}

/// `process PID on HOST` for an owner id.
fn describe(owner: &str) -> String {
    match crate::storage::owner::owner_process(owner) {
        Some((host, pid)) => format!("process {pid} on {host}"),
        None => format!("evaluator {owner}"),
    }
}

impl Drop for RedisStorage {
    fn drop(&mut self) {
        let _ = self.buffer.flush();
        let inner = self.inner();
        let owned: Vec<String> = inner.owned.lock().unwrap().drain().collect();
        let mut pipe = redis::pipe();
        for sid in &owned {
            pipe.cmd("DEL")
                .arg(
                    inner
                        .server
                        .key(&format!("search:{sid}.owner:{}", inner.owner)),
                )
                .ignore()
                .cmd("SREM")
                .arg(inner.server.key(&format!("search:{sid}.owners")))
                .arg(&inner.owner)
                .ignore();
        }
        if !owned.is_empty() {
            let _ = inner.conn.lock().unwrap().run(|c| pipe.exec(c));
        }
    }
}

fn text(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Metadata stored as JSON objects one after another: later keys win, first positions stay.
fn merged_metadata(text: &str) -> Map<String, Value> {
    let mut merged = Map::new();
    for object in serde_json::Deserializer::from_str(text).into_iter::<Map<String, Value>>() {
        let Ok(object) = object else { break };
        for (k, v) in object {
            merged.insert(k, v);
        }
    }
    merged
}

fn status_of(text: Option<&str>) -> JobStatus {
    match text.and_then(|t| t.parse::<i64>().ok()) {
        Some(1) => JobStatus::Running,
        Some(2) => JobStatus::Done,
        Some(3) => JobStatus::Cancelling,
        Some(4) => JobStatus::Cancelled,
        _ => JobStatus::Ready,
    }
}

/// A job as the READ script returns it; `None` for a job with no hash.
fn job_from_row(sid: &str, n: u64, row: Vec<Option<Vec<u8>>>) -> Option<Job> {
    let mut row = row.into_iter();
    let big = text(row.next()?).unwrap_or_default();
    if big == "-" {
        return None;
    }
    let mut fields: Vec<Option<String>> = row.map(text).collect();
    fields.resize(6, None);
    let [status, config, out, metadata, intermediate, log] =
        <[Option<String>; 6]>::try_from(fields).expect("resized to 6");
    let mut job = Job::new(
        JobId::new(sid, n),
        config
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default(),
    );
    job.status = status_of(status.as_deref());
    fill_outcome(&mut job, out, metadata.as_deref(), intermediate, log);
    if !big.is_empty() {
        job.metadata.insert("truncated".into(), true.into());
        if big.contains("out ") {
            job.fail(Failure::new(
                FailureKind::OutputTooLarge,
                format!("the stored objective is larger than {MAX_FIELD} bytes; it was not read"),
            ));
        }
        if big.contains("log ") {
            job.log = format!("[the stored log is larger than {MAX_FIELD} bytes; it was not read]");
        }
    }
    Some(job)
}

/// The outcome fields of a job (or an attempt): objective, metadata, series, log, failure.
fn fill_outcome(
    job: &mut Job,
    out: Option<String>,
    metadata: Option<&str>,
    intermediate: Option<String>,
    log: Option<String>,
) {
    job.objective = out
        .filter(|o| !o.is_empty())
        .and_then(|o| serde_json::from_str::<Value>(&o).ok())
        .and_then(|v| Objective::from_json(&v));
    job.metadata = metadata.map(merged_metadata).unwrap_or_default();
    job.intermediate = intermediate
        .filter(|i| !i.is_empty())
        .and_then(|i| serde_json::from_str::<Value>(&i).ok())
        .and_then(|v| crate::float::series::from_value(&v))
        .unwrap_or_default();
    job.log = log.unwrap_or_default();
    job.failure = crate::storage::failure_of(&job.metadata);
}

impl Storage for RedisStorage {
    fn create_new_search(&self) -> Result<String> {
        let prefix = self.server().prefix.clone();
        let sid: i64 = self.run(|c| SCRIPTS[NEW_SEARCH].prepare_invoke().arg(&prefix).invoke(c))?;
        Ok(sid.to_string())
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
        let sid = search(search_id)?;
        if configs.is_empty() {
            return Ok(Vec::new());
        }
        self.own(sid);
        let prefix = self.server().prefix.clone();
        let texts: Vec<String> = configs
            .iter()
            .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "{}".into()))
            .collect();
        let last: i64 = self.run(|c| {
            SCRIPTS[NEW_JOBS]
                .prepare_invoke()
                .arg(&prefix)
                .arg(sid)
                .arg(&texts)
                .invoke(c)
        })?;
        if last < 0 {
            return Err(Error::UnknownSearch(search_id.to_string()));
        }
        let count = configs.len() as u64;
        let last = last as u64;
        Ok((last - count..last)
            .map(|n| JobId::new(search_id, n))
            .collect())
    }

    fn restart_job(&self, job_id: &JobId) -> Result<()> {
        let (sid, n) = job_parts(job_id)?;
        self.own(sid);
        let prefix = self.server().prefix.clone();
        let found: i64 = self.run(|c| {
            SCRIPTS[RESTART]
                .prepare_invoke()
                .arg(&prefix)
                .arg(sid)
                .arg(n)
                .invoke(c)
        })?;
        if found == 1 {
            Ok(())
        } else {
            Err(Error::UnknownJob(job_id.to_string()))
        }
    }

    fn load_attempts(&self, job_id: &JobId) -> Result<Vec<Job>> {
        let (sid, n) = job_parts(job_id)?;
        let key = self.key(&format!("job:{sid}.{n}.attempts"));
        let texts: Vec<String> =
            self.run(|c| redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(c))?;
        Ok(texts.iter().map(|t| attempt_from(job_id, t)).collect())
    }

    fn load_search_attempts(&self, search_id: &str) -> Result<HashMap<u64, Vec<Job>>> {
        let sid = search(search_id)?;
        let key = self.key(&format!("search:{sid}.attempted"));
        let ns: Vec<u64> = self.run(|c| redis::cmd("SMEMBERS").arg(&key).query(c))?;
        let mut by_job = HashMap::new();
        for n in ns {
            let id = JobId::new(sid, n);
            by_job.insert(n, self.load_attempts(&id)?);
        }
        Ok(by_job)
    }

    fn store_search_value(&self, search_id: &str, key: &str, value: Value) -> Result<()> {
        search(search_id)?;
        self.buffer.value(search_id, key, &value);
        Ok(())
    }

    fn load_search_value(&self, search_id: &str, key: &str) -> Result<Option<Value>> {
        let sid = search(search_id)?;
        let hash = self.key(&format!("search:{sid}.values"));
        let text: Option<String> = self.run(|c| redis::cmd("HGET").arg(&hash).arg(key).query(c))?;
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
        self.buffer(job_id, |d| d.status = Some(status as i64))
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
        let key = self.key("search_id_list");
        self.run(|c| redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(c))
    }

    fn load_all_job_ids(&self, search_id: &str) -> Result<Vec<JobId>> {
        let sid = search(search_id)?;
        Ok((0..self.job_count(sid)?)
            .map(|n| JobId::new(sid, n))
            .collect())
    }

    fn load_job(&self, job_id: &JobId) -> Result<Job> {
        let (sid, n) = job_parts(job_id)?;
        self.buffer.flush()?;
        self.read_jobs(sid, &[n])?
            .pop()
            .flatten()
            .ok_or_else(|| Error::UnknownJob(job_id.to_string()))
    }

    fn load_jobs(&self, job_ids: &[JobId]) -> Result<Vec<Job>> {
        self.buffer.flush()?;
        let mut jobs = Vec::with_capacity(job_ids.len());
        // Consecutive ids of one search in one call.
        for group in job_ids.chunk_by(|a, b| a.search() == b.search()) {
            let sid = search(group[0].search())?;
            let ns: Vec<u64> = group.iter().map(JobId::number).collect();
            for (id, job) in group.iter().zip(self.read_jobs(sid, &ns)?) {
                jobs.push(job.ok_or_else(|| Error::UnknownJob(id.to_string()))?);
            }
        }
        Ok(jobs)
    }

    fn load_search(&self, search_id: &str) -> Result<Vec<Job>> {
        crate::storage::collect_search(self, search_id)
    }

    fn for_each_job(&self, search_id: &str, f: &mut dyn FnMut(Job) -> Result<()>) -> Result<()> {
        let sid = search(search_id)?;
        let count = self.job_count(sid)?;
        let mut start = 0;
        while start < count {
            let ns: Vec<u64> = (start..count.min(start + CHUNK as u64)).collect();
            start += ns.len() as u64;
            for job in self.read_jobs(sid, &ns)?.into_iter().flatten() {
                f(job)?;
            }
        }
        Ok(())
    }

    fn live_owner(&self, search_id: &str, lease: Duration) -> Result<Option<(String, Duration)>> {
        Ok(self.live_owners(search_id, lease)?.into_iter().next())
    }

    fn finished_since(&self, search_id: &str, cursor: u64) -> Result<(Vec<JobId>, u64)> {
        self.buffer.flush()?;
        self.finished_by_others(search_id, cursor)
    }

    fn as_redis(&self) -> Option<&RedisStorage> {
        Some(self)
    }

    fn delete_search(&self, search_id: &str) -> Result<()> {
        let sid = search(search_id)?;
        if !self.load_all_search_ids()?.iter().any(|s| s == sid) {
            return Err(Error::UnknownSearch(search_id.to_string()));
        }
        blob::release_all(self, sid)?;
        let count = self.job_count(sid)?;
        let pattern = self.key(&format!("search:{sid}.*"));
        let mut keys: Vec<String> = self.run(|c| {
            let found: redis::Iter<String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(&pattern)
                .clone()
                .iter(c)?;
            found.collect()
        })?;
        for n in 0..count {
            keys.push(self.key(&format!("job:{sid}.{n}")));
            keys.push(self.key(&format!("job:{sid}.{n}.attempts")));
            keys.push(self.key(&format!("job:{sid}.{n}.meta")));
        }
        let list = self.key("search_id_list");
        let active = self.key("active");
        for chunk in keys.chunks(1000) {
            self.run(|c| redis::cmd("UNLINK").arg(chunk).exec(c))?;
        }
        self.run(|c| {
            redis::pipe()
                .cmd("LREM")
                .arg(&list)
                .arg(0)
                .arg(sid)
                .ignore()
                .cmd("SREM")
                .arg(&active)
                .arg(sid)
                .ignore()
                .exec(c)
        })
    }
}

/// An earlier attempt, as the RESTART script keeps it.
fn attempt_from(job_id: &JobId, text: &str) -> Job {
    let mut job = Job::new(job_id.clone(), Map::new());
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
        return job;
    };
    let get = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_string);
    job.status = status_of(get("status").as_deref());
    fill_outcome(
        &mut job,
        get("out"),
        get("metadata").as_deref(),
        get("intermediate"),
        get("log"),
    );
    job
}
