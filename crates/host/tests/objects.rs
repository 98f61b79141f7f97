//! Trait objects across a real library boundary (`tests/plugins/indexer`): host
//! services the plugin calls back during a call and keeps for later, objects the
//! plugin makes that outlive the call and its `Plugin` handle, callbacks that call the
//! plugin again, and every drop order. The same tests run in-process and isolated
//! (the plugin in its own process, objects and callbacks over its channel).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use indexer_api::{Host, Indexer, Level, Visitor};
use tomada_host::{CallError, Plugin};
use tomada_test_support::cdylib;

/// A host service that records what the plugin logs, and says when it is dropped.
struct Recorder {
    lines: Mutex<Vec<(Level, String)>>,
    config: Vec<(&'static str, &'static str)>,
    dropped: Arc<AtomicBool>,
    panic_on_log: bool,
}

impl Recorder {
    fn new(config: Vec<(&'static str, &'static str)>) -> (Arc<AtomicBool>, Self) {
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

/// A plugin loaded from a copy of its own, so `/proc/self/maps` shows exactly when
/// this copy is unloaded, whatever other tests load.
fn load_copy(dir: &std::path::Path) -> (Plugin<dyn Indexer>, std::path::PathBuf) {
    let copy = tomada_test_support::copy_to(&cdylib("indexer"), dir, "libindexer_copy.so");
    (tomada_host::load::<dyn Indexer>(&copy).unwrap(), copy)
}

/// Whether the library of `path` is mapped: by its path, or (Linux) as the sealed
/// copy it is loaded from (`/memfd:tomada:<file name> (deleted)`).
fn mapped(path: &std::path::Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let name = path.to_string_lossy();
    let sealed = format!("/memfd:tomada:{} ", path.file_name().unwrap().to_string_lossy());
    maps.lines().any(|l| l.ends_with(name.as_ref()) || l.contains(&sealed))
}

type Load = fn() -> Plugin<dyn Indexer>;

/// Waits for `done` (at most `HANG_GUARD`: a guard, not a measure of speed), running
/// `meanwhile` between looks (a call, so the host reads what an isolated plugin sent
/// between calls).
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

/// Each test, once per mode.
macro_rules! in_both_modes {
    ($($test:ident),* $(,)?) => {
        mod in_process {
            $(#[test] fn $test() { super::$test(super::in_process) })*
        }
        #[cfg(unix)]
        mod isolated {
            $(#[test] fn $test() { super::$test(super::isolated) })*
        }
    };
}

in_both_modes!(
    the_plugin_calls_back_into_a_host_service_during_a_call,
    a_failing_host_callback_fails_the_outer_call_not_the_host,
    objects_the_plugin_makes_outlive_the_call_and_come_from_objects,
    a_host_service_kept_by_the_plugin_lives_until_the_plugin_lets_go,
    arcs_cross_both_ways,
    callbacks_inside_callbacks_are_re_entrant,
    re_entrant_callbacks_from_several_threads_at_once,
    objects_live_on_after_the_plugin_handle_drops,
);

fn the_plugin_calls_back_into_a_host_service_during_a_call(load: Load) {
    let plugin = load();
    let (_, host) = Recorder::new(vec![("lowercase", "yes")]);
    assert_eq!(plugin.index("Hello Tomada WORLD", &host), Ok(3));
    let lines = host.lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0], (Level::Debug, "indexing `hello`".into()));
    assert_eq!(lines[3], (Level::Info, "indexed 3 words".into()));
    assert_eq!(plugin.count(), Ok(3));
}

fn a_failing_host_callback_fails_the_outer_call_not_the_host(load: Load) {
    let plugin = load();
    let (_, mut host) = Recorder::new(vec![]);
    host.panic_on_log = true;
    let err = plugin.index("a b", &host).unwrap_err();
    let CallError::Panicked { message } = &err else { panic!("{err:?}") };
    assert!(message.contains("a call to `Host::log` through a tomada object failed"), "{message}");
    assert!(message.contains("the host refuses to log `indexing `a``"), "{message}");
    // The plugin is still usable.
    host.panic_on_log = false;
    assert_eq!(plugin.index("c", &host), Ok(1));
}

fn objects_the_plugin_makes_outlive_the_call_and_come_from_objects(load: Load) {
    let plugin = load();
    let (_, host) = Recorder::new(vec![]);
    plugin.index("apple avocado banana apricot", &host).unwrap();
    let cursor = plugin.open("a").unwrap();
    assert_eq!(cursor.next(), Some("apple".into()));
    let fork = cursor.fork();
    assert_eq!(cursor.next(), Some("avocado".into()));
    assert_eq!(fork.next(), Some("avocado".into()));
    assert_eq!(fork.next(), Some("apricot".into()));
    assert_eq!(fork.next(), None);
    let all = plugin.cursors().unwrap();
    let firsts: Vec<_> = all.iter().map(|c| c.next().unwrap()).collect();
    assert_eq!(firsts, ["apple", "avocado", "banana", "apricot"]);
}

fn a_host_service_kept_by_the_plugin_lives_until_the_plugin_lets_go(load: Load) {
    let plugin = load();
    let (dropped, host) = Recorder::new(vec![]);
    let lines = Arc::new(Mutex::new(Vec::new()));
    struct Shared(Arc<Mutex<Vec<String>>>, Recorder);
    impl Host for Shared {
        fn log(&self, _: Level, message: &str) {
            self.0.lock().unwrap().push(message.to_owned());
        }
        fn config(&self, key: &str) -> Option<String> {
            self.1.config(key)
        }
    }
    plugin.attach(Box::new(Shared(Arc::clone(&lines), host))).unwrap();
    assert!(!dropped.load(Ordering::SeqCst), "kept by the plugin after the call");
    plugin.index("x y", &Recorder::new(vec![]).1).unwrap();
    // Several threads use the kept service at once.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| assert_eq!(plugin.flush(), Ok(2)));
        }
    });
    assert_eq!(lines.lock().unwrap().iter().filter(|l| *l == "flushing 2 words").count(), 8);
    assert_eq!(plugin.detach(), Ok(true));
    assert!(dropped.load(Ordering::SeqCst), "released when the plugin drops it");

    // Dropping the plugin drops what it still holds.
    let (dropped, host) = Recorder::new(vec![]);
    plugin.attach(Box::new(host)).unwrap();
    drop(plugin);
    assert!(dropped.load(Ordering::SeqCst));
}

fn arcs_cross_both_ways(load: Load) {
    let plugin = load();
    plugin.index("pear peach plum", &Recorder::new(vec![]).1).unwrap();
    let (dropped, host) = Recorder::new(vec![("prefix", "pe")]);
    let host: Arc<dyn Host> = Arc::new(host);
    let cursor = plugin.share(Arc::clone(&host)).unwrap();
    let again = Arc::clone(&cursor);
    assert_eq!(cursor.next(), Some("pear".into()));
    assert_eq!(again.next(), Some("peach".into()));
    assert_eq!(cursor.next(), None);
    drop(host);
    assert!(dropped.load(Ordering::SeqCst), "the plugin let go of its clone at the end of the call");
}

/// The host's visitor calls the plugin again from inside the plugin's call:
/// host → plugin → host → plugin.
fn callbacks_inside_callbacks_are_re_entrant(load: Load) {
    struct Counting(AtomicUsize);
    impl Visitor for Counting {
        fn visit(&self, word: &str, indexer: &dyn Indexer) -> bool {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            assert_eq!(indexer.count(), 4, "the plugin answers while its own call is in flight");
            let cursor = indexer.open(&word[..1]);
            assert!(cursor.next().is_some());
            n < 2
        }
    }
    let plugin = load();
    plugin.index("one two three four", &Recorder::new(vec![]).1).unwrap();
    let visitor = Counting(AtomicUsize::new(0));
    assert_eq!(plugin.walk(&visitor), Ok(3));
    assert_eq!(visitor.0.load(Ordering::SeqCst), 3);
}

/// Several host threads at once, each in a callback that calls the plugin again and
/// drives an object it returns: nothing waits for another thread's turn.
fn re_entrant_callbacks_from_several_threads_at_once(load: Load) {
    struct Deep(AtomicUsize);
    impl Visitor for Deep {
        fn visit(&self, word: &str, indexer: &dyn Indexer) -> bool {
            self.0.fetch_add(1, Ordering::SeqCst);
            let cursor = indexer.open(word);
            assert_eq!(cursor.next().as_deref(), Some(word));
            assert_eq!(cursor.fork().next(), None);
            true
        }
    }
    let plugin = load();
    plugin.index("w1 w2 w3 w4 w5", &Recorder::new(vec![]).1).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    let visitor = Deep(AtomicUsize::new(0));
                    assert_eq!(plugin.walk(&visitor), Ok(5));
                    assert_eq!(visitor.0.load(Ordering::SeqCst), 5);
                }
            });
        }
    });
}

/// Objects outlive the `Plugin` handle and keep working (whatever keeps their code:
/// the library, or the plugin's process); the host objects the plugin holds are
/// dropped with it.
fn objects_live_on_after_the_plugin_handle_drops(load: Load) {
    /// A host service that keeps its lines where the test sees them.
    struct Lines(Arc<Mutex<Vec<String>>>, Arc<AtomicBool>);
    impl Host for Lines {
        fn log(&self, _: Level, message: &str) {
            self.0.lock().unwrap().push(message.to_owned());
        }
        fn config(&self, _: &str) -> Option<String> {
            None
        }
    }
    impl Drop for Lines {
        fn drop(&mut self) {
            self.1.store(true, Ordering::SeqCst);
        }
    }
    let plugin = load();
    plugin.index("fig date", &Recorder::new(vec![]).1).unwrap();
    let cursor = plugin.open("d").unwrap();
    let (lines, dropped) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
    plugin.attach(Box::new(Lines(Arc::clone(&lines), Arc::clone(&dropped)))).unwrap();
    let shared = plugin.share(Arc::new(Recorder::new(vec![("prefix", "f")]).1)).unwrap();
    drop(plugin);
    // The instance went with its handle; its `Drop` called the host service it held.
    assert_eq!(cursor.next(), Some("date".into()));
    assert_eq!(cursor.fork().next(), None);
    assert_eq!(shared.next(), Some("fig".into()));
    // (Isolated, the goodbye waits for the host to read the channel: a call.)
    eventually(|| dropped.load(Ordering::SeqCst), || assert!(cursor.next().is_none()));
    assert_eq!(lines.lock().unwrap().last().map(String::as_str), Some("dropped with the plugin"));
    assert!(dropped.load(Ordering::SeqCst), "the plugin's instance, and what it held, is gone");
    drop((cursor, shared));
}

#[test]
fn an_object_keeps_its_library_loaded_after_the_plugin_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (plugin, copy) = load_copy(dir.path());
    plugin.index("kiwi kale", &Recorder::new(vec![]).1).unwrap();
    let cursor = plugin.open("k").unwrap();
    let fork = cursor.fork();
    drop(plugin);
    assert!(mapped(&copy), "a cursor still needs the library");
    assert_eq!(cursor.next(), Some("kiwi".into()));
    drop(cursor);
    assert!(mapped(&copy), "the fork still needs it");
    assert_eq!(fork.next(), Some("kiwi".into()));
    drop(fork);
    assert!(!mapped(&copy), "unloaded with the last object");
}

#[test]
fn objects_dropped_on_other_threads_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let (plugin, copy) = load_copy(dir.path());
    plugin.index("a b c d e f g h", &Recorder::new(vec![]).1).unwrap();
    let cursors = plugin.cursors().unwrap();
    assert_eq!(cursors.len(), 8);
    let plugin = Arc::new(plugin);
    std::thread::scope(|s| {
        for (i, cursor) in cursors.into_iter().enumerate() {
            let plugin = Arc::clone(&plugin);
            s.spawn(move || {
                assert!(cursor.next().is_some());
                // Half drop the plugin handle first, half the cursor first.
                if i % 2 == 0 {
                    drop(plugin);
                    drop(cursor);
                } else {
                    drop(cursor);
                    drop(plugin);
                }
            });
        }
    });
    assert!(mapped(&copy));
    drop(plugin);
    assert!(!mapped(&copy), "unloaded once every handle and object is gone");
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
    assert!(!is_dead(pid), "the cursor keeps the plugin's process");
    assert_eq!(cursor.next(), Some("lime".into()));
    // (Its goodbye through the host service is served when the host next reads.)
    eventually(|| dropped.load(Ordering::SeqCst), || drop(cursor.fork()));
    assert!(dropped.load(Ordering::SeqCst), "the instance went with its handle, and so did what it held");
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
    let err = indexer_api::CursorClient::of(&*cursor).unwrap().next().unwrap_err();
    assert!(matches!(err, CallError::Crashed { .. }), "{err:?}");
    // The plugin restarts; the old cursor stays dead.
    assert_eq!(plugin.count(), Ok(0), "a new process, a new (empty) index");
    assert!(matches!(indexer_api::CursorClient::of(&*cursor).unwrap().next(), Err(CallError::Crashed { .. })));
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
                assert!(cursor.next().is_some());
                if i % 2 == 0 {
                    drop(plugin);
                    assert!(cursor.fork().next().is_none(), "a fork of a spent one-word cursor is empty");
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
