//! Issue 16, items 2 and 3, and duplicate map keys: decoding what an isolated plugin
//! sends is total and bounded. Each attack is a real plugin (`tests/plugins/hostile-
//! answers`) in its own process, sending a byte form it built by hand for a
//! `hostile-api` answer or callback argument; each test says what the same attack did
//! to the host before the decoder had its limits.
//!
//! A binary of its own, because it counts the host's allocations (a global allocator
//! that keeps the peak), and because one test changes the process-wide decoding limits:
//! the tests here take turns (`SERIAL`).

#![cfg(unix)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use hostile_api::{Answers, Node, Sink};
use tomada_host::isolate::{Isolation, Mode, Runner};
use tomada_host::tomada::wire::{Limits, WireError, limits, set_limits};
use tomada_host::{CallError, Plugin};
use tomada_test_support::cdylib;

/// The system allocator, counting the bytes live in this process and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (above).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `GlobalAlloc::realloc` requires, passed on.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Counted as the new block allocated before the old one is freed, which is
            // what a moving `realloc` costs at its peak.
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tests take turns: the peak is the process's, and one test changes the limits.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many bytes above what was live when it started `f` allocated at its peak.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let result = f();
    (result, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

fn hostile() -> Plugin<dyn Answers> {
    let isolation = Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()));
    tomada_host::load_with::<dyn Answers>(cdylib("hostile-answers"), &Mode::Isolated(isolation)).unwrap()
}

/// The plugin's process is the same one, and answers: the host and the plugin both
/// came through.
fn still_serves(p: &Plugin<dyn Answers>, pid: Option<u32>) {
    assert_eq!(p.process_id(), pid, "the plugin's process was not restarted");
    let three = p.chain(3).unwrap();
    assert_eq!(three.next.as_ref().and_then(|n| n.next.as_ref()).map(|n| n.next.is_none()), Some(true));
}

/// A 100 000-deep `Option<Box<Node>>` chain (1.2 MB) as an answer. Before the limit,
/// the host decoded it by recursion, 100 000 frames deep, and died of a stack overflow
/// (SIGABRT, exit 134): the whole host, for one answer. Now it is
/// `CallError::Answer(TooDeep)`, the process that sent it lives on, and this test
/// process not aborting is itself the proof. The limit is exact: 128 boxes deep (a
/// chain of 129 nodes) decodes, one more does not.
#[test]
fn a_100k_deep_answer_is_an_error_not_a_host_abort() {
    let _serial = serial();
    let p = hostile();
    let pid = p.process_id();
    let err = p.chain(100_000).unwrap_err();
    assert_eq!(err, CallError::Answer(WireError::TooDeep { limit: 128 }));
    let text = err.to_string();
    assert!(text.contains("nests deeper than 128 levels") && text.contains("set_limits"), "{text}");
    // Through vectors and maps (`Tree`) as through boxes.
    assert_eq!(p.tree(100_000).unwrap_err(), CallError::Answer(WireError::TooDeep { limit: 128 }));
    assert_eq!(p.tree(129).unwrap_err(), CallError::Answer(WireError::TooDeep { limit: 128 }));
    assert!(p.tree(128).is_ok());

    let mut depth = 0;
    let mut node = &p.chain(129).unwrap();
    while let Some(next) = &node.next {
        depth += 1;
        node = next;
    }
    assert_eq!(depth, 128);
    assert_eq!(p.chain(130).unwrap_err(), CallError::Answer(WireError::TooDeep { limit: 128 }));
    still_serves(&p, pid);
}

/// With the depth limit raised out of the way, the stack guard still holds: a decode
/// never takes more than `MAX_DECODE_STACK` (1 MiB) of stack, so the host's threads
/// (2 MiB and up) cannot overflow whatever `max_depth` says.
#[test]
fn the_stack_guard_holds_when_the_depth_limit_is_raised() {
    let _serial = serial();
    let p = hostile();
    let pid = p.process_id();
    let before = limits();
    set_limits(Limits { max_depth: u32::MAX, ..before });
    let result = p.chain(1_000_000);
    set_limits(before);
    assert!(matches!(result, Err(CallError::Answer(WireError::StackExhausted { .. }))), "{result:?}");
    still_serves(&p, pid);
}

/// The host's lent `&dyn Sink`.
struct Counter(AtomicU32);

impl Sink for Counter {
    fn take(&self, node: Node) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed);
        let mut n = 1;
        let mut node = &node;
        while let Some(next) = &node.next {
            n += 1;
            node = next;
        }
        n
    }
}

/// The same chain as the argument of a callback: the host decodes it on the thread
/// that serves the plugin's callbacks (a 2 MiB thread, where 100 000 levels overflowed
/// sooner still). The host refuses the arguments (the plugin's call through the
/// object fails, with the reason) and its `Sink` is never called.
#[test]
fn a_100k_deep_callback_argument_is_refused_not_a_host_abort() {
    let _serial = serial();
    let p = hostile();
    let pid = p.process_id();
    let sink = Counter(AtomicU32::new(0));
    let said = p.send(&sink, 100_000).unwrap();
    assert!(said.contains("malformed arguments") && said.contains("nests deeper than 128 levels"), "{said}");
    assert_eq!(sink.0.load(Ordering::Relaxed), 0, "the sink was never called");
    // A chain within the limit goes through.
    assert_eq!(p.send(&sink, 100).unwrap(), "ok 100");
    assert_eq!(sink.0.load(Ordering::Relaxed), 1);
    still_serves(&p, pid);
}

/// The same from a thread of the plugin's own, to a sink it kept: a callback outside
/// any call of the host, decoded on the host's callback thread (a spawned thread,
/// 2 MiB). Refused the same way; the sink is never called.
#[test]
fn a_100k_deep_callback_from_a_plugin_thread_is_refused() {
    let _serial = serial();
    let p = hostile();
    let pid = p.process_id();
    let calls = std::sync::Arc::new(AtomicU32::new(0));
    /// A kept sink, counting its calls where the test can see them.
    struct Kept(std::sync::Arc<AtomicU32>);
    impl Sink for Kept {
        fn take(&self, _: Node) -> u32 {
            self.0.fetch_add(1, Ordering::Relaxed)
        }
    }
    p.keep(Box::new(Kept(std::sync::Arc::clone(&calls)))).unwrap();
    let said = p.send_from_thread(100_000).unwrap();
    assert!(said.contains("malformed arguments") && said.contains("nests deeper than 128 levels"), "{said}");
    assert_eq!(calls.load(Ordering::Relaxed), 0, "the sink was never called");
    assert_eq!(p.send_from_thread(5).unwrap(), "ok 0");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    still_serves(&p, pid);
}

/// Four million `None`s of a 200-byte `Record` (16 MiB on the wire). Before, the host
/// reserved `len × 200` bytes at once, 800 MB here, 50 × the answer (2.4 GB for the
/// issue's 64 MiB answer; under an address-space limit, an abort). Now the decoder
/// charges what the vector would take against 8 × the bytes received + 1 MiB before
/// allocating anything, and refuses it: the host's peak for the whole call stays
/// within the stated bound `(factor + 1) × n + slack` (the answer's buffer and what
/// decoding may take). A sparse answer within the budget decodes.
///
/// The negative control raises the factor out of the way: the same attack then costs
/// the host at least 40 × the answer, which is what the limit saves.
#[test]
fn a_sparse_answer_cannot_amplify_host_memory() {
    let _serial = serial();
    let p = hostile();
    let pid = p.process_id();
    let count = 4 << 20;
    let frame = 8 + 4 * count;
    let (result, peak) = peak_of(|| p.sparse(count as u32));
    let limits = limits();
    let budget = limits.budget(frame);
    assert_eq!(result.unwrap_err(), CallError::Answer(WireError::TooLarge { budget, received: frame }));
    let bound = (limits.memory_factor + 1) * frame + limits.memory_slack;
    assert!(peak <= bound, "peak {peak} bytes for a {frame}-byte answer, over the bound {bound}");
    eprintln!(
        "sparse answer of {frame} bytes: host peak {peak} bytes ({:.2} × the answer)",
        peak as f64 / frame as f64
    );

    assert_eq!(p.sparse(1_000).unwrap(), vec![None; 1_000]);

    // The negative control, on a quarter of the attack.
    let count = 1 << 20;
    let frame = 8 + 4 * count;
    set_limits(Limits { memory_factor: 64, ..limits });
    let (result, peak) = peak_of(|| p.sparse(count as u32).map(|v| v.len()));
    set_limits(limits);
    assert_eq!(result, Ok(count));
    assert!(peak >= 40 * frame, "without the limit the attack costs {peak} bytes for a {frame}-byte answer");
    eprintln!(
        "sparse answer of {frame} bytes with the factor at 64: host peak {peak} bytes ({:.2} × the answer; the value is {} bytes)",
        peak as f64 / frame as f64,
        count * size_of::<Option<hostile_api::Record>>()
    );
    still_serves(&p, pid);
}

/// A map and a set whose bytes hold one key twice. Before, the second value silently
/// replaced the first (the map held one key where the plugin had sent two entries);
/// now it is `WireError::DuplicateKey`.
#[test]
fn duplicate_keys_in_an_answer_are_an_error() {
    let _serial = serial();
    let p = hostile();
    let pid = p.process_id();
    assert_eq!(p.index(true).unwrap_err(), CallError::Answer(WireError::DuplicateKey));
    assert_eq!(p.ordered(true).unwrap_err(), CallError::Answer(WireError::DuplicateKey));
    assert!(p.index(true).unwrap_err().to_string().contains("the same key twice"));
    assert_eq!(p.index(false).unwrap(), HashMap::from([("a".to_owned(), 1), ("b".to_owned(), 2)]));
    assert_eq!(p.ordered(false).unwrap(), BTreeSet::from(["a".to_owned(), "b".to_owned()]));
    still_serves(&p, pid);
}

/// A `Vec<u8>` or `String` answer is read without its 8-byte length, straight into
/// the buffer that becomes the value; the length is checked as it is read. One that
/// lies (more bytes than it says, fewer, a length cut short, a length of 2^64 - 1) is
/// `CallError::Answer(Malformed)`, with nothing allocated or read past what came,
/// and so is a string that is not UTF-8; the channel stays in step (the bytes after
/// the lie are read all the same), and the plugin's process lives on.
#[test]
fn a_byte_string_whose_length_lies_is_refused() {
    let _serial = serial();
    let p = hostile();
    let pid = p.process_id();
    let refused = |r: &Result<usize, CallError>| matches!(r, Err(CallError::Answer(WireError::Malformed(_))));
    for (claimed, actual) in
        [(5u64, 4u32), (3, 4), (u64::MAX, 16), (1 << 20, 0), (0, 1 << 20), ((3 << 20) + 1, 3 << 20)]
    {
        let r = p.bytes(claimed, actual, false).map(|v| v.len());
        assert!(refused(&r), "a length of {claimed} before {actual} bytes: {r:?}");
        let r = p.text(claimed, actual, true).map(|s| s.len());
        assert!(refused(&r), "a string's length of {claimed} before {actual} bytes: {r:?}");
    }
    let r = p.bytes(0, 0, true).map(|v| v.len());
    assert!(refused(&r), "a length cut short: {r:?}");
    let r = p.text(4, 4, false).map(|s| s.len());
    assert!(refused(&r), "not UTF-8: {r:?}");
    // The truth, after the lies: whole.
    let big = p.bytes(3 << 20, 3 << 20, false).unwrap();
    assert!(big.len() == 3 << 20 && big.iter().all(|&b| b == 7));
    assert_eq!(p.text(5, 5, true).unwrap(), "aaaaa");
    assert_eq!(p.bytes(0, 0, false).unwrap(), Vec::<u8>::new());
    still_serves(&p, pid);
}
