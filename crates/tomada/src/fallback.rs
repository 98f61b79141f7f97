//! Host side of a default body run for a plugin that predates its method (see
//! `#[tomada::contract]`'s default bodies and `docs/evolution.md`).

use std::panic::{self, AssertUnwindSafe};

use crate::CallError;

/// Runs the fallback body of method `method`; a panic in it — its own, or a failed
/// call of the plugin's other methods (see [`fallback_failed`]) — is the call's error.
///
/// # Errors
/// [`CallError::Panicked`] with the panic's message.
pub fn fallback<R>(method: &'static str, f: impl FnOnce() -> R) -> Result<R, CallError> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| CallError::Panicked {
        message: format!("the host-side default of `{method}` failed: {}", crate::call::panic_message(payload)),
    })
}

/// A call of the plugin made by a fallback body failed: the body (written against the
/// trait, whose methods cannot fail) stops here, and [`fallback`] reports it.
#[cold]
pub fn fallback_failed(what: &str, error: CallError) -> ! {
    panic::panic_any(format!("its call to `{what}` failed: {error}"))
}
