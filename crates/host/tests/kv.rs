//! A key-value store contract as a new user writes it (an error enum with data,
//! collections, maps, tuples, arrays, boxes, a borrowed slice) works the same loaded
//! in-process and isolated in a child process: every assertion runs in both modes
//! against a real plugin (`tests/plugins/kv`).

use std::collections::{BTreeSet, HashSet};

use kv_api::{CAPACITY, Entry, Kind, Meta, Store, StoreError};
use tomada_host::Plugin;
use tomada_host::isolate::Mode;
use tomada_test_support::cdylib;

/// The kv plugin in each mode this platform has (isolation is Unix only).
fn stores() -> Vec<(&'static str, Plugin<dyn Store>)> {
    let path = cdylib("kv");
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut stores = vec![("in-process", tomada_host::load_with::<dyn Store>(&path, &Mode::InProcess).unwrap())];
    #[cfg(unix)]
    stores.push((
        "isolated",
        tomada_host::load_with::<dyn Store>(&path, &Mode::Isolated(crate::isolate::isolation())).unwrap(),
    ));
    stores
}

fn entry(key: &str, kind: Kind, value: &[u8], tags: &[&str]) -> Entry {
    Entry {
        key: key.into(),
        value: value.to_vec(),
        meta: Meta { kind, created: 1_700_000_000, owner: (kind == Kind::Link).then(|| "ana".to_owned()) },
        tags: tags.iter().map(|t| t.to_string()).collect(),
        previous: None,
    }
}

#[test]
fn the_natural_contract_works_the_same_in_both_modes() {
    for (mode, store) in stores() {
        assert_eq!(store.put(entry("a", Kind::Text, b"1", &["x"])).unwrap(), Ok(None), "{mode}");
        let replaced = store.put(entry("a", Kind::Blob, b"22", &["y", "z"])).unwrap().unwrap();
        assert_eq!(replaced.map(|e| e.value), Some(b"1".to_vec()), "{mode}");
        let got = store.get("a").unwrap().unwrap();
        assert_eq!(got.meta.kind, Kind::Blob, "{mode}");
        assert_eq!(got.previous.as_ref().map(|p| p.tags.clone()), Some(vec!["x".to_owned()]), "{mode}");
        assert_eq!(store.get("nope").unwrap(), Err(StoreError::NotFound("nope".into())), "{mode}");
        assert_eq!(
            store.put(entry("", Kind::Text, b"", &[])).unwrap(),
            Err(StoreError::Other { code: 22, message: "an empty key".into() }),
            "{mode}"
        );
        store.put(entry("link", Kind::Link, b"", &["z"])).unwrap().unwrap();
        let items = vec![("b".to_owned(), b"bee".to_vec()), ("c".to_owned(), vec![]), ("a".to_owned(), vec![9])];
        assert_eq!(store.put_many(items).unwrap(), Ok(2), "{mode}");
        assert_eq!(store.keys().unwrap(), ["a", "b", "c", "link"], "{mode}");
        let dump = store.dump().unwrap();
        assert_eq!((dump.len(), dump["b"].as_slice()), (4, &b"bee"[..]), "{mode}");
        let by_kind = store.by_kind().unwrap();
        assert_eq!(by_kind[&Kind::Text], BTreeSet::from(["a".to_owned(), "b".into(), "c".into()]), "{mode}");
        assert_eq!(by_kind[&Kind::Link], BTreeSet::from(["link".to_owned()]), "{mode}");
        assert!(!by_kind.contains_key(&Kind::Blob), "{mode}");
        assert_eq!(
            store.tagged(&["z".to_owned(), "q".to_owned()]).unwrap(),
            HashSet::from(["link".to_owned()]),
            "{mode}"
        );
        assert_eq!(store.tagged(&[]).unwrap(), HashSet::new(), "{mode}");
        assert_eq!(store.address().unwrap(), [127, 0, 0, 1], "{mode}");
        store.set_read_only(true).unwrap();
        assert_eq!(store.put(entry("d", Kind::Text, b"", &[])).unwrap(), Err(StoreError::ReadOnly), "{mode}");
        store.set_read_only(false).unwrap();
    }
}

#[test]
fn the_error_enum_says_full_at_capacity() {
    for (mode, store) in stores() {
        let items: Vec<(String, Vec<u8>)> = (0..CAPACITY).map(|i| (format!("k{i:04}"), vec![i as u8])).collect();
        assert_eq!(store.put_many(items).unwrap(), Ok(CAPACITY as u32), "{mode}");
        assert_eq!(store.put(entry("one more", Kind::Text, b"", &[])).unwrap(), Err(StoreError::Full), "{mode}");
        assert_eq!(store.keys().unwrap().len(), CAPACITY, "{mode}");
    }
}

#[test]
fn a_thousand_entries_cross_and_come_back() {
    let entries: Vec<Entry> = (0..1_000)
        .map(|i| {
            let mut e =
                entry(&format!("entry {i}"), [Kind::Text, Kind::Blob, Kind::Link][i % 3], &[i as u8; 16], &["t"]);
            e.previous = (i % 10 == 0).then(|| Box::new(entry("old", Kind::Text, b"o", &[])));
            e
        })
        .collect();
    for (mode, store) in stores() {
        let back = store.echo(entries.clone()).unwrap();
        assert_eq!(back.len(), 1_000, "{mode}");
        for (a, b) in entries.iter().zip(&back) {
            assert_eq!(format!("{}!", a.key), b.key, "{mode}");
            assert_eq!((&a.value, &a.meta, &a.tags, &a.previous), (&b.value, &b.meta, &b.tags, &b.previous), "{mode}");
        }
    }
}
