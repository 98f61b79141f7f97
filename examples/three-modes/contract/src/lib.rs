//! Example contract: one trait, the same for the three places a plugin can run.

pub use tomada;

/// What the host asks of a word-counting plugin.
#[tomada::contract(abi = 1)]
pub trait Words {
    /// How many times each word of `text` occurs, most frequent first (ties by word).
    fn count(&self, text: &str) -> Vec<(String, u64)>;
    /// The plugin's process id: where it runs.
    fn process(&self) -> u32;
    /// Calls `each` back for every word of `text`, then says how many it sent.
    fn each(&self, text: &str, each: &dyn Each) -> u64;
    /// Ends the plugin's process at once (stands for any fatal fault).
    fn crash(&self);
}

/// A host-side callback the plugin calls during [`Words::each`].
#[tomada::contract(abi = 1)]
pub trait Each {
    /// One word.
    fn word(&self, word: &str);
}
