//! Ctrl-C: the first SIGINT (or SIGTERM) asks the run to stop cleanly; a second one exits at
//! once (with 128 + the signal's number).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
static SIGNAL: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// Installs the handlers and returns the flag the first signal sets.
pub fn install() -> &'static AtomicBool {
    let stop = STOP.get_or_init(|| Arc::new(AtomicBool::new(false)));
    let signal = SIGNAL.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for signo in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as the earlier signal left it: set, the
        // second time, which then exits at once.
        let _ = flag::register_conditional_shutdown(signo, 128 + signo, stop.clone());
        let _ = flag::register_usize(signo, signal.clone(), signo as usize);
        let _ = flag::register(signo, stop.clone());
    }
    stop
}

/// The exit code for the signal received: 130 for Ctrl-C, 143 for SIGTERM.
pub fn exit_code() -> i32 {
    let signo = SIGNAL.get().map_or(0, |s| s.load(Ordering::SeqCst));
    128 + signo.max(1) as i32
}
