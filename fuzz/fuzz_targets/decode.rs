//! Arbitrary bytes as a hostile plugin's answer, decoded as rich, recursive contract
//! types (kv-api's `Entry` chain and its maps and sets; hostile-api's trees of vectors
//! and maps and sparse records). The first byte picks the type.
//!
//! Beyond "never panics, never overflows the stack, never aborts", it asserts the
//! memory bound of `tomada::wire`: a counting allocator keeps the peak of the bytes
//! live while one decode runs, and the peak may never exceed what the reader charged
//! (every allocation is charged before it is made), which may never exceed the stated
//! budget `memory_factor × input + memory_slack`. A value that decodes is encoded
//! again: to the same bytes where the byte form is canonical (no map or set, whose
//! order a peer may shuffle), to as many bytes otherwise.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use tomada::Abi;
use tomada::wire::{Limits, Reader};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `GlobalAlloc::realloc` requires, passed on.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Small enough that the bound means something for inputs of a few KiB.
const LIMITS: Limits = Limits { max_depth: 128, memory_factor: 8, memory_slack: 4096 };

/// Decodes `data` as a `T`, checking the memory bound; re-encodes a value that
/// decodes (to the same bytes when `canonical`).
fn check<T: Abi>(data: &[u8], canonical: bool) {
    let mut r = Reader::with_limits(data, LIMITS);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let value = T::decode(&mut r);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let budget = LIMITS.budget(data.len());
    let charged = budget - r.budget();
    assert!(peak <= charged, "allocated {peak} bytes at the peak, charged {charged}");
    assert!(charged <= budget, "charged {charged} bytes, over the budget {budget}");
    if let Ok(value) = value {
        let used = data.len() - r.remaining().len();
        let mut again = Vec::new();
        value.encode(&mut again);
        // Derived structs and variants cross as blocks: what a newer side appended (and
        // a variant an open enum does not know) is skipped, so the value may encode to
        // fewer bytes than it came in, never more. That encoding is this side's own: it
        // decodes, and encodes to itself (its length, where maps and sets may reorder).
        assert!(again.len() <= used, "a decoded value encodes to more bytes ({} > {used})", again.len());
        let roomy = Limits { memory_factor: 1 << 10, memory_slack: 1 << 20, ..LIMITS };
        let mut r = Reader::with_limits(&again, roomy);
        let back = T::decode(&mut r).expect("this side's own encoding decodes");
        assert!(r.remaining().is_empty(), "this side's own encoding decodes whole");
        let mut third = Vec::new();
        back.encode(&mut third);
        if canonical {
            assert_eq!(third, again, "this side's own encoding encodes to itself");
        } else {
            assert_eq!(third.len(), again.len(), "this side's own encoding keeps its length");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else { return };
    match pick % 10 {
        0 => check::<kv_api::Entry>(data, true),
        1 => check::<Result<kv_api::Entry, kv_api::StoreError>>(data, true),
        2 => check::<Vec<kv_api::Entry>>(data, true),
        3 => check::<HashMap<String, Vec<u8>>>(data, false),
        4 => check::<BTreeMap<kv_api::Kind, BTreeSet<String>>>(data, false),
        5 => check::<HashSet<String>>(data, false),
        6 => check::<hostile_api::Tree>(data, false),
        7 => check::<Vec<Option<hostile_api::Record>>>(data, true),
        8 => check::<hostile_api::Node>(data, true),
        _ => check::<(Option<Box<hostile_api::Tree>>, [u8; 4], Vec<(u16, Option<String>)>)>(data, false),
    }
});
