//! Zero-conversion records (`tomada::abi::native`): with `SystemAlloc` on both sides
//! and both built by the same compiler, a `Vec` of records crosses as its buffer,
//! every element untouched; a plugin built by another compiler turns that off, and
//! the same calls still work, converted. A test binary of its own: it installs
//! tomada's global allocator, and the switch it turns off is process-wide.

#![allow(missing_docs)]

use kv_api::{Entry, Kind, Meta, Store};
use tomada_test_support::{Build, cdylib};

tomada_host::tomada::global_allocator!();

fn entries() -> Vec<Entry> {
    (0..100)
        .map(|i| Entry {
            key: format!("entry {i}"),
            value: vec![i as u8; 16],
            meta: Meta { kind: [Kind::Text, Kind::Blob, Kind::Link][i % 3], created: i as u64, owner: None },
            tags: vec!["alpha".into(), format!("t{i}")],
            previous: Some(Box::new(Entry {
                key: format!("old {i}"),
                value: vec![1],
                meta: Meta { kind: Kind::Text, created: 0, owner: Some("ana".into()) },
                tags: vec![],
                previous: None,
            })),
        })
        .collect()
}

/// Where each entry's boxed previous entry lives.
fn boxes(entries: &[Entry]) -> Vec<usize> {
    entries.iter().map(|e| std::ptr::from_ref::<Entry>(e.previous.as_deref().unwrap()) as usize).collect()
}

fn echoed(sent: &[Entry], back: &[Entry]) {
    assert_eq!(back.len(), sent.len());
    for (s, b) in sent.iter().zip(back) {
        assert_eq!(b.key, format!("{}!", s.key));
        assert_eq!((&b.value, &b.meta, &b.tags, &b.previous), (&s.value, &s.meta, &s.tags, &s.previous));
    }
}

#[test]
fn records_cross_untouched_until_another_compiler_is_seen() {
    assert!(<Entry as tomada_host::tomada::Abi>::native());
    let plugin = tomada_host::load::<dyn Store>(cdylib("kv")).unwrap();

    // Same compiler, same target, `SystemAlloc` on both sides: the boxes inside the
    // entries are the very same allocations after the round trip (a conversion would
    // have moved each into a new `RBox` and back into a new `Box`, twice).
    let sent = entries();
    let (expected, before) = (sent.clone(), boxes(&sent));
    let back = plugin.echo(sent).unwrap();
    echoed(&expected, &back);
    assert_eq!(boxes(&back), before, "the entries were converted, not handed over");

    // A borrowed slice of records is read in place by the plugin.
    plugin.put(expected[0].clone()).unwrap().unwrap();
    let tags = ["t0".to_owned(), "nothing".to_owned()];
    assert_eq!(plugin.tagged(&tags).unwrap(), ["entry 0".to_owned()].into());

    // A plugin built by another rustc (nightly) loads; from then on this process sends
    // no native sequence to anyone, and that plugin sends none to this host. Every
    // call still works, converted element by element.
    let path = Build::new("kv").toolchain("nightly").try_cdylib().unwrap_or_else(|e| {
        panic!(
            "this test needs the nightly toolchain (`rustup toolchain install nightly`) to build the kv plugin with another compiler; it does not skip. {e}"
        )
    });
    let other = tomada_host::load::<dyn Store>(&path).unwrap();
    assert_ne!(other.manifest().rustc, tomada_host::tomada::RUSTC_VERSION);
    assert!(!tomada_host::tomada::abi::native::enabled());
    for store in [&plugin, &other] {
        let back = store.echo(expected.clone()).unwrap();
        echoed(&expected, &back);
    }
    other.put(expected[1].clone()).unwrap().unwrap();
    assert_eq!(other.tagged(&["t1".to_owned()]).unwrap(), ["entry 1".to_owned()].into());
}
