//! A contract with `async fn`s: its plugin (`tests/plugins/async-plugin`) awaits a
//! timer thread and host objects; the host tests await it with tokio and with a
//! minimal executor, in-process and isolated.

#![allow(missing_docs)]

/// The host's settings, lent to the plugin for a call.
#[tomada::contract(abi = 1)]
pub trait Settings {
    fn get(&self, key: &str) -> Option<String>;
}

/// Told by the plugin what happened to a call; owned by the plugin while it runs.
#[tomada::contract(abi = 1)]
pub trait Witness {
    fn note(&self, what: &str);
}

#[tomada::contract(abi = 1)]
pub trait Lookup {
    /// The value of `key`, after a timer thread fires `delay_ms` later.
    async fn fetch(&self, key: &str, delay_ms: u64) -> Option<String>;
    /// Asks the host's settings for `key` after a timer fires, and sums `numbers`.
    async fn ask(&self, settings: &dyn Settings, key: &str, numbers: &[u32]) -> (String, u64);
    /// Panics after awaiting a timer.
    async fn boom(&self) -> u32;
    /// Never finishes; tells `witness` "dropped" when its future is dropped.
    async fn stall(&self, witness: Box<dyn Witness>) -> u32;
    /// A plain method next to the async ones.
    fn plain(&self, x: u32) -> u32;
}
