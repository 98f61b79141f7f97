//! With `tomada::global_allocator!()` installed, owned buffers cross without a copy
//! (the other tests run without it and take the copying path). A separate test
//! binary, because a global allocator is per binary.

#![allow(missing_docs)]

use tomada::Abi;

tomada::global_allocator!();

#[test]
fn global_allocator_is_detected() {
    assert!(tomada::alloc::global_is_system());
}

#[test]
fn strings_and_vecs_are_moved_not_copied() {
    let s = String::from("Olá, Mundo 👋");
    let ptr = s.as_ptr();
    let ffi = s.into_ffi();
    assert_eq!(ffi.as_slice().as_ptr(), ptr);
    // SAFETY: made by `String::into_ffi`.
    let back = unsafe { String::from_ffi(ffi) };
    assert_eq!(back.as_ptr(), ptr);
    assert_eq!(back, "Olá, Mundo 👋");

    let v = vec![1u8, 2, 3];
    let ptr = v.as_ptr();
    // SAFETY: made by `Vec::into_ffi`.
    let back = unsafe { Vec::<u8>::from_ffi(v.into_ffi()) };
    assert_eq!(back.as_ptr(), ptr);
}

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum Kind {
    Text(String),
    Blob { bytes: Vec<u8>, tags: Vec<String> },
    Empty,
}

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub kind: Kind,
    pub score: f64,
    pub parent: Option<Box<Entry>>,
}

#[test]
fn sequences_are_converted_in_place() {
    // Strings: each element's own buffer moves too; the sequence's buffer is reused.
    let words: Vec<String> = (0..100).map(|i| format!("word {i}")).collect();
    let (ptr, first) = (words.as_ptr() as usize, words[0].as_ptr());
    // SAFETY: made by `Vec::into_ffi`.
    let back = unsafe { Vec::<String>::from_ffi(words.clone().into_ffi()) };
    assert_eq!(back, words);
    let moved = words;
    // SAFETY: as above.
    let back = unsafe { Vec::<String>::from_ffi(moved.into_ffi()) };
    assert_eq!((back.as_ptr() as usize, back[0].as_ptr()), (ptr, first));

    // Numbers: the buffer crosses untouched.
    let numbers: Vec<u64> = (0..1000).collect();
    let ptr = numbers.as_ptr();
    // SAFETY: as above.
    let back = unsafe { Vec::<u64>::from_ffi(numbers.into_ffi()) };
    assert_eq!(back.as_ptr(), ptr);
    assert_eq!(back.iter().sum::<u64>(), 499_500);

    // Structs with enums, boxes and nested sequences; Miri checks every move and free.
    let entries: Vec<Entry> = (0..20)
        .map(|i| Entry {
            key: format!("k{i}"),
            kind: match i % 3 {
                0 => Kind::Text("t".repeat(i)),
                1 => Kind::Blob { bytes: vec![i as u8; i], tags: vec!["a".into(), format!("b{i}")] },
                _ => Kind::Empty,
            },
            score: i as f64 / 2.0,
            parent: (i % 4 == 0)
                .then(|| Box::new(Entry { key: "p".into(), kind: Kind::Empty, score: -1.0, parent: None })),
        })
        .collect();
    // SAFETY: as above.
    let back = unsafe { Vec::<Entry>::from_ffi(entries.clone().into_ffi()) };
    assert_eq!(back, entries);
    drop(entries);
    // Dropped without being converted back: every element and buffer is freed. (Not
    // for a `Vec` of native records, or one inside a converted value: a native
    // sequence is only ever taken by the receiving `Vec`, and leaks if a call is
    // abandoned before that.)
    let evolving: std::collections::VecDeque<Evolving> =
        (0..20).map(|i| Evolving { key: format!("k{i}"), note: Some(Box::new(i.to_string())) }).collect();
    drop(evolving.into_ffi());
}

#[test]
fn maps_and_sets_cross() {
    use std::collections::{BTreeMap, HashMap, HashSet};
    let map: HashMap<String, Vec<u8>> = (0..50).map(|i| (format!("{i}"), vec![i as u8])).collect();
    // SAFETY: made by `into_ffi` of the same type.
    let back = unsafe { HashMap::<String, Vec<u8>>::from_ffi(map.clone().into_ffi()) };
    assert_eq!(back, map);
    let tree: BTreeMap<u32, Option<String>> = (0..50).map(|i| (i, (i % 2 == 0).then(|| i.to_string()))).collect();
    // SAFETY: as above.
    let back = unsafe { BTreeMap::<u32, Option<String>>::from_ffi(tree.clone().into_ffi()) };
    assert_eq!(back, tree);
    let set: HashSet<(u8, char)> = (0..20).map(|i| (i, char::from(b'a' + i))).collect();
    // SAFETY: as above.
    let back = unsafe { HashSet::<(u8, char)>::from_ffi(set.clone().into_ffi()) };
    assert_eq!(back, set);
}

/// Evolves: a field appended in minor version 1.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Evolving {
    pub key: String,
    #[tomada(since = 1)]
    pub note: Option<Box<String>>,
}

/// Mutually recursive, through a field that is never native (a map).
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Tree {
    pub name: String,
    pub forest: Option<Box<Forest>>,
}

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Forest {
    pub trees: Vec<Tree>,
    pub index: std::collections::HashMap<String, u32>,
}

/// Mutually recursive, all native.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Ping {
    pub pong: Option<Box<Pong>>,
}

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum Pong {
    Done,
    Again(Vec<Ping>),
}

/// Open: a side may not know every variant, so its layout may differ.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum Open {
    A(String),
    #[tomada(other)]
    Unknown,
}

#[test]
fn which_types_are_native() {
    assert!(<Entry as Abi>::native());
    assert!(<Kind as Abi>::native());
    assert!(<Vec<Option<Box<Entry>>> as Abi>::native());
    assert!(<(String, [u64; 3], Result<char, bool>) as Abi>::native());
    // Appended fields, open enums, maps: never.
    assert!(!<Evolving as Abi>::native());
    assert!(!<Open as Abi>::native());
    assert!(!<std::collections::HashMap<String, u32> as Abi>::native());
    // Recursion through `Box`: answered by what else the cycle holds, from any end.
    assert!(!<Forest as Abi>::native());
    assert!(!<Tree as Abi>::native());
    assert!(!<Forest as Abi>::native());
    assert!(<Pong as Abi>::native());
    assert!(<Ping as Abi>::native());
}

#[test]
fn native_records_cross_as_their_buffer() {
    let entries: Vec<Entry> = (0..10)
        .map(|i| Entry {
            key: format!("k{i}"),
            kind: Kind::Blob { bytes: vec![i as u8; 3], tags: vec![format!("t{i}")] },
            score: f64::from(i),
            parent: Some(Box::new(Entry { key: "p".into(), kind: Kind::Empty, score: 0.0, parent: None })),
        })
        .collect();
    let expected = entries.clone();
    let buffer = entries.as_ptr() as usize;
    let boxes: Vec<usize> =
        entries.iter().map(|e| std::ptr::from_ref::<Entry>(e.parent.as_deref().unwrap()) as usize).collect();
    // SAFETY: made by `Vec::into_ffi` of the same type.
    let back = unsafe { Vec::<Entry>::from_ffi(entries.into_ffi()) };
    assert_eq!(back, expected);
    // Untouched: the buffer, and each box (a converted `Box` would be a new `RBox`).
    assert_eq!(back.as_ptr() as usize, buffer);
    let after: Vec<usize> =
        back.iter().map(|e| std::ptr::from_ref::<Entry>(e.parent.as_deref().unwrap()) as usize).collect();
    assert_eq!(after, boxes);

    // Evolving records still convert, element by element.
    let evolving = vec![Evolving { key: "a".into(), note: Some(Box::new("n".into())) }];
    // SAFETY: as above.
    let back = unsafe { Vec::<Evolving>::from_ffi(evolving.clone().into_ffi()) };
    assert_eq!(back, evolving);
}

#[test]
fn native_slices_are_borrowed() {
    use tomada::abi::Arg;
    let entries: Vec<Entry> =
        (0..3).map(|i| Entry { key: format!("k{i}"), kind: Kind::Empty, score: 1.0, parent: None }).collect();
    let ffi = <&[Entry] as Arg>::into_ffi(&entries);
    // SAFETY: made by `into_ffi` of the same type; `entries` outlives the store.
    let mut store = unsafe { <&[Entry] as Arg>::receive(ffi) };
    // SAFETY: called once; the view does not outlive the store.
    let view = unsafe { <&[Entry] as Arg>::view(&mut store) };
    assert_eq!(view.as_ptr(), entries.as_ptr(), "borrowed, not copied");
    assert_eq!(view, entries.as_slice());
}
