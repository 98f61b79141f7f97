//! A whole, natural contract with exactly one type that cannot cross: one error.
use std::collections::{BTreeMap, HashMap};

#[derive(tomada::Abi, Debug, Clone)]
pub enum StoreError {
    Full,
    ReadOnly,
    Other(String),
}

#[derive(tomada::Abi, Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub tags: Vec<String>,
    pub next: Option<Box<Entry>>,
}

/// Does not derive `Abi`.
pub struct Stats {
    pub hits: u64,
}

#[tomada::contract(abi = 1)]
pub trait Store {
    fn put(&self, entry: Entry) -> Result<(), StoreError>;
    fn get(&self, key: &str) -> Option<Box<Entry>>;
    fn keys(&self) -> Vec<String>;
    fn dump(&self) -> HashMap<String, Vec<u8>>;
    fn sorted(&self) -> BTreeMap<String, [u8; 4]>;
    fn pairs(&self, items: &[(String, Vec<u8>)]) -> Vec<(String, u64)>;
    fn stats(&self) -> Stats;
    fn stats_again(&self, previous: Stats) -> u64;
}

fn main() {}
