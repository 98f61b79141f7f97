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
//! [`HostServices`](crate::logging::HostServices)). Nothing here is used by
//! in-process calls.

use std::cell::Cell;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::sync::{Arc, OnceLock};

use crate::CallError;
use crate::client::{Channel, DispatchFn};
use crate::ffi::{RSlice, RVec, Status};
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
}
