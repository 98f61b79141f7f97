//! Benchmark-only fixture: the kv plugin's `echo` (each key gets `!` appended) over
//! abi_stable 0.11's types, as an `extern "C"` function taking and returning an
//! `RVec<REntry>`.

use abi_stable::std_types::RVec;
use bench_abi_stable_api::REntry;

/// `kv::Store::echo` in abi_stable's types.
#[unsafe(no_mangle)]
pub extern "C" fn bench_abi_stable_echo(mut entries: RVec<REntry>) -> RVec<REntry> {
    for e in entries.iter_mut() {
        e.key.push('!');
    }
    entries
}
