//! What contract evolution costs (issue 19), next to baselines in the same run:
//! `cargo bench -p tomada-host --bench evolve`.
//!
//! `echo_many` of 1,000 `Order`s (`id`, two item strings, a note) on the
//! `tests/plugins/shop-*` fixtures, building the value every iteration:
//!
//! - `inprocess_same`: host 1.1, plugin 1.1 — the vtable path, `#[repr(C)]` forms (a
//!   struct's `since` fields change neither its form nor its conversion code);
//! - `inprocess_older_plugin`: host 1.1, plugin 1.0 — types differ, so calls go by
//!   byte form through the plugin's dispatch function, in this process;
//! - `isolated_same`: host 1.1, plugin 1.1 in a child process.
//!
//! `bytes/*`: encoding and decoding 1,000 orders in this process, with the note as
//! an appended `since` field (`since`) and as a plain field (`plain`): the cost of
//! the byte form's evolution check on its own. `enum_closed` / `enum_open`: the same
//! for 1,000 values of an enum of three variants (two unit), closed and open.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use shop_api_1_1::{Order, Shop};
use tomada_host::isolate::{Isolation, Mode, Runner};
use tomada_host::tomada::Abi;
use tomada_test_support::Build;

tomada_host::tomada::global_allocator!();

const N: usize = 1_000;

fn orders() -> Vec<Order> {
    (0..N as u64)
        .map(|i| Order { id: i, items: vec!["apple".into(), format!("item {i}")], note: format!("note {i}") })
        .collect()
}

/// The same order with the note a plain field.
#[derive(tomada::Abi)]
struct Plain {
    id: u64,
    items: Vec<String>,
    note: String,
}

/// ... and with it appended in a minor version.
#[derive(tomada::Abi)]
struct Since {
    id: u64,
    items: Vec<String>,
    #[tomada(since = 1)]
    note: String,
}

/// A closed enum.
#[derive(tomada::Abi)]
enum Closed {
    Open,
    Paid { amount: u64 },
    Gone,
}

/// The same, open.
#[derive(tomada::Abi)]
enum Opened {
    Open,
    Paid {
        amount: u64,
    },
    #[tomada(other)]
    Gone,
}

fn bench(c: &mut Criterion) {
    let v11 = Build::new("shop-1-1").release().cdylib();
    let v10 = Build::new("shop-1-0").release().cdylib();
    let same = tomada_host::load_with::<dyn Shop>(&v11, &Mode::InProcess).expect("load 1.1");
    let older = tomada_host::load_with::<dyn Shop>(&v10, &Mode::InProcess).expect("load 1.0");
    let runner = Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into());
    let isolated =
        tomada_host::load_with::<dyn Shop>(&v11, &Mode::Isolated(Isolation::new().runner(runner))).expect("isolate");

    let mut group = c.benchmark_group("evolve");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("inprocess_same", |b| b.iter(|| black_box(same.echo_many(orders()).unwrap())));
    group.bench_function("inprocess_older_plugin", |b| b.iter(|| black_box(older.echo_many(orders()).unwrap())));
    group.bench_function("isolated_same", |b| b.iter(|| black_box(isolated.echo_many(orders()).unwrap())));
    let plain = || {
        (0..N as u64)
            .map(|i| Plain { id: i, items: vec!["apple".into(), format!("item {i}")], note: format!("note {i}") })
            .collect::<Vec<_>>()
    };
    let since = || {
        (0..N as u64)
            .map(|i| Since { id: i, items: vec!["apple".into(), format!("item {i}")], note: format!("note {i}") })
            .collect::<Vec<_>>()
    };
    group.bench_function("bytes_plain", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            plain().encode_owned(&mut out);
            black_box(Vec::<Plain>::decode_owned(out).unwrap())
        })
    });
    group.bench_function("bytes_since", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            since().encode_owned(&mut out);
            black_box(Vec::<Since>::decode_owned(out).unwrap())
        })
    });
    group.bench_function("enum_closed", |b| {
        b.iter(|| {
            let values: Vec<Closed> = (0..N as u64)
                .map(|i| match i % 3 {
                    0 => Closed::Open,
                    1 => Closed::Paid { amount: i },
                    _ => Closed::Gone,
                })
                .collect();
            let mut out = Vec::new();
            values.encode_owned(&mut out);
            black_box(Vec::<Closed>::decode_owned(out).unwrap())
        })
    });
    group.bench_function("enum_open", |b| {
        b.iter(|| {
            let values: Vec<Opened> = (0..N as u64)
                .map(|i| match i % 3 {
                    0 => Opened::Open,
                    1 => Opened::Paid { amount: i },
                    _ => Opened::Gone,
                })
                .collect();
            let mut out = Vec::new();
            values.encode_owned(&mut out);
            black_box(Vec::<Opened>::decode_owned(out).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
