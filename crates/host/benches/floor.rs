//! `add` through `Plugin<dyn Allround>` next to its floors, timed as the *fastest* of
//! many short batches: `cargo bench -p tomada-host --bench floor`.
//!
//! On a shared machine criterion's means and medians of a 1–2 ns call move by ±50%
//! between runs (other processes take the CPU in the middle of samples). The fastest
//! batch of thousands is the one nothing interrupted, so it measures the call itself.
//! The three variants are interleaved batch by batch, in a rotating order, in one
//! process, so each ratio is within one run:
//!
//! - `tomada`: `plugin.add(40, 2).unwrap()` on `Plugin<dyn allround_api::Allround>`;
//! - `direct_dyn`: the same body behind a `Box<dyn Trait>` in this binary;
//! - `bare_fn_ptr`: the plugin's plain `extern "C" fn(u64, u64) -> u64`
//!   (`allround_bare_add`), found with `libloading`.
//!
//! Prints, per variant, the fastest batch and the 10th percentile, per call, and each
//! divided by the bare function pointer's. `TOMADA_FLOOR_ROUNDS` sets the number of
//! rounds (default 3,000).
//!
//! Then `inspect_checks/floor`: the structural checks of an inspection alone
//! (`tomada_host::inspect_bytes` on the release greeter's bytes in memory: no system
//! call), the fastest and 10th percentile of 2,000 batches of 10.

use std::hint::black_box;
use std::time::Instant;

use allround_api::Allround;
use tomada_test_support::Build;

tomada_host::tomada::global_allocator!();

trait LocalAllround {
    fn add(&self, a: u64, b: u64) -> u64;
}

struct LocalAllroundImpl;

impl LocalAllround for LocalAllroundImpl {
    fn add(&self, a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }
}

type BareAdd = extern "C" fn(u64, u64) -> u64;

/// Calls per batch: ~20–50 µs, shorter than a scheduler's time slice.
const BATCH: u32 = 20_000;

fn time(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..BATCH {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(BATCH)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names nothing here skips the run.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.is_some_and(|f| !"call/add/floor".contains(f.trim_start_matches('^'))) {
        return;
    }
    let rounds: usize = std::env::var("TOMADA_FLOOR_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3000);
    let path = Build::new("allround").release().cdylib();
    let plugin = tomada_host::load::<dyn Allround>(&path).expect("load allround");
    let direct: Box<dyn LocalAllround> = black_box(Box::new(LocalAllroundImpl));
    // SAFETY: a fixture of this workspace whose initialisers are those of any Rust cdylib.
    let library = unsafe { libloading::Library::new(&path) }.expect("dlopen allround");
    // SAFETY: `allround_bare_add` is `extern "C" fn(u64, u64) -> u64` (see the allround
    // fixture); `library` stays open while the pointer is used.
    let bare: BareAdd = *unsafe { library.get::<BareAdd>(b"allround_bare_add") }.expect("allround_bare_add");
    let bare = black_box(bare);
    assert_eq!(plugin.add(40, 2), Ok(42));
    assert_eq!(direct.add(40, 2), 42);
    assert_eq!(bare(40, 2), 42);

    let names = ["tomada", "direct_dyn", "bare_fn_ptr"];
    let mut samples: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        for k in 0..3 {
            let which = (round + k) % 3;
            let ns = match which {
                0 => time(|| {
                    black_box(plugin.add(black_box(40), black_box(2)).unwrap());
                }),
                1 => time(|| {
                    black_box(direct.add(black_box(40), black_box(2)));
                }),
                _ => time(|| {
                    black_box(bare(black_box(40), black_box(2)));
                }),
            };
            samples[which].push(ns);
        }
    }
    for s in &mut samples {
        s.sort_by(f64::total_cmp);
    }
    let p10 = |s: &[f64]| s[s.len() / 10];
    let (bare_min, bare_p10) = (samples[2][0], p10(&samples[2]));
    println!("call/add/floor: fastest and 10th percentile of {rounds} batches of {BATCH} calls, per call");
    for (name, s) in names.iter().zip(&samples) {
        println!(
            "  {name:<12} fastest {:.3} ns ({:.3}× bare)   p10 {:.3} ns ({:.3}× bare)",
            s[0],
            s[0] / bare_min,
            p10(s),
            p10(s) / bare_p10
        );
    }
    drop(plugin);
    drop(library);

    let greeter = std::fs::read(Build::new("greeter").release().cdylib()).expect("read the greeter");
    let path = std::path::Path::new("greeter.so");
    tomada_host::inspect_bytes(path, &greeter).expect("inspect the greeter");
    let mut checks: Vec<f64> = (0..2000)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..10 {
                black_box(tomada_host::inspect_bytes(path, black_box(&greeter)).is_ok());
            }
            start.elapsed().as_nanos() as f64 / 10.0 / 1000.0
        })
        .collect();
    checks.sort_by(f64::total_cmp);
    println!(
        "inspect_checks/floor: fastest {:.2} µs, p10 {:.2} µs (of 2000 batches of 10)",
        checks[0],
        checks[checks.len() / 10]
    );
}
