//! Contracts called through their generated clients, both ways a host calls a
//! plugin: in-process through the vtable (the same shims a plugin exports, without
//! loading a library), and byte-level through a loopback channel into the plugin
//! side's dispatch function (what an isolated plugin's process runs, without the
//! process). Every assertion runs on both paths; Miri runs these too.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tomada::__private::client::{Channel, DispatchFn, RawClient, Target, answer, dispatched};
use tomada::__private::ffi::{RSlice, RVec};
use tomada::{CallError, Contract};

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u64,
    pub tags: Vec<u8>,
    pub note: Option<String>,
    pub wide: i128,
}

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Empty {}

/// An error enum with data, as users write them.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum StoreError {
    Full,
    ReadOnly,
    Other(String),
    Limit { max: u32, asked: u64 },
}

/// A C-like enum.
#[derive(tomada::Abi, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Text,
    Blob,
    Link,
}

/// A struct with an enum field, collections and a nested optional box.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub kind: Kind,
    pub tags: Vec<String>,
    pub parent: Option<Box<Entry>>,
}

/// A recursive type: a tree.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Node {
    pub label: String,
    pub children: Vec<Node>,
}

/// A tuple struct and a unit struct.
#[derive(tomada::Abi, Debug, Clone, Copy, PartialEq)]
pub struct Pair(pub f32, pub char);

#[derive(tomada::Abi, Debug, Clone, Copy, PartialEq)]
pub struct Unit;

/// The longest tuple that crosses.
pub type Twelve = (u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, bool, char);

/// Test contract.
#[tomada::contract(abi = 3)]
pub trait Store {
    fn put(&self, key: &str, value: Vec<u8>) -> Option<Vec<u8>>;
    fn get(&self, key: &str) -> Result<Vec<u8>, String>;
    fn record(&self, r: Record) -> Record;
    fn count(&self) -> u32;
    fn explode(&self, why: String) -> Empty;
    fn glyph(&self, c: char, upper: bool) -> char;
    fn insert(&self, entry: Entry) -> Result<u64, StoreError>;
    fn keys(&self) -> Vec<String>;
    fn pairs(&self, items: Vec<(String, Vec<u8>)>) -> HashMap<String, Vec<u8>>;
    fn sorted(&self, map: HashMap<String, Vec<u8>>) -> BTreeMap<String, usize>;
    fn sets(&self, kinds: HashSet<Kind>, words: BTreeSet<String>) -> (Vec<Kind>, Vec<String>);
    fn find(&self, key: &str) -> Option<Box<Entry>>;
    fn quad(&self, ip: [u8; 4], grid: [[i16; 2]; 2]) -> [u8; 4];
    fn sum(&self, numbers: &[u64], words: &[String], entries: &[Entry]) -> (u64, usize, usize);
    fn tree(&self, root: Node) -> Node;
    fn misc(&self, p: Pair, u: Unit, q: VecDeque<u16>, t: (u8, i8, (bool,), ())) -> (Pair, Unit, VecDeque<u16>);
    fn big(&self, t: Twelve) -> u128;
    fn errors(&self, which: u8) -> Result<(), StoreError>;
}

#[derive(Default)]
struct Memory {
    map: Mutex<Vec<(String, Vec<u8>)>>,
    calls: AtomicU32,
}

impl Store for Memory {
    fn put(&self, key: &str, value: Vec<u8>) -> Option<Vec<u8>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut map = self.map.lock().unwrap();
        match map.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                map.push((key.to_owned(), value));
                None
            }
        }
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let map = self.map.lock().unwrap();
        map.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).ok_or_else(|| format!("no key `{key}`"))
    }
    fn record(&self, mut r: Record) -> Record {
        r.id += 1;
        r.tags.push(b'!');
        r.note = r.note.map(|n| n + "?");
        r.wide = -r.wide;
        r
    }
    fn count(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }
    fn explode(&self, why: String) -> Empty {
        panic!("exploded: {why}")
    }
    fn glyph(&self, c: char, upper: bool) -> char {
        if upper { c.to_ascii_uppercase() } else { c }
    }
    fn insert(&self, entry: Entry) -> Result<u64, StoreError> {
        match entry.kind {
            Kind::Link if entry.parent.is_none() => {
                Err(StoreError::Other(format!("link `{}` has no parent", entry.key)))
            }
            Kind::Blob if entry.value.len() > 4 => Err(StoreError::Limit { max: 4, asked: entry.value.len() as u64 }),
            _ => {
                let depth = std::iter::successors(entry.parent.as_deref(), |e| e.parent.as_deref()).count();
                self.put(&entry.key, entry.value);
                Ok(depth as u64 + entry.tags.len() as u64 * 100)
            }
        }
    }
    fn keys(&self) -> Vec<String> {
        self.map.lock().unwrap().iter().map(|(k, _)| k.clone()).collect()
    }
    fn pairs(&self, items: Vec<(String, Vec<u8>)>) -> HashMap<String, Vec<u8>> {
        items.into_iter().map(|(k, v)| (k.to_uppercase(), v)).collect()
    }
    fn sorted(&self, map: HashMap<String, Vec<u8>>) -> BTreeMap<String, usize> {
        map.into_iter().map(|(k, v)| (k, v.len())).collect()
    }
    fn sets(&self, kinds: HashSet<Kind>, words: BTreeSet<String>) -> (Vec<Kind>, Vec<String>) {
        let mut kinds: Vec<Kind> = kinds.into_iter().collect();
        kinds.sort();
        (kinds, words.into_iter().rev().collect())
    }
    fn find(&self, key: &str) -> Option<Box<Entry>> {
        (key != "none").then(|| {
            Box::new(Entry {
                key: key.into(),
                value: vec![],
                kind: Kind::Text,
                tags: vec!["found".into()],
                parent: Some(Box::new(Entry {
                    key: "root".into(),
                    value: vec![1],
                    kind: Kind::Blob,
                    tags: vec![],
                    parent: None,
                })),
            })
        })
    }
    fn quad(&self, ip: [u8; 4], grid: [[i16; 2]; 2]) -> [u8; 4] {
        let s = (grid[0][0] + grid[0][1] + grid[1][0] + grid[1][1]) as u8;
        [ip[3], ip[2], ip[1], ip[0].wrapping_add(s)]
    }
    fn sum(&self, numbers: &[u64], words: &[String], entries: &[Entry]) -> (u64, usize, usize) {
        (numbers.iter().sum(), words.iter().map(String::len).sum(), entries.iter().map(|e| e.tags.len()).sum())
    }
    fn tree(&self, root: Node) -> Node {
        fn mirror(n: Node) -> Node {
            Node { label: n.label.to_uppercase(), children: n.children.into_iter().rev().map(mirror).collect() }
        }
        mirror(root)
    }
    fn misc(&self, p: Pair, u: Unit, mut q: VecDeque<u16>, t: (u8, i8, (bool,), ())) -> (Pair, Unit, VecDeque<u16>) {
        q.push_front(t.0 as u16);
        q.push_back(t.1 as u16);
        (Pair(p.0 * 2.0, if t.2.0 { p.1.to_ascii_uppercase() } else { p.1 }), u, q)
    }
    fn big(&self, t: Twelve) -> u128 {
        t.0 as u128
            + t.1 as u128
            + t.2 as u128
            + t.3 as u128
            + t.4 as u128
            + t.5 as u128
            + t.6 as u128
            + t.7 as u128
            + t.8 as u128
            + t.9 as u128
            + t.10 as u128
            + t.11 as u128
    }
    fn errors(&self, which: u8) -> Result<(), StoreError> {
        match which {
            0 => Ok(()),
            1 => Err(StoreError::Full),
            2 => Err(StoreError::ReadOnly),
            _ => Err(StoreError::Other(which.to_string())),
        }
    }
}

/// The plugin side of both paths: an instance with its vtable and dispatch function,
/// as `tomada::export!` makes them.
pub(crate) struct Plugin<T> {
    pub(crate) this: *const c_void,
    drop: fn(*const c_void),
    _t: std::marker::PhantomData<T>,
}

// SAFETY: the instance is `Send + Sync` (contract traits require it).
unsafe impl<T> Send for Plugin<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Plugin<T> {}

impl<T> Drop for Plugin<T> {
    fn drop(&mut self) {
        (self.drop)(self.this);
    }
}

pub(crate) fn instance<T: Send + Sync + 'static>(value: T) -> Arc<Plugin<T>> {
    fn free<T>(p: *const c_void) {
        // SAFETY: made by `Box::into_raw` in `instance`, freed once.
        drop(unsafe { Box::from_raw(p.cast::<T>().cast_mut()) });
    }
    Arc::new(Plugin { this: Box::into_raw(Box::new(value)).cast(), drop: free::<T>, _t: std::marker::PhantomData })
}

/// A channel that hands the bytes straight to the plugin's dispatch function, as an
/// isolated plugin's runner does.
pub(crate) struct Loopback<T> {
    pub(crate) plugin: Arc<Plugin<T>>,
    pub(crate) dispatch: DispatchFn,
}

impl<T> Channel for Loopback<T> {
    fn call(&self, method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let mut out = MaybeUninit::<RVec>::uninit();
        let mut panic = MaybeUninit::<RVec>::uninit();
        // SAFETY: the plugin's own dispatch function, its live instance, arguments
        // alive for the call, writable `out`/`panic`.
        let status = unsafe {
            (self.dispatch)(self.plugin.this, method, RSlice::new(&args), out.as_mut_ptr(), panic.as_mut_ptr())
        };
        // SAFETY: from that call.
        let body = unsafe { dispatched(status, out, panic) };
        answer(status.0, body.into_vec())
    }
}

/// A client, which path it takes, and the plugin instance it calls.
type Client<C, T> = (&'static str, <C as Contract>::Client, Arc<Plugin<T>>);

/// Both clients, each of its own plugin instance: in-process and byte-level.
pub(crate) fn clients<C: ?Sized + Contract, T: Send + Sync + 'static>(
    vtable: *const c_void,
    dispatch: DispatchFn,
    make: impl Fn() -> T,
    provided: usize,
    plugin_minor: u32,
) -> [Client<C, T>; 2] {
    let (plugin, other) = (instance(make()), instance(make()));
    let local = RawClient::new(Target::Local { vtable, this: plugin.this }, provided, plugin_minor);
    let remote = RawClient::new(
        Target::Remote(Arc::new(Loopback { plugin: Arc::clone(&other), dispatch })),
        provided,
        plugin_minor,
    );
    // SAFETY: the vtable (with at least `provided` entries) and dispatch function are
    // `C`'s, made for `T`, whose instance
    // the returned `Arc` keeps alive as long as the clients.
    unsafe { [("in-process", C::__client(local), plugin), ("byte-level", C::__client(remote), other)] }
}

static VTABLE: StoreVTable = <dyn Store>::__tomada_vtable::<Memory>();

fn stores() -> [(&'static str, StoreClient, Arc<Plugin<Memory>>); 2] {
    clients::<dyn Store, _>(
        (&VTABLE as *const StoreVTable).cast(),
        <dyn Store>::__tomada_dispatch::<Memory>,
        Memory::default,
        18,
        0,
    )
}

#[test]
fn calls_cross_with_every_kind_of_value() {
    for (path, store, _plugin) in stores() {
        assert_eq!(store.put("a", b"1".to_vec()), Ok(None), "{path}");
        assert_eq!(store.put("a", b"2".to_vec()), Ok(Some(b"1".to_vec())), "{path}");
        assert_eq!(store.get("a"), Ok(Ok(b"2".to_vec())), "{path}");
        assert_eq!(store.get("zz"), Ok(Err("no key `zz`".to_owned())), "{path}");
        let r = Record { id: 41, tags: vec![1, 2], note: Some("hm".into()), wide: i128::MIN + 1 };
        assert_eq!(
            store.record(r),
            Ok(Record { id: 42, tags: vec![1, 2, b'!'], note: Some("hm?".into()), wide: i128::MAX }),
            "{path}"
        );
        assert_eq!(store.glyph('ç', true), Ok('ç'), "{path}");
        assert_eq!(store.glyph('q', true), Ok('Q'), "{path}");
        assert_eq!(store.count(), Ok(4), "{path}");
    }
}

fn entry(key: &str, kind: Kind, value: &[u8], tags: &[&str], parent: Option<Entry>) -> Entry {
    Entry {
        key: key.into(),
        value: value.to_vec(),
        kind,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        parent: parent.map(Box::new),
    }
}

#[test]
fn enums_collections_tuples_arrays_and_boxes_cross() {
    for (path, store, _plugin) in stores() {
        let root = entry("root", Kind::Blob, b"r", &[], None);
        let child = entry("child", Kind::Link, b"c", &["a", "b"], Some(entry("mid", Kind::Text, b"", &[], Some(root))));
        assert_eq!(store.insert(child), Ok(Ok(202)), "{path}");
        assert_eq!(
            store.insert(entry("lonely", Kind::Link, b"", &[], None)),
            Ok(Err(StoreError::Other("link `lonely` has no parent".into()))),
            "{path}"
        );
        assert_eq!(
            store.insert(entry("big", Kind::Blob, b"12345", &[], None)),
            Ok(Err(StoreError::Limit { max: 4, asked: 5 })),
            "{path}"
        );
        assert_eq!(store.errors(0), Ok(Ok(())), "{path}");
        assert_eq!(store.errors(1), Ok(Err(StoreError::Full)), "{path}");
        assert_eq!(store.errors(2), Ok(Err(StoreError::ReadOnly)), "{path}");
        assert_eq!(store.errors(9), Ok(Err(StoreError::Other("9".into()))), "{path}");
        assert_eq!(store.keys(), Ok(vec!["child".to_owned()]), "{path}");

        let items = vec![("x".to_owned(), vec![1u8]), ("y".to_owned(), vec![]), ("z".to_owned(), vec![2, 3])];
        let upper = store.pairs(items).unwrap();
        assert_eq!(upper.len(), 3, "{path}");
        assert_eq!(upper["Z"], vec![2, 3], "{path}");
        let sorted = store.sorted(upper).unwrap();
        assert_eq!(
            sorted.into_iter().collect::<Vec<_>>(),
            [("X".into(), 1), ("Y".into(), 0), ("Z".into(), 2)],
            "{path}"
        );

        let kinds: HashSet<Kind> = [Kind::Link, Kind::Text, Kind::Link].into();
        let words: BTreeSet<String> = ["b", "a", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            store.sets(kinds, words),
            Ok((vec![Kind::Text, Kind::Link], vec!["c".into(), "b".into(), "a".into()])),
            "{path}"
        );

        let found = store.find("k").unwrap().unwrap();
        assert_eq!(found.tags, ["found"], "{path}");
        assert_eq!(found.parent.as_ref().unwrap().value, [1], "{path}");
        assert_eq!(store.find("none"), Ok(None), "{path}");

        assert_eq!(store.quad([10, 0, 0, 1], [[1, 2], [3, 4]]), Ok([1, 0, 0, 20]), "{path}");
        let words = ["ab".to_owned(), "cde".to_owned()];
        let entries = [entry("e", Kind::Text, b"", &["1", "2"], None), entry("f", Kind::Text, b"", &["3"], None)];
        assert_eq!(store.sum(&[1, 2, 3, u64::MAX - 6], &words, &entries), Ok((u64::MAX, 5, 3)), "{path}");
        assert_eq!(store.sum(&[], &[], &[]), Ok((0, 0, 0)), "{path}");

        let tree = Node {
            label: "a".into(),
            children: vec![
                Node { label: "b".into(), children: vec![] },
                Node { label: "c".into(), children: vec![Node { label: "d".into(), children: vec![] }] },
            ],
        };
        let mirrored = store.tree(tree).unwrap();
        assert_eq!(mirrored.label, "A", "{path}");
        assert_eq!(mirrored.children[0].children[0].label, "D", "{path}");
        assert_eq!(mirrored.children[1].label, "B", "{path}");

        let q: VecDeque<u16> = [5, 6].into();
        assert_eq!(
            store.misc(Pair(1.5, 'x'), Unit, q, (7, -1, (true,), ())),
            Ok((Pair(3.0, 'X'), Unit, [7, 5, 6, 65535].into())),
            "{path}"
        );
        assert_eq!(store.big((1, 2, 3, 4, 5, 6, 7, 8, 9.5, 10.5, true, '\u{1}')), Ok(57), "{path}");
    }
}

#[test]
fn big_values_cross() {
    for (path, store, _plugin) in stores() {
        // Smaller under Miri, which interprets every step.
        let n: usize = if cfg!(miri) { 60 } else { 2_000 };
        let many: Vec<(String, Vec<u8>)> = (0..n).map(|i| (format!("key {i}"), vec![i as u8; i % 7])).collect();
        let map = store.pairs(many).unwrap();
        assert_eq!(map.len(), n, "{path}");
        let last = n - 1;
        assert_eq!(map[&format!("KEY {last}")], vec![(last % 256) as u8; last % 7], "{path}");
        let numbers: Vec<u64> = (0..n as u64 * 5).collect();
        assert_eq!(store.sum(&numbers, &[], &[]).unwrap().0, numbers.iter().sum::<u64>(), "{path}");
    }
}

/// Large `Vec<u8>`s and `String`s inside values given away (a struct's fields, a
/// nested struct's, a tuple's in a `Vec`, a tree's labels) are sent from their own
/// buffers by a blocking byte-level call (`gather_owned`), and the blocks around them
/// count them in their lengths: every value arrives whole, in both paths.
#[test]
#[cfg_attr(
    miri,
    ignore = "hundreds of kilobytes of text: minutes under Miri; client::tests::blocks_count_the_bytes_gathered_inside_them runs the same code there"
)]
fn large_bytes_inside_values_given_away_cross_whole() {
    // (Over the 64 KiB from which bytes are gathered; few, for Miri.)
    let big =
        |n: usize, seed: u8| -> Vec<u8> { (0..n).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect() };
    let text = |n: usize, seed: u8| -> String { big(n, seed).iter().map(|b| char::from(b'a' + b % 26)).collect() };
    const N: usize = 70_000;
    for (path, store, _plugin) in stores() {
        let r = Record { id: 1, tags: big(N, 1), note: Some(text(N + 1, 2)), wide: 5 };
        let back = store.record(r.clone()).unwrap();
        assert!(back.tags.len() == N + 1 && back.tags[..N] == r.tags[..], "{path}: tags");
        assert_eq!(back.note.unwrap(), text(N + 1, 2) + "?", "{path}: note");
        assert_eq!((back.id, back.wide), (2, -5), "{path}");
        // A nested struct (through a `Box`), its fields and its parent's large.
        let parent = entry(&text(N, 3), Kind::Text, &big(N + 2, 4), &[&text(N, 5), "small"], None);
        let child = entry("child", Kind::Text, &big(N + 3, 6), &[&text(N + 4, 7)], Some(parent));
        assert_eq!(store.insert(child).unwrap(), Ok(1 + 100), "{path}");
        assert_eq!(store.get("child").unwrap(), Ok(big(N + 3, 6)), "{path}: the value");
        // Tuples in a `Vec`, a small one between large ones.
        let items = vec![(text(N, 8), big(N, 9)), ("k".into(), vec![1]), (text(N, 10), big(N + 5, 11))];
        let map = store.pairs(items.clone()).unwrap();
        assert_eq!(map.len(), 3, "{path}");
        for (k, v) in items {
            assert!(map[&k.to_uppercase()] == v, "{path}: a pair of {} bytes", v.len());
        }
        // A tree: large labels in blocks nested in vectors of blocks.
        let leaf = |seed| Node { label: text(N, seed), children: vec![] };
        let root = Node {
            label: text(N, 12),
            children: vec![leaf(13), Node { label: "mid".into(), children: vec![leaf(14)] }],
        };
        let mirrored = store.tree(root).unwrap();
        assert_eq!(mirrored.label, text(N, 12).to_uppercase(), "{path}");
        assert_eq!(mirrored.children[0].children[0].label, text(N, 14).to_uppercase(), "{path}");
        assert_eq!(mirrored.children[1].label, text(N, 13).to_uppercase(), "{path}");
    }
}

#[test]
fn a_panic_comes_back_as_an_error_and_the_instance_keeps_working() {
    tomada::__private::call::__install_panic_hook();
    for (path, store, _plugin) in stores() {
        let err = store.explode("on purpose".into()).unwrap_err();
        let CallError::Panicked { message } = &err else { panic!("{path}: {err:?}") };
        assert!(message.starts_with("exploded: on purpose (at "), "{path}: {message}");
        assert!(err.to_string().starts_with("the plugin panicked: exploded: on purpose"), "{path}");
        assert_eq!(store.put("k", vec![]), Ok(None), "{path}");
    }
}

#[test]
fn the_client_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<StoreClient>();
    for (path, store, _plugin) in stores() {
        std::thread::scope(|s| {
            for t in 0..4 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..50 {
                        store.put(&format!("{t}-{i}"), vec![t as u8]).unwrap();
                    }
                });
            }
        });
        assert_eq!(store.count(), Ok(200), "{path}");
    }
}

#[test]
fn garbage_arguments_are_an_error_not_undefined_behaviour() {
    let plugin = instance(Memory::default());
    let channel = Loopback { plugin, dispatch: <dyn Store>::__tomada_dispatch::<Memory> };
    // Method 1 is `get(&str)`: a length that lies, bytes that are not UTF-8, trailing
    // bytes, an unknown method, an enum index out of range.
    let lying = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
    let not_utf8 = [2, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0x28];
    let trailing = [0, 0, 0, 0, 0, 0, 0, 0, 9];
    // Method 10 is `sets(HashSet<Kind>, BTreeSet<String>)`: one `Kind` of index 9.
    let bad_kind = [1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let cases = [(1, &lying[..]), (1, &not_utf8[..]), (1, &trailing[..]), (99, &[][..]), (10, &bad_kind[..])];
    for (method, bytes) in cases {
        let err = channel.call(method, bytes.to_vec()).unwrap_err();
        assert!(matches!(err, CallError::Channel { .. }), "method {method}: {err:?}");
    }
    // An enum variant index the contract does not have, in an answer.
    let bad_answer: Result<Result<(), StoreError>, _> =
        tomada::__private::client::remote_call(&BadAnswer, 17, false, |_| ());
    assert!(matches!(bad_answer, Err(CallError::Answer(tomada::wire::WireError::Malformed(_)))), "{bad_answer:?}");
}

struct BadAnswer;

impl Channel for BadAnswer {
    fn call(&self, _: u32, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
        Ok(vec![1, 0, 0, 0, 9, 0, 0, 0])
    }
}

#[allow(dead_code)] // exists for its vtable
mod v10 {
    #[tomada::contract(abi = 1, name = "evolving::Api")]
    pub trait Api {
        fn hello(&self) -> String;
    }
}

#[allow(dead_code)] // exists for its client
mod v11 {
    #[tomada::contract(abi = 1, name = "evolving::Api")]
    pub trait Api {
        fn hello(&self) -> String;
        /// Added in 1.1.
        #[tomada(since = 1)]
        fn bye(&self, name: &str) -> String;
    }
}

struct Old;

impl v10::Api for Old {
    fn hello(&self) -> String {
        "hello from 1.0".into()
    }
}

static OLD_VTABLE: v10::ApiVTable = <dyn v10::Api>::__tomada_vtable::<Old>();

#[test]
fn a_newer_host_calls_an_older_plugin() {
    assert_eq!(<dyn v11::Api as Contract>::MINOR, 1);
    assert_eq!(<dyn v10::Api as Contract>::MINOR, 0);
    // The 1.0 plugin's vtable has one entry; the 1.1 client knows two.
    assert_eq!(std::mem::size_of::<v10::ApiVTable>(), std::mem::size_of::<usize>());
    let clients = clients::<dyn v11::Api, _>(
        (&OLD_VTABLE as *const v10::ApiVTable).cast(),
        <dyn v10::Api>::__tomada_dispatch::<Old>,
        || Old,
        1,
        0,
    );
    for (path, client, _plugin) in clients {
        assert_eq!(client.hello(), Ok("hello from 1.0".into()), "{path}");
        let err = client.bye("x").unwrap_err();
        assert_eq!(
            err,
            CallError::NotProvided { method: "bye", added_in: "1.1".into(), plugin_version: "1.0".into() },
            "{path}"
        );
        assert_eq!(
            err.to_string(),
            "`bye` is not provided by this plugin (built against contract 1.0; `bye` was added in 1.1); rebuild the plugin against the newer contract"
        );
    }
}

#[test]
fn the_description_is_readable() {
    let d = tomada::Interface::from(&<dyn v11::Api as Contract>::DESCRIPTION);
    assert_eq!(d.name, "evolving::Api");
    assert_eq!(d.version(), "1.1");
    let methods: Vec<String> = d.methods.iter().map(ToString::to_string).collect();
    assert_eq!(methods, ["fn hello(&self) -> String", "fn bye(&self, &str) -> String  [since minor 1]"]);
    let store = tomada::Interface::from(&<dyn Store as Contract>::DESCRIPTION);
    let sig = |i: usize| store.methods[i].to_string();
    assert_eq!(sig(0), "fn put(&self, &str, Vec<u8>) -> Option<Vec<u8>>");
    assert_eq!(sig(8), "fn pairs(&self, Vec<(String, Vec<u8>)>) -> HashMap<String, Vec<u8>>");
    assert_eq!(sig(12), "fn quad(&self, [u8; 4], [[i16; 2]; 2]) -> [u8; 4]");
    assert_eq!(sig(13), "fn sum(&self, &[u64], &[String], &[Entry]) -> (u64, usize, usize)");
    assert_eq!(
        sig(15),
        "fn misc(&self, Pair, Unit, VecDeque<u16>, (u8, i8, (bool,), ())) -> (Pair, Unit, VecDeque<u16>)"
    );
    let defs: Vec<String> = store.types.iter().map(ToString::to_string).collect();
    assert_eq!(
        defs,
        [
            "struct Record { id: u64, tags: Vec<u8>, note: Option<String>, wide: i128 }",
            "struct Empty {}",
            "struct Entry { key: String, value: Vec<u8>, kind: Kind, tags: Vec<String>, parent: Option<Box<Entry>> }",
            "enum Kind { Text, Blob, Link }",
            "enum StoreError { Full, ReadOnly, Other(String), Limit { max: u32, asked: u64 } }",
            "struct Node { label: String, children: Vec<Node> }",
            "struct Pair(f32, char)",
            "struct Unit",
        ]
    );
}

/// Trait objects in-process, without a library (Miri checks every conversion, call and
/// release): a host service borrowed for a call, one kept by the plugin, an object the
/// plugin makes, and one made from another; the host's handles to them, also inside
/// `Option`, `Vec` and tuples, and handed back.
// A result type written out whole: the client maps the objects in it to handles by
// their written shape, which an alias would hide.
#[allow(clippy::type_complexity)]
mod objects {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::clients;

    #[tomada::contract(abi = 1, name = "t::Sink")]
    pub trait Sink {
        fn take(&self, line: &str) -> usize;
    }

    #[tomada::contract(abi = 1, name = "t::Counter")]
    pub trait Counter {
        fn next(&self) -> u32;
        fn split(&self) -> Box<dyn Counter>;
    }

    #[tomada::contract(abi = 1, name = "t::Service")]
    pub trait Service {
        fn run(&self, lines: Vec<String>, sink: &dyn Sink) -> usize;
        fn keep(&self, sink: Box<dyn Sink>);
        fn emit(&self, line: String) -> Option<usize>;
        fn counter(&self, start: u32) -> Box<dyn Counter>;
        fn shared(&self, sink: Arc<dyn Sink>) -> Arc<dyn Counter>;
        fn counters(&self, starts: Vec<u32>) -> (Option<Box<dyn Counter>>, Vec<Box<dyn Counter>>);
        fn read(&self, given: Box<dyn Counter>, lent: &dyn Counter) -> (u32, u32);
    }

    struct Count(AtomicUsize);
    impl Counter for Count {
        fn next(&self) -> u32 {
            self.0.fetch_add(1, Ordering::SeqCst) as u32
        }
        fn split(&self) -> Box<dyn Counter> {
            Box::new(Count(AtomicUsize::new(self.0.load(Ordering::SeqCst) * 10)))
        }
    }

    #[derive(Default)]
    struct Impl(Mutex<Option<Box<dyn Sink>>>);
    impl Service for Impl {
        fn run(&self, lines: Vec<String>, sink: &dyn Sink) -> usize {
            lines.iter().map(|l| sink.take(l)).sum()
        }
        fn keep(&self, sink: Box<dyn Sink>) {
            *self.0.lock().unwrap() = Some(sink);
        }
        fn emit(&self, line: String) -> Option<usize> {
            self.0.lock().unwrap().as_ref().map(|s| s.take(&line))
        }
        fn counter(&self, start: u32) -> Box<dyn Counter> {
            Box::new(Count(AtomicUsize::new(start as usize)))
        }
        fn shared(&self, sink: Arc<dyn Sink>) -> Arc<dyn Counter> {
            let n = sink.take("shared");
            Arc::new(Count(AtomicUsize::new(n)))
        }
        fn counters(&self, starts: Vec<u32>) -> (Option<Box<dyn Counter>>, Vec<Box<dyn Counter>>) {
            let mut all: Vec<Box<dyn Counter>> = starts.into_iter().map(|s| self.counter(s)).collect();
            (all.pop(), all)
        }
        fn read(&self, given: Box<dyn Counter>, lent: &dyn Counter) -> (u32, u32) {
            (given.next(), lent.next())
        }
    }

    struct Lines(Arc<Mutex<Vec<String>>>);
    impl Sink for Lines {
        fn take(&self, line: &str) -> usize {
            self.0.lock().unwrap().push(line.to_owned());
            line.len()
        }
    }

    static VTABLE: ServiceVTable = <dyn Service>::__tomada_vtable::<Impl>();

    #[test]
    fn objects_cross_in_process_and_are_released() {
        let [(_, service, plugin), _] = clients::<dyn Service, _>(
            (&VTABLE as *const ServiceVTable).cast(),
            <dyn Service>::__tomada_dispatch::<Impl>,
            Impl::default,
            7,
            0,
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Lines(Arc::clone(&seen));
        assert_eq!(service.run(vec!["ab".into(), "cde".into()], &sink), Ok(5));
        assert_eq!(*seen.lock().unwrap(), ["ab", "cde"]);

        assert_eq!(service.emit("x".into()), Ok(None));
        service.keep(Box::new(Lines(Arc::clone(&seen)))).unwrap();
        assert_eq!(Arc::strong_count(&seen), 3, "the plugin keeps the host's sink");
        assert_eq!(service.emit("kept".into()), Ok(Some(4)));
        service.keep(Box::new(Lines(Arc::clone(&seen)))).unwrap();
        assert_eq!(Arc::strong_count(&seen), 3, "the first kept sink was released");

        // Objects the plugin made are handles: their calls return `Result`.
        let counter: tomada::Handle<dyn Counter> = service.counter(7).unwrap();
        assert_eq!((counter.next(), counter.next()), (Ok(7), Ok(8)));
        let split = counter.split().unwrap();
        drop(counter);
        assert_eq!(split.next(), Ok(90));
        // Through the trait, as a plugin given it back would call it.
        assert_eq!(Counter::next(&split), 91);
        let as_object: &dyn Counter = &split;
        assert_eq!(tomada::handle(as_object).map(|h| h.next()), Some(Ok(92)));
        assert!(tomada::handle::<dyn Counter>(&Count(AtomicUsize::new(0))).is_none(), "a local object has none");

        // Handles inside `Option`, `Vec` and tuples; handles handed back as the trait
        // objects (given away, and lent for the call).
        let (last, rest) = service.counters(vec![1, 2, 3]).unwrap();
        let last = last.expect("a counter");
        assert_eq!((rest[0].next(), rest[1].next(), last.next()), (Ok(1), Ok(2), Ok(3)));
        let [a, b] = <[_; 2]>::try_from(rest).ok().unwrap();
        assert_eq!(service.read(Box::new(a), &b), Ok((2, 3)));
        assert_eq!(b.next(), Ok(4), "the lent one stays the host's");

        let shared: Arc<dyn Sink> = Arc::new(Lines(Arc::clone(&seen)));
        let c = service.shared(Arc::clone(&shared)).unwrap();
        assert_eq!(c.next(), Ok(6));
        drop((shared, c, split, last, b, service, plugin, sink));
        assert_eq!(Arc::strong_count(&seen), 1, "everything the plugin held was released");
    }
}

/// A runner that read `flags::BYTES_ALONE` asks the dispatch function for byte
/// strings' bytes alone (the method number's `BYTES_ALONE` bit): it gets the plugin's
/// own buffer back, status `BYTES`; everything else answers as without the bit.
mod bytes_alone {
    use super::*;
    use tomada::__private::CANCEL_METHOD;
    use tomada::__private::client::BYTES_ALONE;
    use tomada::__private::descriptor::flags;
    use tomada::__private::ffi::Status;

    #[tomada::contract(abi = 1)]
    pub trait Bytes {
        fn text(&self, n: u32) -> String;
        fn blob(&self, n: u32) -> Vec<u8>;
        fn number(&self, n: u32) -> u64;
        fn nested(&self, n: u32) -> Option<Vec<u8>>;
        fn boom(&self, n: u32) -> Vec<u8>;
    }

    struct Maker;

    impl Bytes for Maker {
        fn text(&self, n: u32) -> String {
            (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
        }
        fn blob(&self, n: u32) -> Vec<u8> {
            (0..n).map(|i| (i % 251) as u8).collect()
        }
        fn number(&self, n: u32) -> u64 {
            u64::from(n) * 3
        }
        fn nested(&self, n: u32) -> Option<Vec<u8>> {
            Some(self.blob(n))
        }
        fn boom(&self, n: u32) -> Vec<u8> {
            panic!("boom {n}")
        }
    }

    /// Calls `method` (maybe with the bit) with `n` as the argument: status and body.
    fn dispatch(plugin: &Plugin<Maker>, method: u32, n: u32) -> (Status, Vec<u8>) {
        let mut out = MaybeUninit::<RVec>::uninit();
        let mut panic = MaybeUninit::<RVec>::uninit();
        let args = n.to_le_bytes();
        // SAFETY: the contract's dispatch function for `Maker`, its live instance,
        // arguments alive for the call, writable `out`/`panic`.
        let status = unsafe {
            <dyn Bytes>::__tomada_dispatch::<Maker>(
                plugin.this,
                method,
                RSlice::new(&args),
                out.as_mut_ptr(),
                panic.as_mut_ptr(),
            )
        };
        // (`dispatched` reads `Status::BYTES` as the unknown status it is to a call
        // that did not ask; this one may have: the bytes alone are read here.)
        if status == Status::BYTES {
            assert_ne!(method & BYTES_ALONE, 0, "the bytes alone, unasked");
            // SAFETY: written on BYTES to a method that asked for it.
            return (status, unsafe { out.assume_init() }.into_vec());
        }
        // SAFETY: from that call.
        (status, unsafe { dispatched(status, out, panic) }.into_vec())
    }

    fn with_length(bytes: &[u8]) -> Vec<u8> {
        let mut form = (bytes.len() as u64).to_le_bytes().to_vec();
        form.extend_from_slice(bytes);
        form
    }

    #[test]
    fn a_generated_contract_says_its_dispatch_answers_bytes_alone() {
        assert_eq!(<dyn Bytes as Contract>::DISPATCH_FLAGS, flags::BYTES_ALONE);
        assert_eq!(<dyn Store as Contract>::DISPATCH_FLAGS, flags::BYTES_ALONE);
    }

    #[test]
    fn byte_strings_come_alone_when_asked_and_in_their_byte_form_otherwise() {
        let plugin = instance(Maker);
        let sizes: &[u32] = if cfg!(miri) { &[0, 1, 9] } else { &[0, 1, 9, 65_535, 65_536, 65_537, 3 << 20] };
        for &n in sizes {
            let text = Maker.text(n).into_bytes();
            let blob = Maker.blob(n);
            // Not asked: the byte form, as every runner before the flag reads it.
            assert_eq!(dispatch(&plugin, 0, n), (Status::OK, with_length(&text)), "text, {n} bytes");
            assert_eq!(dispatch(&plugin, 1, n), (Status::OK, with_length(&blob)), "blob, {n} bytes");
            // Asked: the bytes alone.
            assert_eq!(dispatch(&plugin, BYTES_ALONE, n), (Status::BYTES, text), "text alone, {n} bytes");
            assert_eq!(dispatch(&plugin, 1 | BYTES_ALONE, n), (Status::BYTES, blob.clone()), "blob alone, {n} bytes");
            // A value that is not a byte string, or holds one: its byte form either way.
            let nested = dispatch(&plugin, 3, n);
            assert!(nested.0 == Status::OK && nested.1.ends_with(&with_length(&blob)), "Option<Vec<u8>>, {n} bytes");
            assert_eq!(dispatch(&plugin, 3 | BYTES_ALONE, n), nested, "Option<Vec<u8>>, {n} bytes");
        }
        assert_eq!(dispatch(&plugin, 2 | BYTES_ALONE, 5), (Status::OK, 15u64.to_le_bytes().to_vec()));
        // Failures are the same with the bit: a panic, an unknown method (named
        // without the bit), arguments that do not decode.
        let (status, message) = dispatch(&plugin, 4 | BYTES_ALONE, 7);
        assert_eq!(status, Status::PANICKED);
        assert!(String::from_utf8(message).unwrap().starts_with("boom 7"));
        let (status, message) = dispatch(&plugin, 9 | BYTES_ALONE, 7);
        assert_eq!(
            (status, String::from_utf8(message).unwrap()),
            (Status::MALFORMED, "no method number 9 in this contract".to_owned())
        );
        let mut out = MaybeUninit::<RVec>::uninit();
        let mut panic = MaybeUninit::<RVec>::uninit();
        // SAFETY: as in `dispatch`, with 3 bytes of arguments where a `u32` is read.
        let status = unsafe {
            <dyn Bytes>::__tomada_dispatch::<Maker>(
                plugin.this,
                BYTES_ALONE,
                RSlice::new(&[1, 2, 3]),
                out.as_mut_ptr(),
                panic.as_mut_ptr(),
            )
        };
        // SAFETY: from that call.
        drop(unsafe { dispatched(status, out, panic) });
        assert_eq!(status, Status::MALFORMED);
        // The cancel method (every bit set) is still the cancel method: no call runs
        // with that key, so its answer is a 0.
        let mut out = MaybeUninit::<RVec>::uninit();
        let mut panic = MaybeUninit::<RVec>::uninit();
        let key = 12345u64.to_le_bytes();
        // SAFETY: as above; the cancel method reads 8 bytes.
        let status = unsafe {
            <dyn Bytes>::__tomada_dispatch::<Maker>(
                plugin.this,
                CANCEL_METHOD,
                RSlice::new(&key),
                out.as_mut_ptr(),
                panic.as_mut_ptr(),
            )
        };
        // SAFETY: from that call.
        assert_eq!((status, unsafe { dispatched(status, out, panic) }.into_vec()), (Status::OK, vec![0]));
    }
}
