//! The progress display of `wasmeval run`: an indicatif bar on a terminal, a line a second
//! with `--progress always` elsewhere, nothing with `never` (or `auto` off a terminal).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Summary;

/// When to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// A bar when standard error is a terminal.
    Auto,
    /// A bar on a terminal, otherwise a progress line every second.
    Always,
    /// No progress.
    Never,
}

/// What a [`Mode`] shows, given whether standard error is a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// A bar (or spinner) on the terminal.
    Bar,
    /// Lines, off a terminal.
    Lines,
    /// Nothing.
    Nothing,
}

impl Mode {
    /// What this mode shows on standard error (nothing when `quiet`).
    pub fn shown(self, quiet: bool) -> Shown {
        match (quiet, std::io::stderr().is_terminal(), self) {
            (true, ..) | (_, _, Mode::Never) => Shown::Nothing,
            (_, true, _) => Shown::Bar,
            (_, false, Mode::Always) => Shown::Lines,
            (_, false, Mode::Auto) => Shown::Nothing,
        }
    }
}

/// Shows done / failed / rate / ETA / best as jobs finish.
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: Option<Instant>,
    total: Option<u64>,
    search: String,
    started: Instant,
}

impl Progress {
    /// A display for `total` jobs (unknown for standard input) of search `search`.
    pub fn new(mode: Mode, total: Option<u64>, quiet: bool, search: &str) -> Progress {
        let shown = mode.shown(quiet);
        let bar = (shown == Shown::Bar).then(|| {
            let (bar, template) = match total {
                Some(n) => (ProgressBar::new(n), "{bar:30} {pos}/{len} done, {msg}"),
                None => (ProgressBar::no_length(), "{spinner} {pos} done, {msg}"),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        // The first line comes with the first job, then one a second.
        let lines = (shown == Shown::Lines).then(|| {
            Instant::now()
                .checked_sub(Duration::from_secs(1))
                .unwrap_or_else(Instant::now)
        });
        Progress {
            bar,
            lines,
            total,
            search: search.to_string(),
            started: Instant::now(),
        }
    }

    /// Shows the state after a job finished.
    pub fn update(&mut self, s: &Summary) {
        if let Some(bar) = &self.bar {
            bar.set_position(s.jobs);
            bar.set_message(self.text(s, false));
        } else if let Some(last) = self.lines
            && last.elapsed() >= Duration::from_secs(1)
        {
            eprintln!("progress: search {}, {}", self.search, self.text(s, true));
            self.lines = Some(Instant::now());
        }
    }

    /// Runs `f` (which prints to the terminal) without garbling the bar.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Removes the bar, before the summary.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn text(&self, s: &Summary, with_count: bool) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = s.jobs as f64 / secs;
        let mut t = String::new();
        if with_count {
            t.push_str(&match self.total {
                Some(n) => format!("{}/{n} done, ", s.jobs),
                None => format!("{} done, ", s.jobs),
            });
        }
        t.push_str(&format!(
            "{} failed, {}",
            s.failed(),
            crate::summary::rate_text(s.jobs - s.cancelled, secs)
        ));
        if let Some(n) = self.total
            && rate > 0.0
        {
            let left = n.saturating_sub(s.jobs) as f64 / rate;
            t.push_str(&format!(", ETA {}", eta(left)));
        }
        if let Some(best) = s.best_text() {
            t.push_str(&format!(", best {best}"));
        }
        t
    }
}

fn eta(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}
