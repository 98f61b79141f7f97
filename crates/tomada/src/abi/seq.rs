//! Sequences: how a `Vec<T>` (and every collection built on it) crosses.
//!
//! In-process, a `Vec<T>` crosses as an [`RSeq<T::Ffi>`](RSeq). When this side's
//! global allocator is [`SystemAlloc`](crate::SystemAlloc) and `T::Ffi` fits in `T`'s
//! slot, the elements are converted *in place*, in the `Vec`'s own buffer, and the
//! receiving side converts them back in place and adopts the buffer as its `Vec`: a
//! `Vec<String>` of any length crosses with no allocation at all, and a `Vec` of plain
//! numbers without touching its elements. Otherwise (another global allocator, or
//! element layouts that differ between the two compilers) the elements are moved
//! through a new [`System`](std::alloc::System) buffer, still without copying any
//! string or byte buffer they own.
//!
//! When both sides are proven to lay `T` out the same way ([`super::native`]), a
//! `Vec<T>` of a [native](super::Abi::native) `T` crosses as its buffer, marked
//! native, and no element is touched on either side: a `Vec<Entry>` of records with
//! strings, vectors and boxes inside costs what a `Vec<u64>` does.

use std::mem::{ManuallyDrop, align_of, size_of};
use std::ptr::NonNull;

use super::{Abi, native};
use crate::alloc::global_is_system;
use crate::ffi::RSeq;
use crate::wire::{Reader, WireError};

/// Whether a `T` slot can hold a `T::Ffi` in place.
const fn fits_in_place<T: Abi>() -> bool {
    size_of::<T::Ffi>() != 0 && size_of::<T::Ffi>() <= size_of::<T>() && align_of::<T::Ffi>() <= align_of::<T>()
}

/// `Vec<T>` → `RSeq<T::Ffi>` for `Vec<T>`'s own `into_ffi`: the buffer as it is
/// (native) when both sides' layouts were proven the same, else [`vec_into_ffi`].
#[inline(always)]
pub(crate) fn vec_into_ffi_native<T: Abi>(vec: Vec<T>) -> RSeq<T::Ffi> {
    if !T::PLAIN && size_of::<T>() != 0 && vec.capacity() != 0 && T::native() && native::enabled() && global_is_system()
    {
        let mut vec = ManuallyDrop::new(vec);
        let (ptr, len, cap) = (vec.as_mut_ptr(), vec.len(), vec.capacity());
        // SAFETY: the buffer is a `System` allocation (the global allocator is
        // `SystemAlloc`) of `cap * size_of::<T>()` (non-zero) bytes aligned to
        // `align_of::<T>()`, holding `len` initialised `T`s, now owned by the sequence;
        // only the peer's `Vec<T>::from_ffi` takes them out (`vec_from_ffi_native`).
        unsafe {
            RSeq::from_native_parts(NonNull::new_unchecked(ptr.cast()), len, cap * size_of::<T>(), align_of::<T>())
        }
    } else {
        vec_into_ffi(vec)
    }
}

/// `RSeq<T::Ffi>` → `Vec<T>` for `Vec<T>`'s own `from_ffi`: adopts a native
/// sequence's buffer as it is, else [`vec_from_ffi`].
///
/// # Safety
/// As [`vec_from_ffi`]: `seq` was made by the peer's `Vec<T>::into_ffi` of a type
/// with the same description (and, if native, the same layout: the sender's proof).
#[inline(always)]
pub(crate) unsafe fn vec_from_ffi_native<T: Abi>(seq: RSeq<T::Ffi>) -> Vec<T> {
    if !seq.is_native() {
        // SAFETY: the caller's guarantee.
        return unsafe { vec_from_ffi(seq) };
    }
    let (ptr, len, size, align) = seq.into_raw_parts();
    let slot = size_of::<T>();
    if slot == 0
        || size == 0
        || align != align_of::<T>()
        || size % slot != 0
        || size / slot < len
        || !global_is_system()
        || !T::native()
    {
        native_broken();
    }
    // SAFETY: the sender proved (see `super::native`) that its `T` is laid out as
    // ours and that both sides allocate with `System`; so this is a `System`
    // allocation of `size` bytes aligned for `T` (checked), i.e.
    // `Layout::array::<T>(size / slot)`, holding `len` initialised `T`s whose own
    // buffers are `System` allocations too.
    unsafe { Vec::from_raw_parts(ptr.as_ptr().cast::<T>(), len, size / slot) }
}

/// A native sequence whose layout is not this side's: the sender's proof was wrong.
/// Its buffer and elements leak; nothing of it is read.
#[cold]
#[inline(never)]
pub(crate) fn native_broken() -> ! {
    panic!(
        "tomada: a native sequence does not have this side's layout or allocator (a bug in tomada's layout check; please report it)"
    )
}

/// `Vec<T>` → `RSeq<T::Ffi>`, in place where it can be.
#[inline(always)]
pub(crate) fn vec_into_ffi<T: Abi>(vec: Vec<T>) -> RSeq<T::Ffi> {
    if fits_in_place::<T>() && vec.capacity() != 0 && global_is_system() {
        let mut vec = ManuallyDrop::new(vec);
        let (ptr, len, cap) = (vec.as_mut_ptr(), vec.len(), vec.capacity());
        if !T::PLAIN {
            for i in 0..len {
                // SAFETY: slot `i` holds an initialised `T`, read once; its `Ffi` is
                // written at an offset no greater than its own (`T::Ffi` is no larger
                // and no more aligned than `T`), so it overwrites only element `i` or
                // earlier, already consumed. A panic here leaks the buffer, nothing worse.
                unsafe {
                    let value = ptr.add(i).read();
                    ptr.cast::<T::Ffi>().add(i).write(value.into_ffi());
                }
            }
        }
        // SAFETY: the buffer is a `System` allocation (the global allocator is
        // `SystemAlloc`) of `cap * size_of::<T>()` bytes aligned to `align_of::<T>()`,
        // holding `len` initialised `T::Ffi`s (aligned: `align_of::<T::Ffi>()` divides
        // `align_of::<T>()`), now owned by the `RSeq`.
        unsafe { RSeq::from_raw_parts(NonNull::new_unchecked(ptr.cast()), len, cap * size_of::<T>(), align_of::<T>()) }
    } else {
        vec_into_ffi_moved(vec)
    }
}

#[inline(never)]
fn vec_into_ffi_moved<T: Abi>(vec: Vec<T>) -> RSeq<T::Ffi> {
    let mut items = vec.into_iter();
    RSeq::collect(items.len(), || items.next().expect("an exact-size iterator").into_ffi())
}

/// `RSeq<T::Ffi>` → `Vec<T>`, in place where it can be.
///
/// # Safety
/// `seq` must have been made from a `Vec<T>` of a type with the same description.
#[inline(always)]
pub(crate) unsafe fn vec_from_ffi<T: Abi>(seq: RSeq<T::Ffi>) -> Vec<T> {
    let (ptr, len, size, align) = seq.into_raw_parts();
    let slot = size_of::<T>();
    if fits_in_place::<T>()
        && size != 0
        && align == align_of::<T>()
        && size % slot == 0
        && size / slot >= len
        && global_is_system()
    {
        let ptr = ptr.as_ptr();
        if !T::PLAIN {
            for i in (0..len).rev() {
                // SAFETY: element `i` is an initialised `T::Ffi` (the `RSeq` invariant),
                // read once; its `T` is written at `i * slot`, which overlaps only
                // elements `i` and later (already consumed, going backwards): elements
                // before `i` end at `i * size_of::<T::Ffi>() <= i * slot`. The buffer is
                // aligned for `T` (`align` checked) and large enough (`size` checked).
                unsafe {
                    let ffi = ptr.cast::<T::Ffi>().add(i).read();
                    ptr.cast::<T>().add(i).write(T::from_ffi(ffi));
                }
            }
        }
        // SAFETY: a `System` allocation of `size` bytes aligned to `align_of::<T>()`,
        // i.e. `Layout::array::<T>(size / slot)`, holding `len` initialised `T`s; this
        // side's `Vec` allocates with `System` too (`SystemAlloc`).
        unsafe { Vec::from_raw_parts(ptr.cast::<T>(), len, size / slot) }
    } else {
        // SAFETY: the parts came from `into_raw_parts` of a live `RSeq`.
        let seq = unsafe { RSeq::<T::Ffi>::from_raw_parts(ptr, len, size, align) };
        vec_from_ffi_moved(seq)
    }
}

#[inline(never)]
fn vec_from_ffi_moved<T: Abi>(seq: RSeq<T::Ffi>) -> Vec<T> {
    let mut vec = Vec::with_capacity(seq.len());
    // SAFETY: each element was made by `T::into_ffi` (the caller's guarantee).
    seq.for_each(|ffi| vec.push(unsafe { T::from_ffi(ffi) }));
    vec
}

/// Writes a length and the elements.
#[inline]
pub(crate) fn encode_slice<T: Abi>(items: &[T], out: &mut Vec<u8>) {
    crate::wire::put_len(out, items.len());
    if T::PLAIN && cfg!(target_endian = "little") {
        // SAFETY: plain types have no padding and every byte initialised, and their
        // little-endian memory is their byte form.
        let bytes = unsafe { std::slice::from_raw_parts(items.as_ptr().cast::<u8>(), size_of_val(items)) };
        out.extend_from_slice(bytes);
    } else {
        for item in items {
            item.encode(out);
        }
    }
}

/// Reads a length and the elements: one level deeper, and never more memory than the
/// bytes allow (see [`crate::wire`]).
#[inline]
pub(crate) fn decode_vec<T: Abi>(r: &mut Reader<'_>) -> Result<Vec<T>, WireError> {
    let len = r.len(T::WIRE_MIN)?;
    // Exactly `len`, charged first: the elements need at least `len * WIRE_MIN` bytes
    // (checked by `len`), and `len * size_of::<T>()` must fit what those bytes may
    // allocate. Pushing below then never reallocates.
    let mut vec = r.vec::<T>(len)?;
    if T::PLAIN && cfg!(target_endian = "little") && size_of::<T>() == T::WIRE_MIN {
        let bytes = r.take(len * size_of::<T>())?;
        // SAFETY: the vector has room for `len` elements; any bytes are a valid plain
        // `T`, stored little-endian; the source is the reader's bytes (no overlap).
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), vec.as_mut_ptr().cast::<u8>(), bytes.len());
            vec.set_len(len);
        }
        return Ok(vec);
    }
    r.enter()?;
    for _ in 0..len {
        vec.push(T::decode(r)?);
    }
    r.leave();
    Ok(vec)
}
