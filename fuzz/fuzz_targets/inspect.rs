//! Arbitrary bytes as a plugin or host file: the inspector must answer with a value
//! (a manifest or an error), never panic, crash, or take unbounded time or memory.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz-input.so");
    if let Ok(inspection) = tomada_host::inspect_bytes(path, data) {
        // What was read must be describable too.
        let _ = inspection.manifest.contract.version();
        for m in &inspection.manifest.contract.methods {
            let _ = m.to_string();
        }
    }
    let _ = tomada_host::expectations_bytes(path, data);
});
