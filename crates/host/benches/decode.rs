//! What decoding an isolated plugin's answer costs: `cargo bench -p tomada-host --bench
//! decode`. The answer is a 1,000-entry `Vec<kv_api::Entry>` (strings, bytes, an enum,
//! an `Option<String>`, a `Vec<String>` and a one-deep `Option<Box<Entry>>` chain per
//! entry), decoded from its byte form exactly as `remote_call` decodes an answer
//! (`Abi::decode_owned`). Compare runs of this bench on two builds to see what the
//! decoder's limits (depth, memory budget, duplicate keys) cost.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kv_api::{Entry, Kind, Meta};
use tomada_host::tomada::Abi;

tomada_host::tomada::global_allocator!();

fn entry(i: usize, previous: Option<Box<Entry>>) -> Entry {
    Entry {
        key: format!("key-{i:05}"),
        value: vec![i as u8; 32],
        meta: Meta {
            kind: [Kind::Text, Kind::Blob, Kind::Link][i % 3],
            created: i as u64,
            owner: i.is_multiple_of(2).then(|| format!("owner-{i}")),
        },
        tags: vec!["a".into(), format!("tag-{}", i % 7)],
        previous,
    }
}

/// The byte form of a rich 1,000-entry answer.
fn answer() -> Vec<u8> {
    let entries: Vec<Entry> = (0..1_000).map(|i| entry(i, Some(Box::new(entry(i + 1_000, None))))).collect();
    let mut bytes = Vec::new();
    entries.encode(&mut bytes);
    bytes
}

fn decode(c: &mut Criterion) {
    let bytes = answer();
    let mut group = c.benchmark_group("decode");
    group.bench_function("entries_1000", |b| {
        b.iter_batched(
            || bytes.clone(),
            |bytes| black_box(Vec::<Entry>::decode_owned(bytes).expect("decodes")),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
