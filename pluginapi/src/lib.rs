//! The greeter contract, shared by the `host` application and every greeter plugin.
//!
//! The Go original's `pluginapi` had a `Greeter` interface, an `Info` struct and an
//! `ABI` constant; here they are the [`Greeter`] trait (a tomada contract),
//! [`Info`] (tomada's plugin metadata) and [`ABI`].
//!
//! A plugin implements [`Greeter`] and exports it:
//!
//! ```ignore
//! use pluginapi::{Greeter, tomada};
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl Greeter for Hello {
//!     fn greet(&self, name: &str) -> String {
//!         format!("Olá, {name} 👋")
//!     }
//! }
//!
//! tomada::export!(Hello as Greeter);
//! ```

pub use tomada;
pub use tomada::Info;

/// The contract's ABI (major) version. Bump it for any change to [`Greeter`] that
/// breaks plugins built against the old one; the host refuses them by number.
pub const ABI: u32 = 1;

/// A plugin that greets people.
#[tomada::contract(abi = ABI)]
pub trait Greeter {
    /// Returns a greeting for `name`.
    fn greet(&self, name: &str) -> String;
}
