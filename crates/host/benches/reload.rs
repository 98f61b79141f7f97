//! Issue 18's figures: reloading under load, in both modes (in-process and
//! isolated), all measured in one run.
//!
//! 1. **Under load**: `THREADS` host threads call `Greeter::greet` through
//!    `Reloadable::current()` continuously (each paced by a short sleep so the
//!    callers leave CPU to the reloads on a small machine), first for a while with no
//!    reload (the baseline p99), then while the file is replaced `SWAPS` times —
//!    by valid builds (two versions), an incompatible build (ABI 2), a truncated
//!    copy and an unsigned build under a trust policy — each followed by
//!    `reload()`. Counted: calls, calls that failed or answered from no valid
//!    version, calls started but never finished (lost), the swap itself (from the
//!    `Reloaded` event), each valid reload's cut-over (from `reload()` called on the
//!    settled file to the first call answered by the new version), and the version
//!    the host ends on. Then a smaller run through `watch()`.
//! 2. **Resources after `CYCLES` reload cycles** (no callers): distinct sealed
//!    copies still mapped (`/proc/self/maps`), libraries reported pinned, resident
//!    memory, threads, open descriptors and child processes, against a baseline
//!    taken after the first load and a few warm-up reloads.
//!
//! Fixtures are release builds (as a plugin ships; the debug ones are 10 MB). Run:
//! `cargo bench -p tomada-host --bench reload` (`RELOAD_SWAPS`, `RELOAD_CYCLES`,
//! `RELOAD_THREADS`, `RELOAD_WATCHED` change the counts).

#![allow(missing_docs)]

fn main() {
    #[cfg(target_os = "linux")]
    linux::run();
}

#[cfg(target_os = "linux")]
mod linux {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use pluginapi::Greeter;
    use tomada_host::isolate::{Isolation, Runner};
    use tomada_host::{Loader, ReloadEvent, Reloadable, TrustPolicy};
    use tomada_test_support::{Build, mapped_copies};

    fn count(var: &str, default: usize) -> usize {
        std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    /// The fixtures, prebuilt once, and the signatures of each.
    struct Files {
        v1: PathBuf,
        v2: PathBuf,
        wrong_abi: PathBuf,
        truncated: PathBuf,
        keys: Keys,
    }

    struct Keys {
        public: PathBuf,
        secret: minisign::SecretKey,
    }

    impl Keys {
        fn signature_of(&self, file: &Path) -> Vec<u8> {
            let sig = minisign::sign(None, &self.secret, std::fs::File::open(file).unwrap(), None, None).unwrap();
            sig.to_string().into_bytes()
        }
    }

    fn signature_path(file: &Path) -> PathBuf {
        let mut name = file.as_os_str().to_owned();
        name.push(".minisig");
        PathBuf::from(name)
    }

    /// One replacement of the file: its contents, its signature (none: unsigned),
    /// and the version a reload must swap in (none: it must be refused).
    struct Step {
        what: &'static str,
        file: PathBuf,
        signature: Option<Vec<u8>>,
        valid: Option<&'static str>,
    }

    impl Step {
        /// `cp` over the watched path (its inode rewritten in place), then its
        /// signature written or removed.
        fn apply(&self, path: &Path) {
            std::fs::copy(&self.file, path).unwrap();
            let sig = signature_path(path);
            match &self.signature {
                Some(bytes) => std::fs::write(&sig, bytes).unwrap(),
                None => {
                    let _ = std::fs::remove_file(&sig);
                }
            }
        }
    }

    fn steps(files: &Files) -> Vec<Step> {
        let signed = |what, file: &Path, valid| Step {
            what,
            file: file.to_path_buf(),
            signature: Some(files.keys.signature_of(file)),
            valid,
        };
        vec![
            signed("v2", &files.v2, Some("2.0.0")),
            signed("incompatible", &files.wrong_abi, None),
            signed("v1", &files.v1, Some("1.0.0")),
            signed("truncated", &files.truncated, None),
            signed("v2", &files.v2, Some("2.0.0")),
            Step { what: "unsigned", file: files.v1.clone(), signature: None, valid: None },
        ]
    }

    fn isolation() -> Isolation {
        Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()))
    }

    fn loaders() -> [(&'static str, Loader); 2] {
        [("in-process", Loader::new()), ("isolated", Loader::new().isolated(isolation()))]
    }

    pub fn run() {
        let threads = count("RELOAD_THREADS", 8);
        let swaps = count("RELOAD_SWAPS", 1000);
        let cycles = count("RELOAD_CYCLES", 1000);
        let watched = count("RELOAD_WATCHED", 24);
        let dir = tempfile::tempdir().unwrap();
        let v1 = Build::new("living").release().cdylib();
        let v2 = Build::new("living").release().config("env.LIVING_VERSION=\"2.0.0\"").cdylib();
        let wrong_abi = Build::new("wrong-abi").release().cdylib();
        let truncated = dir.path().join("truncated.bin");
        let bytes = std::fs::read(&v2).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let public = dir.path().join("reload.pub");
        std::fs::write(&public, pair.pk.to_box().unwrap().to_string()).unwrap();
        let files = Files { v1, v2, wrong_abi, truncated, keys: Keys { public, secret: pair.sk } };
        println!(
            "fixtures: living 1.0.0 / 2.0.0 ({} / {} bytes, release builds), {threads} threads, {swaps} replacements, \
             {cycles} cycles, {watched} watched replacements",
            std::fs::metadata(&files.v1).unwrap().len(),
            std::fs::metadata(&files.v2).unwrap().len()
        );
        for (mode, loader) in loaders() {
            under_load(mode, &loader, &files, dir.path(), threads, swaps, watched);
        }
        for (mode, loader) in loaders() {
            resources(mode, &loader, &files, dir.path(), cycles);
        }
    }

    const IDLE: u8 = 0;
    const MEASURE_IDLE: u8 = 1;
    const SWAPPING: u8 = 2;
    const WATCHING: u8 = 3;
    const STOP: u8 = 4;

    /// One caller's tally.
    #[derive(Default)]
    struct Tally {
        calls: u64,
        failed: u64,
        /// Answers from no valid version.
        wrong: u64,
        /// Latencies (ns) with no reload going on, and during the replacements.
        idle: Vec<u32>,
        swapping: Vec<u32>,
        /// Calls during the `reload()` phase (for the rate).
        swapping_calls: u64,
    }

    /// Calls started and finished by all callers (a call started and never
    /// finished would be lost).
    struct Counters {
        started: AtomicU64,
        finished: AtomicU64,
    }

    /// The pause between a caller's calls.
    const PACE: Duration = Duration::from_micros(100);

    fn caller(plugin: Reloadable<dyn Greeter>, phase: Arc<AtomicU8>, counters: Arc<Counters>) -> Tally {
        let mut t = Tally::default();
        loop {
            let now = phase.load(Ordering::Acquire);
            if now == STOP {
                return t;
            }
            counters.started.fetch_add(1, Ordering::Relaxed);
            let start = Instant::now();
            let answer = plugin.current().greet("x");
            let took = start.elapsed().as_nanos().min(u32::MAX as u128) as u32;
            counters.finished.fetch_add(1, Ordering::Relaxed);
            t.calls += 1;
            match answer {
                Ok(a) if a == "Olá, x (v1.0.0)" || a == "Olá, x (v2.0.0)" => {}
                Ok(_) => t.wrong += 1,
                Err(_) => t.failed += 1,
            }
            match now {
                MEASURE_IDLE => t.idle.push(took),
                SWAPPING => {
                    t.swapping.push(took);
                    t.swapping_calls += 1;
                }
                _ => {}
            }
            std::thread::sleep(PACE);
        }
    }

    fn percentile(sorted: &[u64], p: f64) -> u64 {
        if sorted.is_empty() {
            return 0;
        }
        sorted[((sorted.len() - 1) as f64 * p).round() as usize]
    }

    fn us(ns: u64) -> f64 {
        ns as f64 / 1000.0
    }

    /// p50 / p99 / max of `ns`, in µs.
    fn summary(mut ns: Vec<u64>) -> String {
        ns.sort_unstable();
        format!(
            "p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs (n = {})",
            us(percentile(&ns, 0.5)),
            us(percentile(&ns, 0.99)),
            us(*ns.last().unwrap_or(&0)),
            ns.len()
        )
    }

    fn version_of(plugin: &Reloadable<dyn Greeter>) -> String {
        plugin.current().greet("x").unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn under_load(
        mode: &str,
        loader: &Loader,
        files: &Files,
        dir: &Path,
        threads: usize,
        swaps: usize,
        watched: usize,
    ) {
        println!("\n== {mode}: under load ==");
        let policy = TrustPolicy::new().trust_key_file(&files.keys.public).unwrap().strict_modes(false);
        let loader = loader.clone().policy(policy);
        let path = dir.join(format!("under-load-{mode}.so"));
        let steps = steps(files);
        steps[2].apply(&path); // v1, signed
        let plugin: Reloadable<dyn Greeter> = loader.reloadable(&path).unwrap();
        let events = plugin.events();
        let phase = Arc::new(AtomicU8::new(IDLE));
        let counters = Arc::new(Counters { started: AtomicU64::new(0), finished: AtomicU64::new(0) });
        let callers: Vec<_> = (0..threads)
            .map(|_| {
                let (plugin, phase, counters) = (plugin.clone(), phase.clone(), counters.clone());
                std::thread::spawn(move || caller(plugin, phase, counters))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        phase.store(MEASURE_IDLE, Ordering::Release);
        std::thread::sleep(Duration::from_secs(3));

        phase.store(SWAPPING, Ordering::Release);
        let swapping_started = Instant::now();
        let (mut swapped, mut refused, mut unexpected) = (0u64, 0u64, Vec::new());
        let mut cutovers = Vec::new();
        let mut last_valid = "1.0.0";
        for i in 0..swaps {
            let step = &steps[i % steps.len()];
            step.apply(&path);
            let start = Instant::now();
            let outcome = plugin.reload();
            match (outcome, step.valid) {
                (Ok(_), Some(v)) => {
                    // The first call a new caller makes now goes to the new version.
                    let answer = plugin.current().greet("x");
                    cutovers.push(start.elapsed().as_nanos() as u64);
                    if answer.as_deref() != Ok(format!("Olá, x (v{v})").as_str()) {
                        unexpected.push(format!("{i}: {} served {answer:?}", step.what));
                    }
                    swapped += 1;
                    last_valid = v;
                }
                (Err(_), None) => refused += 1,
                (outcome, _) => unexpected.push(format!("{i}: {} gave {outcome:?}", step.what)),
            }
        }
        let swapping_time = swapping_started.elapsed();
        let mut swap_ns = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let ReloadEvent::Reloaded { swap, .. } = event {
                swap_ns.push(swap.as_nanos() as u64);
            }
        }

        // A smaller run through `watch()`: each replacement is waited for (its event).
        phase.store(WATCHING, Ordering::Release);
        let watch = plugin.watch().unwrap();
        let mut settled = Vec::new();
        let (mut watch_swapped, mut watch_refused, mut transient) = (0, 0, 0);
        for i in 0..watched {
            let step = &steps[i % steps.len()];
            // A late batch of the previous step's events (its signature's) would find
            // this step's file already there and reload it early: let them drain.
            std::thread::sleep(Duration::from_millis(400));
            step.apply(&path);
            let written = Instant::now();
            // A refusal of a file caught half-written may come first: wait for the
            // outcome of this step's contents.
            let deadline = written + Duration::from_secs(60);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match events.recv_timeout(left) {
                    Ok(ReloadEvent::Reloaded { to, .. }) if Some(to.version.as_str()) == step.valid => {
                        settled.push(written.elapsed().as_nanos() as u64);
                        watch_swapped += 1;
                        last_valid = step.valid.unwrap();
                        break;
                    }
                    Ok(ReloadEvent::Refused { .. }) if step.valid.is_none() => {
                        watch_refused += 1;
                        break;
                    }
                    // A valid build caught before its signature was written.
                    Ok(ReloadEvent::Refused { .. }) => transient += 1,
                    Ok(other) => {
                        unexpected.push(format!("watch {i}: {}: {other:?}", step.what));
                        break;
                    }
                    Err(_) => {
                        unexpected.push(format!("watch {i}: {}: no event within 60 s", step.what));
                        break;
                    }
                }
            }
        }
        drop(watch);

        phase.store(STOP, Ordering::Release);
        let tallies: Vec<Tally> = callers.into_iter().map(|t| t.join().unwrap()).collect();
        let calls: u64 = tallies.iter().map(|t| t.calls).sum();
        let failed: u64 = tallies.iter().map(|t| t.failed).sum();
        let wrong: u64 = tallies.iter().map(|t| t.wrong).sum();
        let swapping_calls: u64 = tallies.iter().map(|t| t.swapping_calls).sum();
        let lost = counters.started.load(Ordering::Relaxed) - counters.finished.load(Ordering::Relaxed);
        let idle: Vec<u64> = tallies.iter().flat_map(|t| t.idle.iter().map(|&n| n as u64)).collect();
        let during: Vec<u64> = tallies.iter().flat_map(|t| t.swapping.iter().map(|&n| n as u64)).collect();
        let (mut idle_sorted, mut during_sorted) = (idle.clone(), during.clone());
        idle_sorted.sort_unstable();
        during_sorted.sort_unstable();
        let final_answer = version_of(&plugin);

        println!(
            "{swaps} replacements by reload() in {:.1} s: {swapped} swapped, {refused} refused; then {watched} through \
             watch(): {watch_swapped} swapped, {watch_refused} refused \
             ({transient} refusals of a valid build caught half-written)",
            swapping_time.as_secs_f64()
        );
        println!(
            "calls: {calls} in all by {threads} threads; {:.0} calls/s during the reload() replacements",
            swapping_calls as f64 / swapping_time.as_secs_f64()
        );
        println!(
            "calls failed: {failed}; answered by no valid version: {wrong}; lost (started, never finished): {lost}"
        );
        println!("unexpected outcomes: {} {:?}", unexpected.len(), &unexpected[..unexpected.len().min(5)]);
        println!("ends on: {final_answer:?} (last valid: {last_valid}, generation {})", plugin.generation());
        println!("swap (ArcSwap store, from the Reloaded events): {}", summary(swap_ns));
        println!("call without reloads: {}", summary(idle));
        println!("call during replacements: {}", summary(during));
        let (p99_idle, p99_during) = (percentile(&idle_sorted, 0.99), percentile(&during_sorted, 0.99));
        println!(
            "p99 during / p99 without: {:.2}x (p50: {:.2}x)",
            p99_during as f64 / p99_idle.max(1) as f64,
            percentile(&during_sorted, 0.5) as f64 / percentile(&idle_sorted, 0.5).max(1) as f64
        );
        println!(
            "cut-over (reload() on the settled file -> first call answered by the new version): {}",
            summary(cutovers)
        );
        if std::env::var_os("RELOAD_SHOW_WATCH").is_some() {
            println!("watch(): each, µs: {:?}", settled.iter().map(|&n| n / 1000).collect::<Vec<_>>());
        }
        println!("watch(): file written -> new version serving: {}", summary(settled));
    }

    /// Resident memory (kB), threads, open descriptors, child processes.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Usage {
        rss_kb: u64,
        threads: usize,
        fds: usize,
        children: usize,
    }

    fn usage() -> Usage {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let children = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
            .map(|c| c.split_whitespace().count())
            .sum();
        Usage {
            rss_kb: field("VmRSS:"),
            threads: field("Threads:") as usize,
            fds: std::fs::read_dir("/proc/self/fd").unwrap().count(),
            children,
        }
    }

    fn resources(mode: &str, loader: &Loader, files: &Files, dir: &Path, cycles: usize) {
        println!("\n== {mode}: {cycles} reload cycles ==");
        let name = format!("cycles-{mode}.so");
        let path = dir.join(&name);
        let before_load = usage();
        std::fs::copy(&files.v1, &path).unwrap();
        let plugin: Reloadable<dyn Greeter> = loader.reloadable(&path).unwrap();
        let events = plugin.events();
        let versions = [&files.v2, &files.v1];
        let cycle = |i: usize| {
            std::fs::copy(versions[i % 2], &path).unwrap();
            plugin.reload().unwrap();
            plugin.current().greet("x").unwrap();
        };
        for i in 0..10 {
            cycle(i);
        }
        let settle = || {
            // An old child process ends, and is reaped, after its last call; give the
            // counts a moment to come back (up to 10 s).
            let until = Instant::now() + Duration::from_secs(10);
            let mut last = usage();
            while Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100));
                let now = usage();
                if (now.threads, now.fds, now.children) == (last.threads, last.fds, last.children) {
                    return now;
                }
                last = now;
            }
            last
        };
        let baseline = settle();
        let pinned_before = tomada_host::pinned_libraries().len();
        let start = Instant::now();
        for i in 10..10 + cycles {
            cycle(i);
        }
        let took = start.elapsed();
        let after = settle();
        let pinned = tomada_host::pinned_libraries().len().saturating_sub(pinned_before);
        println!(
            "{cycles} cycles (cp + reload + call) in {:.1} s ({:.2} ms each); generation {}",
            took.as_secs_f64(),
            took.as_secs_f64() * 1e3 / cycles as f64,
            plugin.generation()
        );
        let swaps: Vec<u64> = events
            .try_iter()
            .filter_map(|e| match e {
                ReloadEvent::Reloaded { swap, .. } => Some(swap.as_nanos() as u64),
                _ => None,
            })
            .collect();
        println!("swap with no caller: {}", summary(swaps));
        println!("before the first load: {before_load:?}");
        println!("baseline (first load + 10 reloads): {baseline:?}");
        println!("after {cycles} more: {after:?}");
        println!(
            "growth: RSS {:+} kB ({:+} kB since before the first load), threads {:+}, fds {:+}, children {:+}",
            after.rss_kb as i64 - baseline.rss_kb as i64,
            after.rss_kb as i64 - before_load.rss_kb as i64,
            after.threads as i64 - baseline.threads as i64,
            after.fds as i64 - baseline.fds as i64,
            after.children as i64 - baseline.children as i64
        );
        println!(
            "sealed copies still mapped: {} (the serving one{}); libraries reported pinned: {pinned}",
            mapped_copies(&name),
            if mode == "isolated" { " lives in the child: 0 expected here" } else { "" }
        );
    }
}
