//! Fixture: one library exporting `shop::Shop` at ABI 1 (1.2) and at ABI 2 (2.0), so it
//! serves old and new hosts; each host takes the export at its own ABI.

/// The plugin, once per major: each impl is the same shop.
macro_rules! shop {
    ($api:ident, $plugin:ident, $major:literal) => {
        mod $api {
            use $api::{Basket, Order, Shop, State, Tier};

            #[derive(Default)]
            pub struct $plugin;

            #[tomada::implement]
            impl Shop for $plugin {
                fn place(&self, _order: Order) -> State {
                    State::Open
                }
                fn echo(&self, order: Order) -> Order {
                    order
                }
                fn seen(&self, order: Order) -> String {
                    format!("{order:?}")
                }
                fn state(&self, _id: u64) -> State {
                    State::Refunded { amount: $major }
                }
                fn accept(&self, state: State) -> String {
                    format!("{state:?}")
                }
                fn tier(&self, _gold: bool) -> Tier {
                    Tier::Basic
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
                    $major
                }
                fn audit(&self) -> String {
                    concat!("served at ABI ", $major).into()
                }
            }
        }
    };
}

shop!(shop_api_1_2, Major1, 1);
shop!(shop_api_2_0, Major2, 2);

tomada::export! {
    shop_api_1_2::Major1 as ::shop_api_1_2::Shop; name = "shop-abi-1", version = "1.2.0";
    shop_api_2_0::Major2 as ::shop_api_2_0::Shop; name = "shop-abi-2", version = "2.0.0";
}
