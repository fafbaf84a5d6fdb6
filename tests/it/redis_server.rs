//! A real `redis-server` (Debian's) for a test: started on 127.0.0.1 at a free port, in its
//! own directory, and stopped by its pid when dropped. `WASMEVAL_REDIS_SERVER` names another
//! binary.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    /// Its password, if it has one.
    pub password: Option<String>,
    /// The server's directory (kept while it runs).
    _dir: tempfile::TempDir,
    args: Vec<String>,
}

fn binary() -> String {
    std::env::var("WASMEVAL_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// A server without persistence.
    pub fn start() -> RedisServer {
        RedisServer::with(&["--save", "", "--appendonly", "no"], None)
    }

    /// A server with these extra arguments and password.
    pub fn with(extra: &[&str], password: Option<&str>) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.path().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        if let Some(p) = password {
            args.extend(["--requirepass".into(), p.into()]);
        }
        let mut server = RedisServer {
            child: None,
            port,
            password: password.map(str::to_string),
            _dir: dir,
            args,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let child = Command::new(binary())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (apt-get install redis-server)", binary()));
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server's URL (with its password).
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// The URL with a key prefix.
    pub fn url_with_prefix(&self, prefix: &str) -> String {
        format!("{}?prefix={prefix}", self.url())
    }

    /// `redis-cli`-like: runs one command on the server (again while a restarted server
    /// is still loading its data, for up to 20 s).
    pub fn cmd(&self, args: &[&str]) -> redis::Value {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let start = Instant::now();
        loop {
            let result = redis::Client::open(self.url())
                .and_then(|c| c.get_connection())
                .and_then(|mut con| cmd.query(&mut con));
            match result {
                Ok(v) => return v,
                Err(e) if start.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("{args:?}: {e}"),
            }
        }
    }

    /// Stops the server with SHUTDOWN (which persists what it has, when it persists) and
    /// waits for it to end.
    pub fn shutdown(&mut self) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut con = client.get_connection().unwrap();
        let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(&mut con);
        if let Some(mut c) = self.child.take() {
            c.wait().unwrap();
        }
    }

    /// Starts it again, on the same port and directory.
    pub fn restart(&mut self) {
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
