//! Engines: one per (fuel on/off, stack size) in each process, with the pooling allocator,
//! and the 1 ms epoch ticker that drives wall-clock limits.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::{Error, Result};
use crate::sandbox::Policy;
use crate::sandbox::admission::{Admission, Shape};

/// The epoch tick: every engine's epoch advances this often.
pub const TICK: Duration = Duration::from_millis(1);

/// Pool capacity per engine (concurrent component instances in this process).
pub const POOL_COMPONENT_INSTANCES: u32 = 128;

/// Largest linear memory any job may reach (the per-job cap is enforced below it).
const POOL_MAX_MEMORY: usize = 4 << 30;

/// What each engine's pool holds; jobs wait for room (see [`crate::sandbox::admission`]).
pub const POOL: Shape = Shape {
    component_instances: POOL_COMPONENT_INSTANCES,
    core_instances: 4 * POOL_COMPONENT_INSTANCES,
    memories: 2 * POOL_COMPONENT_INSTANCES,
    tables: 4 * POOL_COMPONENT_INSTANCES,
};

type Key = (bool, usize);
type Map = HashMap<Key, (Engine, Arc<Admission>)>;

/// This process's engines, and the process they belong to.
struct Engines {
    pid: u32,
    map: Map,
}

static ENGINES: Mutex<Option<Engines>> = Mutex::new(None);

thread_local! {
    /// The engines' lock, held by the thread that forks across the fork (see [`prepare_fork`]).
    static HELD: RefCell<Option<MutexGuard<'static, Option<Engines>>>> = const { RefCell::new(None) };
}

/// Runs `f` on this process's engines. A child of `fork` inherits its parent's engines but
/// not the ticker thread (without which no deadline fires) nor the threads that may have
/// held their internal locks: it forgets them (dropping them could wait on such a lock) and
/// starts afresh, with a ticker of its own.
fn with_engines<R>(f: impl FnOnce(&mut Map) -> R) -> R {
    let mut engines = ENGINES.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    if engines.as_ref().is_none_or(|e| e.pid != pid) {
        std::mem::forget(engines.take());
        std::thread::Builder::new()
            .name("wasmeval-epoch".into())
            .spawn(ticker)
            .expect("spawn the epoch ticker thread");
        *engines = Some(Engines {
            pid,
            map: HashMap::new(),
        });
    }
    f(&mut engines.as_mut().expect("set above").map)
}

/// Takes the engines' lock until [`forked`]: call it just before `fork()` (Python:
/// `os.register_at_fork(before=...)`), so that the child never inherits the lock held by
/// another thread (the ticker takes it every millisecond).
pub fn prepare_fork() {
    let guard = ENGINES.lock().unwrap_or_else(PoisonError::into_inner);
    HELD.with(|held| *held.borrow_mut() = Some(guard));
}

/// Releases what [`prepare_fork`] took: call it after `fork()` in the parent and in the
/// child. The child's engines are made afresh at their next use.
pub fn forked() {
    HELD.with(|held| held.borrow_mut().take());
}

fn ticker() {
    loop {
        std::thread::sleep(TICK);
        let list: Vec<Engine> = with_engines(|map| map.values().map(|(e, _)| e.clone()).collect());
        for engine in list {
            engine.increment_epoch();
        }
    }
}

/// The engine for `policy` (fuel metering changes the compiled code, so it has its own engine).
pub fn engine_for(policy: &Policy) -> Result<Engine> {
    pooled_engine_for(policy).map(|(engine, _)| engine)
}

/// The engine for `policy` and the admission control of its pool.
pub fn pooled_engine_for(policy: &Policy) -> Result<(Engine, Arc<Admission>)> {
    let key = (policy.fuel.is_some(), policy.max_wasm_stack);
    with_engines(|map| {
        if let Some(pair) = map.get(&key) {
            return Ok(pair.clone());
        }
        let engine = Engine::new(&config(key.0, key.1, true)).map_err(Error::engine)?;
        let pair = (engine, Arc::new(Admission::new(POOL)));
        map.insert(key, pair.clone());
        Ok(pair)
    })
}

/// An engine for compiling only (no pooling allocator, no address space reserved), with the
/// settings that shape compiled code identical to [`engine_for`]'s: its output loads there.
pub fn compile_engine(policy: &Policy) -> wasmtime::Result<Engine> {
    Engine::new(&config(policy.fuel.is_some(), policy.max_wasm_stack, false))
}

fn config(fuel: bool, stack: usize, pooling: bool) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL.component_instances)
        .total_core_instances(POOL.core_instances)
        .total_memories(POOL.memories)
        .total_tables(POOL.tables)
        .max_memories_per_module(2)
        .max_tables_per_module(4)
        .max_core_instance_size(4 << 20)
        .max_component_instance_size(4 << 20)
        .table_elements(1_000_000)
        .max_memory_size(POOL_MAX_MEMORY)
        .linear_memory_keep_resident(256 << 10)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);
    let mut c = Config::new();
    c.epoch_interruption(true)
        .consume_fuel(fuel)
        .max_wasm_stack(stack);
    if pooling {
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}
