//! The benchmark's contracts (`crates/host/benches/objects.rs`): methods shaped so
//! that a call through an object and a call through the `Plugin` are comparable.
//! Its plugin is `tests/plugins/bench-callback`.

#![allow(missing_docs)]

/// Implemented by the host.
#[tomada::contract(abi = 1)]
pub trait Config {
    fn config(&self, key: &str) -> Option<String>;
}

/// Implemented by the plugin, handed to the host.
#[tomada::contract(abi = 1)]
pub trait Cursor {
    /// The same value every time (`Some("value")`).
    fn next(&self) -> Option<String>;
}

#[tomada::contract(abi = 1)]
pub trait Bench {
    /// `host.config(key)`, called back once.
    fn lookup(&self, key: &str, host: &dyn Config) -> Option<String>;
    /// A cursor whose `next` is the same as [`Bench::next`].
    fn open(&self) -> Box<dyn Cursor>;
    /// The same value every time (`Some("value")`): `Cursor::next` as a plugin method.
    fn next(&self) -> Option<String>;
}
