//! A contract whose plugin (`tests/plugins/contract-only`) depends on this crate only:
//! it re-exports `tomada`, and the plugin implements the `async fn` under
//! `#[tomada::implement]` reached through that re-export.

pub use tomada;

/// A store of words, asked asynchronously.
#[tomada::contract(abi = 1)]
pub trait Words {
    /// The word for `key`, if there is one.
    async fn word(&self, key: &str) -> Option<String>;
    /// The words joined by `sep`, built asynchronously from borrowed arguments.
    async fn join(&self, words: &[String], sep: &str) -> String;
    /// How many words the plugin knows.
    fn count(&self) -> u64;
}
