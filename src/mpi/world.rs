//! Starting and ending MPI: which rank this is, the refusals of a bad launch, the agent ranks'
//! service, and rank 0's [`Root`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator, SimpleCommunicator};

use super::MpiError;
use super::link::{AgentLink, Sends, TO_AGENT};
use crate::agent::ToAgent;

/// The MPI universe of this process, while MPI runs (only rank 0 keeps one past [`init`]).
static UNIVERSE: Mutex<Option<Universe>> = Mutex::new(None);
/// Evaluators of this process running their jobs on the agents: at most one at a time.
pub(super) static POOLS: AtomicUsize = AtomicUsize::new(0);

/// MPI started on rank 0: evaluators with [`crate::Method::Mpi`] run their jobs on the other
/// ranks. Dropping it ends the agents and MPI (`MPI_Finalize`); drop it after the last
/// evaluator.
#[derive(Debug)]
pub struct Root {
    size: usize,
}

impl Root {
    /// The number of ranks, this one included.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// The world communicator, if MPI runs in this process with this as rank 0.
pub(super) fn root_world() -> Result<SimpleCommunicator, MpiError> {
    let guard = UNIVERSE.lock().unwrap_or_else(|e| e.into_inner());
    let universe = guard.as_ref().ok_or(MpiError::NotInitialized)?;
    let world = universe.world();
    if world.rank() != 0 {
        return Err(MpiError::NotInitialized);
    }
    Ok(world)
}

/// Starts MPI. On rank 0 returns the [`Root`]; on every other rank serves jobs with
/// `workers` worker processes (default: the cores this rank may use divided by the ranks on
/// its node) until rank 0's program ends, then ends MPI and exits the process with status 0.
///
/// Refused, with nothing started, when this process is the only rank: started without a
/// launcher ([`MpiError::NoLauncher`]), or by the launcher of another MPI than the one this
/// binary is linked to ([`MpiError::Mismatch`]).
pub fn init(workers: Option<usize>) -> Result<Root, MpiError> {
    let (universe, threading) =
        mpi::initialize_with_threading(Threading::Multiple).ok_or(MpiError::NotInitialized)?;
    if threading < Threading::Serialized {
        return Err(MpiError::Threading(format!("{threading:?}")));
    }
    let world = universe.world();
    let size = world.size() as usize;
    if size < 2 {
        return Err(match launched_size() {
            Some((launcher, size)) if size > 1 => MpiError::Mismatch {
                launcher,
                size,
                library: library(),
            },
            _ => MpiError::NoLauncher,
        });
    }
    // Collective: every rank, rank 0 too, counts the ranks on its node.
    let on_node = world.split_shared(world.rank()).size() as usize;
    if world.rank() != 0 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = workers.unwrap_or((cores / on_node).max(1));
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            let _ = signal_hook::flag::register(signal, stop.clone());
        }
        crate::agent::serve(&mut AgentLink::new(world), workers, &stop);
        drop(universe);
        std::process::exit(0);
    }
    *UNIVERSE.lock().unwrap_or_else(|e| e.into_inner()) = Some(universe);
    Ok(Root { size })
}

impl Drop for Root {
    fn drop(&mut self) {
        let Ok(world) = root_world() else { return };
        if POOLS.load(Ordering::SeqCst) > 0 {
            // An evaluator still uses MPI: ending it now would pull MPI from under its jobs.
            eprintln!("error: wasmeval::mpi::Root dropped before an evaluator of the mpi method");
            world.abort(1);
        }
        let mut sends = Sends::default();
        let bye = serde_json::to_vec(&ToAgent::Shutdown).expect("serializable");
        for rank in 1..world.size() {
            sends.post(&world, rank, TO_AGENT, bye.clone());
        }
        sends.wait();
        // MPI_Finalize.
        UNIVERSE.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// The launcher the environment names, and how many ranks it started.
fn launched_size() -> Option<(String, usize)> {
    let var = |name: &str| std::env::var(name).ok()?.parse::<usize>().ok();
    [
        ("Open MPI's mpirun", "OMPI_COMM_WORLD_SIZE"),
        ("MPICH's mpirun (Hydra) or a PMI launcher", "PMI_SIZE"),
        ("srun", "SLURM_STEP_NUM_TASKS"),
        ("srun", "SLURM_NTASKS"),
    ]
    .into_iter()
    .find_map(|(launcher, name)| Some((format!("{launcher} ({name})"), var(name)?)))
}

/// The MPI library this binary is linked to, in one line.
fn library() -> String {
    let version = mpi::environment::library_version().unwrap_or_default();
    let line = version.trim_end_matches('\0').lines().next().unwrap_or("");
    let name = line.split(',').next().unwrap_or(line);
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}
