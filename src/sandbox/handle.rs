//! A run function as it travels to another node: its name, its bytes, their sha256 and the
//! policy its jobs run under. Not compiled code: code compiled here may not load on another
//! machine's CPU or wasmtime build, so the receiving node compiles it again (through its own
//! cache), after checking that the bytes are the ones named.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sandbox::{CacheDir, LoadedModule, ModuleError, Policy, RunFunction, cache};

/// A serializable handle on a loaded run function (see the module docs). Make one with
/// [`LoadedModule::handle`] or [`crate::Evaluator::module_handle`]; load it on the receiving
/// side with [`ModuleHandle::load`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleHandle {
    /// The name used in messages.
    pub name: PathBuf,
    /// The sha256 of `wasm`, hex.
    pub sha256: String,
    /// The policy the jobs run under.
    pub policy: Policy,
    /// The WebAssembly binary (the binary form of `.wat` text).
    pub wasm: Arc<Vec<u8>>,
}

impl ModuleHandle {
    /// Checks the bytes against the sha256, then compiles (or finds in `cache`) and links
    /// the module under the handle's policy. Bytes that are not the ones named are refused
    /// with [`ModuleError::Digest`].
    pub fn load(&self, cache: &CacheDir) -> Result<LoadedModule> {
        let found = cache::sha256_hex(&self.wasm);
        if found != self.sha256 {
            return Err(Error::Module {
                path: self.name.clone(),
                source: ModuleError::Digest {
                    expected: self.sha256.clone(),
                    found,
                },
            });
        }
        let source = RunFunction::Bytes {
            name: self.name.to_string_lossy().into_owned(),
            bytes: self.wasm.to_vec(),
        };
        LoadedModule::load(&source, &self.policy, cache)
    }
}
