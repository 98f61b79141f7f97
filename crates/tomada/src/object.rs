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
//! The host does not call the objects it gets back through the trait: a client's
//! method that returns objects returns [`Handle`]s, whose methods return
//! `Result<_, CallError>` (see [`Handle`]).
//!
//! Lifetimes: an object a plugin made keeps the plugin's library loaded for as long
//! as the host holds it (see [`client::current_keepalive`](crate::client::current_keepalive));
//! an object the host made stays alive until the plugin drops its handle; a `&dyn C`
//! argument lives for the call.
//!
//! Between processes (isolated plugins), objects cross by number instead: see
//! [`crate::remote`]. So do they in-process between a host and a plugin whose types
//! differ across minor versions (called by byte form, see `docs/evolution.md`).

use std::ffi::c_void;
use std::sync::Arc;

use crate::ffi::RObject;
use crate::interface::{TypeDesc, TypeRef};
use crate::wire::{Reader, WireError};
use crate::{Abi, Contract};

/// The host's handle to an object of contract `C` that a plugin made: its methods are
/// the trait's, returning `Result<_, CallError>`, like a `Plugin`'s. It is the
/// contract's generated client (`Handle<dyn Cursor>` is `CursorClient`).
///
/// **Where handles come from.** A client's method (a `tomada_host::Plugin`'s, or a
/// handle's) whose contract returns `Box<dyn C>` or `Arc<dyn C>` — also inside
/// `Option`, `Result`, `Vec`, `VecDeque`, a map's values, a tuple or an array — returns
/// `Handle<dyn C>` there instead: `fn open(&self) -> Box<dyn Cursor>` is
/// `fn open(&self) -> Result<Handle<dyn Cursor>, CallError>` on the host, and the
/// handle's own methods that return objects give handles too. An `Arc<dyn C>` result
/// arrives as one handle too (the host holds the only reference; `Arc::new(handle)`
/// shares it). The plugin still implements the trait exactly as declared; nothing of
/// the contract's description, vtable or bytes changes.
///
/// **Passing one back.** A handle implements `C`, so it goes back to a plugin as the
/// trait object with no conversion: `Box::new(handle)` where an argument is
/// `Box<dyn C>`, `&handle` where it is `&dyn C`, `Arc::new(handle)` for `Arc<dyn C>`.
///
/// **Objects that arrive as trait objects** — a `&dyn C` or `Box<dyn C>` a host
/// callback receives, an object in a field of a struct, or behind a type alias — are
/// called through the trait, whose signature has no room for an error: a failed call
/// there **panics** (the plugin panicked, or its process is gone). Reach the handle
/// behind such an object with [`handle`]`(&*object)`.
///
/// ```
/// #[tomada::contract(abi = 1)]
/// pub trait Cursor {
///     fn next(&self) -> Option<String>;
///     fn fork(&self) -> Box<dyn Cursor>;
/// }
///
/// #[tomada::contract(abi = 1)]
/// pub trait Indexer {
///     fn open(&self, prefix: &str) -> Box<dyn Cursor>;
///     fn cursors(&self) -> Vec<Box<dyn Cursor>>;
///     fn drain(&self, cursor: Box<dyn Cursor>) -> u32;
/// }
///
/// // The host: a `tomada_host::Plugin<dyn Indexer>` derefs to an `IndexerClient`.
/// fn words(indexer: &IndexerClient) -> Result<Vec<String>, tomada::CallError> {
///     let cursor: tomada::Handle<dyn Cursor> = indexer.open("f")?;
///     let mut words = Vec::new();
///     while let Some(w) = cursor.next()? {
///         words.push(w);
///     }
///     let fork = cursor.fork()?; // objects from objects: a handle too
///     indexer.drain(Box::new(fork))?; // back to the plugin as a `Box<dyn Cursor>`
///     for c in indexer.cursors()? {
///         words.extend(c.next()?);
///     }
///     Ok(words)
/// }
/// # let _ = words;
/// ```
pub type Handle<C> = <C as Contract>::Client;

/// The [`Handle`] behind a trait object of the other side: its methods return
/// `Result<_, CallError>` where the trait's own methods panic on a failed call.
/// `None` for an object made on this side (whose calls do not cross the boundary).
///
/// For the objects a host callback receives (`&dyn C`, `Box<dyn C>`), and those inside
/// structs:
///
/// ```
/// # #[tomada::contract(abi = 1)]
/// # pub trait Cursor { fn next(&self) -> Option<String>; }
/// #[tomada::contract(abi = 1)]
/// pub trait Sink {
///     fn take(&self, cursor: &dyn Cursor) -> u32; // implemented by the host
/// }
///
/// struct Counter;
/// impl Sink for Counter {
///     fn take(&self, cursor: &dyn Cursor) -> u32 {
///         let Some(cursor) = tomada::handle(cursor) else { return 0 };
///         let mut n = 0;
///         // A failed call is an error here, not a panic.
///         while let Ok(Some(_)) = cursor.next() {
///             n += 1;
///         }
///         n
///     }
/// }
/// # let _: &dyn Sink = &Counter;
/// ```
pub fn handle<C: ?Sized + Contract>(object: &C) -> Option<&Handle<C>> {
    C::__client_of(object)
}

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
#[doc(hidden)]
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
