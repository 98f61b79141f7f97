//! Timestamps of the steps of a start, for the spawn benchmark's breakdown
//! (`benches/isolation.rs`): with [`STEPS_VAR`] set in the host's environment, the
//! host and its runner (which the host tells through the same variable) write one
//! line per step to their stderr, `tomada-step <CLOCK_MONOTONIC ns> <step>`. The
//! runner's lines reach the host's output callback as any plugin output does. Off
//! (one cached look at the environment) otherwise.

use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that turns the step lines on (any value).
pub(crate) const STEPS_VAR: &str = "TOMADA_STEP_TIMES";

/// 0: not looked yet, 1: off, 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Whether step lines are written (looked up once per process).
pub(crate) fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var_os(STEPS_VAR).is_some();
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        state => state == 2,
    }
}

/// Writes `step`'s line (if enabled): one `write` to stderr, so lines of processes
/// sharing the pipe do not mix.
pub(crate) fn mark(step: &str) {
    if !enabled() {
        return;
    }
    #[cfg(unix)]
    {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `clock_gettime` writes into a local.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let ns = now.tv_sec as u128 * 1_000_000_000 + now.tv_nsec as u128;
        let line = format!("tomada-step {ns} {step}\n");
        // SAFETY: writing a local buffer to stderr (a failure is ignored: a
        // benchmark's aid).
        unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    }
    #[cfg(not(unix))]
    let _ = step;
}
