//! Fixture: a library with a valid tomada manifest for `pluginapi::Greeter` in its
//! link section but no exported descriptor symbol: passes inspection, must fail
//! after loading with a clear error.

use pluginapi::tomada::{self, Contract};

type C = dyn pluginapi::Greeter;

const STRINGS: [&str; 5] =
    ["manifest-only", "0.1.0", "no descriptor", tomada::__private::RUSTC_VERSION, tomada::__private::TARGET];
const LEN: usize = tomada::__private::descriptor::encoded_len(&STRINGS, &<C as Contract>::DESCRIPTION);

/// The manifest, exported so the linker keeps it (under another name than the
/// descriptor's).
#[used]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".tomada")]
pub static MANIFEST_ONLY: [u8; LEN] = tomada::__private::descriptor::encode::<LEN>(
    tomada::__private::descriptor::flags::PANIC_UNWIND,
    &STRINGS,
    &<C as Contract>::DESCRIPTION,
);
