//! wasmeval
pub mod error;
pub mod job;
pub mod output;
pub mod sandbox;
