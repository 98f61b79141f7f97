//! Fixture: a plugin built against `shop::Shop` 1.1 diverged (`note`, `Shipped`
//! and `describe` removed).

use shop_api_1_1_removed::{Basket, Order, Shop, State, Tier};

#[derive(Default)]
struct Plugin;

#[tomada::implement]
impl Shop for Plugin {
    fn place(&self, order: Order) -> State {
        if order.items.is_empty() { State::Open } else { State::Paid { amount: order.items.len() as u64 } }
    }
    fn echo(&self, order: Order) -> Order {
        order
    }
    fn seen(&self, order: Order) -> String {
        format!("{order:?}")
    }
    fn state(&self, id: u64) -> State {
        match id {
            0 => State::Open,
            1 => State::Paid { amount: 5 },
            _ => State::Unknown,
        }
    }
    fn accept(&self, state: State) -> String {
        format!("{state:?}")
    }
    fn tier(&self, gold: bool) -> Tier {
        if gold { Tier::Gold } else { Tier::Basic }
    }
    fn basket(&self, basket: Basket) -> Basket {
        basket
    }
    fn echo_many(&self, orders: Vec<Order>) -> Vec<Order> {
        orders
    }
    async fn later(&self, order: Order) -> Order {
        order
    }
    fn count(&self) -> u64 {
        11
    }
}

tomada::export!(Plugin as Shop = Plugin);
