//! A plugin's `log` records, delivered to the host's logger.
//!
//! A plugin logs as any Rust library does (`log::info!(...)`), with no code of its own
//! for it. Each cdylib has its own copy of the `log` crate, so the host's logger is not
//! the plugin's: `export!` makes the plugin's logger a forwarder, and the host, when it
//! loads the plugin, hands it [`HostServices`] whose `log` function takes each record
//! (plugin name, level, target, message, module, file, line) and gives it to the host's
//! own `log` logger, with the target `plugin::<name>` — so the host's filters and
//! formatting apply. A plugin that installs a logger of its own keeps it.
//!
//! Records are formatted in the plugin and cross as strings; nothing of the plugin's
//! `log` crate is shared, so the two sides may use any `log` 0.4 versions. (`tracing`
//! is not bridged: a `tracing` dispatcher cannot be shared across libraries safely.)

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::ffi::RSlice;

/// What the host gives a plugin it loads. Versioned by its size, so fields can be added.
#[repr(C)]
#[derive(Debug)]
pub struct HostServices {
    /// `size_of::<HostServices>()` in the host.
    pub size: u32,
    /// The most verbose level the host wants from plugins: 0 off, 1 error … 5 trace.
    pub max_level: u8,
    /// Takes one record: plugin name, level (1 error … 5 trace), target, message,
    /// module path, file, line (0 if unknown). Must not unwind.
    pub log: Option<unsafe extern "C" fn(RSlice, u8, RSlice, RSlice, RSlice, RSlice, u32)>,
    /// In a plugin's own process (isolated mode): the runner's channel, through which
    /// trait objects cross (see [`crate::remote`]); null in-process. Read only if
    /// `size` covers it.
    pub peer: *const crate::remote::PeerFns,
}

// SAFETY: the services are immutable once handed over, and the functions they point
// to may be called from any thread.
unsafe impl Send for HostServices {}
// SAFETY: as above.
unsafe impl Sync for HostServices {}

/// What a plugin's descriptor points at to receive [`HostServices`].
pub type AttachFn = unsafe extern "C" fn(services: *const HostServices, plugin: RSlice);

static SERVICES: AtomicPtr<HostServices> = AtomicPtr::new(std::ptr::null_mut());
static PLUGIN: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static PLUGIN_LEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Plugin side: keeps the host's services and installs the forwarding logger (unless
/// the plugin installed its own). Called by the host before the plugin's instance is
/// made.
///
/// # Safety
/// `services` must be null or live for as long as the library is loaded; `plugin` must
/// be a `'static` string of the plugin's own (its manifest name).
pub unsafe extern "C" fn attach(services: *const HostServices, plugin: RSlice) {
    PLUGIN.store(plugin.as_ptr_for_static().cast_mut(), Ordering::Release);
    PLUGIN_LEN.store(plugin.len(), Ordering::Release);
    SERVICES.store(services.cast_mut(), Ordering::Release);
    if services.is_null() {
        return;
    }
    // SAFETY: non-null, and live while the library is (the caller's guarantee).
    let (max, size) = unsafe { ((*services).max_level, (*services).size as usize) };
    if size >= std::mem::offset_of!(HostServices, peer) + size_of::<*const crate::remote::PeerFns>() {
        // SAFETY: `size` says the host's services have the field.
        let peer = unsafe { (*services).peer };
        if !peer.is_null() {
            // SAFETY: the runner's functions live as long as its process.
            crate::remote::attach(unsafe { &*peer });
        }
    }
    let level = match max {
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
}

struct Forward;

static FORWARD: Forward = Forward;

impl log::Log for Forward {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        let services = SERVICES.load(Ordering::Acquire);
        if services.is_null() || !self.enabled(record.metadata()) {
            return;
        }
        // SAFETY: set by `attach` to services that live as long as this library.
        let Some(deliver) = (unsafe { (*services).log }) else { return };
        let message = record.args().to_string();
        let (ptr, len) = (PLUGIN.load(Ordering::Acquire), PLUGIN_LEN.load(Ordering::Acquire));
        // SAFETY: `attach` stored a `'static` string's pointer and length.
        let plugin = if ptr.is_null() { &[][..] } else { unsafe { std::slice::from_raw_parts(ptr, len) } };
        let level = record.level() as u8;
        // SAFETY: the host's function, with borrows that live for the call.
        unsafe {
            deliver(
                RSlice::new(plugin),
                level,
                RSlice::new(record.target().as_bytes()),
                RSlice::new(message.as_bytes()),
                RSlice::new(record.module_path().unwrap_or("").as_bytes()),
                RSlice::new(record.file().unwrap_or("").as_bytes()),
                record.line().unwrap_or(0),
            )
        };
    }

    fn flush(&self) {}
}
