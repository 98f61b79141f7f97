//! `evolve::Api` 2.0: a major version, same methods as 1.1.

/// A contract that grows over time.
#[tomada::contract(abi = 2, name = "evolve::Api")]
pub trait Api {
    /// Greets `name`.
    fn greet(&self, name: &str) -> String;
    /// Counts the bytes of `data`.
    fn count(&self, data: &[u8]) -> u64;
    /// Says goodbye to `name`.
    fn farewell(&self, name: &str) -> String;
}
