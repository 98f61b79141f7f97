//! A plugin's `log` records and `tracing` events, delivered to the host.
//!
//! A plugin logs as any Rust library does (`log::info!(...)`, `tracing::info!(...)`),
//! with no code of its own for it. Each cdylib has its own copy of the `log` and
//! `tracing-core` crates, so the host's logger and subscriber are not the plugin's:
//! `export!` makes the plugin's `log` logger a forwarder and (with the default
//! `tracing` feature) installs a `tracing` subscriber of the library's own that
//! forwards too. The host, when it loads the plugin, hands it [`HostServices`], whose
//! functions take each [`Record`] and give it to the host's own `log` logger or
//! `tracing` subscriber, with the target `plugin::<export>` — so the host's filters
//! and formatting apply. A plugin that installs a logger or subscriber of its own
//! keeps it.
//!
//! Records are formatted in the plugin and cross as bytes ([`Record::encode`]);
//! nothing of the plugin's `log` or `tracing` crates is shared (a `tracing` `Dispatch`
//! is never shared across libraries), so the two sides may use any `log` 0.4 and
//! `tracing-core` 0.1 versions.
//!
//! # Which export logged
//! One library may export several plugins, and a host may load several of them into
//! one process. Each record carries the name of the export whose code logged it: the
//! generated shim of every method sets, for the length of the call, which instance
//! is running on this thread ([`__enter`]; only once instances of two exports have
//! lived at once — until then every record is the one export's, at no cost per call);
//! a constructor or destructor runs under its export's name. A record logged outside any call of an instance — on a thread
//! the plugin started, or in a method of an object the plugin made — carries the name
//! of the library's oldest live instance (the one export loaded, in the usual case;
//! isolated, the one export of the process); before any instance exists, the name of
//! the first export the host attached.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};

use crate::ffi::RSlice;

/// What the host gives a plugin it loads. Versioned by its size, so fields can be added.
#[repr(C)]
#[derive(Debug)]
pub struct HostServices {
    /// `size_of::<HostServices>()` in the host.
    pub size: u32,
    /// The most verbose `log` level the host wants from plugins: 0 off, 1 error … 5 trace.
    pub max_level: u8,
    /// Takes one `log` record: plugin name, level (1 error … 5 trace), target, message,
    /// module path, file, line (0 if unknown). Must not unwind. Used by plugins that
    /// predate [`HostServices::record`], or when the host does not offer it.
    pub log: Option<unsafe extern "C" fn(RSlice, u8, RSlice, RSlice, RSlice, RSlice, u32)>,
    /// What trait objects cross by number through (see [`crate::remote`]): in a
    /// plugin's own process (isolated mode), the runner's channel; in the host's
    /// process, the host's table of objects, used when the host calls the plugin by
    /// byte form (their types differ across minor versions); null for none. Read only
    /// if `size` covers it.
    pub peer: *const crate::remote::PeerFns,
    /// Takes one record, `log` or `tracing`, as [`Record::encode`] writes it: the name of
    /// the export that logged it, then the record's bytes. Must not unwind. Read only if
    /// `size` covers it.
    pub record: Option<unsafe extern "C" fn(RSlice, RSlice)>,
    /// The most verbose `tracing` level the host wants from plugins: 0 off, 1 error … 5
    /// trace. Read only if `size` covers it.
    pub tracing_level: u8,
}

// SAFETY: the services are immutable once handed over, and the functions they point
// to may be called from any thread.
unsafe impl Send for HostServices {}
// SAFETY: as above.
unsafe impl Sync for HostServices {}

impl HostServices {
    /// Whether these services (of a host of any version) have the field ending at `end`.
    fn covers(&self, end: usize) -> bool {
        self.size as usize >= end
    }

    fn record_fn(&self) -> Option<unsafe extern "C" fn(RSlice, RSlice)> {
        let end =
            std::mem::offset_of!(HostServices, record) + size_of::<Option<unsafe extern "C" fn(RSlice, RSlice)>>();
        if self.covers(end) { self.record } else { None }
    }

    fn tracing_level(&self) -> u8 {
        if self.covers(std::mem::offset_of!(HostServices, tracing_level) + 1) {
            self.tracing_level
        } else {
            self.max_level
        }
    }
}

/// [`HostServices`] and what hosts offer since native sequences. A host passes a
/// pointer to the whole struct (cast to `*const HostServices`: `services` is at
/// offset 0) whose `size` is `size_of::<HostServicesExt>()`;
/// a plugin reads past `services` only if `size` covers it. Fields added later go
/// here, after the last one (`HostServices` itself keeps its size, so every host's
/// extension starts at the same offset).
#[repr(C)]
#[derive(Debug)]
pub struct HostServicesExt {
    /// The services of every host version.
    pub services: HostServices,
    /// The host's [layout identity](crate::abi::native::IDENTITY) if it takes native
    /// sequences (its global allocator is `SystemAlloc`), else empty: a `'static`
    /// string of the host.
    pub native: RSlice,
    /// The host's [`REFUSED`](crate::abi::native::REFUSED) switch (a static of the
    /// host): set, the plugin sends no native sequence either. Null with an empty
    /// `native`.
    pub refused: *const std::sync::atomic::AtomicBool,
}

// SAFETY: immutable once handed over; `native` borrows a `'static` string.
unsafe impl Send for HostServicesExt {}
// SAFETY: as above.
unsafe impl Sync for HostServicesExt {}

impl HostServicesExt {
    /// The host's native identity and switch, if the services at `ptr` (of a host of
    /// any version) have them; empty and null otherwise.
    ///
    /// # Safety
    /// `ptr` must be the non-null pointer the host passed, live while the library is:
    /// derived from the whole `HostServicesExt` when `size` covers it.
    unsafe fn native_of<'a>(ptr: *const HostServices) -> (&'a [u8], *const std::sync::atomic::AtomicBool) {
        // SAFETY: the caller's guarantee.
        let services = unsafe { &*ptr };
        let end = std::mem::offset_of!(HostServicesExt, refused) + size_of::<*const std::sync::atomic::AtomicBool>();
        if !services.covers(end) {
            return (&[], std::ptr::null());
        }
        // SAFETY: `size` covers the extension, so the host passed a pointer to a whole
        // `HostServicesExt` (its `services` at offset 0 of the `#[repr(C)]` struct),
        // and `native` borrows a `'static` of the host.
        unsafe {
            let ext = &*ptr.cast::<HostServicesExt>();
            (ext.native.as_bytes(), ext.refused)
        }
    }
}

/// What a plugin's descriptor points at to receive [`HostServices`].
pub type AttachFn = unsafe extern "C" fn(services: *const HostServices, plugin: RSlice);

static SERVICES: AtomicPtr<HostServices> = AtomicPtr::new(std::ptr::null_mut());
/// The name the first `attach` gave (a `'static` of the library), for records logged
/// before any instance exists.
static FIRST: Mutex<Option<&'static [u8]>> = Mutex::new(None);
/// The library's live instances and their exports' names, oldest first.
static INSTANCES: Mutex<Vec<(usize, &'static str)>> = Mutex::new(Vec::new());
/// The most verbose `tracing` level the host wants (see [`HostServices::tracing_level`]).
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
static TRACING_LEVEL: AtomicU8 = AtomicU8::new(0);

/// Plugin side: keeps the host's services and installs the forwarding logger and
/// subscriber (unless the plugin installed its own). Called by the host before the
/// plugin's instance is made, once per export it loads.
///
/// # Safety
/// `services` must be null or live for as long as the library is loaded; `plugin` must
/// be a `'static` string of the plugin's own (its manifest name).
pub unsafe extern "C" fn attach(services: *const HostServices, plugin: RSlice) {
    {
        let mut first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            // SAFETY: a `'static` of this library (the caller's guarantee).
            *first = Some(unsafe { std::slice::from_raw_parts(plugin.as_ptr_for_static(), plugin.len()) });
        }
    }
    SERVICES.store(services.cast_mut(), Ordering::Release);
    if services.is_null() {
        // SAFETY: null is allowed.
        unsafe { crate::abi::native::attached(&[], std::ptr::null()) };
        return;
    }
    // SAFETY: non-null, and what the host passed (the caller's guarantee); its switch
    // is a static of the host, which outlives this library.
    unsafe {
        let (identity, refused) = HostServicesExt::native_of(services);
        crate::abi::native::attached(identity, refused);
    }
    // SAFETY: non-null, and live while the library is (the caller's guarantee).
    let services = unsafe { &*services };
    if services.covers(std::mem::offset_of!(HostServices, peer) + size_of::<*const crate::remote::PeerFns>()) {
        let peer = services.peer;
        if !peer.is_null() {
            // SAFETY: the host's (or runner's) functions live as long as its process.
            crate::remote::attach(unsafe { &*peer });
        }
    }
    let level = match services.max_level {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    if log::set_logger(&FORWARD).is_ok() {
        log::set_max_level(level);
    }
    TRACING_LEVEL.store(services.tracing_level().min(5), Ordering::Relaxed);
    #[cfg(feature = "tracing")]
    trace::install();
}

// ---------------------------------------------------------------------------------
// Which export is running on this thread.

/// What runs on this thread: an instance (by address) or an export by name (its
/// constructor or destructor).
#[derive(Clone, Copy)]
struct Current {
    instance: *const c_void,
    name: Option<&'static str>,
}

thread_local! {
    // `const`, with no destructor (a library whose code registered a thread-local
    // destructor stays mapped until the thread exits).
    static CURRENT: Cell<Current> = const { Cell::new(Current { instance: std::ptr::null(), name: None }) };
}

/// Whether instances of more than one export of this library have lived at once.
/// Until then (one export loaded: the usual case, and always in an isolated plugin's
/// process) every record is that export's, and a call costs no thread-local access.
static SEVERAL: AtomicBool = AtomicBool::new(false);

/// Says, until dropped, which export runs on this thread (see [`__enter`]); restores
/// what ran before (calls nest: a callback into the host may call another export).
#[doc(hidden)]
#[must_use]
pub struct Entered {
    saved: Option<Current>,
}

impl Drop for Entered {
    // In line: while one export is loaded (`saved` is `None`) a call's guard costs one
    // test and no call; the restore is out of line.
    #[inline]
    fn drop(&mut self) {
        if let Some(saved) = self.saved {
            restore(saved);
        }
    }
}

#[cold]
#[inline(never)]
fn restore(saved: Current) {
    let _ = CURRENT.try_with(|c| c.set(saved));
}

#[cold]
#[inline(never)]
fn enter(now: Current) -> Entered {
    Entered { saved: Some(CURRENT.try_with(|c| c.replace(now)).unwrap_or(now)) }
}

/// Called by the generated shim of every method on entry: records logged on this
/// thread until the guard drops are named after the export whose instance (or object)
/// `this` is. Free (one relaxed load) while only one export of the library is loaded.
#[doc(hidden)]
#[inline(always)]
pub fn __enter(this: *const c_void) -> Entered {
    if !SEVERAL.load(Ordering::Relaxed) {
        return Entered { saved: None };
    }
    enter(Current { instance: this, name: None })
}

/// Whether instances of more than one export of this library have lived at once: the
/// generated shim of every method tests it on entry (one relaxed load) and, only then,
/// runs the method out of line under [`__enter`]. Until then the shim is the method's
/// body alone, with no guard and no stack frame of its own.
#[doc(hidden)]
#[inline(always)]
pub fn __several() -> bool {
    SEVERAL.load(Ordering::Relaxed)
}

/// As [`__enter`], for an export's constructor and destructor, by the export's name.
#[doc(hidden)]
pub fn __enter_named(name: &'static str) -> Entered {
    enter(Current { instance: std::ptr::null(), name: Some(name) })
}

/// What an `async` method's future needs to run each poll under its export's name.
#[derive(Clone, Copy)]
pub(crate) struct Captured(Current);

// SAFETY: the instance address is only compared, never dereferenced.
unsafe impl Send for Captured {}

impl Captured {
    /// What runs on this thread now.
    pub(crate) fn now() -> Self {
        Captured(CURRENT.try_with(Cell::get).unwrap_or(Current { instance: std::ptr::null(), name: None }))
    }

    /// Runs, until the guard drops, as what was captured.
    pub(crate) fn enter(self) -> Entered {
        enter(self.0)
    }
}

/// Records that `instance` is export `name`'s (its constructor returned it).
pub(crate) fn register(instance: *const c_void, name: &'static str) {
    let mut instances = INSTANCES.lock().unwrap_or_else(|e| e.into_inner());
    if instances.iter().any(|&(_, other)| other != name) {
        SEVERAL.store(true, Ordering::Relaxed);
    }
    instances.push((instance as usize, name));
}

/// Forgets `instance` (it is being destroyed).
pub(crate) fn unregister(instance: *const c_void) {
    let mut instances = INSTANCES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(at) = instances.iter().position(|&(i, _)| i == instance as usize) {
        instances.remove(at);
    }
}

/// The name of the export a record logged now on this thread belongs to (see the
/// module documentation).
fn current_name() -> &'static [u8] {
    let now = CURRENT.try_with(Cell::get).unwrap_or(Current { instance: std::ptr::null(), name: None });
    if let Some(name) = now.name {
        return name.as_bytes();
    }
    let instances = INSTANCES.lock().unwrap_or_else(|e| e.into_inner());
    if !now.instance.is_null()
        && let Some(&(_, name)) = instances.iter().find(|&&(i, _)| i == now.instance as usize)
    {
        return name.as_bytes();
    }
    if let Some(&(_, name)) = instances.first() {
        return name.as_bytes();
    }
    drop(instances);
    FIRST.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------
// Records as bytes.

/// What kind of record crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A `log` record.
    Log,
    /// A `tracing` event.
    Event,
}

/// One record as it crosses from a plugin to the host (in-process through
/// [`HostServices::record`], isolated as a frame). Text is bytes: the host decodes it
/// leniently and escapes it before its logger sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// `log` record or `tracing` event.
    pub kind: RecordKind,
    /// 1 error … 5 trace.
    pub level: u8,
    /// The plugin's own target (its module path unless it named another).
    pub target: &'a [u8],
    /// The formatted message.
    pub message: &'a [u8],
    /// The module path, empty if unknown.
    pub module: &'a [u8],
    /// The source file, empty if unknown.
    pub file: &'a [u8],
    /// The source line, 0 if unknown.
    pub line: u32,
    /// A `tracing` event's fields other than its message: name, value (`Debug`-formatted).
    pub fields: Vec<(&'a [u8], &'a [u8])>,
    /// The spans the event happened in, outermost first, as `name{field=value …}`
    /// joined by `:`; empty outside any span.
    pub spans: &'a [u8],
}

impl<'a> Record<'a> {
    /// At most this many fields decode; a record claiming more is malformed.
    pub const MAX_FIELDS: usize = 64;

    /// The record as bytes: kind, level, then target, message, module, file (each a
    /// `u32` length and its bytes), line, the number of fields and each field's name
    /// and value (length-prefixed), then the spans (length-prefixed).
    pub fn encode(&self) -> Vec<u8> {
        let texts = [self.target, self.message, self.module, self.file, self.spans];
        let len = 2
            + 8
            + texts.iter().map(|t| 4 + t.len()).sum::<usize>()
            + self.fields.iter().map(|(n, v)| 8 + n.len() + v.len()).sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.push(match self.kind {
            RecordKind::Log => 0,
            RecordKind::Event => 1,
        });
        out.push(self.level);
        let put = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len().min(u32::MAX as usize) as u32).to_le_bytes());
            out.extend_from_slice(&bytes[..bytes.len().min(u32::MAX as usize)]);
        };
        for text in [self.target, self.message, self.module, self.file] {
            put(&mut out, text);
        }
        out.extend_from_slice(&self.line.to_le_bytes());
        let fields = &self.fields[..self.fields.len().min(Self::MAX_FIELDS)];
        out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        for (name, value) in fields {
            put(&mut out, name);
            put(&mut out, value);
        }
        put(&mut out, self.spans);
        out
    }

    /// Reads a record [`encode`](Record::encode) wrote; `None` for anything else
    /// (truncated, trailing bytes, an unknown kind, more than
    /// [`MAX_FIELDS`](Record::MAX_FIELDS) fields). Borrows from `bytes`; allocates only
    /// the field list, bounded by the fields that fit in `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Option<Self> {
        let mut r = Bytes(bytes);
        let kind = match r.take(1)?[0] {
            0 => RecordKind::Log,
            1 => RecordKind::Event,
            _ => return None,
        };
        let level = r.take(1)?[0];
        let (target, message, module, file) = (r.text()?, r.text()?, r.text()?, r.text()?);
        let line = r.u32()?;
        let count = r.u32()? as usize;
        // Each field takes at least 8 bytes: no reservation past what is there.
        if count > Self::MAX_FIELDS || count > r.0.len() / 8 {
            return None;
        }
        let mut fields = Vec::with_capacity(count);
        for _ in 0..count {
            fields.push((r.text()?, r.text()?));
        }
        let spans = r.text()?;
        r.0.is_empty().then_some(Record { kind, level, target, message, module, file, line, fields, spans })
    }
}

/// The bytes of a record not read yet.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

/// Sends `record` to the host: through [`HostServices::record`] if the host offers
/// it, else (a `log` record, or an event formatted as one) through
/// [`HostServices::log`].
fn send(record: &Record<'_>) {
    let services = SERVICES.load(Ordering::Acquire);
    if services.is_null() {
        return;
    }
    // SAFETY: set by `attach` to services that live as long as this library.
    let services = unsafe { &*services };
    let plugin = current_name();
    if let Some(deliver) = services.record_fn() {
        let bytes = record.encode();
        // SAFETY: the host's function, with borrows that live for the call.
        unsafe { deliver(RSlice::new(plugin), RSlice::new(&bytes)) };
        return;
    }
    let Some(deliver) = services.log else { return };
    let mut message = String::from_utf8_lossy(record.message).into_owned();
    for (name, value) in &record.fields {
        message.push_str(&format!(" {}={}", String::from_utf8_lossy(name), String::from_utf8_lossy(value)));
    }
    // SAFETY: the host's function, with borrows that live for the call.
    unsafe {
        deliver(
            RSlice::new(plugin),
            record.level,
            RSlice::new(record.target),
            RSlice::new(message.as_bytes()),
            RSlice::new(record.module),
            RSlice::new(record.file),
            record.line,
        )
    };
}

// ---------------------------------------------------------------------------------
// `log`.

struct Forward;

static FORWARD: Forward = Forward;

impl log::Log for Forward {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        send(&Record {
            kind: RecordKind::Log,
            level: record.level() as u8,
            target: record.target().as_bytes(),
            message: message.as_bytes(),
            module: record.module_path().unwrap_or("").as_bytes(),
            file: record.file().unwrap_or("").as_bytes(),
            line: record.line().unwrap_or(0),
            fields: Vec::new(),
            spans: &[],
        });
    }

    fn flush(&self) {}
}

// ---------------------------------------------------------------------------------
// `tracing`.

/// The library's own `tracing` subscriber: forwards events (with their fields and
/// the names and fields of the spans they happened in) as [`Record`]s.
#[cfg(feature = "tracing")]
mod trace {
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::fmt::Write;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing_core::field::{Field, Visit};
    use tracing_core::span::{Attributes, Id, Record as Values};
    use tracing_core::subscriber::Interest;
    use tracing_core::{Event, Level, LevelFilter, Metadata, Subscriber};

    use super::{Record, RecordKind, TRACING_LEVEL, send};

    /// Installs the forwarder as the library's global default, unless the plugin set
    /// one of its own first.
    pub(super) fn install() {
        let _ = tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(Forward::default()));
    }

    /// Open spans: id → (text `name{fields}`, references).
    #[derive(Default)]
    struct Forward {
        spans: Mutex<HashMap<u64, (String, usize)>>,
        next: AtomicU64,
    }

    /// The most nested spans an event names (deeper ones are entered, not named).
    const MAX_DEPTH: usize = 32;

    thread_local! {
        /// The spans entered on this thread, innermost last, and how many (which may
        /// exceed [`MAX_DEPTH`]). Plain cells with no destructor: a library whose code
        /// registered a thread-local destructor stays mapped until that thread exits.
        static STACK: ([Cell<u64>; MAX_DEPTH], Cell<usize>) =
            const { ([const { Cell::new(0) }; MAX_DEPTH], Cell::new(0)) };
    }

    fn filter() -> LevelFilter {
        match TRACING_LEVEL.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        }
    }

    fn level(level: &Level) -> u8 {
        match *level {
            Level::ERROR => 1,
            Level::WARN => 2,
            Level::INFO => 3,
            Level::DEBUG => 4,
            _ => 5,
        }
    }

    /// Collects an event's message and fields.
    #[derive(Default)]
    struct Fields {
        message: String,
        fields: Vec<(&'static str, String)>,
    }

    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.message.push_str(value);
            } else {
                self.fields.push((field.name(), value.to_owned()));
            }
        }

        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.message, "{value:?}");
            } else {
                self.fields.push((field.name(), format!("{value:?}")));
            }
        }
    }

    /// Appends ` name=value` for each field (a span's text).
    struct Text<'a>(&'a mut String);

    impl Visit for Text<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            let _ = write!(self.0, " {}={value}", field.name());
        }

        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    impl Forward {
        fn spans(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (String, usize)>> {
            self.spans.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl Subscriber for Forward {
        fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
            if self.enabled(metadata) { Interest::always() } else { Interest::never() }
        }

        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            *metadata.level() <= filter()
        }

        fn max_level_hint(&self) -> Option<LevelFilter> {
            Some(filter())
        }

        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
            let mut text = span.metadata().name().to_owned();
            let mut fields = String::new();
            span.record(&mut Text(&mut fields));
            if !fields.is_empty() {
                let _ = write!(text, "{{{}}}", &fields[1..]);
            }
            self.spans().insert(id, (text, 1));
            Id::from_u64(id)
        }

        fn record(&self, span: &Id, values: &Values<'_>) {
            let mut more = String::new();
            values.record(&mut Text(&mut more));
            if let Some((text, _)) = self.spans().get_mut(&span.into_u64()) {
                match text.strip_suffix('}') {
                    Some(open) => *text = format!("{open}{more}}}"),
                    None if !more.is_empty() => *text = format!("{text}{{{}}}", &more[1..]),
                    None => {}
                }
            }
        }

        fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

        fn event(&self, event: &Event<'_>) {
            let metadata = event.metadata();
            let mut fields = Fields::default();
            event.record(&mut fields);
            let spans = STACK
                .try_with(|(ids, depth)| {
                    let open = self.spans();
                    let ids = &ids[..depth.get().min(MAX_DEPTH)];
                    ids.iter()
                        .filter_map(|id| open.get(&id.get()).map(|(t, _)| t.as_str()))
                        .collect::<Vec<_>>()
                        .join(":")
                })
                .unwrap_or_default();
            send(&Record {
                kind: RecordKind::Event,
                level: level(metadata.level()),
                target: metadata.target().as_bytes(),
                message: fields.message.as_bytes(),
                module: metadata.module_path().unwrap_or("").as_bytes(),
                file: metadata.file().unwrap_or("").as_bytes(),
                line: metadata.line().unwrap_or(0),
                fields: fields.fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect(),
                spans: spans.as_bytes(),
            });
        }

        fn enter(&self, span: &Id) {
            let _ = STACK.try_with(|(ids, depth)| {
                if let Some(slot) = ids.get(depth.get()) {
                    slot.set(span.into_u64());
                }
                depth.set(depth.get() + 1);
            });
        }

        fn exit(&self, span: &Id) {
            let _ = STACK.try_with(|(ids, depth)| {
                let held = &ids[..depth.get().min(MAX_DEPTH)];
                match held.iter().rposition(|id| id.get() == span.into_u64()) {
                    // Spans usually exit innermost first; one that does not is taken out.
                    Some(at) => {
                        for i in at..held.len() - 1 {
                            held[i].set(held[i + 1].get());
                        }
                        depth.set(depth.get() - 1);
                    }
                    // Entered past `MAX_DEPTH`: not held, only counted.
                    None if depth.get() > MAX_DEPTH => depth.set(depth.get() - 1),
                    None => {}
                }
            });
        }

        fn clone_span(&self, span: &Id) -> Id {
            if let Some((_, refs)) = self.spans().get_mut(&span.into_u64()) {
                *refs += 1;
            }
            span.clone()
        }

        fn try_close(&self, span: Id) -> bool {
            let mut spans = self.spans();
            let Some((_, refs)) = spans.get_mut(&span.into_u64()) else { return false };
            *refs -= 1;
            if *refs == 0 {
                spans.remove(&span.into_u64());
                return true;
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record<'static> {
        Record {
            kind: RecordKind::Event,
            level: 3,
            target: b"gain",
            message: b"scaled",
            module: b"gain::dsp",
            file: b"src/lib.rs",
            line: 42,
            fields: vec![(b"factor", b"0.5"), (b"frames", b"3")],
            spans: b"process{n=3}",
        }
    }

    #[test]
    fn a_record_crosses_whole() {
        let bytes = sample().encode();
        assert_eq!(Record::decode(&bytes), Some(sample()));
        let log = Record { kind: RecordKind::Log, fields: Vec::new(), spans: b"", ..sample() };
        assert_eq!(Record::decode(&log.encode()), Some(log));
    }

    #[test]
    fn anything_else_is_refused() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert_eq!(Record::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Record::decode(&longer), None, "trailing bytes");
        let mut kind = bytes.clone();
        kind[0] = 7;
        assert_eq!(Record::decode(&kind), None, "unknown kind");
        // A claimed field count past the limit, with no bytes behind it.
        let empty = Record { fields: Vec::new(), ..sample() }.encode();
        let count_at = empty.len() - 4 - b"process{n=3}".len() - 4;
        let mut many = empty.clone();
        many[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Record::decode(&many), None, "too many fields");
    }

    #[test]
    fn nested_entries_restore_what_ran_before() {
        let (x, y) = (0u8, 0u8);
        let (a, b) = ((&raw const x).cast::<c_void>(), (&raw const y).cast::<c_void>());
        register(a, "gain");
        register(b, "decimate");
        {
            let _gain = __enter(a);
            assert_eq!(current_name(), b"gain");
            {
                let _decimate = __enter(b);
                assert_eq!(current_name(), b"decimate");
            }
            assert_eq!(current_name(), b"gain");
            let _making = __enter_named("other");
            assert_eq!(current_name(), b"other");
        }
        // Outside any call: the oldest live instance.
        assert_eq!(current_name(), b"gain");
        unregister(a);
        assert_eq!(current_name(), b"decimate");
        unregister(b);
    }
}
