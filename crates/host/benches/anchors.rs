//! The four rows of issue 20 that criterion cannot hold, each measured beside its
//! floor in the same run (`cargo bench -p tomada-host --bench anchors`):
//!
//! - `debug_info`: check + load of a plugin built with `debug = 1` (the `greeter`
//!   fixture, `--config profile.release.debug=1`), against a raw `dlopen` of a copy
//!   of the same file; the stripped release build of it beside, the same way; and
//!   each loaded with the debug info left out of the sealed copy
//!   (`Loader::debug_info(false)`).
//! - `fresh`: the first load in a fresh process: this bench re-runs itself (with
//!   `TOMADA_ANCHORS_CHILD`) many times, each child timing one `tomada_host::load`
//!   or one raw `dlopen` of the same file, with its minor page faults (`getrusage`)
//!   and resident-set growth (`/proc/self/statm`) over that one load. Where a file can
//!   be made immutable (as for `host_run`), both are also run on an immutable copy of
//!   the plugin, interleaved with the rest: loaded without the sealed copy.
//! - `host_run`: the demo's whole run, `host --plugin greeter_v1.so` (release),
//!   against `no_plugin` (`host/examples/no_plugin.rs`: the same arguments, the same
//!   two lines, no plugin): fork + exec + wait, output to `/dev/null`. The two
//!   executables are `TOMADA_ANCHORS_HOST` and `TOMADA_ANCHORS_NO_PLUGIN` when set
//!   (`cargo xtask bench` builds them), else built here into `target/fixtures-anchors`.
//!   Where a file can be made immutable (root; ext4, xfs, btrfs, tmpfs), `host` is also
//!   run on an immutable copy of the plugin, interleaved with the other two: loaded
//!   without the sealed copy (docs/living.md, "Files that cannot change"), which shows
//!   what the copy costs in the whole run.
//! - `thousand`: 1,000 distinct copies of `greeter` loaded one after another and kept
//!   loaded, interleaved with raw `dlopen`s of 1,000 other copies, so both see as many
//!   libraries already open at each step (with the inspection alone of each file
//!   just before its load); then unloaded, first loaded first, one of each in turn.
//!
//! Every measured pair alternates (one of each in turn), so a load spike on this
//! shared machine lands on both. `TOMADA_BENCH_CASES` picks cases (comma-separated).
//! Besides a readable line, each case prints one `anchor NAME key=value...` line (times
//! in nanoseconds) that `cargo xtask bench` reads.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pluginapi::Greeter;
use tomada_test_support::Build;

// Like the real host.
tomada_host::tomada::global_allocator!();

const CHILD_VAR: &str = "TOMADA_ANCHORS_CHILD";

/// Whether case `name` runs: all do, unless `TOMADA_BENCH_CASES` lists some.
fn wants(name: &str) -> bool {
    std::env::var("TOMADA_BENCH_CASES").map_or(true, |cases| cases.split(',').any(|c| c.trim() == name))
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ns(d: Duration) -> u128 {
    d.as_nanos()
}

fn open_library(path: &Path) -> libloading::Library {
    // SAFETY: a fixture of this workspace whose initialisers are those of any Rust
    // cdylib; it is only opened and closed.
    unsafe { libloading::Library::new(path) }.unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()))
}

fn load_greeter(path: &Path) -> tomada_host::Plugin<dyn Greeter> {
    tomada_host::load::<dyn Greeter>(path).unwrap_or_else(|e| panic!("load {}: {e}", path.display()))
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Check + load against raw `dlopen`, each on a fresh copy of `src` (the dynamic
/// loader shares an object already open from the same inode), alternating, and
/// `tomada_host::inspect` alone (the checks without the load), and a load with the
/// debug info left out of the sealed copy (`Loader::debug_info(false)`); medians.
fn fresh_copy_loads(src: &Path, rounds: usize) -> [Duration; 4] {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ext = std::env::consts::DLL_EXTENSION;
    let (mut tomada, mut raw) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    let (mut inspect, mut lean) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    let lean_loader = tomada_host::Loader::new().debug_info(false);
    for i in 0..rounds + 2 {
        let a = tomada_test_support::copy_to(src, dir.path(), &format!("t{i}.{ext}"));
        let b = tomada_test_support::copy_to(src, dir.path(), &format!("r{i}.{ext}"));
        let c = tomada_test_support::copy_to(src, dir.path(), &format!("l{i}.{ext}"));
        // Whichever runs first in a round runs just after three files were written,
        // and measured ~80 µs slower for it (tomada first, then last: the same loads
        // went from 270 to 186 µs): the four take turns at being first.
        let mut took = [Duration::ZERO; 4];
        for k in 0..4 {
            let which = (i + k) % 4;
            let t = Instant::now();
            let held: Box<dyn std::any::Any> = match which {
                0 => Box::new(load_greeter(&a)),
                1 => Box::new(open_library(&b)),
                2 => Box::new(tomada_host::inspect(&a).expect("inspect the copy")),
                _ => Box::new(
                    lean_loader.load::<dyn Greeter>(&c).unwrap_or_else(|e| panic!("load {}: {e}", c.display())),
                ),
            };
            took[which] = t.elapsed();
            // Unloaded outside the timing.
            drop(black_box(held));
        }
        // The first two rounds warm up (page cache, the loader's own first use).
        if i >= 2 {
            tomada.push(took[0]);
            raw.push(took[1]);
            inspect.push(took[2]);
            lean.push(took[3]);
        }
        for f in [&a, &b, &c] {
            let _ = std::fs::remove_file(f);
        }
    }
    [median(&mut tomada), median(&mut raw), median(&mut inspect), median(&mut lean)]
}

fn debug_info() {
    let stripped = Build::new("greeter").release().cdylib();
    let debug = Build::new("greeter").release().config("profile.release.debug=1").cdylib();
    let rounds = 60;
    let [dt, dr, di, dl] = fresh_copy_loads(&debug, rounds);
    let [st, sr, si, sl] = fresh_copy_loads(&stripped, rounds);
    let (ds, ss) = (size(&debug), size(&stripped));
    for (name, t, r, i, l, bytes) in
        [("greeter with debug = 1", dt, dr, di, dl, ds), ("greeter stripped (release)", st, sr, si, sl, ss)]
    {
        println!(
            "{name:<44} check+load {t:>9.2?}  dlopen {r:>9.2?}  ratio {:.2}x  (inspect alone {i:.2?}; debug_info(false) {l:.2?}, {:.2}x; {} kB)",
            t.as_secs_f64() / r.as_secs_f64(),
            l.as_secs_f64() / r.as_secs_f64(),
            bytes / 1000
        );
    }
    println!(
        "anchor debug_info tomada={} dlopen={} inspect={} lean={} bytes={ds} stripped_tomada={} stripped_dlopen={} stripped_inspect={} stripped_lean={} stripped_bytes={ss} rounds={rounds}",
        ns(dt),
        ns(dr),
        ns(di),
        ns(dl),
        ns(st),
        ns(sr),
        ns(si),
        ns(sl)
    );
}

/// `/proc/self/statm`'s resident pages, in kB.
fn resident_kb() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: `sysconf` has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page / 1024
}

/// This process's minor page faults so far.
fn minor_faults() -> i64 {
    // SAFETY: `getrusage` writes into a zeroed local.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    usage.ru_minflt
}

/// The child of the `fresh` case: one load of `path`, timed, and what it touched.
fn child(kind: &str, path: &Path) {
    let (faults, rss) = (minor_faults(), resident_kb());
    let t = Instant::now();
    match kind {
        "tomada" => {
            let plugin = load_greeter(path);
            let took = t.elapsed();
            println!("{} {} {}", ns(took), minor_faults() - faults, resident_kb().saturating_sub(rss));
            drop(black_box(plugin));
        }
        "inspect" => {
            let inspected = tomada_host::inspect(path).expect("inspect");
            let took = t.elapsed();
            println!("{} {} {}", ns(took), minor_faults() - faults, resident_kb().saturating_sub(rss));
            drop(black_box(inspected));
        }
        _ => {
            let library = open_library(path);
            let took = t.elapsed();
            println!("{} {} {}", ns(took), minor_faults() - faults, resident_kb().saturating_sub(rss));
            drop(black_box(library));
        }
    }
}

/// One child of this bench: (time, minor faults, resident kB) of its one load.
fn run_child(kind: &str, path: &Path) -> (Duration, i64, u64) {
    let out = Command::new(std::env::current_exe().expect("this bench's path"))
        .env(CHILD_VAR, kind)
        .env("TOMADA_ANCHORS_PATH", path)
        .stderr(Stdio::inherit())
        .output()
        .expect("run a child of this bench");
    assert!(out.status.success(), "the {kind} child failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace().map(|w| w.parse::<i64>().expect("a number from the child"));
    let (t, f, r) = (words.next().unwrap(), words.next().unwrap(), words.next().unwrap());
    (Duration::from_nanos(t as u64), f, r as u64)
}

fn fresh() {
    let path = Build::new("greeter").release().cdylib();
    // The same plugin in a file that cannot change, where this machine allows it:
    // loaded without the sealed copy, beside `dlopen` of that very file.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let immutable = Immutable::copy(&path, dir.path());
    let runs = 150;
    let (mut tomada, mut raw, mut inspect) = (Vec::new(), Vec::new(), Vec::new());
    let (mut tf, mut rf, mut tr, mut rr) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut fixed_tomada, mut fixed_raw) = (Vec::new(), Vec::new());
    for i in 0..runs + 3 {
        let t = run_child("tomada", &path);
        let r = run_child("dlopen", &path);
        let n = run_child("inspect", &path);
        let f = immutable.as_ref().map(|f| (run_child("tomada", &f.0), run_child("dlopen", &f.0)));
        if i >= 3 {
            inspect.push(n.0);
            tomada.push(t.0);
            raw.push(r.0);
            tf.push(t.1);
            rf.push(r.1);
            tr.push(t.2);
            rr.push(r.2);
            if let Some((ft, fr)) = f {
                fixed_tomada.push(ft.0);
                fixed_raw.push(fr.0);
            }
        }
    }
    let (t, r, n) = (median(&mut tomada), median(&mut raw), median(&mut inspect));
    let mid = |v: &mut Vec<i64>| {
        v.sort();
        v[v.len() / 2]
    };
    let mid_u = |v: &mut Vec<u64>| {
        v.sort();
        v[v.len() / 2]
    };
    let (tf, rf, tr, rr) = (mid(&mut tf), mid(&mut rf), mid_u(&mut tr), mid_u(&mut rr));
    println!(
        "{:<44} load {:>9.2?}  dlopen {:>9.2?}  ratio {:.2}x  minor faults {tf} vs {rf}  RSS +{tr} kB vs +{rr} kB  (inspect alone {n:.2?})",
        format!("first load in a fresh process ({runs} each)"),
        t,
        r,
        t.as_secs_f64() / r.as_secs_f64()
    );
    let mut fields = format!(
        "anchor fresh tomada={} dlopen={} inspect={} tomada_faults={tf} dlopen_faults={rf} tomada_rss_kb={tr} dlopen_rss_kb={rr} runs={runs}",
        ns(t),
        ns(r),
        ns(n)
    );
    if !fixed_tomada.is_empty() {
        let (ft, fr) = (median(&mut fixed_tomada), median(&mut fixed_raw));
        println!(
            "{:<44} load {ft:>9.2?}  dlopen {fr:>9.2?}  ratio {:.2}x  (no sealed copy)",
            "  the plugin's file immutable",
            ft.as_secs_f64() / fr.as_secs_f64()
        );
        fields.push_str(&format!(" immutable_tomada={} immutable_dlopen={}", ns(ft), ns(fr)));
    }
    println!("{fields}");
}

/// The `host` executable and the `no_plugin` example, from the environment or built
/// here (release) into a target directory of their own.
fn host_executables() -> (PathBuf, PathBuf) {
    if let (Some(h), Some(n)) = (std::env::var_os("TOMADA_ANCHORS_HOST"), std::env::var_os("TOMADA_ANCHORS_NO_PLUGIN"))
    {
        return (h.into(), n.into());
    }
    let root = tomada_test_support::workspace_root();
    let target = root.join("target").join("fixtures-anchors");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "host",
            "--bin",
            "host",
            "--example",
            "no_plugin",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building host and no_plugin failed");
    let exe = std::env::consts::EXE_SUFFIX;
    (target.join("release").join(format!("host{exe}")), target.join("release/examples").join(format!("no_plugin{exe}")))
}

/// One run of `cmd`, fork + exec + wait, its output to `/dev/null`.
fn run_once(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("start the program");
    let took = t.elapsed();
    assert!(status.success(), "{cmd:?} failed: {status}");
    took
}

fn host_run() {
    let (host, no_plugin) = host_executables();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plugin = tomada_test_support::copy_to(
        &Build::new("greeter").release().cdylib(),
        dir.path(),
        &format!("greeter_v1{}", std::env::consts::DLL_SUFFIX),
    );
    // Both print the two lines (checked once, not timed).
    for exe in [&host, &no_plugin] {
        let out = Command::new(exe).arg("--plugin").arg(&plugin).output().expect("run it");
        assert!(out.status.success(), "{} failed: {}", exe.display(), String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("Olá, Mundo"), "{} did not greet", exe.display());
    }
    // The same plugin in a file that cannot change, where this machine allows it.
    let immutable = Immutable::copy(&plugin, dir.path());
    let runs = 300;
    let (mut with, mut without, mut fixed) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs + 5 {
        let h = run_once(Command::new(&host).arg("--plugin").arg(&plugin));
        let n = run_once(Command::new(&no_plugin).arg("--plugin").arg(&plugin));
        let f = immutable.as_ref().map(|f| run_once(Command::new(&host).arg("--plugin").arg(&f.0)));
        if i >= 5 {
            with.push(h);
            without.push(n);
            fixed.extend(f);
        }
    }
    let (h, n) = (median(&mut with), median(&mut without));
    println!(
        "{:<44} host {:>9.2?}  no-plugin {:>9.2?}  ratio {:.2}x",
        format!("whole host run ({runs} each)"),
        h,
        n,
        h.as_secs_f64() / n.as_secs_f64()
    );
    let mut fields = format!("anchor host_run tomada={} floor={} runs={runs}", ns(h), ns(n));
    if !fixed.is_empty() {
        let f = median(&mut fixed);
        println!(
            "{:<44} host {:>9.2?}  ratio {:.2}x (no sealed copy)",
            "  the plugin's file immutable",
            f,
            f.as_secs_f64() / n.as_secs_f64()
        );
        fields.push_str(&format!(" immutable={}", ns(f)));
    }
    println!("{fields}");
}

/// A copy of a plugin made immutable (`chattr +i`), mutable again when dropped so its
/// directory can be removed.
struct Immutable(PathBuf);

impl Immutable {
    /// `None` where this machine cannot make a file immutable (not root, or a file
    /// system without the flag).
    fn copy(plugin: &Path, dir: &Path) -> Option<Immutable> {
        let path = dir.join(format!("greeter_immutable{}", std::env::consts::DLL_SUFFIX));
        std::fs::copy(plugin, &path).expect("copy the plugin");
        tomada_test_support::set_immutable(&path, true).ok().map(|()| Immutable(path))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = tomada_test_support::set_immutable(&self.0, false);
    }
}

fn thousand() {
    const N: usize = 1000;
    let src = Build::new("greeter").release().cdylib();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ext = std::env::consts::DLL_EXTENSION;
    // Distinct files (distinct inodes): the dynamic loader shares an object only by
    // device and inode (and tomada loads a sealed copy of each file it checked), so
    // copies of the same bytes are 1,000 plugins to both.
    let tomada_copies: Vec<PathBuf> =
        (0..N).map(|i| tomada_test_support::copy_to(&src, dir.path(), &format!("plugin{i:04}.{ext}"))).collect();
    let raw_copies: Vec<PathBuf> =
        (0..N).map(|i| tomada_test_support::copy_to(&src, dir.path(), &format!("raw{i:04}.{ext}"))).collect();
    // 1.1 GB just written: let it reach the disk now, not during the loads.
    // SAFETY: `sync` has no preconditions.
    unsafe { libc::sync() };
    let (mut plugins, mut libraries) = (Vec::with_capacity(N), Vec::with_capacity(N));
    let (mut tomada, mut raw) = (Vec::with_capacity(N), Vec::with_capacity(N));
    // The inspection alone (the sealed copy and the checks, no `dlopen`) of the file
    // about to be loaded, at the same step: what of a load's growth is not `dlopen`'s.
    let mut inspect = Vec::with_capacity(N);
    for (a, b) in tomada_copies.iter().zip(&raw_copies) {
        let t = Instant::now();
        black_box(tomada_host::inspect(a).expect("inspectable"));
        inspect.push(t.elapsed());
        let t = Instant::now();
        plugins.push(load_greeter(a));
        tomada.push(t.elapsed());
        let t = Instant::now();
        libraries.push(open_library(b));
        raw.push(t.elapsed());
    }
    // What 1,000 loaded plugins hold in memory: the sealed copies are shared memory
    // (`RssShmem`), the raw `dlopen`s' pages the page cache's (`RssFile`).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |field: &str| -> u64 {
        status.lines().find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
    };
    let (shmem_kb, file_kb) = (kb("RssShmem:"), kb("RssFile:"));
    // Every plugin answers (not timed).
    assert!(plugins.iter().all(|p| p.greet("Mundo").is_ok_and(|g| g.contains("Mundo"))));
    let total = |v: &[Duration]| v.iter().sum::<Duration>();
    let (tt, rt) = (total(&tomada) / N as u32, total(&raw) / N as u32);
    let (first_t, first_r) = (total(&tomada[..100]) / 100, total(&raw[..100]) / 100);
    let (last_t, last_r) = (total(&tomada[N - 100..]) / 100, total(&raw[N - 100..]) / 100);
    // Medians of the first and last hundred (a spike of this shared machine moves a
    // hundred's mean by tens of µs).
    let tens = |v: &[Duration]| (median(&mut v[..100].to_vec()), median(&mut v[N - 100..].to_vec()));
    let ((tf, tl), (rf, rl)) = (tens(&tomada), tens(&raw));
    println!(
        "{:<44} first 100: {tf:.2?} vs {rf:.2?} ({:.2}x); last 100: {tl:.2?} vs {rl:.2?} ({:.2}x); growth {:.2?} vs {:.2?}",
        "1,000 plugins, per load, medians of 100",
        tf.as_secs_f64() / rf.as_secs_f64(),
        tl.as_secs_f64() / rl.as_secs_f64(),
        tl.saturating_sub(tf),
        rl.saturating_sub(rf)
    );
    let (first_i, last_i) = tens(&inspect);
    println!(
        "{:<44} first 100: {first_i:.2?}; last 100: {last_i:.2?} (medians; all: {:.2?})",
        "1,000 plugins, inspection alone (same steps)",
        median(&mut inspect)
    );
    let (tm, rm) = (median(&mut tomada), median(&mut raw));
    // `median` sorted them.
    let (t90, r90) = (tomada[N * 9 / 10], raw[N * 9 / 10]);
    let (tmax, rmax) = (tomada[N - 1], raw[N - 1]);
    println!(
        "{:<44} load {:>9.2?}  dlopen {:>9.2?}  ratio {:.2}x  (medians {:.2?} vs {:.2?}; first 100: {:.2?} vs {:.2?}; last 100: {:.2?} vs {:.2?})",
        "1,000 plugins, mean per load",
        tt,
        rt,
        tt.as_secs_f64() / rt.as_secs_f64(),
        tm,
        rm,
        first_t,
        first_r,
        last_t,
        last_r
    );
    println!(
        "{:<44} p90 {t90:.2?} vs {r90:.2?}; max {tmax:.2?} vs {rmax:.2?}; RssShmem {shmem_kb} kB, RssFile {file_kb} kB",
        "1,000 plugins, tails and memory"
    );
    println!(
        "anchor thousand tomada={} dlopen={} tomada_median={} dlopen_median={} tomada_first100={} dlopen_first100={} tomada_last100={} dlopen_last100={} tomada_p90={} dlopen_p90={} shmem_kb={shmem_kb} file_kb={file_kb}",
        ns(tt),
        ns(rt),
        ns(tm),
        ns(rm),
        ns(first_t),
        ns(first_r),
        ns(last_t),
        ns(last_r),
        ns(t90),
        ns(r90)
    );
    // Unloading them, first loaded first, a plugin and a raw library in turn (so both
    // see as many libraries still open at each step), each timed alone.
    let (mut unload_t, mut unload_r) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for (plugin, library) in plugins.into_iter().zip(libraries) {
        let t = Instant::now();
        drop(plugin);
        unload_t.push(t.elapsed());
        let t = Instant::now();
        drop(library);
        unload_r.push(t.elapsed());
    }
    let ((tf, tl), (rf, rl)) = (tens(&unload_t), tens(&unload_r));
    println!(
        "{:<44} first 100: {tf:.2?} vs {rf:.2?} ({:.2}x); last 100: {tl:.2?} vs {rl:.2?} ({:.2}x)",
        "1,000 plugins, per unload, medians of 100",
        tf.as_secs_f64() / rf.as_secs_f64(),
        tl.as_secs_f64() / rl.as_secs_f64()
    );
    let (ut, ur) = (total(&unload_t) / N as u32, total(&unload_r) / N as u32);
    let (first_ut, first_ur) = (total(&unload_t[..100]) / 100, total(&unload_r[..100]) / 100);
    let (last_ut, last_ur) = (total(&unload_t[N - 100..]) / 100, total(&unload_r[N - 100..]) / 100);
    let (um, urm) = (median(&mut unload_t), median(&mut unload_r));
    println!(
        "{:<44} unload {ut:>9.2?}  dlclose {ur:>9.2?}  ratio {:.2}x  (medians {um:.2?} vs {urm:.2?}; first 100: {first_ut:.2?} vs {first_ur:.2?}; last 100: {last_ut:.2?} vs {last_ur:.2?})",
        "1,000 plugins, mean per unload",
        ut.as_secs_f64() / ur.as_secs_f64()
    );
    println!(
        "anchor thousand_unload tomada={} dlclose={} tomada_median={} dlclose_median={} tomada_first100={} dlclose_first100={} tomada_last100={} dlclose_last100={}",
        ns(ut),
        ns(ur),
        ns(um),
        ns(urm),
        ns(first_ut),
        ns(first_ur),
        ns(last_ut),
        ns(last_ur)
    );
}

fn main() {
    if let Ok(kind) = std::env::var(CHILD_VAR) {
        child(&kind, Path::new(&std::env::var_os("TOMADA_ANCHORS_PATH").expect("TOMADA_ANCHORS_PATH")));
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and friends
    }
    println!("medians unless said otherwise; each figure beside its floor measured in the same run\n");
    if wants("debug_info") {
        debug_info();
    }
    if wants("fresh") {
        fresh();
    }
    if wants("host_run") {
        host_run();
    }
    if wants("thousand") {
        thousand();
    }
}
