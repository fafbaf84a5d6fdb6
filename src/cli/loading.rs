//! Feedback while a module loads: compiling a large guest for the first time takes seconds to
//! minutes, so after half a second a spinner shows on a terminal (a line with `--progress
//! always` off one); a load from the compile cache shows nothing.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::progress::{Mode, Shown};

/// How long a load goes unannounced: a load from the cache takes far less.
const QUIET_FOR: Duration = Duration::from_millis(500);

/// Runs `load` (which loads, and may compile, `module`) with feedback as `mode` and `quiet`
/// allow; returns what `load` returns.
pub fn showing<T>(module: &Path, mode: Mode, quiet: bool, load: impl FnOnce() -> T) -> T {
    let line = match mode.shown(quiet) {
        Shown::Nothing => return load(),
        shown => shown == Shown::Lines,
    };
    let name = module.file_name().map_or_else(
        || module.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    let message = format!(
        "loading {name}: its first load compiles it, which takes a while (later loads read the \
         compile cache)"
    );
    let (done, finished) = mpsc::channel::<()>();
    let shower = std::thread::spawn(move || {
        if finished.recv_timeout(QUIET_FOR) != Err(mpsc::RecvTimeoutError::Timeout) {
            return;
        }
        let started = Instant::now() - QUIET_FOR;
        if line {
            eprintln!("{message}");
            let _ = finished.recv();
            eprintln!(
                "loading {name} took {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"),
        );
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        let _ = finished.recv();
        bar.finish_and_clear();
    });
    let loaded = load();
    drop(done);
    let _ = shower.join();
    loaded
}
