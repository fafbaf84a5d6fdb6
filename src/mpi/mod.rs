//! MPI (DeepHyper's `mpicomm`): started under `mpirun -n N` or `srun -n N`, rank 0 is the
//! evaluator and every other rank a node agent (see [`crate::agent`]) running its jobs in its
//! own local pool of worker processes. Built with the cargo feature `mpi`.
//!
//! A program calls [`init`] first thing in `main` (after [`crate::worker::init`]): on the
//! agent ranks it serves jobs until rank 0's program ends, then exits; on rank 0 it returns
//! the [`Root`], and evaluators made with [`crate::Method::Mpi`] run their jobs on the agents.
//! Drop the `Root` after the last evaluator: it ends the agents and MPI.
//!
//! ```no_run
//! # #[cfg(feature = "mpi")]
//! # fn main() -> wasmeval::Result<()> {
//! use wasmeval::{Evaluator, Gather, Method};
//! wasmeval::worker::init();
//! let root = wasmeval::mpi::init(None)?; // agents serve here, and exit
//! let mut evaluator = Evaluator::builder("ackley.wasm").method(Method::Mpi).build()?;
//! evaluator.submit([serde_json::json!({"x": [0.5, 1.0]})])?;
//! println!("{:?}", evaluator.gather(Gather::All)?);
//! drop(evaluator);
//! drop(root);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "mpi"))]
//! # fn main() {}
//! ```
//!
//! The module travels by value (rank 0 broadcasts its bytes and sha256); each agent compiles
//! it into its own node's compile cache (`WASMEVAL_CACHE_DIR`, else the default), so no shared
//! filesystem is needed. The policy comes from rank 0; `--dir` grants name each node's own
//! directories. An MPI job ends with any of its ranks: a lost rank ends the run, with the
//! finished results in the storage, and `--resume` continues it.

#[cfg(feature = "mpi")]
mod link;
#[cfg(feature = "mpi")]
mod pool;
#[cfg(feature = "mpi")]
mod world;

#[cfg(feature = "mpi")]
pub use pool::MpiPool;
#[cfg(feature = "mpi")]
pub use world::{Root, init};

pub use crate::error::MpiError;
