//! Engines: one per (fuel on/off, stack size) in each process, with the pooling allocator,
//! and the 1 ms epoch ticker that drives wall-clock limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
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
type Engines = Mutex<HashMap<Key, (Engine, Arc<Admission>)>>;

fn engines() -> &'static Engines {
    static ENGINES: OnceLock<Engines> = OnceLock::new();
    ENGINES.get_or_init(|| {
        std::thread::Builder::new()
            .name("wasmeval-epoch".into())
            .spawn(ticker)
            .expect("spawn the epoch ticker thread");
        Mutex::new(HashMap::new())
    })
}

fn ticker() {
    loop {
        std::thread::sleep(TICK);
        let list: Vec<Engine> = engines()
            .lock()
            .unwrap()
            .values()
            .map(|(e, _)| e.clone())
            .collect();
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
    let mut map = engines().lock().unwrap();
    if let Some(pair) = map.get(&key) {
        return Ok(pair.clone());
    }
    let engine = Engine::new(&config(key.0, key.1, true)).map_err(Error::engine)?;
    let pair = (engine, Arc::new(Admission::new(POOL)));
    map.insert(key, pair.clone());
    Ok(pair)
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
