//! In-process calls by byte form: how a host calls a plugin of another minor version
//! whose types differ from its own in the ways the byte form bridges (fields appended
//! with `since`, variants added to open enums; see `docs/evolution.md`).
//!
//! Such a pair cannot share `#[repr(C)]` forms: a struct with one more field has
//! another size, so a `Vec` of it has another stride. Rather than give every struct
//! a self-describing in-memory form (a heap-allocated prefix with a field count, as
//! abi_stable's prefix types do for vtables), which every call would pay for, the
//! host calls such a plugin through the byte-level dispatch function every plugin
//! exports for isolated mode, in this process: the arguments are encoded, the
//! plugin decodes them (defaulting what it lacks, skipping what it does not know),
//! and the result comes back the same way. Pairs whose types agree — the common
//! case, and every pair built against the same contract — keep the vtable and pay
//! nothing.
//!
//! Contract objects (`&dyn C`, `Box<dyn C>`, `Arc<dyn C>`, handles) cross such a pair
//! as they cross to an isolated plugin: by number, through a [`Peer`], so their
//! methods too are called by byte form (a struct that gained a field inside an
//! object's method, or a callback's, crosses as the rules say). Both sides are in
//! this process, so one table serves both ([`table`]): each side exports its objects
//! there, and calls the other's through it. The plugin's copy of tomada reaches it
//! through [`IN_PROCESS_PEER`], which every plugin loaded in this process is handed.

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::sync::{Arc, OnceLock};

use tomada::CallError;
use tomada::client::{Channel, DispatchFn, Keepalive};
use tomada::ffi::{RSlice, RVec, Status};
use tomada::future::BoxFuture;
use tomada::remote::{Exported, Peer, PeerFns, Table};

/// A [`Channel`] to a plugin loaded in this process, through its dispatch function.
pub(crate) struct LocalBytes {
    /// The plugin's dispatch function.
    pub(crate) dispatch: DispatchFn,
    /// Its instance.
    pub(crate) this: *const c_void,
    /// The peer objects crossing calls to it go through (see [`InProcess`]).
    pub(crate) peer: Arc<dyn Peer>,
}

impl LocalBytes {
    /// A channel to the plugin whose dispatch function and instance these are, whose
    /// objects keep `keepalive` (its library) loaded.
    pub(crate) fn new(dispatch: DispatchFn, this: *const c_void, keepalive: Keepalive) -> Self {
        LocalBytes { dispatch, this, peer: Arc::new(InProcess { keepalive: Some(keepalive) }) }
    }
}

// SAFETY: the instance is `Send + Sync` (contract traits require it) and the dispatch
// function is plain code; the `Plugin` that owns both outlives every client call.
unsafe impl Send for LocalBytes {}
// SAFETY: as above.
unsafe impl Sync for LocalBytes {}

impl Channel for LocalBytes {
    fn call(&self, method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let mut out = MaybeUninit::uninit();
        let mut panic = MaybeUninit::uninit();
        // The peer is current while the plugin runs: objects the host's callbacks
        // receive from it (on this thread) are bound to it.
        // SAFETY: `dispatch` and `this` are the loaded plugin's (the `Plugin` holding
        // this channel keeps them alive while its client calls); the arguments live for
        // the call; `out` and `panic` are writable. The dispatch function catches the
        // plugin's panics.
        let status = tomada::remote::with_peer(&self.peer, || unsafe {
            (self.dispatch)(self.this, method, RSlice::new(&args), out.as_mut_ptr(), panic.as_mut_ptr())
        });
        // SAFETY: `status`, `out` and `panic` come from that call.
        let body = unsafe { tomada::client::dispatched(status, out, panic) };
        tomada::client::answer(status.0, body.into_vec())
    }

    fn peer(&self) -> Option<Arc<dyn Peer>> {
        Some(Arc::clone(&self.peer))
    }

    /// Runs the call on a thread the future joins (see `tomada::client::call_joined`):
    /// nothing can call the instance after the `Plugin` (which the future borrows) is
    /// gone.
    fn call_async(self: Arc<Self>, method: u32, args: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
        tomada::client::call_joined(self, method, args)
    }
}

/// The objects crossing between this host and its in-process plugins called by byte
/// form, by number: one table for the process, since both sides are in it.
fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Table::new)
}

/// The host's side of objects crossing to and from one in-process plugin called by
/// byte form: the process's [`table`], and what keeps the plugin's code loaded while
/// the host holds objects it made (a `RemoteObject` bound to this peer holds it).
pub(crate) struct InProcess {
    /// The plugin's library, if known (not for an object exported from a thread of the
    /// plugin's own, outside any call of the host).
    keepalive: Option<Keepalive>,
}

impl Peer for InProcess {
    fn export(&self, object: Exported) -> u64 {
        table().insert(hold(object, Arc::new(InProcess { keepalive: self.keepalive.clone() })))
    }
    fn revoke(&self, id: u64) {
        table().revoke(id);
    }
    fn call(&self, id: u64, method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let (status, body) = serve(id, method, &args);
        tomada::client::answer(status.0, body)
    }
    fn release(&self, id: u64) {
        table().release(id);
    }
    fn in_process(&self) -> bool {
        true
    }
}

/// Serves a call to object `id` of the table: its status and result (or message).
fn serve(id: u64, method: u32, args: &[u8]) -> (Status, Vec<u8>) {
    match table().get(id) {
        Some(lease) => {
            let (status, body) = lease.serve(method, args);
            (status, body.into_vec())
        }
        None => (Status::MALFORMED, format!("no object numbered {id} (it was released)").into_bytes()),
    }
}

/// An object in the [`table`], with the peer its calls are converted under: objects
/// crossing its methods' arguments and results are bound to that peer (so they keep
/// the plugin loaded), whichever thread calls it.
struct Held {
    object: Exported,
    peer: Arc<dyn Peer>,
}

/// `object` wrapped as a [`Held`], itself an [`Exported`] the table keeps.
fn hold(object: Exported, peer: Arc<dyn Peer>) -> Exported {
    Exported {
        this: Box::into_raw(Box::new(Held { object, peer })).cast::<c_void>().cast_const(),
        dispatch: held_dispatch,
        release: Some(held_release),
    }
}

/// Serves a call to a [`Held`] object: its own dispatch function, under its peer.
unsafe extern "C" fn held_dispatch(
    this: *const c_void,
    method: u32,
    args: RSlice,
    out: *mut RVec,
    panic: *mut RVec,
) -> Status {
    // SAFETY: `this` is a `Held` made by `hold`, not yet released (the table calls no
    // method of a released object).
    let held = unsafe { &*this.cast::<Held>() };
    // SAFETY: the object's own dispatch function and instance, with the caller's
    // arguments and writable `out`/`panic`; it catches its panics.
    tomada::remote::with_peer(&held.peer, || unsafe {
        (held.object.dispatch)(held.object.this, method, args, out, panic)
    })
}

/// Releases a [`Held`] object: the object first, then its peer (which may keep the
/// object's code loaded).
unsafe extern "C" fn held_release(this: *const c_void) {
    // SAFETY: made by `hold` with `Box::into_raw`, released once (the table's promise).
    let held = unsafe { Box::from_raw(this.cast::<Held>().cast_mut()) };
    let Held { object, peer } = *held;
    // SAFETY: the one release of the object (this is its holder's one release).
    unsafe { object.release() };
    drop(peer);
}

/// The table as the plugin's copy of tomada sees it (see `tomada::remote::PeerFns`):
/// handed to every plugin loaded in this process, which uses it only when it is called
/// by byte form.
pub(crate) static IN_PROCESS_PEER: PeerFns =
    PeerFns { export: peer_export, revoke: peer_revoke, call: peer_call, release: peer_release };

/// The peer the host's side of a plugin's object is bound to: the one of the call
/// running on this thread (the plugin's), else one that keeps nothing loaded.
fn this_threads_peer() -> Arc<dyn Peer> {
    tomada::remote::current_peer().unwrap_or_else(|| Arc::new(InProcess { keepalive: None }))
}

unsafe extern "C" fn peer_export(object: Exported) -> u64 {
    table().insert(hold(object, this_threads_peer()))
}

unsafe extern "C" fn peer_revoke(id: u64) {
    table().revoke(id);
}

unsafe extern "C" fn peer_release(id: u64) {
    table().release(id);
}

unsafe extern "C" fn peer_call(id: u64, method: u32, args: RSlice, out: *mut RVec) -> Status {
    // SAFETY: the plugin passes arguments that live for this call.
    let (status, body) = serve(id, method, unsafe { args.as_bytes() });
    // SAFETY: the plugin passes a writable `out`.
    unsafe { out.write(RVec::from_vec(body)) };
    status
}
