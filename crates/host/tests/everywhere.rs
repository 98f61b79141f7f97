//! Isolation on every platform that has it (Linux, macOS, Windows — run under Wine
//! in CI by `.ci/windows`): the same plugin isolated behind the same handle, its
//! crash a `CallError::Crashed` and a restart on the next call, a hang ended at its
//! deadline, its output forwarded. Nothing here looks at `/proc` or a signal: what a
//! Windows process reports is an exit code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fault_api::Faulty;
use pluginapi::Greeter;
use tomada_host::isolate::{Isolation, Mode, Runner, Stream};
use tomada_host::{CallError, Plugin};
use tomada_test_support::{cdylib, wait_until};

/// Isolation with the `tomada-runner` binary (the test harness cannot serve as one).
fn isolation() -> Isolation {
    Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()))
}

fn faulty(isolation: Isolation) -> Plugin<dyn Faulty> {
    tomada_host::load_with::<dyn Faulty>(cdylib("faulty"), &Mode::Isolated(isolation)).unwrap()
}

#[test]
fn an_isolated_greeter_greets_from_its_own_process() {
    let path = cdylib("greeter");
    let local = tomada_host::load_with::<dyn Greeter>(&path, &Mode::InProcess).unwrap();
    let isolated = tomada_host::load_with::<dyn Greeter>(&path, &Mode::Isolated(isolation())).unwrap();
    assert_eq!(isolated.greet("Mundo").unwrap(), "Olá, Mundo 👋");
    assert_eq!(isolated.greet("Mundo").unwrap(), local.greet("Mundo").unwrap());
    assert_eq!(isolated.info(), local.info());
    let pid = isolated.process_id().expect("an isolated plugin has a process");
    assert_ne!(pid, std::process::id());
}

#[test]
fn a_crash_is_an_error_and_the_next_call_restarts_the_plugin() {
    let plugin = faulty(isolation());
    let before = plugin.process_id().unwrap();
    let err = plugin.abort().unwrap_err();
    assert!(matches!(err, CallError::Crashed { .. }), "{err:?}");
    assert_eq!(plugin.process_id(), None, "no process between the crash and the next call");
    assert_eq!(plugin.echo("again").unwrap(), "again");
    // (The host's pid of it: on Linux the plugin's own `pid()` is its PID namespace's.)
    let after = plugin.process_id().unwrap();
    assert_ne!(before, after, "the next call ran in a new process");
}

#[test]
fn an_exit_code_is_reported() {
    let plugin = faulty(isolation());
    let err = plugin.exit(7).unwrap_err();
    assert!(matches!(err, CallError::Crashed { exit_code: Some(7), .. }), "{err:?}");
    assert_eq!(plugin.echo("after").unwrap(), "after");
}

#[test]
fn a_panic_is_an_error_and_the_process_stays() {
    let plugin = faulty(isolation());
    let pid = plugin.process_id().unwrap();
    let err = plugin.panic("não").unwrap_err();
    assert!(matches!(&err, CallError::Panicked { message } if message.starts_with("não")), "{err:?}");
    assert_eq!(plugin.echo("still").unwrap(), "still");
    assert_eq!(plugin.process_id().unwrap(), pid);
}

#[test]
fn a_hang_past_its_deadline_is_killed_and_the_next_call_restarts() {
    let deadline = Duration::from_secs(2);
    let plugin = faulty(isolation().deadline(deadline));
    let before = plugin.process_id().unwrap();
    let err = plugin.hang().unwrap_err();
    assert!(matches!(&err, CallError::TimedOut { deadline: d } if *d == deadline), "{err:?}");
    assert_eq!(plugin.echo("awake").unwrap(), "awake");
    assert_ne!(plugin.process_id().unwrap(), before, "the hung process was replaced");
}

#[test]
fn the_plugins_output_is_forwarded_line_by_line() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&lines);
    let plugin = faulty(isolation().on_output(move |_, stream, line| {
        seen.lock().unwrap().push((stream, line.to_owned()));
    }));
    plugin.print("olá").unwrap();
    let has = |stream: Stream, line: &str| lines.lock().unwrap().iter().any(|(s, l)| *s == stream && l == line);
    wait_until("the plugin's stdout and stderr lines", || {
        has(Stream::Stdout, "olá") && has(Stream::Stderr, "olá (stderr)")
    });
}

/// Windows has no sandbox: asking for one is a typed refusal, never an unsandboxed
/// plugin.
#[cfg(windows)]
#[test]
fn a_sandbox_is_refused_on_windows() {
    use tomada_host::isolate::Sandbox;
    use tomada_host::{LaunchError, LoadError};
    let mode = Mode::Isolated(isolation().sandbox(Sandbox::strict()));
    let err = tomada_host::load_with::<dyn Greeter>(cdylib("greeter"), &mode).unwrap_err();
    assert!(
        matches!(&err, LoadError::Isolation { source: LaunchError::SandboxUnsupported { platform: "windows" }, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("a sandbox is not available on windows"), "{err}");
}

/// Two calls at once run at once in the plugin's process (each waits until the other
/// is inside): a second thread there took the second call, woken by the host's nudge
/// (a pipe on Unix, a semaphore on Windows).
#[test]
fn calls_from_two_threads_are_served_at_once() {
    let plugin = faulty(isolation());
    std::thread::scope(|s| {
        let other = s.spawn(|| plugin.meet(2).unwrap());
        assert!(plugin.meet(2).unwrap(), "the two calls met inside the plugin");
        assert!(other.join().unwrap());
    });
}
