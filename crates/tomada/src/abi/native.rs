//! Zero-conversion records: when a `Vec<T>` crosses in-process as its own buffer.
//!
//! A type whose [`Abi::native`](super::Abi::native) is `true` (integers, `String`,
//! `Vec`/`Option`/`Box` of such types, and `#[derive(tomada::Abi)]` structs and enums
//! made only of such types, with no `#[tomada(since = N)]` field and not
//! `#[tomada(open)]`) has a Rust layout that is the same on both sides *when both
//! were built by the same compiler for the same target*: the same description (the
//! contract's fingerprint, checked at load) compiled by the same `rustc` gives the same
//! layout, down to `String`'s words and `Option`'s niches. A `Vec` of such a type then
//! crosses as the vector's buffer, untouched: no element is converted on either side
//! (marked as such in its [`RSeq`](crate::ffi::RSeq)), and the receiving side adopts
//! the buffer, the strings and vectors inside included, as its own.
//!
//! That needs proof, so it is off unless both sides establish it:
//!
//! * the **host** compares each plugin's manifest (`rustc --version`, target, and the
//!   [`NATIVE_RECORDS`](crate::descriptor::flags::NATIVE_RECORDS) flag saying its
//!   tomada reads native sequences) with its own when it loads it in-process
//!   ([`admit`]); one plugin that differs turns native sequences off in this process
//!   for good (it may be handed objects of any other plugin);
//! * the **plugin** sends native sequences only if the host said, when it attached
//!   the plugin ([`HostServices`](crate::logging::HostServices)' extension), that it
//!   has this very layout identity ([`IDENTITY`]) and `SystemAlloc` as its global
//!   allocator (the receiving side adopts and frees the buffers).
//!
//! Every sender also needs its own global allocator to be `SystemAlloc`. Everything
//! else (another compiler, another allocator, an older tomada, an isolated plugin)
//! converts element by element, in place, as before.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};

/// What both sides must share for native sequences: the compiler (with its commit),
/// the target, and this module's protocol version.
pub const IDENTITY: &str = concat!(env!("TOMADA_RUSTC_VERSION"), "\n", env!("TOMADA_TARGET"), "\nnative sequences 1");

/// Set once a peer was seen whose layout is not proven to be ours; never cleared.
/// Public only so a host can point its plugins at it
/// ([`HostServicesExt::refused`](crate::logging::HostServicesExt::refused)).
#[doc(hidden)]
pub static REFUSED: AtomicBool = AtomicBool::new(false);

/// In a plugin: the host's [`REFUSED`] (null until attached, or if the host has none).
/// An object of this plugin may be handed to another plugin the host loaded, which
/// this plugin never sees: once the host has loaded one whose layout differs, this
/// plugin sends no native sequence either.
static HOST_REFUSED: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());

/// Whether this side may send native sequences now. `false` once any peer's layout was
/// not proven the same, here or (in a plugin) in the host (see the module's
/// documentation).
#[inline(always)]
pub fn enabled() -> bool {
    if REFUSED.load(Ordering::Relaxed) {
        return false;
    }
    let host = HOST_REFUSED.load(Ordering::Relaxed);
    // SAFETY: null, or the host's `REFUSED` static (`attached`), which outlives this
    // library.
    host.is_null() || !unsafe { &*host }.load(Ordering::Relaxed)
}

/// Turns native sequences off in this process, for good.
#[cold]
pub fn refuse() {
    REFUSED.store(true, Ordering::Relaxed);
}

/// Host side, before a plugin is opened in this process: keeps native sequences on
/// only if the plugin was built by the same compiler for the same target and reads
/// them (its manifest's `rustc`, `target` and flags).
pub fn admit(rustc: &str, target: &str, flags: u32) {
    let same = rustc == crate::RUSTC_VERSION
        && target == crate::TARGET
        && flags & crate::descriptor::flags::NATIVE_RECORDS != 0
        && !rustc.contains("unknown version");
    if !same {
        refuse();
    }
}

/// Plugin side, when attached: `host` is what the host said its identity is (empty
/// if it offers no native sequences, or predates them), `refused` its [`REFUSED`].
///
/// # Safety
/// `refused` must be null or the host's `REFUSED`, alive as long as this library.
pub(crate) unsafe fn attached(host: &[u8], refused: *const AtomicBool) {
    if host != IDENTITY.as_bytes() || IDENTITY.contains("unknown version") || refused.is_null() {
        refuse();
        return;
    }
    HOST_REFUSED.store(refused.cast_mut(), Ordering::Relaxed);
}

/// [`resolve`]'s states: not known yet, being worked out (on the thread holding
/// [`RESOLVING`]), known.
const UNKNOWN: u8 = 0;
const PENDING: u8 = 1;
const YES: u8 = 2;
const NO: u8 = 3;

/// Held while a derived type's [`Abi::native`](super::Abi::native) is worked out.
static RESOLVING: Mutex<()> = Mutex::new(());

thread_local! {
    /// How deep this thread is in [`resolve`] (0: not resolving).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// A derived type's `native()`: `fields` (whether all its fields are native), worked
/// out once and kept in the type's own `state`.
///
/// Recursive types (`Option<Box<Entry>>` inside `Entry`) meet themselves while their
/// answer is being worked out: that inner question is answered "yes" (a cycle adds no
/// type that is not native), and only the outermost answer, or a "no" (never made by
/// that assumption), is kept; one thread works answers out at a time.
#[inline(always)]
pub fn resolve(state: &AtomicU8, fields: impl FnOnce() -> bool) -> bool {
    match state.load(Ordering::Acquire) {
        YES => true,
        NO => false,
        _ => resolve_slow(state, fields),
    }
}

#[cold]
#[inline(never)]
fn resolve_slow(state: &AtomicU8, fields: impl FnOnce() -> bool) -> bool {
    let depth = DEPTH.with(Cell::get);
    // The outermost question takes the lock; nested ones (on this thread) hold it.
    let _lock = (depth == 0).then(|| RESOLVING.lock().unwrap_or_else(|e| e.into_inner()));
    match state.load(Ordering::Acquire) {
        YES => return true,
        NO => return false,
        // This thread is working it out, further up: a cycle.
        PENDING => return true,
        _ => {}
    }
    state.store(PENDING, Ordering::Relaxed);
    /// Restores this thread's depth, and forgets a question left pending by a panic.
    struct Leave<'a>(&'a AtomicU8, u32);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(self.1));
            let _ = self.0.compare_exchange(PENDING, UNKNOWN, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
    let _leave = Leave(state, depth);
    DEPTH.with(|d| d.set(depth + 1));
    let answer = fields();
    // Under a cycle's assumption, only "no" is certain; the outermost answer is.
    let keep = match (answer, depth) {
        (false, _) => NO,
        (true, 0) => YES,
        (true, _) => UNKNOWN,
    };
    state.store(keep, Ordering::Release);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_names_compiler_and_target() {
        assert!(IDENTITY.starts_with(crate::RUSTC_VERSION));
        assert!(IDENTITY.contains(crate::TARGET));
    }
}
