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

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::ffi::{RSlice, RVec, Status};
use crate::wire::{Reader, WireError};
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
}

/// Where a client's calls go.
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

/// A client's state, the same for every contract.
pub struct RawClient {
    /// Where calls go.
    pub target: Target,
    /// How many of the contract's methods the plugin provides.
    pub provided: usize,
    /// The minor version the plugin was built against.
    pub plugin_minor: u32,
}

// SAFETY: the plugin instance behind a local target is `Send + Sync` (contract traits
// require it), its vtable is immutable, and a channel is `Send + Sync`.
unsafe impl Send for RawClient {}
// SAFETY: as above.
unsafe impl Sync for RawClient {}

impl RawClient {
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

/// Host side of an isolated call: sends `args` and reads the result back.
///
/// # Errors
/// What the channel reports, or [`CallError::Channel`] for an answer that does not
/// decode as an `R`.
#[inline]
pub fn remote_call<R: Abi>(channel: &dyn Channel, method: u32, args: Vec<u8>) -> Result<R, CallError> {
    // The channel is host code, but a client method must not unwind into its caller
    // from deep inside tomada: a panic there is a failed call.
    let answer = panic::catch_unwind(AssertUnwindSafe(|| channel.call(method, args)))
        .unwrap_or_else(|payload| Err(CallError::Channel { message: crate::call::panic_message(payload) }))?;
    let mut r = Reader::new(&answer);
    let value = R::decode(&mut r)
        .and_then(|v| r.finish().map(|()| v))
        .map_err(|e| CallError::Channel { message: format!("the plugin's answer cannot be decoded: {e}") })?;
    Ok(value)
}

/// The plugin side of a byte-level call: decodes the arguments for method number
/// `method`, calls it on the instance `this`, and writes the encoded result to `out`
/// (or a message to `panic`).
pub type DispatchFn =
    unsafe extern "C" fn(this: *const c_void, method: u32, args: RSlice, out: *mut RVec, panic: *mut RVec) -> Status;

/// Plugin side: runs `f` (which decodes the arguments and calls the method) under
/// `catch_unwind` and writes the encoded result to `out`, or a message to `panic`.
/// Called by the generated dispatch functions.
///
/// # Safety
/// `out` and `panic` must be writable.
#[inline]
pub unsafe fn serve<R: Abi>(out: *mut RVec, panic: *mut RVec, f: impl FnOnce() -> Result<R, WireError>) -> Status {
    let fail = |status: Status, message: String| {
        // SAFETY: the caller guarantees `panic` is writable.
        unsafe { panic.write(RVec::from_vec(message.into_bytes())) };
        status
    };
    match panic::catch_unwind(AssertUnwindSafe(|| {
        f().map(|value| {
            let mut bytes = Vec::new();
            value.encode(&mut bytes);
            bytes
        })
    })) {
        Ok(Ok(bytes)) => {
            // SAFETY: the caller guarantees `out` is writable.
            unsafe { out.write(RVec::from_vec(bytes)) };
            Status::OK
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
        Status::MALFORMED => Err(CallError::Channel { message: text(body) }),
        Status(other) => Err(CallError::BadStatus(other)),
    }
}
