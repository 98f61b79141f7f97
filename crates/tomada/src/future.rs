//! `async fn` in contracts: futures that cross the boundary.
//!
//! A contract trait is used as `dyn C`, so an `async fn` in it cannot stay native: in
//! the trait `#[contract]` emits, `async fn fetch(&self, key: &str) -> R` becomes
//! `fn fetch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, R>` (the future may borrow
//! the instance and the arguments, as with the `async-trait` crate). Plugins write
//! the method as `async fn` in an impl under [`#[tomada::implement]`](crate::implement),
//! or by hand as a function returning a [`BoxFuture`].
//!
//! # In-process
//! The method's shim returns an [`FfiFuture`]: the plugin's boxed future behind a
//! `#[repr(C)]` struct of three things (the future, its `poll` function and its `drop`
//! function), all of the plugin's making. The host polls it with an [`FfiWaker`], a
//! `#[repr(C)]` waker with its own vtable (clone, wake, wake by reference, drop), all of
//! the host's making. Neither side assumes the other shares its runtime, its
//! executor, its std or its allocator: each frees only what it allocated, through its
//! own functions (the design of the `async-ffi` crate). A panic while polling is caught
//! in the plugin and comes back as [`CallError::Panicked`].
//! The host's side is a [`CallFuture`]; dropping it before it completes drops the
//! plugin's future (cancellation).
//!
//! # Isolated
//! The host's client calls [`Channel::call_async`](crate::client::Channel::call_async);
//! in the plugin's process the byte-level dispatch runs the future to completion on
//! the calling thread ([`block_on`]), and stops it early when the runner asks, through
//! the reserved method number [`CANCEL_METHOD`] (see [`serve_async`]).

use std::collections::HashMap;
use std::ffi::c_void;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker};
use std::thread::Thread;

use crate::client::RawClient;
use crate::ffi::{RSlice, RVec, Status};
use crate::wire::WireError;
use crate::{Abi, CallError};

/// What an `async fn` of a contract trait returns in the trait `#[contract]` emits: a
/// boxed, `Send` future that may borrow the instance and the arguments for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// ---------------------------------------------------------------------------------
// The waker across the boundary.

/// The functions of an [`FfiWaker`], all of the side that made it (the side that
/// polls). Each takes the waker it is called on.
#[repr(C)]
#[doc(hidden)]
pub struct FfiWakerVTable {
    /// Makes an owned copy (to be dropped or woken once, through its own vtable).
    pub clone: unsafe extern "C" fn(*const FfiWaker) -> *const FfiWaker,
    /// Wakes the task and drops this owned waker.
    pub wake: unsafe extern "C" fn(*const FfiWaker),
    /// Wakes the task; the waker stays.
    pub wake_by_ref: unsafe extern "C" fn(*const FfiWaker),
    /// Drops this owned waker.
    pub drop: unsafe extern "C" fn(*const FfiWaker),
}

/// A waker crossing the boundary: its first field is its vtable, and the side that
/// made it keeps whatever else it needs after it (the `#[repr(C)]` prefix idiom).
#[repr(C)]
#[doc(hidden)]
pub struct FfiWaker {
    /// Its functions.
    pub vtable: &'static FfiWakerVTable,
}

/// The polling side's waker, lent for one poll.
#[repr(C)]
struct LentWaker<'a> {
    base: FfiWaker,
    waker: &'a Waker,
}

/// The polling side's waker, owned by the other side (a clone).
#[repr(C)]
struct OwnedWaker {
    base: FfiWaker,
    waker: Waker,
}

/// Runs a waker function without letting a panic (a broken executor's) unwind
/// through `extern "C"`.
fn quietly(f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        std::mem::forget(payload);
    }
}

unsafe extern "C" fn owned_clone(w: *const FfiWaker) -> *const FfiWaker {
    // SAFETY: `w` is a live `OwnedWaker` or `LentWaker` of this side (the vtable says
    // which); both hold a `Waker` right after the base, so read through the right one.
    let waker = unsafe { &(*w.cast::<OwnedWaker>()).waker };
    Box::into_raw(Box::new(OwnedWaker { base: FfiWaker { vtable: &OWNED_VTABLE }, waker: waker.clone() })).cast()
}

unsafe extern "C" fn lent_clone(w: *const FfiWaker) -> *const FfiWaker {
    // SAFETY: `w` is a `LentWaker` alive for the poll it was lent to.
    let waker = unsafe { (*w.cast::<LentWaker<'_>>()).waker };
    Box::into_raw(Box::new(OwnedWaker { base: FfiWaker { vtable: &OWNED_VTABLE }, waker: waker.clone() })).cast()
}

unsafe extern "C" fn owned_wake(w: *const FfiWaker) {
    // SAFETY: an `OwnedWaker` boxed by `*_clone`, given back once (by `wake` or `drop`).
    let owned = unsafe { Box::from_raw(w.cast::<OwnedWaker>().cast_mut()) };
    quietly(move || owned.waker.wake());
}

unsafe extern "C" fn owned_wake_by_ref(w: *const FfiWaker) {
    // SAFETY: a live `OwnedWaker`.
    let waker = unsafe { &(*w.cast::<OwnedWaker>()).waker };
    quietly(|| waker.wake_by_ref());
}

unsafe extern "C" fn owned_drop(w: *const FfiWaker) {
    // SAFETY: an `OwnedWaker` boxed by `*_clone`, given back once.
    let owned = unsafe { Box::from_raw(w.cast::<OwnedWaker>().cast_mut()) };
    quietly(move || drop(owned));
}

unsafe extern "C" fn lent_wake_by_ref(w: *const FfiWaker) {
    // SAFETY: a `LentWaker` alive for the poll it was lent to.
    let waker = unsafe { (*w.cast::<LentWaker<'_>>()).waker };
    quietly(|| waker.wake_by_ref());
}

unsafe extern "C" fn lent_drop(_: *const FfiWaker) {}

static OWNED_VTABLE: FfiWakerVTable =
    FfiWakerVTable { clone: owned_clone, wake: owned_wake, wake_by_ref: owned_wake_by_ref, drop: owned_drop };

// A lent waker is never owned by the other side: `wake` on it only wakes.
static LENT_VTABLE: FfiWakerVTable =
    FfiWakerVTable { clone: lent_clone, wake: lent_wake_by_ref, wake_by_ref: lent_wake_by_ref, drop: lent_drop };

// The receiving side's `std::task::Waker`s over an `FfiWaker`: the lent one (for the
// poll, never dropped) and owned clones, each calling the waker's own functions.

unsafe fn raw_clone(data: *const ()) -> RawWaker {
    let w = data.cast::<FfiWaker>();
    // SAFETY: `data` is a live `FfiWaker` (lent for this poll, or an owned clone).
    let owned = unsafe { ((*w).vtable.clone)(w) };
    RawWaker::new(owned.cast(), &RAW_OWNED)
}

unsafe fn raw_wake(data: *const ()) {
    let w = data.cast::<FfiWaker>();
    // SAFETY: an owned clone, given back once.
    unsafe { ((*w).vtable.wake)(w) }
}

unsafe fn raw_wake_by_ref(data: *const ()) {
    let w = data.cast::<FfiWaker>();
    // SAFETY: a live `FfiWaker`.
    unsafe { ((*w).vtable.wake_by_ref)(w) }
}

unsafe fn raw_drop(data: *const ()) {
    let w = data.cast::<FfiWaker>();
    // SAFETY: an owned clone, given back once.
    unsafe { ((*w).vtable.drop)(w) }
}

unsafe fn raw_lent_drop(_: *const ()) {}

static RAW_OWNED: RawWakerVTable = RawWakerVTable::new(raw_clone, raw_wake, raw_wake_by_ref, raw_drop);
// The lent waker is only ever seen as `&Waker` (it sits in a `ManuallyDrop`), so its
// `wake` (by value) and `drop` are never called; they only wake, and do nothing.
static RAW_LENT: RawWakerVTable = RawWakerVTable::new(raw_clone, raw_wake_by_ref, raw_wake_by_ref, raw_lent_drop);

// ---------------------------------------------------------------------------------
// The future across the boundary.

/// A plugin's future as the host holds it: the boxed future, its `poll` and its
/// `drop`, all of the plugin's making. `T` is the output's `#[repr(C)]` form
/// ([`Abi::Ffi`]).
#[repr(C)]
#[doc(hidden)]
pub struct FfiFuture<T> {
    this: *mut c_void,
    /// Polls once with the poller's waker; on [`Status::OK`] writes the output's form
    /// to `out`, on [`Status::PANICKED`] the panic message to `panic`; returns
    /// [`Status::PENDING`] otherwise. Not called again after anything but `PENDING`.
    poll: unsafe extern "C" fn(this: *mut c_void, waker: *const FfiWaker, out: *mut T, panic: *mut RVec) -> Status,
    /// Drops the future (finished or not), once.
    drop: unsafe extern "C" fn(this: *mut c_void),
    _out: PhantomData<fn() -> T>,
}

// SAFETY: made only by `FfiFuture::new` from a `Send` future (the contract trait's
// `BoxFuture` is `Send`), and its functions may be called from any thread.
unsafe impl<T> Send for FfiFuture<T> {}
// SAFETY: nothing is reachable through `&FfiFuture`.
unsafe impl<T> Sync for FfiFuture<T> {}

impl<T> FfiFuture<T> {
    /// Boxes `future` (on the side that made it) behind its `poll` and `drop`.
    pub fn new<R, F>(future: F) -> Self
    where
        R: Abi<Ffi = T>,
        F: Future<Output = R> + Send + 'static,
    {
        unsafe extern "C" fn poll<R: Abi, F: Future<Output = R>>(
            this: *mut c_void,
            waker: *const FfiWaker,
            out: *mut R::Ffi,
            panic: *mut RVec,
        ) -> Status {
            // SAFETY: the poller lends `waker` for this poll; it is only seen as
            // `&Waker` (see `RAW_LENT`).
            let waker = ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(waker.cast(), &RAW_LENT)) });
            let mut cx = Context::from_waker(&waker);
            // SAFETY: `this` is the `Box<F>` made by `new`, never moved out of, and not
            // polled after it finished (the contract of `poll`).
            let future = unsafe { Pin::new_unchecked(&mut *this.cast::<F>()) };
            match panic::catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx).map(Abi::into_ffi))) {
                Ok(Poll::Pending) => Status::PENDING,
                Ok(Poll::Ready(value)) => {
                    // SAFETY: the poller passes a writable `out`.
                    unsafe { out.write(value) };
                    Status::OK
                }
                Err(payload) => {
                    let message = RVec::from_vec(crate::call::panic_message(payload).into_bytes());
                    // SAFETY: the poller passes a writable `panic`.
                    unsafe { panic.write(message) };
                    Status::PANICKED
                }
            }
        }
        unsafe extern "C" fn drop<F>(this: *mut c_void) {
            // SAFETY: the `Box<F>` made by `new`, dropped once.
            let future = unsafe { Box::from_raw(this.cast::<F>()) };
            quietly(move || std::mem::drop(future));
        }
        FfiFuture {
            this: Box::into_raw(Box::new(future)).cast(),
            poll: poll::<R, F>,
            drop: drop::<F>,
            _out: PhantomData,
        }
    }

    /// Polls once with `waker`: `Ready(Ok)` with the output's form, `Ready(Err)` with
    /// the message of a panic, or `Pending`.
    ///
    /// # Safety
    /// Not called again once it returned `Ready`.
    unsafe fn poll_ffi(&mut self, waker: &Waker) -> Poll<Result<T, CallError>> {
        let lent = LentWaker { base: FfiWaker { vtable: &LENT_VTABLE }, waker };
        let mut out = MaybeUninit::<T>::uninit();
        let mut panic = MaybeUninit::<RVec>::uninit();
        // SAFETY: this future's own `poll`, not called after it finished (the
        // caller's guarantee); the waker lives for the call; `out`/`panic` writable.
        let status = unsafe { (self.poll)(self.this, (&raw const lent).cast(), out.as_mut_ptr(), panic.as_mut_ptr()) };
        match status {
            Status::PENDING => Poll::Pending,
            // SAFETY: written on OK.
            Status::OK => Poll::Ready(Ok(unsafe { out.assume_init() })),
            Status::PANICKED => {
                // SAFETY: written on PANICKED.
                let bytes = unsafe { panic.assume_init() }.into_vec();
                Poll::Ready(Err(CallError::Panicked { message: String::from_utf8_lossy(&bytes).into_owned() }))
            }
            Status(other) => Poll::Ready(Err(CallError::BadStatus(other))),
        }
    }
}

impl<T> Drop for FfiFuture<T> {
    fn drop(&mut self) {
        // SAFETY: this future's own `drop`, called once.
        unsafe { (self.drop)(self.this) }
    }
}

/// Plugin side of an async method's shim: makes the method's future (`f`, under
/// `catch_unwind`) and writes it to `out` as an [`FfiFuture`], or the panic message
/// to `panic`.
///
/// # Safety
/// `out` and `panic` must be writable.
#[doc(hidden)]
pub unsafe fn __async_shim<R, F>(out: *mut FfiFuture<R::Ffi>, panic: *mut RVec, f: impl FnOnce() -> F) -> Status
where
    R: Abi,
    F: Future<Output = R> + Send + 'static,
{
    // Each poll runs under the export the shim entered (see `crate::logging`).
    let export = crate::logging::Captured::now();
    match panic::catch_unwind(AssertUnwindSafe(|| FfiFuture::new(InExport { export, future: f() }))) {
        Ok(future) => {
            // SAFETY: the caller guarantees `out` is writable.
            unsafe { out.write(future) };
            Status::OK
        }
        Err(payload) => {
            let message = RVec::from_vec(crate::call::panic_message(payload).into_bytes());
            // SAFETY: the caller guarantees `panic` is writable.
            unsafe { panic.write(message) };
            Status::PANICKED
        }
    }
}

/// A method's future, polled under the name of the export that made it.
struct InExport<F> {
    export: crate::logging::Captured,
    future: F,
}

impl<F: Future> Future for InExport<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _entered = self.export.enter();
        // SAFETY: structural pinning of `future`; it is never moved out.
        unsafe { self.map_unchecked_mut(|s| &mut s.future) }.poll(cx)
    }
}

/// Declares a future `Send` whose only non-`Send` parts are the received
/// (`#[repr(C)]`) forms of a call's borrowed arguments (`&str`, `&[T]`, `&dyn C`):
/// raw pointers to data the caller lends for as long as the future lives, and which
/// the caller's own [`CallFuture`] holds as `&str`, `&[T]`, `&dyn C` (so is checked
/// `Send` there). The method's own future is `Send` (the trait says so).
#[doc(hidden)]
pub struct AssertSend<F>(pub F);

// SAFETY: see the type's documentation; generated code wraps only the async block of
// a shim in it.
unsafe impl<F> Send for AssertSend<F> {}

impl<F: Future> Future for AssertSend<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: structural pinning of the only field; it is never moved out.
        unsafe { self.map_unchecked_mut(|s| &mut s.0) }.poll(cx)
    }
}

// ---------------------------------------------------------------------------------
// The host's side.

/// The future a client's async method returns: awaits the plugin's answer, in this
/// process or another, with any executor. Dropping it before it completes cancels the
/// call: in-process the plugin's future is dropped at once; isolated, the channel is
/// told (see [`Channel::call_async`](crate::client::Channel::call_async)).
#[must_use = "a call does nothing unless awaited"]
pub struct CallFuture<'a, R: Abi> {
    state: State<'a, R>,
}

enum State<'a, R: Abi> {
    Local { future: FfiFuture<R::Ffi>, client: &'a RawClient },
    Remote(BoxFuture<'a, Result<R, CallError>>),
    Ready(Result<R, CallError>),
    Done,
}

// Nothing in a `CallFuture` is pinned structurally: the plugin's future is boxed on
// its side, the remote one is a `Pin<Box<_>>`.
impl<R: Abi> Unpin for CallFuture<'_, R> {}

impl<'a, R: Abi> CallFuture<'a, R> {
    /// A call already answered (a method the plugin does not provide, say).
    #[doc(hidden)]
    pub fn ready(result: Result<R, CallError>) -> Self {
        CallFuture { state: State::Ready(result) }
    }

    /// A call through a channel.
    #[doc(hidden)]
    pub fn remote(future: BoxFuture<'a, Result<R, CallError>>) -> Self {
        CallFuture { state: State::Remote(future) }
    }

    /// An in-process call, from what an async method's shim returned.
    ///
    /// # Safety
    /// `status`, `out` and `panic` must come from one call of an async shim of a
    /// method whose result is `R` (the layouts matched), whose borrowed arguments live
    /// for `'a`.
    #[doc(hidden)]
    pub unsafe fn local(
        client: &'a RawClient,
        status: Status,
        out: MaybeUninit<FfiFuture<R::Ffi>>,
        panic: MaybeUninit<RVec>,
    ) -> Self {
        // SAFETY: from the shim (the caller's guarantee); `finish` reads what it wrote.
        let made: Result<FfiFuture<R::Ffi>, CallError> = unsafe { crate::call::__finish_with(status, out, panic) };
        match made {
            Ok(future) => CallFuture { state: State::Local { future, client } },
            Err(e) => CallFuture::ready(Err(e)),
        }
    }
}

impl<R: Abi> Future for CallFuture<'_, R> {
    type Output = Result<R, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            State::Local { future, client } => {
                let client: &RawClient = client;
                // SAFETY: the state moves to `Done` below as soon as it is `Ready`.
                let poll = || match unsafe { future.poll_ffi(cx.waker()) } {
                    Poll::Pending => Poll::Pending,
                    // SAFETY: the plugin wrote the output's form with `R`'s `Abi` (the
                    // layouts matched).
                    Poll::Ready(result) => Poll::Ready(result.map(|ffi| unsafe { R::from_ffi(ffi) })),
                };
                // Objects in the result keep the plugin's library loaded.
                let result = client.keeping(poll);
                if result.is_ready() {
                    // Drops the plugin's finished future now, not with this one.
                    this.state = State::Done;
                }
                result
            }
            State::Remote(future) => {
                let result = future.as_mut().poll(cx);
                if result.is_ready() {
                    this.state = State::Done;
                }
                result
            }
            State::Ready(_) => match std::mem::replace(&mut this.state, State::Done) {
                State::Ready(result) => Poll::Ready(result),
                _ => unreachable!("matched above"),
            },
            State::Done => panic!("a tomada `CallFuture` was polled after it completed"),
        }
    }
}

impl<R: Abi> std::fmt::Debug for CallFuture<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Local { .. } => "in-process",
            State::Remote(_) => "remote",
            State::Ready(_) => "ready",
            State::Done => "done",
        };
        f.debug_struct("CallFuture").field("state", &state).finish()
    }
}

// ---------------------------------------------------------------------------------
// The plugin's process, isolated: running a future on the dispatching thread.

/// A waker that unparks the thread blocked in [`block_on`].
struct Unpark {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// A flag that stops a [`block_on`] between two polls.
#[derive(Clone, Default)]
#[doc(hidden)]
pub struct Cancel(Arc<CancelInner>);

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    waiter: Mutex<Option<Thread>>,
}

impl Cancel {
    /// Stops the [`block_on`] this flag was given to: it drops its future and returns
    /// `None` (now if it is waiting, after the poll running now otherwise).
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Release);
        if let Some(t) = &*self.0.waiter.lock().unwrap_or_else(|e| e.into_inner()) {
            t.unpark();
        }
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }
}

/// Runs `future` to completion on this thread, parking between polls; `None` if
/// `cancel` was cancelled first (the future is dropped then). Any executor's futures
/// work: a wake from any thread unparks this one. Hand-written: a dozen lines, where a
/// crate (`futures::executor`, `pollster`) would bring no cancellation.
#[doc(hidden)]
pub fn block_on<F: Future>(future: F, cancel: &Cancel) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let unpark = Arc::new(Unpark { thread: std::thread::current(), woken: AtomicBool::new(false) });
    let waker = Waker::from(Arc::clone(&unpark));
    let mut cx = Context::from_waker(&waker);
    *cancel.0.waiter.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current());
    loop {
        if cancel.is_cancelled() {
            return None;
        }
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return Some(v);
        }
        while !unpark.woken.swap(false, Ordering::Acquire) && !cancel.is_cancelled() {
            std::thread::park();
        }
    }
}

/// The method number the runner dispatches to cancel an async call running in this
/// plugin's process: its arguments are the 8 bytes (little-endian) of the address of
/// the `out` pointer the call to cancel was dispatched with. The call then returns
/// [`Status::CANCELLED`] (its future dropped); the cancelling dispatch itself returns
/// [`Status::OK`] with one byte, 1 if a running call was found, 0 if not (it had
/// finished, or was not async).
#[doc(hidden)]
pub const CANCEL_METHOD: u32 = u32::MAX;

/// The async calls running in this process (this copy of tomada), by the address of
/// their `out` pointer.
fn running() -> &'static Mutex<HashMap<usize, Cancel>> {
    static RUNNING: OnceLock<Mutex<HashMap<usize, Cancel>>> = OnceLock::new();
    RUNNING.get_or_init(Default::default)
}

/// Plugin side of a byte-level call of an async method: as
/// [`serve`](crate::client::serve), with `f` running the method's future through
/// [`block_on`] under a [`Cancel`] the runner reaches through [`CANCEL_METHOD`].
///
/// # Safety
/// `out` and `panic` must be writable.
#[doc(hidden)]
pub unsafe fn serve_async<R: Abi>(
    out: *mut RVec,
    panic: *mut RVec,
    f: impl FnOnce(&Cancel) -> Result<Option<R>, WireError>,
) -> Status {
    let key = out as usize;
    let cancel = Cancel::default();
    running().lock().unwrap_or_else(|e| e.into_inner()).insert(key, cancel.clone());
    struct Unregister(usize);
    impl Drop for Unregister {
        fn drop(&mut self) {
            running().lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
        }
    }
    let _unregister = Unregister(key);
    let fail = |status: Status, message: String| {
        // SAFETY: the caller guarantees `panic` is writable.
        unsafe { panic.write(RVec::from_vec(message.into_bytes())) };
        status
    };
    let run = || {
        f(&cancel).map(|answer| {
            answer.map(|value| {
                let mut bytes = Vec::new();
                value.encode_owned(&mut bytes);
                bytes
            })
        })
    };
    match panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(Some(bytes))) => {
            // SAFETY: the caller guarantees `out` is writable.
            unsafe { out.write(RVec::from_vec(bytes)) };
            Status::OK
        }
        Ok(Ok(None)) => fail(Status::CANCELLED, "the call was cancelled".to_owned()),
        Ok(Err(e)) => fail(Status::MALFORMED, format!("malformed arguments: {e}")),
        Err(payload) => fail(Status::PANICKED, crate::call::panic_message(payload)),
    }
}

/// Plugin side of [`CANCEL_METHOD`].
///
/// # Safety
/// `out` and `panic` must be writable.
#[doc(hidden)]
pub unsafe fn cancel_dispatch(args: RSlice, out: *mut RVec, panic: *mut RVec) -> Status {
    // SAFETY: the runner's arguments live for the call.
    let bytes = unsafe { args.as_bytes() };
    let Ok(key) = <[u8; 8]>::try_from(bytes) else {
        // SAFETY: the caller guarantees `panic` is writable.
        unsafe { panic.write(RVec::from_vec(b"a cancellation takes the 8 bytes of a call's `out` address".to_vec())) };
        return Status::MALFORMED;
    };
    let key = u64::from_le_bytes(key) as usize;
    let found = running().lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
    let hit = found.is_some();
    if let Some(cancel) = found {
        cancel.cancel();
    }
    // SAFETY: the caller guarantees `out` is writable.
    unsafe { out.write(RVec::from_vec(vec![u8::from(hit)])) };
    Status::OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A future that is pending `n` times (waking itself through a clone of its waker
    /// from another thread), then ready with `value`.
    struct Later {
        n: u32,
        value: String,
    }

    impl Future for Later {
        type Output = String;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<String> {
            if self.n == 0 {
                return Poll::Ready(std::mem::take(&mut self.value));
            }
            self.n -= 1;
            let waker = cx.waker().clone();
            let other = waker.clone();
            drop(other);
            if self.n.is_multiple_of(2) {
                std::thread::spawn(move || waker.wake());
            } else {
                waker.wake_by_ref();
            }
            Poll::Pending
        }
    }

    #[test]
    fn a_future_crosses_and_completes() {
        let client = RawClient::new(crate::client::Target::Remote(Arc::new(Never)), 0, 0);
        let future = FfiFuture::new(Later { n: 3, value: "pronto".into() });
        let call = CallFuture::<String> { state: State::Local { future, client: &client } };
        assert_eq!(block_on(call, &Cancel::default()), Some(Ok("pronto".to_owned())));
    }

    #[test]
    fn a_panic_while_polling_is_an_error() {
        let client = RawClient::new(crate::client::Target::Remote(Arc::new(Never)), 0, 0);
        let future = FfiFuture::new(async {
            Later { n: 1, value: String::new() }.await;
            panic!("no luck");
            #[allow(unreachable_code)]
            0u8
        });
        let call = CallFuture::<u8> { state: State::Local { future, client: &client } };
        let r = block_on(call, &Cancel::default()).unwrap();
        assert!(matches!(r, Err(CallError::Panicked { message }) if message.starts_with("no luck")));
    }

    #[test]
    fn dropping_the_host_future_drops_the_plugin_future() {
        static DROPPED: AtomicUsize = AtomicUsize::new(0);
        struct Guard;
        impl Drop for Guard {
            fn drop(&mut self) {
                DROPPED.fetch_add(1, Ordering::SeqCst);
            }
        }
        let client = RawClient::new(crate::client::Target::Remote(Arc::new(Never)), 0, 0);
        let future = FfiFuture::new(async {
            let _guard = Guard;
            std::future::pending::<()>().await;
        });
        let mut call = CallFuture::<()> { state: State::Local { future, client: &client } };
        let waker = Waker::from(Arc::new(Unpark { thread: std::thread::current(), woken: AtomicBool::new(false) }));
        assert!(Pin::new(&mut call).poll(&mut Context::from_waker(&waker)).is_pending());
        assert_eq!(DROPPED.load(Ordering::SeqCst), 0);
        drop(call);
        assert_eq!(DROPPED.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn block_on_stops_when_cancelled() {
        let cancel = Cancel::default();
        let other = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            other.cancel();
        });
        assert_eq!(block_on(std::future::pending::<()>(), &cancel), None);
        t.join().unwrap();
    }

    struct Never;
    impl crate::client::Channel for Never {
        fn call(&self, _: u32, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
            unreachable!()
        }
    }
}
