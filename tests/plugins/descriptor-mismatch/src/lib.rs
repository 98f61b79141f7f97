//! Fixture: a tampered library. Its `.tomada` section holds a valid manifest for
//! `pluginapi::Greeter`, but the descriptor it exports points at *another*
//! manifest (another description). What the host inspected is not what it loaded:
//! it must refuse. Hand-written on purpose; real plugins use `tomada::export!`.

use std::ffi::c_void;

use pluginapi::Greeter;
use pluginapi::tomada::__private::descriptor::{self, Descriptor, Header};
use pluginapi::tomada::__private::ffi::{RSlice, RVec, Status};
use pluginapi::tomada::{self, Contract};

type C = dyn Greeter;

#[derive(Default)]
struct Hello;

impl Greeter for Hello {
    fn greet(&self, name: &str) -> String {
        format!("Olá, {name}")
    }
}

const IN_FILE: [&str; 5] =
    ["greeter", "1.0.0", "what the file says", tomada::__private::RUSTC_VERSION, tomada::__private::TARGET];
const LOADED: [&str; 5] =
    ["greeter", "1.0.0", "what the code says", tomada::__private::RUSTC_VERSION, tomada::__private::TARGET];
const LEN: usize = descriptor::encoded_len(&IN_FILE, &<C as Contract>::DESCRIPTION);

#[used]
#[unsafe(link_section = ".tomada")]
static SECTION: [u8; LEN] =
    descriptor::encode::<LEN>(descriptor::flags::PANIC_UNWIND, &IN_FILE, &<C as Contract>::DESCRIPTION);
static OTHER: [u8; LEN] =
    descriptor::encode::<LEN>(descriptor::flags::PANIC_UNWIND, &LOADED, &<C as Contract>::DESCRIPTION);
static VTABLE: <C as Contract>::VTable = <C>::__tomada_vtable::<Hello>();

unsafe extern "C" fn create(out: *mut *const c_void, panic: *mut RVec) -> Status {
    // SAFETY: the host passes writable pointers.
    unsafe { tomada::__private::call::__create::<Hello>(out, panic, Hello::default) }
}

unsafe extern "C" fn destroy(this: *const c_void, panic: *mut RVec) -> Status {
    // SAFETY: the host passes the instance `create` made, once.
    unsafe { tomada::__private::call::__destroy::<Hello>(this, panic) }
}

/// The tampered descriptor.
#[unsafe(no_mangle)]
pub static TOMADA_DESCRIPTOR: Descriptor = Descriptor {
    header: Header {
        magic: descriptor::MAGIC,
        boundary: tomada::__private::descriptor::BOUNDARY_VERSION,
        size: size_of::<Descriptor>() as u32,
    },
    abi: <C as Contract>::ABI,
    flags: descriptor::flags::PANIC_UNWIND,
    fingerprint: <C as Contract>::FINGERPRINT,
    contract: RSlice::new(<C as Contract>::NAME.as_bytes()),
    manifest: RSlice::new(&OTHER),
    vtable: &VTABLE as *const _ as *const c_void,
    create,
    destroy,
    dispatch: <C>::__tomada_dispatch::<Hello>,
    attach: tomada::__private::logging::attach,
    create_with: None,
};

/// Keeps the section referenced, so the linker does not drop it.
#[unsafe(no_mangle)]
pub static DESCRIPTOR_MISMATCH_SECTION: &[u8; LEN] = &SECTION;
