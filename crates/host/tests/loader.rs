//! One [`Loader`] chain for every combination of mode (in-process / isolated), export
//! name, configuration and trust policy, with the `family` fixture (`hello` and `hola`
//! implement `pluginapi::Greeter`, `memory` implements `kv_api::Store`; `hola` greets
//! with its configuration, `memory` starts with the entries it is configured with).

use std::path::{Path, PathBuf};

use kv_api::Store;
use pluginapi::Greeter;
use tomada_host::isolate::Mode;
use tomada_host::{LoadError, Loader, TrustPolicy};
use tomada_test_support::{cdylib, copy_to};

fn modes() -> [Mode; 2] {
    [Mode::InProcess, Mode::Isolated(crate::isolate::isolation())]
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The family library in a directory of its own, and a policy pinning it (under the
/// name of its first export, which is what a policy knows a library by). Called once
/// per directory: a library still mapped must not be overwritten.
fn pinned_family(dir: &Path) -> (PathBuf, TrustPolicy) {
    let path = copy_to(&cdylib("family"), dir, "libfamily.so");
    let policy = TrustPolicy::new().pin("hello", &sha256_of(&path)).unwrap().strict_modes(false);
    (path, policy)
}

/// A loader with what the combination asks for, each set through the one chain.
fn loader(mode: &Mode, export: Option<&str>, config: Option<Vec<u8>>, policy: Option<TrustPolicy>) -> Loader {
    let mut loader = Loader::new();
    if let Some(policy) = policy {
        loader = loader.policy(policy);
    }
    if let Some(name) = export {
        loader = loader.export(name);
    }
    if let Some(config) = config {
        loader = loader.config(config);
    }
    match mode {
        Mode::InProcess => loader.in_process(),
        Mode::Isolated(options) => loader.isolated(options.clone()),
        #[cfg(target_os = "linux")]
        Mode::Remote(remote) => loader.mode(Mode::Remote(remote.clone())),
        other => unreachable!("a mode this test does not make: {other:?}"),
    }
}

/// Every combination of mode × export × config × policy, through `Loader::load`: the
/// plugin runs where it was asked to, is the export asked for, and sees the config.
#[test]
fn every_combination_is_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (path, pin) = pinned_family(dir.path());
    let seed: Vec<(String, Vec<u8>)> = vec![("seeded".into(), b"1".to_vec())];
    let mut loads = 0;
    for mode in modes() {
        let isolated = matches!(mode, Mode::Isolated(_));
        for named in [false, true] {
            for configured in [false, true] {
                for pinned in [false, true] {
                    let what = format!("isolated {isolated}, named {named}, configured {configured}, pinned {pinned}");
                    let policy = || pinned.then(|| pin.clone());

                    // The store: the library's one export of `Store`, so a name is optional.
                    let config = configured.then(|| tomada::Context::encode(&seed));
                    let store = loader(&mode, named.then_some("memory"), config, policy())
                        .load::<dyn Store>(&path)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(store.info().name, "memory", "{what}");
                    assert_eq!(store.process_id().is_some(), isolated, "{what}");
                    let keys = store.keys().unwrap();
                    assert_eq!(keys, if configured { vec!["seeded".to_owned()] } else { vec![] }, "{what}");

                    // A greeter: two exports implement `Greeter`, so only a name loads one.
                    let config = configured.then(|| b"Buenos dias".to_vec());
                    let result = loader(&mode, named.then_some("hola"), config, policy()).load::<dyn Greeter>(&path);
                    if !named {
                        assert!(matches!(result, Err(LoadError::AmbiguousExport { .. })), "{what}: {result:?}");
                        continue;
                    }
                    let hola = result.unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(hola.info().name, "hola", "{what}");
                    assert_eq!(hola.process_id().is_some(), isolated, "{what}");
                    let greeting = hola.greet("Mundo").unwrap();
                    let expected = if configured { "Buenos dias, Mundo" } else { "Hola, Mundo" };
                    assert!(greeting.starts_with(expected), "{what}: {greeting}");
                    loads += 1;
                }
            }
        }
    }
    assert_eq!(loads, 8, "every named greeter combination ran");
}

/// The policy set on the chain is the one applied, in both modes: a pin to other
/// bytes refuses the file before anything runs, whatever else is set.
#[test]
fn a_policy_in_the_chain_refuses_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = pinned_family(dir.path());
    for mode in modes() {
        let wrong = TrustPolicy::new().pin("hello", &"0".repeat(64)).unwrap().strict_modes(false);
        let err = loader(&mode, Some("hola"), Some(b"x".to_vec()), Some(wrong)).load::<dyn Greeter>(&path).unwrap_err();
        assert!(matches!(err, LoadError::DigestMismatch { .. }), "{mode:?}: {err:?}");
        // The same chain with the right pin loads (a negative control for the refusal).
        let right = TrustPolicy::new().pin("hello", &sha256_of(&path)).unwrap().strict_modes(false);
        assert!(loader(&mode, Some("hola"), Some(b"x".to_vec()), Some(right)).load::<dyn Greeter>(&path).is_ok());
    }
}

/// `load_with` and the typed stages are the same road: a loader's mode reaches
/// `Checked::start`, and `load_with(path, mode)` is a loader with only that set.
#[test]
fn the_shortcuts_and_the_stages_follow_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let (path, policy) = pinned_family(dir.path());
    for mode in modes() {
        let isolated = matches!(mode, Mode::Isolated(_));
        let store = tomada_host::load_with::<dyn Store>(&path, &mode).unwrap();
        assert_eq!(store.process_id().is_some(), isolated);
        let inspected = Loader::with_policy(policy.clone()).mode(mode.clone()).export("hola").inspect(&path).unwrap();
        assert_eq!(inspected.sha256().map(|d| d.len()), Some(32), "the policy computed the digest");
        let hola = inspected.check::<dyn Greeter>().unwrap().start().unwrap();
        assert_eq!(hola.process_id().is_some(), isolated);
        assert_eq!(hola.info().name, "hola");
    }
}
