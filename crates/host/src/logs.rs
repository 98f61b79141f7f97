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
    HostServices { size: size_of::<HostServices>() as u32, max_level, log: Some(deliver) }
}

/// One set of services per level: statics, so a plugin may keep them for its life.
static SERVICES: [HostServices; 6] = [at_level(0), at_level(1), at_level(2), at_level(3), at_level(4), at_level(5)];

/// The services for a plugin loaded now.
pub(crate) fn services() -> *const HostServices {
    let level = if ENABLED.load(Ordering::Relaxed) { log::max_level() as usize } else { 0 };
    &SERVICES[level.min(5)]
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
    // A logger that panics must not unwind into the plugin.
    let _ = std::panic::catch_unwind(|| {
        let level = match level {
            1 => log::Level::Error,
            2 => log::Level::Warn,
            3 => log::Level::Info,
            4 => log::Level::Debug,
            _ => log::Level::Trace,
        };
        // SAFETY: the plugin passes borrows that live for this call, which is where
        // the texts are used.
        let (plugin, message, module, file) = unsafe { (text(plugin), text(message), text(module), text(file)) };
        let _ = target; // the plugin's own target; its module path says the same
        let target = format!("plugin::{}", crate::escape::escape_controls(&plugin));
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
