//! The sandbox: engines, module loading and kind detection, the compile cache, limits, and
//! the execution of one job in a fresh instance.

pub mod admission;
pub mod cache;
mod clock;
pub mod compile;
pub mod componentize;
pub mod control;
pub mod engine;
mod grants;
pub mod handle;
pub(crate) mod host;
pub mod inspect;
pub mod module;
pub mod policy;
pub mod run;

pub use crate::error::ModuleError;
pub use cache::CacheDir;
pub use control::{JobControl, Signals};
pub use engine::{TICK, forked, prepare_fork};
pub use handle::ModuleHandle;
pub use module::{LoadedModule, ModuleKind, RunFunction};
pub use policy::{DirGrant, MIB, Policy};
pub use run::{JobInput, Observer, RunOutput};
