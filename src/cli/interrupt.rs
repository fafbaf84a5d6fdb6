//! Ctrl-C: the first SIGINT (or SIGTERM) asks the run to stop cleanly; a second one exits at
//! once.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signo: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + signo) };
    }
    SIGNAL.store(signo, Ordering::SeqCst);
}

/// Installs the handlers and returns the flag the first signal sets.
pub fn install() -> &'static AtomicBool {
    for signo in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches atomics and calls _exit.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signo, &action, std::ptr::null_mut());
        }
    }
    &STOP
}

/// The exit code for the signal received: 130 for Ctrl-C, 143 for SIGTERM.
pub fn exit_code() -> i32 {
    128 + SIGNAL.load(Ordering::SeqCst).max(1)
}
