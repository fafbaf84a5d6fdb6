//! What a run function is made of, without running it: `wasmeval inspect`.

use std::path::PathBuf;

use serde::Serialize;
use wasmparser::{Parser, Payload};

use crate::error::{Error, Result};
use crate::sandbox::module::{Wasm, compiled};
use crate::sandbox::{CacheDir, LoadedModule, ModuleError, Policy, RunFunction, cache, engine};

/// One import or export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The name: `module::name` for core imports, the full name for component items.
    pub name: String,
    /// The kind: func, memory, table, global, tag, instance, module, component, value, type.
    pub kind: String,
}

/// The report of [`inspect`].
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The file.
    pub file: PathBuf,
    /// `component` or `core module`.
    pub binary: String,
    /// Given as `.wat` text rather than a binary.
    pub text: bool,
    /// Size of the binary in bytes.
    pub size: usize,
    /// The sha256 of the binary.
    pub sha256: String,
    /// The top-level imports.
    pub imports: Vec<Item>,
    /// The top-level exports.
    pub exports: Vec<Item>,
    /// The WASI interfaces asked for (`wasi:cli/environment@0.2.6`, or
    /// `wasi_snapshot_preview1` for a core module).
    pub wasi: Vec<String>,
    /// How a core module was turned into a component at load (see
    /// [`crate::sandbox::componentize`]), if it was.
    pub componentized: Option<String>,
    /// Whether it compiles under the policy.
    pub compiles: bool,
    /// Whether every import can be satisfied and the exports make a run function (known once
    /// it compiles).
    pub runnable: Option<bool>,
    /// The kind of run function found, once runnable.
    pub kind: Option<String>,
    /// What one job takes from the instance pool, once runnable (admission control).
    pub pool: Option<crate::sandbox::admission::Shape>,
    /// Why it does not compile or cannot run.
    pub error: Option<String>,
}

/// Reads, lists, compiles (through the cache) and links `source` under `policy`. A file that
/// is not WebAssembly is an error; everything else is reported in the [`Inspection`].
pub fn inspect(source: &RunFunction, policy: &Policy, cache: &CacheDir) -> Result<Inspection> {
    let given = Wasm::read(source)?;
    let (name, component) = (given.name.clone(), given.component);
    let (imports, exports) = items(&given.wasm).map_err(|e| Error::Module {
        path: name.clone(),
        source: ModuleError::Invalid(e),
    })?;
    let wasi = wasi_interfaces(&imports);
    let sha256 = cache::sha256_hex(&given.wasm);
    let mut report = Inspection {
        file: name.clone(),
        binary: if component {
            "component"
        } else {
            "core module"
        }
        .into(),
        text: given.text,
        size: given.wasm.len(),
        sha256: sha256.clone(),
        imports,
        exports,
        wasi,
        componentized: None,
        compiles: false,
        runnable: None,
        kind: None,
        pool: None,
        error: None,
    };
    let engine = engine::engine_for(policy)?;
    let (code, info) = match compiled(&engine, &given, &sha256, cache, policy) {
        Ok(compiled) => compiled,
        Err(e) => {
            report.error = Some(e.to_string());
            return Ok(report);
        }
    };
    report.compiles = true;
    report.componentized = info.componentized;
    match LoadedModule::from_code(
        name,
        sha256,
        info.component,
        info.core_instances,
        &code,
        policy,
    ) {
        Ok(m) => {
            report.runnable = Some(true);
            report.kind = Some(m.kind.to_string());
            report.pool = Some(m.shape);
        }
        Err(Error::Module { source, .. }) => {
            report.runnable = Some(false);
            report.error = Some(source.to_string());
        }
        Err(e) => return Err(e),
    }
    Ok(report)
}

/// The top-level imports and exports (items of nested modules and components are skipped).
fn items(wasm: &[u8]) -> wasmparser::Result<(Vec<Item>, Vec<Item>)> {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let item = |name: String, kind: &str| Item {
        name,
        kind: kind.into(),
    };
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            Payload::ImportSection(s) => {
                for i in s.into_imports() {
                    let i = i?;
                    imports.push(item(format!("{}::{}", i.module, i.name), core_kind(&i.ty)));
                }
            }
            Payload::ExportSection(s) => {
                for e in s {
                    let e = e?;
                    exports.push(item(e.name.into(), &format!("{:?}", e.kind).to_lowercase()));
                }
            }
            Payload::ComponentImportSection(s) => {
                for i in s {
                    let i = i?;
                    imports.push(item(i.name.name.into(), component_kind(&i.ty)));
                }
            }
            Payload::ComponentExportSection(s) => {
                for e in s {
                    let e = e?;
                    let kind = format!("{:?}", e.kind).to_lowercase();
                    exports.push(item(e.name.name.into(), &kind));
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

fn core_kind(ty: &wasmparser::TypeRef) -> &'static str {
    use wasmparser::TypeRef::*;
    match ty {
        Func(_) | FuncExact(_) => "func",
        Table(_) => "table",
        Memory(_) => "memory",
        Global(_) => "global",
        Tag(_) => "tag",
    }
}

fn component_kind(ty: &wasmparser::ComponentTypeRef) -> &'static str {
    use wasmparser::ComponentTypeRef::*;
    match ty {
        Module(_) => "module",
        Func(_) => "func",
        Value(_) => "value",
        Type(_) => "type",
        Instance(_) => "instance",
        Component(_) => "component",
    }
}

/// The WASI interfaces among the imports, each once, in order.
fn wasi_interfaces(imports: &[Item]) -> Vec<String> {
    let mut wasi: Vec<String> = Vec::new();
    for i in imports {
        let interface = match i.name.split_once("::") {
            Some((module, _)) => module,
            None => i.name.as_str(),
        };
        if (interface.starts_with("wasi:") || interface.starts_with("wasi_"))
            && !wasi.iter().any(|w| w == interface)
        {
            wasi.push(interface.to_string());
        }
    }
    wasi
}
