//! Integration tests: one binary, a module per topic. Guests are the real Rust examples,
//! built for wasm32 on first use, and `.wat` fixtures for tiny or hostile cases.

mod common;

mod batch;
mod cache;
mod cli;
mod cli_run;
mod commands;
mod evaluator;
mod languages;
mod layering;
mod loading;
mod process;
mod redis_method;
mod redis_server;
mod sandbox;
mod storage;
mod tokio_use;
