//! A key-value store contract in plain Rust, the way a user who never saw tomada's
//! tests writes one: an error enum with data, `Vec<String>`, `Vec<(String, Vec<u8>)>`,
//! `HashMap`, `BTreeMap` of sets keyed by an enum, `[u8; 4]`, `Option<Box<Entry>>`,
//! nested structs with enum fields, and a borrowed `&[String]`. Its plugin is
//! `tests/plugins/kv`; the host tests run it in-process and isolated.

#![allow(missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Why the store refused.
#[derive(tomada::Abi, Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    Full,
    ReadOnly,
    NotFound(String),
    Other { code: u32, message: String },
}

/// What an entry holds.
#[derive(tomada::Abi, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Text,
    Blob,
    Link,
}

#[derive(tomada::Abi, Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub created: u64,
    pub owner: Option<String>,
}

#[derive(tomada::Abi, Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub meta: Meta,
    pub tags: Vec<String>,
    /// The entry this one replaced, if any.
    pub previous: Option<Box<Entry>>,
}

/// The store's capacity: one more `put` of a new key is `StoreError::Full`.
pub const CAPACITY: usize = 1_000;

#[tomada::contract(abi = 1)]
pub trait Store {
    /// Stores `entry`; returns the entry it replaced.
    fn put(&self, entry: Entry) -> Result<Option<Box<Entry>>, StoreError>;
    /// The entry under `key`, with what it replaced.
    fn get(&self, key: &str) -> Result<Entry, StoreError>;
    /// Every key, sorted.
    fn keys(&self) -> Vec<String>;
    /// Stores plain text values; returns how many keys were new.
    fn put_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<u32, StoreError>;
    /// Every key with its value.
    fn dump(&self) -> HashMap<String, Vec<u8>>;
    /// The keys of each kind.
    fn by_kind(&self) -> BTreeMap<Kind, BTreeSet<String>>;
    /// The keys carrying any of `tags`.
    fn tagged(&self, tags: &[String]) -> HashSet<String>;
    /// Where the store says it lives.
    fn address(&self) -> [u8; 4];
    /// Refuses writes from now on (`StoreError::ReadOnly`), or accepts them again.
    fn set_read_only(&self, read_only: bool);
    /// The entries back, each with `!` appended to its key (the benchmark's method).
    fn echo(&self, entries: Vec<Entry>) -> Vec<Entry>;
}
