//! The Redis storage and the redis method through the real binary, against a real
//! `redis-server`: workers that die, join and are stopped, a server restart, results equal to
//! SQLite's, TLS, the refusals, and cleanup.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{guest, root};
use crate::redis_server::RedisServer;

fn wasmeval() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wasmeval"))
}

fn run(args: &[&str]) -> Output {
    wasmeval().args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A worker process, killed if the test ends without stopping it.
struct Worker(Option<Child>);

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A worker process serving `url`, its log on a pipe.
fn worker(url: &str, processes: usize, extra: &[&str]) -> Worker {
    let child = wasmeval()
        .args(["worker", url, "--workers", &processes.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Worker(Some(child))
}

/// Stops a worker with SIGTERM and returns its log.
fn stop(mut worker: Worker) -> String {
    let child = worker.0.take().unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "worker: {:?}", out.status);
    stderr(&out)
}

fn probe_input(dir: &Path, n: usize, config: &str) -> PathBuf {
    let path = dir.join(format!("probe-{n}.jsonl"));
    let mut f = std::fs::File::create(&path).unwrap();
    for _ in 0..n {
        writeln!(f, "{config}").unwrap();
    }
    path
}

/// The number of outcomes stored in search 0 (its completion list).
fn finished(server: &RedisServer) -> i64 {
    match server.cmd(&["LLEN", "wasmeval:search:0.done"]) {
        redis::Value::Int(n) => n,
        other => panic!("{other:?}"),
    }
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let mut rows = vec![reader.headers().unwrap().iter().map(String::from).collect()];
    rows.extend(
        reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect()),
    );
    rows
}

#[test]
fn every_job_has_one_outcome_when_a_worker_is_killed_and_another_joins() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let input = probe_input(dir.path(), 20_000, r#"{"action": "sleep", "n": 2}"#);
    let out = dir.path().join("results.csv");
    let probe = guest("probe");
    let doomed = worker(&url, 3, &[]);
    let steady = worker(&url, 3, &[]);
    let mut evaluator = wasmeval()
        .args(["run", probe.to_str().unwrap(), "-q", "--method", "redis"])
        .args(["--storage", &url, "-i", input.to_str().unwrap()])
        .args(["-o", out.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("5,000 outcomes", Duration::from_secs(120), || {
        finished(&server) >= 5_000
    });
    drop(doomed); // SIGKILL
    let joining = worker(&url, 3, &[]);
    let status = evaluator.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(evaluator.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    // Each job finished once: one entry each in the completion list, one row each.
    assert_eq!(finished(&server), 20_000);
    let rows = csv_rows(&out);
    let header = &rows[0];
    let (id, status_col, objective) = (
        header.iter().position(|h| h == "job_id").unwrap(),
        header.iter().position(|h| h == "job_status").unwrap(),
        header.iter().position(|h| h == "objective").unwrap(),
    );
    let mut ids: Vec<u64> = rows[1..].iter().map(|r| r[id].parse().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..20_000).collect::<Vec<_>>());
    assert!(
        rows[1..]
            .iter()
            .all(|r| r[status_col] == "DONE" && r[objective] == "1")
    );
    // The joining worker took jobs; so did the one that stayed.
    let joined = stop(joining);
    let stayed = stop(steady);
    for (name, log) in [("joining", &joined), ("steady", &stayed)] {
        let ran: u64 = log
            .lines()
            .find_map(|l| {
                l.split("search 0: ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{name} worker: {log}"));
        assert!(ran > 0, "{name} worker ran nothing: {log}");
    }
    // Cleanup: the stream and the module are gone with the last evaluator.
    assert_eq!(
        server.cmd(&["EXISTS", "wasmeval:search:0.jobs"]),
        redis::Value::Int(0)
    );
    let modules = server.cmd(&["KEYS", "wasmeval:module:*"]);
    assert_eq!(modules, redis::Value::Array(vec![]), "{modules:?}");
}

#[test]
fn a_server_restarted_mid_run_loses_nothing_acknowledged() {
    let mut server = RedisServer::with(
        &[
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ],
        None,
    );
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let input = probe_input(dir.path(), 3_000, r#"{"action": "sleep", "n": 2}"#);
    let out = dir.path().join("results.csv");
    let w = worker(&url, 4, &[]);
    let mut evaluator = wasmeval()
        .args([
            "run",
            guest("probe").to_str().unwrap(),
            "-q",
            "--method",
            "redis",
        ])
        .args(["--storage", &url, "-i", input.to_str().unwrap()])
        .args(["-o", out.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("500 outcomes", Duration::from_secs(60), || {
        finished(&server) >= 500
    });
    server.shutdown();
    std::thread::sleep(Duration::from_secs(1));
    server.restart();
    // What was acknowledged before the shutdown is there after it.
    assert!(finished(&server) >= 500);
    let status = evaluator.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(evaluator.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    let rows = csv_rows(&out);
    assert_eq!(rows.len(), 3_001);
    let status_col = rows[0].iter().position(|h| h == "job_status").unwrap();
    assert!(
        rows[1..].iter().all(|r| r[status_col] == "DONE"),
        "{:?}",
        &rows[..3]
    );
    assert_eq!(finished(&server), 3_000);
    stop(w);
}

/// The columns DeepHyper's tools read back: configuration, objective, id, status, and the
/// names of every column.
fn comparable(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let rows = csv_rows(path);
    let keep: Vec<usize> = rows[0]
        .iter()
        .enumerate()
        .filter(|(_, h)| !h.starts_with("m:timestamp"))
        .map(|(i, _)| i)
        .collect();
    let body = rows[1..]
        .iter()
        .map(|r| keep.iter().map(|&i| r[i].clone()).collect())
        .collect();
    (rows[0].clone(), body)
}

#[test]
fn a_redis_search_exports_the_results_csv_of_a_sqlite_one() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ackley = guest("ackley");
    let input = root().join("examples/configs/ackley.jsonl");
    let sqlite = dir.path().join("s.sqlite");
    let outputs: Vec<PathBuf> = ["sqlite.csv", "redis.csv", "method.csv"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    let common = |storage: &str, out: &Path, method: &str| {
        let o = run(&[
            "run",
            ackley.to_str().unwrap(),
            "-q",
            "-i",
            input.to_str().unwrap(),
            "--storage",
            storage,
            "--method",
            method,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{method} {storage}: {}", stderr(&o));
    };
    common(sqlite.to_str().unwrap(), &outputs[0], "process");
    common(&server.url_with_prefix("a"), &outputs[1], "process");
    let w = worker(&server.url_with_prefix("b"), 2, &[]);
    common(&server.url_with_prefix("b"), &outputs[2], "redis");
    stop(w);
    let expected = comparable(&outputs[0]);
    for out in &outputs[1..] {
        assert_eq!(comparable(out), expected, "{}", out.display());
    }
    // `wasmeval results` reads the same search back from the server.
    let again = dir.path().join("again.csv");
    let o = run(&[
        "results",
        "--storage",
        &server.url_with_prefix("b"),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(comparable(&again), expected);
    // Deleting the search leaves nothing of it.
    let o = run(&[
        "results",
        "--storage",
        &server.url_with_prefix("b"),
        "--delete-search",
        "0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        server.cmd(&["KEYS", "b:*:0.*"]),
        redis::Value::Array(vec![])
    );
    let o = run(&["results", "--storage", &server.url_with_prefix("b")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("holds no search"), "{}", stderr(&o));
}

/// One line on standard error, and the exit code.
fn one_line_error(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

#[test]
fn bad_servers_credentials_and_key_spaces_get_one_line_each() {
    let server = RedisServer::with(&["--save", ""], Some("s3cret"));
    let dir = tempfile::tempdir().unwrap();
    let ackley = guest("ackley");
    let ackley = ackley.to_str().unwrap();
    let input = root().join("examples/configs/ackley.jsonl");
    let input = input.to_str().unwrap();
    let port = server.port;
    // --method redis needs a Redis storage; nothing is written.
    let db = dir.path().join("x.sqlite");
    let o = run(&[
        "run",
        ackley,
        "-i",
        input,
        "--method",
        "redis",
        "--storage",
        db.to_str().unwrap(),
    ]);
    one_line_error(&o, 2, "needs a Redis storage");
    assert!(!db.exists());
    // A server off this machine without a password.
    let o = run(&["results", "--storage", "redis://10.255.255.1:6379"]);
    one_line_error(&o, 2, "no password is given");
    // A wrong password: refused, and never printed.
    let o = run(&[
        "results",
        "--storage",
        &format!("redis://:wrong@127.0.0.1:{port}"),
    ]);
    one_line_error(&o, 2, "refused the password");
    assert!(!stderr(&o).contains("wrong@"), "{}", stderr(&o));
    // A password in the URL is shown `***`, never as given.
    let with_password = format!("redis://:s3cret@127.0.0.1:{port}");
    let o = run(&[
        "run",
        ackley,
        "-i",
        input,
        "--max-jobs",
        "1",
        "--storage",
        &with_password,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("redis://:***@127.0.0.1:{port}")),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("s3cret"), "{}", stderr(&o));
    // The password from a file, or from the environment.
    let file = dir.path().join("pw");
    std::fs::write(&file, "s3cret\n").unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    let o = run(&[
        "run",
        ackley,
        "-q",
        "-i",
        input,
        "--storage",
        &url,
        "--password-file",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = wasmeval()
        .args(["results", "--storage", &url, "--format", "csv"])
        .env("WASMEVAL_REDIS_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 42);
    // An unreachable server.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = run(&[
        "results",
        "--storage",
        &format!("redis://127.0.0.1:{closed}"),
    ]);
    one_line_error(&o, 1, &format!("127.0.0.1:{closed}"));
    // Keys under the prefix written by something else, and a storage of another layout.
    server_cmd(&server, &["SET", "other:thing", "1"]);
    let o = run(&[
        "results",
        "--storage",
        &format!("redis://:s3cret@127.0.0.1:{port}/?prefix=other"),
    ]);
    one_line_error(&o, 2, "written by something else");
    server_cmd(
        &server,
        &["SET", "later:version", "wasmeval-redis-storage 9"],
    );
    let o = run(&[
        "results",
        "--storage",
        &format!("redis://:s3cret@127.0.0.1:{port}/?prefix=later"),
    ]);
    one_line_error(&o, 2, "wasmeval-redis-storage 9");
    // A worker with a grant must be told which modules it may run.
    let o = run(&["worker", &server.url(), "--dir", "/tmp"]);
    one_line_error(&o, 2, "--allow-module");
}

fn server_cmd(server: &RedisServer, args: &[&str]) {
    server.cmd(args);
}

#[test]
fn a_worker_refuses_a_search_above_its_ceilings_or_of_another_build() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let input = probe_input(dir.path(), 4, r#"{"action": "sleep", "n": 1}"#);
    let probe = guest("probe");
    let evaluator = |memory: &str| {
        wasmeval()
            .args(["run", probe.to_str().unwrap(), "-q", "--method", "redis"])
            .args([
                "--storage",
                &url,
                "-i",
                input.to_str().unwrap(),
                "--memory",
                memory,
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut big = evaluator("1GiB");
    wait_for("the offer", Duration::from_secs(60), || {
        server.cmd(&["HEXISTS", "wasmeval:search:0.setup", "offer"]) == redis::Value::Int(1)
    });
    let o = run(&["worker", &url, "--search", "0"]);
    one_line_error(&o, 1, "above this worker's");
    assert!(stderr(&o).contains("--memory"), "{}", stderr(&o));
    // With the ceiling raised, the same worker serves it.
    let w = worker(&url, 1, &["--search", "0", "--memory", "1GiB"]);
    assert!(big.wait().unwrap().success());
    stop(w);
    // A search offered by another build is refused, naming both.
    let mut other = evaluator("64MiB");
    wait_for("the offer", Duration::from_secs(60), || {
        server.cmd(&["HEXISTS", "wasmeval:search:1.setup", "offer"]) == redis::Value::Int(1)
    });
    let redis::Value::BulkString(offer) = server.cmd(&["HGET", "wasmeval:search:1.setup", "offer"])
    else {
        panic!("no offer")
    };
    let mut offer: serde_json::Value = serde_json::from_slice(&offer).unwrap();
    offer["build"] = "0.0.1+elsewhere".into();
    server.cmd(&[
        "HSET",
        "wasmeval:search:1.setup",
        "offer",
        &offer.to_string(),
    ]);
    let o = run(&["worker", &url, "--search", "1"]);
    one_line_error(&o, 1, "0.0.1+elsewhere");
    unsafe { libc::kill(other.id() as i32, libc::SIGTERM) };
    other.wait().unwrap();
}

#[test]
fn tls_with_a_ca_made_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=wasmeval test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(d.join("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    let path = |n: &str| d.join(n).display().to_string();
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = RedisServer::with(
        &[
            "--save",
            "",
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &path("server.pem"),
            "--tls-key-file",
            &path("server.key"),
            "--tls-ca-cert-file",
            &path("ca.pem"),
            "--tls-auth-clients",
            "no",
        ],
        None,
    );
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let ackley = guest("ackley");
    let input = root().join("examples/configs/ackley.jsonl");
    let o = run(&[
        "run",
        ackley.to_str().unwrap(),
        "-q",
        "-i",
        input.to_str().unwrap(),
        "--storage",
        &url,
        "--tls-ca",
        &path("ca.pem"),
        "-o",
        &path("out.csv"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(csv_rows(&d.join("out.csv")).len(), 42);
    // The plain port holds the same storage.
    assert_eq!(
        server.cmd(&["LLEN", "wasmeval:search:0.done"]),
        redis::Value::Int(41)
    );
    // Without the CA the server's certificate is not trusted.
    let o = run(&["results", "--storage", &url]);
    one_line_error(&o, 1, "certificate");
}

/// A network namespace joined to this one by a veth pair: a second "host" at
/// `10.251.N.2`, this one at `10.251.N.1`. Deleted when dropped.
struct OtherHost {
    name: String,
    here: String,
    there: String,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(o.status.success(), "ip {args:?}: {}", stderr(&o));
}

impl OtherHost {
    fn new() -> OtherHost {
        let n = std::process::id() % 200 + 20;
        let host = OtherHost {
            name: format!("wev{n}"),
            here: format!("10.251.{n}.1"),
            there: format!("10.251.{n}.2"),
        };
        let (a, b) = (format!("weh{n}"), format!("wen{n}"));
        // Left over from an earlier run that was killed.
        let _ = Command::new("ip")
            .args(["netns", "del", &host.name])
            .output();
        let _ = Command::new("ip").args(["link", "del", &a]).output();
        ip(&["netns", "add", &host.name]);
        ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        ip(&["link", "set", &b, "netns", &host.name]);
        ip(&["addr", "add", &format!("{}/24", host.here), "dev", &a]);
        ip(&["link", "set", &a, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &host.name, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&["addr", "add", &format!("{}/24", host.there), "dev", &b]);
        inside(&["link", "set", &b, "up"]);
        inside(&["link", "set", "lo", "up"]);
        host
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

#[test]
fn a_worker_on_another_host_and_filesystem_fetches_and_compiles_the_module_itself() {
    let host = OtherHost::new();
    let server = RedisServer::with(
        &["--save", "", "--bind", "127.0.0.1", &host.here],
        Some("n3tpass"),
    );
    // The worker's binary, copied where the worker's mount namespace still sees it (its /tmp
    // and the checkout are replaced by empty tmpfs).
    let outside = tempfile::Builder::new().tempdir_in("/var/tmp").unwrap();
    let binary = outside.path().join("wasmeval");
    std::fs::copy(env!("CARGO_BIN_EXE_wasmeval"), &binary).unwrap();
    let pid_file = outside.path().join("worker.pid");
    let script = format!(
        "set -e; mount -t tmpfs tmpfs {checkout}; mount -t tmpfs tmpfs /tmp; \
         test ! -e {checkout}/Cargo.toml; export WASMEVAL_CACHE_DIR=/tmp/own-cache; \
         {binary} worker redis://{here}:{port} --workers 2 & echo $! > {pid}; wait $! || true; \
         ls /tmp/own-cache",
        checkout = root().display(),
        binary = binary.display(),
        here = host.here,
        port = server.port,
        pid = pid_file.display(),
    );
    let mut remote = Command::new("ip")
        .args([
            "netns",
            "exec",
            &host.name,
            "unshare",
            "--mount",
            "--propagation",
            "private",
        ])
        .args(["sh", "-c", &script])
        .env("WASMEVAL_REDIS_PASSWORD", "n3tpass")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.csv");
    let o = run(&[
        "run",
        guest("ackley").to_str().unwrap(),
        "-q",
        "--method",
        "redis",
        "--storage",
        &server.url(),
        "-i",
        root()
            .join("examples/configs/ackley.jsonl")
            .to_str()
            .unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(csv_rows(&out).len(), 42);
    wait_for("the worker's pid", Duration::from_secs(10), || {
        pid_file.exists()
    });
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(pid, libc::SIGTERM) };
    remote.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(remote.stderr.as_mut().unwrap(), &mut log).unwrap();
    let mut cache = String::new();
    std::io::Read::read_to_string(remote.stdout.as_mut().unwrap(), &mut cache).unwrap();
    // Every job ran there: the only worker, reaching the server over the veth pair.
    assert!(log.contains("search 0: 41 jobs run here"), "{log}");
    assert!(log.contains("search 0: fetched module"), "{log}");
    // It compiled the module into its own cache, which only it could see.
    assert!(
        cache.lines().any(|l| l.ends_with(".cwasm")),
        "cache: {cache}\nlog: {log}"
    );
}

#[test]
fn a_killed_evaluator_is_resumed_from_the_server_once_its_lease_ran_out() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let input = probe_input(dir.path(), 400, r#"{"action": "sleep", "n": 20}"#);
    let out = dir.path().join("results.csv");
    let probe = guest("probe");
    let w = worker(&url, 2, &[]);
    let command = |resume: bool| {
        let mut c = wasmeval();
        c.args(["run", probe.to_str().unwrap(), "-q", "--method", "redis"])
            .args(["--storage", &url, "-i", input.to_str().unwrap()])
            .args(["-o", out.to_str().unwrap()]);
        if resume {
            c.arg("--resume");
        }
        c
    };
    let mut first = command(false).stderr(Stdio::null()).spawn().unwrap();
    wait_for("50 outcomes", Duration::from_secs(60), || {
        finished(&server) >= 50
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let done_before = finished(&server);
    // Its lease is still alive: the resume is refused.
    let o = command(true).output().unwrap();
    one_line_error(&o, 2, "still being run by another evaluator");
    // Once it ran out (10 s without a heartbeat), the resume runs the rest.
    std::thread::sleep(Duration::from_secs(10));
    let o = command(true).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = csv_rows(&out);
    assert_eq!(rows.len(), 401);
    let status_col = rows[0].iter().position(|h| h == "job_status").unwrap();
    assert!(
        rows[1..].iter().all(|r| r[status_col] == "DONE"),
        "{:?}",
        &rows[..3]
    );
    assert!(done_before >= 50);
    // The dead evaluator is not counted: the search ended with the resumed one.
    assert_eq!(
        server.cmd(&["SISMEMBER", "wasmeval:active", "0"]),
        redis::Value::Int(0)
    );
    assert_eq!(
        server.cmd(&["EXISTS", "wasmeval:search:0.jobs"]),
        redis::Value::Int(0)
    );
    stop(w);
}

#[test]
fn the_search_timeout_cancels_the_jobs_on_the_workers() {
    let server = RedisServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let input = probe_input(dir.path(), 4, r#"{"action": "spin"}"#);
    let w = worker(&url, 2, &[]);
    let started = Instant::now();
    let o = run(&[
        "run",
        guest("probe").to_str().unwrap(),
        "--method",
        "redis",
        "--storage",
        &url,
        "-i",
        input.to_str().unwrap(),
        "--search-timeout",
        "1s",
        "--format",
        "csv",
        "-o",
        "-",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(30));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let cancelled = text.lines().filter(|l| l.contains(",F_CANCELLED,")).count();
    assert_eq!(cancelled, 4, "{text}");
    // The workers stopped spinning: a new search is served at once.
    let input = probe_input(dir.path(), 2, r#"{"action": "echo", "x": 2.5}"#);
    let o = run(&[
        "run",
        guest("probe").to_str().unwrap(),
        "-q",
        "--method",
        "redis",
        "--storage",
        &url,
        "-i",
        input.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    stop(w);
}
