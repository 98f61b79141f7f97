//! The host end of plugins' `log` records (see `tomada::logging`): each record is given
//! to this process's `log` logger with the target `plugin::<name>`, unless the host
//! turned forwarding off with [`plugin_logs`].

use std::sync::atomic::{AtomicBool, Ordering};

use tomada::ffi::RSlice;
use tomada::logging::HostServices;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether plugins loaded from now on send their `log` records to this host's `log`
/// logger (the default), with the target `plugin::<name>` and the plugin's own module,
/// file and line. The level is this host's `log::max_level()` at load time.
///
/// ```
/// tomada_host::plugin_logs(false); // plugins loaded after this log nowhere
/// # tomada_host::plugin_logs(true);
/// ```
pub fn plugin_logs(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

const fn at_level(max_level: u8) -> HostServices {
    HostServices { size: size_of::<HostServices>() as u32, max_level, log: Some(deliver), peer: std::ptr::null() }
}

/// One set of services per level: statics, so a plugin may keep them for its life.
static SERVICES: [HostServices; 6] = [at_level(0), at_level(1), at_level(2), at_level(3), at_level(4), at_level(5)];

/// The services for a plugin loaded now.
pub(crate) fn services() -> *const HostServices {
    &SERVICES[level() as usize]
}

/// The most verbose level plugins loaded now may send (0: none).
pub(crate) fn level() -> u8 {
    if ENABLED.load(Ordering::Relaxed) { (log::max_level() as usize).min(5) as u8 } else { 0 }
}

/// A record as bytes, for a plugin's process to send to the host (isolation, Unix): level, then
/// message, module and file (each a `u32` length and its bytes), then line.
#[cfg(unix)]
pub(crate) fn encode_record(level: u8, message: &[u8], module: &[u8], file: &[u8], line: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 12 + message.len() + module.len() + file.len() + 4);
    out.push(level);
    for part in [message, module, file] {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&line.to_le_bytes());
    out
}

/// Delivers a record that came as bytes ([`encode_record`]) from plugin `plugin`'s
/// process; a malformed one is dropped.
#[cfg(unix)]
pub(crate) fn deliver_encoded(plugin: &str, bytes: &[u8]) {
    let Some((&level, mut rest)) = bytes.split_first() else { return };
    let mut parts = [&[][..]; 3];
    for part in &mut parts {
        let Some(len) = rest.get(..4).map(|l| u32::from_le_bytes(l.try_into().expect("4 bytes")) as usize) else {
            return;
        };
        let Some(bytes) = rest.get(4..4 + len) else { return };
        *part = bytes;
        rest = &rest[4 + len..];
    }
    let Ok(line) = <[u8; 4]>::try_from(rest) else { return };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    record(plugin, level, &text(parts[0]), &text(parts[1]), &text(parts[2]), u32::from_le_bytes(line));
}

/// # Safety
/// `s` must borrow bytes that live for `'a`.
unsafe fn text<'a>(s: RSlice) -> std::borrow::Cow<'a, str> {
    // SAFETY: guaranteed by the caller.
    String::from_utf8_lossy(unsafe { s.as_bytes() })
}

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
    let (plugin, message, module, file) = unsafe { (text(plugin), text(message), text(module), text(file)) };
    let _ = target; // the plugin's own target; its module path says the same
    record(&plugin, level, &message, &module, &file, line);
}

/// Gives one record of plugin `plugin` to this process's logger.
fn record(plugin: &str, level: u8, message: &str, module: &str, file: &str, line: u32) {
    // A logger that panics must not unwind into the plugin.
    let _ = std::panic::catch_unwind(|| {
        let level = match level {
            1 => log::Level::Error,
            2 => log::Level::Warn,
            3 => log::Level::Info,
            4 => log::Level::Debug,
            _ => log::Level::Trace,
        };
        let target = format!("plugin::{}", crate::escape::escape_controls(plugin));
        let module = (!module.is_empty()).then_some(module.as_ref());
        let file = (!file.is_empty()).then_some(file.as_ref());
        log::logger().log(
            &log::Record::builder()
                .level(level)
                .target(&target)
                .args(format_args!("{message}"))
                .module_path(module)
                .file(file)
                .line((line != 0).then_some(line))
                .build(),
        );
    });
}
