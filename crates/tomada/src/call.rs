//! Calls across the boundary: [`CallError`], and the helpers the generated shims
//! use to catch panics on the plugin side and turn them into values.

use std::any::Any;
use std::cell::Cell;
use std::ffi::c_void;
use std::fmt;
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::Once;
use std::time::Duration;

use crate::Abi;
use crate::ffi::{RVec, Status};
use crate::wire::WireError;

/// Why a call into a plugin did not return a value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The plugin's method panicked. The panic was caught inside the plugin; the
    /// plugin instance is still usable, though its own state may be inconsistent.
    Panicked {
        /// The panic message, with the place in the plugin's source that panicked.
        message: String,
    },
    /// The plugin was built against an older minor version of the contract, before
    /// this method was added.
    NotProvided {
        /// The method called.
        method: &'static str,
        /// The contract version that added it, e.g. `1.1`.
        added_in: String,
        /// The contract version the plugin was built against, e.g. `1.0`.
        plugin_version: String,
    },
    /// An isolated plugin's process died during the call (signal, `abort`, `exit`,
    /// out of memory). The next call starts a new process.
    Crashed {
        /// The signal that killed it, if one did.
        signal: Option<i32>,
        /// Its exit status, if it exited.
        exit_code: Option<i32>,
        /// What happened, in words, e.g. "killed by signal 11 (SIGSEGV: invalid
        /// memory access)".
        detail: String,
    },
    /// An isolated plugin's call ran past its deadline; its process was killed. The
    /// next call starts a new process.
    TimedOut {
        /// The deadline the call ran past.
        deadline: Duration,
    },
    /// An isolated plugin crashed too often and is no longer restarted.
    Quarantined {
        /// How many times it crashed...
        crashes: u32,
        /// ...within this window.
        window: Duration,
    },
    /// The channel to an isolated plugin's process failed, or carried a malformed
    /// message: e.g. arguments the plugin cannot decode (also in-process, between
    /// sides of two minor versions, whose values cross by their byte form).
    Channel {
        /// What went wrong.
        message: String,
    },
    /// The plugin answered with a status this side does not know: a broken plugin.
    BadStatus(u8),
    /// An isolated plugin's answer is not a value of the method's result type, or
    /// goes past what decoding may take here (nesting, memory: see [`crate::wire`]);
    /// the answer was dropped and the host is unharmed.
    Answer(WireError),
    /// A remote plugin's server could not be reached (no endpoint answered, or each
    /// refused the connection); the call was not sent, so it did not run.
    Unavailable {
        /// Why, endpoint by endpoint.
        detail: String,
    },
    /// The connection to a remote plugin's server broke during the call (the server
    /// died or restarted, or the network failed). The next call reconnects.
    Disconnected {
        /// Whether the plugin may have run the call: `true` once the request was sent
        /// (a call that changes state must be checked, or be safe to repeat).
        may_have_run: bool,
        /// What broke.
        detail: String,
    },
    /// A remote plugin's server refused the connection because it serves as many
    /// clients as it may; the call was not sent. Try again later or another server.
    Overloaded {
        /// What the server said.
        detail: String,
    },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Panicked { message } => write!(f, "the plugin panicked: {message}"),
            CallError::NotProvided { method, added_in, plugin_version } => write!(
                f,
                "`{method}` is not provided by this plugin (built against contract {plugin_version}; `{method}` was added in {added_in}); rebuild the plugin against the newer contract"
            ),
            CallError::Crashed { detail, .. } => write!(f, "the plugin's process crashed: {detail}"),
            CallError::TimedOut { deadline } => {
                write!(
                    f,
                    "the plugin did not answer within {deadline:?}; the call was given up and its process ended \
                     (isolated: killed; remote: the connection closed, and the server ends it)"
                )
            }
            CallError::Quarantined { crashes, window } => write!(
                f,
                "the plugin is quarantined: its process crashed {crashes} times within {window:?}, and is not started again"
            ),
            CallError::Channel { message } => {
                write!(
                    f,
                    "the channel to the plugin failed, or carried a message the other side cannot read: {message}"
                )
            }
            CallError::Answer(error) => write!(f, "the plugin's answer cannot be decoded: {error}"),
            CallError::Unavailable { detail } => {
                write!(f, "the plugin's server cannot be reached (the call was not sent): {detail}")
            }
            CallError::Disconnected { may_have_run: true, detail } => write!(
                f,
                "the connection to the plugin's server broke after the call was sent, so it may have run: {detail}; the next call reconnects"
            ),
            CallError::Disconnected { may_have_run: false, detail } => write!(
                f,
                "the connection to the plugin's server broke before the call was sent, so it did not run: {detail}; the next call reconnects"
            ),
            CallError::Overloaded { detail } => write!(
                f,
                "the plugin's server is serving all the clients it may (the call was not sent): {detail}; try again later"
            ),
            CallError::BadStatus(s) => {
                write!(f, "the plugin returned unknown status {s}; it is broken or was not built by tomada")
            }
        }
    }
}

impl std::error::Error for CallError {}

thread_local! {
    // `Cell` of a `Copy` value and `const` init: no TLS destructor is registered, so
    // it never keeps the plugin library from unloading.
    static PANIC_LOCATION: Cell<Option<&'static Location<'static>>> = const { Cell::new(None) };
}

/// Replaces this library's panic hook (each cdylib has its own copy of std, so this
/// affects only the plugin) with one that records where the panic happened instead
/// of printing: the message travels to the host as a [`CallError`], and the host
/// decides what to print.
#[doc(hidden)]
pub fn __install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let location = info.location().map(|l| {
                // `Location<'_>` borrows the file name from this library's rodata. It is
                // read back by `panic_message` on the same thread, within the same
                // `catch_unwind`, long before the library could be unloaded.
                // SAFETY: see above; only the lifetime is extended.
                unsafe { std::mem::transmute::<&Location<'_>, &'static Location<'static>>(l) }
            });
            PANIC_LOCATION.with(|c| c.set(location));
        }));
    });
}

/// Panics for a call through a tomada object that failed (the trait's methods
/// cannot return the error; inside a plugin the panic becomes the host's
/// [`CallError::Panicked`] for its outer call). A panic of the object's own code is
/// said to be the object's, not "the plugin's": the object may be the host's (a
/// callback the host lent or gave the plugin). Called by the generated clients.
#[doc(hidden)]
#[cold]
#[track_caller]
pub fn __object_call_failed(what: &str, error: CallError) -> ! {
    match error {
        CallError::Panicked { message } => {
            panic!("a call to `{what}` through a tomada object failed: the object's code panicked: {message}")
        }
        other => panic!("a call to `{what}` through a tomada object failed: {other}"),
    }
}

#[doc(hidden)]
pub fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    };
    // A payload's own `Drop` may panic: never let that escape.
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    match PANIC_LOCATION.with(|c| c.take()) {
        Some(l) => format!("{text} (at {}:{}:{})", l.file(), l.line(), l.column()),
        None => text,
    }
}

/// Runs `f` under `catch_unwind`; writes its result, converted for crossing, to
/// `out`, or the panic message to `panic`. Called by the generated shims.
///
/// # Safety
/// `out` and `panic` must be valid for writes.
#[doc(hidden)]
#[inline(always)]
pub unsafe fn __shim<R: Abi>(out: *mut R::Ffi, panic: *mut RVec, f: impl FnOnce() -> R) -> Status {
    match panic::catch_unwind(AssertUnwindSafe(|| f().into_ffi())) {
        Ok(v) => {
            // SAFETY: the caller guarantees `out` is writable.
            unsafe { out.write(v) };
            Status::OK
        }
        Err(payload) => {
            let message = RVec::from_vec(panic_message(payload).into_bytes());
            // SAFETY: the caller guarantees `panic` is writable.
            unsafe { panic.write(message) };
            Status::PANICKED
        }
    }
}

/// Turns what a shim wrote into the call's result, on the calling side.
///
/// # Safety
/// `status`, `out` and `panic` must come from a shim of the same method: `out` is
/// initialised if `status` is [`Status::OK`], `panic` for the other known statuses
/// (and then moved out of here: the caller must not read it again). `panic` is taken
/// by reference so that nothing of it is copied on the OK path.
#[doc(hidden)]
#[inline(always)]
pub unsafe fn __finish<R: Abi>(
    status: Status,
    out: MaybeUninit<R::Ffi>,
    panic: &MaybeUninit<RVec>,
) -> Result<R, CallError> {
    if status == Status::OK {
        // SAFETY: on OK the shim wrote `out` with a value of the same shape.
        Ok(unsafe { R::from_ffi(out.assume_init()) })
    } else {
        // SAFETY: as the caller guarantees, `panic` is initialised for the failed
        // statuses that carry a message.
        Err(unsafe { failed(status, panic) })
    }
}

/// The error for a shim's failed `status`. Out of line and cold, so that the caller's
/// OK case falls through (no taken branch on the way back from a call). `panic` is
/// taken by reference: by value, the caller copied its 24 bytes before testing the
/// status, on every call.
///
/// # Safety
/// As [`__finish`]: `panic` is initialised if `status` carries a message; it is read
/// (moved out) here, so the caller must not use it again.
#[cold]
#[inline(never)]
unsafe fn failed(status: Status, panic: &MaybeUninit<RVec>) -> CallError {
    if status.has_message() {
        // SAFETY: for every known failed status the shim wrote a message to `panic`;
        // the caller drops its `MaybeUninit` without reading it.
        let bytes = unsafe { panic.assume_init_read() }.into_vec();
        error(status, bytes)
    } else {
        CallError::BadStatus(status.0)
    }
}

/// As [`__finish`], for a shim whose result is already in its final form (an async
/// method's future).
///
/// # Safety
/// As [`__finish`].
#[doc(hidden)]
pub unsafe fn __finish_with<T>(status: Status, out: MaybeUninit<T>, panic: MaybeUninit<RVec>) -> Result<T, CallError> {
    if status == Status::OK {
        // SAFETY: on OK the shim wrote `out`.
        Ok(unsafe { out.assume_init() })
    } else {
        // SAFETY: as the caller guarantees.
        Err(unsafe { failed(status, &panic) })
    }
}

/// The error for a failed `status` with `message` bytes. Out of line: errors are rare.
#[cold]
#[inline(never)]
fn error(status: Status, message: Vec<u8>) -> CallError {
    let message = String::from_utf8(message).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    match status {
        Status::PANICKED => CallError::Panicked { message },
        Status::MALFORMED | Status::CANCELLED => CallError::Channel { message },
        Status(other) => CallError::BadStatus(other),
    }
}

/// The body of a plugin's `create_with` function (see [`export!`](crate::export)) for
/// export `name`: [`__create_export`] with the host's `context` readable by `make` (see [`crate::context()`]).
///
/// # Safety
/// `out` and `panic` must be valid for writes; `context` must be readable for the
/// call.
#[doc(hidden)]
pub unsafe fn __create_with<T: Send + Sync + 'static>(
    name: &'static str,
    out: *mut *const c_void,
    panic: *mut RVec,
    context: crate::ffi::RSlice,
    make: impl FnOnce() -> T,
) -> Status {
    // SAFETY: readable for the call (the caller's guarantee); copied before the call ends.
    let context = crate::context::Context::new(unsafe { context.as_bytes() });
    // SAFETY: as the caller guarantees.
    unsafe { __create_export(name, out, panic, || crate::context::with(context, make)) }
}

/// The body of a plugin's `create` function (see [`export!`](crate::export)) for
/// export `name`: what it logs while made, and every call of the instance, is
/// named after it (see [`crate::logging`]).
///
/// # Safety
/// `out` and `panic` must be valid for writes.
#[doc(hidden)]
pub unsafe fn __create_export<T: Send + Sync + 'static>(
    name: &'static str,
    out: *mut *const c_void,
    panic: *mut RVec,
    make: impl FnOnce() -> T,
) -> Status {
    let entered = crate::logging::__enter_named(name);
    // SAFETY: as the caller guarantees.
    let status = unsafe { __create(out, panic, make) };
    drop(entered);
    if status == Status::OK {
        // SAFETY: written on OK.
        crate::logging::register(unsafe { out.read() }, name);
    }
    status
}

/// The body of a plugin's `create` function, for a descriptor written by hand: as
/// [`__create_export`], but what the instance logs carries the library's first name
/// (see [`crate::logging`]).
///
/// # Safety
/// `out` and `panic` must be valid for writes.
#[doc(hidden)]
pub unsafe fn __create<T: Send + Sync + 'static>(
    out: *mut *const c_void,
    panic: *mut RVec,
    make: impl FnOnce() -> T,
) -> Status {
    __install_panic_hook();
    match panic::catch_unwind(AssertUnwindSafe(make)) {
        Ok(value) => {
            // SAFETY: the caller guarantees `out` is writable.
            unsafe { out.write(Box::into_raw(Box::new(value)).cast::<c_void>().cast_const()) };
            Status::OK
        }
        Err(payload) => {
            let message = RVec::from_vec(panic_message(payload).into_bytes());
            // SAFETY: the caller guarantees `panic` is writable.
            unsafe { panic.write(message) };
            Status::PANICKED
        }
    }
}

/// The body of a plugin's `destroy` function for export `name`: what the instance
/// logs while dropped is named after it.
///
/// # Safety
/// As [`__destroy`].
#[doc(hidden)]
pub unsafe fn __destroy_export<T>(name: &'static str, this: *const c_void, panic: *mut RVec) -> Status {
    let _entered = crate::logging::__enter_named(name);
    // SAFETY: as the caller guarantees.
    unsafe { __destroy::<T>(this, panic) }
}

/// The body of a plugin's `destroy` function.
///
/// # Safety
/// `this` must come from [`__create::<T>`] and not have been destroyed; `panic` must
/// be valid for writes.
#[doc(hidden)]
pub unsafe fn __destroy<T>(this: *const c_void, panic: *mut RVec) -> Status {
    crate::logging::unregister(this);
    // SAFETY: `this` was made by `Box::into_raw` in `__create::<T>` (caller's guarantee).
    let value = unsafe { Box::from_raw(this.cast::<T>().cast_mut()) };
    match panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
        Ok(()) => Status::OK,
        Err(payload) => {
            let message = RVec::from_vec(panic_message(payload).into_bytes());
            // SAFETY: the caller guarantees `panic` is writable.
            unsafe { panic.write(message) };
            Status::PANICKED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<R: Abi>(f: impl FnOnce() -> R) -> Result<R, CallError> {
        let mut out = MaybeUninit::<R::Ffi>::uninit();
        let mut panic = MaybeUninit::<RVec>::uninit();
        // SAFETY: both pointers are writable locals.
        let status = unsafe { __shim(out.as_mut_ptr(), panic.as_mut_ptr(), f) };
        // SAFETY: written by `__shim` just now.
        unsafe { __finish(status, out, &panic) }
    }

    #[test]
    fn values_come_back() {
        assert_eq!(call(|| String::from("Olá")), Ok("Olá".to_owned()));
        assert_eq!(call(|| 5u64), Ok(5));
    }

    #[test]
    fn a_failed_object_call_says_whose_code_panicked() {
        let caught = std::panic::catch_unwind(|| {
            __object_call_failed("Host::config", CallError::Panicked { message: "host callback panic".into() })
        });
        let message = panic_message(caught.unwrap_err());
        assert!(
            message.starts_with(
                "a call to `Host::config` through a tomada object failed: the object's code panicked: host callback panic"
            ),
            "{message}"
        );
        assert!(!message.contains("the plugin panicked"), "{message}");
        let caught = std::panic::catch_unwind(|| {
            __object_call_failed("Cursor::next", CallError::Quarantined { crashes: 3, window: Duration::from_secs(60) })
        });
        let message = panic_message(caught.unwrap_err());
        assert!(message.starts_with("a call to `Cursor::next` through a tomada object failed: "), "{message}");
    }

    #[test]
    fn panics_become_errors_with_location() {
        __install_panic_hook();
        let err = call::<String>(|| panic!("boom {}", 42)).unwrap_err();
        let CallError::Panicked { message } = err else { panic!("wrong variant") };
        assert!(message.starts_with("boom 42 (at "), "{message}");
        assert!(message.contains("call.rs"), "{message}");
        let err = call::<u8>(|| std::panic::panic_any(7u32)).unwrap_err();
        assert!(matches!(err, CallError::Panicked { message } if message.starts_with("Box<dyn Any>")));
    }

    #[test]
    fn unknown_status_is_an_error() {
        let out = MaybeUninit::<u8>::uninit();
        let panic = MaybeUninit::<RVec>::uninit();
        // SAFETY: neither buffer is read for an unknown status.
        let r = unsafe { __finish::<u8>(Status(9), out, &panic) };
        assert_eq!(r, Err(CallError::BadStatus(9)));
    }

    #[test]
    fn create_and_destroy() {
        let mut out = MaybeUninit::<*const c_void>::uninit();
        let mut panic = MaybeUninit::<RVec>::uninit();
        // SAFETY: writable locals.
        let s = unsafe { __create(out.as_mut_ptr(), panic.as_mut_ptr(), || String::from("instance")) };
        assert_eq!(s, Status::OK);
        // SAFETY: written on OK.
        let this = unsafe { out.assume_init() };
        // SAFETY: `this` is a live `String` made by `__create`.
        assert_eq!(unsafe { &*this.cast::<String>() }, "instance");
        // SAFETY: made by `__create::<String>`, destroyed once.
        let s = unsafe { __destroy::<String>(this, panic.as_mut_ptr()) };
        assert_eq!(s, Status::OK);

        // SAFETY: writable locals.
        let s = unsafe { __create::<String>(out.as_mut_ptr(), panic.as_mut_ptr(), || panic!("no config")) };
        assert_eq!(s, Status::PANICKED);
        // SAFETY: written on PANICKED.
        let msg = unsafe { panic.assume_init() }.into_vec();
        assert!(String::from_utf8(msg).unwrap().starts_with("no config"));
    }
}
