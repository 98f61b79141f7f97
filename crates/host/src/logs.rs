//! The host end of plugins' `log` records and `tracing` events (see
//! `tomada::logging`): each `log` record is given to this process's `log` logger, and
//! each `tracing` event to this process's `tracing` subscriber, with the target
//! `plugin::<export>` (the export whose code logged it), the plugin's own module,
//! file and line — unless the host turned forwarding off with [`plugin_logs`].
//!
//! Everything a plugin sends is its own text: the export's name, message, module,
//! file, fields and spans are escaped ([`crate::escape::escape_controls`]) before any
//! logger or subscriber sees them, so a plugin cannot forge a log line (`\n2099-01-01
//! INFO host: …`), rewrite the terminal (`ESC [`) or ring the bell. In-process and
//! isolated records go through the same [`emit`], so the two modes' transcripts are
//! the same.

use std::sync::atomic::{AtomicBool, Ordering};

use tomada::ffi::RSlice;
use tomada::logging::{HostServices, HostServicesExt, Record, RecordKind};

use crate::escape::escape_controls;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether plugins loaded from now on send their `log` records to this host's `log`
/// logger and their `tracing` events to its `tracing` subscriber (the default), with
/// the target `plugin::<export>` and the plugin's own module, file and line. The
/// levels are this host's `log::max_level()` and `tracing`'s
/// `LevelFilter::current()` at load time.
///
/// ```
/// tomada_host::plugin_logs(false); // plugins loaded after this log nowhere
/// # tomada_host::plugin_logs(true);
/// ```
pub fn plugin_logs(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

const fn at_levels(max_level: u8, tracing_level: u8, native: Native) -> HostServicesExt {
    HostServicesExt {
        services: HostServices {
            size: size_of::<HostServicesExt>() as u32,
            max_level,
            log: Some(deliver),
            // Objects crossing calls by byte form (see `crate::bytes`).
            peer: &crate::bytes::IN_PROCESS_PEER,
            record: Some(deliver_record),
            tracing_level,
        },
        native: RSlice::new(native.0.as_bytes()),
        refused: native.1,
    }
}

/// What the services say about native sequences: the host's identity and switch
/// (`tomada::abi::native`), or nothing.
type Native = (&'static str, *const AtomicBool);

const fn row(log: u8, native: Native) -> [HostServicesExt; 6] {
    [
        at_levels(log, 0, native),
        at_levels(log, 1, native),
        at_levels(log, 2, native),
        at_levels(log, 3, native),
        at_levels(log, 4, native),
        at_levels(log, 5, native),
    ]
}

const fn table(native: Native) -> [[HostServicesExt; 6]; 6] {
    [row(0, native), row(1, native), row(2, native), row(3, native), row(4, native), row(5, native)]
}

/// One set of services per pair of levels (`log`, `tracing`): statics, so a plugin
/// may keep them for its life. This host takes native sequences (see
/// `tomada::abi::native`) only if its global allocator is `SystemAlloc`.
static SERVICES: [[HostServicesExt; 6]; 6] = table((tomada::abi::native::IDENTITY, &tomada::abi::native::REFUSED));
static SERVICES_NOT_NATIVE: [[HostServicesExt; 6]; 6] = table(("", std::ptr::null()));

/// The services for a plugin loaded now.
pub(crate) fn services() -> *const HostServices {
    let (log, tracing) = split_levels(level());
    let table = if tomada::alloc::global_is_system() { &SERVICES } else { &SERVICES_NOT_NATIVE };
    // The whole extension's address (the plugin reads past `services` when `size`
    // says it may), as `HostServices` at its offset 0.
    std::ptr::from_ref(&table[log as usize][tracing as usize]).cast()
}

/// The most verbose levels plugins loaded now may send (0: none … 5: trace), as one
/// byte: the `log` level in the low three bits, the `tracing` level in the next three
/// (see [`split_levels`]).
pub(crate) fn level() -> u8 {
    if !ENABLED.load(Ordering::Relaxed) {
        return 0;
    }
    let log = (log::max_level() as usize).min(5) as u8;
    let tracing = match tracing::level_filters::LevelFilter::current().into_level() {
        None => 0,
        Some(tracing::Level::ERROR) => 1,
        Some(tracing::Level::WARN) => 2,
        Some(tracing::Level::INFO) => 3,
        Some(tracing::Level::DEBUG) => 4,
        Some(_) => 5,
    };
    log | tracing << 3
}

/// The (`log`, `tracing`) levels of a [`level`] byte, each at most 5.
pub(crate) fn split_levels(level: u8) -> (u8, u8) {
    ((level & 7).min(5), (level >> 3 & 7).min(5))
}

/// A `log` record as bytes, for a plugin's process to send to the host (isolation),
/// from plugins that predate [`Record`]s of their own.
#[cfg(any(unix, windows))]
pub(crate) fn encode_record(level: u8, message: &[u8], module: &[u8], file: &[u8], line: u32) -> Vec<u8> {
    Record { kind: RecordKind::Log, level, target: module, message, module, file, line, fields: Vec::new(), spans: &[] }
        .encode()
}

/// Delivers a record that came as bytes ([`Record::encode`]) from plugin `plugin`'s
/// process; a malformed one is dropped.
#[cfg(any(unix, windows))]
pub(crate) fn deliver_encoded(plugin: &str, bytes: &[u8]) {
    if let Some(record) = Record::decode(bytes) {
        emit(plugin, &record);
    }
}

/// Text a plugin sent, as the host's loggers see it: lossy UTF-8, controls escaped.
fn text(bytes: &[u8]) -> String {
    escape_controls(&String::from_utf8_lossy(bytes)).into_owned()
}

/// The in-process plugins' `log` function (of plugins that predate [`Record`]s).
unsafe extern "C" fn deliver(
    plugin: RSlice,
    level: u8,
    target: RSlice,
    message: RSlice,
    module: RSlice,
    file: RSlice,
    line: u32,
) {
    // SAFETY: the plugin passes borrows that live for this call, which is where the
    // texts are used.
    let (plugin, target, message, module, file) =
        unsafe { (plugin.as_bytes(), target.as_bytes(), message.as_bytes(), module.as_bytes(), file.as_bytes()) };
    let record =
        Record { kind: RecordKind::Log, level, target, message, module, file, line, fields: Vec::new(), spans: &[] };
    emit(&String::from_utf8_lossy(plugin), &record);
}

/// The in-process plugins' `record` function.
unsafe extern "C" fn deliver_record(plugin: RSlice, bytes: RSlice) {
    // SAFETY: the plugin passes borrows that live for this call.
    let (plugin, bytes) = unsafe { (plugin.as_bytes(), bytes.as_bytes()) };
    if let Some(record) = Record::decode(bytes) {
        emit(&String::from_utf8_lossy(plugin), &record);
    }
}

/// Gives one record of export `plugin` to this process's `log` logger or `tracing`
/// subscriber, every text escaped. Never unwinds (a logger that panics must not
/// unwind into the plugin).
pub(crate) fn emit(plugin: &str, record: &Record<'_>) {
    let _ = std::panic::catch_unwind(|| {
        let target = format!("plugin::{}", escape_controls(plugin));
        match record.kind {
            RecordKind::Log => to_log(&target, record),
            RecordKind::Event => events::emit(&target, record),
        }
    });
}

fn to_log(target: &str, record: &Record<'_>) {
    let level = match record.level {
        1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        _ => log::Level::Trace,
    };
    let (message, module, file) = (text(record.message), text(record.module), text(record.file));
    log::logger().log(
        &log::Record::builder()
            .level(level)
            .target(target)
            .args(format_args!("{message}"))
            .module_path((!module.is_empty()).then_some(&module))
            .file((!file.is_empty()).then_some(&file))
            .line((record.line != 0).then_some(record.line))
            .build(),
    );
}

/// Plugins' `tracing` events, re-emitted in this process.
///
/// A `tracing` event's metadata (target, fields' names, file, line) is `'static`, made
/// once per call site; a plugin's are in its own library. So each distinct call site a
/// plugin reports gets a call site here, made once and kept (leaked) for the life of
/// the process, as `tracing` requires: at most [`MAX_CALLSITES`] of them, each of
/// bounded size (texts cut at [`MAX_TEXT`] bytes), so a plugin that invents call
/// sites cannot grow the host without bound. Past the limit, events go through one
/// call site per level whose fields are the plugin's flattened into one `fields`
/// text. An event has the fields `message`, each of the plugin's (values as text,
/// `Debug`-formatted in the plugin), and `spans` (the plugin's spans it happened in,
/// outermost first, `name{field=value …}` joined by `:`), when inside any.
mod events {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use tomada::logging::Record;
    use tracing::callsite::Callsite;
    use tracing::field::{FieldSet, Value};
    use tracing::metadata::Kind;
    use tracing::subscriber::Interest;
    use tracing::{Level, Metadata};

    use super::text;

    /// At most this many call sites are made for plugins' events, all plugins together.
    pub(super) const MAX_CALLSITES: usize = 1024;
    /// The most fields an event has here: the plugin's, `message` and `spans`.
    const MAX_FIELDS: usize = Record::MAX_FIELDS + 2;
    /// A call site's texts (target, module, file, field names) are cut at this many bytes.
    pub(super) const MAX_TEXT: usize = 256;

    /// A call site made at run time.
    struct Site {
        metadata: OnceLock<Metadata<'static>>,
    }

    impl Callsite for Site {
        fn set_interest(&self, _: Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            self.metadata.get().expect("set before the site is registered")
        }
    }

    /// What makes two events' call sites the same.
    #[derive(PartialEq, Eq, Hash)]
    struct Key {
        level: u8,
        target: String,
        module: String,
        file: String,
        line: u32,
        names: Vec<String>,
    }

    static SITES: Mutex<Option<HashMap<Key, &'static Site>>> = Mutex::new(None);

    /// How many call sites were made.
    #[cfg(test)]
    pub(super) fn sites() -> usize {
        SITES.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0, HashMap::len)
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    fn cut(mut s: String) -> String {
        if s.len() > MAX_TEXT {
            let mut end = MAX_TEXT;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
        }
        s
    }

    fn level(level: u8) -> Level {
        match level {
            1 => Level::ERROR,
            2 => Level::WARN,
            3 => Level::INFO,
            4 => Level::DEBUG,
            _ => Level::TRACE,
        }
    }

    /// The call site for `key`, made (and registered with `tracing`) the first time.
    fn site(key: Key) -> &'static Site {
        let mut sites = SITES.lock().unwrap_or_else(|e| e.into_inner());
        let sites = sites.get_or_insert_with(HashMap::new);
        if let Some(site) = sites.get(&key) {
            return site;
        }
        let site: &'static Site = Box::leak(Box::new(Site { metadata: OnceLock::new() }));
        let names: &'static [&'static str] =
            Box::leak(key.names.iter().map(|n| leak(n.clone())).collect::<Vec<_>>().into_boxed_slice());
        let name = leak(format!("event {}:{}", key.file, key.line));
        let _ = site.metadata.set(Metadata::new(
            name,
            leak(key.target.clone()),
            level(key.level),
            (!key.file.is_empty()).then(|| leak(key.file.clone())),
            (key.line != 0).then_some(key.line),
            (!key.module.is_empty()).then(|| leak(key.module.clone())),
            FieldSet::new(names, tracing::callsite::Identifier(site)),
            Kind::EVENT,
        ));
        tracing::callsite::register(site);
        sites.insert(key, site);
        site
    }

    /// Re-emits a plugin's event with target `target` (escaped already).
    pub(super) fn emit(target: &str, record: &Record<'_>) {
        let fields: Vec<(String, String)> = record.fields.iter().map(|(n, v)| (cut(text(n)), text(v))).collect();
        let spans = text(record.spans);
        let mut key = Key {
            level: record.level.clamp(1, 5),
            target: cut(target.to_owned()),
            module: cut(text(record.module)),
            file: cut(text(record.file)),
            line: record.line,
            names: Vec::new(),
        };
        let full = {
            let sites = SITES.lock().unwrap_or_else(|e| e.into_inner());
            sites.as_ref().map_or(0, HashMap::len) >= MAX_CALLSITES
        };
        // The values, in the order of the call site's names.
        let mut values: Vec<String> = Vec::new();
        key.names.push("message".to_owned());
        values.push(text(record.message));
        if full {
            // One site per level: the plugin's fields as one text.
            key.module.clear();
            key.file.clear();
            key.line = 0;
            key.names.push("fields".to_owned());
            values.push(fields.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" "));
        } else {
            for (name, value) in fields {
                key.names.push(name);
                values.push(value);
            }
        }
        key.names.push("spans".to_owned());
        values.push(spans);
        let site = site(key);
        let metadata: &'static Metadata<'static> = site.metadata.get().expect("set when made");
        let fields: Vec<tracing::field::Field> = metadata.fields().iter().collect();
        // `tracing` takes the values as an array: the fields in order, padded with
        // "no value" (which every visitor skips).
        let mut slots: [(&tracing::field::Field, Option<&dyn Value>); MAX_FIELDS] = [(&fields[0], None); MAX_FIELDS];
        for (slot, (field, value)) in slots.iter_mut().zip(fields.iter().zip(&values)) {
            // Outside any span there is no `spans` value.
            *slot = (field, (!(value.is_empty() && field.name() == "spans")).then_some(value as &dyn Value));
        }
        tracing::dispatcher::get_default(|dispatch| {
            if dispatch.enabled(metadata) {
                let values = metadata.fields().value_set(&slots);
                dispatch.event(&tracing::Event::new(metadata, &values));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plugin that reports ever new call sites (a new line each time, as a hostile
    /// plugin can write records by hand) makes at most `MAX_CALLSITES` of them here,
    /// plus one per level past the limit, each with texts cut to `MAX_TEXT` bytes.
    #[test]
    fn invented_call_sites_are_bounded() {
        let file = "f".repeat(10_000);
        for line in 0..events::MAX_CALLSITES as u32 + 200 {
            let record = Record {
                kind: RecordKind::Event,
                level: (line % 5 + 1) as u8,
                target: b"t",
                message: b"m",
                module: b"m",
                file: file.as_bytes(),
                line: line + 1,
                fields: vec![(b"k", b"v")],
                spans: b"",
            };
            emit("hostile", &record);
        }
        assert!(events::sites() <= events::MAX_CALLSITES + 5, "{} call sites", events::sites());
        assert!(events::sites() >= events::MAX_CALLSITES, "the table filled");
    }
}
