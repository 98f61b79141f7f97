//! What objects and callbacks cost at the boundary, in-process, next to baselines in
//! the same run: `cargo bench -p tomada-host --bench objects`. Results:
//! `docs/benchmarks.md` ("Objects and callbacks"). Fixture: `tests/plugins/bench-callback`.
//!
//! `callback/*`: a round trip host → plugin → host → back, `Bench::lookup(key, &dyn
//! Config)` whose body is `host.config(key)` (the host's `config` clones a short
//! `String`):
//!
//! - `tomada`: on the plugin, through `Plugin<dyn Bench>`;
//! - `direct_dyn`: the same two calls between two structs of this binary, each behind
//!   a `dyn` (`Box<dyn Bench>` calling `&dyn Config`): the floor;
//! - `tomada_plain`: one plugin call of the same result type with no callback
//!   (`Bench::next`), to separate the callback's share.
//!
//! `object_call/*`: `Cursor::next()` on a `Box<dyn Cursor>` the plugin returned
//! (`object`) against `Bench::next()` on the `Plugin` (`plugin`): the same body
//! (`Some("value".to_owned())`) and the same result type; `direct_dyn` is that body
//! behind a `Box<dyn Cursor>` of this binary.

use std::hint::black_box;

use bench_callback_api::{Bench, Config, Cursor};
use criterion::{Criterion, criterion_group, criterion_main};
use tomada_test_support::Build;

tomada_host::tomada::global_allocator!();

/// The host's service.
struct Settings {
    value: String,
}

impl Config for Settings {
    fn config(&self, key: &str) -> Option<String> {
        (key == "k").then(|| self.value.clone())
    }
}

/// The baseline: the plugin's bodies, compiled into this binary.
struct Local;

struct LocalCursor;

impl Cursor for LocalCursor {
    fn next(&self) -> Option<String> {
        Some("value".to_owned())
    }
}

impl Bench for Local {
    fn lookup(&self, key: &str, host: &dyn Config) -> Option<String> {
        host.config(key)
    }
    fn open(&self) -> Box<dyn Cursor> {
        Box::new(LocalCursor)
    }
    fn next(&self) -> Option<String> {
        Some("value".to_owned())
    }
}

fn bench_objects(c: &mut Criterion) {
    let path = Build::new("bench-callback").release().cdylib();
    let plugin = tomada_host::load::<dyn Bench>(&path).expect("load bench-callback");
    let settings = Settings { value: "a configured value".to_owned() };
    let host: &dyn Config = black_box(&settings);
    let local: Box<dyn Bench> = black_box(Box::new(Local));
    let cursor = plugin.open().expect("open a cursor");
    let local_cursor = black_box(local.open());

    // The same answers from every path before anything is timed.
    let expected = Some("a configured value".to_owned());
    assert_eq!(plugin.lookup("k", host).unwrap(), expected);
    assert_eq!(local.lookup("k", host), expected);
    assert_eq!(plugin.lookup("other", host).unwrap(), None);
    assert_eq!(cursor.next().unwrap(), plugin.next().unwrap());
    assert_eq!(cursor.next().unwrap(), local_cursor.next());

    let mut group = c.benchmark_group("callback");
    group.bench_function("tomada", |b| b.iter(|| plugin.lookup(black_box("k"), host).unwrap()));
    group.bench_function("direct_dyn", |b| b.iter(|| local.lookup(black_box("k"), host)));
    group.bench_function("tomada_plain", |b| b.iter(|| plugin.next().unwrap()));
    group.finish();

    let mut group = c.benchmark_group("object_call");
    group.bench_function("object", |b| b.iter(|| cursor.next().unwrap()));
    group.bench_function("plugin", |b| b.iter(|| plugin.next().unwrap()));
    group.bench_function("direct_dyn", |b| b.iter(|| local_cursor.next()));
    group.finish();
}

criterion_group!(benches, bench_objects);
criterion_main!(benches);
