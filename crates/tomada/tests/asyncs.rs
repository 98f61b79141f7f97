//! `async fn` in contracts, called both ways (as `contract.rs`): in-process through
//! the plugin's `FfiFuture`, and byte-level through a loopback channel with the
//! default `Channel::call_async` (a thread per call) into the dispatch function,
//! which runs the future with `block_on`. Cancellation both ways.

use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tomada::__private::client::dispatched;
use tomada::__private::ffi::{RSlice, RVec, Status};
use tomada::future::{CANCEL_METHOD, Cancel, block_on};
use tomada::{BoxFuture, CallError, Contract};

use crate::contract::{Plugin, clients};

#[tomada::contract(abi = 1)]
pub trait Host {
    fn config(&self, key: &str) -> Option<String>;
}

#[tomada::contract(abi = 1)]
pub trait Fetch {
    /// Looks `key` up after a timer fires.
    async fn fetch(&self, key: &str) -> Option<String>;
    async fn total(&self, numbers: &[u64], words: &[String]) -> (u64, usize);
    async fn ask(&self, host: &dyn Host, key: &str) -> String;
    async fn boom(&self, when: u8) -> u8;
    async fn stall(&self) -> u32;
    fn plain(&self) -> u32;
    async fn by_hand(&self, key: &str) -> String;
}

/// A future ready after `ms` milliseconds, woken by a thread of its own.
struct Timer {
    fired: Arc<std::sync::atomic::AtomicBool>,
    ms: u64,
    started: bool,
}

fn sleep(ms: u64) -> Timer {
    Timer { fired: Arc::default(), ms, started: false }
}

impl Future for Timer {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if !self.started {
            self.started = true;
            let (fired, waker, ms) = (Arc::clone(&self.fired), cx.waker().clone(), self.ms);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(ms));
                fired.store(true, Ordering::Release);
                waker.wake();
            });
        }
        Poll::Pending
    }
}

static STALLS_DROPPED: AtomicU32 = AtomicU32::new(0);

/// Held by each test that counts `STALLS_DROPPED`: tests run on parallel threads, and
/// another test's stall dropped between a `before` and its check would be counted too.
fn counting_stalls() -> std::sync::MutexGuard<'static, ()> {
    static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    COUNTING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts the `stall` futures dropped before they finished.
struct Guard;
impl Drop for Guard {
    fn drop(&mut self) {
        STALLS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Remote;

#[tomada::implement]
impl Fetch for Remote {
    async fn fetch(&self, key: &str) -> Option<String> {
        sleep(2).await;
        (key != "none").then(|| format!("value of {key}"))
    }
    async fn total(&self, numbers: &[u64], words: &[String]) -> (u64, usize) {
        sleep(1).await;
        (numbers.iter().sum(), words.iter().map(String::len).sum())
    }
    async fn ask(&self, host: &dyn Host, key: &str) -> String {
        sleep(1).await;
        host.config(key).unwrap_or_default()
    }
    async fn boom(&self, when: u8) -> u8 {
        if when == 0 {
            panic!("boom before awaiting");
        }
        sleep(1).await;
        if when == 1 {
            panic!("boom after awaiting");
        }
        when
    }
    async fn stall(&self) -> u32 {
        let _guard = Guard;
        std::future::pending::<()>().await;
        7
    }
    fn plain(&self) -> u32 {
        42
    }
    // The hand-written form, without `#[implement]`'s help.
    fn by_hand<'a>(&'a self, key: &'a str) -> BoxFuture<'a, String> {
        Box::pin(async move {
            sleep(1).await;
            key.repeat(2)
        })
    }
}

struct Config;
impl Host for Config {
    fn config(&self, key: &str) -> Option<String> {
        Some(format!("{key}=on"))
    }
}

static VTABLE: FetchVTable = <dyn Fetch>::__tomada_vtable::<Remote>();

fn fetchers() -> [(&'static str, FetchClient, Arc<Plugin<Remote>>); 2] {
    clients::<dyn Fetch, _>(
        (&VTABLE as *const FetchVTable).cast(),
        <dyn Fetch>::__tomada_dispatch::<Remote>,
        Remote::default,
        7,
        0,
    )
}

fn wait<F: Future>(f: F) -> F::Output {
    block_on(f, &Cancel::default()).expect("not cancelled")
}

#[test]
fn async_methods_answer_both_ways() {
    for (path, client, _plugin) in fetchers() {
        assert_eq!(wait(client.fetch("k")), Ok(Some("value of k".to_owned())), "{path}");
        assert_eq!(wait(client.fetch("none")), Ok(None), "{path}");
        let words = ["ab".to_owned(), "cde".to_owned()];
        assert_eq!(wait(client.total(&[1, 2, 3], &words)), Ok((6, 5)), "{path}");
        assert_eq!(wait(client.by_hand("ha")), Ok("haha".to_owned()), "{path}");
        assert_eq!(client.plain(), Ok(42), "{path}");
        // Several calls in flight at once, completed in any order.
        let (a, b) = (client.fetch("a"), client.fetch("b"));
        assert_eq!(wait(b), Ok(Some("value of b".to_owned())), "{path}");
        assert_eq!(wait(a), Ok(Some("value of a".to_owned())), "{path}");
    }
}

#[test]
fn an_object_argument_lives_as_long_as_the_future() {
    let [(_, client, _plugin), _] = fetchers();
    let host = Config;
    assert_eq!(wait(client.ask(&host, "debug")), Ok("debug=on".to_owned()));
}

#[test]
fn a_panic_in_the_plugins_future_is_an_error() {
    for (path, client, _plugin) in fetchers() {
        for when in [0, 1] {
            let err = wait(client.boom(when)).unwrap_err();
            let CallError::Panicked { message } = err else { panic!("{path}: {err:?}") };
            assert!(message.starts_with("boom"), "{path}: {message}");
        }
        // The instance keeps working.
        assert_eq!(wait(client.boom(9)), Ok(9), "{path}");
    }
}

#[test]
fn dropping_the_hosts_future_drops_the_plugins_future() {
    let [(_, client, _plugin), _] = fetchers();
    let _counting = counting_stalls();
    let before = STALLS_DROPPED.load(Ordering::SeqCst);
    let mut call = client.stall();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut call).poll(&mut cx).is_pending());
    assert!(Pin::new(&mut call).poll(&mut cx).is_pending());
    assert_eq!(STALLS_DROPPED.load(Ordering::SeqCst), before);
    drop(call);
    assert_eq!(STALLS_DROPPED.load(Ordering::SeqCst), before + 1);
}

/// The runner's side of cancellation: an isolated call of `stall` blocks in the
/// dispatch function until the reserved `CANCEL_METHOD`, naming the call's `out`
/// address, stops it.
#[test]
fn an_isolated_call_is_cancelled_through_the_dispatch_function() {
    let plugin = crate::contract::instance(Remote);
    let this = plugin.this as usize;
    let dispatch = <dyn Fetch>::__tomada_dispatch::<Remote>;
    let _counting = counting_stalls();
    let before = STALLS_DROPPED.load(Ordering::SeqCst);
    let (tx, rx) = std::sync::mpsc::channel();
    let call = std::thread::spawn(move || {
        let mut out = Box::new(MaybeUninit::<RVec>::uninit());
        let mut panic = MaybeUninit::<RVec>::uninit();
        tx.send(out.as_mut_ptr() as usize).unwrap();
        // SAFETY: the dispatch function of `Remote`, its live instance, no arguments
        // (`stall` takes none), writable `out`/`panic`.
        let status = unsafe { dispatch(this as *const _, 4, RSlice::new(&[]), out.as_mut_ptr(), panic.as_mut_ptr()) };
        // SAFETY: from that call.
        (status, unsafe { dispatched(status, *out, panic) }.into_vec())
    });
    let key = (rx.recv().unwrap() as u64).to_le_bytes();
    let cancel = || {
        let mut out = MaybeUninit::<RVec>::uninit();
        let mut panic = MaybeUninit::<RVec>::uninit();
        // SAFETY: as above, with the 8 bytes `CANCEL_METHOD` takes.
        let status = unsafe {
            dispatch(this as *const _, CANCEL_METHOD, RSlice::new(&key), out.as_mut_ptr(), panic.as_mut_ptr())
        };
        assert_eq!(status, Status::OK);
        // SAFETY: from that call.
        unsafe { dispatched(status, out, panic) }.into_vec()
    };
    // The call may not have registered yet: ask until it is found.
    while cancel() != [1] {
        std::thread::sleep(Duration::from_millis(1));
    }
    let (status, body) = call.join().unwrap();
    assert_eq!(status, Status::CANCELLED);
    assert_eq!(String::from_utf8(body).unwrap(), "the call was cancelled");
    assert_eq!(STALLS_DROPPED.load(Ordering::SeqCst), before + 1);
    // Once finished, the call is not found any more.
    assert_eq!(cancel(), [0]);
    drop(plugin);
}

#[test]
fn the_description_says_async() {
    let interface = tomada::Interface::from(&<dyn Fetch as Contract>::DESCRIPTION);
    assert_eq!(interface.methods[0].to_string(), "async fn fetch(&self, &str) -> Option<String>");
    assert!(interface.methods[0].is_async());
    assert_eq!(interface.methods[5].to_string(), "fn plain(&self) -> u32");
    assert!(!interface.methods[5].is_async());
}

mod sync_twin {
    #[tomada::contract(abi = 1, name = "asyncs::Twin")]
    pub trait Twin {
        fn fetch(&self, key: &str) -> Option<String>;
    }
}

mod async_twin {
    #[tomada::contract(abi = 1, name = "asyncs::Twin")]
    pub trait Twin {
        async fn fetch(&self, key: &str) -> Option<String>;
    }
}

#[test]
fn an_async_method_does_not_fit_a_plain_one() {
    let sync = tomada::Interface::from(&<dyn sync_twin::Twin as Contract>::DESCRIPTION);
    let asynchronous = tomada::Interface::from(&<dyn async_twin::Twin as Contract>::DESCRIPTION);
    assert_ne!(<dyn sync_twin::Twin as Contract>::FINGERPRINT, <dyn async_twin::Twin as Contract>::FINGERPRINT);
    let why = asynchronous.fit(&sync).unwrap_err();
    assert!(
        why.iter().any(|w| w.to_string().contains("`fetch` is a plain `fn` in the plugin, `async fn` in the host")),
        "{why:?}"
    );
}

/// An async contract for a generic impl.
#[tomada::contract(abi = 1)]
pub trait Echo {
    async fn echo(&self, text: &str) -> String;
}

struct Prefixed<T>(T);

#[tomada::implement]
impl<T> Echo for Prefixed<T>
where
    T: AsRef<str> + Send + Sync + 'static,
{
    async fn echo(&self, text: &str) -> String {
        format!("{}{text}", self.0.as_ref())
    }
}

/// `#[implement]` on a generic impl: the rewritten method and the mark `export!`
/// checks (`Box<dyn C>: From<T>`, see `tomada::__private::Implemented`) carry the
/// impl's generics and bounds; the mark is a real conversion.
#[test]
fn implement_carries_the_impls_generics_and_marks_the_type() {
    fn implemented<T: tomada::__private::Implemented<dyn Echo>>() {}
    implemented::<Prefixed<&'static str>>();
    implemented::<Prefixed<String>>();
    let boxed: Box<dyn Echo> = Box::from(Prefixed("> "));
    assert_eq!(wait(boxed.echo("hi")), "> hi");
}
