//! What rich contract types cost at the boundary, next to baselines in the same run:
//! `cargo bench -p tomada-host --bench contract`. Results: `docs/benchmarks.md`.
//!
//! `entries/*`: `echo` of 1,000 entries (each a `String` key, a 16-byte `Vec<u8>`, a
//! struct holding an enum, a `u64` and an `Option<String>`, a `Vec<String>` of two
//! tags, one in ten with a boxed previous entry), **including building the value on
//! the caller's side** every iteration, and dropping what comes back:
//!
//! - `tomada`: `Plugin<dyn kv_api::Store>::echo(Vec<Entry>)` on the `kv` plugin,
//!   in-process;
//! - `direct_dyn`: the same body behind a `Box<dyn Trait>` in this binary (the floor:
//!   moving the `Vec`);
//! - `abi_stable`: abi_stable 0.11's `RVec<REntry>` with the same data, built directly
//!   in abi_stable's types (as its users do), through an `extern "C"` function of the
//!   `bench-abi-stable` fixture;
//! - `tomada_isolated`: the same `echo` on the `kv` plugin in a child process;
//! - `bare_socket`: the same value serialised with serde + postcard, written to a
//!   Unix socket, echoed by a thread, read and deserialised (the floor for any
//!   isolated call that moves this value both ways).

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use abi_stable::std_types::{RBox, ROption, RString, RVec};
use bench_abi_stable_api::{EchoFn, REntry, RKind, RMeta};
use criterion::{Criterion, criterion_group, criterion_main};
use kv_api::{Entry, Kind, Meta, Store};
use tomada_host::isolate::{Isolation, Mode, Runner};
use tomada_test_support::Build;

tomada_host::tomada::global_allocator!();

const N: usize = 1_000;

fn entries() -> Vec<Entry> {
    (0..N)
        .map(|i| Entry {
            key: format!("entry number {i}"),
            value: vec![i as u8; 16],
            meta: Meta {
                kind: [Kind::Text, Kind::Blob, Kind::Link][i % 3],
                created: 1_700_000_000 + i as u64,
                owner: (i % 2 == 0).then(|| "ana".to_owned()),
            },
            tags: vec!["alpha".to_owned(), format!("t{}", i % 7)],
            previous: (i % 10 == 0).then(|| {
                Box::new(Entry {
                    key: "old".into(),
                    value: vec![1],
                    meta: Meta { kind: Kind::Text, created: 0, owner: None },
                    tags: vec![],
                    previous: None,
                })
            }),
        })
        .collect()
}

fn r_entries() -> RVec<REntry> {
    (0..N)
        .map(|i| REntry {
            key: RString::from(format!("entry number {i}")),
            value: RVec::from(vec![i as u8; 16]),
            meta: RMeta {
                kind: [RKind::Text, RKind::Blob, RKind::Link][i % 3],
                created: 1_700_000_000 + i as u64,
                owner: if i % 2 == 0 { ROption::RSome(RString::from("ana")) } else { ROption::RNone },
            },
            tags: RVec::from(vec![RString::from("alpha"), RString::from(format!("t{}", i % 7))]),
            previous: if i % 10 == 0 {
                ROption::RSome(RBox::new(REntry {
                    key: RString::from("old"),
                    value: RVec::from(vec![1]),
                    meta: RMeta { kind: RKind::Text, created: 0, owner: ROption::RNone },
                    tags: RVec::new(),
                    previous: ROption::RNone,
                }))
            } else {
                ROption::RNone
            },
        })
        .collect()
}

/// `Entry` for serde, the baseline serialiser.
#[derive(serde::Serialize, serde::Deserialize)]
struct SEntry {
    key: String,
    value: Vec<u8>,
    kind: u8,
    created: u64,
    owner: Option<String>,
    tags: Vec<String>,
    previous: Option<Box<SEntry>>,
}

fn s_entries() -> Vec<SEntry> {
    fn one(e: Entry) -> SEntry {
        SEntry {
            key: e.key,
            value: e.value,
            kind: e.meta.kind as u8,
            created: e.meta.created,
            owner: e.meta.owner,
            tags: e.tags,
            previous: e.previous.map(|p| Box::new(one(*p))),
        }
    }
    entries().into_iter().map(one).collect()
}

trait LocalStore {
    fn echo(&self, entries: Vec<Entry>) -> Vec<Entry>;
}

struct Local;

impl LocalStore for Local {
    fn echo(&self, mut entries: Vec<Entry>) -> Vec<Entry> {
        for e in &mut entries {
            e.key.push('!');
        }
        entries
    }
}

fn write_frame(stream: &mut UnixStream, bytes: &[u8]) {
    stream.write_all(&(bytes.len() as u64).to_le_bytes()).unwrap();
    stream.write_all(bytes).unwrap();
}

fn read_frame(stream: &mut UnixStream, buf: &mut Vec<u8>) {
    let mut len = [0; 8];
    stream.read_exact(&mut len).unwrap();
    buf.resize(u64::from_le_bytes(len) as usize, 0);
    stream.read_exact(buf).unwrap();
}

fn bench_entries(c: &mut Criterion) {
    let kv = Build::new("kv").release().cdylib();
    let plugin = tomada_host::load::<dyn Store>(&kv).expect("load kv");
    let runner = Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into());
    let isolated =
        tomada_host::load_with::<dyn Store>(&kv, &Mode::Isolated(Isolation::new().runner(runner))).expect("isolate kv");
    let direct: Box<dyn LocalStore> = black_box(Box::new(Local));
    let abi_path = Build::new("bench-abi-stable").release().cdylib();
    // SAFETY: a fixture of this workspace whose initialisers are those of any Rust cdylib.
    let library = unsafe { libloading::Library::new(&abi_path) }.expect("dlopen bench-abi-stable");
    // SAFETY: `bench_abi_stable_echo` has the `EchoFn` signature; the library stays open.
    let abi_echo: EchoFn = *unsafe { library.get::<EchoFn>(b"bench_abi_stable_echo") }.expect("the echo symbol");

    // The baseline socket: a thread echoes each frame back.
    let (mut here, mut there) = UnixStream::pair().unwrap();
    let echo_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut len = [0; 8];
        while there.read_exact(&mut len).is_ok() {
            buf.resize(u64::from_le_bytes(len) as usize, 0);
            there.read_exact(&mut buf).unwrap();
            let mut entries: Vec<SEntry> = postcard::from_bytes(&buf).unwrap();
            for e in &mut entries {
                e.key.push('!');
            }
            write_frame(&mut there, &postcard::to_allocvec(&entries).unwrap());
        }
    });

    // The same answers from every path before anything is timed.
    let back = plugin.echo(entries()).unwrap();
    assert_eq!(back, direct.echo(entries()));
    assert_eq!(isolated.echo(entries()).unwrap(), back);
    let r_back = abi_echo(r_entries());
    assert!(back.iter().zip(r_back.iter()).all(|(a, b)| a.key == b.key.as_str() && a.tags.len() == b.tags.len()));

    let mut group = c.benchmark_group("entries");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    group.bench_function("tomada", |b| b.iter(|| plugin.echo(black_box(entries())).unwrap()));
    group.bench_function("direct_dyn", |b| b.iter(|| direct.echo(black_box(entries()))));
    group.bench_function("abi_stable", |b| b.iter(|| abi_echo(black_box(r_entries()))));
    group.bench_function("build_only", |b| b.iter(|| black_box(entries())));
    group.bench_function("tomada_isolated", |b| b.iter(|| isolated.echo(black_box(entries())).unwrap()));
    let mut buf = Vec::new();
    group.bench_function("bare_socket", |b| {
        b.iter(|| {
            let bytes = postcard::to_allocvec(&black_box(s_entries())).unwrap();
            write_frame(&mut here, &bytes);
            read_frame(&mut here, &mut buf);
            postcard::from_bytes::<Vec<SEntry>>(&buf).unwrap()
        })
    });
    group.finish();
    drop(here);
    echo_thread.join().unwrap();
}

criterion_group!(benches, bench_entries);
criterion_main!(benches);
