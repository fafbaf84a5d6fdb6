//! A run function as a plain WASI command: it reads the configuration (JSON) on stdin and
//! prints the objective as the last line of stdout. Logs go to stderr; a non-zero exit code
//! is a failure. Build it for `wasm32-wasip1` (a core module) or `wasm32-wasip2` (a command
//! component).

use std::io::Read;

fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("read stdin");
    let config: serde_json::Value = match serde_json::from_str(&input) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("invalid configuration: {e}");
            std::process::exit(2);
        }
    };
    let id = std::env::var("WASMEVAL_JOB_ID").unwrap_or_default();
    eprintln!("job {id} kwargs {}", std::env::var("WASMEVAL_KWARGS").unwrap_or_default());
    if let Some(code) = config.get("exit").and_then(|v| v.as_i64()) {
        eprintln!("exiting with {code} as asked");
        std::process::exit(code as i32);
    }
    if let Some(raw) = config.get("raw").and_then(|v| v.as_str()) {
        println!("{raw}");
        return;
    }
    if let Some(ms) = config.get("sleep_ms").and_then(|v| v.as_u64()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let x: Vec<f64> = config["x"].as_array().map(|a| a.iter().filter_map(|v| v.as_f64()).collect()).unwrap_or_default();
    println!("progress: evaluating {} coordinates", x.len());
    println!("{}", -objectives::rastrigin(&x));
}
