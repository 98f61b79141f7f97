//! The API a user reads is the API a user uses: the crate root documents only the
//! modules contract, plugin and host authors name; every other public module is the
//! plumbing of generated code and `tomada-host`, hidden and reached through
//! `tomada::__private`.

/// The modules rustdoc shows. Adding one here is a decision about the API.
const DOCUMENTED: &[&str] = &["abi", "alloc", "context", "future", "interface", "object", "wire"];

/// Every `pub mod` of `lib.rs`, with whether the line above it is `#[doc(hidden)]`.
fn modules(lib: &str) -> Vec<(&str, bool)> {
    let lines: Vec<&str> = lib.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let name = line.strip_prefix("pub mod ")?.strip_suffix(';')?;
            Some((name, i > 0 && lines[i - 1].trim() == "#[doc(hidden)]"))
        })
        .collect()
}

#[test]
fn only_the_documented_modules_are_shown() {
    let lib = include_str!("../src/lib.rs");
    let modules = modules(lib);
    assert!(modules.len() > DOCUMENTED.len(), "the scan found the modules: {modules:?}");
    for (name, hidden) in &modules {
        if DOCUMENTED.contains(name) {
            assert!(!hidden, "`{name}` is part of the API but hidden");
        } else {
            assert!(hidden, "`pub mod {name}` is plumbing: mark it #[doc(hidden)] and re-export it from `__private`");
            assert!(
                private_names(lib).contains(name),
                "`{name}` is hidden but not reachable through `tomada::__private`"
            );
        }
    }
}

/// The names `__private` re-exports from the crate root (`pub use crate::{a, b, ..};`).
fn private_names(lib: &str) -> Vec<&str> {
    let start = lib.find("pub mod __private {").expect("lib.rs has `__private`");
    lib[start..]
        .lines()
        .take_while(|l| *l != "}")
        .filter_map(|l| l.trim().strip_prefix("pub use crate::{")?.strip_suffix("};"))
        .flat_map(|inner| inner.split(',').map(str::trim))
        .collect()
}

#[test]
fn the_scan_sees_a_shown_plumbing_module() {
    // Negative control: the same scan over a lib.rs where `ffi` lost its attribute.
    let lib = "pub mod abi;\n#[doc(hidden)]\npub mod client;\npub mod ffi;\n";
    assert_eq!(modules(lib), [("abi", false), ("client", true), ("ffi", false)]);
}

#[test]
fn the_plumbing_is_reachable_where_generated_code_looks() {
    // Paths the macros and tomada-host name, through `__private`.
    let _: fn(u8) -> tomada::__private::ffi::Status = tomada::__private::ffi::Status;
    let _ = tomada::__private::descriptor::MAGIC;
    let _ = tomada::__private::descriptor::BOUNDARY_VERSION;
    let _ = std::mem::size_of::<tomada::__private::client::RawClient>();
}
