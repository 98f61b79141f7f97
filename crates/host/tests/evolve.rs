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
        assert_eq!(
            differences,
            &["method `count` changed: argument 1 is `Vec<u8>` in the plugin, `&[u8]` in the host"]
        );
        assert!(err.to_string().contains("method `count` changed"), "{err}");
    }
}
