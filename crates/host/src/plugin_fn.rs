//! Every call tomada-host makes through a plugin's own function pointers — its
//! constructor, its destructor, and its dispatch function (isolated mode) — lives
//! here: the few places where host code jumps into plugin code by a pointer read from
//! the plugin's descriptor. (Calls through a contract's vtable are made by the
//! generated client, in `tomada::__private::client`.)

use std::ffi::c_void;
use std::mem::MaybeUninit;

#[cfg(any(unix, windows))]
use tomada::__private::client::DispatchFn;
use tomada::__private::descriptor::{CreateFn, CreateWithFn, DestroyFn};
use tomada::__private::ffi::{RSlice, RVec, Status};

/// What a plugin's constructor did.
pub(crate) enum Created {
    /// The new instance.
    Instance(*const c_void),
    /// The constructor panicked, with this message.
    Panicked(String),
    /// It returned a status a constructor never returns.
    BadStatus,
}

/// Makes the plugin's instance, handing its constructor `context` (see
/// `tomada::context`) if the plugin takes one (`create_with`), else with `create`.
///
/// # Safety
/// `create` and `create_with` are the constructors of a loaded plugin whose
/// descriptor was checked against the file inspected, and its library stays loaded
/// while they run.
pub(crate) unsafe fn create(create: CreateFn, create_with: Option<CreateWithFn>, context: &[u8]) -> Created {
    let mut this = MaybeUninit::<*const c_void>::uninit();
    let mut panic = MaybeUninit::<RVec>::uninit();
    let status = match create_with {
        // SAFETY: the caller vouches for `create_with`; `this` and `panic` are
        // writable, and `context` is readable for the call.
        Some(create_with) => unsafe { create_with(this.as_mut_ptr(), panic.as_mut_ptr(), RSlice::new(context)) },
        // SAFETY: the caller vouches for `create`; `this` and `panic` are writable.
        None => unsafe { create(this.as_mut_ptr(), panic.as_mut_ptr()) },
    };
    match status {
        // SAFETY: written on OK.
        Status::OK => Created::Instance(unsafe { this.assume_init() }),
        Status::PANICKED => {
            // SAFETY: written on PANICKED.
            let message = unsafe { panic.assume_init() }.into_vec();
            Created::Panicked(String::from_utf8_lossy(&message).into_owned())
        }
        _ => Created::BadStatus,
    }
}

/// Drops the plugin's instance. A panic in the plugin's `Drop` has nowhere to go from
/// here: its message is freed.
///
/// # Safety
/// `destroy` is the destructor of the loaded plugin that made `this` with its
/// constructor; `this` is destroyed once, and never used again.
pub(crate) unsafe fn destroy(destroy: DestroyFn, this: *const c_void) {
    let mut panic = MaybeUninit::<RVec>::uninit();
    // SAFETY: the caller vouches for `destroy` and `this`; `panic` is writable.
    if unsafe { destroy(this, panic.as_mut_ptr()) } == Status::PANICKED {
        // SAFETY: written on PANICKED.
        drop(unsafe { panic.assume_init() });
    }
}

/// Calls method number `method` of the instance `this` with its encoded arguments:
/// the status, and the encoded result (on OK; a byte string's bytes alone on
/// `Status::BYTES`, if `method` asked for them), the failure's message (for a status
/// that has one) or nothing.
///
/// # Safety
/// `dispatch` is the dispatch function of the loaded plugin that made `this`, which
/// is alive.
#[cfg(any(unix, windows))] // the runner of isolated plugins
pub(crate) unsafe fn dispatch(dispatch: DispatchFn, this: *const c_void, method: u32, args: &[u8]) -> (Status, RVec) {
    let mut out = MaybeUninit::<RVec>::uninit();
    // SAFETY: the caller's guarantees, and a fresh `out`.
    unsafe { dispatch_into(dispatch, this, method, args, &mut out) }
}

/// [`dispatch`] writing its answer to the caller's `out`, whose address names the call
/// (an async call is cancelled by that address: `tomada::future::CANCEL_METHOD`).
///
/// # Safety
/// As [`dispatch`].
#[cfg(any(unix, windows))]
pub(crate) unsafe fn dispatch_into(
    dispatch: DispatchFn,
    this: *const c_void,
    method: u32,
    args: &[u8],
    out: &mut MaybeUninit<RVec>,
) -> (Status, RVec) {
    let mut panic = MaybeUninit::<RVec>::uninit();
    // SAFETY: the caller vouches for `dispatch` and `this`; the arguments live for the
    // call; `out` and `panic` are writable.
    let status = unsafe { dispatch(this, method, RSlice::new(args), out.as_mut_ptr(), panic.as_mut_ptr()) };
    // `Status::BYTES` is an answer only to a method number that asked for it; to any
    // other it is an unknown status, whose `out` may never have been written (a
    // hand-written or broken dispatch function): an error, nothing read.
    let asked = method != tomada::future::CANCEL_METHOD && tomada::client::answer_form(method).1;
    if status == Status::BYTES && !asked {
        let message =
            "the plugin answered with a byte string's bytes alone (status 5) a call that did not ask for them";
        return (Status::MALFORMED, RVec::from_vec(message.as_bytes().to_vec()));
    }
    let body = if status == Status::OK || status == Status::BYTES {
        // SAFETY: written on OK, and on BYTES to a method that asked for it (above).
        unsafe { out.assume_init_read() }
    } else if status.has_message() {
        // SAFETY: written for every failed status that has a message.
        unsafe { panic.assume_init() }
    } else {
        RVec::new()
    };
    (status, body)
}

/// Hands the plugin this host's services (its logger) and the plugin's own name.
///
/// # Safety
/// `attach` is the attach function of a loaded plugin whose descriptor was checked, and
/// its library stays loaded while it runs; `services` and `name` live as long as the
/// library (a static of this host, a slice of the plugin's own manifest static).
pub(crate) unsafe fn attach(
    attach: tomada::__private::logging::AttachFn,
    services: *const tomada::__private::logging::HostServices,
    name: &[u8],
) {
    // SAFETY: the caller vouches for `attach`, `services` and `name`.
    unsafe { attach(services, RSlice::new(name)) };
}

#[cfg(all(test, any(unix, windows)))]
mod tests {
    use super::*;

    /// A broken (or hand-written) dispatch function: answers `Status::BYTES` to
    /// anything, writing nothing.
    unsafe extern "C" fn bytes_unasked(_: *const c_void, _: u32, _: RSlice, _: *mut RVec, _: *mut RVec) -> Status {
        Status::BYTES
    }

    /// `Status::BYTES` to a call that did not ask for the bytes alone is an error
    /// value, and its `out` (never written) is not read.
    #[test]
    fn bytes_alone_unasked_is_an_error_and_nothing_is_read() {
        for method in [0, 7, tomada::future::CANCEL_METHOD] {
            // SAFETY: the dispatch function above reads and writes nothing.
            let (status, body) = unsafe { dispatch(bytes_unasked, std::ptr::null(), method, &[]) };
            assert_eq!(status, Status::MALFORMED, "method {method}");
            let message = String::from_utf8(body.into_vec()).unwrap();
            assert!(message.contains("did not ask"), "{message}");
        }
    }
}
