//! A hostile plugin for `hostile-api`: it implements a contract of the same name and
//! description (so the host's fingerprint check passes), whose results are [`Raw`]
//! byte forms it builds by hand. A plugin can always do this: the host only ever sees
//! bytes. What it sends:
//!
//! * `chain(d)`, `tree(d)`: values `d` levels deep (100 000 levels of `chain` are
//!   1.2 MB, and overflowed the host's stack before decoding had a depth limit);
//! * `sparse(n)`: `n` `None`s of a 200-byte record (4 bytes each: 50 × amplification,
//!   which made the host reserve `n × 200` bytes at once);
//! * `index(true)`, `ordered(true)`: a map and a set holding one key twice;
//! * `bytes(claimed, n, cut)`, `text(claimed, n, utf8)`: byte strings whose length
//!   says `claimed` bytes while `n` follow (or is cut short), or that are not UTF-8;
//! * `send(sink, d)`: a `d`-deep chain as the argument of a callback to the host;
//!   `send_from_thread(d)` the same to a sink it kept (`keep`), from its own thread.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tomada::__private::{Reader, WireError};
use tomada::Abi;
use tomada::interface::TypeRef;

/// The byte form of a `T`, written as given: what this plugin sends in place of a `T`.
pub struct Raw<T>(Vec<u8>, PhantomData<T>);

impl<T> Raw<T> {
    fn new(bytes: Vec<u8>) -> Self {
        Raw(bytes, PhantomData)
    }
}

// SAFETY: `Raw<T>` is described as `T`, and its byte form is whatever it was given:
// that is the attack, and the host must survive it. Its in-process form is never made
// (`into_ffi` panics): this plugin is only ever loaded isolated, where values cross
// as bytes.
unsafe impl<T: Abi> Abi for Raw<T> {
    type Ffi = T::Ffi;
    const DESC: TypeRef = T::DESC;
    const WIRE_MIN: usize = T::WIRE_MIN;
    fn into_ffi(self) -> T::Ffi {
        panic!("hostile-answers runs isolated only")
    }
    unsafe fn from_ffi(_: T::Ffi) -> Self {
        panic!("hostile-answers runs isolated only")
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn decode(_: &mut Reader<'_>) -> Result<Self, WireError> {
        Err(WireError::Malformed("hostile-answers only sends forged values"))
    }
}

/// `hostile-api`'s contracts, with forged results.
mod forged {
    use std::collections::{BTreeSet, HashMap};

    use hostile_api::{Node, Record, Tree};

    use super::Raw;

    #[tomada::contract(abi = 1, name = "hostile_api::Sink")]
    pub trait Sink {
        fn take(&self, node: Raw<Node>) -> u32;
    }

    #[tomada::contract(abi = 1, name = "hostile_api::Answers")]
    pub trait Answers {
        fn chain(&self, depth: u32) -> Raw<Node>;
        fn tree(&self, depth: u32) -> Raw<Tree>;
        fn sparse(&self, count: u32) -> Raw<Vec<Option<Record>>>;
        fn index(&self, duplicate: bool) -> Raw<HashMap<String, u32>>;
        fn ordered(&self, duplicate: bool) -> Raw<BTreeSet<String>>;
        fn send(&self, sink: &dyn Sink, depth: u32) -> String;
        fn keep(&self, sink: Box<dyn Sink>);
        fn send_from_thread(&self, depth: u32) -> String;
        fn bytes(&self, claimed: u64, actual: u32, cut: bool) -> Raw<Vec<u8>>;
        fn text(&self, claimed: u64, actual: u32, utf8: bool) -> Raw<String>;
    }
}

use forged::{Answers, Sink};

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

fn put_variant(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// `depth` nodes, each `(label: "", next: Some(..))`, the last `next: None`. A derived
/// struct crosses as a block (`tomada::block`): its length, then its fields: here the
/// label's length (8 bytes) and the `Option`'s variant (4), then the next node.
fn chain_bytes(depth: u32) -> Vec<u8> {
    let depth = depth as usize;
    let mut out = Vec::with_capacity(depth * 20);
    for i in 0..depth {
        put_len(&mut out, (depth - i) * 20 - 8);
        put_len(&mut out, 0);
        put_variant(&mut out, u32::from(i + 1 < depth));
    }
    out
}

/// The high bit of a derived enum's variant number: a block of its fields follows.
const VARIANT_BLOCK: u32 = 1 << 31;

#[derive(Default)]
struct Hostile {
    kept: std::sync::Mutex<Option<std::sync::Arc<dyn Sink>>>,
}

/// Sends a `depth`-deep chain to `sink`: `ok <its answer>`, or the message of the panic
/// a failed call through an object becomes (see the contract macro).
fn send_chain(sink: &dyn Sink, depth: u32) -> String {
    match catch_unwind(AssertUnwindSafe(|| sink.take(Raw::new(chain_bytes(depth))))) {
        Ok(n) => format!("ok {n}"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default(),
    }
}

impl Answers for Hostile {
    fn chain(&self, depth: u32) -> Raw<hostile_api::Node> {
        Raw::new(chain_bytes(depth))
    }

    fn tree(&self, depth: u32) -> Raw<hostile_api::Tree> {
        // Each variant with fields is its number (high bit set), then a block: the
        // block's length, then the fields. The sizes, from the leaf up: a leaf is 16
        // bytes (number, length, `7u32`); a branch adds 20 (number, length, the
        // vector's length), a named level 29 (number, length, the map's length, "k").
        let depth = depth as usize;
        let mut sizes = vec![0usize; depth + 1];
        sizes[depth] = 16;
        for i in (0..depth).rev() {
            sizes[i] = sizes[i + 1] + if i % 2 == 0 { 20 } else { 29 };
        }
        let mut out = Vec::with_capacity(sizes[0]);
        for (i, size) in sizes.iter().enumerate().take(depth) {
            put_variant(&mut out, if i % 2 == 0 { 1 } else { 2 } | VARIANT_BLOCK);
            put_len(&mut out, size - 12);
            if i % 2 == 0 {
                put_len(&mut out, 1); // Branch(vec![next])
            } else {
                put_len(&mut out, 1); // Named({"k": next})
                put_str(&mut out, "k");
            }
        }
        put_variant(&mut out, VARIANT_BLOCK); // Leaf(7)
        put_len(&mut out, 4);
        out.extend_from_slice(&7u32.to_le_bytes());
        Raw::new(out)
    }

    fn sparse(&self, count: u32) -> Raw<Vec<Option<hostile_api::Record>>> {
        let mut out = Vec::with_capacity(8 + count as usize * 4);
        put_len(&mut out, count as usize);
        out.resize(8 + count as usize * 4, 0); // every variant index 0: `None`
        Raw::new(out)
    }

    fn index(&self, duplicate: bool) -> Raw<std::collections::HashMap<String, u32>> {
        let mut out = Vec::new();
        put_len(&mut out, 2);
        put_str(&mut out, "a");
        out.extend_from_slice(&1u32.to_le_bytes());
        put_str(&mut out, if duplicate { "a" } else { "b" });
        out.extend_from_slice(&2u32.to_le_bytes());
        Raw::new(out)
    }

    fn ordered(&self, duplicate: bool) -> Raw<std::collections::BTreeSet<String>> {
        let mut out = Vec::new();
        put_len(&mut out, 2);
        put_str(&mut out, "a");
        put_str(&mut out, if duplicate { "a" } else { "b" });
        Raw::new(out)
    }

    fn send(&self, sink: &dyn Sink, depth: u32) -> String {
        send_chain(sink, depth)
    }

    fn keep(&self, sink: Box<dyn Sink>) {
        *self.kept.lock().unwrap() = Some(std::sync::Arc::from(sink));
    }

    fn send_from_thread(&self, depth: u32) -> String {
        let Some(sink) = self.kept.lock().unwrap().clone() else { return "no sink kept".to_owned() };
        std::thread::spawn(move || send_chain(&*sink, depth)).join().unwrap_or_default()
    }

    fn bytes(&self, claimed: u64, actual: u32, cut: bool) -> Raw<Vec<u8>> {
        Raw::new(byte_string(claimed, actual, if cut { 3 } else { 8 }, 7))
    }

    fn text(&self, claimed: u64, actual: u32, utf8: bool) -> Raw<String> {
        Raw::new(byte_string(claimed, actual, 8, if utf8 { b'a' } else { 0xFF }))
    }
}

/// A byte string's form, forged: `length` bytes of a length that says `claimed`,
/// then `actual` bytes `byte`.
fn byte_string(claimed: u64, actual: u32, length: usize, byte: u8) -> Vec<u8> {
    let mut out = claimed.to_le_bytes()[..length].to_vec();
    out.resize(length + actual as usize, byte);
    out
}

tomada::export!(Hostile as Answers);
