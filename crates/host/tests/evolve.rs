//! The contract-evolution matrix, with real plugins built against each version of
//! `evolve::Api` (tests/contracts/evolve-api-*) and hosts of each version.

use tomada_host::{CallError, LoadError};
use tomada_test_support::cdylib;

type Host10 = dyn evolve_api_1_0::Api;
type Host11 = dyn evolve_api_1_1::Api;
type Host20 = dyn evolve_api_2_0::Api;

#[test]
fn plugin_1_0_in_host_1_1_works_and_says_what_it_lacks() {
    let plugin = tomada_host::load::<Host11>(cdylib("evolve-1-0")).unwrap();
    assert_eq!(plugin.manifest().contract.version(), "1.0");
    assert_eq!(plugin.greet("Ana").unwrap(), "oi Ana, de 1.0");
    assert_eq!(plugin.count(b"abc").unwrap(), 3);
    let err = plugin.farewell("Ana").unwrap_err();
    assert!(
        matches!(&err, CallError::NotProvided { method: "farewell", added_in, plugin_version } if added_in == "1.1" && plugin_version == "1.0"),
        "{err:?}"
    );
    assert!(err.to_string().contains("not provided by this plugin (built against contract 1.0"), "{err}");
    // Still usable afterwards.
    assert_eq!(plugin.count(b"").unwrap(), 0);
}

#[test]
fn plugin_1_1_in_host_1_0_works() {
    let plugin = tomada_host::load::<Host10>(cdylib("evolve-1-1")).unwrap();
    assert_eq!(plugin.manifest().contract.version(), "1.1");
    assert_eq!(plugin.greet("Ana").unwrap(), "oi Ana, de 1.1");
    assert_eq!(plugin.count(b"abcd").unwrap(), 4);
}

#[test]
fn same_versions_work() {
    let p = tomada_host::load::<Host10>(cdylib("evolve-1-0")).unwrap();
    assert_eq!(p.greet("x").unwrap(), "oi x, de 1.0");
    let p = tomada_host::load::<Host11>(cdylib("evolve-1-1")).unwrap();
    assert_eq!(p.farewell("x").unwrap(), "tchau x");
}

#[test]
fn a_major_mismatch_is_refused_either_way() {
    for fixture in ["evolve-1-0", "evolve-1-1"] {
        let err = tomada_host::load::<Host20>(cdylib(fixture)).unwrap_err();
        assert!(matches!(err, LoadError::AbiMismatch { expected: 2, found: 1, .. }), "{fixture}: {err:?}");
        assert!(err.to_string().contains("evolve::Api ABI 1, this host speaks ABI 2"), "{err}");
    }
}

#[test]
fn a_change_that_is_not_an_append_is_refused_with_what_differs() {
    let path = cdylib("evolve-1-1-broken");
    let errors = [tomada_host::load::<Host10>(&path).unwrap_err(), tomada_host::load::<Host11>(&path).unwrap_err()];
    for err in errors {
        let LoadError::LayoutMismatch { differences, .. } = &err else { panic!("{err:?}") };
        let printed: Vec<String> = differences.iter().map(ToString::to_string).collect();
        assert_eq!(printed, ["method `count` changed: argument 1 is `Vec<u8>` in the plugin, `&[u8]` in the host"]);
        assert!(
            matches!(&differences[0].change, tomada::interface::Change::Retyped { plugin, host } if plugin == "Vec<u8>" && host == "&[u8]"),
            "{differences:?}"
        );
        assert!(err.to_string().contains("method `count` changed"), "{err}");
    }
}

/// The evolution matrix of issue 19: real plugins built against `shop::Shop` 1.0, 1.1,
/// 1.2 and 2.0 (tests/contracts/shop-api-*, tests/plugins/shop-*), each loaded into a
/// host of each version, in-process and isolated. Between 1.x versions, `Order` gains
/// fields with `since` (`note` in 1.1, `priority` with `default = 7` in 1.2), the open
/// enum `State` gains variants (`Shipped`, `Refunded`), and the trait gains methods
/// with host-side default bodies (`count`, `describe`) and without (`audit`). Every
/// pair loads and behaves as docs/evolution.md says; 2.0 and 1.x refuse each other;
/// plugins whose contract changed in a way the rules do not allow are refused before
/// any of their code runs (their constructors panic), naming the member.
mod matrix {
    use shop_api_1_0 as v10;
    use shop_api_1_1 as v11;
    use shop_api_1_2 as v12;
    use shop_api_2_0 as v20;
    use std::collections::BTreeMap;
    use tomada_host::isolate::Mode;
    use tomada_host::{CallError, LoadError, Plugin};
    use tomada_test_support::cdylib;

    /// The compatible plugins: fixture, ABI, minor.
    const PLUGINS: [(&str, u32, u32); 4] =
        [("shop-1-0", 1, 0), ("shop-1-1", 1, 1), ("shop-1-2", 1, 2), ("shop-2-0", 2, 2)];

    /// The modes this platform has (isolation is Unix only).
    fn modes() -> Vec<(&'static str, Mode)> {
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut all = vec![("in-process", Mode::InProcess)];
        #[cfg(unix)]
        all.push(("isolated", Mode::Isolated(crate::isolate::isolation())));
        all
    }

    /// The smallest executor: polls on this thread, parks until woken.
    pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::task::{Context, Poll, Wake, Waker};
        struct Unpark(std::thread::Thread, AtomicBool);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.1.store(true, Ordering::Release);
                self.0.unpark();
            }
        }
        let unpark = Arc::new(Unpark(std::thread::current(), AtomicBool::new(false)));
        let waker = Waker::from(Arc::clone(&unpark));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                return v;
            }
            while !unpark.1.swap(false, Ordering::Acquire) {
                std::thread::park();
            }
        }
    }

    /// A basket holding `order` every way it can be nested.
    macro_rules! basket {
        ($v:ident, $order:expr, $state:expr) => {{
            let o = $order;
            $v::Basket {
                orders: vec![o.clone(), o.clone()],
                best: Some(Box::new(o.clone())),
                by_id: BTreeMap::from([(1, o.clone())]),
                pair: (o, $state),
            }
        }};
    }

    fn host_1_0(plugin: &Plugin<dyn v10::Shop>, p: u32, ctx: &str) {
        let order = v10::Order { id: 1, items: vec!["a".into()] };
        // An older side ignores what it does not know: the newer plugin's defaults
        // (and whatever it adds) never reach this host.
        assert_eq!(plugin.echo(order.clone()).unwrap(), order, "{ctx}");
        let seen = plugin.seen(order.clone()).unwrap();
        match p {
            0 => assert_eq!(seen, r#"Order { id: 1, items: ["a"] }"#, "{ctx}"),
            1 => assert_eq!(seen, r#"Order { id: 1, items: ["a"], note: "" }"#, "{ctx}"),
            _ => assert_eq!(seen, r#"Order { id: 1, items: ["a"], note: "", priority: 7 }"#, "{ctx}"),
        }
        assert_eq!(plugin.place(order.clone()).unwrap(), v10::State::Paid { amount: 1 }, "{ctx}");
        assert_eq!(plugin.state(1).unwrap(), v10::State::Paid { amount: 5 }, "{ctx}");
        // `Shipped` (1.1) and `Refunded` (1.2) arrive as the `other` variant.
        assert_eq!(plugin.state(2).unwrap(), v10::State::Unknown, "{ctx}");
        assert_eq!(plugin.state(3).unwrap(), v10::State::Unknown, "{ctx}");
        assert_eq!(plugin.accept(v10::State::Paid { amount: 2 }).unwrap(), "Paid { amount: 2 }", "{ctx}");
        assert_eq!(plugin.tier(true).unwrap(), v10::Tier::Gold, "{ctx}");
        let b = basket!(v10, order.clone(), v10::State::Open);
        assert_eq!(plugin.basket(b.clone()).unwrap(), b, "{ctx}");
        assert_eq!(plugin.echo_many(vec![order.clone(); 3]).unwrap(), vec![order.clone(); 3], "{ctx}");
        assert_eq!(block_on(plugin.later(order.clone())).unwrap(), order, "{ctx}");
    }

    fn host_1_1(plugin: &Plugin<dyn v11::Shop>, p: u32, ctx: &str) {
        let order = v11::Order { id: 1, items: vec!["a".into()], note: "n".into() };
        // A plugin of 1.0 drops `note`; its answer arrives with the default.
        let back = if p >= 1 { order.clone() } else { v11::Order { note: String::new(), ..order.clone() } };
        assert_eq!(plugin.echo(order.clone()).unwrap(), back, "{ctx}");
        let seen = plugin.seen(order.clone()).unwrap();
        match p {
            0 => assert_eq!(seen, r#"Order { id: 1, items: ["a"] }"#, "{ctx}"),
            1 => assert_eq!(seen, r#"Order { id: 1, items: ["a"], note: "n" }"#, "{ctx}"),
            _ => assert_eq!(seen, r#"Order { id: 1, items: ["a"], note: "n", priority: 7 }"#, "{ctx}"),
        }
        let shipped = if p >= 1 { v11::State::Shipped("by sea".into()) } else { v11::State::Unknown };
        assert_eq!(plugin.state(2).unwrap(), shipped, "{ctx}");
        assert_eq!(plugin.state(3).unwrap(), v11::State::Unknown, "{ctx}");
        let accepted = if p >= 1 { r#"Shipped("x")"# } else { "Unknown" };
        assert_eq!(plugin.accept(v11::State::Shipped("x".into())).unwrap(), accepted, "{ctx}");
        // Default bodies: the plugin's own method, or the host's fallback, which
        // calls the plugin's `state`.
        assert_eq!(plugin.count().unwrap(), if p >= 1 { 10 + u64::from(p) } else { 0 }, "{ctx}");
        let described = if p >= 1 {
            format!("plugin 1.{p}: Paid {{ amount: 5 }}")
        } else {
            "host default: Paid { amount: 5 }".into()
        };
        assert_eq!(plugin.describe(1).unwrap(), described, "{ctx}");
        let b = basket!(v11, order.clone(), v11::State::Shipped("s".into()));
        let expected =
            basket!(v11, back.clone(), if p >= 1 { v11::State::Shipped("s".into()) } else { v11::State::Unknown });
        assert_eq!(plugin.basket(b).unwrap(), expected, "{ctx}");
        assert_eq!(block_on(plugin.later(order.clone())).unwrap(), back, "{ctx}");
    }

    fn host_1_2(plugin: &Plugin<dyn v12::Shop>, p: u32, ctx: &str) {
        let order = v12::Order { id: 1, items: vec!["a".into()], note: "n".into(), priority: 3 };
        let back = v12::Order {
            note: if p >= 1 { "n".into() } else { String::new() },
            priority: if p >= 2 { 3 } else { 7 },
            ..order.clone()
        };
        assert_eq!(plugin.echo(order.clone()).unwrap(), back, "{ctx}");
        assert_eq!(plugin.echo_many(vec![order.clone(); 2]).unwrap(), vec![back.clone(); 2], "{ctx}");
        let refunded = if p >= 2 { v12::State::Refunded { amount: 9 } } else { v12::State::Unknown };
        assert_eq!(plugin.state(3).unwrap(), refunded, "{ctx}");
        let accepted = if p >= 2 { "Refunded { amount: 4 }" } else { "Unknown" };
        assert_eq!(plugin.accept(v12::State::Refunded { amount: 4 }).unwrap(), accepted, "{ctx}");
        assert_eq!(plugin.count().unwrap(), if p >= 1 { 10 + u64::from(p) } else { 0 }, "{ctx}");
        // No body: older plugins say so.
        match plugin.audit() {
            Ok(text) => assert!(p >= 2 && text == "audited by 1.2", "{ctx}: {text}"),
            Err(e) => assert!(p < 2 && matches!(&e, CallError::NotProvided { method: "audit", .. }), "{ctx}: {e:?}"),
        }
        let b = basket!(v12, order.clone(), v12::State::Refunded { amount: 1 });
        let expected =
            basket!(v12, back.clone(), if p >= 2 { v12::State::Refunded { amount: 1 } } else { v12::State::Unknown });
        assert_eq!(plugin.basket(b).unwrap(), expected, "{ctx}");
        assert_eq!(block_on(plugin.later(order)).unwrap(), back, "{ctx}");
    }

    fn refused_by_abi<C: ?Sized + tomada_host::Contract>(fixture: &str, mode: &Mode, host_abi: u32, plugin_abi: u32) {
        let err = tomada_host::load_with::<C>(cdylib(fixture), mode).unwrap_err();
        assert!(
            matches!(err, LoadError::AbiMismatch { expected, found, .. } if expected == host_abi && found == plugin_abi),
            "{fixture}: {err:?}"
        );
    }

    #[test]
    fn every_plugin_in_every_host_both_modes() {
        for (mode_name, mode) in modes() {
            for (fixture, abi, p) in PLUGINS {
                let ctx = format!("plugin {fixture} {mode_name}");
                if abi == 1 {
                    host_1_0(
                        &tomada_host::load_with::<dyn v10::Shop>(cdylib(fixture), &mode).unwrap(),
                        p,
                        &format!("host 1.0, {ctx}"),
                    );
                    host_1_1(
                        &tomada_host::load_with::<dyn v11::Shop>(cdylib(fixture), &mode).unwrap(),
                        p,
                        &format!("host 1.1, {ctx}"),
                    );
                    host_1_2(
                        &tomada_host::load_with::<dyn v12::Shop>(cdylib(fixture), &mode).unwrap(),
                        p,
                        &format!("host 1.2, {ctx}"),
                    );
                    refused_by_abi::<dyn v20::Shop>(fixture, &mode, 2, 1);
                } else {
                    refused_by_abi::<dyn v10::Shop>(fixture, &mode, 1, 2);
                    refused_by_abi::<dyn v11::Shop>(fixture, &mode, 1, 2);
                    refused_by_abi::<dyn v12::Shop>(fixture, &mode, 1, 2);
                    let plugin = tomada_host::load_with::<dyn v20::Shop>(cdylib(fixture), &mode).unwrap();
                    let order = v20::Order { id: 2, items: vec![], note: "x".into(), priority: 1 };
                    assert_eq!(plugin.echo(order.clone()).unwrap(), order, "{ctx}");
                    assert_eq!(plugin.state(3).unwrap(), v20::State::Refunded { amount: 9 }, "{ctx}");
                }
            }
        }
    }

    /// One library, two majors: each host takes the export at its own ABI, in both
    /// modes, where a library with two exports of one contract used to be ambiguous.
    #[test]
    fn a_library_of_two_majors_serves_old_and_new_hosts() {
        for (mode_name, mode) in modes() {
            let path = cdylib("shop-majors");
            let p10 = tomada_host::load_with::<dyn v10::Shop>(&path, &mode).unwrap();
            assert_eq!(p10.manifest().info.name, "shop-abi-1", "{mode_name}");
            assert_eq!(p10.manifest().contract.version(), "1.2", "{mode_name}");
            assert_eq!(p10.state(0).unwrap(), v10::State::Unknown, "{mode_name}: `Refunded` is 1.2's");
            let p12 = tomada_host::load_with::<dyn v12::Shop>(&path, &mode).unwrap();
            assert_eq!(p12.audit().unwrap(), "served at ABI 1", "{mode_name}");
            assert_eq!(p12.state(0).unwrap(), v12::State::Refunded { amount: 1 }, "{mode_name}");
            let p20 = tomada_host::load_with::<dyn v20::Shop>(&path, &mode).unwrap();
            assert_eq!(p20.manifest().info.name, "shop-abi-2", "{mode_name}");
            assert_eq!(p20.audit().unwrap(), "served at ABI 2", "{mode_name}");
            assert_eq!(p20.count().unwrap(), 2, "{mode_name}");
        }
    }

    /// What a host of each version says about each incompatible plugin.
    fn refusal<C: ?Sized + tomada_host::Contract>(fixture: &str, mode: &Mode) -> Vec<String> {
        match tomada_host::load_with::<C>(cdylib(fixture), mode) {
            Err(LoadError::LayoutMismatch { differences, .. }) => differences.iter().map(ToString::to_string).collect(),
            Err(other) => panic!("{fixture}: {other:?}"),
            Ok(_) => panic!("{fixture} loaded"),
        }
    }

    #[test]
    fn changes_the_rules_do_not_allow_are_refused_before_any_plugin_code_runs() {
        for (_, mode) in modes() {
            // `note` appended without `since`.
            let why = refusal::<dyn v10::Shop>("shop-1-1-unmarked", &mode);
            assert!(
                why.contains(&"method `place` changed: argument 1 `Order`, field `note` is only in the plugin: a field is added at the end of a struct with `#[tomada(since = N)]` (N the new minor version); removing one breaks every side that reads it".to_owned()),
                "{why:#?}"
            );
            let why = refusal::<dyn v11::Shop>("shop-1-1-unmarked", &mode);
            assert!(
                why.contains(&"method `place` changed: argument 1 `Order`, field `note` was added in minor 0 per the plugin, 1 per the host".to_owned()),
                "{why:#?}"
            );
            // `note` inserted before `items`.
            let why = refusal::<dyn v10::Shop>("shop-1-1-inserted", &mode);
            assert!(why[0].starts_with("method `place` changed: argument 1 `Order`, field `note` is only in the plugin: a field is added at the end of a struct with `#[tomada(since = N)]`"), "{why:#?}");
            let why = refusal::<dyn v12::Shop>("shop-1-1-inserted", &mode);
            assert!(why[0].starts_with("method `place` changed: argument 1 `Order`: field 2 is `note` in the plugin, `items` in the host (fields cannot be renamed, removed, inserted or moved: new ones go at the end with `#[tomada(since = N)]`)"), "{why:#?}");
            // A variant added to a closed enum.
            for why in [
                refusal::<dyn v10::Shop>("shop-1-1-closed", &mode),
                refusal::<dyn v11::Shop>("shop-1-1-closed", &mode),
                refusal::<dyn v12::Shop>("shop-1-1-closed", &mode),
            ] {
                assert_eq!(why.len(), 1, "{why:#?}");
                assert!(why[0].starts_with("method `tier` changed: the result `Tier`: variant `Platinum` is only in the plugin: the enum is closed"), "{why:#?}");
                assert!(
                    why[0].contains("give the enum a `#[tomada(other)]` unit variant in the next major"),
                    "{why:#?}"
                );
            }
            // 1.1's `note`, `Shipped` and `describe` removed from a build that is still
            // 1.1 (it has `count`): no older build, a removal. Hosts of 1.1 and later
            // refuse it; a 1.0 host, which knows none of them, loads it as a 1.1 plugin.
            let removed = "it was added in minor 1, and the other side is built against minor 1, which has it: it was removed, so two different contracts claim one version";
            for why in [
                refusal::<dyn v11::Shop>("shop-1-1-removed", &mode),
                refusal::<dyn v12::Shop>("shop-1-1-removed", &mode),
            ] {
                for said in [
                    format!(
                        "method `describe` is only in the host: {removed}; removing a method needs a new ABI number (docs/evolution.md)"
                    ),
                    format!(
                        "method `place` changed: argument 1 `Order`, field `note` is only in the host: {removed}; removing a field needs a new ABI number (docs/evolution.md)"
                    ),
                    format!(
                        "method `state` changed: the result `State`: variant `Shipped` is only in the host: {removed}; removing a variant needs a new ABI number (docs/evolution.md)"
                    ),
                ] {
                    assert!(why.contains(&said), "{said}\n{why:#?}");
                }
                // 1.2's `audit` is not a removal: the plugin's 1.1 predates it.
                assert!(!why.iter().any(|w| w.contains("audit")), "{why:#?}");
            }
            let plugin = tomada_host::load_with::<dyn v10::Shop>(cdylib("shop-1-1-removed"), &mode).unwrap();
            assert_eq!(plugin.state(1).unwrap(), v10::State::Paid { amount: 5 });
        }
    }

    #[test]
    fn the_refusal_names_both_versions_and_what_differs() {
        let err = tomada_host::load::<dyn v10::Shop>(cdylib("shop-1-1-unmarked")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "implements shop::Shop 1.0, which does not fit this host's shop::Shop 1.0: method `place` changed"
            ),
            "{text}"
        );
    }
}

/// Contract objects across minor versions (walk::Walk 1.0 and 1.1,
/// tests/contracts/walk-api-*): `Step` gains a field and the open enum `Mood` a
/// variant, inside objects' methods — a callback the host lends (`&dyn Visitor`) or
/// gives away (`Box<dyn Visitor>`, called later), an object the plugin makes
/// (`Handle<dyn Trail>`), and a callback passed to that object's method. Every host of
/// each version with every plugin of each version, in-process and isolated: where the
/// types differ, objects cross by number and their calls by byte form, in-process too,
/// so each side reads the other's values as the rules say. Walk 1.1 also adds an
/// `async fn` with a default body, which a 1.1 host runs for a 1.0 plugin.
mod objects {
    use std::sync::{Arc, Mutex};

    use tomada_host::isolate::Mode;
    use tomada_test_support::cdylib;

    /// The modes this platform has (isolation is Unix only).
    fn modes() -> Vec<(&'static str, Mode)> {
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut all = vec![("in-process", Mode::InProcess)];
        #[cfg(unix)]
        all.push(("isolated", Mode::Isolated(crate::isolate::isolation())));
        all
    }

    /// A host's visitor (of either version): records what it is given, answers with
    /// the step times ten.
    macro_rules! visitor {
        ($v:ident, $name:ident, $answer:expr) => {
            #[derive(Default, Clone)]
            struct $name(Arc<Mutex<Vec<$v::Step>>>);
            impl $v::Visitor for $name {
                fn step(&self, step: $v::Step) -> $v::Step {
                    self.0.lock().unwrap().push(step.clone());
                    #[allow(clippy::redundant_closure_call)]
                    ($answer)(step)
                }
            }
            impl $name {
                fn seen(&self) -> Vec<$v::Step> {
                    std::mem::take(&mut *self.0.lock().unwrap())
                }
            }
        };
    }
    visitor!(walk_api_1_0, Seen10, |s: walk_api_1_0::Step| walk_api_1_0::Step { n: s.n * 10 });
    visitor!(walk_api_1_1, Seen11, |s: walk_api_1_1::Step| walk_api_1_1::Step { n: s.n * 10, name: "host".into() });

    /// A plugin of another minor version, in-process, calls the host back through
    /// its own copy of tomada's client code (objects cross by number there). Dropped,
    /// its library is unmapped: nothing that client code did on the calling thread
    /// (a thread-local with a destructor, which glibc would let keep the library
    /// mapped until the thread exits) holds it.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_plugin_of_another_minor_that_called_back_is_unmapped_when_dropped() {
        use walk_api_1_1::{Step, Walk};
        let name = "walk-called-back.so";
        let dir = tempfile::tempdir().unwrap();
        let path = tomada_test_support::copy_to(&cdylib("walk-1-0"), dir.path(), name);
        let plugin = tomada_host::load_with::<dyn Walk>(&path, &Mode::InProcess).unwrap();
        let seen = Seen11::default();
        plugin.walk(&seen).unwrap();
        assert_eq!(seen.seen().len(), 2, "the plugin called the host back");
        let trail = plugin.trail(Step { n: 5, name: "a".into() }).unwrap();
        trail.visit(&seen).unwrap();
        assert_eq!(seen.seen().len(), 1, "and again, from an object of its own");
        assert_eq!(tomada_test_support::mapped_copies(name), 1);
        drop(trail);
        drop(plugin);
        crate::objects::assert_unloaded(&path, "unmapped once its plugin and objects went");
    }

    /// A 1.0 host: whatever the plugin's version, it sees 1.0's `Step` and `Mood`.
    fn host_1_0(fixture: &str, mode: &Mode, ctx: &str) {
        use walk_api_1_0::{Mood, Step, Walk};
        let newer = fixture == "walk-1-1";
        let plugin = tomada_host::load_with::<dyn Walk>(cdylib(fixture), mode).unwrap();
        let seen = Seen10::default();
        // A lent callback: the plugin's 1.1 `Step`s arrive without their names.
        let walked = plugin.walk(&seen).unwrap();
        let expected = if newer {
            r#"[Step { n: 10, name: "unnamed" }, Step { n: 20, name: "unnamed" }]"#
        } else {
            "[Step { n: 10 }, Step { n: 20 }]"
        };
        assert_eq!(walked, expected, "{ctx}");
        assert_eq!(seen.seen(), [Step { n: 1 }, Step { n: 2 }], "{ctx}");
        // An object the plugin made, and a callback into one of its methods.
        let trail = plugin.trail(Step { n: 5 }).unwrap();
        assert_eq!(trail.next(Step { n: 1 }).unwrap(), Step { n: 6 }, "{ctx}");
        assert_eq!(super::matrix::block_on(trail.later(Step { n: 2 })).unwrap(), Step { n: 7 }, "{ctx}");
        assert_eq!(trail.mood().unwrap(), if newer { Mood::Unknown } else { Mood::Calm }, "{ctx}");
        assert_eq!(trail.visit(&seen).unwrap(), Step { n: 50 }, "{ctx}");
        assert_eq!(seen.seen(), [Step { n: 5 }], "{ctx}");
        // A callback given away, called by a later call.
        let kept = Seen10::default();
        assert_eq!(plugin.keep(Box::new(kept.clone())).unwrap(), 1, "{ctx}");
        let poked = plugin.poke().unwrap();
        assert_eq!(poked, if newer { r#"Step { n: 990, name: "unnamed" }"# } else { "Step { n: 990 }" }, "{ctx}");
        assert_eq!(kept.seen(), [Step { n: 99 }], "{ctx}");
        // In-process, an object keeps its plugin's code loaded past the plugin's handle.
        if matches!(mode, Mode::InProcess) {
            drop(plugin);
            assert_eq!(trail.next(Step { n: 2 }).unwrap(), Step { n: 7 }, "{ctx}");
        }
    }

    /// A 1.1 host: a 1.0 plugin's `Step`s arrive with `name`'s default, and its
    /// `pace` is the host's default body.
    fn host_1_1(fixture: &str, mode: &Mode, ctx: &str) {
        use walk_api_1_1::{Mood, Step, Walk};
        let newer = fixture == "walk-1-1";
        let step = |n: u64, name: &str| Step { n, name: name.into() };
        let plugin = tomada_host::load_with::<dyn Walk>(cdylib(fixture), mode).unwrap();
        let seen = Seen11::default();
        let walked = plugin.walk(&seen).unwrap();
        let expected = if newer {
            r#"[Step { n: 10, name: "host" }, Step { n: 20, name: "host" }]"#
        } else {
            "[Step { n: 10 }, Step { n: 20 }]"
        };
        assert_eq!(walked, expected, "{ctx}");
        let from = if newer { "plugin" } else { "unnamed" };
        assert_eq!(seen.seen(), [step(1, from), step(2, from)], "{ctx}");
        let trail = plugin.trail(step(5, "a")).unwrap();
        assert_eq!(trail.next(step(1, "b")).unwrap(), step(6, if newer { "b+" } else { "unnamed" }), "{ctx}");
        let later = super::matrix::block_on(trail.later(step(2, "c"))).unwrap();
        assert_eq!(later, step(7, if newer { "c+" } else { "unnamed" }), "{ctx}");
        assert_eq!(trail.mood().unwrap(), if newer { Mood::Giddy("yes".into()) } else { Mood::Calm }, "{ctx}");
        // The host's answer `Step { 50, "host" }` loses its name in a 1.0 plugin.
        assert_eq!(trail.visit(&seen).unwrap(), step(50, if newer { "host" } else { "unnamed" }), "{ctx}");
        assert_eq!(seen.seen(), [step(5, from)], "{ctx}");
        let kept = Seen11::default();
        assert_eq!(plugin.keep(Box::new(kept.clone())).unwrap(), 1, "{ctx}");
        let poked = plugin.poke().unwrap();
        assert_eq!(poked, if newer { r#"Step { n: 990, name: "host" }"# } else { "Step { n: 990 }" }, "{ctx}");
        assert_eq!(kept.seen(), [step(99, from)], "{ctx}");
        // `async fn pace`: the plugin's own, or the host's default body, which calls
        // the plugin's `trail` (a handle, through the trait) and `name`.
        let paced = super::matrix::block_on(plugin.pace(3)).unwrap();
        assert_eq!(paced, if newer { "plugin 1.1 paced 3" } else { "host default: 4 by walk 1.0" }, "{ctx}");
        // Default bodies whose results hold objects: handles here, as from the plugin.
        let short = plugin.shortcut(step(5, "a")).unwrap().expect("a trail");
        assert_eq!(short.next(step(1, "b")).unwrap(), step(6, if newer { "b+" } else { "unnamed" }), "{ctx}");
        let later = super::matrix::block_on(plugin.shortcut_later(step(7, "a"))).unwrap();
        assert_eq!(later.mood().unwrap(), if newer { Mood::Giddy("yes".into()) } else { Mood::Calm }, "{ctx}");
        if matches!(mode, Mode::InProcess) {
            drop(plugin);
            assert_eq!(trail.next(step(2, "c")).unwrap(), step(7, if newer { "c+" } else { "unnamed" }), "{ctx}");
        }
    }

    #[test]
    fn every_plugin_in_every_host_both_modes_objects_included() {
        for (mode_name, mode) in modes() {
            for fixture in ["walk-1-0", "walk-1-1"] {
                host_1_0(fixture, &mode, &format!("host 1.0, plugin {fixture}, {mode_name}"));
                host_1_1(fixture, &mode, &format!("host 1.1, plugin {fixture}, {mode_name}"));
            }
        }
    }
}
