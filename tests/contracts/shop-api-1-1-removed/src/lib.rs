//! `shop::Shop` 1.1 diverged: another 1.1 (it has `count`) without 1.1's field `note`,
//! variant `Shipped` and method `describe`, removed from the version that added them:
//! hosts and builds of 1.1 (or later) refuse it, and `tomada diff` says why.

#![allow(missing_docs)] // the syntax, as a user writes it

use std::collections::BTreeMap;

/// An order.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Order {
    pub id: u64,
    pub items: Vec<String>,
}

/// An order's state: an open enum.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum State {
    Open,
    Paid {
        amount: u64,
    },
    #[tomada(other)]
    Unknown,
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
}
