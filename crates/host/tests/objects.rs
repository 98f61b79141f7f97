//! Trait objects across a real library boundary (`tests/plugins/indexer`): where the
//! library or the plugin's process lives as long as its objects, every drop order,
//! crashes while objects live, and every kind of handle failing with an error when its
//! plugin panics or its process is killed. What objects and callbacks do in every mode
//! (in-process, isolated, remote) is in the conformance suite (`conformance.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use indexer_api::{Host, Indexer, Level, Visitor};
use tomada_host::{CallError, Plugin};
use tomada_test_support::cdylib;

/// A host service that records what the plugin logs, and says when it is dropped.
pub(crate) struct Recorder {
    pub(crate) lines: Mutex<Vec<(Level, String)>>,
    config: Vec<(&'static str, &'static str)>,
    dropped: Arc<AtomicBool>,
    pub(crate) panic_on_log: bool,
}

impl Recorder {
    pub(crate) fn new(config: Vec<(&'static str, &'static str)>) -> (Arc<AtomicBool>, Self) {
        let dropped = Arc::new(AtomicBool::new(false));
        let r = Recorder { lines: Mutex::default(), config, dropped: Arc::clone(&dropped), panic_on_log: false };
        (dropped, r)
    }
}

impl Host for Recorder {
    fn log(&self, level: Level, message: &str) {
        assert!(!self.panic_on_log, "the host refuses to log `{message}`");
        self.lines.lock().unwrap().push((level, message.to_owned()));
    }
    fn config(&self, key: &str) -> Option<String> {
        self.config.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// A plugin loaded from a copy of its own named `name`, so `/proc/self/maps` shows
/// exactly when this copy is unloaded, whatever other tests load. Each test names its
/// copy differently: the sealed copy's mapping is named by the file name alone
/// (`/memfd:tomada:<name>`), so two tests with the same name, at once, each saw the
/// other's copy still mapped (about one run in two beside two CPU hogs).
#[cfg(target_os = "linux")]
fn load_copy(dir: &std::path::Path, name: &str) -> (Plugin<dyn Indexer>, std::path::PathBuf) {
    let copy = tomada_test_support::copy_to(&cdylib("indexer"), dir, name);
    (tomada_host::load::<dyn Indexer>(&copy).unwrap(), copy)
}

/// Whether the library of `path` is mapped: by its path, or (Linux) as the sealed
/// copy it is loaded from (`/memfd:tomada:<file name> (deleted)`).
#[cfg(target_os = "linux")]
pub(crate) fn mapped(path: &std::path::Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let name = path.to_string_lossy();
    let sealed = format!("/memfd:tomada:{} ", path.file_name().unwrap().to_string_lossy());
    maps.lines().any(|l| l.ends_with(name.as_ref()) || l.contains(&sealed))
}

/// Asserts that the library of `path` is unloaded, its last handle and object gone:
/// unmapped at once, or kept only for threads other than this one, and unloaded by a
/// later look once they are done. (Tests run beside each other: another test's
/// thread, started since the load on a stack glibc reused, can hold a word of a plugin
/// once mapped at the same addresses; the look keeps a library for any such word, on
/// the side of not crashing, until that thread has gone on or ended.) Anything else
/// that keeps it fails: this thread, a key destructor, a signal handler, what could
/// not be looked at, or being mapped while not reported kept.
#[cfg(target_os = "linux")]
pub(crate) fn assert_unloaded(path: &std::path::Path, what: &str) {
    // SAFETY: `gettid` has no preconditions.
    let me = unsafe { libc::gettid() } as u32;
    let mut last = None;
    tomada_test_support::wait_until(&format!("{what} (kept for threads that did not end)"), || {
        let report = tomada_host::pinned_libraries().into_iter().find(|r| r.path == path);
        // (Looked at once more: another test's unload may have taken it off the list
        // and be unloading it right now.)
        if !mapped(path) {
            return true;
        }
        let Some(report) = report.or_else(|| {
            let again = tomada_host::pinned_libraries().into_iter().find(|r| r.path == path);
            assert!(again.is_some() || !mapped(path), "{what}: still mapped, and not reported kept");
            again
        }) else {
            return true;
        };
        for hazard in &report.hazards {
            assert!(matches!(*hazard, tomada_host::Hazard::Thread { tid } if tid != me), "{what}: kept for {report:?}");
        }
        if last.as_ref() != Some(&report) {
            eprintln!("{what}: kept for a while for {report:?}");
            last = Some(report);
        }
        // From a new thread on a stack of its own, larger than glibc keeps for reuse.
        std::thread::Builder::new()
            .stack_size(96 << 20)
            .spawn(tomada_host::unload_pinned_libraries)
            .unwrap()
            .join()
            .unwrap();
        !mapped(path)
    });
}

type Load = fn() -> Plugin<dyn Indexer>;

/// Waits for `done` (at most `HANG_GUARD`: a guard, not a measure of speed), running
/// `meanwhile` between looks (a call, so the host reads what an isolated plugin sent
/// between calls).
#[cfg_attr(not(unix), allow(dead_code))] // (used by the isolated tests)
fn eventually(done: impl Fn() -> bool, meanwhile: impl Fn()) {
    let until = std::time::Instant::now() + tomada_test_support::HANG_GUARD;
    while !done() && std::time::Instant::now() < until {
        meanwhile();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

fn in_process() -> Plugin<dyn Indexer> {
    tomada_host::load::<dyn Indexer>(cdylib("indexer")).unwrap()
}

#[cfg(unix)]
fn isolated() -> Plugin<dyn Indexer> {
    use tomada_host::isolate::Mode;
    tomada_host::load_with::<dyn Indexer>(cdylib("indexer"), &Mode::Isolated(crate::isolate::isolation())).unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn an_object_keeps_its_library_loaded_after_the_plugin_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (plugin, copy) = load_copy(dir.path(), "libindexer_kept_by_objects.so");
    plugin.index("kiwi kale", &Recorder::new(vec![]).1).unwrap();
    let cursor = plugin.open("k").unwrap();
    let fork = cursor.fork().unwrap();
    drop(plugin);
    assert!(mapped(&copy), "a cursor still needs the library");
    assert_eq!(cursor.next(), Ok(Some("kiwi".into())));
    drop(cursor);
    assert!(mapped(&copy), "the fork still needs it");
    assert_eq!(fork.next(), Ok(Some("kiwi".into())));
    drop(fork);
    assert_unloaded(&copy, "unloaded with the last object");
}

#[cfg(target_os = "linux")]
#[test]
fn objects_dropped_on_other_threads_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let (plugin, copy) = load_copy(dir.path(), "libindexer_any_order.so");
    plugin.index("a b c d e f g h", &Recorder::new(vec![]).1).unwrap();
    let cursors = plugin.cursors().unwrap();
    assert_eq!(cursors.len(), 8);
    let plugin = Arc::new(plugin);
    std::thread::scope(|s| {
        let threads: Vec<_> = cursors
            .into_iter()
            .enumerate()
            .map(|(i, cursor)| {
                let plugin = Arc::clone(&plugin);
                // Stacks of 16 MiB: more than glibc caches (40 MiB in all) and over 4×
                // the 2 MiB another test's new thread asks for, which glibc would not
                // give it. A new thread on a stack reused from these would hold the
                // plugin's addresses in its unwritten slots, and the unload's look at
                // threads younger than the library (another test's, running beside this
                // one) would keep the library mapped for good (seen beside two CPU
                // hogs: 1 run in 15 of `isolate:: objects::`).
                std::thread::Builder::new().stack_size(16 << 20).spawn_scoped(s, move || {
                    assert!(cursor.next().unwrap().is_some());
                    // Half drop the plugin handle first, half the cursor first.
                    if i % 2 == 0 {
                        drop(plugin);
                        drop(cursor);
                    } else {
                        drop(cursor);
                        drop(plugin);
                    }
                })
            })
            .collect::<std::io::Result<Vec<_>>>()
            .unwrap();
        // Joined one by one (`pthread_join`): each thread has exited, its thread-local
        // destructors (some the plugin's) run. The scope's own wait ends as soon as
        // each closure returns, while a thread may still be running the plugin's
        // destructors: glibc then keeps the library mapped past the last drop below,
        // or the unload finds that thread in its code and keeps it until a later look.
        for thread in threads {
            thread.join().unwrap();
        }
    });
    assert!(mapped(&copy));
    drop(plugin);
    assert_unloaded(&copy, "unloaded once every handle and object is gone");
}

/// Isolated: the plugin's process lives while any object of it does, and a crash
/// fails every handle it owned with `Crashed`; a restarted process does not pretend
/// to have them, and the host's objects it held are dropped.
#[cfg(unix)]
#[test]
fn isolated_objects_live_with_their_process_and_fail_with_it() {
    use crate::isolate::is_dead;
    let plugin = isolated();
    plugin.index("lime lemon", &Recorder::new(vec![]).1).unwrap();
    let pid = plugin.process_id().unwrap();
    let cursor = plugin.open("l").unwrap();
    let (dropped, host) = Recorder::new(vec![]);
    plugin.attach(Box::new(host)).unwrap();
    drop(plugin);
    assert!(dropped.load(Ordering::SeqCst), "the instance went with its handle, and so did what it held");
    assert!(!is_dead(pid), "the cursor keeps the plugin's process");
    assert_eq!(cursor.next(), Ok(Some("lime".into())));
    drop(cursor);
    eventually(|| is_dead(pid), || ());
    assert!(is_dead(pid), "the process ends with its last object");

    let plugin = isolated();
    plugin.index("lime lemon", &Recorder::new(vec![]).1).unwrap();
    let cursor = plugin.open("l").unwrap();
    let (dropped, host) = Recorder::new(vec![]);
    plugin.attach(Box::new(host)).unwrap();
    let pid = plugin.process_id().unwrap();
    // SAFETY: `kill` takes plain integers; the group is the plugin process's own (its whole tree).
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    while !crate::isolate::is_dead(pid) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let err = cursor.next().unwrap_err();
    assert!(matches!(err, CallError::Crashed { .. }), "{err:?}");
    // The plugin restarts; the old cursor stays dead.
    assert_eq!(plugin.count(), Ok(0), "a new process, a new (empty) index");
    assert!(matches!(cursor.next(), Err(CallError::Crashed { .. })));
    assert!(dropped.load(Ordering::SeqCst), "the host's objects the crashed process held are dropped");
}

/// Isolated, every drop order from several threads: the process lives until the last
/// handle or object is gone, whichever order they drop in.
#[cfg(unix)]
#[test]
fn isolated_objects_dropped_on_other_threads_in_any_order() {
    let plugin = isolated();
    plugin.index("a b c d e f g h", &Recorder::new(vec![]).1).unwrap();
    let pid = plugin.process_id().unwrap();
    let cursors = plugin.cursors().unwrap();
    assert_eq!(cursors.len(), 8);
    let (dropped, host) = Recorder::new(vec![]);
    plugin.attach(Box::new(host)).unwrap();
    let plugin = Arc::new(plugin);
    std::thread::scope(|s| {
        for (i, cursor) in cursors.into_iter().enumerate() {
            let plugin = Arc::clone(&plugin);
            s.spawn(move || {
                assert!(cursor.next().unwrap().is_some());
                if i % 2 == 0 {
                    drop(plugin);
                    assert_eq!(cursor.fork().unwrap().next(), Ok(None), "a fork of a spent one-word cursor is empty");
                    drop(cursor);
                } else {
                    drop(cursor);
                    assert_eq!(plugin.flush(), Ok(8));
                    drop(plugin);
                }
            });
        }
    });
    assert!(!crate::isolate::is_dead(pid));
    assert!(!dropped.load(Ordering::SeqCst));
    drop(plugin);
    eventually(|| crate::isolate::is_dead(pid), || ());
    assert!(crate::isolate::is_dead(pid), "the process ends once every handle and object is gone");
    assert!(dropped.load(Ordering::SeqCst));
}

/// A callback whose channel dies (the plugin's process is killed during it) fails the
/// outer call, and the host goes on.
#[cfg(unix)]
#[test]
fn a_crash_during_a_callback_fails_the_outer_call() {
    struct Killer(u32);
    impl Host for Killer {
        fn log(&self, _: Level, _: &str) {
            // SAFETY: `kill` takes plain integers; the group is the plugin process's own (its whole tree).
            unsafe { libc::kill(-(self.0 as i32), libc::SIGKILL) };
        }
        fn config(&self, _: &str) -> Option<String> {
            None
        }
    }
    let plugin = isolated();
    let err = plugin.index("x", &Killer(plugin.process_id().unwrap())).unwrap_err();
    assert!(matches!(err, CallError::Crashed { .. }), "{err:?}");
    assert_eq!(plugin.index("y z", &Recorder::new(vec![]).1), Ok(2));
}

#[test]
fn the_description_names_every_object_contract() {
    let i = tomada_host::inspect(cdylib("indexer")).unwrap();
    let sigs: Vec<String> = i.manifest.contract.methods.iter().map(ToString::to_string).collect();
    assert_eq!(sigs[0], "fn index(&self, &str, &dyn indexer_api::Host) -> u64");
    assert_eq!(sigs[4], "fn share(&self, Arc<dyn indexer_api::Host>) -> Arc<dyn indexer_api::Cursor>");
    let defs: Vec<String> = i.manifest.contract.types.iter().map(ToString::to_string).collect();
    assert!(defs.iter().any(|d| d == "trait indexer_api::Cursor (ABI 1) { fn next(&self) -> Option<String>; fn fork(&self) -> Box<dyn indexer_api::Cursor> }"), "{defs:#?}");
    assert!(
        defs.iter().any(|d| d.starts_with(
            "trait indexer_api::Visitor (ABI 1) { fn visit(&self, &str, &dyn indexer_api::Indexer) -> bool }"
        )),
        "{defs:#?}"
    );
}

// ---------------------------------------------------------------------------------
// Handles: every object the host gets back from a plugin is a `Handle` whose methods
// return `Result<_, CallError>`. When the plugin fails — it panics (both modes), or its
// process is killed (isolated) — every kind of handle says so with an error, and no
// host thread panics. Each test below runs three ways: an in-process plugin that
// panics, an isolated one that panics, an isolated one whose process is killed.

/// How the plugin fails.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `Indexer::sabotage`: every method of the instance and of its objects panics.
    Panic,
    /// SIGKILL to the plugin's process (isolated only).
    #[cfg_attr(not(unix), allow(dead_code))]
    Kill,
}

/// Makes `plugin` fail as `fault` says.
fn fail(plugin: &tomada_host::Handle<dyn Indexer>, pid: Option<u32>, fault: Fault) {
    match fault {
        Fault::Panic => plugin.sabotage().unwrap(),
        Fault::Kill => kill(pid.expect("an isolated plugin")),
    }
}

/// SIGKILL to the process group of `pid`, and waits until it is gone (an event this
/// test causes; no deadline).
fn kill(pid: u32) {
    #[cfg(unix)]
    {
        // SAFETY: `kill` takes plain integers; the group is the plugin process's own.
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        while !crate::isolate::is_dead(pid) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// Asserts that a call failed as `fault` makes calls fail: the plugin's panic, or
/// its crashed process.
#[track_caller]
fn failed<T: std::fmt::Debug>(fault: Fault, result: Result<T, CallError>, what: &str) {
    match (&result, fault) {
        (Err(CallError::Panicked { message }), Fault::Panic) if message.contains("sabotaged") => {}
        (Err(CallError::Crashed { .. }), Fault::Kill) => {}
        _ => panic!("{what} after {fault:?}: {result:?}"),
    }
}

/// A plugin with four words indexed, and its process id if isolated.
fn indexed(load: Load) -> (Plugin<dyn Indexer>, Option<u32>) {
    let plugin = load();
    plugin.index("apple avocado banana apricot", &Recorder::new(vec![]).1).unwrap();
    let pid = plugin.process_id();
    (plugin, pid)
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
}

macro_rules! on_every_fault {
    ($($test:ident),* $(,)?) => {
        mod when_the_plugin_panics {
            mod in_process {
                $(#[test] fn $test() { super::super::$test(super::super::in_process, super::super::Fault::Panic) })*
            }
            #[cfg(unix)]
            mod isolated {
                $(#[test] fn $test() { super::super::$test(super::super::isolated, super::super::Fault::Panic) })*
            }
        }
        #[cfg(unix)]
        mod when_its_process_is_killed {
            $(#[test] fn $test() { super::$test(super::isolated, super::Fault::Kill) })*
        }
    };
}

on_every_fault!(
    a_host_written_the_natural_way_gets_errors,
    returned_objects_fail_with_an_error,
    objects_from_objects_fail_with_an_error,
    objects_in_options_results_and_vecs_fail_with_an_error,
    objects_from_an_async_method_fail_with_an_error,
    handles_passed_back_to_a_plugin_fail_its_call_not_the_host,
    a_host_callback_reaches_the_handle_of_the_object_it_was_given,
);

/// The held-out host of issue 17, as a user writes it: `?` on the plugin's method and
/// on the handle's.
fn a_host_written_the_natural_way_gets_errors(load: Load, fault: Fault) {
    fn words(idx: &Plugin<dyn Indexer>, prefix: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let cursor = idx.open(prefix)?;
        let mut words = Vec::new();
        while let Some(w) = cursor.next()? {
            words.push(w);
        }
        Ok(words)
    }
    let (idx, pid) = indexed(load);
    assert_eq!(words(&idx, "a").unwrap(), ["apple", "avocado", "apricot"]);
    let cursor = idx.open("b").unwrap();
    fail(&idx, pid, fault);
    failed(fault, cursor.next(), "Cursor::next");
    if let Fault::Panic = fault {
        let err = words(&idx, "a").unwrap_err();
        assert!(err.to_string().contains("sabotaged: `Indexer::open`"), "{err}");
    }
}

/// `Box<dyn Cursor>` and `Arc<dyn Cursor>` results.
fn returned_objects_fail_with_an_error(load: Load, fault: Fault) {
    let (plugin, pid) = indexed(load);
    let cursor = plugin.open("a").unwrap();
    let shared = plugin.share(Arc::new(Recorder::new(vec![("prefix", "b")]).1)).unwrap();
    assert_eq!(cursor.next(), Ok(Some("apple".into())));
    fail(&plugin, pid, fault);
    failed(fault, cursor.next(), "Cursor::next of a returned Box");
    failed(fault, cursor.fork(), "Cursor::fork of a returned Box");
    failed(fault, shared.next(), "Cursor::next of a returned Arc");
    // Failed handles drop quietly.
    drop((cursor, shared));
}

/// A handle's method that returns an object gives a handle; it fails as well.
fn objects_from_objects_fail_with_an_error(load: Load, fault: Fault) {
    let (plugin, pid) = indexed(load);
    let cursor = plugin.open("a").unwrap();
    let fork = cursor.fork().unwrap();
    let grandchild = fork.fork().unwrap();
    assert_eq!(grandchild.next(), Ok(Some("apple".into())));
    fail(&plugin, pid, fault);
    failed(fault, fork.next(), "Cursor::next of a fork");
    failed(fault, fork.fork(), "Cursor::fork of a fork");
    failed(fault, grandchild.next(), "Cursor::next of a fork of a fork");
}

/// `Option<Box<dyn Cursor>>`, `Result<Box<dyn Cursor>, String>` and
/// `Vec<Box<dyn Cursor>>` results are handles inside.
fn objects_in_options_results_and_vecs_fail_with_an_error(load: Load, fault: Fault) {
    let (plugin, pid) = indexed(load);
    assert!(plugin.find("kiwi").unwrap().is_none());
    assert_eq!(plugin.open_strict("k").unwrap().err().as_deref(), Some("no word starts with `k`"));
    let found = plugin.find("banana").unwrap().expect("a cursor");
    let strict = plugin.open_strict("av").unwrap().expect("a cursor");
    let all = plugin.cursors().unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[3].next(), Ok(Some("apricot".into())));
    fail(&plugin, pid, fault);
    failed(fault, found.next(), "Cursor::next of an Option's object");
    failed(fault, strict.next(), "Cursor::next of a Result's object");
    for (i, cursor) in all.iter().enumerate() {
        failed(fault, cursor.next(), &format!("Cursor::next of a Vec's object {i}"));
    }
    if let Fault::Panic = fault {
        failed(fault, plugin.find("banana"), "Indexer::find");
        failed(fault, plugin.cursors(), "Indexer::cursors");
    }
}

/// An `async fn` returning `Box<dyn Cursor>` gives a handle too.
fn objects_from_an_async_method_fail_with_an_error(load: Load, fault: Fault) {
    let (plugin, pid) = indexed(load);
    let later = block_on(plugin.open_later("ap")).unwrap();
    assert_eq!(later.next(), Ok(Some("apple".into())));
    fail(&plugin, pid, fault);
    failed(fault, later.next(), "Cursor::next of an async method's object");
    failed(fault, later.fork(), "Cursor::fork of an async method's object");
    if let Fault::Panic = fault {
        failed(fault, block_on(plugin.open_later("ap")), "Indexer::open_later");
    }
}

/// A handle goes back to a plugin as the trait object (`Box::new(handle)` for a
/// `Box<dyn Cursor>` argument, `&handle` for a `&dyn Cursor`). When its maker has
/// failed, the plugin using it gets a panic from its call (its trait call through the
/// handle panics, inside that plugin), which the host gets as `CallError::Panicked`
/// naming the first failure; the plugin using it, and the host, go on.
fn handles_passed_back_to_a_plugin_fail_its_call_not_the_host(load: Load, fault: Fault) {
    let (maker, pid) = indexed(load);
    let user = load();
    let given = maker.open("a").unwrap();
    let lent = maker.open("b").unwrap();
    assert_eq!(user.peek(&lent), Ok(Some("banana".into())));
    assert_eq!(user.drain(Box::new(maker.open("av").unwrap())), Ok(vec!["avocado".to_owned()]));
    fail(&maker, pid, fault);
    let cause = match fault {
        Fault::Panic => "sabotaged: `Cursor::next`",
        Fault::Kill => "the plugin's process crashed",
    };
    for (what, result) in [("drain", user.drain(Box::new(given)).map(|_| ())), ("peek", user.peek(&lent).map(|_| ()))] {
        let Err(CallError::Panicked { message }) = &result else { panic!("Indexer::{what}: {result:?}") };
        assert!(message.contains("a call to `Cursor::next` through a tomada object failed"), "{what}: {message}");
        assert!(message.contains(cause), "{what}: {message}");
    }
    assert_eq!(user.count(), Ok(0), "the plugin that used the handle goes on");
}

/// A host callback gets the plugin's objects as trait objects (`&dyn Indexer` here);
/// `tomada::handle` reaches their handle, whose calls fail with an error.
fn a_host_callback_reaches_the_handle_of_the_object_it_was_given(load: Load, fault: Fault) {
    struct Probe {
        fault: Fault,
        pid: Option<u32>,
        results: Mutex<Vec<(&'static str, Result<(), CallError>)>>,
    }
    impl Visitor for Probe {
        fn visit(&self, _: &str, indexer: &dyn Indexer) -> bool {
            let handle = tomada_host::handle(indexer).expect("the plugin's object, from the other side");
            assert_eq!(handle.count(), Ok(4), "it works before the fault");
            fail(handle, self.pid, self.fault);
            let mut results = self.results.lock().unwrap();
            results.push(("Indexer::count", handle.count().map(drop)));
            results.push(("Indexer::open", handle.open("a").map(drop)));
            false
        }
    }
    let (plugin, pid) = indexed(load);
    let probe = Probe { fault, pid, results: Mutex::default() };
    let walked = plugin.walk(&probe);
    match fault {
        // The walk itself was under way before the sabotage: it ends normally.
        Fault::Panic => assert_eq!(walked, Ok(1)),
        Fault::Kill => assert!(matches!(walked, Err(CallError::Crashed { .. })), "{walked:?}"),
    }
    let results = probe.results.into_inner().unwrap();
    assert_eq!(results.len(), 2);
    for (what, result) in results {
        failed(fault, result, what);
    }
    // A host object has no handle: its calls do not cross.
    let local = Recorder::new(vec![]).1;
    assert!(tomada_host::handle::<dyn Host>(&local).is_none());
}

/// Lanes: six threads at once through four lanes (and, when none is free, the main
/// rings), each indexing with a host service of its own that the plugin calls back
/// during the call, and walking with a visitor that calls the plugin again from
/// within the callback (re-entrant, through the same lane): every callback reaches
/// its own caller's object, every answer its own caller.
#[cfg(unix)]
#[test]
fn callbacks_and_calls_within_them_from_many_threads_through_lanes() {
    use tomada_host::isolate::Mode;
    struct Counter(Mutex<Vec<u64>>);
    impl Visitor for Counter {
        fn visit(&self, _: &str, indexer: &dyn Indexer) -> bool {
            let count = tomada_host::handle(indexer).expect("the plugin's object").count().unwrap();
            let mut seen = self.0.lock().unwrap();
            seen.push(count);
            seen.len() < 3
        }
    }
    let isolation = crate::isolate::isolation().lanes(4);
    let plugin = tomada_host::load_with::<dyn Indexer>(cdylib("indexer"), &Mode::Isolated(isolation)).unwrap();
    const THREADS: u64 = 6;
    const ROUNDS: u64 = 20;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let plugin = &plugin;
            s.spawn(move || {
                for round in 0..ROUNDS {
                    let recorder = Recorder::new(vec![]).1;
                    let (a, b) = (format!("t{t}r{round}a"), format!("t{t}r{round}b"));
                    assert_eq!(plugin.index(&format!("{a} {b}"), &recorder), Ok(2));
                    let lines = recorder.lines.lock().unwrap().clone();
                    let expected = [
                        (Level::Debug, format!("indexing `{a}`")),
                        (Level::Debug, format!("indexing `{b}`")),
                        (Level::Info, "indexed 2 words".to_owned()),
                    ];
                    assert_eq!(lines, expected, "the callbacks of thread {t}'s call reached its own object");
                    let counter = Counter(Mutex::default());
                    let walked = plugin.walk(&counter).unwrap();
                    let seen = counter.0.into_inner().unwrap();
                    assert_eq!(walked, seen.len() as u64);
                    assert!((2..=3).contains(&walked), "{walked}");
                    assert!(seen.iter().all(|&n| n >= 2 * (round + 1)), "{seen:?}");
                }
            });
        }
    });
    assert_eq!(plugin.count(), Ok(THREADS * ROUNDS * 2));
}

/// A plugin whose process cannot come back (quarantined) fails calls that pass
/// objects with `Quarantined`. (Before: encoding the object needed a channel peer,
/// found none, and panicked the host thread — "a trait object crosses a channel
/// outside any call through it".)
#[cfg(unix)]
#[test]
fn calls_passing_objects_to_a_quarantined_plugin_fail_with_an_error() {
    use tomada_host::isolate::Mode;
    let once = crate::isolate::isolation().crash_budget(1, std::time::Duration::from_secs(3600));
    let plugin = tomada_host::load_with::<dyn Indexer>(cdylib("indexer"), &Mode::Isolated(once)).unwrap();
    let (other, _) = indexed(isolated);
    let cursor = other.open("a").unwrap();
    kill(plugin.process_id().unwrap());
    assert!(matches!(plugin.count(), Err(CallError::Crashed { .. })));
    let quarantined = |what: &str, result: Result<(), CallError>| {
        assert!(matches!(result, Err(CallError::Quarantined { crashes: 1, .. })), "{what}: {result:?}");
    };
    let host = Recorder::new(vec![]).1;
    quarantined("a `&dyn Host` argument", plugin.index("a b", &host).map(drop));
    quarantined("a `Box<dyn Host>` argument", plugin.attach(Box::new(Recorder::new(vec![]).1)));
    quarantined("an `Arc<dyn Host>` argument", plugin.share(Arc::new(Recorder::new(vec![]).1)).map(drop));
    quarantined("a handle given back", plugin.drain(Box::new(other.open("b").unwrap())).map(drop));
    quarantined("a handle lent back", plugin.peek(&cursor).map(drop));
    quarantined("an object result", plugin.open("a").map(drop));
    quarantined("an async object result", block_on(plugin.open_later("a")).map(drop));
    // The other plugin, and the handles it made, are fine.
    assert_eq!(cursor.next(), Ok(Some("apple".into())));
}
