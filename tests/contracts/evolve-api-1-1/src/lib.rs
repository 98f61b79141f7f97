//! `evolve::Api` 1.1: 1.0 plus one method appended in minor version 1.

/// A contract that grows over time.
#[tomada::contract(abi = 1, name = "evolve::Api")]
pub trait Api {
    /// Greets `name`.
    fn greet(&self, name: &str) -> String;
    /// Counts the bytes of `data`.
    fn count(&self, data: &[u8]) -> u64;
    /// Says goodbye to `name`. Added in 1.1.
    #[tomada(since = 1)]
    fn farewell(&self, name: &str) -> String;
}
