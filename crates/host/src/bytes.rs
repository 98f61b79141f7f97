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

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::sync::Arc;

use tomada::CallError;
use tomada::client::{Channel, DispatchFn};
use tomada::ffi::RSlice;
use tomada::future::BoxFuture;

/// A [`Channel`] to a plugin loaded in this process, through its dispatch function.
pub(crate) struct LocalBytes {
    /// The plugin's dispatch function.
    pub(crate) dispatch: DispatchFn,
    /// Its instance.
    pub(crate) this: *const c_void,
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
        // SAFETY: `dispatch` and `this` are the loaded plugin's (the `Plugin` holding
        // this channel keeps them alive while its client calls); the arguments live for
        // the call; `out` and `panic` are writable. The dispatch function catches the
        // plugin's panics.
        let status =
            unsafe { (self.dispatch)(self.this, method, RSlice::new(&args), out.as_mut_ptr(), panic.as_mut_ptr()) };
        // SAFETY: `status`, `out` and `panic` come from that call.
        let body = unsafe { tomada::client::dispatched(status, out, panic) };
        tomada::client::answer(status.0, body.into_vec())
    }

    /// Runs the call when the future is first polled, on a thread of its own that the
    /// poll waits for: the plugin's dispatch function drives an `async` method to
    /// completion itself, with the plugin's own copy of `std` (`thread::current`),
    /// whose thread-local destructors must run while the library is loaded — so on a
    /// thread that ends within the call, never on a host thread that outlives the
    /// plugin. Nothing can call the instance after the `Plugin` (which the future
    /// borrows) is gone.
    fn call_async(self: Arc<Self>, method: u32, args: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
        Box::pin(async move {
            std::thread::scope(|s| {
                let call =
                    std::thread::Builder::new().name("tomada-call".into()).spawn_scoped(s, || self.call(method, args));
                match call {
                    Ok(handle) => handle.join().unwrap_or_else(|payload| {
                        Err(CallError::Channel { message: tomada::call::panic_message(payload) })
                    }),
                    Err(e) => Err(CallError::Channel { message: format!("cannot start a thread for the call: {e}") }),
                }
            })
        })
    }
}
