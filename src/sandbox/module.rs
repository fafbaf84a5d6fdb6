//! Loading a run function: read `.wasm` or `.wat`, tell its kind from the binary, compile it
//! (through the cache) and link it against WASI plus the `job` interface, once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{Component, ComponentExportIndex, HasSelf, types::ComponentItem};
use wasmtime::{Engine, Module};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::sync::CommandPre;

use crate::error::{Error, Result};
use crate::sandbox::admission::{Admission, Shape};
use crate::sandbox::cache::{self, CacheDir, CodeInfo};
use crate::sandbox::host::{Host, P2, wasmeval};
use crate::sandbox::{ModuleError, ModuleHandle, Policy, clock, compile, engine, grants};

/// Where a run function comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunFunction {
    /// A `.wasm` binary or `.wat` text file.
    File(PathBuf),
    /// A binary or text module in memory, with a name for messages.
    Bytes {
        /// The name used in messages.
        name: String,
        /// The module.
        bytes: Vec<u8>,
    },
}

impl RunFunction {
    /// The name used in messages: the path, or the given name.
    pub fn name(&self) -> PathBuf {
        match self {
            RunFunction::File(p) => p.clone(),
            RunFunction::Bytes { name, .. } => PathBuf::from(name),
        }
    }

    fn bytes(&self) -> Result<Vec<u8>> {
        match self {
            RunFunction::File(path) => std::fs::read(path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            }),
            RunFunction::Bytes { bytes, .. } => Ok(bytes.clone()),
        }
    }
}

impl From<&str> for RunFunction {
    fn from(path: &str) -> RunFunction {
        RunFunction::File(path.into())
    }
}

impl From<PathBuf> for RunFunction {
    fn from(path: PathBuf) -> RunFunction {
        RunFunction::File(path)
    }
}

impl From<&Path> for RunFunction {
    fn from(path: &Path) -> RunFunction {
        RunFunction::File(path.to_path_buf())
    }
}

/// The kind of run function found in a binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    /// A component exporting `run: func(config: string) -> result<string, string>`.
    Objective,
    /// A WASI command component (exports `wasi:cli/run`): configuration on stdin.
    CommandComponent,
    /// A WASI preview1 core module with `_start`: configuration on stdin.
    CommandCore,
}

impl fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModuleKind::Objective => "objective component (exports `run`)",
            ModuleKind::CommandComponent => "WASI command component (exports `wasi:cli/run`)",
            ModuleKind::CommandCore => "WASI preview1 command module (exports `_start`)",
        })
    }
}

/// Compiled code: a verified file of the compile cache (mapped, not read, by every process
/// that loads it), or bytes in memory when there is no cache.
#[derive(Debug, Clone)]
pub(crate) enum Code {
    File(PathBuf),
    Bytes(Arc<Vec<u8>>),
}

/// A module linked once, ready for a fresh instance per job.
pub(crate) enum Prepared {
    Objective {
        pre: wasmtime::component::InstancePre<Host<P2>>,
        run: ComponentExportIndex,
    },
    CommandComponent(CommandPre<Host<P2>>),
    CommandCore(wasmtime::InstancePre<Host<WasiP1Ctx>>),
}

/// A loaded run function: compiled, checked and linked under one policy's engine.
pub struct LoadedModule {
    /// The name used in messages.
    pub name: PathBuf,
    /// The kind found in the binary.
    pub kind: ModuleKind,
    /// The sha256 of the wasm binary (of the text's binary form for `.wat`).
    pub sha256: String,
    pub(crate) engine: Engine,
    pub(crate) prepared: Prepared,
    /// The compiled code, for worker processes.
    pub(crate) code: Code,
    pub(crate) component: bool,
    /// What one job takes from the engine's pool.
    pub shape: Shape,
    pub(crate) admission: Arc<Admission>,
    /// The binary it was loaded from, for [`LoadedModule::handle`] (none in a worker).
    wasm: Option<Arc<Vec<u8>>>,
}

impl fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedModule")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("sha256", &self.sha256)
            .finish()
    }
}

const MAGIC: &[u8] = b"\0asm";
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0, 1, 0];

impl LoadedModule {
    /// Loads `source` for jobs under `policy`, compiling through `cache` (in a bounded child
    /// process when the module is not cached yet). Every problem is reported here, before any
    /// job starts, with the file name and the reason.
    pub fn load(source: &RunFunction, policy: &Policy, cache: &CacheDir) -> Result<LoadedModule> {
        if let Some(dir) = cache.path() {
            policy.check_cache(&dir)?;
        }
        let given = Wasm::read(source)?;
        let sha256 = cache::sha256_hex(&given.wasm);
        let engine = engine::engine_for(policy)?;
        let (code, info) =
            compiled(&engine, &given, &sha256, cache, policy).map_err(|e| Error::Module {
                path: given.name.clone(),
                source: e.into(),
            })?;
        let mut module = LoadedModule::from_code(
            given.name,
            sha256,
            info.component,
            info.core_instances,
            &code,
            policy,
        )?;
        module.wasm = Some(Arc::new(given.wasm));
        Ok(module)
    }

    /// A handle that another node can load (see [`ModuleHandle`]), with the `policy` its
    /// jobs run under. None for a module loaded from compiled code in a worker process.
    pub fn handle(&self, policy: &Policy) -> Option<ModuleHandle> {
        Some(ModuleHandle {
            name: self.name.clone(),
            sha256: self.sha256.clone(),
            policy: policy.clone(),
            wasm: self.wasm.clone()?,
        })
    }

    /// Loads code compiled by [`LoadedModule::load`] (in a worker process).
    pub(crate) fn from_code(
        name: PathBuf,
        sha256: String,
        component: bool,
        core_instances: u32,
        code: &Code,
        policy: &Policy,
    ) -> Result<LoadedModule> {
        let refuse = |source: ModuleError| Error::Module {
            path: name.clone(),
            source,
        };
        let (engine, admission) = engine::pooled_engine_for(policy)?;
        let mut shape = Shape {
            component_instances: component as u32,
            core_instances,
            ..Shape::default()
        };
        let prepared = if component {
            // SAFETY: `code` was compiled by this host's own compiler process, or is a file of
            // the private cache (written by this host) whose length and CRC-32 matched its
            // entry when the parent process looked it up; cache files are never rewritten in
            // place.
            let c = match code {
                Code::File(path) => unsafe { Component::deserialize_file(&engine, path) },
                Code::Bytes(bytes) => unsafe { Component::deserialize(&engine, &bytes[..]) },
            }
            .map_err(|e| refuse(ModuleError::Load(e.into())))?;
            // A component that imports core modules has no static count: assume the most.
            let (memories, tables) = c
                .resources_required()
                .map_or((2 * core_instances, 4 * core_instances), |r| {
                    (r.num_memories, r.num_tables)
                });
            (shape.memories, shape.tables) = (memories, tables);
            prepare_component(&engine, &c)
        } else {
            // SAFETY: as above.
            let m = match code {
                Code::File(path) => unsafe { Module::deserialize_file(&engine, path) },
                Code::Bytes(bytes) => unsafe { Module::deserialize(&engine, &bytes[..]) },
            }
            .map_err(|e| refuse(ModuleError::Load(e.into())))?;
            let r = m.resources_required();
            (shape.memories, shape.tables) = (r.num_memories, r.num_tables);
            prepare_core(&engine, &m)
        }
        .map_err(&refuse)?;
        if !shape.fits_in_empty(&admission.capacity()) {
            let pool = admission.capacity();
            return Err(refuse(ModuleError::TooBigForPool {
                needs: [shape.core_instances, shape.memories, shape.tables],
                pool: [pool.core_instances, pool.memories, pool.tables],
            }));
        }
        let kind = match prepared {
            Prepared::Objective { .. } => ModuleKind::Objective,
            Prepared::CommandComponent(_) => ModuleKind::CommandComponent,
            Prepared::CommandCore(_) => ModuleKind::CommandCore,
        };
        Ok(LoadedModule {
            name,
            kind,
            sha256,
            engine,
            prepared,
            code: code.clone(),
            component,
            shape,
            admission,
            wasm: None,
        })
    }
}

/// A run function's WebAssembly binary, read and told apart from anything else.
pub(crate) struct Wasm {
    pub name: PathBuf,
    /// The binary as given (the binary form of `.wat` text).
    pub wasm: Vec<u8>,
    /// `wasm` is a component.
    pub component: bool,
    /// Given as `.wat` text.
    pub text: bool,
}

impl Wasm {
    /// Reads `source`: a binary, or text turned into one; refuses anything else with the file
    /// name and the reason.
    pub fn read(source: &RunFunction) -> Result<Wasm> {
        let name = source.name();
        let refuse = |source: ModuleError| Error::Module {
            path: name.clone(),
            source,
        };
        let bytes = source.bytes()?;
        let text = !bytes.starts_with(MAGIC);
        let wasm = if !text {
            bytes
        } else if looks_like_text(&bytes) {
            wat::parse_bytes(&bytes)
                .map_err(|mut e| {
                    e.set_path(&name);
                    refuse(ModuleError::Text(e))
                })?
                .into_owned()
        } else {
            return Err(refuse(ModuleError::NotWasm(describe_start(&bytes))));
        };
        let component = match wasm.get(4..8) {
            Some(v) if v == CORE_VERSION => false,
            Some(v) if v == COMPONENT_VERSION => true,
            other => {
                return Err(refuse(ModuleError::Version(
                    other.unwrap_or_default().to_vec(),
                )));
            }
        };
        Ok(Wasm {
            name,
            wasm,
            component,
            text,
        })
    }
}

fn looks_like_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| {
        let t = s.trim_start();
        t.starts_with('(') || t.starts_with(";;")
    })
}

fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing (the file is empty)".into();
    }
    let head = &bytes[..bytes.len().min(8)];
    format!("{head:02x?}")
}

/// The compiled code of `given` (of sha256 `sha256`): from the cache when a verified entry
/// exists (no componentizing, no compiling), else componentized if it is a core module that
/// asks for it and compiled, both in a bounded child process, and stored in the cache.
pub(crate) fn compiled(
    engine: &Engine,
    given: &Wasm,
    sha256: &str,
    dir: &CacheDir,
    policy: &Policy,
) -> Result<(Code, CodeInfo), compile::CompileError> {
    // Commands granted directories are componentized (see `grants`): another entry.
    let variant = match policy.dirs.is_empty() {
        true => sha256.to_string(),
        false => format!("{sha256}+granted"),
    };
    let key = cache::key(engine, &variant);
    let dir = dir.path().filter(|d| cache::prepare_dir(d));
    if let Some((info, path)) = dir.as_deref().and_then(|d| cache::lookup(d, &key)) {
        return Ok((Code::File(path), info));
    }
    let (bytes, info) = compile::compile_bounded(policy, &given.wasm, given.component)?;
    // A cache that cannot be written only costs a compile next time.
    let code = match dir.and_then(|d| cache::store(&d, &key, &bytes, &info).ok()) {
        Some(path) => Code::File(path),
        None => Code::Bytes(Arc::new(bytes)),
    };
    Ok((code, info))
}

fn prepare_core(engine: &Engine, module: &Module) -> Result<Prepared, ModuleError> {
    if module.get_export("_start").is_none() {
        let exports = module.exports().map(|e| e.name().to_string()).collect();
        return Err(ModuleError::NoEntry(exports));
    }
    let mut linker = wasmtime::Linker::<Host<WasiP1Ctx>>::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |h| &mut h.wasi).map_err(linker_error)?;
    clock::add_p1(&mut linker).map_err(linker_error)?;
    let pre = linker
        .instantiate_pre(module)
        .map_err(|e| ModuleError::Imports(e.into()))?;
    Ok(Prepared::CommandCore(pre))
}

fn prepare_component(engine: &Engine, component: &Component) -> Result<Prepared, ModuleError> {
    let mut exports = Vec::new();
    let mut run_signature = None;
    for (name, item) in component.component_type().exports(engine) {
        if let ComponentItem::ComponentFunc(f) = &item.ty
            && name == "run"
        {
            run_signature = Some(is_run_signature(f));
        }
        exports.push(name.to_string());
    }
    let mut linker = wasmtime::component::Linker::<Host<P2>>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(linker_error)?;
    wasmeval::objective::job::add_to_linker::<_, HasSelf<Host<P2>>>(&mut linker, |h| h)
        .map_err(linker_error)?;
    clock::add_p2(&mut linker).map_err(linker_error)?;
    grants::add_p2(&mut linker).map_err(linker_error)?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| ModuleError::Imports(e.into()))?;
    match run_signature {
        Some(true) => {
            let run = component
                .get_export_index(None, "run")
                .ok_or(ModuleError::WrongRunType)?;
            return Ok(Prepared::Objective { pre, run });
        }
        Some(false) => {
            return Err(ModuleError::WrongRunType);
        }
        None => {}
    }
    if exports.iter().any(|n| n.starts_with("wasi:cli/run@0.2")) {
        let pre = CommandPre::new(pre).map_err(|e| ModuleError::CommandUnusable(e.into()))?;
        return Ok(Prepared::CommandComponent(pre));
    }
    Err(ModuleError::NoRun(exports))
}

/// `run: func(string) -> result<string, string>`.
fn is_run_signature(f: &wasmtime::component::types::ComponentFunc) -> bool {
    use wasmtime::component::types::Type;
    let params: Vec<Type> = f.params().map(|(_, t)| t).collect();
    let results: Vec<Type> = f.results().collect();
    let string_result = |r: &wasmtime::component::types::ResultType| {
        matches!(r.ok(), Some(Type::String)) && matches!(r.err(), Some(Type::String))
    };
    matches!(params.as_slice(), [Type::String])
        && matches!(results.as_slice(), [Type::Result(r)] if string_result(r))
}

fn linker_error(e: wasmtime::Error) -> ModuleError {
    ModuleError::Linker(e.into())
}
