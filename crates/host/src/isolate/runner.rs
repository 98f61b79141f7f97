//! The child side: a process that loads one plugin and serves calls to it.
//!
//! It knows no contract: it inspects and opens the file the host names (the host
//! has checked it against its contract already), then hands each call's method
//! number and encoded arguments to the plugin's own dispatch function.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tomada::ffi::Status;

use super::frame::{self, Header, Kind, ReadError, Waiter};
use super::{FD_VAR, MAX_FRAME_VAR, NUDGE_FD, PARENT_VAR, Sandbox};

/// How long the child may spin for the next call after answering one (only when
/// the last call came that quickly: see `Waiter`).
const SPIN: Duration = super::SPIN;

/// The most threads that serve calls at once.
const MAX_THREADS: usize = 64;

/// What the host asks the child to load.
pub(crate) struct LoadRequest {
    /// The plugin's path, for messages only.
    pub(crate) path: PathBuf,
    /// The inherited descriptor of the plugin file, which is what is loaded.
    pub(crate) fd: RawFd,
    pub(crate) sandbox: Option<Sandbox>,
    /// Which export of the library to open ([`tomada::Manifest::index`]).
    pub(crate) export: u32,
    /// What the plugin's constructor receives (`tomada::context()`).
    pub(crate) config: Vec<u8>,
}

impl LoadRequest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let sandbox = self.sandbox.as_ref().map(Sandbox::to_wire);
        let path = self.path.clone().into_os_string().into_vec();
        postcard::to_allocvec(&(path, self.fd, sandbox, self.export, &self.config)).expect("encodable")
    }

    fn decode(bytes: &[u8]) -> Result<LoadRequest, String> {
        type Wire = (Vec<u8>, RawFd, Option<super::sandbox::Wire>, u32, Vec<u8>);
        let (path, fd, sandbox, export, config): Wire =
            postcard::from_bytes(bytes).map_err(|e| format!("malformed load request: {e}"))?;
        Ok(LoadRequest {
            path: PathBuf::from(OsString::from_vec(path)),
            fd,
            sandbox: sandbox.map(Sandbox::from_wire),
            export,
            config,
        })
    }
}

/// If this process was started as a plugin runner, serves the plugin and exits;
/// otherwise returns at once. Call it first thing in `main` of a host that isolates
/// plugins with [`Runner::CurrentExe`](super::Runner::CurrentExe) (the default).
///
/// ```no_run
/// // First thing in `main`:
/// tomada_host::isolate::serve_if_runner();
/// // ... then the host's own work.
/// ```
pub fn serve_if_runner() {
    let Some(fd) = std::env::var_os(FD_VAR) else { return };
    // Only the number the host uses, and only if it is what the host passes there: a
    // Unix stream socket. Anything else in the environment is refused, not trusted.
    let code = match fd.to_str().and_then(|s| s.parse::<RawFd>().ok()) {
        Some(fd) if fd == super::CHILD_FD && is_unix_stream(fd) => serve(fd),
        _ => {
            eprintln!(
                "tomada runner: {FD_VAR} must be {} and name the host's socket; this process was not started by a tomada host",
                super::CHILD_FD
            );
            2
        }
    };
    std::process::exit(code);
}

/// Whether `fd` is an open Unix stream socket.
fn is_unix_stream(fd: RawFd) -> bool {
    // SAFETY: `fstat` writes into a local buffer; an invalid descriptor is an error.
    let mut stat = unsafe { std::mem::zeroed::<libc::stat>() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return false;
    }
    let option = |name| {
        let mut value: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `getsockopt` writes one int into `value`; `len` says its size.
        let ok = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, name, (&raw mut value).cast(), &mut len) } == 0;
        ok.then_some(value)
    };
    #[cfg(target_os = "linux")]
    let unix = option(libc::SO_DOMAIN) == Some(libc::AF_UNIX);
    #[cfg(not(target_os = "linux"))]
    let unix = true;
    unix && option(libc::SO_TYPE) == Some(libc::SOCK_STREAM)
}

fn serve(fd: RawFd) -> i32 {
    // Die with the host: the socket's EOF is the main signal, this the backstop.
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `prctl(PR_SET_PDEATHSIG)` takes plain integers.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        let parent: Option<i32> = std::env::var(PARENT_VAR).ok().and_then(|p| p.parse().ok());
        // SAFETY: `getppid` has no preconditions.
        if parent.is_some_and(|p| p != unsafe { libc::getppid() }) {
            return 3; // the host died before the death signal was armed
        }
    }
    // SAFETY: the host passed this descriptor, a socket of its `UnixStream` pair,
    // for this process alone to own.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    // Anything the plugin starts must not inherit the channel.
    // SAFETY: `fcntl(F_SETFD)` on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: as above, on the nudge eventfd (if the host passed none, this fails).
    unsafe { libc::fcntl(NUDGE_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    // The largest frame either side sends (the host reads replies with the same).
    let max = std::env::var(MAX_FRAME_VAR).ok().and_then(|m| m.parse().ok()).unwrap_or(frame::DEFAULT_MAX_FRAME);
    // Nor see these variables (it would take itself for a runner).
    // SAFETY: no other thread runs yet: the plugin is not loaded.
    unsafe {
        std::env::remove_var(FD_VAR);
        std::env::remove_var(PARENT_VAR);
        std::env::remove_var(MAX_FRAME_VAR);
    }
    let hello = Header { kind: Kind::Hello, status: 0, id: 0 };
    if let Err(e) = frame::write(&stream, hello, &[&frame::PROTOCOL.to_le_bytes(), &std::process::id().to_le_bytes()]) {
        eprintln!("tomada runner: cannot greet the host: {e}");
        return 2;
    }
    let request = match frame::read(&stream, &Waiter::blocking(), None, max) {
        Ok(f) if f.kind == Kind::Load => LoadRequest::decode(&f.payload),
        Ok(f) => Err(format!("expected a load request, got {:?}", f.kind)),
        Err(e) => Err(format!("no load request: {e:?}")),
    };
    // A load failure reaches the host as the same `LoadError` variant; anything else
    // as `LoadError::Isolation` with its reason.
    let fail_with = |stream: &UnixStream, why: crate::LoadError| {
        let _ = frame::write(stream, Header { kind: Kind::Failed, status: 0, id: 0 }, &[&why.to_wire()]);
        1
    };
    let fail = |stream: &UnixStream, reason: String| {
        fail_with(stream, crate::LoadError::Isolation { path: PathBuf::new(), reason })
    };
    let request = match request {
        Ok(r) => r,
        Err(why) => return fail(&stream, why),
    };
    // Containment first (a PID namespace: this process becomes supervisor, init and
    // worker, and only the worker returns), then the sandbox: both before the plugin's
    // file is opened, so its initialisers run inside.
    if let Err(why) = super::contain::enter_pid_namespace(fd)
        && request.sandbox.as_ref().is_some_and(|s| !s.accept_weaker)
    {
        return fail(&stream, format!("{why}; a sandboxed plugin needs it (or `Sandbox::accept_weaker_kernel()`)"));
    }
    let sandboxed = match &request.sandbox {
        Some(sandbox) => super::sandbox::apply(sandbox, &request.path),
        None => super::sandbox::contain_always(),
    };
    if let Err(why) = sandboxed {
        return fail(&stream, why);
    }
    // The plugin file: the host's open descriptor, checked like any file.
    let file = if request.fd == super::PLUGIN_FD {
        // SAFETY: `fstat` writes into a local buffer; an invalid descriptor is an error.
        let mut stat = unsafe { std::mem::zeroed::<libc::stat>() };
        // SAFETY: as above.
        let open = unsafe { libc::fstat(request.fd, &mut stat) } == 0;
        if !open || stat.st_mode & libc::S_IFMT != libc::S_IFREG {
            return fail(&stream, format!("descriptor {} is not the plugin file", request.fd));
        }
        // SAFETY: the host passed this descriptor (checked above to be an open regular
        // file) for this process alone; nothing else here owns it.
        let file = unsafe { std::fs::File::from_raw_fd(request.fd) };
        // SAFETY: `fcntl(F_SETFD)` on a descriptor we own.
        unsafe { libc::fcntl(request.fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        crate::file::PluginFile::from_file(request.path.clone(), request.path.clone(), file)
    } else {
        return fail(&stream, format!("the plugin file must be descriptor {}", super::PLUGIN_FD));
    };
    let file = match file {
        Ok(f) => f,
        Err(e) => return fail_with(&stream, e),
    };
    let mut inspection = match crate::inspect::inspect_file(&file) {
        Ok(i) => i,
        Err(e) => return fail_with(&stream, e),
    };
    // The export the host checked (the host compares its manifest with its own).
    if let Err(e) = inspection.choose(request.export) {
        return fail_with(&stream, e);
    }
    let local = match crate::open(file, &inspection, &request.config) {
        Ok(l) => l,
        Err(e) => return fail_with(&stream, e),
    };
    if frame::write(&stream, Header { kind: Kind::Ready, status: 0, id: 0 }, &[&inspection.manifest_bytes]).is_err() {
        return 1;
    }
    // Served until the process ends: the plugin lives as long as the process.
    let server: &'static Server = Box::leak(Box::new(Server {
        plugin: Served { dispatch: local.dispatch, this: local.this },
        stream,
        reading: Mutex::new(()),
        writing: Mutex::new(()),
        max,
        idle: AtomicUsize::new(0),
        threads: AtomicUsize::new(1),
        busy: AtomicUsize::new(0),
    }));
    std::mem::forget(local);
    // One pool thread waits for nudges from the start; each one that takes a nudge
    // while none is left waiting starts another.
    server.grow();
    server.main_loop()
}

/// The plugin's dispatch function and instance, shared by the serving threads.
struct Served {
    dispatch: tomada::client::DispatchFn,
    this: *const std::ffi::c_void,
}

// SAFETY: a contract trait is `Send + Sync` (the `#[contract]` macro requires it), so
// its instance may be called from any thread, at once; the dispatch function is plain
// code.
unsafe impl Send for Served {}
// SAFETY: as above.
unsafe impl Sync for Served {}

/// Serves calls: the main thread reads a call and serves it itself (no hand-off to
/// another thread for calls one at a time). When the host sends a call while others
/// are in flight, it also posts to the nudge eventfd (descriptor 5); a pool thread
/// takes the post, reads that call and serves it, so calls run at once, each on its
/// own thread, and a slow call never holds up the others. Replies go back in
/// whatever order the calls end, each with its request id.
struct Server {
    plugin: Served,
    stream: UnixStream,
    /// Held while one frame is read: frames are read whole, by one thread.
    reading: Mutex<()>,
    /// Held while one frame is written.
    writing: Mutex<()>,
    max: usize,
    /// Pool threads waiting for a nudge.
    idle: AtomicUsize,
    /// Serving threads, the main one included.
    threads: AtomicUsize,
    /// Pool threads serving a call now.
    busy: AtomicUsize,
}

impl Server {
    fn lock<'a>(&self, m: &'a Mutex<()>) -> std::sync::MutexGuard<'a, ()> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The main thread: reads a call, serves it, and so on; ends the process when
    /// the channel ends.
    fn main_loop(&'static self) -> ! {
        let waiter = Waiter::new(SPIN);
        let mut buf = Vec::new();
        loop {
            let read = {
                let _reading = self.lock(&self.reading);
                // Spin only while calls come one at a time: with more, the CPUs are
                // better left to the threads serving them.
                let alone = self.busy.load(Ordering::Relaxed) == 0;
                frame::read_into_spinning(&self.stream, &waiter, alone, None, self.max, &mut buf)
            };
            self.handle(read, &buf);
        }
    }

    /// A pool thread: waits for a nudge, then reads and serves one call if one is
    /// there (the main thread may have taken it).
    fn pool_loop(&'static self) -> ! {
        let waiter = Waiter::blocking();
        let mut buf = Vec::new();
        loop {
            self.idle.fetch_add(1, Ordering::SeqCst);
            let mut count = 0u64;
            // SAFETY: reading 8 bytes into a local from the nudge eventfd.
            let n = unsafe { libc::read(NUDGE_FD, (&raw mut count).cast(), 8) };
            let idle = self.idle.fetch_sub(1, Ordering::SeqCst) - 1;
            if n != 8 {
                if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                // No nudges (no descriptor 5): calls are served by the main thread.
                park_forever();
            }
            if idle == 0 {
                self.grow();
            }
            let read = {
                let _reading = self.lock(&self.reading);
                let mut pfd = libc::pollfd { fd: self.stream.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid `pollfd`; a zero timeout only looks.
                if unsafe { libc::poll(&mut pfd, 1, 0) } <= 0 {
                    continue; // taken by another thread already
                }
                frame::read_into(&self.stream, &waiter, None, self.max, &mut buf)
            };
            self.busy.fetch_add(1, Ordering::Relaxed);
            self.handle(read, &buf);
            self.busy.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Starts one more pool thread, if there are not too many already.
    fn grow(&'static self) {
        if self.threads.fetch_add(1, Ordering::SeqCst) >= MAX_THREADS {
            self.threads.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let started = std::thread::Builder::new().name("tomada-serve".into()).spawn(move || self.pool_loop());
        if started.is_err() {
            self.threads.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Serves one call and sends its reply; ends the process if the channel ended
    /// or is corrupted.
    fn handle(&self, read: Result<frame::Header, ReadError>, payload: &[u8]) {
        let header = match read {
            Ok(h) if h.kind == Kind::Call && payload.len() >= 4 => h,
            // The host closed the channel: it is done with us, or gone.
            Err(ReadError::Eof) => std::process::exit(0),
            // Anything else is a broken host or a corrupted channel: stop.
            Ok(_) | Err(_) => std::process::exit(4),
        };
        let method = u32::from_le_bytes(payload[..4].try_into().expect("4 bytes"));
        // SAFETY: `dispatch` is the plugin's (descriptor checked by `open`), `this` its
        // instance (callable from any thread), and the arguments live for the call.
        let (status, body) =
            unsafe { crate::plugin_fn::dispatch(self.plugin.dispatch, self.plugin.this, method, &payload[4..]) };
        let too_large;
        let (status, body) = if body.as_slice().len() + frame::HEADER_REST > self.max {
            // Refused here, so the host never reads (nor allocates) it.
            too_large = format!(
                "the plugin's answer takes {} bytes, over the limit of {} bytes",
                body.as_slice().len(),
                self.max
            );
            (Status::MALFORMED, too_large.as_bytes())
        } else {
            (status, body.as_slice())
        };
        let sent = {
            let _writing = self.lock(&self.writing);
            frame::write(&self.stream, Header { kind: Kind::Reply, status: status.0, id: header.id }, &[body])
        };
        if sent.is_err() {
            std::process::exit(0);
        }
    }
}

/// Parks this thread for good.
fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}
