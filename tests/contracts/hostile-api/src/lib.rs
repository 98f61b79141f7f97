//! A contract with rich, recursive answers — a linked chain (`Option<Box<Node>>`), a
//! tree of vectors and maps, a sparse `Vec<Option<Record>>`, maps and sets — and a
//! callback taking a chain. Its plugin, `tests/plugins/hostile-answers`, is what a
//! hostile plugin would be: it builds its answers' byte form by hand (a 100 000-deep
//! chain, 16 million `None`s of a 200-byte record, a key twice), so the host tests
//! (`crates/host/tests/decode.rs`) can show the host's decoder refuse them.

#![allow(missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A record that takes far more memory (200 bytes) than its `None` takes bytes (4).
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u64,
    pub name: String,
    pub tags: Vec<String>,
    pub score: Option<f64>,
    pub digest: [u64; 16],
}

/// A linked chain: the shape of kv-api's `Entry.previous`.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Node {
    pub label: String,
    pub next: Option<Box<Node>>,
}

/// A tree nesting through vectors and maps.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum Tree {
    Leaf(u32),
    Branch(Vec<Tree>),
    Named(BTreeMap<String, Tree>),
}

/// Implemented by the host, called back by the plugin.
#[tomada::contract(abi = 1)]
pub trait Sink {
    /// Takes a chain; returns its length.
    fn take(&self, node: Node) -> u32;
}

#[tomada::contract(abi = 1)]
pub trait Answers {
    /// A chain `depth` nodes long.
    fn chain(&self, depth: u32) -> Node;
    /// `depth` branches, each holding the next (through a map where `depth` is odd).
    fn tree(&self, depth: u32) -> Tree;
    /// `count` `None`s.
    fn sparse(&self, count: u32) -> Vec<Option<Record>>;
    /// Two keys, or one key twice.
    fn index(&self, duplicate: bool) -> HashMap<String, u32>;
    /// Two keys, or one key twice.
    fn ordered(&self, duplicate: bool) -> BTreeSet<String>;
    /// Calls `sink.take` with a chain `depth` nodes long; returns `ok <its answer>`,
    /// or the message of the panic the failed call became.
    fn send(&self, sink: &dyn Sink, depth: u32) -> String;
    /// Keeps `sink` for [`Answers::send_from_thread`].
    fn keep(&self, sink: Box<dyn Sink>);
    /// As [`Answers::send`], to the kept sink, from a thread of the plugin's own: a
    /// callback outside any call of the host, which the host serves on its callback
    /// thread.
    fn send_from_thread(&self, depth: u32) -> String;
    /// `actual` bytes after a length that says `claimed` (a lie unless they are
    /// equal); with `cut`, only the first 3 bytes of the length.
    fn bytes(&self, claimed: u64, actual: u32, cut: bool) -> Vec<u8>;
    /// As [`Answers::bytes`], as a `String`; bytes that are not UTF-8 unless `utf8`.
    fn text(&self, claimed: u64, actual: u32, utf8: bool) -> String;
}
