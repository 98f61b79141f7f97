//! Fixture: a plugin as `tomada::export!` made it before contexts and several
//! exports: a descriptor that ends after `attach` (no `create_with`; its header's
//! size says so) and one manifest, and a dispatch function that knows no
//! `BYTES_ALONE` bit (its flags do not have it). Hosts must load and call it as
//! before, in both modes. Hand-written on purpose; real plugins use `tomada::export!`.

use std::ffi::c_void;

use pluginapi::Greeter;
use pluginapi::tomada::__private::descriptor::{self, Header};
use pluginapi::tomada::__private::ffi::{RSlice, RVec, Status};
use pluginapi::tomada::{self, Contract};

type C = dyn Greeter;

tomada::global_allocator!();

/// Reads the host's context anyway: an old plugin never receives one, so it must
/// see an empty context whatever the host sets.
struct Old {
    context: String,
}

impl Greeter for Old {
    fn greet(&self, name: &str) -> String {
        format!("Olá, {name} (context: {:?})", self.context)
    }
}

fn make() -> Old {
    Old { context: tomada::context().as_str().unwrap_or("?").to_owned() }
}

/// The descriptor's layout before `create_with` was added.
#[repr(C)]
pub struct OldDescriptor {
    header: Header,
    abi: u32,
    flags: u32,
    fingerprint: u64,
    contract: RSlice,
    manifest: RSlice,
    vtable: *const c_void,
    create: descriptor::CreateFn,
    destroy: descriptor::DestroyFn,
    dispatch: tomada::__private::client::DispatchFn,
    attach: tomada::__private::logging::AttachFn,
}

// SAFETY: immutable static data pointing at other immutable statics.
unsafe impl Sync for OldDescriptor {}

const _: () = assert!(size_of::<OldDescriptor>() == tomada::__private::descriptor::Descriptor::MIN_SIZE);

const STRINGS: [&str; 5] =
    ["old-descriptor", "0.1.0", "made before contexts", tomada::__private::RUSTC_VERSION, tomada::__private::TARGET];
const LEN: usize = descriptor::encoded_len(&STRINGS, &<C as Contract>::DESCRIPTION);

#[used]
#[unsafe(link_section = ".tomada")]
static MANIFEST: [u8; LEN] =
    descriptor::encode::<LEN>(descriptor::flags::PANIC_UNWIND, &STRINGS, &<C as Contract>::DESCRIPTION);
static VTABLE: <C as Contract>::VTable = <C>::__tomada_vtable::<Old>();

unsafe extern "C" fn create(out: *mut *const c_void, panic: *mut RVec) -> Status {
    // SAFETY: the host passes writable pointers.
    unsafe { tomada::__private::call::__create::<Old>(out, panic, make) }
}

/// A dispatch function as tomada made them before `flags::BYTES_ALONE` (this
/// plugin's manifest does not have it): a method number with that bit is no method
/// of its, so a runner that asked it for a byte string's bytes alone would get an
/// error, not the greeting.
unsafe extern "C" fn dispatch(
    this: *const c_void,
    method: u32,
    args: RSlice,
    out: *mut RVec,
    panic: *mut RVec,
) -> Status {
    if method != tomada::__private::CANCEL_METHOD && method & tomada::__private::client::BYTES_ALONE != 0 {
        // SAFETY: the runner passes a writable `panic`.
        return unsafe { tomada::__private::unknown_method(method, panic) };
    }
    // SAFETY: forwarded as the runner passed them.
    unsafe { <C>::__tomada_dispatch::<Old>(this, method, args, out, panic) }
}

unsafe extern "C" fn destroy(this: *const c_void, panic: *mut RVec) -> Status {
    // SAFETY: the host passes the instance `create` made, once.
    unsafe { tomada::__private::call::__destroy::<Old>(this, panic) }
}

/// The old-layout descriptor.
#[unsafe(no_mangle)]
pub static TOMADA_DESCRIPTOR: OldDescriptor = OldDescriptor {
    header: Header {
        magic: descriptor::MAGIC,
        boundary: tomada::__private::descriptor::BOUNDARY_VERSION,
        size: size_of::<OldDescriptor>() as u32,
    },
    abi: <C as Contract>::ABI,
    flags: descriptor::flags::PANIC_UNWIND,
    fingerprint: <C as Contract>::FINGERPRINT,
    contract: RSlice::new(<C as Contract>::NAME.as_bytes()),
    manifest: RSlice::new(&MANIFEST),
    vtable: &VTABLE as *const _ as *const c_void,
    create,
    destroy,
    dispatch,
    attach: tomada::__private::logging::attach,
};
