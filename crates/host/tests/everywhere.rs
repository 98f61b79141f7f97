//! Isolation on every platform that has it (Linux, macOS, Windows — run under Wine
//! in CI by `.ci/windows`): the same plugin isolated behind the same handle, its
//! crash a `CallError::Crashed` and a restart on the next call, a hang ended at its
//! deadline, its output forwarded, async methods (concurrent, with a callback,
//! cancelled) and objects both ways (the plugin's kept by the host, the host's lent
//! and kept by the plugin, a callback that calls the plugin again). Nothing here looks
//! at `/proc` or a signal: what a Windows process reports is an exit code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_api::Lookup;
use fault_api::Faulty;
use indexer_api::{Host, Indexer, Level, Visitor};
use pluginapi::Greeter;
use tomada_host::isolate::{Isolation, Mode, Runner, Stream};
use tomada_host::{CallError, Plugin};
use tomada_test_support::{cdylib, wait_until};

/// Isolation with the `tomada-runner` binary (the test harness cannot serve as one).
pub(crate) fn isolation() -> Isolation {
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

/// Async methods of an isolated plugin: calls in flight at once on one host thread, a
/// callback into the host during one, an object as the result of one, and a call the
/// host drops, whose future the plugin's process drops too (a `Cancel` frame).
#[test]
fn an_isolated_plugins_async_methods_answer_and_are_cancelled() {
    use crate::asyncs::{Config, Notes, block_on, start_then_drop_a_stall, tokio};
    let lookup = tomada_host::load_with::<dyn Lookup>(cdylib("async-plugin"), &Mode::Isolated(isolation())).unwrap();
    tokio().block_on(async {
        let (a, b, c) =
            tokio::join!(lookup.fetch("slow", 200), lookup.fetch("b", 1), lookup.ask(&Config, "mode", &[1, 2]));
        assert_eq!(a, Ok(Some("slow: fetched".to_owned())));
        assert_eq!(b, Ok(Some("b: fetched".to_owned())));
        assert_eq!(c, Ok(("fast".to_owned(), 3)));
    });
    let err = block_on(lookup.boom()).unwrap_err();
    assert!(matches!(&err, CallError::Panicked { message } if message.starts_with("the future blew up")), "{err:?}");
    let notes = Notes::default();
    start_then_drop_a_stall(&lookup, &notes);
    assert_eq!(notes.wait_for(2), ["started", "dropped"]);
    assert_eq!(lookup.plain(21), Ok(42));

    let indexer = tomada_host::load_with::<dyn Indexer>(cdylib("indexer"), &Mode::Isolated(isolation())).unwrap();
    indexer.index("apple avocado", &crate::objects::Recorder::new(vec![]).1).unwrap();
    let later = block_on(indexer.open_later("av")).unwrap();
    assert_eq!(later.next(), Ok(Some("avocado".into())));
}

/// Objects both ways with an isolated plugin: a host object lent for a call (called
/// back during it), one kept by the plugin (called later, dropped when the plugin lets
/// go), the plugin's objects kept by the host (and objects from those), and a host
/// callback that calls the plugin again from inside the plugin's call.
#[test]
fn an_isolated_plugins_objects_and_callbacks_cross_both_ways() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let plugin = tomada_host::load_with::<dyn Indexer>(cdylib("indexer"), &Mode::Isolated(isolation())).unwrap();
    let (_, host) = crate::objects::Recorder::new(vec![("lowercase", "yes")]);
    assert_eq!(plugin.index("Apple AVOCADO banana apricot", &host), Ok(4));
    let lines = host.lines.lock().unwrap().clone();
    assert_eq!(lines.first(), Some(&(Level::Debug, "indexing `apple`".to_owned())));
    assert_eq!(lines.last(), Some(&(Level::Info, "indexed 4 words".to_owned())));

    let cursor = plugin.open("a").unwrap();
    assert_eq!(cursor.next(), Ok(Some("apple".into())));
    let fork = cursor.fork().unwrap();
    assert_eq!(fork.next(), Ok(Some("avocado".into())));
    assert_eq!(cursor.next(), Ok(Some("avocado".into())));

    let (dropped, kept) = crate::objects::Recorder::new(vec![]);
    plugin.attach(Box::new(kept)).unwrap();
    assert!(!dropped.load(Ordering::SeqCst), "kept by the plugin after the call");
    assert_eq!(plugin.flush(), Ok(4));
    assert_eq!(plugin.detach(), Ok(true));
    assert!(dropped.load(Ordering::SeqCst), "released when the plugin lets go");

    struct Again(AtomicUsize);
    impl Visitor for Again {
        fn visit(&self, word: &str, indexer: &dyn Indexer) -> bool {
            self.0.fetch_add(1, Ordering::SeqCst);
            assert_eq!(indexer.count(), 4, "the plugin answers while its own call is in flight");
            assert_eq!(indexer.open(word).next().as_deref(), Some(word));
            true
        }
    }
    let visitor = Again(AtomicUsize::new(0));
    assert_eq!(plugin.walk(&visitor), Ok(4));
    assert_eq!(visitor.0.load(Ordering::SeqCst), 4);

    // A host callback's panic fails the plugin's call, not the host.
    struct Refuses;
    impl Host for Refuses {
        fn log(&self, _: Level, message: &str) {
            panic!("the host refuses to log `{message}`");
        }
        fn config(&self, _: &str) -> Option<String> {
            None
        }
    }
    let err = plugin.index("x", &Refuses).unwrap_err();
    assert!(matches!(&err, CallError::Panicked { message } if message.contains("the host refuses to log")), "{err:?}");
    // Objects outlive the plugin's handle (its process lives on for them).
    drop(plugin);
    assert_eq!(fork.next(), Ok(Some("apricot".into())));
}
