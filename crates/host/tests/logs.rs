//! A plugin's `log` records reach the host's `log` logger, and its `tracing` events the
//! host's `tracing` subscriber, in-process and isolated, named after the export that
//! logged them, with every text escaped. A test binary of its own: the logger and the
//! subscriber are process-wide, and other tests' plugins would log into them too.

#![allow(missing_docs)]

use std::sync::{Mutex, MutexGuard, Once};

use indexer_api::{Host, Indexer, Level};
use pluginapi::Greeter;
use tomada_host::isolate::Mode;
use tomada_host::{Loader, Plugin};
use tomada_test_support::cdylib;

/// A host service that ignores everything.
struct Quiet;

impl Host for Quiet {
    fn log(&self, _: Level, _: &str) {}
    fn config(&self, _: &str) -> Option<String> {
        None
    }
}

/// A `log` record as the host's logger saw it: level, target, message, module path.
type Seen = (log::Level, String, String, Option<String>);
/// A `tracing` event as the host's subscriber saw it: level, target, module path, fields.
type Event = (tracing::Level, String, Option<String>, Vec<(String, String)>);

static RECORDS: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());

struct Capture;

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

struct Fields(Vec<(String, String)>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

struct Layer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Layer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let m = event.metadata();
        if m.target().starts_with("plugin::") {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            EVENTS.lock().unwrap().push((
                *m.level(),
                m.target().to_owned(),
                m.module_path().map(str::to_owned),
                fields.0,
            ));
        }
    }
}

/// This binary's logger and subscriber, set once before any plugin loads (the levels
/// a plugin may send are the host's at load time); and one test at a time, since
/// `plugin_logs(false)` and the captured lists are process-wide.
fn serial() -> MutexGuard<'static, ()> {
    static SET: Once = Once::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    SET.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
        let subscriber = tracing_subscriber::registry().with(Layer).with(tracing::level_filters::LevelFilter::INFO);
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn records(target: &str) -> Vec<Seen> {
    RECORDS.lock().unwrap().iter().filter(|r| r.1 == target).cloned().collect()
}

fn isolation() -> tomada_host::isolate::Isolation {
    use tomada_host::isolate::{Isolation, Runner};
    Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()))
}

fn modes() -> [Mode; 2] {
    [Mode::InProcess, Mode::Isolated(isolation())]
}

fn load_copy(dir: &std::path::Path) -> Plugin<dyn Indexer> {
    let copy = tomada_test_support::copy_to(&cdylib("indexer"), dir, "libindexer_copy.so");
    tomada_host::load::<dyn Indexer>(&copy).unwrap()
}

#[cfg(unix)]
fn isolated() -> Plugin<dyn Indexer> {
    tomada_host::load_with::<dyn Indexer>(cdylib("indexer"), &Mode::Isolated(isolation())).unwrap()
}

/// The plugin's `log` records reach the host's `log` logger, with the plugin's name as
/// the target, its own module, file and line; and the host can turn them off.
#[test]
fn plugin_log_records_reach_the_host_logger() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let before = records("plugin::indexer").len();
    let plugin = load_copy(dir.path());
    plugin.index("one two", &Quiet).unwrap();
    let got = records("plugin::indexer");
    assert_eq!(got.len() - before, 1, "info passes, trace is above the host's level: {got:?}");
    let got = &got[before..];
    assert_eq!(got[0].0, log::Level::Info);
    assert_eq!(got[0].2, "indexed 2 words");
    assert_eq!(got[0].3.as_deref(), Some("indexer"));
    drop(plugin);

    tomada_host::plugin_logs(false);
    let copy = tomada_test_support::copy_to(&cdylib("indexer"), dir.path(), "libindexer_quiet.so");
    let quiet = tomada_host::load::<dyn Indexer>(&copy).unwrap();
    tomada_host::plugin_logs(true);
    quiet.index("three", &Quiet).unwrap();
    assert_eq!(records("plugin::indexer").len() - before, 1, "nothing more from a plugin loaded with forwarding off");

    // Isolated: the records travel as frames, and are delivered before the call that
    // made them returns.
    #[cfg(unix)]
    {
        let plugin = isolated();
        plugin.index("four five six", &Quiet).unwrap();
        let got = records("plugin::indexer");
        assert_eq!(got.len() - before, 2, "{got:?}");
        let last = got.last().unwrap();
        assert_eq!(last.0, log::Level::Info);
        assert_eq!(last.2, "indexed 3 words");
        assert_eq!(last.3.as_deref(), Some("indexer"));
        drop(plugin);
        tomada_host::plugin_logs(false);
        let quiet = isolated();
        tomada_host::plugin_logs(true);
        quiet.index("seven", &Quiet).unwrap();
        assert_eq!(
            records("plugin::indexer").len() - before,
            2,
            "nothing from an isolated plugin loaded with forwarding off"
        );
    }
}

/// Loads `hello` and `hola` from the one family library in `mode`, greets with each
/// (interleaved), and returns the `log` records and `tracing` events that came of it,
/// in order: the transcript.
fn greet_both(mode: &Mode, names: [&str; 3]) -> (Vec<Seen>, Vec<Event>) {
    let (records_before, events_before) = (RECORDS.lock().unwrap().len(), EVENTS.lock().unwrap().len());
    let loader = Loader::new().mode(mode.clone());
    let hello = loader.clone().export("hello").load::<dyn Greeter>(cdylib("family")).unwrap();
    let hola = loader.export("hola").config("Oi").load::<dyn Greeter>(cdylib("family")).unwrap();
    hello.greet(names[0]).unwrap();
    hola.greet(names[1]).unwrap();
    hello.greet(names[2]).unwrap();
    drop((hello, hola));
    let records: Vec<Seen> =
        RECORDS.lock().unwrap()[records_before..].iter().filter(|r| r.1.starts_with("plugin::")).cloned().collect();
    (records, EVENTS.lock().unwrap()[events_before..].to_vec())
}

/// Two exports of one library, loaded together: each record is named after the
/// export whose code logged it — its constructor or its method — not after whichever
/// export was attached last; and the transcript is the same in-process and isolated.
///
/// Before records carried their export (one name per library, overwritten by each
/// `attach`), in-process every record here arrived as `plugin::hola`.
#[test]
fn two_exports_of_one_library_log_under_their_own_names_in_both_modes() {
    let _serial = serial();
    let mut transcripts = Vec::new();
    for mode in modes() {
        let (records, events) = greet_both(&mode, ["Ana", "Bea", "Caio!"]);
        let named: Vec<(&str, &str)> = records.iter().map(|r| (r.1.as_str(), r.2.as_str())).collect();
        assert_eq!(
            named,
            [
                ("plugin::hola", "made to say Oi"),
                ("plugin::hello", "greeting Ana"),
                ("plugin::hola", "greeting Bea"),
                ("plugin::hello", "greeting Caio!"),
            ],
            "{mode:?}"
        );
        assert!(records.iter().all(|r| r.0 == log::Level::Info && r.3.as_deref() == Some("family")), "{records:?}");
        let targets: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(targets, ["plugin::hello", "plugin::hola", "plugin::hello"], "{mode:?}");
        transcripts.push((records, events));
    }
    assert_eq!(transcripts[0], transcripts[1], "in-process and isolated transcripts differ");
}

/// A plugin's `tracing` events reach the host's subscriber (a `tracing-subscriber`
/// registry here) as events with their level, a `plugin::<export>` target, the
/// plugin's module, their fields, and the spans (with fields) they happened in.
#[test]
fn tracing_events_with_fields_reach_the_host_subscriber_in_both_modes() {
    let _serial = serial();
    for mode in modes() {
        let (_, events) = greet_both(&mode, ["Ana", "Bea", "Caio!"]);
        assert_eq!(events.len(), 3, "{mode:?}: {events:?}");
        let (level, target, module, fields) = &events[2];
        assert_eq!(
            (*level, target.as_str(), module.as_deref()),
            (tracing::Level::INFO, "plugin::hello", Some("family"))
        );
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(
            fields,
            [("message", "greeted"), ("who", "Caio!"), ("loud", "true"), ("spans", "greet{chars=5}")],
            "{mode:?}"
        );
        assert!(events[1].3.contains(&("loud".to_owned(), "false".to_owned())), "{events:?}");
    }
}

/// Control characters and a forged log line a plugin logs arrive escaped — message,
/// fields and all — in both modes, `log` and `tracing` alike. Without the escaping the
/// message would reach the logger with a real newline, and a line-oriented log would
/// show a second line `2099-01-01 INFO host: all plugins verified`.
#[test]
fn plugin_log_text_is_escaped_before_the_host_sees_it_in_both_modes() {
    let _serial = serial();
    for mode in modes() {
        let (records, events) = greet_both(&mode, ["forge", "Bea", "forge"]);
        let forged: Vec<&Seen> = records.iter().filter(|r| r.1 == "plugin::hello").collect();
        assert_eq!(forged.len(), 2, "{mode:?}: {records:?}");
        for r in &forged {
            assert_eq!(r.0, log::Level::Warn);
            // The plugin did send the attack: its characters are all there, made visible.
            assert_eq!(r.2, r"done\r\e[2K\u{7}\n2099-01-01 INFO host: all plugins verified", "{mode:?}");
        }
        let forged: Vec<&Event> = events.iter().filter(|e| e.1 == "plugin::hello").collect();
        assert_eq!(forged.len(), 2, "{mode:?}: {events:?}");
        for e in &forged {
            let fields: Vec<(&str, &str)> = e.3.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            assert_eq!(
                fields,
                [("message", r"\e[2Jcleared\r"), ("note", r"\e]0;owned\u{7}\n2099-01-01 INFO host: forged"),],
                "{mode:?}"
            );
        }
        // Nothing any logger saw from a plugin holds a control character.
        let raw = |s: &str| s.chars().any(char::is_control);
        assert!(!records.iter().any(|r| raw(&r.1) || raw(&r.2)), "{records:?}");
        assert!(!events.iter().any(|e| e.3.iter().any(|(n, v)| raw(n) || raw(v))), "{events:?}");
    }
}
