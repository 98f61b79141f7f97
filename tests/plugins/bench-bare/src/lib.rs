//! Fixture: the floor for `call/greet` in `crates/host/benches/boundary.rs`. The same
//! body as the greeter plugin, `format!("Olá, {name} 👋")`, behind a hand-written
//! C ABI with no tomada at all: no panic catching, no status, no `Result`.
//!
//! The returned string is a [`std::alloc::System`] allocation (a cdylib's default
//! global allocator is `System`), so a caller whose global allocator is also
//! `System` adopts it with `String::from_raw_parts` and frees it itself.

use std::mem::ManuallyDrop;

/// Writes `format!("Olá, {name} 👋")` to `out_ptr`/`out_len`/`out_cap` (the parts of
/// a `String` allocated by `System`, which the caller now owns).
///
/// # Safety
/// `name_ptr`/`name_len` must be a live UTF-8 string; the three out-pointers must be
/// valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bench_bare_greet(
    name_ptr: *const u8,
    name_len: usize,
    out_ptr: *mut *mut u8,
    out_len: *mut usize,
    out_cap: *mut usize,
) {
    // SAFETY: the caller passes a live UTF-8 string.
    let name = unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(name_ptr, name_len)) };
    let mut greeting = ManuallyDrop::new(format!("Olá, {name} 👋"));
    // SAFETY: the caller passes writable out-pointers.
    unsafe {
        out_ptr.write(greeting.as_mut_ptr());
        out_len.write(greeting.len());
        out_cap.write(greeting.capacity());
    }
}
