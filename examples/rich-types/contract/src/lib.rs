//! The contract of the `rich-types` example: what its host and its plugin agree on,
//! written as plain Rust. Every type here crosses the boundary by value: a derived
//! struct, enums with data, `Vec`, `HashMap`, `Option`, `Result` and tuples.

use std::collections::HashMap;

pub use tomada;

/// One thing the shop sells.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Item {
    /// Its unique name.
    pub name: String,
    /// Price in cents.
    pub price: u64,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// How many are left, if the shop counts them.
    pub stock: Option<u32>,
}

/// Which items to list: an enum whose variants carry data.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum Query {
    /// Everything.
    All,
    /// Items carrying this tag.
    Tagged(String),
    /// Items whose price is in `min..=max`.
    PriceBetween {
        /// Lowest price, in cents.
        min: u64,
        /// Highest price, in cents.
        max: u64,
    },
}

/// Why an order was refused.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum OrderError {
    /// No item has this name.
    Unknown(String),
    /// Not enough left.
    OutOfStock {
        /// The item.
        name: String,
        /// How many were asked for.
        wanted: u32,
        /// How many are left.
        left: u32,
    },
}

/// A shop's catalogue, implemented by a plugin.
#[tomada::contract(abi = 1)]
pub trait Catalog {
    /// The items matching `query`, in catalogue order.
    fn find(&self, query: Query) -> Vec<Item>;
    /// The item called `name`, if there is one.
    fn get(&self, name: &str) -> Option<Item>;
    /// Orders `(name, quantity)` lines; the total price in cents, or why not.
    fn order(&self, lines: Vec<(String, u32)>) -> Result<u64, OrderError>;
    /// How many items carry each tag.
    fn tag_counts(&self) -> HashMap<String, u32>;
    /// The cheapest and the dearest item, or `None` when the catalogue is empty.
    fn extremes(&self) -> Option<(Item, Item)>;
}
