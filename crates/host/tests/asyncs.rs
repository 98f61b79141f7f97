//! `async fn` in a contract across a real library boundary (`tests/plugins/async-plugin`),
//! where only isolated plugins differ: a call past its deadline, and the plugin's
//! process ended with its handle after async callbacks. What async calls do in every
//! mode (answers with tokio and with the minimal executor written here, cancellation,
//! a panic in the plugin's future) is in the conformance suite (`conformance.rs`),
//! which uses this file's helpers.

// (Off Unix only the helpers are used, by the conformance suite.)
#![cfg_attr(not(unix), allow(unused_imports))]

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_api::{Lookup, Settings, Witness};
use tomada_host::isolate::Mode;
use tomada_host::{CallError, Plugin};
use tomada_test_support::{cdylib, wait_until};

/// The smallest executor: polls on this thread, parks until woken.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
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

pub(crate) fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

pub(crate) struct Config;

impl Settings for Config {
    fn get(&self, key: &str) -> Option<String> {
        (key == "mode").then(|| "fast".to_owned())
    }
}

/// Records what the plugin tells it.
#[derive(Clone, Default)]
pub(crate) struct Notes(Arc<Mutex<Vec<String>>>);

impl Witness for Notes {
    fn note(&self, what: &str) {
        self.0.lock().unwrap().push(what.to_owned());
    }
}

impl Notes {
    pub(crate) fn taken(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until at least `count` notes came (the last, isolated, through the
    /// channel a moment after the call that caused it), and returns them.
    pub(crate) fn wait_for(&self, count: usize) -> Vec<String> {
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
pub(crate) fn start_then_drop_a_stall(lookup: &Plugin<dyn Lookup>, notes: &Notes) {
    tokio().block_on(async {
        tokio::select! {
            r = lookup.stall(Box::new(notes.clone())) => panic!("stall never finishes, yet it did: {r:?}"),
            () = notes.started() => {}
        }
    });
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
