//! Arbitrary bytes as the contents of a manifest or expectations section.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tomada::Manifest;
use tomada::descriptor::parse_expectations;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        // A manifest that parses fits itself.
        let c = &m.contract;
        assert_eq!(c.fit(c).map(|f| f.provided), Ok(c.methods.len()));
    }
    let _ = parse_expectations(data);
});
