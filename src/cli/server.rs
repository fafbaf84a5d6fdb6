//! The options of a Redis server, shared by every command that takes one.

use std::path::PathBuf;

use clap::Args;

use crate::storage::RedisOptions;

/// How to reach a Redis server (`--storage redis://…`, `wasmeval worker redis://…`).
#[derive(Args, Debug, Clone, Default)]
pub struct ServerArgs {
    /// A file whose first line is the Redis password (a password in the URL shows in `ps`;
    /// $WASMEVAL_REDIS_PASSWORD is read when neither gives one).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The PEM certificate of the CA that signed a rediss:// server's certificate.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Allow a Redis server that is not on this machine without a password.
    #[arg(long)]
    pub insecure: bool,
}

impl ServerArgs {
    /// The library's options.
    pub fn options(&self) -> RedisOptions {
        RedisOptions {
            password_file: self.password_file.clone(),
            tls_ca: self.tls_ca.clone(),
            insecure: self.insecure,
        }
    }
}
