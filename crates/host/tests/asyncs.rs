//! `async fn` in a contract across a real library boundary (`tests/plugins/async-plugin`):
//! awaited with tokio and with a minimal executor written here, in-process (the
//! plugin's future crosses as an FFI-safe future, woken by timer threads in the
//! plugin) and isolated (multiplexed on the channel: no host thread blocks). Cancellation,
//! in both modes: dropping the host's future drops the plugin's. A panic in the
//! plugin's future is an error.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_api::{Lookup, Settings, Witness};
use tomada_host::isolate::Mode;
use tomada_host::{CallError, Plugin};
use tomada_test_support::{cdylib, wait_until};

/// The plugin in each mode this platform has (isolation is Unix only).
fn lookups() -> Vec<(&'static str, Plugin<dyn Lookup>)> {
    let path = cdylib("async-plugin");
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut all = vec![("in-process", tomada_host::load_with::<dyn Lookup>(&path, &Mode::InProcess).unwrap())];
    #[cfg(unix)]
    all.push((
        "isolated",
        tomada_host::load_with::<dyn Lookup>(&path, &Mode::Isolated(crate::isolate::isolation())).unwrap(),
    ));
    all
}

/// The smallest executor: polls on this thread, parks until woken.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread, AtomicBool);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.1.store(true, Ordering::Release);
            self.0.unpark();
        }
    }
    let unpark = Arc::new(Unpark(std::thread::current(), AtomicBool::new(false)));
    let waker = Waker::from(Arc::clone(&unpark));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        while !unpark.1.swap(false, Ordering::Acquire) {
            std::thread::park();
        }
    }
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

struct Config;

impl Settings for Config {
    fn get(&self, key: &str) -> Option<String> {
        (key == "mode").then(|| "fast".to_owned())
    }
}

/// Records what the plugin tells it.
#[derive(Clone, Default)]
struct Notes(Arc<Mutex<Vec<String>>>);

impl Witness for Notes {
    fn note(&self, what: &str) {
        self.0.lock().unwrap().push(what.to_owned());
    }
}

impl Notes {
    fn taken(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until at least `count` notes came (the last, isolated, through the
    /// channel a moment after the call that caused it), and returns them.
    fn wait_for(&self, count: usize) -> Vec<String> {
        wait_until(&format!("{count} notes from the plugin"), || self.taken().len() >= count);
        self.taken()
    }

    /// Ready once the plugin noted anything: the call reached the plugin.
    async fn started(&self) {
        while self.taken().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Runs `stall` under tokio until the plugin says it started, then drops the call, as
/// `select!` or `timeout` drop the future that lost. (A timeout of its own would race
/// the call's way into the plugin: dropped before it got there, it is never started.)
fn start_then_drop_a_stall(lookup: &Plugin<dyn Lookup>, notes: &Notes) {
    tokio().block_on(async {
        tokio::select! {
            r = lookup.stall(Box::new(notes.clone())) => panic!("stall never finishes, yet it did: {r:?}"),
            () = notes.started() => {}
        }
    });
}

#[test]
fn async_methods_answer_with_a_minimal_executor() {
    for (mode, lookup) in lookups() {
        assert_eq!(block_on(lookup.fetch("a", 5)), Ok(Some("a: fetched".to_owned())), "{mode}");
        assert_eq!(block_on(lookup.fetch("missing", 1)), Ok(None), "{mode}");
        assert_eq!(block_on(lookup.ask(&Config, "mode", &[1, 2, 3])), Ok(("fast".to_owned(), 6)), "{mode}");
        assert_eq!(lookup.plain(21), Ok(42), "{mode}");
    }
}

#[test]
fn async_methods_answer_with_tokio_concurrently() {
    for (mode, lookup) in lookups() {
        tokio().block_on(async {
            // Three calls in flight on one thread: the slow one does not hold up the others.
            let slow = lookup.fetch("slow", 200);
            let (a, b, c) = tokio::join!(slow, lookup.fetch("b", 1), lookup.ask(&Config, "other", &[7]));
            assert_eq!(a, Ok(Some("slow: fetched".to_owned())), "{mode}");
            assert_eq!(b, Ok(Some("b: fetched".to_owned())), "{mode}");
            assert_eq!(c, Ok(("unset".to_owned(), 7)), "{mode}");
        });
    }
}

#[test]
fn a_panic_in_the_plugins_future_is_an_error() {
    for (mode, lookup) in lookups() {
        let err = tokio().block_on(lookup.boom()).unwrap_err();
        let CallError::Panicked { message } = err else { panic!("{mode}: {err:?}") };
        assert!(message.starts_with("the future blew up"), "{mode}: {message}");
        // The plugin keeps working.
        assert_eq!(block_on(lookup.fetch("after", 1)), Ok(Some("after: fetched".to_owned())), "{mode}");
    }
}

#[test]
fn dropping_the_hosts_future_drops_the_plugins_future() {
    for (mode, lookup) in lookups() {
        // Isolated, the plugin's process hears of it a moment later (a `Cancel` frame):
        // `wait_for` waits for that note.
        let notes = Notes::default();
        start_then_drop_a_stall(&lookup, &notes);
        // tokio dropped the losing call: the plugin's future, and its guard, are gone.
        assert_eq!(notes.wait_for(2), ["started", "dropped"], "{mode}");
        // The minimal executor's way: poll until it started, then drop.
        let notes = Notes::default();
        let mut call = lookup.stall(Box::new(notes.clone()));
        let mut cx = Context::from_waker(Waker::noop());
        wait_until("the stall to start", || {
            assert!(std::pin::Pin::new(&mut call).poll(&mut cx).is_pending(), "{mode}");
            !notes.taken().is_empty()
        });
        assert_eq!(notes.taken(), ["started"], "{mode}");
        drop(call);
        assert_eq!(notes.wait_for(2), ["started", "dropped"], "{mode}");
        // The plugin goes on answering.
        assert_eq!(block_on(lookup.fetch("after", 1)), Ok(Some("after: fetched".to_owned())), "{mode}");
        assert_eq!(lookup.plain(2), Ok(4), "{mode}");
    }
}

/// Isolated, an async call that outlives its deadline fails with `TimedOut` (the
/// plugin's process is ended, as for a blocking call), and the next call starts anew.
/// (The deadline holds for that next call too: long enough for a busy machine.)
#[cfg(unix)]
#[test]
fn an_isolated_async_call_past_its_deadline_times_out() {
    let isolation = crate::isolate::isolation().deadline(Duration::from_secs(3));
    let lookup = tomada_host::load_with::<dyn Lookup>(cdylib("async-plugin"), &Mode::Isolated(isolation)).unwrap();
    let first = lookup.process_id().unwrap();
    let notes = Notes::default();
    let err = block_on(lookup.stall(Box::new(notes.clone()))).unwrap_err();
    assert!(matches!(err, CallError::TimedOut { .. }), "{err:?}");
    assert_eq!(block_on(lookup.fetch("again", 1)), Ok(Some("again: fetched".to_owned())));
    assert_ne!(lookup.process_id(), Some(first), "a new process");
}

/// Isolated, the threads that serve callbacks outside a blocked host thread (those of
/// async calls) do not keep the plugin alive: dropping the `Plugin` ends its process.
#[cfg(unix)]
#[test]
fn dropping_an_isolated_plugin_after_async_callbacks_ends_its_process() {
    let lookup =
        tomada_host::load_with::<dyn Lookup>(cdylib("async-plugin"), &Mode::Isolated(crate::isolate::isolation()))
            .unwrap();
    let pid = lookup.process_id().unwrap();
    let notes = Notes::default();
    // The stall's note is a callback outside a blocked host thread.
    start_then_drop_a_stall(&lookup, &notes);
    assert_eq!(block_on(lookup.ask(&Config, "mode", &[1])), Ok(("fast".to_owned(), 1)));
    drop(lookup);
    crate::isolate::wait_dead(pid);
}
