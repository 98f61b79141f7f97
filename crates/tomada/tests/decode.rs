//! Decoding hostile bytes is total and bounded (see `tomada::wire`): nesting past the
//! limit, lengths that claim more than the bytes allow, values that would take more
//! memory than the bytes received allow, and keys twice are each a typed error; a value
//! within the limits decodes as before. Miri runs these too (on smaller attacks: it is
//! slow, and the limits stop each one within a few hundred bytes anyway).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use tomada::Abi;
use tomada::wire::{Limits, MAX_DECODE_STACK, Reader, WireError, put_len, put_variant};

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Node {
    pub label: String,
    pub next: Option<Box<Node>>,
}

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum Tree {
    Leaf(u32),
    Branch(Vec<Tree>),
    Named(BTreeMap<String, Tree>),
}

/// 200 bytes in memory; its `None` is 4 bytes on the wire.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u64,
    pub name: String,
    pub tags: Vec<String>,
    pub score: Option<f64>,
    pub digest: [u64; 16],
}

/// The byte form of a chain of `nodes` nodes (`nodes - 1` boxes deep). Each node is
/// a block (see `tomada::block`): its length (8 bytes), the label's length (8), the
/// `Option`'s variant (4), then the next node, inside the block.
fn chain(nodes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes * 20);
    for i in 0..nodes {
        put_len(&mut out, (nodes - i) * 20 - 8);
        put_len(&mut out, 0);
        put_variant(&mut out, u32::from(i + 1 < nodes));
    }
    out
}

fn decode<T: Abi>(bytes: &[u8], limits: Limits) -> Result<T, WireError> {
    let mut r = Reader::with_limits(bytes, limits);
    let value = T::decode(&mut r)?;
    r.finish()?;
    Ok(value)
}

fn depth(limit: u32) -> Limits {
    Limits { max_depth: limit, ..Limits::DEFAULT }
}

/// The attack, 100 000 boxes deep (1.2 MB), decoded on a 256 KiB thread: an
/// error after 128 levels, where the unlimited decoder recursed 100 000 frames deep
/// and overflowed any stack (a SIGSEGV turned abort: the host's whole process).
#[test]
fn a_chain_deeper_than_the_limit_is_an_error_not_a_stack_overflow() {
    let nodes = if cfg!(miri) { 1_000 } else { 100_000 };
    let bytes = chain(nodes);
    let result = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || Node::decode_owned(bytes).map(drop))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(result, Err(WireError::TooDeep { limit: 128 }));
    let text = result.unwrap_err().to_string();
    assert!(text.contains("deeper than 128 levels") && text.contains("`tomada::wire::set_limits`"), "{text}");
}

/// The limit is exact, and counts every way of nesting: boxes, vectors, maps.
#[test]
fn the_depth_limit_is_exact() {
    // 8 boxes deep: 9 nodes.
    let node: Node = decode(&chain(9), depth(8)).unwrap();
    let mut levels = 0;
    let mut n = &node;
    while let Some(next) = &n.next {
        levels += 1;
        n = next;
    }
    assert_eq!(levels, 8);
    assert_eq!(decode::<Node>(&chain(10), depth(8)), Err(WireError::TooDeep { limit: 8 }));

    let mut tree = Tree::Leaf(1);
    for i in 0..8 {
        tree = if i % 2 == 0 { Tree::Branch(vec![tree]) } else { Tree::Named(BTreeMap::from([("k".into(), tree)])) };
    }
    let mut bytes = Vec::new();
    tree.encode(&mut bytes);
    assert_eq!(decode::<Tree>(&bytes, depth(8)).as_ref(), Ok(&tree));
    assert_eq!(decode::<Tree>(&bytes, depth(7)), Err(WireError::TooDeep { limit: 7 }));
    // Vectors of vectors, maps of sets, too. A vector of numbers is a leaf, as a
    // string is: nothing nests inside it.
    let nested = vec![vec![vec![1u8]]];
    let mut bytes = Vec::new();
    nested.encode(&mut bytes);
    assert_eq!(decode::<Vec<Vec<Vec<u8>>>>(&bytes, depth(2)), Ok(nested));
    assert_eq!(decode::<Vec<Vec<Vec<u8>>>>(&bytes, depth(1)), Err(WireError::TooDeep { limit: 1 }));
    let map = HashMap::from([(1u8, BTreeSet::from([2u8]))]);
    let mut bytes = Vec::new();
    map.encode(&mut bytes);
    assert_eq!(decode::<HashMap<u8, BTreeSet<u8>>>(&bytes, depth(2)), Ok(map));
    assert_eq!(decode::<HashMap<u8, BTreeSet<u8>>>(&bytes, depth(1)), Err(WireError::TooDeep { limit: 1 }));
}

/// A type whose every level takes 32 KiB of stack to decode: with the depth limit out
/// of the way, the stack guard stops it at `MAX_DECODE_STACK`, well inside the 4 MiB
/// thread it runs on. (Miri places locals anywhere, so the guard is off there.)
#[test]
#[cfg_attr(miri, ignore = "Miri has no contiguous stack to guard")]
fn the_stack_guard_stops_deep_values_of_fat_types() {
    #[derive(tomada::Abi, Debug)]
    pub struct Fat {
        pub pad: [u64; 4096],
        pub next: Option<Box<Fat>>,
    }
    let levels = 2 * MAX_DECODE_STACK / (4096 * 8);
    let mut bytes = Vec::new();
    // Each level: the block's length, the padding, the `Option`'s variant, the next.
    let per_level = 8 + 4096 * 8 + 4;
    for i in 0..levels {
        put_len(&mut bytes, (levels - i) * per_level - 8);
        bytes.extend(std::iter::repeat_n(0u8, 4096 * 8));
        put_variant(&mut bytes, u32::from(i + 1 < levels));
    }
    let limits = Limits { max_depth: u32::MAX, memory_factor: 64, ..Limits::DEFAULT };
    let result = std::thread::Builder::new()
        .stack_size(4 * MAX_DECODE_STACK)
        .spawn(move || decode::<Fat>(&bytes, limits).map(drop))
        .unwrap()
        .join()
        .unwrap();
    assert!(matches!(result, Err(WireError::StackExhausted { .. })), "{result:?}");
}

/// `None`s of a 200-byte record: 4 bytes each on the wire, 50 × that in memory. The
/// unlimited decoder reserved `len × 200` bytes at once (2.4 GB for a 64 MiB answer);
/// now the vector is charged against 8 × the bytes + 1 MiB before it is allocated,
/// and refused. A sparse vector within the budget decodes.
#[test]
fn a_sparse_vector_cannot_amplify_memory() {
    let count = if cfg!(miri) { 8_192 } else { 1 << 20 };
    let mut bytes = Vec::new();
    put_len(&mut bytes, count);
    bytes.resize(8 + 4 * count, 0);
    let limits = Limits { memory_slack: 64 << 10, ..Limits::DEFAULT };
    let received = bytes.len();
    assert_eq!(
        decode::<Vec<Option<Record>>>(&bytes, limits),
        Err(WireError::TooLarge { budget: limits.budget(received), received })
    );
    let text = decode::<Vec<Option<Record>>>(&bytes, limits).unwrap_err().to_string();
    assert!(text.contains("memory_factor") && text.contains("set_limits"), "{text}");
    // Raised, the same bytes decode: the budget is what refused them.
    let roomy = Limits { memory_factor: 64, ..limits };
    assert_eq!(decode::<Vec<Option<Record>>>(&bytes, roomy).map(|v| v.len()), Ok(count));
    // Within the budget, a sparse answer is fine.
    let few = vec![None::<Record>; 100];
    let mut bytes = Vec::new();
    few.encode(&mut bytes);
    assert_eq!(decode::<Vec<Option<Record>>>(&bytes, limits), Ok(few));
}

/// A reader charges what each value takes: a string its bytes, a vector its
/// elements, a box its value; what is left is exact.
#[test]
fn the_budget_counts_what_values_take() {
    let value: Vec<Option<Box<String>>> = vec![Some(Box::new("abc".into())), None];
    let mut bytes = Vec::new();
    value.encode(&mut bytes);
    let limits = Limits { memory_factor: 4, memory_slack: 0, ..Limits::DEFAULT };
    let mut r = Reader::with_limits(&bytes, limits);
    assert_eq!(r.budget(), 4 * bytes.len());
    assert_eq!(Vec::<Option<Box<String>>>::decode(&mut r), Ok(value.clone()));
    let taken = 2 * size_of::<Option<Box<String>>>() + size_of::<String>() + 3;
    assert_eq!(r.budget(), 4 * bytes.len() - taken);
    // One byte less to spend than that, and it is refused.
    let tight = Limits { memory_factor: 0, memory_slack: taken - 1, ..limits };
    assert!(matches!(decode::<Vec<Option<Box<String>>>>(&bytes, tight), Err(WireError::TooLarge { .. })));
    assert_eq!(decode::<Vec<Option<Box<String>>>>(&bytes, Limits { memory_slack: taken, ..tight }), Ok(value));
}

/// Lengths that claim more than the bytes hold are refused before anything is
/// allocated: for vectors, strings, maps and sets alike (a map used to reserve up to
/// 2^20 entries, whatever the bytes).
#[test]
fn lying_lengths_are_refused_before_allocating() {
    let mut lying = Vec::new();
    put_len(&mut lying, 1 << 40);
    let limits = Limits::DEFAULT;
    assert!(matches!(decode::<Vec<String>>(&lying, limits), Err(WireError::Malformed(_))));
    assert!(matches!(decode::<String>(&lying, limits), Err(WireError::Malformed(_))));
    assert!(matches!(decode::<HashMap<u64, u64>>(&lying, limits), Err(WireError::Malformed(_))));
    assert!(matches!(decode::<BTreeSet<String>>(&lying, limits), Err(WireError::Malformed(_))));
    assert!(matches!(decode::<VecDeque<u8>>(&lying, limits), Err(WireError::Malformed(_))));
    // A million zero-sized items in 8 bytes (fewer under Miri): within the count
    // allowed for them, but a hash table for them is more than 8 bytes may allocate.
    let count = if cfg!(miri) { 4_096 } else { 1 << 20 };
    let mut zero = Vec::new();
    put_len(&mut zero, count);
    let tight = Limits { memory_slack: 1 << 10, ..limits };
    assert!(matches!(decode::<HashSet<()>>(&zero, tight), Err(WireError::TooLarge { .. })));
    assert_eq!(decode::<Vec<()>>(&zero, tight).map(|v| v.len()), Ok(count));
}

/// The same key twice is an error in every map and set; it used to collapse silently
/// (the map held one entry where the bytes had two).
#[test]
fn duplicate_keys_are_an_error() {
    fn twice<T: Abi>(first: &T, second: &T) -> Vec<u8> {
        let mut out = Vec::new();
        put_len(&mut out, 2);
        first.encode(&mut out);
        second.encode(&mut out);
        out
    }
    let limits = Limits::DEFAULT;
    let pair = |k: &str, v: u32| (k.to_owned(), v);
    let dup = WireError::DuplicateKey;
    assert_eq!(decode::<HashMap<String, u32>>(&twice(&pair("a", 1), &pair("a", 2)), limits), Err(dup.clone()));
    assert_eq!(decode::<BTreeMap<String, u32>>(&twice(&pair("a", 1), &pair("a", 2)), limits), Err(dup.clone()));
    assert_eq!(decode::<HashSet<u8>>(&twice(&7u8, &7u8), limits), Err(dup.clone()));
    assert_eq!(decode::<BTreeSet<u8>>(&twice(&7u8, &7u8), limits), Err(dup.clone()));
    assert!(dup.to_string().starts_with("a map or set holds the same key twice; "), "{dup}");
    // Distinct keys decode.
    assert_eq!(
        decode::<BTreeMap<String, u32>>(&twice(&pair("a", 1), &pair("b", 2)), limits),
        Ok(BTreeMap::from([pair("a", 1), pair("b", 2)]))
    );
    assert_eq!(decode::<HashSet<u8>>(&twice(&7u8, &8u8), limits), Ok(HashSet::from([7, 8])));
}

/// The process-wide limits are what `Reader::new` (and so every answer and callback)
/// uses.
#[test]
fn readers_take_the_process_limits() {
    assert_eq!(tomada::wire::limits(), Limits::DEFAULT);
    assert_eq!(Reader::new(&[0; 10]).budget(), Limits::DEFAULT.budget(10));
    assert_eq!(Limits::DEFAULT.budget(10), 80 + (1 << 20));
}
