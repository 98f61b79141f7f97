//! The contract of `tests/plugins/living`, a plugin built in several versions and
//! replaced under a running host (`crates/host/tests/reload*.rs`).

#![allow(missing_docs)]

/// An object the plugin makes and the host holds across file replacements.
#[tomada::contract(abi = 1)]
pub trait Counter {
    /// The next number (one more each call).
    fn next(&self) -> u64;
    /// The version of the build that made this object.
    fn version(&self) -> String;
}

#[tomada::contract(abi = 1)]
pub trait Living {
    /// The version this build was made as (`LIVING_VERSION` at build time).
    fn version(&self) -> String;
    /// A counter counting from `start`.
    fn counter(&self, start: u64) -> Box<dyn Counter>;
    /// Creates `<path>.in`, then waits, inside the plugin, until `path` exists (a
    /// test attaches gdb meanwhile); `true` when it does (`false` after 5 minutes).
    fn wait_for(&self, path: &str) -> bool;
    /// Adds `n` to the instance's total and returns the new total. The total starts
    /// from the decimal number in the constructor's context (`tomada::context()`), if
    /// any: how a reload hands it over.
    fn add(&self, n: u64) -> u64;
    /// The instance's state for its successor: the total, in decimal.
    fn state(&self) -> Vec<u8>;
    /// Leaves `which` behind, to run plugin code after an unload: `thread`,
    /// `thread-while:<path>` (a thread that writes its id to `<path>.tid` and ends once
    /// `path` no longer exists),
    /// `raw-thread` (one started with `pthread_create`), `signal`, `signal-slow:<path>`
    /// (a SIGUSR1 handler that writes `<path>.in`, blocks while `path` exists, then
    /// writes `<path>.out`), `key`, `key-slow:<path>` (a key destructor that does the
    /// same, at the exit of the calling thread), `tls`, `spawn-join` (a thread started
    /// and joined within the call: nothing of it left running, but starting it
    /// registers thread-local destructors of the plugin on the calling thread).
    /// `false` for an unknown name.
    fn hazard(&self, which: &str) -> bool;
}
