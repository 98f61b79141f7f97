//! Fixture: an ordinary Rust shared library that exports a C function and no tomada
//! descriptor.

/// Something to export.
#[unsafe(no_mangle)]
pub extern "C" fn no_descriptor_answer() -> u32 {
    42
}
