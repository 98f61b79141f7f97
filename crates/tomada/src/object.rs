//! Trait objects of contract traits across the boundary: `&dyn C`, `Box<dyn C>` and
//! `Arc<dyn C>` as arguments and results (also inside `Option`, `Result`, `Vec`,
//! structs...), in-process.
//!
//! An object crosses as an [`RObject`]: a pointer to it, the contract's `#[repr(C)]`
//! vtable for it (the same shims a plugin exports, made for the object's type), and
//! the function that releases it. The receiving side wraps it in the contract's
//! generated client, which implements the trait itself: the plugin sees
//! `host.config("k")` returning `Option<String>`, exactly as declared. A failed call
//! through such an object (its implementation panicked) panics in the caller; inside a
//! plugin method, that panic is caught at the plugin's boundary and reaches the host's
//! outer call as [`CallError::Panicked`](crate::CallError::Panicked).
//!
//! Lifetimes: an object a plugin made keeps the plugin's library loaded for as long
//! as the host holds it (see [`client::current_keepalive`](crate::client::current_keepalive));
//! an object the host made stays alive until the plugin drops its handle; a `&dyn C`
//! argument lives for the call.
//!
//! Between processes (isolated plugins), objects cross by number instead: see
//! [`crate::remote`].

use std::ffi::c_void;
use std::sync::Arc;

use crate::ffi::RObject;
use crate::interface::{TypeDesc, TypeRef};
use crate::wire::{Reader, WireError};
use crate::{Abi, Contract};

/// A pointer to data leaked for the program's life (an object vtable made at run
/// time), shareable between threads.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Leaked(pub *const c_void);

// SAFETY: the pointee is immutable and never freed.
unsafe impl Send for Leaked {}
// SAFETY: as above.
unsafe impl Sync for Leaked {}

/// Releases an object boxed as `Box<T>` (the `release` of an [`RObject`]).
///
/// # Safety
/// `this` must come from `Box::<T>::into_raw`, and be released once.
pub unsafe extern "C" fn release_boxed<T>(this: *const c_void) {
    // A panic in the object's `Drop` must not unwind across `extern "C"`.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the caller guarantees `this` is a `Box<T>`'s, released once.
        drop(unsafe { Box::from_raw(this.cast::<T>().cast_mut()) });
    }));
    if let Err(payload) = result {
        std::mem::forget(payload);
    }
}

// SAFETY: an `Arc<dyn C>` crosses as an `RObject` made by `C`'s own conversion (its
// vtable for the object, and a release that drops the `Arc` it holds); the other side
// gets `C`'s client, which calls through that vtable. The description is `C`'s whole
// contract.
unsafe impl<C: ?Sized + Contract> Abi for Arc<C> {
    type Ffi = RObject;
    const DESC: TypeRef = TypeRef::new(&TypeDesc::generic("Arc", &[C::OBJECT]));
    const WIRE_MIN: usize = 8;
    fn into_ffi(self) -> RObject {
        C::__arc_into_object(self)
    }
    unsafe fn from_ffi(ffi: RObject) -> Self {
        // SAFETY: made by `C`'s object conversion (the caller's guarantee).
        C::__client_into_arc(unsafe { C::__object_into_client(ffi) })
    }
    fn encode(&self, out: &mut Vec<u8>) {
        crate::remote::encode_exported(C::__export_arc(Arc::clone(self)), out);
    }
    fn encode_owned(self, out: &mut Vec<u8>) {
        crate::remote::encode_exported(C::__export_arc(self), out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        crate::remote::decode_remote(r).map(|channel| C::__client_into_arc(C::__remote_client(channel)))
    }
}
