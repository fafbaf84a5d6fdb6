//! Ackley in n dimensions as a WASI command: the configuration (`{"x": [..]}`) on stdin, the
//! objective (`-ackley(x)`) on stdout; an empty or missing `x` is an error on stderr with exit
//! code 1. Build it for `wasm32-wasip1` (a core module) or `wasm32-wasip2` (a command component).

use std::io::Read;

use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    x: Vec<f64>,
}

fn main() {
    let mut input = String::new();
    let config = std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str::<Config>(&input).map_err(|_| "x must be a list of numbers".to_string()));
    match config {
        Ok(c) if !c.x.is_empty() => println!("{}", -objectives::ackley(&c.x)),
        Ok(_) => fail("x must hold at least one coordinate"),
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) {
    eprintln!("{message}");
    std::process::exit(1);
}
