//! Fixture: a living plugin. Its version is `LIVING_VERSION` at build time (cargo
//! `--config 'env.LIVING_VERSION="2.0.0"'`), `1.0.0` without it, so tests build
//! several versions of the same crate and replace one with another under a host.
//! Exports `living_api::Living` (named `living`) and `pluginapi::Greeter` (named
//! `living-greeter`, for the seed's host binary).

use std::sync::atomic::{AtomicU64, Ordering};

use living_api::{Counter, Living};
use pluginapi::Greeter;

/// This build's version.
const VERSION: &str = match option_env!("LIVING_VERSION") {
    Some(v) => v,
    None => "1.0.0",
};

#[derive(Default)]
struct Alive {
    total: AtomicU64,
}

impl Alive {
    /// Starts from the total a predecessor handed over, if any.
    fn new(context: &tomada::Context) -> Self {
        let total = std::str::from_utf8(context.bytes()).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
        Alive { total: AtomicU64::new(total) }
    }
}

struct Count(AtomicU64);

impl Counter for Count {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
    fn version(&self) -> String {
        VERSION.into()
    }
}

impl Living for Alive {
    fn version(&self) -> String {
        VERSION.into()
    }
    fn counter(&self, start: u64) -> Box<dyn Counter> {
        Box::new(Count(AtomicU64::new(start)))
    }
    fn wait_for(&self, path: &str) -> bool {
        living_wait_for(path)
    }
    fn add(&self, n: u64) -> u64 {
        self.total.fetch_add(n, Ordering::SeqCst) + n
    }
    fn state(&self) -> Vec<u8> {
        self.total.load(Ordering::SeqCst).to_string().into_bytes()
    }
    fn hazard(&self, which: &str) -> bool {
        hazards::leave(which)
    }
}

/// A frame with a name of its own in a backtrace (the gdb test looks for it).
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "Rust" fn living_wait_for(path: &str) -> bool {
    // Says it is inside the call (the test attaches gdb only then).
    let _ = std::fs::write(format!("{path}.in"), b"");
    let path = std::path::Path::new(path);
    for _ in 0..60_000 {
        if path.exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
}

#[derive(Default)]
struct Hello;

impl Greeter for Hello {
    fn greet(&self, name: &str) -> String {
        format!("Olá, {name} (v{VERSION})")
    }
}

#[cfg(not(unix))]
mod hazards {
    /// No hazards here: the unload checks are Linux-only.
    pub(super) fn leave(_: &str) -> bool {
        false
    }
}

#[cfg(unix)]
mod hazards {
    /// Leaves a hazard behind; see `living_api::Living::hazard`.
    pub(super) fn leave(which: &str) -> bool {
        match which {
            "thread" => {
                // A thread that runs this library's code forever (started for
                // certain before this returns).
                let (started, wait) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let _ = started.send(());
                    loop {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                });
                wait.recv().is_ok()
            }
            which if which.starts_with("thread-while:") => {
                // A thread that runs this library's code while the file named after
                // the colon exists, then ends. Its stack is larger than glibc keeps for
                // reuse (its cache holds 40 MiB), so no later thread of the host can
                // start on it with this library's addresses left in it.
                let path = std::path::PathBuf::from(&which["thread-while:".len()..]);
                let (started, wait) = std::sync::mpsc::channel();
                let spawned = std::thread::Builder::new().stack_size(96 << 20).spawn(move || {
                    // Says which thread it is (`<path>.tid`; Linux: the unload checks
                    // that look at threads are Linux's).
                    #[cfg(target_os = "linux")]
                    // SAFETY: `gettid` has no preconditions.
                    let _ = std::fs::write(path.with_extension("tid"), unsafe { libc::gettid() }.to_string());
                    let _ = started.send(());
                    while path.exists() {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                });
                spawned.is_ok() && wait.recv().is_ok()
            }
            which if which.starts_with("key-slow:") => {
                // A key whose destructor, run at the exit of the thread that holds its
                // value (this one), says so (`<path>.in`), then blocks while `<path>`
                // exists, then says it is done (`<path>.out`).
                static PATH: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);
                extern "C" fn on_exit(_: *mut libc::c_void) {
                    let path = PATH.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let Some(path) = path else { return };
                    let _ = std::fs::write(path.with_extension("in"), b"");
                    while path.exists() {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    let _ = std::fs::write(path.with_extension("out"), b"");
                }
                *PATH.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(std::path::PathBuf::from(&which["key-slow:".len()..]));
                let mut key: libc::pthread_key_t = 0;
                // SAFETY: creates a key whose destructor is a function of this library,
                // and gives this thread a value for it (so the destructor runs at its exit).
                unsafe {
                    libc::pthread_key_create(&mut key, Some(on_exit)) == 0
                        && libc::pthread_setspecific(key, std::ptr::dangling::<libc::c_void>()) == 0
                }
            }
            which if which.starts_with("signal-slow:") => {
                // A SIGUSR1 handler that says it runs (`<path>.in`), then blocks while
                // `<path>` exists, then says it is done (`<path>.out`).
                static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
                extern "C" fn on_signal(_: libc::c_int) {
                    let Some(path) = PATH.get() else { return };
                    let _ = std::fs::write(path.with_extension("in"), b"");
                    while path.exists() {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    let _ = std::fs::write(path.with_extension("out"), b"");
                }
                let _ = PATH.set(std::path::PathBuf::from(&which["signal-slow:".len()..]));
                // SAFETY: installs a handler (a function of this library) for SIGUSR1;
                // the hazard under test is exactly that it runs after it is replaced.
                unsafe { libc::signal(libc::SIGUSR1, on_signal as *const () as libc::sighandler_t) };
                true
            }
            "raw-thread" => {
                // A thread started with `pthread_create` (so no value of `std`'s key),
                // in this library's code for good.
                extern "C" fn run(_: *mut libc::c_void) -> *mut libc::c_void {
                    loop {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                }
                let mut thread: libc::pthread_t = 0;
                // SAFETY: starts a thread running `run`, which takes no argument.
                unsafe { libc::pthread_create(&mut thread, std::ptr::null(), run, std::ptr::null_mut()) == 0 }
            }
            "signal" => {
                extern "C" fn on_signal(_: libc::c_int) {}
                // SAFETY: installs a handler (a function of this library) for SIGUSR2;
                // the hazard under test is exactly that it outlives the library.
                unsafe { libc::signal(libc::SIGUSR2, on_signal as *const () as libc::sighandler_t) };
                true
            }
            "key" => {
                extern "C" fn on_exit(_: *mut libc::c_void) {}
                let mut key: libc::pthread_key_t = 0;
                // SAFETY: creates a key whose destructor is a function of this library,
                // and gives this thread a value for it (so the destructor runs at its exit).
                unsafe {
                    libc::pthread_key_create(&mut key, Some(on_exit));
                    libc::pthread_setspecific(key, std::ptr::dangling::<libc::c_void>());
                }
                true
            }
            "spawn-join" => {
                // A thread started and joined: it has ended by the time this returns.
                std::thread::spawn(|| 5).join().is_ok_and(|five| five == 5)
            }
            "tls" => {
                thread_local! {
                    static HELD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
                }
                HELD.with(|h| h.borrow_mut().push(1));
                true
            }
            _ => false,
        }
    }
}

tomada::export!(
    Alive as living_api::Living = Alive::new(&tomada::context()); version = VERSION;
    Hello as pluginapi::Greeter; name = "living-greeter", version = VERSION
);
