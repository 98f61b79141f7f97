//! `shop::Shop` 1.2: the evolution matrix's contract (see `crates/host/tests/evolve.rs`).

#![allow(missing_docs)] // the syntax, as a user writes it

use std::collections::BTreeMap;

/// An order.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Order {
    pub id: u64,
    pub items: Vec<String>,
    /// Added in 1.1: an older side's order arrives with `""`.
    #[tomada(since = 1)]
    pub note: String,
    /// Added in 1.2: an older side's order arrives with 7.
    #[tomada(since = 2, default = 7)]
    pub priority: u32,
}

/// An order's state: an open enum.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum State {
    Open,
    Paid {
        amount: u64,
    },
    #[tomada(since = 1)]
    Shipped(String),
    #[tomada(other)]
    Unknown,
    #[tomada(since = 2)]
    Refunded {
        amount: u64,
    },
}

/// A closed enum.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum Tier {
    Basic,
    Gold,
}

/// Orders nested every way.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Basket {
    /// In a `Vec`.
    pub orders: Vec<Order>,
    /// In an `Option<Box<_>>`.
    pub best: Option<Box<Order>>,
    /// In a map.
    pub by_id: BTreeMap<u64, Order>,
    /// In a tuple, beside an open enum.
    pub pair: (Order, State),
}

/// A shop.
#[tomada::contract(abi = 1, name = "shop::Shop")]
pub trait Shop {
    /// Places an order.
    fn place(&self, order: Order) -> State;
    /// The order back, as the plugin read it.
    fn echo(&self, order: Order) -> Order;
    /// The order as the plugin read it, in `Debug` form.
    fn seen(&self, order: Order) -> String;
    /// The state the plugin has under `id`.
    fn state(&self, id: u64) -> State;
    /// The state as the plugin read it, in `Debug` form.
    fn accept(&self, state: State) -> String;
    /// A closed enum.
    fn tier(&self, gold: bool) -> Tier;
    /// Orders nested in containers, back.
    fn basket(&self, basket: Basket) -> Basket;
    /// Many orders, back.
    fn echo_many(&self, orders: Vec<Order>) -> Vec<Order>;
    /// The order back, asynchronously.
    async fn later(&self, order: Order) -> Order;
    /// How many orders the plugin has; added in 1.1, with a host-side default.
    #[tomada(since = 1)]
    fn count(&self) -> u64 {
        0
    }
    /// Describes state `id`; added in 1.1, with a host-side default that calls the
    /// plugin's `state`.
    #[tomada(since = 1)]
    fn describe(&self, id: u64) -> String {
        format!("host default: {:?}", self.state(id))
    }
    /// Added in 1.2, without a body: `CallError::NotProvided` for older plugins.
    #[tomada(since = 2)]
    fn audit(&self) -> String;
}
