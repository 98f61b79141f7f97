//! What a generated client calls through: a plugin's vtable in this process, or a
//! [`Channel`] to a plugin in another process.
//!
//! Every `#[contract]` makes a client (`GreeterClient`, reached as
//! `tomada_host::Plugin<dyn Greeter>`) whose methods take the trait's own argument
//! types. In-process, a method converts its arguments to their `#[repr(C)]` form and
//! calls the plugin's `extern "C"` shim. Isolated, it writes them straight to bytes
//! ([`crate::wire`]), sends them through the channel, and reads the result straight
//! back; the plugin's process runs the contract's *dispatch* function, the mirror
//! image. The two paths share nothing but the types' own [`Abi`] impls.

use std::any::Any;
use std::cell::Cell;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::ffi::{RObject, RSlice, RVec, Status};
use crate::future::BoxFuture;
use crate::wire::WireError;
use crate::{Abi, CallError};

/// Carries encoded calls to a plugin's process and brings back the answers.
/// Implemented by `tomada_host`'s isolation.
pub trait Channel: Send + Sync {
    /// Calls method number `method` (its index in the contract) with encoded `args`;
    /// returns the encoded result, or why there is none.
    ///
    /// # Errors
    /// The plugin panicked ([`CallError::Panicked`]), its process crashed, ran past
    /// its deadline or is quarantined, or the channel failed.
    fn call(&self, method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError>;

    /// [`Channel::call`] of a method whose result is one byte string (a `String`, a
    /// `Vec<u8>`: its byte form is an 8-byte length, then the bytes): returns the
    /// bytes alone, their length checked. A channel that reads the answer itself can
    /// leave the length out as it reads (the isolated host's does), so the bytes are
    /// not moved again to drop it; this default moves them.
    ///
    /// # Errors
    /// As [`Channel::call`]; [`CallError::Answer`] if the length is not that of the
    /// bytes that follow it.
    fn call_bytes(&self, method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let mut answer = self.call(method, args)?;
        strip_length(&mut answer).map_err(CallError::Answer)?;
        Ok(answer)
    }

    /// [`Channel::call`] (or, with `bytes`, [`Channel::call_bytes`]) of arguments
    /// whose large borrowed byte ranges were not copied into `args`: each of
    /// `gathered` goes at its place in `args` (offsets in order). A channel that
    /// writes the arguments itself sends the ranges from where they lie (the
    /// isolated host's does); this default copies them in first.
    ///
    /// # Errors
    /// As [`Channel::call`] or [`Channel::call_bytes`]; [`CallError::Channel`] if the
    /// offsets are out of order or past the end of `args`.
    fn call_gathered(
        &self,
        method: u32,
        args: Vec<u8>,
        gathered: &[Gathered<'_>],
        bytes: bool,
    ) -> Result<Vec<u8>, CallError> {
        let mut whole = Vec::with_capacity(args.len() + gathered.iter().map(|g| g.bytes.len()).sum::<usize>());
        let mut from = 0;
        for g in gathered {
            let Some(before) = args.get(from..g.at) else {
                return Err(CallError::Channel {
                    message: format!(
                        "gathered bytes at {} out of order or past the arguments' {} bytes",
                        g.at,
                        args.len()
                    ),
                });
            };
            whole.extend_from_slice(before);
            whole.extend_from_slice(g.bytes);
            from = g.at;
        }
        whole.extend_from_slice(&args[from..]);
        if bytes { self.call_bytes(method, whole) } else { self.call(method, whole) }
    }

    /// An empty buffer for the next blocking call's arguments to be encoded into:
    /// one of the channel's own, kept from an earlier call, so a large call's
    /// arguments land in memory already in use rather than in fresh pages (the
    /// isolated host's keeps a few, see [`Channel::take_back`]). The default is a new
    /// one, as before this method was.
    ///
    /// The buffer goes to [`Channel::call`] (or its siblings) as the arguments; a
    /// channel that reads the answer into it hands it back as the answer.
    fn lend(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Takes back a buffer a blocking call is done with (its answer, decoded, or the
    /// [`Channel::lend`]-ed buffer a small byte-string answer was copied out of), of
    /// which the call used at most `used` bytes (its arguments' or its answer's): the
    /// channel may keep it for a later [`Channel::lend`]. Its contents mean nothing.
    /// The default drops it.
    fn take_back(&self, buffer: Vec<u8>, used: usize) {
        let _ = (buffer, used);
    }

    /// Calls an `async` method: as [`Channel::call`], answered through a future that
    /// any executor can await. Dropping the future before it completes should cancel
    /// the call in the plugin's process (by dispatching
    /// [`CANCEL_METHOD`](crate::future::CANCEL_METHOD) there).
    ///
    /// The default runs the blocking [`Channel::call`] on a thread of its own and
    /// wakes the future when the answer is in, so nothing blocks the executor; it
    /// cannot cancel: a dropped future's call runs on, and its answer is dropped.
    fn call_async(self: Arc<Self>, method: u32, args: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, CallError>>
    where
        Self: 'static,
    {
        call_on_thread(self, method, args)
    }

    /// The peer trait objects crossing this channel are exported to and called
    /// through (see [`crate::remote`]); `None` if objects cannot cross it.
    fn peer(&self) -> Option<Arc<dyn crate::remote::Peer>> {
        None
    }

    /// The peer for a call that passes trait objects ([`Channel::peer`]), or why
    /// objects cannot cross now: a channel whose other side is gone and cannot come
    /// back (a quarantined plugin, say) says so here, and the call fails with that
    /// error before anything is encoded (encoding an object needs a peer).
    ///
    /// # Errors
    /// What a call would fail with now.
    fn peer_for_call(&self) -> Result<Option<Arc<dyn crate::remote::Peer>>, CallError> {
        Ok(self.peer())
    }
}

/// [`Channel::call_async`]'s default: the blocking [`Channel::call`] on a thread of its
/// own, which wakes the future when the answer is in.
pub fn call_on_thread<C: Channel + ?Sized + 'static>(
    channel: Arc<C>,
    method: u32,
    args: Vec<u8>,
) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
    let slot = Arc::new(Slot::default());
    let answer = Arc::clone(&slot);
    let spawned = std::thread::Builder::new().name("tomada-call".into()).spawn(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(|| channel.call(method, args)))
            .unwrap_or_else(|payload| Err(CallError::Channel { message: crate::call::panic_message(payload) }));
        answer.fill(result);
    });
    if let Err(e) = spawned {
        slot.fill(Err(CallError::Channel { message: format!("cannot start a thread for the call: {e}") }));
    }
    Box::pin(std::future::poll_fn(move |cx| slot.poll(cx)))
}

/// An `async` call through a channel to code loaded in this process (a plugin's):
/// runs the blocking [`Channel::call`] when the future is first polled, on a thread of
/// its own that the poll waits for. The plugin's dispatch function drives an `async`
/// method to completion itself, with the plugin's own copy of `std`
/// (`thread::current`), whose thread-local destructors must run while the library is
/// loaded — so on a thread that ends within the call, never on one that may outlive
/// the plugin. (It blocks the executor's thread for the call, as a blocking call would.)
pub fn call_joined<C: Channel + ?Sized + 'static>(
    channel: Arc<C>,
    method: u32,
    args: Vec<u8>,
) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
    Box::pin(async move {
        std::thread::scope(|s| {
            let call =
                std::thread::Builder::new().name("tomada-call".into()).spawn_scoped(s, || channel.call(method, args));
            match call {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|payload| Err(CallError::Channel { message: crate::call::panic_message(payload) })),
                Err(e) => Err(CallError::Channel { message: format!("cannot start a thread for the call: {e}") }),
            }
        })
    })
}

/// Where [`call_on_thread`]'s thread leaves the answer, and the waker it wakes.
#[derive(Default)]
struct Slot {
    state: std::sync::Mutex<SlotState>,
}

/// The answer, once in, and the waker of the last poll.
type SlotState = (Option<Result<Vec<u8>, CallError>>, Option<std::task::Waker>);

impl Slot {
    fn fill(&self, result: Result<Vec<u8>, CallError>) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.0 = Some(result);
            state.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn poll(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<Vec<u8>, CallError>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.0.take() {
            Some(result) => std::task::Poll::Ready(result),
            None => {
                state.1 = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

/// Where a client's calls go (what [`RawClient::new`] takes).
pub enum Target {
    /// A plugin loaded in this process: its vtable and its instance.
    Local {
        /// The contract's `#[repr(C)]` vtable in the plugin.
        vtable: *const c_void,
        /// The instance the plugin's `create` made.
        this: *const c_void,
    },
    /// A plugin in another process.
    Remote(Arc<dyn Channel>),
}

/// What keeps a plugin's code loaded: held by everything that may call into it.
pub type Keepalive = Arc<dyn Any + Send + Sync>;

/// A client's state, the same for every contract.
///
/// The target is kept flat, not as a [`Target`]: a generated method loads `vtable`,
/// and only if it is null (a plugin in another process) goes to `channel`, out of
/// line. In-process, a call is one load and test of the vtable pointer, the load of
/// the method's entry and the indirect call (no discriminant to load and compare
/// first).
pub struct RawClient {
    /// In-process: the contract's `#[repr(C)]` vtable in the plugin (non-null).
    /// Null for a plugin in another process (`channel` is then set).
    pub vtable: *const c_void,
    /// In-process: the instance the plugin's `create` made (or the object). Null
    /// for a plugin in another process.
    pub this: *const c_void,
    /// For a plugin in another process: the channel its calls go through.
    pub channel: Option<Arc<dyn Channel>>,
    /// How many of the contract's methods the plugin provides.
    pub provided: usize,
    /// The minor version the plugin was built against.
    pub plugin_minor: u32,
    /// For a client of an object (not of a plugin's instance): the object, released
    /// when the client drops (before `keepalive`).
    pub object: Option<RObject>,
    /// What keeps the code behind `vtable` loaded (a plugin's library), if anything.
    pub keepalive: Option<Keepalive>,
}

// SAFETY: the plugin instance behind a local target is `Send + Sync` (contract traits
// require it), its vtable is immutable, and a channel is `Send + Sync`.
unsafe impl Send for RawClient {}
// SAFETY: as above.
unsafe impl Sync for RawClient {}

impl RawClient {
    /// A client of a plugin instance or channel.
    pub fn new(target: Target, provided: usize, plugin_minor: u32) -> Self {
        let (vtable, this, channel) = match target {
            Target::Local { vtable, this } => (vtable, this, None),
            Target::Remote(channel) => (std::ptr::null(), std::ptr::null(), Some(channel)),
        };
        RawClient { vtable, this, channel, provided, plugin_minor, object: None, keepalive: None }
    }

    /// The channel of a client whose `vtable` is null (a plugin in another process).
    /// Out of line: only isolated and remote calls take it.
    ///
    /// # Errors
    /// [`CallError::Channel`] if there is none, which [`RawClient::new`] never makes
    /// (a null vtable comes only with a channel).
    #[cold]
    #[inline(never)]
    pub fn channel(&self) -> Result<&Arc<dyn Channel>, CallError> {
        self.channel
            .as_ref()
            .ok_or_else(|| CallError::Channel { message: "a client with neither a vtable nor a channel".into() })
    }

    /// Keeps `keepalive` (the plugin's library) alive as long as this client, and as
    /// long as any object a call through it returns.
    pub fn keep(mut self, keepalive: Keepalive) -> Self {
        self.keepalive = Some(keepalive);
        self
    }

    /// A client of an object that crossed the boundary: it calls through the object's
    /// vtable, releases it when dropped, and keeps alive whatever the call that
    /// produced it was keeping alive.
    ///
    /// # Safety
    /// `object` must have been made by the same contract's object conversion, with all
    /// `provided` methods in its vtable.
    pub unsafe fn of_object(object: RObject, provided: usize, plugin_minor: u32) -> Self {
        RawClient {
            vtable: object.vtable,
            this: object.this,
            channel: None,
            provided,
            plugin_minor,
            object: Some(object),
            keepalive: current_keepalive(),
        }
    }

    /// Runs a call (`f`) so that objects it returns keep this client's code loaded.
    #[inline(always)]
    pub fn keeping<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.keepalive {
            None => f(),
            Some(k) => with_keepalive(k, f),
        }
    }

    /// The error for a method the plugin does not provide (an older minor version).
    #[cold]
    #[inline(never)]
    pub fn not_provided(&self, method: &'static str, abi: u32, since: u32) -> CallError {
        CallError::NotProvided {
            method,
            added_in: format!("{abi}.{since}"),
            plugin_version: format!("{abi}.{}", self.plugin_minor),
        }
    }
}

thread_local! {
    // A raw pointer in a `Cell`, const-initialised: no thread-local destructor is
    // registered, so a plugin's copy of tomada never keeps its library mapped.
    static KEEPALIVE: Cell<Option<*const (dyn Any + Send + Sync)>> = const { Cell::new(None) };
}

/// Runs `f` with `keepalive` as the current call's keepalive (see
/// [`current_keepalive`]); restores the previous one after, even if `f` panics.
pub fn with_keepalive<R>(keepalive: &Keepalive, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<*const (dyn Any + Send + Sync)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            KEEPALIVE.with(|k| k.set(self.0));
        }
    }
    let _restore = Restore(KEEPALIVE.with(|k| k.replace(Some(Arc::as_ptr(keepalive)))));
    f()
}

/// What the call running on this thread keeps alive: objects its result carries are
/// made to keep it alive too.
pub fn current_keepalive() -> Option<Keepalive> {
    let ptr = KEEPALIVE.with(Cell::get)?;
    // SAFETY: `ptr` came from `Arc::as_ptr` of a `Keepalive` that `with_keepalive`'s
    // caller holds for as long as it is current (it is restored before that returns);
    // the strong count is raised before a new `Arc` is made from it.
    unsafe {
        Arc::increment_strong_count(ptr);
        Some(Arc::from_raw(ptr))
    }
}

/// Host side of an isolated call: sends `args` and reads the result back.
///
/// # Errors
/// What the channel reports, or [`CallError::Answer`] for an answer that does not
/// decode as an `R` within this process's [decoding limits](crate::wire).
///
/// `encode` writes the arguments. If the method passes trait objects (`objects`),
/// those among the arguments are exported to the channel's peer (a `&dyn C` for this
/// call only), and those in the result are bound to it (see [`crate::remote`]).
///
/// Out of line and cold: the generated client method keeps only its in-process case
/// in line (a call through the vtable, as short as a bare one), and jumps here for an
/// isolated plugin, whose call costs microseconds anyway.
#[cold]
#[inline(never)]
pub fn remote_call<R: Abi>(
    channel: &dyn Channel,
    method: u32,
    objects: bool,
    encode: impl FnOnce(&mut Vec<u8>),
) -> Result<R, CallError> {
    if !objects {
        // No objects: nothing to lend, nothing to bind. Large bytes among the
        // arguments are sent from where they lie (`gather`, `gather_owned`): borrowed
        // ones live until this returns, owned ones are kept in the list until the
        // call is over; a byte string's answer is read straight into the buffer that
        // becomes the value.
        // (A buffer of the channel's, if it keeps some: given back after the call.)
        let mut args = channel.lend();
        args.clear();
        let mut gathered = Vec::new();
        gathering(&mut gathered, || encode(&mut args));
        let sent = args.len();
        let ranges: Vec<Gathered<'_>> = gathered
            .iter()
            .map(|noted| {
                // SAFETY: each range is a `&[T]` or `&str` argument that `encode` (the
                // generated client method's) borrowed from that method's caller, who
                // keeps it alive until the method returns, after this call, or the
                // buffer of an owned one, which `gathered` keeps (a `Vec`'s buffer
                // does not move with it) until after the call; the ranges are used
                // only within the call.
                let bytes = unsafe { std::slice::from_raw_parts(noted.ptr, noted.len) };
                Gathered { at: noted.at, bytes }
            })
            .collect();
        let answer = panic::catch_unwind(AssertUnwindSafe(|| {
            if ranges.is_empty() {
                if R::BYTE_STRING { channel.call_bytes(method, args) } else { channel.call(method, args) }
            } else {
                channel.call_gathered(method, args, &ranges, R::BYTE_STRING)
            }
        }))
        .unwrap_or_else(|payload| Err(CallError::Channel { message: crate::call::panic_message(payload) }));
        // (The owned arguments' buffers go now, the call over.)
        drop(ranges);
        drop(gathered);
        if R::BYTE_STRING {
            // The answer was read into the arguments' buffer, which becomes the value:
            // a small answer in a large buffer does not keep its capacity (copied out,
            // the buffer given back to the channel; a large one is shrunk in place).
            let mut bytes = answer?;
            if bytes.capacity() > 2 * bytes.len() + 4096 {
                if bytes.len() <= SMALL_ANSWER {
                    let small = bytes.to_vec();
                    channel.take_back(bytes, sent.max(small.len()));
                    bytes = small;
                } else {
                    bytes.shrink_to_fit();
                }
            }
            return R::from_answer_bytes(bytes).map_err(CallError::Answer);
        }
        let answer = answer?;
        let mut r = crate::wire::Reader::new(&answer);
        let value = R::decode(&mut r).and_then(|value| r.finish().map(|()| value));
        // (Decoded: the value owns copies of what it holds.)
        let used = sent.max(answer.len());
        channel.take_back(answer, used);
        return value.map_err(CallError::Answer);
    }
    let call = || {
        let mut args = channel.lend();
        args.clear();
        // Only a method that passes objects can lend one. (Nothing is gathered: the
        // bytes of such a call are all in its arguments' buffer.)
        let lent = not_gathering(|| crate::remote::collecting_borrowed(|| encode(&mut args)));
        let sent = args.len();
        // The channel is host code, but a client method must not unwind into its
        // caller from deep inside tomada: a panic there is a failed call.
        let answer = panic::catch_unwind(AssertUnwindSafe(|| channel.call(method, args)))
            .unwrap_or_else(|payload| Err(CallError::Channel { message: crate::call::panic_message(payload) }));
        if !lent.is_empty()
            && let Some(peer) = crate::remote::current_peer()
        {
            for id in lent {
                peer.revoke(id);
            }
        }
        let answer = answer?;
        let mut r = crate::wire::Reader::new(&answer);
        let value = R::decode(&mut r).and_then(|value| r.finish().map(|()| value));
        let used = sent.max(answer.len());
        channel.take_back(answer, used);
        value.map_err(CallError::Answer)
    };
    match channel.peer_for_call()? {
        None => call(),
        Some(peer) => crate::remote::with_peer(&peer, call),
    }
}

/// A byte range of a call's arguments not copied into their buffer: it goes at `at`
/// (see [`Channel::call_gathered`]).
#[derive(Debug, Clone, Copy)]
pub struct Gathered<'a> {
    /// Where in the arguments' buffer.
    pub at: usize,
    /// The bytes.
    pub bytes: &'a [u8],
}

/// Byte ranges this large or larger are sent from where they lie (see `gather`).
const GATHER_MIN: usize = 64 * 1024;

/// A byte-string answer this small, in a much larger buffer, is copied out of it and
/// the buffer given back to the channel ([`Channel::take_back`]); a larger one keeps
/// its buffer, shrunk.
const SMALL_ANSWER: usize = 64 * 1024;

/// One large byte argument not copied into the arguments' buffer.
struct Noted {
    /// Where it goes in the arguments' buffer.
    at: usize,
    /// Where it lies, and its length.
    ptr: *const u8,
    len: usize,
    /// Its buffer, if the argument was given away: kept until the call is over.
    _owned: Option<Vec<u8>>,
}

thread_local! {
    /// Set while a blocking isolated call's arguments are encoded: the list, on
    /// `remote_call`'s stack, of where large byte arguments go in them and where they
    /// lie (see `gather`); null otherwise. A raw pointer in a `Cell`, const-initialised:
    /// no thread-local destructor is registered, so a plugin's copy of tomada (whose
    /// client methods call back into a host) never keeps its library mapped.
    static GATHERED: Cell<*mut Vec<Noted>> = const { Cell::new(std::ptr::null_mut()) };
}

/// Puts back what `GATHERED` held before, however the encoding ends (a panic in it
/// included).
struct Restore(*mut Vec<Noted>);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = GATHERED.try_with(|g| g.set(self.0));
    }
}

/// Runs `encode` with `list` as the list large byte arguments are noted in. (An
/// encoding that makes a call of its own, however odd, gets its own list, and this
/// one's is put back after it.)
fn gathering(list: &mut Vec<Noted>, encode: impl FnOnce()) {
    let Ok(outer) = GATHERED.try_with(|g| g.replace(list)) else {
        // A thread being torn down: nothing is gathered, all is copied.
        return encode();
    };
    let _restore = Restore(outer);
    encode();
}

/// Runs `encode` with no list set: nothing it encodes is gathered.
fn not_gathering<T>(encode: impl FnOnce() -> T) -> T {
    let Ok(outer) = GATHERED.try_with(|g| g.replace(std::ptr::null_mut())) else { return encode() };
    let _restore = Restore(outer);
    encode()
}

/// For the encoding of a borrowed argument (`&[u8]`, `&str`): notes `bytes` to be
/// sent from where they lie, at the end of `out`, instead of being copied there, if
/// they are large and a blocking isolated call encodes its arguments on this thread
/// now (`remote_call`, whose caller keeps them alive until it returns); whether
/// they were.
pub(crate) fn gather(out: &[u8], bytes: &[u8]) -> bool {
    if bytes.len() < GATHER_MIN {
        return false;
    }
    note(Noted { at: out.len(), ptr: bytes.as_ptr(), len: bytes.len(), _owned: None }).is_ok()
}

/// [`gather`] for an argument given away (a `Vec<u8>`, a `String`): its buffer is
/// kept until the call is over; given back if it is not gathered.
pub(crate) fn gather_owned(out: &[u8], bytes: Vec<u8>) -> Result<(), Vec<u8>> {
    if bytes.len() < GATHER_MIN {
        return Err(bytes);
    }
    let noted = Noted { at: out.len(), ptr: bytes.as_ptr(), len: bytes.len(), _owned: None };
    note(Noted { _owned: Some(bytes), ..noted }).map_err(|noted| noted._owned.unwrap_or_default())
}

/// How many bytes noted (see [`gather`]) go at places past `at` of the arguments being
/// encoded on this thread (0 if none are being gathered): a block that ends there
/// ([`crate::block::end_block`]) counts them in its length, as if they had been
/// copied in. (Noted in the order of their places, so the last ones are looked at.)
pub(crate) fn gathered_after(at: usize) -> usize {
    let list = GATHERED.try_with(Cell::get).unwrap_or(std::ptr::null_mut());
    if list.is_null() {
        return 0;
    }
    // SAFETY: a non-null `GATHERED` is the list `gathering` set, on the stack of the
    // `remote_call` encoding on this thread, which does not touch it until
    // `gathering` returns; nothing else holds a reference to it meanwhile (this reads
    // it and calls nobody's code).
    let list = unsafe { &*list };
    list.iter().rev().take_while(|n| n.at > at).map(|n| n.len).sum()
}

/// Adds `noted` to the list of the call being encoded, if one is; gives it back if not.
fn note(noted: Noted) -> Result<(), Noted> {
    let list = GATHERED.try_with(Cell::get).unwrap_or(std::ptr::null_mut());
    if list.is_null() {
        return Err(noted);
    }
    // SAFETY: a non-null `GATHERED` is the list `gathering` set, on the stack of the
    // `remote_call` encoding on this thread, which does not touch it until
    // `gathering` returns and has put back the pointer before (`Restore`); nothing
    // else holds a reference to it meanwhile (`note` is not reentrant: it calls no
    // code of anyone's but `Vec::push`).
    unsafe { (*list).push(noted) };
    Ok(())
}

/// Drops the 8-byte length that starts the byte form of a byte string (see
/// [`Channel::call_bytes`]), checked to be the number of bytes that follow.
///
/// # Errors
/// If it is not, or the bytes end before it.
#[doc(hidden)]
pub fn strip_length(answer: &mut Vec<u8>) -> Result<(), WireError> {
    let len = answer.get(..8).map(|l| u64::from_le_bytes(l.try_into().expect("8 bytes")));
    if len != Some(answer.len().wrapping_sub(8) as u64) {
        return Err(WireError::Malformed("the length of a byte string is not that of its bytes"));
    }
    answer.drain(..8);
    Ok(())
}

/// Host side of an isolated call of an `async` method: as [`remote_call`], through
/// [`Channel::call_async`]. The arguments are encoded now; objects lent for the call
/// (`&dyn C` arguments) are revoked when it completes or is dropped.
///
/// # Errors
/// As [`remote_call`].
pub fn remote_call_async<'a, R: Abi + 'a>(
    channel: &Arc<dyn Channel>,
    method: u32,
    encode: impl FnOnce(&mut Vec<u8>),
) -> BoxFuture<'a, Result<R, CallError>> {
    let peer = match channel.peer_for_call() {
        Ok(peer) => peer,
        Err(e) => return Box::pin(async move { Err(e) }),
    };
    let mut args = Vec::new();
    let lent = match &peer {
        // (An async call's arguments outlive this frame: nothing is gathered.)
        None => not_gathering(|| crate::remote::collecting_borrowed(|| encode(&mut args))),
        Some(p) => {
            crate::remote::with_peer(p, || not_gathering(|| crate::remote::collecting_borrowed(|| encode(&mut args))))
        }
    };
    /// Revokes what was lent for the call, however it ends.
    struct Lent(Option<Arc<dyn crate::remote::Peer>>, Vec<u64>);
    impl Drop for Lent {
        fn drop(&mut self) {
            if let Some(peer) = &self.0 {
                for id in self.1.drain(..) {
                    peer.revoke(id);
                }
            }
        }
    }
    let lent = Lent(peer.clone(), lent);
    let answer = panic::catch_unwind(AssertUnwindSafe(|| Arc::clone(channel).call_async(method, args)));
    Box::pin(async move {
        let answer = match answer {
            Ok(future) => future.await,
            Err(payload) => Err(CallError::Channel { message: crate::call::panic_message(payload) }),
        };
        drop(lent);
        let decode = move || R::decode_owned(answer?).map_err(CallError::Answer);
        match &peer {
            None => decode(),
            Some(p) => crate::remote::with_peer(p, decode),
        }
    })
}

/// The plugin side of a byte-level call: decodes the arguments for method number
/// `method`, calls it on the instance `this`, and writes the encoded result to `out`
/// (or a message to `panic`).
pub type DispatchFn =
    unsafe extern "C" fn(this: *const c_void, method: u32, args: RSlice, out: *mut RVec, panic: *mut RVec) -> Status;

/// Plugin side: runs `f` (which decodes the arguments and calls the method) under
/// `catch_unwind` and writes the encoded result to `out`, or a message to `panic`.
/// (The dispatch functions of tomada-macros before [`serve_as`] called this.)
///
/// # Safety
/// `out` and `panic` must be writable.
#[inline]
pub unsafe fn serve<R: Abi>(out: *mut RVec, panic: *mut RVec, f: impl FnOnce() -> Result<R, WireError>) -> Status {
    // SAFETY: forwarded.
    unsafe { serve_as(out, panic, false, f) }
}

/// Bit of the method number a dispatch function is called with: the caller takes a
/// byte string's bytes alone (see [`flags::BYTES_ALONE`](crate::descriptor::flags::BYTES_ALONE)).
/// No contract has that many methods; [`CANCEL_METHOD`](crate::future::CANCEL_METHOD),
/// which has every bit set, is not a contract method and is read before it.
pub const BYTES_ALONE: u32 = 1 << 31;

/// Plugin side: a dispatch function's method number, and whether its caller asked
/// for byte strings' bytes alone ([`BYTES_ALONE`]).
#[inline(always)]
pub const fn answer_form(method: u32) -> (u32, bool) {
    (method & !BYTES_ALONE, method & BYTES_ALONE != 0)
}

/// Plugin side: runs `f` (which decodes the arguments and calls the method) under
/// `catch_unwind` and writes the result to `out`, or a message to `panic`. Called by
/// the generated dispatch functions.
///
/// The result is written in its byte form ([`Status::OK`]); with `alone` (the
/// caller asked, see [`BYTES_ALONE`]), a byte string (a `String`, a `Vec<u8>`) is
/// written as its bytes alone, its own buffer handed over, not copied
/// ([`Status::BYTES`]).
///
/// # Safety
/// `out` and `panic` must be writable.
#[inline]
pub unsafe fn serve_as<R: Abi>(
    out: *mut RVec,
    panic: *mut RVec,
    alone: bool,
    f: impl FnOnce() -> Result<R, WireError>,
) -> Status {
    let fail = |status: Status, message: String| {
        // SAFETY: the caller guarantees `panic` is writable.
        unsafe { panic.write(RVec::from_vec(message.into_bytes())) };
        status
    };
    match panic::catch_unwind(AssertUnwindSafe(|| {
        f().map(|value| {
            let value = if alone && R::BYTE_STRING {
                match value.into_byte_string() {
                    Ok(bytes) => return (Status::BYTES, bytes),
                    Err(value) => value,
                }
            } else {
                value
            };
            let mut bytes = Vec::new();
            // (Into `bytes`, whole: an answer served while this thread waits in a
            // call whose arguments it was gathering is not that call's.)
            not_gathering(|| value.encode_owned(&mut bytes));
            (Status::OK, bytes)
        })
    })) {
        Ok(Ok((status, bytes))) => {
            // SAFETY: the caller guarantees `out` is writable.
            unsafe { out.write(RVec::from_vec(bytes)) };
            status
        }
        Ok(Err(e)) => fail(Status::MALFORMED, format!("malformed arguments: {e}")),
        Err(payload) => fail(Status::PANICKED, crate::call::panic_message(payload)),
    }
}

/// Plugin side: the answer to a method number this contract does not have.
///
/// # Safety
/// `panic` must be writable.
pub unsafe fn unknown_method(method: u32, panic: *mut RVec) -> Status {
    // SAFETY: the caller guarantees `panic` is writable.
    unsafe { panic.write(RVec::from_vec(format!("no method number {method} in this contract").into_bytes())) };
    Status::MALFORMED
}

/// Reads a dispatch function's outcome: its status and the buffer it wrote. Used by
/// runners to build their answer, and by tests.
///
/// For a call whose method number did not ask for a byte string's bytes alone
/// ([`BYTES_ALONE`]): [`Status::BYTES`] is then an unknown status (its `out` may never
/// have been written), read as nothing, as any unknown status is. A caller that asks
/// reads the outcome itself.
///
/// # Safety
/// `status`, `out` and `panic` must come from one call of a dispatch function.
pub unsafe fn dispatched(status: Status, out: MaybeUninit<RVec>, panic: MaybeUninit<RVec>) -> RVec {
    if status == Status::OK {
        // SAFETY: written on OK.
        unsafe { out.assume_init() }
    } else if status.has_message() {
        // SAFETY: written for every known failed status.
        unsafe { panic.assume_init() }
    } else {
        RVec::new()
    }
}

/// Host side: turns a runner's answer (a status byte and the body) into the call's
/// encoded result or its error.
///
/// # Errors
/// [`CallError::Panicked`] for a caught panic, [`CallError::Channel`] for arguments
/// the plugin could not decode, [`CallError::BadStatus`] for anything else.
pub fn answer(status: u8, body: Vec<u8>) -> Result<Vec<u8>, CallError> {
    let text =
        |body: Vec<u8>| String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    match Status(status) {
        Status::OK => Ok(body),
        Status::PANICKED => Err(CallError::Panicked { message: text(body) }),
        Status::MALFORMED | Status::CANCELLED => Err(CallError::Channel { message: text(body) }),
        Status(other) => Err(CallError::BadStatus(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A channel that answers with the arguments it got.
    struct Echo;

    impl Channel for Echo {
        fn call(&self, _method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
            Ok(args)
        }
    }

    #[test]
    fn gathered_ranges_go_at_their_places_and_byte_strings_lose_their_length() {
        let (a, b) = (vec![1u8; 3], vec![2u8; 2]);
        let gathered = [Gathered { at: 1, bytes: &a }, Gathered { at: 1, bytes: &b }, Gathered { at: 4, bytes: &a }];
        let got = Echo.call_gathered(0, vec![9, 8, 7, 6], &gathered, false).unwrap();
        assert_eq!(got, [9, 1, 1, 1, 2, 2, 8, 7, 6, 1, 1, 1]);
        // A byte string: its length, checked, then dropped.
        let mut args = 2u64.to_le_bytes().to_vec();
        let got = Echo.call_gathered(0, args.clone(), &[Gathered { at: 8, bytes: &b }], true).unwrap();
        assert_eq!(got, [2, 2]);
        args[0] = 3;
        let lie = Echo.call_gathered(0, args, &[Gathered { at: 8, bytes: &b }], true);
        assert!(matches!(lie, Err(CallError::Answer(WireError::Malformed(_)))), "{lie:?}");
        assert!(matches!(Echo.call_bytes(0, vec![1, 0]), Err(CallError::Answer(_))), "a length cut short");
        let past = Echo.call_gathered(0, vec![0; 4], &[Gathered { at: 9, bytes: &b }], false);
        assert!(matches!(past, Err(CallError::Channel { .. })), "an offset past the arguments: {past:?}");
        let twisted = [Gathered { at: 3, bytes: &b }, Gathered { at: 1, bytes: &b }];
        assert!(
            matches!(Echo.call_gathered(0, vec![0; 4], &twisted, false), Err(CallError::Channel { .. })),
            "out of order"
        );
    }

    /// An echo that lends buffers of 1 MiB, with bytes left in them, and notes what
    /// it takes back (capacity, `used`).
    #[derive(Default)]
    struct Lending {
        taken: std::sync::Mutex<Vec<(usize, usize)>>,
    }

    impl Channel for Lending {
        fn call(&self, _method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
            Ok(args)
        }
        fn lend(&self) -> Vec<u8> {
            let mut buffer = Vec::with_capacity(1 << 20);
            buffer.extend_from_slice(b"left over");
            buffer
        }
        fn take_back(&self, buffer: Vec<u8>, used: usize) {
            self.taken.lock().unwrap().push((buffer.capacity(), used));
        }
    }

    #[test]
    fn a_lent_buffer_is_used_emptied_and_given_back_unless_the_answer_keeps_it() {
        let channel = Lending::default();
        let taken = |c: &Lending| std::mem::take(&mut *c.taken.lock().unwrap());
        // A decoded answer: its buffer (the lent one, echoed) goes back.
        let n: u64 = remote_call(&channel, 0, false, |out| 7u64.encode(out)).unwrap();
        assert_eq!(n, 7, "the lent buffer's old bytes are not part of the arguments");
        assert_eq!(taken(&channel), [(1 << 20, 8)]);
        // The same through the path of calls that pass objects.
        let n: u64 = remote_call(&channel, 0, true, |out| 9u64.encode(out)).unwrap();
        assert_eq!(n, 9);
        assert_eq!(taken(&channel), [(1 << 20, 8)]);
        // A small byte string is copied out of the large buffer, which goes back.
        let small: Vec<u8> = remote_call(&channel, 0, false, |out| vec![3u8; 10].encode(out)).unwrap();
        assert_eq!(small, [3; 10]);
        assert!(small.capacity() < 4096, "{}", small.capacity());
        assert_eq!(taken(&channel), [(1 << 20, 18)]);
        // A large one keeps its buffer, which the caller owns now: nothing back.
        let large: Vec<u8> = remote_call(&channel, 0, false, |out| vec![4u8; 300_000].encode(out)).unwrap();
        assert!(large.len() == 300_000 && large.iter().all(|&b| b == 4));
        assert!(large.capacity() < 2 * large.len() + 4096, "shrunk: {}", large.capacity());
        assert!(taken(&channel).is_empty());
        // An answer that does not decode: its buffer goes back all the same.
        let bad: Result<u64, _> = remote_call(&channel, 0, false, |out| 7u32.encode(out));
        assert!(matches!(bad, Err(CallError::Answer(_))), "{bad:?}");
        assert_eq!(taken(&channel), [(1 << 20, 4)]);
    }

    /// A block's length counts the bytes noted inside it (gathered, not copied into
    /// `out`), and only those: not ones noted just before it starts, nor outside it.
    #[test]
    fn blocks_count_the_bytes_gathered_inside_them() {
        use crate::block::{begin_block, end_block};
        let block_len = |out: &[u8], at: usize| u64::from_le_bytes(out[at..at + 8].try_into().unwrap());
        let mut list = Vec::new();
        let mut out = vec![0xAA];
        gathering(&mut list, || {
            // Gathered just before the outer block: not in it.
            assert!(gather_owned(&out, vec![1u8; GATHER_MIN]).is_ok());
            let outer = begin_block(&mut out);
            out.push(2);
            assert!(gather_owned(&out, vec![3u8; GATHER_MIN + 1]).is_ok());
            // A nested block right after a gathered range: the range is before it.
            let inner = begin_block(&mut out);
            assert!(gather_owned(&out, vec![4u8; GATHER_MIN + 2]).is_ok());
            out.push(5);
            assert!(gather_owned(&out, vec![6u8; 1]).is_err(), "small: copied");
            end_block(&mut out, inner);
            assert_eq!(block_len(&out, inner), (GATHER_MIN + 2 + 1) as u64, "the inner block");
            end_block(&mut out, outer);
            assert_eq!(block_len(&out, outer), (1 + GATHER_MIN + 1 + 8 + GATHER_MIN + 2 + 1) as u64, "the outer block");
        });
        assert_eq!(list.len(), 3);
        // Nothing gathered: a block is what is in `out`.
        let mut plain = Vec::new();
        let at = begin_block(&mut plain);
        plain.extend_from_slice(&[7; 3]);
        end_block(&mut plain, at);
        assert_eq!(block_len(&plain, at), 3);
    }

    #[test]
    fn only_large_borrowed_bytes_of_a_call_being_encoded_are_gathered() {
        let big = vec![5u8; GATHER_MIN];
        assert!(!gather(&[], &big), "no call encodes its arguments now");
        let owned = vec![6u8; GATHER_MIN];
        let ptr = owned.as_ptr();
        let mut list = Vec::new();
        gathering(&mut list, || {
            assert!(!gather(&[0; 3], &big[1..]), "too small");
            assert!(gather(&[0; 3], &big));
            assert!(gather_owned(&[0; 9], owned).is_ok());
            assert!(gather_owned(&[], vec![1]).is_err_and(|v| v == [1]), "too small, given back");
            // A call made inside the encoding has a list of its own, or none.
            let mut inner = Vec::new();
            gathering(&mut inner, || assert!(gather(&[0; 1], &big)));
            assert_eq!(inner.len(), 1);
            not_gathering(|| assert!(!gather(&[0; 1], &big), "an encoding with objects gathers nothing"));
        });
        let got: Vec<_> = list.iter().map(|n| (n.at, n.ptr, n.len, n._owned.is_some())).collect();
        assert_eq!(got, [(3, big.as_ptr(), big.len(), false), (9, ptr, GATHER_MIN, true)]);
        assert!(gather_owned(&[], vec![0; GATHER_MIN]).is_err(), "no call encodes its arguments now");
        // Put back after a panic in the encoding too.
        let panicked =
            std::panic::catch_unwind(AssertUnwindSafe(|| gathering(&mut Vec::new(), || panic!("in encode"))));
        assert!(panicked.is_err());
        assert!(!gather(&[], &big), "no list is left set after a panic");
    }
}
