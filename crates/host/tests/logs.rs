//! A plugin's `log` records reach the host's `log` logger, in-process and isolated.
//! A test binary of its own: the logger is process-wide, and other tests' plugins
//! would log into it too.

#![allow(missing_docs)]

use std::sync::Mutex;

use indexer_api::{Host, Indexer, Level};
use tomada_test_support::cdylib;

/// A host service that ignores everything.
struct Quiet;

impl Host for Quiet {
    fn log(&self, _: Level, _: &str) {}
    fn config(&self, _: &str) -> Option<String> {
        None
    }
}

fn load_copy(dir: &std::path::Path) -> tomada_host::Plugin<dyn Indexer> {
    let copy = tomada_test_support::copy_to(&cdylib("indexer"), dir, "libindexer_copy.so");
    tomada_host::load::<dyn Indexer>(&copy).unwrap()
}

#[cfg(unix)]
fn isolated() -> tomada_host::Plugin<dyn Indexer> {
    use tomada_host::isolate::{Isolation, Mode, Runner};
    let isolation = Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()));
    tomada_host::load_with::<dyn Indexer>(cdylib("indexer"), &Mode::Isolated(isolation)).unwrap()
}

/// The plugin's `log` records reach the host's `log` logger, with the plugin's name as
/// the target, its own module, file and line; and the host can turn them off.
#[test]
fn plugin_log_records_reach_the_host_logger() {
    struct Capture;
    /// Level, target, message, module path.
    type Seen = (log::Level, String, String, Option<String>);
    static RECORDS: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, r: &log::Record<'_>) {
            RECORDS.lock().unwrap().push((
                r.level(),
                r.target().to_owned(),
                r.args().to_string(),
                r.module_path().map(str::to_owned),
            ));
        }
        fn flush(&self) {}
    }
    static CAPTURE: Capture = Capture;
    // This test binary's logger: set once (nothing else here sets one).
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Debug);
    let records = |target: &str| RECORDS.lock().unwrap().iter().filter(|r| r.1 == target).cloned().collect::<Vec<_>>();

    let dir = tempfile::tempdir().unwrap();
    let plugin = load_copy(dir.path());
    plugin.index("one two", &Quiet).unwrap();
    let got = records("plugin::indexer");
    assert_eq!(got.len(), 1, "info passes, trace is above the host's level: {got:?}");
    assert_eq!(got[0].0, log::Level::Info);
    assert_eq!(got[0].2, "indexed 2 words");
    assert_eq!(got[0].3.as_deref(), Some("indexer"));
    drop(plugin);

    tomada_host::plugin_logs(false);
    let copy = tomada_test_support::copy_to(&cdylib("indexer"), dir.path(), "libindexer_quiet.so");
    let quiet = tomada_host::load::<dyn Indexer>(&copy).unwrap();
    tomada_host::plugin_logs(true);
    quiet.index("three", &Quiet).unwrap();
    assert_eq!(records("plugin::indexer").len(), 1, "nothing more from a plugin loaded with forwarding off");

    // Isolated: the records travel as frames, and are delivered before the call that
    // made them returns.
    #[cfg(unix)]
    {
        let plugin = isolated();
        plugin.index("four five six", &Quiet).unwrap();
        let got = records("plugin::indexer");
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[1].0, log::Level::Info);
        assert_eq!(got[1].2, "indexed 3 words");
        assert_eq!(got[1].3.as_deref(), Some("indexer"));
        drop(plugin);
        tomada_host::plugin_logs(false);
        let quiet = isolated();
        tomada_host::plugin_logs(true);
        quiet.index("seven", &Quiet).unwrap();
        assert_eq!(records("plugin::indexer").len(), 2, "nothing from an isolated plugin loaded with forwarding off");
    }
}
