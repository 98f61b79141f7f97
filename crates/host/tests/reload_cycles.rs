//! After many reloads nothing is left behind: every old version's sealed copy is
//! unmapped (or reported pinned, with its reason), and the process's threads, open
//! descriptors and child processes are back to what they were. Counts, not timing.
//!
//! A test binary of its own with a single test: the counts are the whole process's,
//! which other tests running beside it would move.

#![allow(missing_docs)]
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};

use pluginapi::Greeter;
use tomada_host::isolate::{Isolation, Runner};
use tomada_host::{Loader, Reloadable};
use tomada_test_support::{Build, cdylib, copy_to, mapped_copies, wait_until};

/// Threads, open descriptors and child processes of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Usage {
    threads: usize,
    fds: usize,
    children: usize,
}

fn usage() -> Usage {
    let tasks: Vec<PathBuf> =
        std::fs::read_dir("/proc/self/task").unwrap().filter_map(|t| Some(t.ok()?.path())).collect();
    let children = tasks
        .iter()
        .filter_map(|t| std::fs::read_to_string(t.join("children")).ok())
        .map(|c| c.split_whitespace().count())
        .sum();
    Usage { threads: tasks.len(), fds: std::fs::read_dir("/proc/self/fd").unwrap().count(), children }
}

/// Waits until two looks in a row agree (an old child process is reaped, and its
/// threads end, shortly after its last call), and returns that (or the last look,
/// after the hang guard: a baseline taken too high only makes the test lenient).
fn settled() -> Usage {
    let until = std::time::Instant::now() + tomada_test_support::HANG_GUARD;
    let mut last = usage();
    while std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = usage();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn rewrite(src: &Path, dst: &Path) {
    std::fs::copy(src, dst).unwrap();
}

#[test]
fn many_reload_cycles_leave_no_library_thread_descriptor_or_process_behind() {
    const CYCLES: usize = 100;
    let v1 = cdylib("living");
    let v2 = Build::new("living").config("env.LIVING_VERSION=\"2.0.0\"").cdylib();
    let versions = [(&v2, "2.0.0"), (&v1, "1.0.0")];
    let isolation = Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()));
    for (mode, loader) in [("in-process", Loader::new()), ("isolated", Loader::new().isolated(isolation))] {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("cycles-{mode}.so");
        let path = copy_to(&v1, dir.path(), &name);
        let plugin: Reloadable<dyn Greeter> = loader.reloadable(&path).unwrap();
        let cycle = |i: usize| {
            let (file, version) = versions[i % 2];
            rewrite(file, &path);
            plugin.reload().unwrap();
            assert_eq!(plugin.current().greet("x").unwrap(), format!("Olá, x (v{version})"), "{mode}: cycle {i}");
        };
        // Warm-up: whatever is made once, at the first reload, is not a leak.
        for i in 0..2 {
            cycle(i);
        }
        let baseline = settled();
        let serving = if mode == "in-process" { 1 } else { 0 };
        assert_eq!(mapped_copies(&name), serving, "{mode}: the serving version only");
        for i in 2..2 + CYCLES {
            cycle(i);
        }
        // (An old isolated version's process ends, and its threads with it, shortly
        // after its last call: waited for, with the hang guard.)
        wait_until(&format!("{mode}: back to the baseline {baseline:?} after {CYCLES} reloads"), || {
            let now = usage();
            now.threads <= baseline.threads && now.fds <= baseline.fds && now.children <= baseline.children
        });
        // Every old version is unmapped: none was pinned (the living fixture leaves no
        // hazard unless asked), so only the serving one's copy is mapped.
        assert!(tomada_host::pinned_libraries().is_empty(), "{mode}: {:?}", tomada_host::pinned_libraries());
        assert_eq!(mapped_copies(&name), serving, "{mode}: old versions still mapped");
        assert_eq!(plugin.generation(), 1 + 2 + CYCLES as u64, "{mode}");
        drop(plugin);
        wait_until(&format!("{mode}: the last version unloaded"), || {
            mapped_copies(&name) == 0 && usage().children == 0
        });
    }
}
