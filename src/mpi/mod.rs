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

/// Why MPI cannot be used as asked.
#[derive(Debug, thiserror::Error)]
pub enum MpiError {
    /// This build has no MPI.
    #[error(
        "--method mpi: this wasmeval was built without MPI; build it with `--features mpi` \
         (see the README)"
    )]
    NotBuilt,
    /// [`init`] was not called, or this is not rank 0.
    #[error("the mpi method needs MPI started on rank 0: call wasmeval::mpi::init() first in main")]
    NotInitialized,
    /// Started without a launcher: this process is the only rank.
    #[error(
        "--method mpi was started without an MPI launcher (this is the only rank): start it as \
         `mpirun -n N wasmeval run ...` or `srun -n N wasmeval run ...` with N >= 2 (rank 0 \
         evaluates, the other ranks run the jobs)"
    )]
    NoLauncher,
    /// Started by a launcher of another MPI: every rank runs alone.
    #[error(
        "--method mpi was started by {launcher} (a job of {size} ranks), but this wasmeval is \
         linked to {library}, so every rank runs alone: launch it with the mpirun of the MPI it \
         was built against, or rebuild it against this one (MPICC=...)"
    )]
    Mismatch {
        /// The launcher the environment names.
        launcher: String,
        /// The number of ranks it started.
        size: usize,
        /// The MPI library this binary is linked to.
        library: String,
    },
    /// MPI cannot give the threading this program needs.
    #[error("MPI gives threading level {0}, and wasmeval needs at least serialized")]
    Threading(String),
    /// An agent rank could not start its pool.
    #[error("MPI rank {rank}: {message}")]
    Agent {
        /// The rank.
        rank: i32,
        /// What it reported.
        message: String,
    },
}
