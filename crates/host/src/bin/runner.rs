//! `tomada-runner`: runs one isolated plugin for a host (see
//! `tomada_host::isolate::Runner::Path`). Started by a host, never by hand.
//!
//! A C `main`, not Rust's: std's start-up before `fn main` (on Linux: reading
//! `/proc/self/maps` for the main thread's stack guard, an alternate signal stack and
//! `SIGSEGV`/`SIGBUS` handlers that name a thread that overflowed its stack) is on
//! every plugin start's path, and the runner needs none of it but `SIGPIPE` ignored,
//! which it sets itself. (A stack overflow still ends the process with `SIGSEGV`,
//! which the host reports as a crash; only std's message before it is gone.)
#![no_main]

/// The process's entry, called by the C library.
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    // As std's start-up does: a write to a closed pipe or socket is an error, not a
    // death.
    #[cfg(unix)]
    // SAFETY: `signal` with `SIG_IGN` installs no handler of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN)
    };
    tomada_host::isolate::serve_if_runner();
    eprintln!(
        "tomada-runner runs plugins for a host that isolates them (tomada_host::isolate); \
         it is not meant to be run directly"
    );
    2
}
