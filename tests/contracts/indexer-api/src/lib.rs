//! Contracts whose methods take and return trait objects of other contracts: a host
//! service the plugin calls back (`Host`), an object a plugin makes and the host keeps
//! (`Cursor`), a callback that calls the plugin again (`Visitor`), and the plugin's own
//! contract (`Indexer`), with objects returned in every shape (plain, from an object,
//! in `Option`, `Result` and `Vec`, shared, from an `async fn`) and handed back. Its
//! plugin is `tests/plugins/indexer`; `Indexer::sabotage` makes it fail on purpose.

#![allow(missing_docs)]

use std::sync::Arc;

#[derive(tomada::Abi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// Implemented by the host application.
#[tomada::contract(abi = 1)]
pub trait Host {
    fn log(&self, level: Level, message: &str);
    fn config(&self, key: &str) -> Option<String>;
}

/// Implemented by a plugin, handed to the host.
#[tomada::contract(abi = 1)]
pub trait Cursor {
    fn next(&self) -> Option<String>;
    /// A new cursor over what this one has not yielded yet (an object from an object).
    fn fork(&self) -> Box<dyn Cursor>;
}

/// Implemented by the host; called back by the plugin with the plugin itself.
#[tomada::contract(abi = 1)]
pub trait Visitor {
    /// Returns whether to go on; may call `indexer` again (re-entrant).
    fn visit(&self, word: &str, indexer: &dyn Indexer) -> bool;
}

#[tomada::contract(abi = 1)]
pub trait Indexer {
    /// Indexes `doc`'s words, logging through `host` during the call.
    fn index(&self, doc: &str, host: &dyn Host) -> u64;
    /// A cursor over the indexed words starting with `prefix`; it outlives the call.
    fn open(&self, prefix: &str) -> Box<dyn Cursor>;
    /// Keeps a host service for later calls.
    fn attach(&self, host: Box<dyn Host>);
    /// Uses the attached host service; returns how many words were flushed.
    fn flush(&self) -> u64;
    /// Shares a host service and a cursor both ways, reference-counted.
    fn share(&self, host: Arc<dyn Host>) -> Arc<dyn Cursor>;
    /// Calls `visitor` for each word, which may call back into this indexer.
    fn walk(&self, visitor: &dyn Visitor) -> u64;
    /// How many words are indexed.
    fn count(&self) -> u64;
    /// One cursor per indexed word.
    fn cursors(&self) -> Vec<Box<dyn Cursor>>;
    /// Drops the attached host service, if any; returns whether there was one.
    fn detach(&self) -> bool;
    /// A cursor over the one indexed word equal to `word`; `None` if there is none.
    fn find(&self, word: &str) -> Option<Box<dyn Cursor>>;
    /// A cursor over the words starting with `prefix`; an error if none does.
    fn open_strict(&self, prefix: &str) -> Result<Box<dyn Cursor>, String>;
    /// What is left of `cursor` (an object handed back: the host passes its handle).
    fn drain(&self, cursor: Box<dyn Cursor>) -> Vec<String>;
    /// The next word of a cursor lent for the call.
    fn peek(&self, cursor: &dyn Cursor) -> Option<String>;
    /// As [`Indexer::open`], from an `async fn`.
    async fn open_later(&self, prefix: &str) -> Box<dyn Cursor>;
    /// A fault, for tests: from now on every method of this instance (but this one)
    /// and of every object it made panics.
    fn sabotage(&self);
}
