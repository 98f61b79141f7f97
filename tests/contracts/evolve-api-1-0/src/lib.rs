//! `evolve::Api` 1.0: the original contract.

/// A contract that grows over time.
#[tomada::contract(abi = 1, name = "evolve::Api")]
pub trait Api {
    /// Greets `name`.
    fn greet(&self, name: &str) -> String;
    /// Counts the bytes of `data`.
    fn count(&self, data: &[u8]) -> u64;
}
