//! Contracts that evolve (issue 19; the rules are in `docs/evolution.md`): values of
//! two minor versions of the same types read each other by their byte form, and the
//! fit check accepts exactly the changes the rules allow. The real-plugin matrix is
//! `crates/host/tests/evolve.rs`.

use std::collections::BTreeMap;

use tomada::Abi;
use tomada::Contract;
use tomada::interface::{Change, Interface, Refusal, Side};

mod v10 {
    #[derive(tomada::Abi, Debug, Clone, PartialEq)]
    pub struct Order {
        pub id: u64,
        pub items: Vec<String>,
    }
    #[derive(tomada::Abi, Debug, Clone, PartialEq)]
    pub enum State {
        Open,
        Paid {
            amount: u64,
        },
        #[tomada(other)]
        Unknown,
    }
    #[derive(tomada::Abi, Debug, Clone, PartialEq)]
    pub enum Closed {
        A,
        B(u8),
    }
    #[derive(tomada::Abi, Debug, Clone, PartialEq)]
    pub struct Nest {
        pub orders: Vec<Order>,
        pub best: Option<Box<Order>>,
        pub by_id: std::collections::BTreeMap<u64, Order>,
        pub states: Vec<State>,
        pub tail: u8,
    }
    #[tomada::contract(abi = 1, name = "t::Shop")]
    pub trait Shop {
        fn place(&self, order: Order) -> State;
        fn closed(&self) -> Closed;
    }
}

mod v11 {
    #[derive(tomada::Abi, Debug, Clone, PartialEq)]
    pub struct Order {
        pub id: u64,
        pub items: Vec<String>,
        #[tomada(since = 1)]
        pub note: String,
        #[tomada(since = 1, default = 7)]
        pub priority: u32,
    }
    #[derive(tomada::Abi, Debug, Clone, PartialEq)]
    pub enum State {
        Open,
        #[tomada(since = 1)]
        Shipped(String, Order),
        Paid {
            amount: u64,
        },
        #[tomada(other)]
        Unknown,
    }
    #[derive(tomada::Abi, Debug, Clone, PartialEq)]
    pub enum Closed {
        A,
        B(u8),
    }
    #[derive(tomada::Abi, Debug, Clone, PartialEq)]
    pub struct Nest {
        pub orders: Vec<Order>,
        pub best: Option<Box<Order>>,
        pub by_id: std::collections::BTreeMap<u64, Order>,
        pub states: Vec<State>,
        pub tail: u8,
    }
    #[tomada::contract(abi = 1, name = "t::Shop")]
    pub trait Shop {
        fn place(&self, order: Order) -> State;
        fn closed(&self) -> Closed;
        /// A host-side default.
        #[tomada(since = 1)]
        fn count(&self) -> u64 {
            0
        }
        /// A host-side default that calls the plugin.
        #[tomada(since = 1)]
        fn describe(&self, order: Order) -> String {
            format!("default: {:?}", self.place(order))
        }
        /// No default.
        #[tomada(since = 1)]
        fn audit(&self) -> String;
        /// An `async` host-side default that calls the plugin.
        #[tomada(since = 1)]
        async fn summary(&self, order: Order) -> String {
            format!("async default: {:?}", self.place(order))
        }
    }
}

/// Contracts that change in ways the rules refuse.
mod broken {
    pub mod unmarked {
        #[derive(tomada::Abi)]
        pub struct Order {
            pub id: u64,
            pub items: Vec<String>,
            pub note: String,
        }
        #[tomada::contract(abi = 1, name = "t::Shop")]
        pub trait Shop {
            fn place(&self, order: Order) -> super::super::v10::State;
            fn closed(&self) -> super::super::v10::Closed;
        }
    }
    pub mod closed {
        #[derive(tomada::Abi)]
        pub enum Closed {
            A,
            B(u8),
            C,
        }
        #[tomada::contract(abi = 1, name = "t::Shop")]
        pub trait Shop {
            fn place(&self, order: super::super::v10::Order) -> super::super::v10::State;
            fn closed(&self) -> Closed;
        }
    }
}

fn bytes<T: Abi>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    out
}

fn read<T: Abi>(bytes: Vec<u8>) -> T {
    T::decode_owned(bytes).unwrap()
}

fn order11() -> v11::Order {
    v11::Order { id: 1, items: vec!["a".into()], note: "n".into(), priority: 3 }
}

#[test]
fn an_older_side_ignores_appended_fields_and_a_newer_one_defaults_them() {
    let old: v10::Order = read(bytes(&order11()));
    assert_eq!(old, v10::Order { id: 1, items: vec!["a".into()] });
    let new: v11::Order = read(bytes(&old));
    assert_eq!(new, v11::Order { id: 1, items: vec!["a".into()], note: String::new(), priority: 7 });
}

#[test]
fn nested_anywhere() {
    let o = order11();
    let nest = v11::Nest {
        orders: vec![o.clone(), o.clone()],
        best: Some(Box::new(o.clone())),
        by_id: BTreeMap::from([(1, o.clone()), (2, o.clone())]),
        states: vec![v11::State::Shipped("sea".into(), o.clone()), v11::State::Paid { amount: 2 }],
        tail: 9,
    };
    let old: v10::Nest = read(bytes(&nest));
    let o10 = v10::Order { id: 1, items: vec!["a".into()] };
    assert_eq!(
        old,
        v10::Nest {
            orders: vec![o10.clone(), o10.clone()],
            best: Some(Box::new(o10.clone())),
            by_id: BTreeMap::from([(1, o10.clone()), (2, o10.clone())]),
            states: vec![v10::State::Unknown, v10::State::Paid { amount: 2 }],
            tail: 9,
        }
    );
    let back: v11::Nest = read(bytes(&old));
    let defaulted = v11::Order { note: String::new(), priority: 7, ..o };
    assert_eq!(back.orders, vec![defaulted.clone(), defaulted.clone()]);
    assert_eq!(back.best, Some(Box::new(defaulted.clone())));
    assert_eq!(back.states, vec![v11::State::Unknown, v11::State::Paid { amount: 2 }]);
    assert_eq!(back.tail, 9);
}

/// Map and set keys of types that evolved: 1.0's `Color` lacks 1.1's `Blue`, 1.0's
/// `Spot` 1.1's `y`.
mod keys {
    pub mod v10 {
        #[derive(tomada::Abi, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Color {
            Red,
            #[tomada(other)]
            Unknown,
        }
        #[derive(tomada::Abi, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct Spot {
            pub x: u8,
        }
        #[tomada::contract(abi = 1, name = "t::Paint")]
        pub trait Paint {
            fn palette(&self) -> std::collections::BTreeMap<Color, u32>;
            fn paint(&self, spots: std::collections::BTreeMap<Spot, Color>) -> u64;
        }
    }
    pub mod v11 {
        #[derive(tomada::Abi, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Color {
            Red,
            #[tomada(since = 1)]
            Blue,
            #[tomada(other)]
            Unknown,
        }
        #[derive(tomada::Abi, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct Spot {
            pub x: u8,
            #[tomada(since = 1)]
            pub y: u8,
        }
        #[tomada::contract(abi = 1, name = "t::Paint")]
        pub trait Paint {
            fn palette(&self) -> std::collections::BTreeMap<Color, u32>;
            fn paint(&self, spots: std::collections::BTreeMap<Spot, Color>) -> u64;
        }
    }

    /// A plugin of each version: `palette` answers keys 1.0 cannot tell apart.
    #[derive(Default)]
    pub struct Old;
    impl v10::Paint for Old {
        fn palette(&self) -> std::collections::BTreeMap<v10::Color, u32> {
            [(v10::Color::Red, 1)].into()
        }
        fn paint(&self, spots: std::collections::BTreeMap<v10::Spot, v10::Color>) -> u64 {
            spots.len() as u64
        }
    }
    #[derive(Default)]
    pub struct New;
    impl v11::Paint for New {
        fn palette(&self) -> std::collections::BTreeMap<v11::Color, u32> {
            [(v11::Color::Blue, 1), (v11::Color::Unknown, 2)].into()
        }
        fn paint(&self, spots: std::collections::BTreeMap<v11::Spot, v11::Color>) -> u64 {
            spots.len() as u64
        }
    }
    pub static OLD: v10::PaintVTable = <dyn v10::Paint>::__tomada_vtable::<Old>();
    pub static NEW: v11::PaintVTable = <dyn v11::Paint>::__tomada_vtable::<New>();
}

/// Keys a newer side tells apart by what an older one does not know are equal there:
/// the older side refuses the map or set (never keeps one entry of two), and the error
/// names the evolved key type as the likely cause and where the caveat is written.
#[test]
fn keys_equal_only_to_an_older_side_are_refused_naming_the_evolved_key() {
    use keys::{v10, v11};
    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
    use tomada::wire::WireError;
    let decode = |bytes: Vec<u8>| -> Result<BTreeMap<v10::Color, u32>, WireError> { Abi::decode_owned(bytes) };
    // `Blue` reads as `Unknown` at 1.0, beside the real `Unknown`.
    let colors = BTreeMap::from([(v11::Color::Blue, 1u32), (v11::Color::Unknown, 2)]);
    let err = decode(bytes(&colors)).unwrap_err();
    assert_eq!(err, WireError::DuplicateKey);
    let said = err.to_string();
    for part in [
        "a map or set holds the same key twice",
        "the key type likely evolved",
        "a variant or field this side does not know",
        "docs/evolution.md",
    ] {
        assert!(said.contains(part), "{part}: {said}");
    }
    let set: HashSet<v11::Color> = HashSet::from([v11::Color::Blue, v11::Color::Unknown]);
    assert_eq!(HashSet::<v10::Color>::decode_owned(bytes(&set)), Err(WireError::DuplicateKey));
    // Spots that differ only in `y`, which 1.0 skips, are one spot there.
    let spots = HashMap::from([(v11::Spot { x: 1, y: 1 }, "a".to_owned()), (v11::Spot { x: 1, y: 2 }, "b".to_owned())]);
    assert_eq!(HashMap::<v10::Spot, String>::decode_owned(bytes(&spots)), Err(WireError::DuplicateKey));
    let spots = BTreeSet::from([v11::Spot { x: 1, y: 1 }, v11::Spot { x: 1, y: 2 }]);
    assert_eq!(BTreeSet::<v10::Spot>::decode_owned(bytes(&spots)), Err(WireError::DuplicateKey));
    // Keys that stay apart at 1.0 read there, and the newer side reads older keys.
    let apart = BTreeMap::from([(v11::Color::Blue, 1u32), (v11::Color::Red, 2)]);
    assert_eq!(decode(bytes(&apart)), Ok(BTreeMap::from([(v10::Color::Unknown, 1), (v10::Color::Red, 2)])));
    let old = BTreeSet::from([v10::Spot { x: 1 }, v10::Spot { x: 2 }]);
    assert_eq!(
        BTreeSet::<v11::Spot>::decode_owned(bytes(&old)),
        Ok(BTreeSet::from([v11::Spot { x: 1, y: 0 }, v11::Spot { x: 2, y: 0 }]))
    );
}

/// The same, in calls between sides of the two versions (by byte form, as a host calls
/// a plugin of another minor version): a 1.0 host reading a 1.1 plugin's answer, a 1.0
/// plugin reading a 1.1 host's arguments. The call fails as a whole, saying why.
#[test]
fn calls_with_keys_equal_only_to_the_older_side_fail_naming_the_evolved_key() {
    use keys::{v10, v11};
    use std::collections::BTreeMap;
    use tomada::CallError;
    use tomada::wire::WireError;
    let [_, (_, old_host, _new_plugin)] = crate::contract::clients::<dyn v10::Paint, _>(
        (&keys::NEW as *const v11::PaintVTable).cast(),
        <dyn v11::Paint>::__tomada_dispatch::<keys::New>,
        keys::New::default,
        2,
        1,
    );
    let err = old_host.palette().unwrap_err();
    assert_eq!(err, CallError::Answer(WireError::DuplicateKey));
    let said = err.to_string();
    assert!(said.contains("the key type likely evolved") && said.contains("docs/evolution.md"), "{said}");
    // Keys that stay apart at 1.0 cross.
    let apart = BTreeMap::from([(v10::Spot { x: 1 }, v10::Color::Red), (v10::Spot { x: 2 }, v10::Color::Unknown)]);
    assert_eq!(old_host.paint(apart), Ok(2));

    let [_, (_, new_host, _old_plugin)] = crate::contract::clients::<dyn v11::Paint, _>(
        (&keys::OLD as *const v10::PaintVTable).cast(),
        <dyn v10::Paint>::__tomada_dispatch::<keys::Old>,
        keys::Old::default,
        2,
        0,
    );
    let spots =
        BTreeMap::from([(v11::Spot { x: 1, y: 1 }, v11::Color::Red), (v11::Spot { x: 1, y: 2 }, v11::Color::Blue)]);
    let err = new_host.paint(spots).unwrap_err();
    let CallError::Channel { message } = &err else { panic!("{err:?}") };
    assert!(message.starts_with("malformed arguments: a map or set holds the same key twice; "), "{message}");
    let said = err.to_string();
    for part in ["cannot read: malformed arguments", "the key type likely evolved", "docs/evolution.md"] {
        assert!(said.contains(part), "{part}: {said}");
    }
    assert_eq!(new_host.palette(), Ok(BTreeMap::from([(v11::Color::Red, 1)])));
}

/// `tomada diff`'s warning: the key types that changed, each once, either way round.
#[test]
fn evolved_key_types_are_named() {
    use tomada::interface::evolved_keys;
    let (v10, v11) = (iface::<dyn keys::v10::Paint>(), iface::<dyn keys::v11::Paint>());
    for warned in [evolved_keys(&v10, &v11), evolved_keys(&v11, &v10)] {
        assert_eq!(warned.len(), 2, "{warned:#?}");
        assert!(warned[0].starts_with("`Color` changed between the two builds and is inside the key of `BTreeMap<Color, u32>` (method `palette`): keys that differ only in a variant or field one side does not know are equal there"), "{warned:#?}");
        assert!(warned[1].starts_with("`Spot` changed between the two builds and is inside the key of `BTreeMap<Spot, Color>` (method `paint`)"), "{warned:#?}");
        assert!(warned[1].ends_with("(docs/evolution.md)"), "{warned:#?}");
    }
    // Unchanged, or changed only outside keys: nothing to say.
    assert_eq!(evolved_keys(&v11, &v11), Vec::<String>::new());
    assert_eq!(evolved_keys(&iface::<dyn v10::Shop>(), &iface::<dyn v11::Shop>()), Vec::<String>::new());
}

#[test]
fn a_variant_keeps_its_number_wherever_it_is_declared() {
    // `Shipped` is declared second in 1.1, but numbered after every original variant.
    for (new, old) in [
        (v11::State::Open, v10::State::Open),
        (v11::State::Paid { amount: 4 }, v10::State::Paid { amount: 4 }),
        (v11::State::Unknown, v10::State::Unknown),
    ] {
        assert_eq!(read::<v10::State>(bytes(&new)), old);
        assert_eq!(read::<v11::State>(bytes(&old)), new);
    }
}

#[test]
fn a_closed_enum_refuses_a_variant_it_does_not_know() {
    let mut b = bytes(&v10::Closed::A);
    b[..4].copy_from_slice(&7u32.to_le_bytes());
    assert!(v10::Closed::decode_owned(b).is_err());
    // An open one reads it as `other`, skipping its block, and goes on.
    let mut b = bytes(&(v11::State::Shipped("x".into(), order11()), 5u8));
    assert_eq!(read::<(v10::State, u8)>(b.clone()), (v10::State::Unknown, 5));
    // An unknown unit variant (no block: the number's high bit is clear) is read as
    // `other` too, and what follows it is read as itself.
    let mut unit = 9u32.to_le_bytes().to_vec();
    unit.push(5);
    assert_eq!(read::<(v10::State, u8)>(unit), (v10::State::Unknown, 5));
    // A known variant with fields whose number says it has no block is an error.
    let mut paid = bytes(&v10::State::Paid { amount: 3 });
    paid[3] &= 0x7f;
    assert!(v10::State::decode_owned(paid).is_err());
    // A block that lies about its length is an error, not a skip past the end.
    b[4..12].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(<(v10::State, u8)>::decode_owned(b).is_err());
}

#[test]
fn an_original_field_missing_from_a_block_is_an_error() {
    // A 1.0 order cut short inside its block: `items` is not an appended field.
    let mut b = bytes(&v10::Order { id: 1, items: vec![] });
    b.truncate(16);
    b[..8].copy_from_slice(&8u64.to_le_bytes());
    assert!(v10::Order::decode_owned(b).is_err());
}

#[test]
fn in_process_forms_round_trip_with_appended_fields() {
    // Same version on both sides: the `#[repr(C)]` form carries every field.
    // SAFETY: made by `into_ffi` of the same type just now.
    let back = unsafe { v11::Order::from_ffi(order11().into_ffi()) };
    assert_eq!(back, order11());
}

fn iface<C: ?Sized + Contract>() -> Interface {
    Interface::from(&C::DESCRIPTION)
}

#[test]
fn appended_fields_and_variants_fit_both_ways_by_bytes() {
    let (old, new) = (iface::<dyn v10::Shop>(), iface::<dyn v11::Shop>());
    assert_ne!(old.fingerprint, new.fingerprint);
    assert_eq!(new.minor, 1, "a contract that appends a field is newer");
    for (host, plugin) in [(&old, &new), (&new, &old)] {
        let fit = host.fit(plugin).unwrap();
        assert_eq!(fit.provided, 2);
        assert!(fit.by_bytes, "the `#[repr(C)]` forms differ");
    }
    assert!(!new.fit(&new).unwrap().by_bytes);
    let order = new.types.iter().find(|t| t.name == "Order").unwrap();
    assert_eq!(
        order.to_string(),
        "struct Order { id: u64, items: Vec<String>, note: String [since 1], priority: u32 [since 1] }"
    );
    let state = new.types.iter().find(|t| t.name == "State").unwrap();
    assert_eq!(
        state.to_string(),
        "enum State { Open, Paid { amount: u64 }, #[other] Unknown, Shipped(String, Order) [since 1] }"
    );
}

#[test]
fn a_field_without_since_is_refused_with_what_to_write() {
    let (old, unmarked) = (iface::<dyn v10::Shop>(), iface::<dyn broken::unmarked::Shop>());
    for (host, plugin, side) in [(&old, &unmarked, Side::Plugin), (&unmarked, &old, Side::Host)] {
        let why = host.fit(plugin).unwrap_err();
        assert_eq!(why.len(), 1, "{why:?}");
        assert_eq!(why[0].method, "place");
        assert_eq!(
            why[0].change,
            Change::OnlyIn { member: "field", name: "note".into(), side, why: Refusal::NotAppended }
        );
        assert!(why[0].to_string().contains("with `#[tomada(since = N)]`"), "{}", why[0]);
    }
    let why = iface::<dyn v11::Shop>().fit(&unmarked).unwrap_err();
    assert_eq!(why[0].change, Change::Since { plugin: 0, host: 1 });
}

#[test]
fn a_variant_added_to_a_closed_enum_is_refused_with_the_way_out() {
    let why = iface::<dyn v10::Shop>().fit(&iface::<dyn broken::closed::Shop>()).unwrap_err();
    assert_eq!(why.len(), 1, "{why:?}");
    assert_eq!(why[0].method, "closed");
    assert_eq!(
        why[0].change,
        Change::OnlyIn { member: "variant", name: "C".into(), side: Side::Plugin, why: Refusal::ClosedEnum }
    );
    assert!(why[0].to_string().contains("`#[tomada(other)]` unit variant in the next major"), "{}", why[0]);
}

/// A 1.0 plugin.
struct OldShop {
    fail: bool,
}

impl v10::Shop for OldShop {
    fn place(&self, order: v10::Order) -> v10::State {
        assert!(!self.fail, "no orders today");
        v10::State::Paid { amount: order.items.len() as u64 }
    }
    fn closed(&self) -> v10::Closed {
        v10::Closed::B(1)
    }
}

static OLD_VTABLE: v10::ShopVTable = <dyn v10::Shop>::__tomada_vtable::<OldShop>();

/// A 1.1 client of a 1.0 plugin, by byte form (as the host calls a plugin whose types
/// differ from its own; the in-process client `clients` also makes is not used: its
/// `#[repr(C)]` forms would not match).
fn older_plugin(fail: bool) -> (v11::ShopClient, impl Sized) {
    let [_, (_, client, plugin)] = crate::contract::clients::<dyn v11::Shop, _>(
        (&OLD_VTABLE as *const v10::ShopVTable).cast(),
        <dyn v10::Shop>::__tomada_dispatch::<OldShop>,
        move || OldShop { fail },
        2,
        0,
    );
    (client, plugin)
}

#[test]
fn default_bodies_run_in_the_host_for_an_older_plugin() {
    let (client, _plugin) = older_plugin(false);
    assert_eq!(client.place(order11()), Ok(v11::State::Paid { amount: 1 }));
    assert_eq!(client.count(), Ok(0));
    assert_eq!(client.describe(order11()), Ok("default: Paid { amount: 1 }".to_owned()));
    let err = client.audit().unwrap_err();
    assert!(matches!(err, tomada::CallError::NotProvided { method: "audit", .. }), "{err:?}");
}

/// Polls `future` on this thread until it is ready (a fallback's future of an
/// in-process client never waits on another thread).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

#[test]
fn async_default_bodies_run_in_the_host_for_an_older_plugin() {
    let (client, _plugin) = older_plugin(false);
    assert_eq!(block_on(client.summary(order11())), Ok("async default: Paid { amount: 1 }".to_owned()));
    let (client, _plugin) = older_plugin(true);
    let err = block_on(client.summary(order11())).unwrap_err();
    let tomada::CallError::Panicked { message } = &err else { panic!("{err:?}") };
    assert!(
        message.starts_with("the host-side default of `summary` failed: its call to `Shop::place` failed:"),
        "{message}"
    );
    assert!(message.contains("no orders today"), "{message}");
    assert_eq!(client.count(), Ok(0), "still usable");
}

#[test]
fn a_failed_call_inside_a_default_body_is_the_calls_error() {
    let (client, _plugin) = older_plugin(true);
    let err = client.describe(order11()).unwrap_err();
    let tomada::CallError::Panicked { message } = &err else { panic!("{err:?}") };
    assert!(
        message.starts_with("the host-side default of `describe` failed: its call to `Shop::place` failed:"),
        "{message}"
    );
    assert!(message.contains("no orders today"), "{message}");
    // The client is still usable.
    assert_eq!(client.count(), Ok(0));
}

/// Objects' methods: the rules hold inside a contract object's signatures too.
mod objects {
    pub mod old {
        #[tomada::contract(abi = 1, name = "t::Visitor")]
        pub trait Visitor {
            fn order(&self, order: super::super::v10::Order) -> super::super::v10::State;
        }
        #[tomada::contract(abi = 1, name = "t::Walk")]
        pub trait Walk {
            fn walk(&self, visitor: &dyn Visitor) -> u64;
        }
    }
    pub mod new {
        #[tomada::contract(abi = 1, name = "t::Visitor")]
        pub trait Visitor {
            fn order(&self, order: super::super::v11::Order) -> super::super::v11::State;
        }
        #[tomada::contract(abi = 1, name = "t::Walk")]
        pub trait Walk {
            fn walk(&self, visitor: &dyn Visitor) -> u64;
        }
    }
    pub mod unmarked {
        #[tomada::contract(abi = 1, name = "t::Visitor")]
        pub trait Visitor {
            fn order(&self, order: super::super::broken::unmarked::Order) -> super::super::v10::State;
        }
        #[tomada::contract(abi = 1, name = "t::Walk")]
        pub trait Walk {
            fn walk(&self, visitor: &dyn Visitor) -> u64;
        }
    }
}

#[test]
fn the_rules_hold_inside_objects_methods() {
    let (old, new) = (iface::<dyn objects::old::Walk>(), iface::<dyn objects::new::Walk>());
    assert!(old.fit(&new).unwrap().by_bytes);
    assert!(new.fit(&old).unwrap().by_bytes);
    let why = old.fit(&iface::<dyn objects::unmarked::Walk>()).unwrap_err();
    assert_eq!(why.len(), 1, "{why:?}");
    assert_eq!(why[0].at, "argument 1 `dyn t::Visitor`, method `order`, argument 1 `Order`", "{}", why[0]);
    assert!(matches!(why[0].change, Change::OnlyIn { member: "field", .. }), "{:?}", why[0]);
}

/// A method appended to an object contract is refused (object contracts cannot gain
/// methods yet), and the refusal says so rather than only listing the methods.
#[test]
fn an_object_contract_that_gained_a_method_says_it_cannot_yet() {
    let difference = tomada::interface::Difference {
        method: "open".into(),
        at: "result `Box<dyn Counter>`".into(),
        change: Change::ObjectMethods {
            plugin: vec!["bump".into(), "version".into(), "extra".into()],
            host: vec!["bump".into(), "version".into()],
        },
    };
    let text = difference.to_string();
    assert!(text.contains("its methods are bump, version, extra in the plugin, bump, version in the host"), "{text}");
    assert!(text.contains("cannot change in a minor version yet"), "{text}");
    assert!(text.contains("docs/evolution.md"), "{text}");
}

/// A struct met first inside a contract object (where a field one side lacks cannot
/// be told to be a removal) and then directly in the same method: the direct use is
/// compared too, so a since-field removed from a build of the same minor is refused
/// whichever order the arguments come in (it loaded, the field silently zero, with
/// the object argument first).
mod object_first {
    pub mod full {
        #[derive(tomada::Abi)]
        pub struct Item {
            pub n: u32,
            #[tomada(since = 2)]
            pub weight: u32,
        }
        #[tomada::contract(abi = 1, name = "t::Cur")]
        pub trait Cur {
            fn item(&self) -> Item;
        }
        #[tomada::contract(abi = 1, name = "t::Both")]
        pub trait Both {
            fn both(&self, cursor: Box<dyn Cur>, item: Item) -> u64;
            fn swapped(&self, item: Item, cursor: Box<dyn Cur>) -> u64;
            #[tomada(since = 2)]
            fn two(&self) -> u32;
        }
    }
    pub mod removed {
        #[derive(tomada::Abi)]
        pub struct Item {
            pub n: u32,
        }
        #[tomada::contract(abi = 1, name = "t::Cur")]
        pub trait Cur {
            fn item(&self) -> Item;
        }
        #[tomada::contract(abi = 1, name = "t::Both")]
        pub trait Both {
            fn both(&self, cursor: Box<dyn Cur>, item: Item) -> u64;
            fn swapped(&self, item: Item, cursor: Box<dyn Cur>) -> u64;
            #[tomada(since = 2)]
            fn two(&self) -> u32;
        }
    }
}

#[test]
fn a_removed_field_is_refused_whether_or_not_an_object_uses_its_type_first() {
    let (full, removed) = (iface::<dyn object_first::full::Both>(), iface::<dyn object_first::removed::Both>());
    assert_eq!((full.minor, removed.minor), (2, 2));
    for (host, plugin) in [(&full, &removed), (&removed, &full)] {
        let why = host.fit(plugin).unwrap_err();
        for method in ["both", "swapped"] {
            assert!(
                why.iter().any(|d| d.method == method
                    && matches!(&d.change, Change::OnlyIn { name, why: Refusal::Removed { since: 2, minor: 2 }, .. } if name == "weight")),
                "{method}: {why:?}"
            );
        }
    }
}
