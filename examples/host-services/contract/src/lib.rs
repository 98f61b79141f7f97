//! The contract of the `host-services` example. Three traits, each an ordinary
//! `#[tomada::contract]`; which side implements which is up to the program:
//!
//! - [`Host`] is implemented by the host application and handed to the plugin, as a
//!   `&dyn Host` for one call or a `Box<dyn Host>` the plugin keeps;
//! - [`Cursor`] is implemented by the plugin and handed to the host as a
//!   `Box<dyn Cursor>`, an object that outlives the call that made it;
//! - [`Notebook`] is the plugin's own contract, the one `tomada_host::load` asks for.

pub use tomada;

/// Services the host offers its plugins.
#[tomada::contract(abi = 1)]
pub trait Host {
    /// A configuration value, if the host has one for `key`.
    fn config(&self, key: &str) -> Option<String>;
    /// Shows `line` to the user.
    fn publish(&self, line: &str);
}

/// A position in a list of notes, made by the plugin.
#[tomada::contract(abi = 1)]
pub trait Cursor {
    /// The next note, or `None` at the end.
    fn next(&self) -> Option<String>;
}

/// A notebook plugin.
#[tomada::contract(abi = 1)]
pub trait Notebook {
    /// Adds a note, formatted as `host.config("style")` says (called back during
    /// this call); returns how many notes there are.
    fn add(&self, text: &str, host: &dyn Host) -> u32;
    /// Keeps `host` for later calls.
    fn attach(&self, host: Box<dyn Host>);
    /// Publishes every note through the host kept by [`Notebook::attach`]; returns
    /// how many were published (0 without one).
    fn publish_all(&self) -> u32;
    /// A cursor over the notes starting with `prefix`.
    fn notes(&self, prefix: &str) -> Box<dyn Cursor>;
}
