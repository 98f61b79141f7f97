//! Calls to a plugin in another process (`tomada_host`'s isolated mode).
//!
//! The same `#[contract]` that makes the in-process vtable also makes, for every
//! method, the two halves of a byte-level call, with arguments and results encoded
//! by [`postcard`] (a compact, well-kept serde format):
//!
//! * host side, a *remote vtable*: shims with the very same signatures as the
//!   plugin's, which encode the arguments, send them through a [`Channel`] and decode
//!   the answer — so a contract's client calls an isolated plugin exactly as it calls a
//!   loaded one;
//! * plugin side, a *dispatch* function in the descriptor: given a method number and
//!   the encoded arguments it decodes them, calls the method under `catch_unwind` and
//!   encodes the result — so the process that loads the plugin needs no knowledge of
//!   any contract.

use std::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Abi;
use crate::ffi::{RSlice, RVec, Status};

/// Carries encoded calls to a plugin's process and brings back the answers.
/// Implemented by `tomada_host`'s isolation.
pub trait Channel: Send + Sync {
    /// Calls method number `method` (its index in the contract) with postcard-encoded
    /// `args`; returns the encoded result, or a failed [`Status`] with a message.
    fn call(&self, method: u32, args: Vec<u8>) -> Result<Vec<u8>, (Status, String)>;
}

/// The `this` of a remote vtable: the channel the calls go through.
pub struct RemoteObject {
    /// Where calls go.
    pub channel: Arc<dyn Channel>,
}

/// The plugin side of a byte-level call: decodes `args` for method number `method`,
/// calls it on the instance `this`, and writes the encoded result to `out` (or a
/// message to `panic`).
pub type DispatchFn =
    unsafe extern "C" fn(this: *const c_void, method: u32, args: RSlice, out: *mut RVec, panic: *mut RVec) -> Status;

/// Host side: encodes `args`, calls through the channel behind `this`, decodes the
/// result into `out`. Called by the generated remote shims.
///
/// # Safety
/// `this` must point to a live [`RemoteObject`]; `out` and `panic` must be writable.
#[doc(hidden)]
pub unsafe fn __call<A: Serialize, R: Abi + DeserializeOwned>(
    this: *const c_void,
    method: u32,
    args: &A,
    out: *mut R::Ffi,
    panic: *mut RVec,
) -> Status {
    // SAFETY: the caller guarantees `this` is a live `RemoteObject`.
    let remote = unsafe { &*this.cast::<RemoteObject>() };
    let fail = |status: Status, message: String| {
        // SAFETY: the caller guarantees `panic` is writable.
        unsafe { panic.write(RVec::from_vec(message.into_bytes())) };
        status
    };
    let args = match postcard::to_allocvec(args) {
        Ok(bytes) => bytes,
        Err(e) => return fail(Status::CHANNEL, format!("cannot encode the arguments: {e}")),
    };
    // The channel is host code, but this runs inside an `extern "C"` shim: a panic
    // must not unwind out of it.
    let answer = panic::catch_unwind(AssertUnwindSafe(|| remote.channel.call(method, args)))
        .unwrap_or_else(|payload| Err((Status::CHANNEL, crate::call::panic_message(payload))));
    match answer {
        Ok(bytes) => match postcard::from_bytes::<R>(&bytes) {
            Ok(value) => {
                // SAFETY: the caller guarantees `out` is writable.
                unsafe { out.write(value.into_ffi()) };
                Status::OK
            }
            Err(e) => fail(Status::CHANNEL, format!("the plugin's answer cannot be decoded: {e}")),
        },
        Err((status, message)) => fail(status, message),
    }
}

/// Plugin side: runs `f` (which decodes the arguments and calls the method) under
/// `catch_unwind` and writes the encoded result to `out`, or a message to `panic`.
/// Called by the generated dispatch functions.
///
/// # Safety
/// `out` and `panic` must be writable.
#[doc(hidden)]
pub unsafe fn __serve<R: Serialize>(
    out: *mut RVec,
    panic: *mut RVec,
    f: impl FnOnce() -> Result<R, postcard::Error>,
) -> Status {
    let fail = |status: Status, message: String| {
        // SAFETY: the caller guarantees `panic` is writable.
        unsafe { panic.write(RVec::from_vec(message.into_bytes())) };
        status
    };
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => match postcard::to_allocvec(&value) {
            Ok(bytes) => {
                // SAFETY: the caller guarantees `out` is writable.
                unsafe { out.write(RVec::from_vec(bytes)) };
                Status::OK
            }
            Err(e) => fail(Status::CHANNEL, format!("cannot encode the result: {e}")),
        },
        Ok(Err(e)) => fail(Status::CHANNEL, format!("malformed arguments: {e}")),
        Err(payload) => fail(Status::PANICKED, crate::call::panic_message(payload)),
    }
}

/// Plugin side: the answer to a method number this contract does not have.
///
/// # Safety
/// `panic` must be writable.
#[doc(hidden)]
pub unsafe fn __unknown_method(method: u32, panic: *mut RVec) -> Status {
    // SAFETY: the caller guarantees `panic` is writable.
    unsafe { panic.write(RVec::from_vec(format!("no method number {method} in this contract").into_bytes())) };
    Status::CHANNEL
}
