//! Host side of a default body run for a plugin that predates its method (see
//! `#[tomada::contract]`'s default bodies and `docs/evolution.md`).

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::CallError;
use crate::future::BoxFuture;

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

/// The future of an `async` method's fallback body (see [`fallback`]): its output, or
/// [`CallError::Panicked`] if a poll of it panics.
///
/// Hand-written rather than `futures`' `catch_unwind`: tomada depends on no executor
/// crate, and this is one `catch_unwind` around one `poll`.
pub fn fallback_async<'a, R: 'a>(method: &'static str, body: BoxFuture<'a, R>) -> BoxFuture<'a, Result<R, CallError>> {
    Box::pin(Fallback { method, body: Some(body) })
}

/// See [`fallback_async`].
struct Fallback<'a, R> {
    method: &'static str,
    /// `None` once it completed or panicked (it is not polled again).
    body: Option<BoxFuture<'a, R>>,
}

impl<R> Future for Fallback<'_, R> {
    type Output = Result<R, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Fallback` is `Unpin` (its future is boxed).
        let this = self.get_mut();
        let Some(body) = this.body.as_mut() else { panic!("a tomada fallback future was polled after it completed") };
        match panic::catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => {
                this.body = None;
                Poll::Ready(Ok(value))
            }
            Err(payload) => {
                // A future that panicked is not polled again; dropping it may panic
                // too, which must not unwind out of this poll.
                if let Some(body) = this.body.take() {
                    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(body)));
                }
                let message = crate::call::panic_message(payload);
                Poll::Ready(Err(CallError::Panicked {
                    message: format!("the host-side default of `{}` failed: {message}", this.method),
                }))
            }
        }
    }
}

/// A call of the plugin made by a fallback body failed: the body (written against the
/// trait, whose methods cannot fail) stops here, and [`fallback`] reports it.
#[cold]
pub fn fallback_failed(what: &str, error: CallError) -> ! {
    panic::panic_any(format!("its call to `{what}` failed: {error}"))
}
