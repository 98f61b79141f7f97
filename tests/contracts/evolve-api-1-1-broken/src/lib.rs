//! `evolve::Api` "1.1" done wrong: besides appending a method it changed an old
//! one (`count` takes `Vec<u8>`), which breaks 1.0 plugins and needs ABI 2.

/// A contract that grows over time.
#[tomada::contract(abi = 1, name = "evolve::Api")]
pub trait Api {
    /// Greets `name`.
    fn greet(&self, name: &str) -> String;
    /// Counts the bytes of `data`.
    fn count(&self, data: Vec<u8>) -> u64;
    /// Says goodbye to `name`.
    #[tomada(since = 1)]
    fn farewell(&self, name: &str) -> String;
}
