//! Reaching a Redis server: the URL, its credentials and TLS, and a connection that comes
//! back by itself when the server restarts.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use crate::error::{RedisError, Result};

/// The environment variable a password is taken from when the URL has none.
pub const PASSWORD_ENV: &str = "WASMEVAL_REDIS_PASSWORD";

/// The key prefix when the URL names none (`?prefix=NAME`).
pub const DEFAULT_PREFIX: &str = "wasmeval";

/// How long a command keeps trying while the server is unreachable (restarting, say)
/// before it fails.
pub const RECONNECT: Duration = Duration::from_secs(60);

/// How to reach the server, besides its URL.
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// A file whose first line is the password (`--password-file`): unlike a URL, it does not
    /// show in `ps`.
    pub password_file: Option<PathBuf>,
    /// The PEM certificate of the CA that signed a `rediss://` server's certificate
    /// (`--tls-ca`); without it, the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// Allow a server off this machine without a password (`--insecure`).
    pub insecure: bool,
}

/// A Redis server and the key prefix of a storage on it.
#[derive(Debug, Clone)]
pub struct Server {
    info: ConnectionInfo,
    tls_ca: Option<Vec<u8>>,
    /// The prefix of every key.
    pub prefix: String,
    /// The URL with its password redacted: what messages show.
    pub shown: String,
}

/// True for a URL this module reads (`redis://`, `rediss://`, `redis+unix://`).
pub fn is_redis_url(url: &str) -> bool {
    ["redis://", "rediss://", "redis+unix://"]
        .iter()
        .any(|s| url.starts_with(s))
}

/// `scheme://user:password@host…` with the password written `***`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let Some(at) = rest.rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

impl Server {
    /// Reads `url` (`redis[s]://[[user]:password@]host[:port][/db][?prefix=NAME]`) and the
    /// options. The password comes from `--password-file`, else the URL, else
    /// `$WASMEVAL_REDIS_PASSWORD`. A server that is not on this machine must have one unless
    /// `insecure`.
    pub fn parse(url: &str, options: &RedisOptions) -> Result<Server> {
        let shown = redact(url);
        let bad = |reason: String| RedisError::Url {
            url: shown.clone(),
            reason,
        };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut prefix = DEFAULT_PREFIX.to_string();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("prefix", p)) if valid_prefix(p) => prefix = p.to_string(),
                Some(("prefix", p)) => {
                    return Err(bad(format!(
                        "prefix `{p}`: use letters, digits and `_-.:` (at most 64)"
                    ))
                    .into());
                }
                _ => {
                    return Err(bad(format!(
                        "unknown parameter `{pair}`: the only one is prefix=NAME"
                    ))
                    .into());
                }
            }
        }
        let mut info = base
            .into_connection_info()
            .map_err(|e| bad(format!("not a Redis URL ({e})")))?;
        let mut settings = info.redis_settings().clone();
        let password = match &options.password_file {
            Some(path) => Some(read_password(path)?),
            None => settings
                .password()
                .map(str::to_string)
                .or_else(|| std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty())),
        };
        if let Some(p) = &password {
            settings = settings.set_password(p);
        }
        info = info.set_redis_settings(settings);
        let local = match info.addr() {
            ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => is_loopback(host),
            _ => true,
        };
        if !local && password.is_none() && !options.insecure {
            return Err(RedisError::Insecure { server: shown }.into());
        }
        let tls_ca = match &options.tls_ca {
            Some(path) => Some(std::fs::read(path).map_err(|source| RedisError::File {
                flag: "--tls-ca",
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        if tls_ca.is_some() && !url.starts_with("rediss://") {
            return Err(bad("--tls-ca is for a rediss:// (TLS) URL".into()).into());
        }
        Ok(Server {
            info,
            tls_ca,
            prefix,
            shown,
        })
    }

    /// A key under the prefix.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// Connects (see [`Conn`]), loading `scripts`.
    pub fn connect(&self, scripts: &'static [redis::Script]) -> Result<Conn> {
        let client = match &self.tls_ca {
            Some(ca) => redis::Client::build_with_tls(
                self.info.clone(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            ),
            None => redis::Client::open(self.info.clone()),
        }
        .map_err(|source| self.error(source))?;
        let mut conn = Conn {
            server: self.shown.clone(),
            client,
            con: None,
            scripts,
        };
        conn.open().map_err(|e| conn.error(e))?;
        Ok(conn)
    }

    fn error(&self, source: redis::RedisError) -> crate::error::Error {
        classify(&self.shown, source).into()
    }
}

fn classify(server: &str, source: redis::RedisError) -> RedisError {
    let text = source.to_string();
    if matches!(
        source.kind(),
        redis::ErrorKind::AuthenticationFailed | redis::ErrorKind::Server(_)
    ) && (text.contains("WRONGPASS")
        || text.contains("NOAUTH")
        || text.contains("AUTH")
        || source.kind() == redis::ErrorKind::AuthenticationFailed)
    {
        RedisError::Auth {
            server: server.into(),
            source,
        }
    } else {
        RedisError::Server {
            server: server.into(),
            source,
        }
    }
}

fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 64
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn read_password(path: &PathBuf) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|source| RedisError::File {
        flag: "--password-file",
        path: path.clone(),
        source,
    })?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// A connection that reconnects: a command that fails because the server went away is
/// tried again on a new connection (with the scripts loaded again) for up to
/// [`RECONNECT`]. Commands must therefore be safe to repeat.
pub struct Conn {
    server: String,
    client: redis::Client,
    con: Option<redis::Connection>,
    scripts: &'static [redis::Script],
}

impl Conn {
    fn open(&mut self) -> redis::RedisResult<()> {
        let mut con = self
            .client
            .get_connection_with_timeout(Duration::from_secs(5))?;
        con.set_read_timeout(Some(Duration::from_secs(60)))?;
        for script in self.scripts {
            script.load(&mut con)?;
        }
        self.con = Some(con);
        Ok(())
    }

    fn error(&self, source: redis::RedisError) -> crate::error::Error {
        classify(&self.server, source).into()
    }

    /// Runs `f` on the connection, again on a new one while the server is unreachable.
    pub fn run<T>(
        &mut self,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            let result = match &mut self.con {
                Some(con) => f(con),
                None => self
                    .open()
                    .and_then(|()| f(self.con.as_mut().expect("opened"))),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if retryable(&e) && start.elapsed() < RECONNECT => {
                    self.con = None;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(e) => {
                    if retryable(&e) {
                        self.con = None;
                    }
                    return Err(self.error(e));
                }
            }
        }
    }
}

/// The server went away (or lost the scripts, as a restarted one does).
fn retryable(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
        || e.to_string().contains("LOADING")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_and_remote_servers_need_one() {
        assert_eq!(
            redact("redis://u:secret@h:6379/0"),
            "redis://u:***@h:6379/0"
        );
        assert_eq!(redact("redis://:p@ss@h"), "redis://:***@h");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
        let options = RedisOptions::default();
        // SAFETY-free: the variable is read, never set, by this test.
        if std::env::var(PASSWORD_ENV).is_err() {
            let e = Server::parse("redis://10.1.2.3:6379", &options)
                .unwrap_err()
                .to_string();
            assert!(e.contains("no password"), "{e}");
        }
        assert!(Server::parse("redis://:pw@10.1.2.3:6379", &options).is_ok());
        let insecure = RedisOptions {
            insecure: true,
            ..RedisOptions::default()
        };
        assert!(Server::parse("redis://10.1.2.3:6379", &insecure).is_ok());
        assert!(Server::parse("redis://127.0.0.1:6379", &options).is_ok());
        let s = Server::parse("redis://localhost/2?prefix=proj.a", &options).unwrap();
        assert_eq!(s.key("x"), "proj.a:x");
        let e = Server::parse("redis://:pw@localhost/2?prefx=a", &options)
            .unwrap_err()
            .to_string();
        assert!(e.contains("prefx=a") && !e.contains("pw"), "{e}");
    }
}
