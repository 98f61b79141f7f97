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
//!
//! `check_*`: the compatibility check at load (`Loader::inspect` then `check`, no
//! plugin code run) of a plugin whose contract is the host's (`check_same`: the
//! fingerprints match, nothing more is compared — what every check cost before
//! contracts could evolve) and of an older plugin (`check_older_plugin`: the
//! descriptions are compared member by member under the evolution rules).
//!
//! `object_*` / `callback_*`: a call of a contract object's method (`Trail::next`,
//! taking and returning a `Step` that gained a field in 1.1) and a plugin call that
//! calls the host's `&dyn Visitor` back twice (`Walk::walk`), on the
//! `tests/plugins/walk-*` fixtures: host 1.1 with a 1.1 plugin (`_same`, pointer and
//! vtable), with a 1.0 plugin (`_older_plugin`: types differ, so objects cross by
//! number and their calls by byte form, in this process), and isolated (`_isolated`).

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

/// The host's visitor: answers with the step it was given.
struct Echo;

impl walk_api_1_1::Visitor for Echo {
    fn step(&self, step: walk_api_1_1::Step) -> walk_api_1_1::Step {
        step
    }
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
    let loader = tomada_host::Loader::new();
    group.bench_function("check_same", |b| {
        b.iter(|| black_box(loader.inspect(&v11).unwrap().check::<dyn Shop>().is_ok()))
    });
    group.bench_function("check_older_plugin", |b| {
        b.iter(|| black_box(loader.inspect(&v10).unwrap().check::<dyn Shop>().is_ok()))
    });

    use walk_api_1_1::{Step, Walk};
    let w11 = Build::new("walk-1-1").release().cdylib();
    let w10 = Build::new("walk-1-0").release().cdylib();
    let walk_same = tomada_host::load_with::<dyn Walk>(&w11, &Mode::InProcess).expect("load walk 1.1");
    let walk_older = tomada_host::load_with::<dyn Walk>(&w10, &Mode::InProcess).expect("load walk 1.0");
    let runner = Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into());
    let walk_isolated =
        tomada_host::load_with::<dyn Walk>(&w11, &Mode::Isolated(Isolation::new().runner(runner))).expect("isolate");
    let step = || Step { n: 1, name: "a step".into() };
    for (name, plugin) in [("same", &walk_same), ("older_plugin", &walk_older), ("isolated", &walk_isolated)] {
        let trail = plugin.trail(step()).unwrap();
        group.bench_function(format!("object_{name}"), |b| b.iter(|| black_box(trail.next(step()).unwrap())));
        group.bench_function(format!("callback_{name}"), |b| b.iter(|| black_box(plugin.walk(&Echo).unwrap())));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
