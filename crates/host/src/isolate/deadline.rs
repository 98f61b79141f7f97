//! Deadlines for a scope of calls: [`with_deadline`].

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    /// The deadline of the innermost [`with_deadline`] scope on this thread, and the
    /// time it was given (what a call past it reports).
    static SCOPE: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
}

/// Runs `f` with a deadline `timeout` from now for every call it makes, on this
/// thread, to an isolated or remote plugin: a shorter deadline than the plugin's own
/// ([`Isolation::deadline`](super::Isolation::deadline),
/// `Remote::deadline` with the `remote` feature), for one call or several.
///
/// - **One budget for the scope**: the calls share it (three calls in a 200 ms scope
///   take 200 ms in all, not each), as a deadline, not a per-call timeout.
/// - **It only shortens**: a call's deadline is the earliest of the plugin's own and
///   every enclosing scope's, so a library cannot give itself more time than its
///   caller's scope left.
/// - **Past it**, a call fails with [`CallError::TimedOut`](crate::CallError::TimedOut)
///   carrying `timeout`, as past the plugin's own deadline: the plugin's process is
///   ended (isolated: killed, and counted towards its crash budget, as any call past
///   its deadline; remote: the connection is closed, and the server ends the
///   process). A call made once the scope's time is already spent fails at once,
///   without being sent (nothing is ended).
/// - **Remote calls** carry the time left to it (not a clock time: the machines'
///   clocks need not agree), so the server also ends a call its caller gave up on,
///   even if the host vanished without closing its connection.
/// - Async calls take the deadline of the scope they are *made* in (when the method
///   is called), not of where the future is polled.
/// - Calls to in-process plugins cannot be stopped midway: the scope does not apply
///   to them.
///
/// ```no_run
/// use std::time::Duration;
/// use pluginapi::Greeter;
/// use tomada_host::isolate::{Isolation, Mode, with_deadline};
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     tomada_host::isolate::serve_if_runner();
///     let plugin = tomada_host::load_with::<dyn Greeter>("bin/greeter_v1.so", &Mode::Isolated(Isolation::new()))?;
///     // This call may take 50 ms, not the plugin's 30 s.
///     let hello = with_deadline(Duration::from_millis(50), || plugin.greet("Mundo"))?;
///     // These two share 200 ms.
///     let both = with_deadline(Duration::from_millis(200), || -> Result<_, tomada_host::CallError> {
///         Ok((plugin.greet("a")?, plugin.greet("b")?))
///     })?;
///     println!("{hello} {both:?}");
///     Ok(())
/// }
/// ```
pub fn with_deadline<R>(timeout: Duration, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<(Instant, Duration)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPE.with(|s| s.set(self.0));
        }
    }
    let now = Instant::now();
    // (A timeout too large for the clock is no deadline of its own.)
    let mine = now.checked_add(timeout).map(|at| (at, timeout));
    let outer = SCOPE.with(Cell::get);
    let scope = match (outer, mine) {
        (Some(o), Some(m)) if o.0 <= m.0 => Some(o),
        (_, Some(m)) => Some(m),
        (o, None) => o,
    };
    let _restore = Restore(SCOPE.with(|s| s.replace(scope)));
    f()
}

/// Runs `f` outside any [`with_deadline`] scope: for what the host does on its own
/// account (dropping a plugin's instance), not the caller's.
pub(crate) fn unscoped<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<(Instant, Duration)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPE.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SCOPE.with(|s| s.replace(None)));
    f()
}

/// The time left to a call made now with the plugin's deadline `own` (see
/// [`for_call`]): what a reconnection made for that call may take.
#[cfg(all(target_os = "linux", feature = "remote"))]
pub(crate) fn left(own: Duration) -> Duration {
    for_call(own).0.saturating_duration_since(Instant::now())
}

/// A call's deadline: `own` (the plugin's deadline) from now, or the enclosing
/// scope's if earlier; and the time a call past it reports.
pub(crate) fn for_call(own: Duration) -> (Instant, Duration) {
    let now = Instant::now();
    let mine = now.checked_add(own).unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
    match SCOPE.with(Cell::get) {
        Some((at, given)) if at < mine => (at, given),
        _ => (mine, own),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_shortens_and_nested_scopes_only_shorten_more() {
        let own = Duration::from_secs(30);
        let (at, given) = for_call(own);
        assert_eq!(given, own);
        assert!(at > Instant::now() + Duration::from_secs(29));
        with_deadline(Duration::from_secs(1), || {
            assert_eq!(for_call(own).1, Duration::from_secs(1));
            // An inner scope asking for more does not get it.
            with_deadline(Duration::from_secs(10), || assert_eq!(for_call(own).1, Duration::from_secs(1)));
            with_deadline(Duration::from_millis(5), || assert_eq!(for_call(own).1, Duration::from_millis(5)));
            // The plugin's own deadline, when shorter, stays.
            assert_eq!(for_call(Duration::from_millis(1)).1, Duration::from_millis(1));
            // Another thread has no scope.
            std::thread::spawn(move || assert_eq!(for_call(own).1, own)).join().unwrap();
        });
        assert_eq!(for_call(own).1, own, "the scope ended");
        with_deadline(Duration::from_secs(1), || {
            unscoped(|| assert_eq!(for_call(own).1, own, "outside the scope"));
            assert_eq!(for_call(own).1, Duration::from_secs(1), "back in it");
        });
        // A panic leaves no scope behind.
        let _ = std::panic::catch_unwind(|| with_deadline(Duration::ZERO, || panic!("out")));
        assert_eq!(for_call(own).1, own);
    }
}
