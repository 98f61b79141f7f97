//! A plugin built by another rustc (nightly) loads into this host (built by the
//! toolchain running the tests) and works.

use pluginapi::Greeter;
use tomada_test_support::Build;

#[test]
fn greeter_built_by_nightly_loads_into_a_stable_host() {
    let path = Build::new("greeter").toolchain("nightly").try_cdylib().unwrap_or_else(|e| {
        panic!(
            "this test needs the nightly toolchain (`rustup toolchain install nightly`) to build the \
             greeter with another compiler; it does not skip. {e}"
        )
    });
    let plugin = tomada_host::load::<dyn Greeter>(&path).unwrap();
    let theirs = &plugin.manifest().rustc;
    let ours = tomada_host::tomada::RUSTC_VERSION;
    assert!(theirs.contains("nightly"), "the plugin was not built by nightly: {theirs}");
    assert_ne!(theirs, ours, "plugin and host were built by the same rustc");
    assert_eq!(plugin.greet("Mundo").unwrap(), "Olá, Mundo 👋");
}
