//! Messages over MPI: JSON in byte messages, one tag each way. Rank 0 sends without blocking
//! ([`Sends`]) and always receives, so an agent blocked sending news never waits on a rank 0
//! blocked sending jobs. The module's bytes follow a setup as a broadcast.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mpi::collective::Root as _;
use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::request::{Request, StaticScope};
use mpi::topology::{Communicator, Rank, SimpleCommunicator};

use crate::agent::{FromAgent, Link, ToAgent};

/// Rank 0 to an agent: a [`ToAgent`].
pub(super) const TO_AGENT: i32 = 1;
/// An agent to rank 0: a [`FromAgent`].
pub(super) const FROM_AGENT: i32 = 2;

/// Sends in flight, each with the buffer it owns until MPI is done with it.
#[derive(Default)]
pub(super) struct Sends(Vec<Request<'static, [u8]>>);

impl Sends {
    /// Starts sending `bytes` to `rank` with `tag`, without waiting.
    pub(super) fn post(
        &mut self,
        world: &SimpleCommunicator,
        rank: Rank,
        tag: i32,
        bytes: Vec<u8>,
    ) {
        // Owned by the request until it completes, then freed by `free`.
        let buf: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let request = world
            .process_at_rank(rank)
            .immediate_send_with_tag(StaticScope, buf, tag);
        self.0.push(request);
    }

    /// Frees the buffers of the sends that completed.
    pub(super) fn test(&mut self) {
        let mut left = Vec::with_capacity(self.0.len());
        for request in self.0.drain(..) {
            match request.test_with_data() {
                Ok((_, buf)) => free(buf),
                Err(request) => left.push(request),
            }
        }
        self.0 = left;
    }

    /// Waits for every send to complete.
    pub(super) fn wait(&mut self) {
        for request in self.0.drain(..) {
            free(request.wait_for_data());
        }
    }
}

impl Drop for Sends {
    fn drop(&mut self) {
        self.wait();
    }
}

fn free(buf: &'static [u8]) {
    // SAFETY: `buf` was leaked from a `Box<[u8]>` by `Sends::post`, and its request, the only
    // other user, has completed.
    drop(unsafe { Box::from_raw(buf as *const [u8] as *mut [u8]) });
}

/// Sends `setup` to every agent and broadcasts the module's bytes after it (rank 0's side of
/// [`AgentLink::recv`]).
pub(super) fn send_setup(
    world: &SimpleCommunicator,
    sends: &mut Sends,
    mut setup: crate::agent::Setup,
) {
    let mut wasm = std::mem::take(&mut setup.handle.wasm).to_vec();
    let message = serde_json::to_vec(&ToAgent::Setup(Box::new(setup))).expect("serializable");
    for rank in 1..world.size() {
        sends.post(world, rank, TO_AGENT, message.clone());
    }
    let root = world.process_at_rank(0);
    let mut len = wasm.len() as u64;
    root.broadcast_into(&mut len);
    root.broadcast_into(&mut wasm[..]);
}

/// An agent's link to rank 0.
pub(super) struct AgentLink {
    world: SimpleCommunicator,
}

impl AgentLink {
    pub(super) fn new(world: SimpleCommunicator) -> AgentLink {
        AgentLink { world }
    }
}

/// The longest nap between two looks for a message.
const NAP: Duration = Duration::from_millis(1);

impl Link for AgentLink {
    fn recv(&mut self, wait: Duration) -> Option<ToAgent> {
        let root = self.world.process_at_rank(0);
        let until = Instant::now() + wait;
        let mut nap = Duration::from_micros(20);
        loop {
            if let Some(probed) = root.immediate_matched_probe_with_tag(TO_AGENT) {
                let (bytes, _) = probed.matched_receive_vec::<u8>();
                let mut message: ToAgent = serde_json::from_slice(&bytes).ok()?;
                if let ToAgent::Setup(setup) = &mut message {
                    let mut len = 0u64;
                    root.broadcast_into(&mut len);
                    let mut wasm = vec![0u8; len as usize];
                    root.broadcast_into(&mut wasm[..]);
                    setup.handle.wasm = Arc::new(wasm);
                }
                return Some(message);
            }
            let now = Instant::now();
            if now >= until {
                return None;
            }
            std::thread::sleep(nap.min(until - now));
            nap = (nap * 2).min(NAP);
        }
    }

    fn send(&mut self, message: FromAgent) {
        let bytes = serde_json::to_vec(&message).expect("serializable");
        self.world
            .process_at_rank(0)
            .send_with_tag(&bytes[..], FROM_AGENT);
    }
}

/// Rank 0: the next message from any agent, if one is there.
pub(super) fn try_recv(world: &SimpleCommunicator) -> Option<(Rank, Option<FromAgent>)> {
    let probed = world
        .any_process()
        .immediate_matched_probe_with_tag(FROM_AGENT)?;
    let (bytes, status) = probed.matched_receive_vec::<u8>();
    Some((status.source_rank(), serde_json::from_slice(&bytes).ok()))
}
