//! With `tomada::global_allocator!()` installed, owned buffers cross without a copy
//! (the other tests run without it and take the copying path). A separate test
//! binary, because a global allocator is per binary.

#![allow(missing_docs)]

use tomada::Abi;

tomada::global_allocator!();

#[test]
fn global_allocator_is_detected() {
    assert!(tomada::alloc::global_is_system());
}

#[test]
fn strings_and_vecs_are_moved_not_copied() {
    let s = String::from("Olá, Mundo 👋");
    let ptr = s.as_ptr();
    let ffi = s.into_ffi();
    assert_eq!(ffi.as_slice().as_ptr(), ptr);
    // SAFETY: made by `String::into_ffi`.
    let back = unsafe { String::from_ffi(ffi) };
    assert_eq!(back.as_ptr(), ptr);
    assert_eq!(back, "Olá, Mundo 👋");

    let v = vec![1u8, 2, 3];
    let ptr = v.as_ptr();
    // SAFETY: made by `Vec::into_ffi`.
    let back = unsafe { Vec::<u8>::from_ffi(v.into_ffi()) };
    assert_eq!(back.as_ptr(), ptr);
}
