//! Turning a core module into a component at load, so that guests built with `wit-bindgen c`,
//! the C/C++/Zig header, Go's `//go:wasmexport` or AssemblyScript run without `wasm-tools`.
//!
//! Two kinds of core module are componentized:
//! - one that carries component type information (a `component-type*` custom section, what
//!   `wit-bindgen` emits): its own world is used;
//! - one that exports the canonical-ABI lowering of `run` (`run`, `cabi_realloc`, and no
//!   `_start`): wasmeval's own world is embedded, `objective` when it imports the `job`
//!   interface, else `pure-objective`.
//!
//! A module importing WASI preview 1 gets the preview1 adapter of wasmtime 48 (the reactor
//! adapter, or the command adapter for a module with `_start` and no `run`), from the
//! `wasi-preview1-component-adapter-provider` crate. Everything else (plain WASI commands,
//! components) is left as it is.

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{Parser, Payload};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

use crate::error::Foreign;

/// wasmeval's WIT package, embedded into core modules that bring no type information.
pub const WIT: &str = include_str!("../../wit/objective.wit");

/// The import module of the `job` interface in a core module.
pub const JOB_MODULE: &str = "wasmeval:objective/job@0.1.0";

/// A core module turned into a component, and how.
#[derive(Debug, Clone)]
pub struct Componentized {
    /// The component.
    pub component: Vec<u8>,
    /// How it was made, for `inspect` and messages.
    pub how: String,
}

/// Why a core module meant to be componentized is not one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentizeError {
    /// The module does not parse.
    #[error("invalid WebAssembly: {0}")]
    Invalid(#[source] wasmparser::BinaryReaderError),
    /// `wit-component` refused the module (a `run` of the wrong type, for example).
    #[error("cannot componentize this core module: {0}")]
    Encode(#[source] Foreign),
    /// The WASI preview1 adapter could not be added.
    #[error("cannot load the WASI preview1 adapter: {0}")]
    Adapter(#[source] Foreign),
    /// wasmeval's own world could not be embedded (a defect of this build).
    #[error("cannot embed wasmeval's world: {0}")]
    Wit(#[source] Foreign),
}

/// What a core module's sections say about componentizing it.
#[derive(Default)]
struct Sections {
    type_info: bool,
    run: bool,
    start: bool,
    job: bool,
    preview1: bool,
}

impl Sections {
    fn of(wasm: &[u8]) -> Result<Sections, ComponentizeError> {
        let invalid = ComponentizeError::Invalid;
        let mut sections = Sections::default();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(invalid)? {
                Payload::CustomSection(s) if s.name().starts_with("component-type") => {
                    sections.type_info = true;
                }
                Payload::ImportSection(s) => {
                    for i in s.into_imports() {
                        let i = i.map_err(invalid)?;
                        sections.job |= i.module == JOB_MODULE;
                        sections.preview1 |= i.module == WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME;
                    }
                }
                Payload::ExportSection(s) => {
                    for e in s {
                        let e = e.map_err(invalid)?;
                        sections.run |= e.name == "run";
                        sections.start |= e.name == "_start";
                    }
                }
                _ => {}
            }
        }
        Ok(sections)
    }
}

/// Componentizes `wasm` (a core module) when it is one of the two kinds above; `Ok(None)` for
/// any other core module. The error says why a module meant to be componentized is not one.
///
/// With `commands`, a third kind is componentized too: a WASI preview1 command (`_start`, no
/// `run`), through the command adapter. wasmeval does so when the job is granted directories,
/// so that its file access goes through the host's checks on grants (see `grants`).
pub fn componentize(
    wasm: &[u8],
    commands: bool,
) -> Result<Option<Componentized>, ComponentizeError> {
    let sections = Sections::of(wasm)?;
    let (module, mut how) = if sections.type_info {
        (
            wasm.to_vec(),
            "its own component type information".to_string(),
        )
    } else if sections.run && !sections.start {
        let world = if sections.job {
            "objective"
        } else {
            "pure-objective"
        };
        (
            embed_world(wasm, world)?,
            format!("wasmeval's `{world}` world (it exports the canonical-ABI `run`)"),
        )
    } else if commands && sections.start && sections.preview1 {
        (
            wasm.to_vec(),
            "its WASI preview1 command (it is granted directories)".to_string(),
        )
    } else {
        return Ok(None);
    };
    let mut encoder = ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .map_err(|e| ComponentizeError::Encode(e.into()))?;
    if sections.preview1 {
        let (adapter, kind) = if sections.start && !sections.run {
            (WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER, "command")
        } else {
            (WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER, "reactor")
        };
        // The adapter's own state comes from `memory.grow`, not the module's `cabi_realloc`:
        // a runtime such as Go's cannot allocate before its `_initialize` has run.
        encoder = encoder
            .realloc_via_memory_grow(true)
            .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter)
            .map_err(|e| ComponentizeError::Adapter(e.into()))?;
        how.push_str(&format!(
            ", WASI preview1 through wasmtime 48's {kind} adapter"
        ));
    }
    let component = encoder
        .encode()
        .map_err(|e| ComponentizeError::Encode(e.into()))?;
    Ok(Some(Componentized {
        component,
        how: format!("componentized at load with {how}"),
    }))
}

/// `wasm` with wasmeval's `world` embedded as its component type information.
fn embed_world(wasm: &[u8], world: &str) -> Result<Vec<u8>, ComponentizeError> {
    let mut resolve = Resolve::default();
    let package = resolve
        .push_source("objective.wit", WIT)
        .map_err(|e| ComponentizeError::Wit(e.into()))?;
    let world = resolve
        .select_world(&[package], Some(world))
        .map_err(|e| ComponentizeError::Wit(e.into()))?;
    let mut module = wasm.to_vec();
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .map_err(|e| ComponentizeError::Wit(e.into()))?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canonical_abi_run_without_wasi_becomes_a_pure_objective_component() {
        let wasm = wat::parse_str(
            r#"(module
                (memory (export "memory") 1)
                (global $top (mut i32) (i32.const 1024))
                (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
                  (local $p i32)
                  (local.set $p (global.get $top))
                  (global.set $top (i32.add (global.get $top) (local.get 3)))
                  (local.get $p))
                (func (export "run") (param i32 i32) (result i32) (i32.const 0)))"#,
        )
        .unwrap();
        let c = componentize(&wasm, false).unwrap().expect("componentized");
        assert!(wasmparser::Parser::is_component(&c.component));
        assert!(c.how.contains("`pure-objective`"), "{}", c.how);
        assert!(!c.how.contains("adapter"), "{}", c.how);
    }

    #[test]
    fn commands_and_other_modules_are_left_alone() {
        let command = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
        assert!(componentize(&command, false).unwrap().is_none());
        let nothing = wat::parse_str(r#"(module (func (export "go")))"#).unwrap();
        assert!(componentize(&nothing, false).unwrap().is_none());
    }

    #[test]
    fn a_run_of_the_wrong_type_is_refused_with_the_reason() {
        let wasm = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "run")))"#)
            .unwrap();
        let err = componentize(&wasm, false).unwrap_err();
        assert!(matches!(err, ComponentizeError::Encode(_)), "{err}");
        assert!(err.to_string().contains("cannot componentize"), "{err}");
    }
}
