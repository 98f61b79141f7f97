//! Unload that never crashes: a plugin that leaves behind something that would run
//! its code after unloading — a thread, a signal handler, a `pthread_key`
//! destructor — is kept mapped and reported, and the host does not crash when that
//! code runs later. Checked through `/proc/self/maps`.

use living_api::Living;
use tomada_host::{Hazard, Loader, pinned_libraries};
use tomada_test_support::{copy_to, wait_until};

use crate::image::living;

fn mapped(name: &str) -> bool {
    std::fs::read_to_string("/proc/self/maps").unwrap().contains(&format!("/memfd:tomada:{name}"))
}

/// Whether this process holds a descriptor of that sealed copy open (the name the
/// loader knows the library by: `/proc/<pid>/fd/N`).
fn held(name: &str) -> bool {
    let wanted = format!("/memfd:tomada:{name}");
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().starts_with(&wanted)))
}

/// A fresh copy of the `living` fixture named `name` in a new directory, and a
/// marker file `marker` beside it (the fixture's hazards run while it exists).
fn marked_copy(name: &str, marker: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let marked = dir.path().join(marker);
    std::fs::write(&marked, b"").unwrap();
    let path = copy_to(&living("1.0.0"), dir.path(), name);
    (dir, marked, path)
}

/// Loads a fresh copy named `name`, has it leave `hazard` behind, drops it, and
/// returns whether it stayed mapped and what was reported for it.
fn leave_and_drop(hazard: &str, name: &str) -> Vec<Hazard> {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(&living("1.0.0"), dir.path(), name);
    let plugin = Loader::new().load::<dyn Living>(&path).unwrap();
    if hazard != "nothing" {
        assert!(plugin.hazard(hazard).unwrap(), "the fixture knows {hazard}");
    }
    assert!(mapped(name));
    drop(plugin);
    pinned_libraries().into_iter().filter(|r| r.path == path).flat_map(|r| r.hazards).collect()
}

/// The control: a plugin that leaves nothing behind is unmapped once dropped.
#[test]
fn a_plugin_that_leaves_nothing_is_unmapped() {
    let reported = leave_and_drop("nothing", "hazard-none.so");
    assert!(reported.is_empty(), "{reported:?}");
    wait_until("the library's unmapping", || !mapped("hazard-none.so"));
    assert!(!held("hazard-none.so"), "its name is let go once it is unloaded");
}

/// A signal handler in the library: kept mapped; the signal, raised after the
/// plugin is gone, runs the handler (without the pin: SIGSEGV at an unmapped address).
#[test]
fn a_signal_handler_keeps_the_library_mapped() {
    let reported = leave_and_drop("signal", "hazard-signal.so");
    assert!(reported.contains(&Hazard::SignalHandler { signal: libc::SIGUSR2 }), "{reported:?}");
    assert!(mapped("hazard-signal.so"), "unmapped with a handler installed");
    // SAFETY: raises SIGUSR2 in this thread: its handler, the plugin's, does nothing.
    assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
    // SAFETY: restores the default action (SIGUSR2 is used by no other test).
    unsafe { libc::signal(libc::SIGUSR2, libc::SIG_DFL) };
}

/// A thread the plugin started, still running its code: kept mapped.
#[test]
fn a_thread_still_in_the_library_keeps_it_mapped() {
    let reported = leave_and_drop("thread", "hazard-thread.so");
    assert!(reported.iter().any(|h| matches!(h, Hazard::Thread { .. })), "{reported:?}");
    assert!(mapped("hazard-thread.so"), "unmapped under a running thread");
}

/// A `pthread_key_create` destructor, with a value set on a thread: kept mapped
/// while that thread lives; the destructor runs when that thread exits (here, a
/// thread of the test's own, which makes the call and then ends), and the library is
/// unloaded after: no live thread holds a value for the key any more.
#[test]
fn a_pthread_key_destructor_keeps_the_library_mapped() {
    older_than_what_it_loads();
    let reported = std::thread::spawn(|| {
        let reported = leave_and_drop("key", "hazard-key.so");
        assert!(mapped("hazard-key.so"), "unmapped with a key destructor registered");
        reported
    })
    .join()
    .unwrap();
    assert!(reported.iter().any(|h| matches!(h, Hazard::KeyDestructor { .. })), "{reported:?}");
    wait_until("its unloading once the thread holding the key's value ended", || {
        tomada_host::unload_pinned_libraries();
        !pinned_libraries().iter().any(|r| r.path.ends_with("hazard-key.so"))
    });
    wait_until("the library's unmapping", || !mapped("hazard-key.so"));
}

/// A thread-local destructor: glibc itself keeps the library mapped until the thread
/// that registered one exits; nothing crashes when it does.
#[test]
fn a_thread_local_destructor_is_left_to_glibc() {
    std::thread::spawn(|| {
        let _ = leave_and_drop("tls", "hazard-tls.so");
        assert!(mapped("hazard-tls.so"), "glibc unmapped a library with a live thread-local destructor");
        // Still in the loader's link map under its name, `/proc/<pid>/fd/N`: that
        // descriptor stays open (closed, its number could go to another plugin,
        // which the loader would then take for this library).
        assert!(held("hazard-tls.so"), "the name of a library glibc kept was let go");
    })
    .join()
    .unwrap();
}

/// Loads fresh copies named `hazard-{group}-{i}.so`, for `i` in `0..n`.
fn load_copies(group: &str, n: usize, dir: &std::path::Path) -> Vec<(String, tomada_host::Plugin<dyn Living>)> {
    (0..n)
        .map(|i| {
            let name = format!("hazard-{group}-{i}.so");
            let path = copy_to(&living("1.0.0"), dir, &name);
            (name, Loader::new().load::<dyn Living>(&path).unwrap())
        })
        .collect()
}

/// The order to drop `n` plugins in: neither the order they were loaded in nor its
/// reverse (every other one from the middle out, then the rest backwards).
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).filter(|i| i % 2 == 1).collect();
    order.extend((0..n).filter(|i| i % 2 == 0).rev());
    order.rotate_left(n / 4);
    order
}

/// After the drop of the plugin loaded from `dir/name` (one that leaves nothing
/// behind): waits until it is unmapped or reported kept, and returns its path if it
/// is kept. The other tests of this binary run beside this one, and a thread started
/// since the load (theirs, or a plugin's own) may run on a stack glibc reused from an
/// ended thread that called into a copy of this plugin once mapped at the same
/// addresses: a stale word there keeps the library mapped, the documented error on
/// the side of keeping it. So a thread may be the reason, and nothing else can be.
fn unmapped_or_kept_for_a_thread(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    let path = dir.join(name);
    let mut kept = None;
    wait_until("the library's unmapping (or its report)", || {
        kept = pinned_libraries().into_iter().find(|r| r.path == path);
        !mapped(name) || kept.is_some()
    });
    // (Unloaded meanwhile by another test's look: not kept.)
    let kept = kept.filter(|_| mapped(name))?;
    assert!(kept.hazards.iter().all(|h| matches!(h, Hazard::Thread { .. })), "{name}: {kept:?}");
    eprintln!("{name} kept mapped for a thread: {kept:?}");
    Some(path)
}

/// Many libraries loaded, then dropped in another order: each is unmapped once
/// dropped (its own code is looked up, not a neighbour's), the others stay, and
/// none is reported.
#[test]
fn many_plugins_dropped_in_another_order_are_all_unmapped() {
    const N: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let mut plugins: Vec<Option<_>> = load_copies("many", N, dir.path()).into_iter().map(Some).collect();
    let order = shuffled(N);
    let mut kept = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        let (name, plugin) = plugins[i].take().unwrap();
        assert!(mapped(&name));
        drop(plugin);
        kept.extend(unmapped_or_kept_for_a_thread(dir.path(), &name));
        for &later in &order[k + 1..] {
            let (name, _) = plugins[later].as_ref().unwrap();
            assert!(mapped(name), "{name} unmapped before it was dropped");
        }
    }
    assert!(kept.len() <= N / 4, "most of them unmapped: kept {kept:?}");
    let reported: Vec<_> =
        pinned_libraries().into_iter().filter(|r| r.path.starts_with(dir.path())).map(|r| r.path).collect();
    // (A library kept for another test's thread goes once a later look finds that
    // thread gone: reported now or not, but never one that was unloaded.)
    assert!(reported.iter().all(|r| kept.contains(r)), "reported {reported:?}, kept {kept:?}");
}

/// Among many libraries, the one whose thread still runs its code is kept mapped
/// and reported (for that thread); every other one, loaded before and after it and
/// dropped around it, is unmapped.
#[test]
fn among_many_only_the_library_a_thread_is_in_stays_mapped() {
    const N: usize = 7;
    const RUNNING: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let plugins = load_copies("among", N, dir.path());
    assert!(plugins[RUNNING].1.hazard("thread").unwrap());
    let mut plugins: Vec<Option<_>> = plugins.into_iter().map(Some).collect();
    let mut kept = Vec::new();
    for i in shuffled(N) {
        let (name, plugin) = plugins[i].take().unwrap();
        drop(plugin);
        if i != RUNNING {
            kept.extend(unmapped_or_kept_for_a_thread(dir.path(), &name));
        }
    }
    assert!(kept.len() <= N / 4, "most of them unmapped: kept {kept:?}");
    let running = dir.path().join(format!("hazard-among-{RUNNING}.so"));
    assert!(mapped(&format!("hazard-among-{RUNNING}.so")), "unmapped under a running thread");
    let reported: Vec<_> = pinned_libraries().into_iter().filter(|r| r.path.starts_with(dir.path())).collect();
    assert!(reported.iter().all(|r| r.path == running || kept.contains(&r.path)), "{reported:?}, kept {kept:?}");
    let reported = reported.into_iter().find(|r| r.path == running).expect("the running one reported");
    // (Its `std` also made a `pthread_key` for that thread: a hazard of its own.)
    assert!(reported.hazards.iter().any(|h| matches!(h, Hazard::Thread { .. })), "{reported:?}");
    assert!(!reported.hazards.iter().any(|h| matches!(h, Hazard::SignalHandler { .. })), "{reported:?}");
}

/// A library kept mapped for a thread of its own is unloaded once that thread has
/// ended: by a later unload of any plugin, or when the host asks
/// (`unload_pinned_libraries`). Until then it stays mapped and reported.
///
/// The plugin is loaded and called on a thread of the host that then ends: starting a
/// thread, the plugin's `std` also leaves a thread-exit hook (a `pthread_key` value
/// whose destructor is the plugin's) on the thread that asked, which keeps the
/// library mapped until that thread ends too.
#[test]
fn a_library_kept_for_a_thread_is_unloaded_once_the_thread_ends() {
    older_than_what_it_loads();
    let name = "hazard-ends.so";
    let (_dir, marker, path) = marked_copy(name, "running");
    let report = || pinned_libraries().into_iter().find(|r| r.path == path);
    let (on_host, asked) = {
        let (path, marker) = (path.clone(), marker.clone());
        std::thread::spawn(move || {
            // SAFETY: `gettid` has no preconditions.
            let me = unsafe { libc::gettid() } as u32;
            let plugin = Loader::new().load::<dyn Living>(&path).unwrap();
            assert!(plugin.hazard(&format!("thread-while:{}", marker.display())).unwrap());
            drop(plugin);
            (pinned_libraries().into_iter().find(|r| r.path == path), me)
        })
        .join()
        .unwrap()
    };
    let on_host = on_host.expect("kept mapped while its thread runs");
    let thread: u32 = std::fs::read_to_string(marker.with_extension("tid")).unwrap().parse().unwrap();
    assert!(on_host.hazards.contains(&Hazard::Thread { tid: thread }), "{on_host:?}");
    // Looked at again while the plugin's thread runs (the host's thread that asked
    // for it has ended): still kept, for that thread.
    wait_until("the end of the host's thread", || !std::path::Path::new(&format!("/proc/self/task/{asked}")).exists());
    assert!(!tomada_host::unload_pinned_libraries().contains(&path));
    let still = report().expect("kept mapped while its thread runs");
    assert!(still.hazards.contains(&Hazard::Thread { tid: thread }), "{still:?}");
    assert!(mapped(name) && held(name));
    std::fs::remove_file(&marker).unwrap();
    wait_until("the plugin's thread's end", || !std::path::Path::new(&format!("/proc/self/task/{thread}")).exists());
    // The next look unloads it, unless another test's thread started on a stack
    // glibc reused from one that ran this library, with its words in it (the error on
    // the side of keeping it): looked at again until those end too.
    wait_until_unloaded(&path, name);
    assert!(!held(name), "its name is let go once it is unloaded");
}

/// Waits until a library loaded now counts `tid` as a thread started before it: the
/// clock of threads' start times (`CLOCK_BOOTTIME` in ticks) has moved past its start
/// by more than the one tick an unload allows for.
fn wait_until_older(tid: u32) {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let started: u64 = stat.rsplit_once(')').unwrap().1.split_whitespace().nth(19).unwrap().parse().unwrap();
    // SAFETY: `sysconf` has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let ticks = || {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: writes the time into `ts`.
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        ts.tv_sec as u64 * hz + ts.tv_nsec as u64 * hz / 1_000_000_000
    };
    wait_until("the clock of threads' start times to move on", || ticks() >= started + 3);
}

/// Makes this test's thread older than the libraries loaded after this returns, so
/// that no look at them looks at this thread. A test's thread may run on a stack glibc
/// reused from an earlier test's, with words left in it of a plugin mapped then at the
/// addresses the next one takes: looked at, they would keep that one mapped for as
/// long as this thread lives (the error on the side of keeping; see
/// `tomada_host::unload`), and a test waiting for an unload would wait for ever.
fn older_than_what_it_loads() {
    // SAFETY: `gettid` has no preconditions.
    wait_until_older(unsafe { libc::gettid() } as u32);
}

/// `unload_pinned_libraries` from a thread on a stack of its own (larger than glibc
/// keeps for reuse): no stale word of an earlier call into a plugin on it.
fn look_again() -> Vec<std::path::PathBuf> {
    std::thread::Builder::new()
        .stack_size(96 << 20)
        .spawn(tomada_host::unload_pinned_libraries)
        .unwrap()
        .join()
        .unwrap()
}

/// Waits until a later look unloads the library of `path`, then until it is unmapped;
/// if it does not come, says why it is still kept (and which threads those are).
fn wait_until_unloaded(path: &std::path::Path, name: &str) {
    let until = std::time::Instant::now() + tomada_test_support::HANG_GUARD;
    while let Some(kept) = {
        look_again();
        pinned_libraries().into_iter().find(|r| r.path == path)
    } {
        if std::time::Instant::now() > until {
            let threads: Vec<String> = kept
                .hazards
                .iter()
                .filter_map(|h| match h {
                    Hazard::Thread { tid } => Some(format!(
                        "{tid}: {:?} {:?}",
                        std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")),
                        std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
                    )),
                    _ => None,
                })
                .collect();
            panic!("hung: still kept after {:?}: {kept:?}; threads {threads:?}", tomada_test_support::HANG_GUARD);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    wait_until("the library's unmapping", || !mapped(name));
}

/// A thread older than the library, ending, runs the library's `pthread_key`
/// destructor, which blocks: glibc cleared the thread's value just before the call,
/// so no thread holds one, and the thread predates the library; its stack is looked
/// at all the same (a live thread with the key's sequence number and no value may be
/// in the destructor), and the library stays mapped, at its drop and at every look
/// after, until the destructor has returned.
#[test]
fn a_key_destructor_running_on_an_old_thread_keeps_the_library_mapped() {
    let name = "hazard-key-slow.so";
    let (_dir, marker, path) = marked_copy(name, "blocking");
    let (told, tid) = std::sync::mpsc::channel();
    let (go, going) = std::sync::mpsc::channel::<()>();
    let (handed, plugin) = std::sync::mpsc::channel();
    let holder = {
        let (path, which) = (path.clone(), format!("key-slow:{}", marker.display()));
        std::thread::spawn(move || {
            // SAFETY: `gettid` has no preconditions.
            told.send(unsafe { libc::gettid() } as u32).unwrap();
            going.recv().unwrap();
            let plugin = Loader::new().load::<dyn Living>(&path).unwrap();
            assert!(plugin.hazard(&which).unwrap());
            handed.send(plugin).unwrap();
            // Ends: the key's destructor runs here, and blocks.
        })
    };
    let holder_tid = tid.recv().unwrap();
    wait_until_older(holder_tid);
    go.send(()).unwrap();
    let plugin = plugin.recv().unwrap();
    wait_until("the destructor's start", || marker.with_extension("in").exists());
    drop(plugin);
    let report = || pinned_libraries().into_iter().find(|r| r.path == path);
    let kept = report().expect("kept mapped while its key destructor runs");
    assert!(kept.hazards.contains(&Hazard::Thread { tid: holder_tid }), "{kept:?}");
    assert!(mapped(name));
    assert!(!look_again().contains(&path), "unloaded while its key destructor runs");
    assert!(mapped(name) && report().is_some());
    std::fs::remove_file(&marker).unwrap();
    holder.join().unwrap();
    assert!(marker.with_extension("out").exists(), "the destructor returned");
    wait_until_unloaded(&path, name);
}

/// A library kept for its signal handler is kept for good: here the handler is still
/// running on a thread older than the library when the host replaces it, which no
/// look (at threads started since the library) sees; no later look unloads it,
/// before or after the handler returns.
#[test]
fn a_library_kept_for_a_signal_handler_is_kept_for_good() {
    let name = "hazard-signal-slow.so";
    let (_dir, marker, path) = marked_copy(name, "handling");
    let (told, tid) = std::sync::mpsc::channel();
    let (end, ending) = std::sync::mpsc::channel::<()>();
    let old = std::thread::spawn(move || {
        // SAFETY: `gettid` has no preconditions.
        told.send(unsafe { libc::gettid() } as u32).unwrap();
        // Waits (the signal's handler runs in here) until told to end.
        let _ = ending.recv();
    });
    let old_tid = tid.recv().unwrap();
    wait_until_older(old_tid);
    let plugin = Loader::new().load::<dyn Living>(&path).unwrap();
    assert!(plugin.hazard(&format!("signal-slow:{}", marker.display())).unwrap());
    drop(plugin);
    let report = || pinned_libraries().into_iter().find(|r| r.path == path);
    let kept = report().expect("kept mapped for its handler");
    assert!(kept.hazards.contains(&Hazard::SignalHandler { signal: libc::SIGUSR1 }), "{kept:?}");
    use std::os::unix::thread::JoinHandleExt;
    // SAFETY: sends SIGUSR1 to that thread, whose handler is the plugin's.
    assert_eq!(unsafe { libc::pthread_kill(old.as_pthread_t(), libc::SIGUSR1) }, 0);
    wait_until("the handler's start", || marker.with_extension("in").exists());
    // SAFETY: the host replaces the handler (no other test uses SIGUSR1, and nothing
    // sends it again).
    unsafe { libc::signal(libc::SIGUSR1, libc::SIG_IGN) };
    assert!(!look_again().contains(&path), "unloaded while its handler runs");
    assert!(mapped(name) && report().is_some());
    std::fs::remove_file(&marker).unwrap();
    wait_until("the handler's end", || marker.with_extension("out").exists());
    drop(end);
    old.join().unwrap();
    assert!(!look_again().contains(&path), "a library kept for a handler is kept for good");
    assert!(mapped(name) && report().is_some());
}

/// A kept library is looked at again while the process is out of descriptors, so
/// `/proc/self/task` cannot be listed: it stays kept (its thread runs its code for
/// good), with the reason, rather than passed over. Run in a process of its own (the
/// test runs itself): the descriptors used up would fail every other test.
#[test]
fn a_kept_library_stays_kept_when_its_threads_cannot_be_looked_at() {
    const ALONE: &str = "TOMADA_TEST_OUT_OF_DESCRIPTORS";
    const TEST: &str = "hazards::a_kept_library_stays_kept_when_its_threads_cannot_be_looked_at";
    if std::env::var_os(ALONE).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{text}");
        assert!(text.contains("kept while /proc could not be read"), "{text}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = "hazard-raw-thread.so";
    let path = copy_to(&living("1.0.0"), dir.path(), name);
    let plugin = Loader::new().load::<dyn Living>(&path).unwrap();
    assert!(plugin.hazard("raw-thread").unwrap());
    drop(plugin);
    let report = || pinned_libraries().into_iter().find(|r| r.path == path);
    assert!(report().expect("kept for its thread").hazards.iter().any(|h| matches!(h, Hazard::Thread { .. })));
    assert!(!look_again().contains(&path));
    // Every descriptor used up, under a lower limit (put back below).
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: reads this process's limit into `limit`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    let low = libc::rlimit { rlim_cur: limit.rlim_cur.min(512), rlim_max: limit.rlim_max };
    // SAFETY: lowers the soft limit of this process (alone in it: see above).
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
    let mut files = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        files.push(file);
    }
    let unloaded = tomada_host::unload_pinned_libraries();
    drop(files);
    // SAFETY: puts the limit back.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    assert!(!unloaded.contains(&path), "unloaded while its threads could not be looked at");
    let kept = report().expect("still kept");
    assert!(kept.hazards.iter().any(|h| matches!(h, Hazard::NotLookedAt { .. })), "{kept:?}");
    assert!(mapped(name));
    eprintln!("kept while /proc could not be read: {kept:?}");
}

/// A plugin that starts (and joins) a thread in a call made on a host thread that
/// lives on: starting it, the plugin's `std` registers thread-local destructors of
/// the plugin on the calling thread (`__cxa_thread_atexit_impl`), and glibc keeps the
/// library loaded after `dlclose` until that thread has exited. It is reported
/// (`Hazard::ThreadLocalDestructor`), its sealed copy stays open while it is mapped,
/// and once the host thread has ended, `unload_pinned_libraries` unloads it and lets
/// its copy go. The host thread is one of the test's own, on a stack of its own
/// (larger than glibc keeps for reuse: no stale word of another plugin on it), like
/// the main thread of a host, or a long-lived worker.
#[test]
fn a_library_glibc_keeps_for_a_thread_local_destructor_is_reported_and_unloaded_after() {
    let name = "hazard-spawn-join.so";
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(&living("1.0.0"), dir.path(), name);
    let (end, ending) = std::sync::mpsc::channel::<()>();
    let (told, tid) = std::sync::mpsc::channel();
    let host = {
        let path = path.clone();
        std::thread::Builder::new()
            .stack_size(96 << 20)
            .spawn(move || {
                let plugin = Loader::new().load::<dyn Living>(&path).unwrap();
                assert!(plugin.hazard("spawn-join").unwrap());
                drop(plugin);
                // SAFETY: `gettid` has no preconditions.
                told.send(unsafe { libc::gettid() } as u32).unwrap();
                // Lives on (the call's thread-local destructors with it) until told.
                let _ = ending.recv();
            })
            .unwrap()
    };
    let host_tid = tid.recv().unwrap();
    let report = || pinned_libraries().into_iter().find(|r| r.path == path);
    // Reported at its drop; or, if a stale word of another plugin on a thread started
    // since kept it first (the error on the side of keeping it), once a later look
    // closed it and glibc kept it.
    wait_until("its report for a thread-local destructor", || {
        look_again();
        report().is_some_and(|r| r.hazards.contains(&Hazard::ThreadLocalDestructor))
    });
    assert!(mapped(name), "reported but unmapped");
    assert!(held(name), "the name of a library glibc keeps was let go");
    // However often it is looked at again, it stays while the host thread lives.
    assert!(!look_again().contains(&path), "unloaded while the thread holding its destructors lives");
    assert!(report().is_some() && mapped(name));
    drop(end);
    host.join().unwrap();
    assert!(!std::path::Path::new(&format!("/proc/self/task/{host_tid}")).exists());
    wait_until("its unloading once the host thread ended", || {
        look_again();
        report().is_none()
    });
    // (As above: another test's look may be letting its copy go right now.)
    wait_until("the library's unmapping, and its copy closed", || !mapped(name) && !held(name));
}

/// The same through reloads (`Reloadable`), all on one host thread that lives on:
/// every old version whose instance started a thread is kept by glibc, and each is
/// reported, mapped, and its sealed copy's descriptor open (one per version); once
/// that thread has ended, all of them are unloaded and every copy's descriptor is
/// closed (before, each stayed open for good: one descriptor per reload).
#[test]
fn versions_reloaded_on_a_long_lived_thread_are_reported_then_all_unloaded_after_it_ends() {
    const RELOADS: usize = 10;
    let name = "hazard-reloaded.so";
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(&living("1.0.0"), dir.path(), name);
    let held_copies = || {
        let wanted = format!("/memfd:tomada:{name}");
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().starts_with(&wanted)))
            .count()
    };
    let (end, ending) = std::sync::mpsc::channel::<()>();
    let (told, reloaded) = std::sync::mpsc::channel();
    let host = {
        let path = path.clone();
        std::thread::Builder::new()
            .stack_size(96 << 20)
            .spawn(move || {
                let plugin: tomada_host::Reloadable<dyn Living> = Loader::new().reloadable(&path).unwrap();
                for _ in 0..RELOADS {
                    assert!(plugin.current().hazard("spawn-join").unwrap());
                    plugin.reload().unwrap();
                }
                told.send(()).unwrap();
                let _ = ending.recv();
                // The version serving started no thread: it goes at its drop.
                drop(plugin);
            })
            .unwrap()
    };
    reloaded.recv().unwrap();
    let reports = || pinned_libraries().into_iter().filter(|r| r.path == path).collect::<Vec<_>>();
    wait_until("every old version reported for a thread-local destructor", || {
        look_again();
        let reports = reports();
        reports.len() == RELOADS && reports.iter().all(|r| r.hazards == [Hazard::ThreadLocalDestructor])
    });
    assert_eq!(tomada_test_support::mapped_copies(name), RELOADS + 1, "every old version, and the one serving");
    assert_eq!(held_copies(), RELOADS + 1, "one sealed copy open per version mapped");
    drop(end);
    host.join().unwrap();
    wait_until("every version's unloading once the host thread ended", || {
        look_again();
        reports().is_empty()
    });
    // (A look on another test's thread may have taken one off the list and be
    // letting its copy go right now: waited for, not timed.)
    wait_until("every version's unmapping, and every copy closed", || {
        tomada_test_support::mapped_copies(name) == 0 && held_copies() == 0
    });
}
