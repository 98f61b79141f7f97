//! What crossing the tomada boundary costs, each next to its baselines, measured in
//! the same run: `cargo bench -p tomada-host --bench boundary`. Results and targets:
//! `docs/benchmarks.md`.
//!
//! - `call/add`: a trivial `add(u64, u64) -> u64` through tomada, through a
//!   `Box<dyn Trait>` inside this binary, and through the bare `extern "C"` function
//!   `allround_bare_add` of the same plugin.
//! - `call/greet`: `greet("Mundo")` (`format!("Olá, {name} 👋")`, returned `String`
//!   dropped every iteration) through tomada on the greeter plugin, through a
//!   `Box<dyn Trait>` here, and through a hand-written C ABI (`bench-bare` fixture).
//! - `load`: `tomada_host::load` (open once, inspect through the descriptor, check,
//!   dlopen `/proc/self/fd/N`, verify, create) plus drop, against a raw `dlopen` plus
//!   `dlclose` of the same file, each iteration on a distinct copy of the file; the
//!   same load under a trust policy (minisign signature verified through the same
//!   descriptor); `inspect` alone (the file read in place, nothing loaded), the
//!   inspection a load makes (`inspect_for_load`: open, sealed copy, checks) and the
//!   checks alone on the bytes in memory (`inspect_checks`).
//! - `load_big`: the same three on a plugin of 24 MiB (`big-greeter`), where hashing
//!   and verifying the whole file is most of the cost.
//! - `unload`: the drop of a loaded plugin (the greeter, a fresh copy each time,
//!   loaded untimed) against a raw `dlclose`; the same drop with 8 libraries kept
//!   mapped (each for a thread of its own that never ends: the `living` fixture's
//!   `hazard("thread")`), and `unload_pinned_libraries` with those 8 kept (run last:
//!   the 8 threads stay).
//!
//! Like the real host, this binary installs tomada's global allocator, so strings
//! returned by plugins are adopted without a copy. (A variant without it cannot live
//! in the same binary.)

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use allround_api::Allround;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use pluginapi::Greeter;
use tomada_test_support::{Build, set_immutable};

tomada_host::tomada::global_allocator!();

// ---------------------------------------------------------------------------------
// The in-host baselines: the same methods and bodies as the plugins, behind a
// `Box<dyn Trait>` that the optimiser cannot see through.

trait LocalAllround {
    fn add(&self, a: u64, b: u64) -> u64;
}

struct LocalAllroundImpl;

impl LocalAllround for LocalAllroundImpl {
    fn add(&self, a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }
}

trait LocalGreeter {
    fn greet(&self, name: &str) -> String;
}

struct LocalHello;

impl LocalGreeter for LocalHello {
    fn greet(&self, name: &str) -> String {
        format!("Olá, {name} 👋")
    }
}

// ---------------------------------------------------------------------------------
// The bare C ABI baselines.

type BareAdd = extern "C" fn(u64, u64) -> u64;
type BareGreet = unsafe extern "C" fn(*const u8, usize, *mut *mut u8, *mut usize, *mut usize);

fn bare_greet(f: BareGreet, name: &str) -> String {
    let (mut ptr, mut len, mut cap) = (std::ptr::null_mut(), 0, 0);
    // SAFETY: `bench_bare_greet`'s contract: a live UTF-8 string and three writable
    // out-pointers.
    unsafe { f(name.as_ptr(), name.len(), &mut ptr, &mut len, &mut cap) };
    // SAFETY: the fixture wrote the parts of a `String` it allocated with `System`
    // (a cdylib's default global allocator) and gave up; this binary's global
    // allocator is `SystemAlloc`, i.e. `System`, so this `String` may own and free it.
    unsafe { String::from_raw_parts(ptr, len, cap) }
}

fn open_library(path: &Path) -> libloading::Library {
    // SAFETY: a fixture of this workspace whose initialisers are those of any Rust
    // cdylib.
    unsafe { libloading::Library::new(path) }.unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------

fn call_add(c: &mut Criterion) {
    let path = Build::new("allround").release().cdylib();
    let plugin = tomada_host::load::<dyn Allround>(&path).expect("load allround");
    let direct: Box<dyn LocalAllround> = black_box(Box::new(LocalAllroundImpl));
    let library = open_library(&path);
    // SAFETY: `allround_bare_add` is `extern "C" fn(u64, u64) -> u64` (see the
    // allround fixture); `library` stays open while the pointer is used.
    let bare: BareAdd =
        *unsafe { library.get::<BareAdd>(b"allround_bare_add") }.expect("allround exports allround_bare_add");
    let bare = black_box(bare);

    assert_eq!(plugin.add(40, 2), Ok(42));
    assert_eq!(direct.add(40, 2), 42);
    assert_eq!(bare(40, 2), 42);

    let mut group = c.benchmark_group("call/add");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("tomada", |b| {
        b.iter(|| plugin.add(black_box(40), black_box(2)).unwrap());
    });
    group.bench_function("direct_dyn", |b| {
        b.iter(|| direct.add(black_box(40), black_box(2)));
    });
    group.bench_function("bare_fn_ptr", |b| {
        b.iter(|| bare(black_box(40), black_box(2)));
    });
    group.finish();
    drop(plugin);
    drop(library);
}

fn call_greet(c: &mut Criterion) {
    let path = Build::new("greeter").release().cdylib();
    let plugin = tomada_host::load::<dyn Greeter>(&path).expect("load greeter");
    let direct: Box<dyn LocalGreeter> = black_box(Box::new(LocalHello));
    let bare_path = Build::new("bench-bare").release().cdylib();
    let library = open_library(&bare_path);
    // SAFETY: `bench_bare_greet` has the `BareGreet` signature (see the bench-bare
    // fixture); `library` stays open while the pointer is used.
    let bare: BareGreet =
        *unsafe { library.get::<BareGreet>(b"bench_bare_greet") }.expect("bench-bare exports bench_bare_greet");
    let bare = black_box(bare);

    let expected = "Olá, Mundo 👋";
    assert_eq!(plugin.greet("Mundo").as_deref(), Ok(expected));
    assert_eq!(direct.greet("Mundo"), expected);
    assert_eq!(bare_greet(bare, "Mundo"), expected);

    // Every variant returns the `String`, which `iter` drops inside the timed loop:
    // one allocation and one free per iteration in each.
    let mut group = c.benchmark_group("call/greet");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.bench_function("tomada", |b| {
        b.iter(|| plugin.greet(black_box("Mundo")).unwrap());
    });
    group.bench_function("direct_dyn", |b| {
        b.iter(|| direct.greet(black_box("Mundo")));
    });
    group.bench_function("bare_c_abi", |b| {
        b.iter(|| bare_greet(bare, black_box("Mundo")));
    });
    group.finish();
    drop(plugin);
    drop(library);
}

/// Copies `src` to `iters` fresh files, then times `load` on each in turn. The dynamic
/// loader returns the already-open object for a file it has open (matched by device
/// and inode), so every iteration needs its own copy to pay for a real load. The
/// copies are deleted before returning.
fn time_distinct_copies(src: &Path, iters: u64, load: impl FnMut(&Path)) -> Duration {
    time_distinct_copies_as(src, iters, false, load)
}

/// As [`time_distinct_copies`]; `immutable`: every copy made immutable (`chattr +i`)
/// before the timing and mutable again after it (Linux, as root).
fn time_distinct_copies_as(src: &Path, iters: u64, immutable: bool, mut load: impl FnMut(&Path)) -> Duration {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ext = std::env::consts::DLL_EXTENSION;
    let copies: Vec<PathBuf> =
        (0..iters).map(|i| tomada_test_support::copy_to(src, dir.path(), &format!("copy{i}.{ext}"))).collect();
    // A signature next to the source is copied next to each copy (same bytes, same signature).
    let signature = PathBuf::from(format!("{}.minisig", src.display()));
    if signature.exists() {
        for copy in &copies {
            std::fs::copy(&signature, format!("{}.minisig", copy.display())).expect("copy the signature");
        }
    }
    if immutable {
        for copy in &copies {
            set_immutable(copy, true).expect("make a copy immutable");
        }
    }
    let start = Instant::now();
    for copy in &copies {
        load(copy);
    }
    let elapsed = start.elapsed();
    if immutable {
        for copy in &copies {
            set_immutable(copy, false).expect("make a copy mutable again");
        }
    }
    warn_if_still_mapped(dir.path());
    elapsed
}

/// Whether files in a fresh temporary directory can be made immutable here.
fn immutable_possible() -> bool {
    let Ok(dir) = tempfile::tempdir() else { return false };
    let probe = dir.path().join("probe");
    if std::fs::write(&probe, b"x").is_err() {
        return false;
    }
    let ok = set_immutable(&probe, true).is_ok();
    if ok {
        set_immutable(&probe, false).expect("make the probe mutable again");
    }
    ok
}

/// A library that stays mapped after `dlclose` (e.g. one that registered
/// thread-local destructors) would make each later `dlopen` search a longer list:
/// say so, once, rather than report skewed numbers silently.
fn warn_if_still_mapped(dir: &Path) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let dir = dir.to_string_lossy();
    let mapped = maps.lines().filter(|l| l.contains(dir.as_ref())).count();
    if mapped > 0 && !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!("warning: {mapped} mappings of unloaded copies remain in {dir}");
    }
}

/// A signed copy of `src` in `dir`, and a loader trusting the key that signed it.
fn signed(src: &Path, dir: &Path) -> (PathBuf, tomada_host::Loader) {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().expect("a key pair");
    let copy = tomada_test_support::copy_to(src, dir, &format!("signed.{}", std::env::consts::DLL_EXTENSION));
    let signature = minisign::sign(None, &pair.sk, std::fs::File::open(&copy).unwrap(), None, None).unwrap();
    std::fs::write(format!("{}.minisig", copy.display()), signature.to_string()).unwrap();
    let key = pair.pk.to_box().unwrap().to_string();
    let policy = tomada_host::TrustPolicy::new().trust_key(key.lines().nth(1).unwrap()).unwrap();
    (copy, tomada_host::Loader::with_policy(policy))
}

fn load(c: &mut Criterion) {
    load_group(c, "load", Build::new("greeter").release().cdylib(), 20);
    load_group(c, "load_big", Build::new("big-greeter").release().cdylib(), 10);
}

fn load_group(c: &mut Criterion, name: &str, path: PathBuf, samples: usize) {
    let keys = tempfile::tempdir().expect("a temporary directory");
    let (signed_path, policy_loader) = signed(&path, keys.path());
    drop(policy_loader.load::<dyn Greeter>(&signed_path).expect("load the signed plugin"));
    // Check once that the file loads, so a failure is not reported as a timing.
    drop(tomada_host::load::<dyn Greeter>(&path).expect("load greeter"));

    // Every iteration writes a copy of the plugin (~400 KiB), so the iteration count
    // is kept low: about 250 copies in the warm-up and 400 in the measurement per
    // benchmark (under 300 MiB each, every sample's copies deleted right after it).
    // Flat sampling: every sample has as many iterations, so none grows large. Each
    // sample still times ~20 loads, milliseconds in all.
    let mut group = c.benchmark_group(name);
    group
        .sample_size(samples)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(50))
        .measurement_time(Duration::from_millis(150));
    group.bench_function("tomada_load_verify", |b| {
        b.iter_custom(|iters| {
            time_distinct_copies(&path, iters, |copy| {
                let plugin = tomada_host::load::<dyn Greeter>(copy).expect("load greeter");
                drop(black_box(plugin));
            })
        });
    });
    group.bench_function("tomada_load_signed", |b| {
        b.iter_custom(|iters| {
            time_distinct_copies(&signed_path, iters, |copy| {
                let plugin = policy_loader.load::<dyn Greeter>(copy).expect("load signed greeter");
                drop(black_box(plugin));
            })
        });
    });
    group.bench_function("raw_dlopen", |b| {
        b.iter_custom(|iters| time_distinct_copies(&path, iters, |copy| drop(black_box(open_library(copy)))));
    });
    // Files that cannot change load as themselves, without the sealed copy.
    if immutable_possible() {
        group.bench_function("tomada_load_immutable", |b| {
            b.iter_custom(|iters| {
                time_distinct_copies_as(&path, iters, true, |copy| {
                    let plugin = tomada_host::load::<dyn Greeter>(copy).expect("load greeter");
                    drop(black_box(plugin));
                })
            });
        });
        group.bench_function("raw_dlopen_immutable", |b| {
            b.iter_custom(|iters| {
                time_distinct_copies_as(&path, iters, true, |copy| drop(black_box(open_library(copy))))
            });
        });
    } else {
        eprintln!("{name}: files cannot be made immutable here (root on ext4/xfs/btrfs/tmpfs): no *_immutable rows");
    }
    group.bench_function("inspect", |b| {
        b.iter(|| tomada_host::inspect(&path).expect("inspect greeter"));
    });
    // What a load pays before `dlopen`: open, the sealed copy, the checks (reading
    // the copy by blocks).
    let plain_loader = tomada_host::Loader::new();
    group.bench_function("inspect_for_load", |b| {
        b.iter(|| plain_loader.inspect(&path).expect("inspect greeter"));
    });
    // The checks alone, on the file's bytes in memory (no system call).
    let file_bytes = std::fs::read(&path).expect("read the plugin");
    group.bench_function("inspect_checks", |b| {
        b.iter(|| tomada_host::inspect_bytes(&path, black_box(&file_bytes)).expect("inspect greeter"));
    });
    group.bench_function("inspect_and_verify_signature", |b| {
        b.iter(|| policy_loader.inspect(&signed_path).expect("verify greeter"));
    });
    // The floor of a signed load's hashing: BLAKE2b-512 (what a minisign prehashed
    // signature signs) of the file's bytes already in memory, with the backend
    // `blake2b_simd` picks at run time (AVX2 where the CPU has it), and the same with
    // the file read into memory first (one `std::fs::read`).
    let bytes = std::fs::read(&signed_path).expect("read the signed copy");
    group.bench_function("blake2b_in_memory", |b| {
        b.iter(|| blake2b_simd::Params::new().hash_length(64).hash(black_box(&bytes)));
    });
    group.bench_function("read_and_blake2b", |b| {
        b.iter(|| {
            let bytes = std::fs::read(black_box(&signed_path)).expect("read the signed copy");
            blake2b_simd::Params::new().hash_length(64).hash(&bytes)
        });
    });
    group.finish();
}

/// Times only the drop of each of `iters` plugins, each loaded (untimed) from a copy
/// of its own.
fn time_drops(src: &Path, iters: u64, mut load: impl FnMut(&Path) -> Box<dyn std::any::Any>) -> Duration {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ext = std::env::consts::DLL_EXTENSION;
    let mut took = Duration::ZERO;
    for i in 0..iters {
        let copy = tomada_test_support::copy_to(src, dir.path(), &format!("copy{i}.{ext}"));
        let loaded = load(&copy);
        let start = Instant::now();
        drop(black_box(loaded));
        took += start.elapsed();
        let _ = std::fs::remove_file(&copy);
    }
    warn_if_still_mapped(dir.path());
    took
}

fn unload(c: &mut Criterion) {
    let greeter = Build::new("greeter").release().cdylib();
    let living = Build::new("living").release().cdylib();
    let mut group = c.benchmark_group("unload");
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(50))
        .measurement_time(Duration::from_millis(150));
    group.bench_function("tomada_unload", |b| {
        b.iter_custom(|iters| {
            time_drops(&greeter, iters, |p| Box::new(tomada_host::load::<dyn Greeter>(p).expect("load")))
        })
    });
    group.bench_function("raw_dlclose", |b| {
        b.iter_custom(|iters| time_drops(&greeter, iters, |p| Box::new(open_library(p))))
    });
    // Eight libraries kept mapped for good: a thread of each runs its code forever.
    let kept = tempfile::tempdir().expect("a temporary directory");
    let before = tomada_host::pinned_libraries().len();
    for i in 0..8 {
        let copy = tomada_test_support::copy_to(&living, kept.path(), &format!("kept{i}.so"));
        let plugin = tomada_host::load::<dyn living_api::Living>(&copy).expect("load living");
        assert!(plugin.hazard("thread").expect("a thread left"));
    }
    assert_eq!(tomada_host::pinned_libraries().len(), before + 8, "eight libraries kept");
    group.bench_function("tomada_unload_8_kept", |b| {
        b.iter_custom(|iters| {
            time_drops(&greeter, iters, |p| Box::new(tomada_host::load::<dyn Greeter>(p).expect("load")))
        })
    });
    group.bench_function("unload_pinned_libraries_8_kept", |b| {
        b.iter(|| assert!(black_box(tomada_host::unload_pinned_libraries()).is_empty()))
    });
    group.finish();
}

criterion_group!(benches, call_add, call_greet, load, unload);
criterion_main!(benches);
