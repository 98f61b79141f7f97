//! Which allocator owns a buffer that crosses the boundary.
//!
//! Buffers at the boundary belong to [`std::alloc::System`] (see [`crate::ffi`]). A
//! side whose global allocator is [`SystemAlloc`] can hand its own `String`s and
//! `Vec<u8>`s across and adopt the other side's without copying; any other global
//! allocator (jemalloc, mimalloc, ...) still works, at the price of one copy per
//! owned value. `tomada::export!` installs [`SystemAlloc`] in every plugin; a host
//! opts in with [`global_allocator!`](crate::global_allocator).
//!
//! Rust cannot ask which global allocator is installed, so [`SystemAlloc`] records
//! that it has been called: once it has, it *is* the global allocator, because its
//! only constructor is `unsafe` and reserved for that macro.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// [`System`], recording that it is this binary's global allocator.
///
/// Install it with [`global_allocator!`](crate::global_allocator), never by hand.
#[derive(Debug)]
pub struct SystemAlloc(());

impl SystemAlloc {
    /// Makes the allocator.
    ///
    /// # Safety
    /// The value must only ever be used as the `#[global_allocator]`: calling it
    /// directly would make this side believe its `Vec`s live in `System` memory.
    #[doc(hidden)]
    pub const unsafe fn __new() -> Self {
        SystemAlloc(())
    }
}

// SAFETY: every method forwards to `System`, which upholds `GlobalAlloc`'s contract;
// the flag store has no effect on the memory handed out.
unsafe impl GlobalAlloc for SystemAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        mark_active();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        mark_active();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[inline]
fn mark_active() {
    // A load first: after the first allocation the cache line stays shared.
    if !ACTIVE.load(Ordering::Relaxed) {
        ACTIVE.store(true, Ordering::Relaxed);
    }
}

/// Whether this binary's global allocator is [`SystemAlloc`].
#[inline(always)]
pub fn global_is_system() -> bool {
    ACTIVE.load(Ordering::Relaxed) || probe()
}

/// Nothing may have been allocated yet: allocate once through the global allocator
/// and look again.
#[cold]
#[inline(never)]
fn probe() -> bool {
    drop(std::hint::black_box(Box::new(0u8)));
    ACTIVE.load(Ordering::Relaxed)
}

/// Installs [`SystemAlloc`] as this binary's `#[global_allocator]`, so `String`s and
/// `Vec<u8>`s cross the plugin boundary without being copied.
///
/// Plugins get it from `tomada::export!`; a host may call it once at the top level of
/// its binary crate. It is a compile error next to another `#[global_allocator]`;
/// such a host still works, with one copy per owned value crossing the boundary.
///
/// ```
/// tomada::global_allocator!();
/// fn main() {
///     assert!(tomada::alloc::global_is_system());
/// }
/// ```
#[macro_export]
macro_rules! global_allocator {
    () => {
        #[global_allocator]
        // SAFETY: used only as the global allocator, as `SystemAlloc::__new` requires.
        static __TOMADA_GLOBAL_ALLOCATOR: $crate::SystemAlloc = unsafe { $crate::SystemAlloc::__new() };
    };
}
