//! Redis: a storage shared by evaluators and workers on any machines
//! ([`RedisStorage`], `--storage redis://host:port`), and the redis method
//! ([`crate::Method::Redis`]): the evaluator puts its jobs on a stream of the server, and
//! `wasmeval worker redis://host:port` processes on any machine ([`serve`]) take them, run
//! them in their own pool of worker processes and store the outcomes.
//!
//! - **Workers come and go.** A worker joins the stream's consumer group, holds a window of
//!   jobs and renews its claim on them every [`BEAT`]; one that misses 3 beats (killed, its
//!   machine lost) has its jobs taken over by another, with or without a job timeout. A job
//!   may therefore run twice: the first outcome stored wins and the other is dropped, so
//!   every job has exactly one. A worker stopped with SIGTERM puts its jobs back at once.
//! - **Modules by value.** The evaluator stores its module under its sha256; a worker checks
//!   its size, fetches it, checks the sha256 and compiles it in its bounded compile child into
//!   its own cache. No shared filesystem is needed.
//! - **Trust.** Whoever can write to the server can make workers run a module: the sha256
//!   proves integrity, not origin. A worker with a `--dir` or `--env` grant runs only the
//!   modules of `--allow-module`. Its limits are ceilings: a search asking for more is refused
//!   and the reason logged. The evaluator reads the workers' outcomes back under its own caps.
//! - **Cleanup.** Entries are deleted once acknowledged, consumers silent for 30 s with nothing
//!   pending are removed, a module is deleted when no search uses it, and the last evaluator of
//!   a search deletes its stream. `wasmeval results --delete-search ID` removes a search.

mod link;
mod pool;
pub mod search;
mod worker;

pub use crate::error::RedisError;
pub use crate::storage::redis::{
    DEFAULT_PREFIX, PASSWORD_ENV, RedisOptions, RedisStorage, Server, is_redis_url, redact,
};
pub use pool::{IN_FLIGHT, RedisPool};
pub use search::BEAT;
pub use worker::{WorkerOptions, serve};
