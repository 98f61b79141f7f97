//! Several exports per library (`tests/plugins/family`: `hello` and `hola`
//! implement `pluginapi::Greeter`, `memory` implements `kv_api::Store`), picked by
//! contract and by name, in-process and isolated; and the host's context reaching
//! the plugins' constructors in both modes.

use kv_api::Store;
use pluginapi::Greeter;
use tomada_host::isolate::Mode;
use tomada_host::{Damage, LoadError, Loader, Plugin};
use tomada_test_support::cdylib;

fn family() -> std::path::PathBuf {
    cdylib("family")
}

fn modes() -> [Mode; 2] {
    [Mode::InProcess, Mode::Isolated(crate::isolate::isolation())]
}

fn load_in<C: ?Sized + tomada_host::Contract>(loader: &Loader, mode: &Mode) -> Result<Plugin<C>, LoadError> {
    let checked = loader.inspect(family())?.check::<C>()?;
    match mode {
        Mode::InProcess => checked.load(),
        Mode::Isolated(options) => checked.isolate(options),
        _ => unreachable!("remote plugins are tested in crates/cli/tests/remote.rs"),
    }
}

#[test]
fn inspection_lists_every_export_without_running_code() {
    let inspection = tomada_host::inspect(family()).unwrap();
    let listed: Vec<(u32, &str, &str, &str, &str)> = inspection
        .exports
        .iter()
        .map(|e| {
            let m = &e.manifest;
            (
                m.index,
                m.info.name.as_str(),
                m.info.version.as_str(),
                m.info.description.as_str(),
                m.contract.name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (0, "hello", "0.3.0", "says olá", "pluginapi::Greeter"),
            (1, "hola", "1.1.0", "says the configured greeting", "pluginapi::Greeter"),
            (2, "memory", "2.0.0", "an in-memory store", "kv_api::Store"),
        ]
    );
    // Each carries its own contract's ABI and fingerprint.
    use tomada_host::Contract;
    assert_eq!(inspection.exports[0].manifest.contract.fingerprint, <dyn Greeter as Contract>::FINGERPRINT);
    assert_eq!(inspection.exports[2].manifest.contract.fingerprint, <dyn Store as Contract>::FINGERPRINT);
    assert_eq!(inspection.exports[2].manifest.contract.abi, <dyn Store as Contract>::ABI);
    // The first is what a reader of one manifest sees.
    assert_eq!(inspection.manifest, inspection.exports[0].manifest);
    assert_eq!(inspection.manifest_bytes, inspection.exports[0].manifest_bytes);
}

#[test]
fn the_one_export_of_a_contract_loads_by_contract() {
    for mode in modes() {
        let store = load_in::<dyn Store>(&Loader::new(), &mode).unwrap();
        assert_eq!(store.info().name, "memory", "{mode:?}");
        assert_eq!(store.address().unwrap(), [10, 0, 0, 3]);
        assert_eq!(store.put_many(vec![("k".into(), b"v".to_vec())]).unwrap(), Ok(1));
        assert_eq!(store.keys().unwrap(), ["k"]);
    }
    // The plain `load` too.
    let store = tomada_host::load::<dyn Store>(family()).unwrap();
    assert_eq!(store.manifest().index, 2);
}

#[test]
fn several_exports_of_a_contract_without_a_name_is_an_error_naming_them() {
    let err = tomada_host::load::<dyn Greeter>(family()).unwrap_err();
    match &err {
        LoadError::AmbiguousExport { contract, names, .. } => {
            assert_eq!(contract, "pluginapi::Greeter");
            assert_eq!(names, &["hello", "hola"]);
        }
        other => panic!("expected AmbiguousExport, got {other:?}"),
    }
    let text = err.to_string();
    for needle in ["`hello`", "`hola`", "pluginapi::Greeter", "Loader::export", &family().display().to_string()] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
}

#[test]
fn a_name_picks_among_several_in_both_modes() {
    for mode in modes() {
        let hello = load_in::<dyn Greeter>(&Loader::new().export("hello"), &mode).unwrap();
        assert_eq!(hello.greet("Mundo").unwrap(), "Olá, Mundo", "{mode:?}");
        assert_eq!((hello.info().name.as_str(), hello.manifest().index), ("hello", 0));
        let hola = load_in::<dyn Greeter>(&Loader::new().export("hola"), &mode).unwrap();
        assert!(hola.greet("Mundo").unwrap().starts_with("Hola, Mundo"), "{mode:?}");
        assert_eq!(hola.info().version, "1.1.0");
    }
    // On an `Inspected` as well, and a named export of the only contract is fine too.
    let store = Loader::new().inspect(family()).unwrap().export("memory").check::<dyn Store>().unwrap().load().unwrap();
    assert_eq!(store.info().name, "memory");
}

#[test]
fn an_isolated_non_first_export_runs_in_its_own_process() {
    let [_, isolated] = modes();
    let hola = load_in::<dyn Greeter>(&Loader::new().export("hola"), &isolated).unwrap();
    let pid = hola.process_id().expect("isolated");
    assert_ne!(pid, std::process::id());
    // The plugin says which process made it: the child (whose pid it sees in its own
    // PID namespace), not this one, where the in-process copy is made.
    let ours = format!("(pid {})", std::process::id());
    assert!(!hola.greet("Mundo").unwrap().ends_with(&ours), "{}", hola.greet("Mundo").unwrap());
    let local = load_in::<dyn Greeter>(&Loader::new().export("hola"), &Mode::InProcess).unwrap();
    assert_eq!(local.greet("Mundo").unwrap(), format!("Hola, Mundo {ours}"));
    let store = load_in::<dyn Store>(&Loader::new(), &isolated).unwrap();
    assert_eq!(store.manifest().index, 2);
    assert_eq!(store.put_many(vec![("a".into(), vec![1]), ("b".into(), vec![2])]).unwrap(), Ok(2));
    assert_eq!(store.keys().unwrap(), ["a", "b"]);
}

#[test]
fn a_name_the_library_does_not_export_is_an_error_listing_what_it_does() {
    for mode in modes() {
        let err = load_in::<dyn Greeter>(&Loader::new().export("adios"), &mode).unwrap_err();
        match &err {
            LoadError::NoSuchExport { name, exports, .. } => {
                assert_eq!(name, "adios");
                assert_eq!(
                    exports,
                    &["hello (pluginapi::Greeter)", "hola (pluginapi::Greeter)", "memory (kv_api::Store)"]
                );
            }
            other => panic!("expected NoSuchExport, got {other:?}"),
        }
        assert!(err.to_string().contains("no export named `adios`"), "{err}");
    }
    // A name of the wrong contract: the contract check says so.
    let err = load_in::<dyn Store>(&Loader::new().export("hola"), &Mode::InProcess).unwrap_err();
    assert!(
        matches!(&err, LoadError::ContractMismatch { expected, found, .. } if expected == "kv_api::Store" && found == "pluginapi::Greeter"),
        "{err:?}"
    );
}

#[test]
fn a_contract_no_export_implements_is_the_wrong_contract_error_naming_every_export() {
    let err = tomada_host::load::<dyn allround_api::Allround>(family()).unwrap_err();
    match &err {
        LoadError::ContractMismatch { expected, exports, .. } => {
            assert_eq!(expected, "allround_api::Allround");
            assert_eq!(exports.len(), 3, "{exports:?}");
        }
        other => panic!("expected ContractMismatch, got {other:?}"),
    }
    let text = err.to_string();
    for needle in ["`hello (pluginapi::Greeter)`", "`hola (pluginapi::Greeter)`", "`memory (kv_api::Store)`"] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
    // A single-export library keeps its one-contract message.
    let err = tomada_host::load::<dyn Store>(cdylib("greeter")).unwrap_err();
    assert!(err.to_string().contains("implements contract `pluginapi::Greeter`"), "{err}");
}

#[test]
fn the_hosts_config_reaches_the_constructor_in_both_modes() {
    for mode in modes() {
        // Text.
        let hola = load_in::<dyn Greeter>(&Loader::new().export("hola").config("Buenos días"), &mode).unwrap();
        assert!(hola.greet("Mundo").unwrap().starts_with("Buenos días, Mundo"), "{mode:?}");
        // None: the constructor sees an empty context.
        let plain = load_in::<dyn Greeter>(&Loader::new().export("hola"), &mode).unwrap();
        assert!(plain.greet("Mundo").unwrap().starts_with("Hola, Mundo"), "{mode:?}");
        // A typed value.
        let seed: Vec<(String, Vec<u8>)> = vec![("lang".into(), b"pt".to_vec()), ("x".into(), vec![0, 255])];
        let store = load_in::<dyn Store>(&Loader::new().config_value(&seed), &mode).unwrap();
        assert_eq!(store.keys().unwrap(), ["lang", "x"], "{mode:?}");
        assert_eq!(store.get("x").unwrap().unwrap().value, [0, 255]);
        // Set on the `Inspected`, overriding the loader's.
        let checked = Loader::new()
            .config("from the loader")
            .inspect(family())
            .unwrap()
            .export("hola")
            .config("Oi")
            .check::<dyn Greeter>()
            .unwrap();
        let hola = match &mode {
            Mode::InProcess => checked.load(),
            Mode::Isolated(options) => checked.isolate(options),
            _ => unreachable!("remote plugins are tested in crates/cli/tests/remote.rs"),
        }
        .unwrap();
        assert!(hola.greet("Mundo").unwrap().starts_with("Oi, Mundo"), "{mode:?}");
    }
}

#[test]
fn a_single_export_plugin_loads_as_before_and_ignores_a_config_it_does_not_read() {
    for mode in modes() {
        let greeter = load_in_path::<dyn Greeter>(&cdylib("greeter"), &Loader::new().config("ignored"), &mode);
        assert_eq!(greeter.greet("Mundo").unwrap(), "Olá, Mundo 👋");
        assert_eq!(greeter.manifest().index, 0);
    }
    let inspection = tomada_host::inspect(cdylib("greeter")).unwrap();
    assert_eq!(inspection.exports.len(), 1);
    // Its one export also loads by name.
    let named = Loader::new().export("greeter").load::<dyn Greeter>(cdylib("greeter")).unwrap();
    assert_eq!(named.greet("Mundo").unwrap(), "Olá, Mundo 👋");
}

fn load_in_path<C: ?Sized + tomada_host::Contract>(path: &std::path::Path, loader: &Loader, mode: &Mode) -> Plugin<C> {
    let checked = loader.inspect(path).unwrap().check::<C>().unwrap();
    match mode {
        Mode::InProcess => checked.load(),
        Mode::Isolated(options) => checked.isolate(options),
        _ => unreachable!("remote plugins are tested in crates/cli/tests/remote.rs"),
    }
    .unwrap()
}

/// The `.tomada` section of the family library: its file offset and bytes.
fn section(bytes: &[u8]) -> (usize, Vec<u8>) {
    use object::{Object, ObjectSection};
    let file = object::File::parse(bytes).unwrap();
    let section = file.section_by_name(".tomada").unwrap();
    (section.file_range().unwrap().0 as usize, section.data().unwrap().to_vec())
}

#[test]
fn the_section_starts_with_the_first_export_so_a_reader_of_one_manifest_sees_it() {
    let bytes = std::fs::read(family()).unwrap();
    let (_, data) = section(&bytes);
    // What a host that reads one manifest per library (tomada 0.2 before several
    // exports) reads: the first, whose descriptor is `TOMADA_DESCRIPTOR`.
    let one = tomada_host::Manifest::parse(&data).unwrap();
    assert_eq!((one.index, one.info.name.as_str()), (0, "hello"));
}

#[test]
fn a_library_whose_exports_contradict_each_other_is_refused_as_damaged() {
    let bytes = std::fs::read(family()).unwrap();
    let (offset, data) = section(&bytes);
    let all = tomada_host::Manifest::parse_section(&data).unwrap();
    let second = offset + all[0].1.len();
    let path = std::path::Path::new("family-damaged.so");
    // The second manifest says it is the first too.
    let mut twice = bytes.clone();
    twice[second + 20..second + 24].copy_from_slice(&0u32.to_le_bytes());
    let err = tomada_host::inspect_bytes(path, &twice).unwrap_err();
    assert!(
        matches!(&err, LoadError::Damaged { reason: Damage::Manifest { detail }, .. } if detail.contains("same index")),
        "{err:?}"
    );
    // The second says it is the third: the third is there twice and the second missing.
    let mut gap = bytes.clone();
    gap[second + 20..second + 24].copy_from_slice(&2u32.to_le_bytes());
    let err = tomada_host::inspect_bytes(path, &gap).unwrap_err();
    assert!(matches!(&err, LoadError::Damaged { .. }), "{err:?}");
    // Untouched, the same bytes inspect fine.
    assert_eq!(tomada_host::inspect_bytes(path, &bytes).unwrap().exports.len(), 3);
}

/// A plugin built before contexts and several exports (its descriptor ends before
/// `create_with`) loads as before, in both modes; the host's config never reaches
/// it (it has no way to take one), and it says so by seeing an empty context. Its
/// dispatch function predates `flags::BYTES_ALONE` too: isolated, its `String`
/// answer comes in its byte form, the runner never asking for the bytes alone.
#[test]
fn a_plugin_with_the_old_descriptor_layout_still_loads() {
    let path = cdylib("old-descriptor");
    for mode in modes() {
        let old = load_in_path::<dyn Greeter>(&path, &Loader::new().config("for new plugins"), &mode);
        assert_eq!(old.greet("Mundo").unwrap(), "Olá, Mundo (context: \"\")", "{mode:?}");
        assert_eq!(old.info().name, "old-descriptor");
    }
}

/// Two exports of one library loaded at once share it; it is unloaded when the last
/// is dropped, even though their constructors read the host's context on this
/// thread (a thread-local destructor would pin the library until the thread ends).
#[cfg(target_os = "linux")]
#[test]
fn the_library_unloads_when_its_last_export_is_dropped() {
    use crate::objects::mapped;
    let dir = tempfile::tempdir().unwrap();
    let copy = tomada_test_support::copy_to(&family(), dir.path(), "libfamily_copy.so");
    let hola = Loader::new().export("hola").config("Oi").load::<dyn Greeter>(&copy).unwrap();
    let store = Loader::new().config_value(&vec![("k".to_owned(), vec![1u8])]).load::<dyn Store>(&copy).unwrap();
    assert!(hola.greet("Mundo").unwrap().starts_with("Oi, Mundo"));
    assert_eq!(store.keys().unwrap(), ["k"]);
    drop(hola);
    assert!(mapped(&copy), "the store still needs the library");
    assert_eq!(store.keys().unwrap(), ["k"]);
    drop(store);
    crate::objects::assert_unloaded(&copy, "unloaded with the last export");
}
