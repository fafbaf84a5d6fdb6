//! A sandbox probe: each configuration asks for one action (read a file, open a socket,
//! allocate, sleep, spin, panic, ...), and the result says what the guest saw. The tests use
//! it to check the sandbox from inside a real Rust guest.

use std::io::Write;

use serde::Deserialize;
use wasmeval_guest::{Value, job, json};

#[derive(Deserialize)]
struct Config {
    action: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    n: u64,
    #[serde(default)]
    x: f64,
}

fn outcome<T, E: std::fmt::Display>(r: Result<T, E>, ok: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(v) => json!({"objective": 1, "metadata": {"ok": true, "value": ok(v)}}),
        Err(e) => json!({"objective": 0, "metadata": {"ok": false, "error": e.to_string()}}),
    }
}

fn run(c: Config) -> Result<Value, String> {
    Ok(match c.action.as_str() {
        "read_file" => outcome(std::fs::read_to_string(&c.path), Value::from),
        "write_file" => outcome(std::fs::write(&c.path, &c.text), |()| Value::Null),
        "env" => outcome(std::env::var(&c.path), Value::from),
        "env_count" => json!(std::env::vars().count()),
        "args_count" => json!(std::env::args().count()),
        "connect" => outcome(std::net::TcpStream::connect(&c.path), |_| Value::Null),
        "resolve" => outcome(std::net::ToSocketAddrs::to_socket_addrs(&(c.path.as_str(), 80)), |a| {
            Value::from(a.count())
        }),
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_millis(c.n));
            json!(1)
        }
        "spin" => {
            let mut i: u64 = 0;
            loop {
                i = std::hint::black_box(i.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut blocks = Vec::new();
            for _ in 0..c.n {
                blocks.push(vec![1u8; 1 << 20]);
            }
            json!(blocks.iter().map(|b| b[0] as u64).sum::<u64>())
        }
        "panic" => panic!("the probe panics as asked"),
        "recurse" => json!(recurse(c.n, [0u8; 64])),
        "echo" => json!({"objective": c.x, "metadata": {"x": c.x}}),
        "err" => return Err(c.text.repeat(c.n.max(1) as usize)),
        "records" => {
            for i in 0..c.n {
                job::record(i as f64, i as f64);
            }
            json!(c.n)
        }
        "log" => {
            for _ in 0..c.n {
                job::log(&c.text);
            }
            json!(c.n)
        }
        "stdout" => {
            let mut out = std::io::stdout();
            for _ in 0..c.n {
                let _ = out.write_all(c.text.as_bytes());
            }
            json!(c.n)
        }
        "stderr" => {
            let mut err = std::io::stderr();
            for _ in 0..c.n {
                let _ = err.write_all(c.text.as_bytes());
            }
            json!(c.n)
        }
        "big_result" => json!("1".repeat(c.n as usize)),
        "until_stopped" => {
            let mut polls: u64 = 0;
            while !job::stopped() {
                polls += 1;
            }
            json!({"objective": 1, "metadata": {"polls": polls}})
        }
        "kwargs" => json!({"objective": 1, "metadata": {"kwargs": job::kwargs(), "id": job::id()}}),
        "nan" => json!(f64::NAN),
        // The result exactly as given in `text` (metadata, lists, failure strings).
        "raw" => serde_json::from_str(&c.text).map_err(|e| e.to_string())?,
        "record_non_finite" => {
            for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                job::record(1.0, v);
            }
            json!(1)
        }
        // Writes `n` MiB to the file at `path`, a MiB at a time.
        "fill" => {
            let block = vec![7u8; 1 << 20];
            outcome(
                std::fs::File::create(&c.path).and_then(|mut f| {
                    for _ in 0..c.n {
                        f.write_all(&block)?;
                    }
                    Ok(())
                }),
                |()| Value::Null,
            )
        }
        other => return Err(format!("unknown action {other}")),
    })
}

/// Recursion that the optimizer cannot turn into a loop: each frame keeps a buffer alive.
#[inline(never)]
fn recurse(n: u64, pad: [u8; 64]) -> u64 {
    if n == 0 {
        return pad[0] as u64;
    }
    let mut next = pad;
    next[(n % 64) as usize] = n as u8;
    std::hint::black_box(recurse(n - 1, std::hint::black_box(next))) + next[0] as u64
}

wasmeval_guest::export_run!(run);
