//! Trait objects across a channel: objects of one process called from another.
//!
//! In-process, a `Box<dyn C>` crosses as an [`RObject`](crate::ffi::RObject) (a pointer
//! and a vtable). Between a host and an isolated plugin it crosses as a number: the
//! side that gives the object away keeps it in a table ([`Peer::export`]) and writes
//! the number; the other side gets the contract's client over a [`RemoteObject`],
//! whose calls travel back as requests naming the number, and whose drop tells the
//! owner to release it ([`Peer::release`]). The owner serves those requests with the
//! object's byte-level dispatch function ([`Exported::dispatch`]), the same kind of
//! function a plugin exports for its instance. A `&dyn C` argument is exported for
//! the call only, and revoked when the call returns.
//!
//! The channel in effect while a call's arguments and result are converted is the
//! *current peer*: set for the duration of a remote call by [`crate::client::remote_call`]
//! (and by a runner while it serves a request), or, in a plugin's process, the one the
//! runner handed over when it attached the plugin ([`PeerFns`], through
//! [`HostServices`](crate::logging::HostServices)). In-process, this is used only
//! where a host calls a plugin by byte form (their types differ across minor
//! versions): both sides then share one table, the host's, and the plugin is handed
//! functions to reach it as a runner's.
//!
//! An owner keeps what it exported in a [`Table`]. A lent object is borrowed: its
//! owner drops it once the lending call returns, so the table guarantees that no
//! method of it runs after [`Table::revoke`] returns, whatever the other side sends
//! (see [`Table`]).

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use crate::CallError;
use crate::client::{Channel, DispatchFn};
use crate::ffi::{RSlice, RVec, Status};
use crate::future::BoxFuture;
use crate::wire::{Reader, WireError};

/// An object given to the other side: what its owner keeps until released.
#[repr(C)]
#[derive(Debug)]
pub struct Exported {
    /// The object (a boxed holder of it).
    pub this: *const c_void,
    /// Serves byte-level calls to it (see [`DispatchFn`]).
    pub dispatch: DispatchFn,
    /// Drops the holder; `None` for nothing to drop.
    pub release: Option<unsafe extern "C" fn(*const c_void)>,
}

// SAFETY: the object behind `this` is `Send + Sync` (contract traits require it), and
// the functions are plain code.
unsafe impl Send for Exported {}
// SAFETY: as above.
unsafe impl Sync for Exported {}

impl Exported {
    /// Serves one call to the object: status and encoded result (or message).
    ///
    /// # Safety
    /// The object must not have been released.
    pub unsafe fn serve(&self, method: u32, args: &[u8]) -> (Status, RVec) {
        let mut out = MaybeUninit::uninit();
        let mut panic = MaybeUninit::uninit();
        // SAFETY: the dispatch function of this very object, with arguments that live
        // for the call and writable `out`/`panic`.
        let status =
            unsafe { (self.dispatch)(self.this, method, RSlice::new(args), out.as_mut_ptr(), panic.as_mut_ptr()) };
        // SAFETY: `status`, `out` and `panic` come from that call.
        (status, unsafe { crate::client::dispatched(status, out, panic) })
    }

    /// Drops the object (once).
    ///
    /// # Safety
    /// Called at most once, and no call to the object may run or follow.
    pub unsafe fn release(self) {
        if let Some(release) = self.release {
            // SAFETY: the caller guarantees this is the one release.
            unsafe { release(self.this) };
        }
    }
}

/// The other side of a channel, as the objects crossing it see it.
pub trait Peer: Send + Sync {
    /// Keeps `object` for the other side; returns its number (never 0, which names
    /// the plugin's own instance).
    fn export(&self, object: Exported) -> u64;
    /// Drops an object exported for one call only (a `&dyn C` argument).
    fn revoke(&self, id: u64);
    /// Calls method `method` of the other side's object `id`.
    ///
    /// # Errors
    /// The object's method panicked, or the channel failed.
    fn call(&self, id: u64, method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError>;
    /// Tells the other side that its object `id` is no longer used.
    fn release(&self, id: u64);
    /// Whether the other side's objects are code loaded in this process (a plugin
    /// called by byte form in-process): their `async` methods are then called on a
    /// thread the call joins (see [`crate::client::call_joined`]), not one that may
    /// outlive the plugin.
    fn in_process(&self) -> bool {
        false
    }
}

/// A [`Peer`] as plain functions, for a plugin's own copy of tomada: what a runner
/// hands to the plugin it serves.
#[repr(C)]
#[derive(Debug)]
pub struct PeerFns {
    /// [`Peer::export`].
    pub export: unsafe extern "C" fn(Exported) -> u64,
    /// [`Peer::revoke`].
    pub revoke: unsafe extern "C" fn(u64),
    /// [`Peer::call`]: writes the result, or the failure's message, to `out`; the
    /// status says which ([`Status::OK`], [`Status::PANICKED`], or
    /// [`Status::MALFORMED`] for a failed channel). Must not unwind.
    pub call: unsafe extern "C" fn(id: u64, method: u32, args: RSlice, out: *mut RVec) -> Status,
    /// [`Peer::release`].
    pub release: unsafe extern "C" fn(u64),
}

impl Peer for &'static PeerFns {
    fn export(&self, object: Exported) -> u64 {
        // SAFETY: the runner's function, taking ownership of the object.
        unsafe { (self.export)(object) }
    }
    fn revoke(&self, id: u64) {
        // SAFETY: the runner's function, with a plain number.
        unsafe { (self.revoke)(id) }
    }
    fn call(&self, id: u64, method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let mut out = MaybeUninit::uninit();
        // SAFETY: the runner's function, with arguments that live for the call and a
        // writable `out`, which it always writes.
        let status = unsafe { (self.call)(id, method, RSlice::new(&args), out.as_mut_ptr()) };
        // SAFETY: written by the call.
        let body = unsafe { out.assume_init() }.into_vec();
        crate::client::answer(status.0, body)
    }
    fn release(&self, id: u64) {
        // SAFETY: the runner's function, with a plain number.
        unsafe { (self.release)(id) }
    }
}

static ATTACHED: OnceLock<Arc<dyn Peer>> = OnceLock::new();

/// Plugin side: keeps the runner's peer (called when the plugin is attached).
pub(crate) fn attach(fns: &'static PeerFns) {
    let _ = ATTACHED.set(Arc::new(fns));
}

type PeerPtr = *const (dyn Peer + 'static);

thread_local! {
    // Raw pointers in `Cell`s, const-initialised: no thread-local destructor, so a
    // plugin's copy of tomada never keeps its library mapped.
    static CURRENT: Cell<Option<PeerPtr>> = const { Cell::new(None) };
    static BORROWED: Cell<*mut Vec<u64>> = const { Cell::new(std::ptr::null_mut()) };
}

/// Runs `f` with `peer` as the current peer; restores the previous one after, even
/// if `f` panics.
pub fn with_peer<R>(peer: &Arc<dyn Peer>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<PeerPtr>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(Arc::as_ptr(peer)))));
    f()
}

/// The current peer: the channel whose call is being converted on this thread, else
/// the runner's (in a plugin's process).
pub fn current_peer() -> Option<Arc<dyn Peer>> {
    match CURRENT.with(Cell::get) {
        // SAFETY: set by `with_peer` from an `Arc` its caller holds while it is
        // current; the count is raised before another `Arc` is made of it.
        Some(ptr) => unsafe {
            Arc::increment_strong_count(ptr);
            Some(Arc::from_raw(ptr))
        },
        None => ATTACHED.get().cloned(),
    }
}

/// The top bit of an object's number on the wire: the object is lent for the call
/// (its owner revokes it when the call returns), so its handle sends no release.
const LENT: u64 = 1 << 63;

fn no_peer() -> ! {
    panic!("a trait object crosses a channel outside any call through it (no current tomada peer)")
}

/// Writes an object given away for good: exported to the current peer.
#[doc(hidden)]
pub fn encode_exported(object: Exported, out: &mut Vec<u8>) {
    let peer = current_peer().unwrap_or_else(|| no_peer());
    out.extend_from_slice(&peer.export(object).to_le_bytes());
}

/// Writes an object lent for the call (`&dyn C`): exported, and revoked when the call
/// returns.
#[doc(hidden)]
pub fn encode_borrowed(object: Exported, out: &mut Vec<u8>) {
    let peer = current_peer().unwrap_or_else(|| no_peer());
    let id = peer.export(object);
    let list = BORROWED.with(Cell::get);
    if list.is_null() {
        // Not inside a call that would revoke it: nothing may keep it.
        peer.revoke(id);
        panic!("a `&dyn` object crosses a channel outside a call");
    }
    // SAFETY: set by `collecting_borrowed` to a vector it owns for the duration.
    unsafe { (*list).push(id) };
    out.extend_from_slice(&(id | LENT).to_le_bytes());
}

/// Runs `encode`, collecting the numbers of the objects it lends for the call.
pub(crate) fn collecting_borrowed(encode: impl FnOnce()) -> Vec<u64> {
    let mut list = Vec::new();
    struct Restore(*mut Vec<u64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            BORROWED.with(|b| b.set(self.0));
        }
    }
    {
        let _restore = Restore(BORROWED.with(|b| b.replace(&raw mut list)));
        encode();
    }
    list
}

/// Reads an object of the other side: a channel to it, bound to the current peer.
///
/// # Errors
/// The bytes end early, or no call through a channel is converting.
#[doc(hidden)]
pub fn decode_remote(r: &mut Reader<'_>) -> Result<Arc<dyn Channel>, WireError> {
    let word = u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
    let (id, lent) = (word & !LENT, word & LENT != 0);
    if id == 0 {
        return Err(WireError::Malformed("an object numbered 0"));
    }
    let peer = current_peer().ok_or(WireError::Malformed("an object crossed outside a call through a channel"))?;
    Ok(Arc::new(RemoteObject { peer, id, lent }))
}

/// An object of the other side of a channel: calls go to it by number; dropping this
/// releases it there.
pub struct RemoteObject {
    peer: Arc<dyn Peer>,
    id: u64,
    /// Lent for one call: its owner revokes it, so dropping this says nothing.
    lent: bool,
}

impl std::fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteObject").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Channel for RemoteObject {
    fn call(&self, method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        self.peer.call(self.id, method, args)
    }
    fn call_async(self: Arc<Self>, method: u32, args: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
        if self.peer.in_process() {
            crate::client::call_joined(self, method, args)
        } else {
            crate::client::call_on_thread(self, method, args)
        }
    }
    fn peer(&self) -> Option<Arc<dyn Peer>> {
        Some(Arc::clone(&self.peer))
    }
}

impl Drop for RemoteObject {
    fn drop(&mut self) {
        if !self.lent {
            self.peer.release(self.id);
        }
    }
}

/// The objects one side of a channel gave the other, by number: what the other side's
/// requests name, and what it releases.
///
/// An object lent for one call (a `&dyn C` argument) lives only as long as that call:
/// its owner drops it once the call returns. The other side does not have to keep to
/// that: a plugin can call a lent object from one of its own threads, or name another
/// call in flight as the parent of such a callback, so the callback runs on a thread of
/// the owner other than the lending one, and may still run when the lending call has
/// returned. So every call served holds a [`Lease`] on its object, and
/// [`Table::revoke`] (what the lending call does when it returns) first takes the object
/// out of the table (no new call reaches it), then waits until no lease on it is left.
/// Once `revoke` returns, no method of the object runs or will run: its owner may drop
/// it. (A well-behaved peer never makes `revoke` wait: its callbacks within the call are
/// answered before the call returns.)
///
/// The wait is for the owner's own code (the method running), never for the peer: a
/// method that calls the peer again is bounded by that call's deadline. It cannot
/// deadlock on other lending calls: a lease on a lent object starts after the object
/// was lent, so a chain of threads each waiting in `revoke` for a lease held by the
/// next would need each lending to come before the next, round a cycle.
pub struct Table {
    next: AtomicU64,
    inner: Mutex<Inner>,
    /// Signalled when the last lease on an object a `revoke` waits for ends.
    idle: Condvar,
}

#[derive(Default)]
struct Inner {
    objects: HashMap<u64, Arc<Entry>>,
    /// Objects with calls being served: how many, and whether a `revoke` waits.
    busy: HashMap<u64, Busy>,
}

struct Busy {
    leases: usize,
    awaited: bool,
}

/// An exported object, released when the last of the table and the leases on it
/// lets go.
struct Entry(Option<Exported>);

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(exported) = self.0.take() {
            // SAFETY: the one release: the entry is out of the table and no lease holds
            // it (each holds the `Arc`).
            unsafe { exported.release() };
        }
    }
}

/// A call being served to an object of a [`Table`]: while it lives, the object is
/// neither released nor revoked.
pub struct Lease<'a> {
    table: &'a Table,
    id: u64,
    entry: Option<Arc<Entry>>,
}

impl std::fmt::Debug for Lease<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("id", &self.id).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("objects", &self.lock().objects.len()).finish_non_exhaustive()
    }
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

impl Table {
    /// An empty table; numbers start at 1 (0 names the plugin's own instance).
    pub fn new() -> Table {
        Table { next: AtomicU64::new(1), inner: Mutex::default(), idle: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing here panics while the lock is held; a poisoned lock is still whole.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `object` for the other side; returns its number.
    pub fn insert(&self, object: Exported) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().objects.insert(id, Arc::new(Entry(Some(object))));
        id
    }

    /// A lease on object `id` for one call, if it is (still) in the table.
    pub fn get(&self, id: u64) -> Option<Lease<'_>> {
        let mut inner = self.lock();
        let entry = Arc::clone(inner.objects.get(&id)?);
        inner.busy.entry(id).or_insert(Busy { leases: 0, awaited: false }).leases += 1;
        Some(Lease { table: self, id, entry: Some(entry) })
    }

    /// Drops object `id`, given away for good, now that the other side let go of it:
    /// at once, or when the last call serving it returns.
    pub fn release(&self, id: u64) {
        let entry = self.lock().objects.remove(&id);
        drop(entry); // outside the lock: releasing runs the object's `Drop`
    }

    /// Takes object `id`, lent for a call that returned, out of the table, and waits
    /// until no call serves it any more: when this returns, no method of it runs, and
    /// none will.
    pub fn revoke(&self, id: u64) {
        let mut inner = self.lock();
        let entry = inner.objects.remove(&id);
        if let Some(busy) = inner.busy.get_mut(&id) {
            busy.awaited = true;
            log::warn!(
                "the other side called object {id}, lent for one call only, outside that call; \
                 the call waits for that method to return before it returns"
            );
            while inner.busy.contains_key(&id) {
                inner = self.idle.wait(inner).unwrap_or_else(|p| p.into_inner());
            }
        }
        drop(inner);
        drop(entry);
    }

    /// Drops every object (the other side is gone). Objects with calls being served
    /// go when those calls return; a lent one's `revoke` still waits for them.
    pub fn clear(&self) {
        let all = std::mem::take(&mut self.lock().objects);
        drop(all);
    }

    /// Whether a `revoke` of object `id` waits for its leases (for tests).
    #[cfg(test)]
    fn awaited(&self, id: u64) -> bool {
        self.lock().busy.get(&id).is_some_and(|b| b.awaited)
    }
}

impl Lease<'_> {
    /// Serves one call to the object: status and encoded result (or message).
    pub fn serve(&self, method: u32, args: &[u8]) -> (Status, RVec) {
        let exported = self.entry.as_ref().and_then(|e| e.0.as_ref()).expect("released only when the entry drops");
        // SAFETY: the object is released only when its entry drops, which this lease's
        // `Arc` prevents; a lent one is revoked (and dropped by its owner) only once
        // no lease is left.
        unsafe { exported.serve(method, args) }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        // The last reference, if the object was released meanwhile: dropped below,
        // outside the lock.
        let entry = self.entry.take();
        let wake = match inner.busy.get_mut(&self.id) {
            Some(busy) if busy.leases > 1 => {
                busy.leases -= 1;
                false
            }
            Some(_) => inner.busy.remove(&self.id).is_some_and(|b| b.awaited),
            None => false,
        };
        drop(inner);
        if wake {
            self.table.idle.notify_all();
        }
        drop(entry);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// A peer that is its own other side: what it exports, it calls.
    #[derive(Default)]
    struct Mirror {
        objects: Mutex<HashMap<u64, Exported>>,
        next: Mutex<u64>,
        released: Mutex<Vec<u64>>,
    }

    impl Peer for Mirror {
        fn export(&self, object: Exported) -> u64 {
            let mut next = self.next.lock().unwrap();
            *next += 1;
            self.objects.lock().unwrap().insert(*next, object);
            *next
        }
        fn revoke(&self, id: u64) {
            if let Some(object) = self.objects.lock().unwrap().remove(&id) {
                // SAFETY: removed from the table, released once.
                unsafe { object.release() };
            }
        }
        fn call(&self, id: u64, method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
            let objects = self.objects.lock().unwrap();
            let object = objects.get(&id).ok_or(CallError::Channel { message: "no object".into() })?;
            // SAFETY: in the table, so not released.
            let (status, body) = unsafe { object.serve(method, &args) };
            crate::client::answer(status.0, body.into_vec())
        }
        fn release(&self, id: u64) {
            self.released.lock().unwrap().push(id);
            self.revoke(id);
        }
    }

    /// Echoes its arguments back, and counts its drops.
    unsafe extern "C" fn echo(this: *const c_void, method: u32, args: RSlice, out: *mut RVec, _: *mut RVec) -> Status {
        // SAFETY: `this` is the `u32` boxed below; `args` live for the call; `out` is
        // writable.
        unsafe {
            assert_eq!(*this.cast::<u32>(), 7);
            out.write(RVec::from_vec([&method.to_le_bytes()[..], args.as_bytes()].concat()));
        }
        Status::OK
    }

    static DROPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    unsafe extern "C" fn drop_u32(this: *const c_void) {
        // SAFETY: made by `Box::into_raw` below, released once.
        drop(unsafe { Box::from_raw(this.cast::<u32>().cast_mut()) });
        DROPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn object() -> Exported {
        Exported { this: Box::into_raw(Box::new(7u32)).cast(), dispatch: echo, release: Some(drop_u32) }
    }

    #[test]
    fn objects_cross_by_number_and_are_released_once() {
        let mirror = Arc::new(Mirror::default());
        let peer: Arc<dyn Peer> = mirror.clone();
        assert!(current_peer().is_none(), "no peer outside a call");
        let before = DROPS.load(std::sync::atomic::Ordering::SeqCst);

        // Given away: a handle that calls it and releases it when dropped.
        let mut bytes = Vec::new();
        let handle = with_peer(&peer, || {
            encode_exported(object(), &mut bytes);
            decode_remote(&mut Reader::new(&bytes)).unwrap()
        });
        assert_eq!(handle.call(3, b"hi".to_vec()).unwrap(), [3, 0, 0, 0, b'h', b'i']);
        drop(handle);
        assert_eq!(mirror.released.lock().unwrap().as_slice(), &[1]);
        assert!(mirror.objects.lock().unwrap().is_empty());

        // Lent: revoked by the call that lent it; its handle sends no release.
        let mut bytes = Vec::new();
        let lent = with_peer(&peer, || collecting_borrowed(|| encode_borrowed(object(), &mut bytes)));
        assert_eq!(lent, [2]);
        let handle = with_peer(&peer, || decode_remote(&mut Reader::new(&bytes)).unwrap());
        assert_eq!(handle.call(1, Vec::new()).unwrap(), [1, 0, 0, 0]);
        drop(handle);
        assert_eq!(mirror.released.lock().unwrap().len(), 1, "no release for a lent object");
        peer.revoke(2);
        assert_eq!(DROPS.load(std::sync::atomic::Ordering::SeqCst) - before, 2, "each dropped once");

        // Outside a call: no peer, no object.
        assert!(decode_remote(&mut Reader::new(&3u64.to_le_bytes())).is_err());
        assert!(decode_remote(&mut Reader::new(&0u64.to_le_bytes())).is_err(), "0 is the plugin, never an object");
    }

    /// A lent object for the table tests: a pointer to a value its owner drops after
    /// `revoke`, and a method that waits for a gate before it reads that value.
    struct Lent {
        value: std::sync::atomic::AtomicPtr<u64>,
        /// Set by the owner once it dropped the value: what a method must never see.
        dropped: std::sync::atomic::AtomicBool,
        started: std::sync::atomic::AtomicBool,
        go: std::sync::atomic::AtomicBool,
    }

    unsafe extern "C" fn gated(this: *const c_void, _: u32, _: RSlice, out: *mut RVec, _: *mut RVec) -> Status {
        use std::sync::atomic::Ordering::SeqCst;
        // SAFETY: `this` is the `Lent` the test exported, alive for the whole test.
        let lent = unsafe { &*this.cast::<Lent>() };
        lent.started.store(true, SeqCst);
        while !lent.go.load(SeqCst) {
            std::thread::yield_now();
        }
        // SAFETY: the value lives until its owner drops it, which it says first.
        let seen = if lent.dropped.load(SeqCst) { 0 } else { unsafe { *lent.value.load(SeqCst) } };
        // SAFETY: `out` is writable.
        unsafe { out.write(RVec::from_vec(seen.to_le_bytes().to_vec())) };
        Status::OK
    }

    /// The route of issue 16: a call to a lent object is being served on another
    /// thread when the lending call returns and revokes it. `revoke` must not return
    /// before that method has, since the owner drops the object as soon as it does.
    /// Without the wait in `revoke`, the revoking thread returns at once, the owner
    /// drops the value, and the method (let go only then) finds it dropped: `seen` is 0
    /// (where a real method would read freed memory). Deterministic: the method is let
    /// go only once `revoke` waits for it, or (without the wait) has returned.
    #[test]
    fn revoke_waits_for_a_lent_objects_methods_running_elsewhere() {
        use std::sync::atomic::Ordering::SeqCst;
        let table = Table::new();
        let value = Box::into_raw(Box::new(42u64));
        let lent = Lent { value: value.into(), dropped: false.into(), started: false.into(), go: false.into() };
        let id = table.insert(Exported { this: (&raw const lent).cast(), dispatch: gated, release: None });
        let revoked = std::sync::atomic::AtomicBool::new(false);
        let seen = std::thread::scope(|s| {
            let lease = table.get(id).expect("in the table");
            let server = s.spawn(move || {
                let (status, body) = lease.serve(0, &[]);
                assert_eq!(status, Status::OK);
                u64::from_le_bytes(body.as_slice().try_into().unwrap())
            });
            while !lent.started.load(SeqCst) {
                std::thread::yield_now();
            }
            let revoker = s.spawn(|| {
                table.revoke(id);
                // The owner drops the object once the lending call returns.
                lent.dropped.store(true, SeqCst);
                // SAFETY: made by `Box::into_raw` above, dropped once, here.
                drop(unsafe { Box::from_raw(lent.value.load(SeqCst)) });
                revoked.store(true, SeqCst);
            });
            // The method goes on once `revoke` waits for it (or returned, without the wait).
            while !table.awaited(id) && !revoked.load(SeqCst) {
                std::thread::yield_now();
            }
            lent.go.store(true, SeqCst);
            let seen = server.join().unwrap();
            revoker.join().unwrap();
            seen
        });
        assert_eq!(seen, 42, "the method ran on the lent object after its call returned");
        assert!(table.get(id).is_none(), "a revoked object is gone");
        assert!(table.lock().busy.is_empty(), "no lease left behind");
    }

    static TABLE_DROPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    unsafe extern "C" fn drop_counted(this: *const c_void) {
        // SAFETY: made by `Box::into_raw` below, released once.
        drop(unsafe { Box::from_raw(this.cast::<u32>().cast_mut()) });
        TABLE_DROPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// A given-away object released while a call serves it goes when that call
    /// returns, once; a call after the release finds nothing.
    #[test]
    fn a_released_object_outlives_the_calls_serving_it_and_is_dropped_once() {
        use std::sync::atomic::Ordering::SeqCst;
        let counted =
            || Exported { this: Box::into_raw(Box::new(7u32)).cast(), dispatch: echo, release: Some(drop_counted) };
        let table = Table::new();
        let id = table.insert(counted());
        let lease = table.get(id).unwrap();
        table.release(id);
        assert!(table.get(id).is_none(), "released: no new call reaches it");
        assert_eq!(lease.serve(3, b"x").1.into_vec(), [3, 0, 0, 0, b'x'], "the running call still serves it");
        assert_eq!(TABLE_DROPS.load(SeqCst), 0, "not dropped under a call");
        drop(lease);
        assert_eq!(TABLE_DROPS.load(SeqCst), 1, "dropped with the last call");
        // Cleared with a call running: the lease keeps it; a revoke after the call
        // returned does not wait.
        let id = table.insert(counted());
        let lease = table.get(id).unwrap();
        table.clear();
        assert_eq!(TABLE_DROPS.load(SeqCst), 1);
        drop(lease);
        table.revoke(id);
        assert_eq!(TABLE_DROPS.load(SeqCst), 2);
    }
}
