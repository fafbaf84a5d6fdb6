//! Why a module cannot be used as a run function, found at load before any job starts.

use crate::error::Foreign;
use crate::sandbox::admission::Shape;
use crate::sandbox::compile::CompileError;

/// Why a module cannot be used as a run function. [`crate::Error::Module`] names its file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    /// `.wat` text that does not parse.
    #[error("invalid WebAssembly text: {0}")]
    Text(#[source] wat::Error),
    /// Neither a binary nor text; what the file starts with.
    #[error(
        "not WebAssembly: the file starts with {0}; expected a .wasm binary (\\0asm) or .wat text"
    )]
    NotWasm(String),
    /// A binary of an unknown version; its version bytes.
    #[error(
        "unknown WebAssembly binary version {0:02x?}; expected a core module (01 00 00 00) or a \
         component (0d 00 01 00)"
    )]
    Version(Vec<u8>),
    /// A binary that does not parse.
    #[error("invalid WebAssembly: {0}")]
    Invalid(#[source] wasmparser::BinaryReaderError),
    /// Componentizing or compiling failed (see [`CompileError`]).
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The compiled code could not be loaded.
    #[error("cannot load the compiled code: {0}")]
    Load(#[source] Foreign),
    /// One instance needs more than the whole instance pool.
    #[error(
        "too big for the instance pool: one instance needs {} core instances, {} memories and {} \
         tables; the pool holds {}, {} and {}",
        needs.core_instances, needs.memories, needs.tables,
        pool.core_instances, pool.memories, pool.tables
    )]
    TooBigForPool {
        /// What one instance needs.
        needs: Shape,
        /// What the pool holds.
        pool: Shape,
    },
    /// A core module with neither `_start` nor a canonical-ABI `run`; its exports.
    #[error(
        "a core module that exports neither `_start` nor `run` with `cabi_realloc` (exports: {}); \
         expected a WASI command (`_start`), a core module exporting the canonical-ABI `run` and \
         `cabi_realloc` (componentized at load), or a component exporting `run`",
        list(.0)
    )]
    NoEntry(Vec<String>),
    /// A component without `run` or `wasi:cli/run`; its exports.
    #[error(
        "a component that exports neither `run` nor `wasi:cli/run` (exports: {}); expected the \
         `objective` world (`run: func(config: string) -> result<string, string>`) or a WASI \
         command",
        list(.0)
    )]
    NoRun(Vec<String>),
    /// A component whose `run` has another type.
    #[error(
        "the component exports `run` with the wrong type; expected \
         `run: func(config: string) -> result<string, string>`"
    )]
    WrongRunType,
    /// The `wasi:cli/run` export cannot be called.
    #[error("the `wasi:cli/run` export is not usable: {0}")]
    CommandUnusable(#[source] Foreign),
    /// An import that the host does not provide.
    #[error(
        "it imports something wasmeval does not provide (only WASI and `wasmeval:objective/job` \
         are): {0}"
    )]
    Imports(#[source] Foreign),
    /// A [`crate::sandbox::ModuleHandle`]'s bytes are not the ones its sha256 names.
    #[error("the module's bytes have sha256 {found}, and the handle names {expected}")]
    Digest {
        /// The sha256 the handle names.
        expected: String,
        /// The sha256 of the bytes it carries.
        found: String,
    },
    /// The host's own functions could not be added to the linker (a defect of this build).
    #[error("cannot link the host's functions: {0}")]
    Linker(#[source] Foreign),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
