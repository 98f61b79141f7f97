//! The contract of the `plugin-dir` example: a text filter. A host loads every
//! filter it finds in a directory and chains them.

pub use tomada;

/// Changes text.
#[tomada::contract(abi = 1)]
pub trait Filter {
    /// `text`, filtered.
    fn apply(&self, text: &str) -> String;
}
