//! Redis: a storage shared by evaluators and workers on any machines
//! ([`RedisStorage`], `--storage redis://host:port`), and the redis method
//! ([`crate::Method::Redis`]): the evaluator puts its jobs on a stream of the server, and
//! `wasmeval worker redis://host:port` processes on any machine take them, run them in their
//! own pool of worker processes and store the outcomes.

pub use crate::error::RedisError;
pub use crate::storage::redis::{
    DEFAULT_PREFIX, PASSWORD_ENV, RedisOptions, RedisStorage, Server, is_redis_url, redact,
};
