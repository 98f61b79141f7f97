//! The child side: a process that loads one plugin and serves calls to it.
//!
//! It knows no contract: it opens the file the host passes (the host has inspected
//! it and checked it against its contract already; the runner inspects it again
//! unless it is the host's sealed copy, see `inspected_by_host`), then hands each
//! call's method number and encoded arguments to the plugin's own dispatch function.

use std::cell::Cell;
use std::collections::VecDeque;
#[cfg(unix)]
use std::os::fd::{FromRawFd, RawFd};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tomada::ffi::{RSlice, RVec, Status};
use tomada::logging::HostServices;
use tomada::remote::{Exported, PeerFns};

use crate::LaunchError;

use super::endpoint::{Endpoint, Handler, Incoming, Objects, Read, Request, WaitError};
use super::frame::{self, Header, Kind, ReadBuf, ReadError, Waiter};
use super::protocol::{self, FD_VAR, LoadRequest, MAX_FRAME_VAR, PARENT_VAR, SOCKET_VAR};
#[cfg(unix)]
use super::protocol::{CHILD_FD, NUDGE_FD, PLUGIN_FD, SPARE_VAR};
use super::transport::{Link, Transport};

/// How long the child may spin for the next call after answering one (only when
/// spinning pays: see `Waiter`).
const SPIN: Duration = super::SPIN;

/// The most threads that serve calls at once.
const MAX_THREADS: usize = 64;
/// How long a nudged pool thread waits for the call's bytes to reach this side
/// (Windows: see `Server::pool_loop`); a hang guard, not a figure: they come at once
/// unless the machine is very busy.
#[cfg(windows)]
const NUDGE_LAG: Duration = Duration::from_secs(5);

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
    #[cfg(windows)]
    let code = match super::windows::runner_channel(&fd) {
        Some(pipe) => serve_on(pipe, 0, |pipe| (Link::Pipe(pipe), Vec::new()), || Ok(true)),
        None => {
            eprintln!(
                "tomada runner: {FD_VAR} must name the host's pipes; this process was not started by a tomada host"
            );
            2
        }
    };
    // Only the number the host uses, and only if it is what the host passes there: a
    // Unix stream socket. Anything else in the environment is refused, not trusted.
    #[cfg(unix)]
    let code = match fd.to_str().and_then(|s| s.parse::<RawFd>().ok()) {
        Some(fd) if fd == CHILD_FD && is_unix_stream(fd) => serve(fd),
        _ => {
            eprintln!(
                "tomada runner: {FD_VAR} must be {} and name the host's socket; this process was not started by a tomada host",
                CHILD_FD
            );
            2
        }
    };
    std::process::exit(code);
}

/// Whether `fd` is an open Unix stream socket.
#[cfg(unix)]
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

#[cfg(unix)]
fn serve(fd: RawFd) -> i32 {
    super::steps::mark("runner: main");
    // Large arguments and results are allocated and freed on every call; glibc would
    // give freed memory back to the kernel each time and take fresh (zero-filled,
    // faulted-in) pages for the next call. This process is the plugin's alone: keep
    // what it freed, up to 64 MiB, for reuse, and serve allocations up to 32 MiB from
    // the heap rather than from fresh mappings.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` takes plain integers; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
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
    // SAFETY: as above, on the nudge pipe (if the host passed none, this fails).
    unsafe { libc::fcntl(NUDGE_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    // The shared memory the frames go through after the handshake, and its bells.
    // (Unless the host relays the socket's bytes elsewhere: see `Isolation::socket_only`.)
    #[cfg(target_os = "linux")]
    let socket_only = std::env::var_os(SOCKET_VAR).is_some();
    #[cfg(target_os = "linux")]
    let shared = (!socket_only).then(take_shared);
    #[cfg(target_os = "linux")]
    let lane_count = match &shared {
        Some(Ok((_, _, lanes))) => lanes.len(),
        _ => 0,
    };
    #[cfg(not(target_os = "linux"))]
    let lane_count = 0;
    // Frames go through the shared memory once the handshake (on the socket) is done.
    #[cfg(target_os = "linux")]
    let link = move |stream| match shared {
        None => (Link::Socket(stream), Vec::new()),
        Some(Ok((memfd, bells, lanes))) => {
            let socket = std::sync::Arc::new(stream);
            use super::transport::shm::Shared;
            let mapped = |shared: std::io::Result<Shared>| match shared {
                Ok(shared) => Link::Rings(shared),
                Err(e) => {
                    eprintln!("tomada runner: cannot map the channel's shared memory: {e}");
                    std::process::exit(1);
                }
            };
            // (The lanes are mapped when the host asks for them: `Server::start_lanes`.)
            let lanes = lanes.into_iter().map(|(memfd, bell)| (memfd, bell, std::sync::Arc::clone(&socket))).collect();
            (mapped(Shared::new(memfd, bells, false, socket, None)), lanes)
        }
        Some(Err(why)) => {
            eprintln!("tomada runner: {why}");
            std::process::exit(1);
        }
    };
    #[cfg(not(target_os = "linux"))]
    let link = |stream| (Link::Socket(stream), Vec::new());
    // A spare runner (started before any plugin was chosen) receives the plugin file
    // after its hello (Linux with glibc: the only hosts that start spares).
    let spare = std::env::var_os(SPARE_VAR).is_some();
    // SAFETY: no other thread runs yet.
    unsafe { std::env::remove_var(SPARE_VAR) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let before_load = move || if spare { protocol::receive_plugin_file(fd) } else { Ok(true) };
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let before_load = move || if spare { Err(LaunchError::MissingDescriptor { fd: PLUGIN_FD }) } else { Ok(true) };
    serve_on(stream, lane_count, link, before_load)
}

/// Serves the plugin over `stream` (the handshake, then the frames through the link
/// `link` makes of it). `before_load` runs after the hello (a spare runner receives
/// its plugin file there); `Ok(false)` from it ends this process quietly (the host
/// needed no spare any more).
fn serve_on<S: Transport>(
    stream: S,
    lane_count: usize,
    link: impl FnOnce(S) -> (Link, Vec<Dormant>),
    before_load: impl FnOnce() -> Result<bool, LaunchError>,
) -> i32 {
    // The largest frame either side sends (the host reads replies with the same).
    let max = std::env::var(MAX_FRAME_VAR).ok().and_then(|m| m.parse().ok()).unwrap_or(frame::DEFAULT_MAX_FRAME);
    // Frames stay on the socket (nobody spins for them) when the host relays its bytes.
    let socket_only = std::env::var_os(SOCKET_VAR).is_some();
    // Nor see these variables (it would take itself for a runner).
    // SAFETY: no other thread runs yet: the plugin is not loaded (on Windows the
    // channel's reader thread runs, and reads no variable).
    unsafe {
        std::env::remove_var(FD_VAR);
        std::env::remove_var(PARENT_VAR);
        std::env::remove_var(MAX_FRAME_VAR);
        std::env::remove_var(SOCKET_VAR);
        #[cfg(target_os = "linux")]
        std::env::remove_var(protocol::LANES_VAR);
        #[cfg(windows)]
        std::env::remove_var(protocol::NUDGE_VAR);
    }
    if let Err(e) = protocol::greet(&stream) {
        eprintln!("tomada runner: cannot greet the host: {e}");
        return 2;
    }
    super::steps::mark("runner: hello sent");
    // A load failure reaches the host as the same `LoadError` variant; anything else
    // as `LoadError::Isolation` with its reason.
    let fail_with = |stream: &S, why: crate::LoadError| {
        protocol::refuse(stream, &why);
        1
    };
    let fail = |stream: &S, source: LaunchError| {
        fail_with(stream, crate::LoadError::Isolation { path: PathBuf::new(), source })
    };
    match before_load() {
        Ok(true) => {}
        Ok(false) => return 0,
        Err(why) => return fail(&stream, why),
    }
    let request = protocol::read_load_request(&stream, max);
    super::steps::mark("runner: load request read");
    let request = match request {
        Ok(r) => r,
        Err(why) => return fail(&stream, why),
    };
    super::transport::assume_several_cpus(request.several_cpus);
    let file = match open_plugin(&request) {
        Ok(Ok(f)) => Ok(f),
        Ok(Err(e)) => Err(e),
        Err(why) => return fail(&stream, why),
    };
    let file = match file {
        Ok(f) => f,
        Err(e) => return fail_with(&stream, e),
    };
    super::steps::mark("worker: contained, sandboxed, file checked");
    let inspection = match inspected_by_host(&file, &request) {
        Some(inspection) => inspection,
        None => {
            let mut inspection = match crate::inspect::inspect_file(&file) {
                Ok(i) => i,
                Err(e) => return fail_with(&stream, e),
            };
            // The export the host checked (the host compares its manifest with its own).
            if let Err(e) = inspection.choose(request.export) {
                return fail_with(&stream, e);
            }
            inspection
        }
    };
    // The plugin's log records and its objects' calls go through this process's
    // channel (see `PEER` and `log_record`).
    let (log_level, tracing_level) = crate::logs::split_levels(request.log_level);
    let services: &'static HostServices = Box::leak(Box::new(HostServices {
        size: size_of::<HostServices>() as u32,
        max_level: log_level,
        log: Some(log_record),
        peer: &PEER,
        record: Some(record_bytes),
        tracing_level,
    }));
    super::steps::mark("worker: inspection");
    let local = match crate::open(file, &inspection, services, &request.config) {
        Ok(l) => l,
        Err(e) => return fail_with(&stream, e),
    };
    super::steps::mark("worker: dlopen + constructor");
    // What the constructor logged goes before `Ready`, so the host delivers it while
    // loading, as it does in-process.
    for record in take_early_logs() {
        let _ = frame::write(&stream, Header { kind: Kind::Log, status: 0, id: 0 }, &[&record]);
    }
    // `Ready` says how many lanes this process holds (see `Lane`): they are mapped and
    // served once the host asks (`Server::start_lanes`), when its calls overlap.
    if protocol::ready(&stream, &inspection.manifest_bytes, lane_count.min(usize::from(u8::MAX)) as u8).is_err() {
        return 1;
    }
    super::steps::mark("worker: ready sent");
    let (link, lanes) = link(stream);
    super::steps::mark("worker: rings mapped");
    // Served until the process ends: the plugin lives as long as the process.
    let server: &'static Server = Box::leak(Box::new(Server {
        plugin: Served {
            dispatch: local.dispatch,
            this: local.this,
            destroy: local.destroy,
            dropped: AtomicBool::new(false),
            bytes_alone: inspection.manifest.flags & tomada::descriptor::flags::BYTES_ALONE != 0,
        },
        // (A remote host's next call comes over the network: spinning for it would
        // only take the CPU from the relay that brings it.)
        endpoint: Endpoint::new(link, false, Waiter::new(if socket_only { Duration::ZERO } else { SPIN }), max),
        objects: Objects::new(),
        running: Mutex::default(),
        pending: Mutex::new(VecDeque::new()),
        #[cfg(not(target_os = "linux"))]
        standby: Mutex::new(()),
        idle: AtomicUsize::new(0),
        threads: AtomicUsize::new(1),
        spare: Mutex::new(Vec::new()),
        lanes: Mutex::new(Lanes::Dormant(lanes)),
        max,
        socket_only,
    }));
    std::mem::forget(local);
    if SERVER.set(server).is_err() {
        return 1;
    }
    flush_early_logs(server);
    // One pool thread waits for nudges from the start; each one that takes a nudge
    // while none is left waiting starts another.
    server.grow();
    super::steps::mark("worker: pool thread started");
    server.main_loop()
}

/// What the host inspected, if `file` is a sealed copy (Linux: a `memfd` sealed
/// against writing, shrinking and growing, so its bytes are still those the host
/// checked) and `request` carries the chosen export's manifest: then the file is not
/// inspected a second time. (The loaded library's own manifest is still compared
/// with these bytes, see `crate::open`.) `None` otherwise: the file is inspected here.
fn inspected_by_host(file: &crate::file::PluginFile, request: &LoadRequest) -> Option<crate::inspect::Inspection> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        const SEALED: libc::c_int = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
        // SAFETY: `F_GET_SEALS` reads the descriptor's seals; no memory is passed.
        let seals = unsafe { libc::fcntl(file.file.as_raw_fd(), libc::F_GET_SEALS) };
        if seals < 0 || seals & SEALED != SEALED {
            return None;
        }
        let manifest = tomada::Manifest::parse(&request.manifest).ok()?;
        if manifest.index != request.export {
            return None;
        }
        let export = crate::inspect::Export { manifest: manifest.clone(), manifest_bytes: request.manifest.clone() };
        Some(crate::inspect::Inspection {
            path: file.path.clone(),
            manifest,
            manifest_bytes: request.manifest.clone(),
            exports: vec![export],
            needed: Vec::new(),
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, request);
        None
    }
}

/// Contains and sandboxes this process as `request` asks, then opens the plugin file
/// the host passed: the file (or the `LoadError` it fails with), or why not.
#[cfg(unix)]
fn open_plugin(request: &LoadRequest) -> Result<Result<crate::file::PluginFile, crate::LoadError>, LaunchError> {
    // Containment first (a PID namespace: this process becomes supervisor, init and
    // worker, and only the worker returns), then the sandbox: both before the plugin's
    // file is opened, so its initialisers run inside.
    if let Err(why) = super::contain::enter_pid_namespace(CHILD_FD, request.sandbox.as_ref())
        && request.sandbox.as_ref().is_some_and(|s| !s.accept_weaker)
    {
        return Err(LaunchError::Contain { source: std::io::Error::other(why) });
    }
    // Root in the sandbox is not root (no capability, an unprivileged uid on a root
    // host, limits that cannot be raised), then Landlock and seccomp.
    super::steps::mark("worker: started");
    let sandboxed = match &request.sandbox {
        Some(sandbox) => {
            // SAFETY: descriptor 4 stays open for the life of this process (it becomes
            // the plugin file below); the borrow ends within this block.
            let plugin = unsafe { std::os::fd::BorrowedFd::borrow_raw(PLUGIN_FD) };
            super::sandbox::drop_privileges(sandbox, plugin).and_then(|()| {
                super::steps::mark("worker: privileges dropped");
                super::sandbox::apply(sandbox, plugin, &request.filters)
            })
        }
        None => super::sandbox::contain_always(&request.filters),
    };
    if let Err(why) = sandboxed {
        return Err(LaunchError::Sandbox { source: std::io::Error::other(why) });
    }
    // The plugin file: the host's open descriptor, checked like any file.
    if request.fd == PLUGIN_FD {
        // SAFETY: `fstat` writes into a local buffer; an invalid descriptor is an error.
        let mut stat = unsafe { std::mem::zeroed::<libc::stat>() };
        // SAFETY: as above.
        let open = unsafe { libc::fstat(request.fd, &mut stat) } == 0;
        if !open || stat.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(LaunchError::NotThePluginFile { fd: request.fd });
        }
        // SAFETY: the host passed this descriptor (checked above to be an open regular
        // file) for this process alone; nothing else here owns it.
        let file = unsafe { std::fs::File::from_raw_fd(request.fd) };
        // SAFETY: `fcntl(F_SETFD)` on a descriptor we own.
        unsafe { libc::fcntl(request.fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(crate::file::PluginFile::from_file(request.path.clone(), request.path.clone(), file))
    } else {
        Err(LaunchError::PluginDescriptor { expected: PLUGIN_FD })
    }
}

/// Opens the plugin file the host passed (Windows: no sandbox, refused by the host
/// already, and again here).
#[cfg(windows)]
fn open_plugin(request: &LoadRequest) -> Result<Result<crate::file::PluginFile, crate::LoadError>, LaunchError> {
    if request.sandbox.is_some() {
        return Err(LaunchError::SandboxUnsupported { platform: std::env::consts::OS });
    }
    let file = super::windows::plugin_file(request.fd).ok_or(LaunchError::NotThePluginFile { fd: request.fd })?;
    // The loader takes a path: the host's, made absolute there.
    Ok(crate::file::PluginFile::from_file(request.path.clone(), request.path.clone(), file))
}

/// The shared memory and bells the host passed (descriptors 6 to 10, and each lane's
/// from `protocol::LANE_FD` on), owned from here
/// on and closed at exec.
#[cfg(target_os = "linux")]
fn take_shared() -> Result<SharedEnds, LaunchError> {
    use std::os::fd::OwnedFd;
    let take = |fd: RawFd| {
        // SAFETY: `fstat` writes into a local buffer; an invalid descriptor is an error.
        let mut stat = unsafe { std::mem::zeroed::<libc::stat>() };
        // SAFETY: as above.
        if unsafe { libc::fstat(fd, &mut stat) } != 0 {
            return Err(LaunchError::MissingDescriptor { fd });
        }
        // SAFETY: `fcntl(F_SETFD)` on a descriptor the host passed us alone.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        // SAFETY: open (above), passed by the host for this process alone.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    // The memory at `first`, then its four bells.
    let rings = |first: RawFd| -> Result<(OwnedFd, super::transport::shm::Bells), LaunchError> {
        let memfd = take(first)?;
        let bells = super::transport::shm::Bells {
            host_data: take(first + 1)?,
            host_room: take(first + 2)?,
            child_data: take(first + 3)?,
            child_room: take(first + 4)?,
        };
        Ok((memfd, bells))
    };
    const _: () =
        assert!(protocol::BELL_FDS[0] == protocol::SHM_FD + 1 && protocol::BELL_FDS[3] == protocol::SHM_FD + 4);
    let (memfd, bells) = rings(protocol::SHM_FD)?;
    let lanes: usize = std::env::var(protocol::LANES_VAR).ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    // Each lane's memory, then its bell (see `shm::Wake::ChildLane`).
    let lanes = (0..lanes.min(protocol::MAX_LANES))
        .map(|i| {
            let first = protocol::LANE_FD + protocol::LANE_FDS * i as RawFd;
            Ok((take(first)?, take(first + 1)?))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((memfd, bells, lanes))
}

/// The shared memories and bells the host passed: the main rings', then each lane's.
#[cfg(target_os = "linux")]
type SharedEnds =
    (std::os::fd::OwnedFd, super::transport::shm::Bells, Vec<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>);

/// The server, for the functions the plugin calls back through (`PEER`, `log_record`).
static SERVER: OnceLock<&'static Server> = OnceLock::new();

/// The runner's channel as the plugin's copy of tomada sees it (see `tomada::remote`).
static PEER: PeerFns = PeerFns { export: peer_export, revoke: peer_revoke, call: peer_call, release: peer_release };

unsafe extern "C" fn peer_export(object: Exported) -> u64 {
    match SERVER.get() {
        Some(server) => server.objects.insert(object),
        // No server yet (the plugin's constructor): nobody could call it.
        None => {
            // SAFETY: the one release of an object nobody else has.
            unsafe { object.release() };
            0
        }
    }
}

unsafe extern "C" fn peer_revoke(id: u64) {
    if let Some(server) = SERVER.get() {
        server.objects.revoke(id);
    }
}

unsafe extern "C" fn peer_release(id: u64) {
    if let Some(server) = SERVER.get() {
        server.channel().release(id);
    }
}

unsafe extern "C" fn peer_call(id: u64, method: u32, args: RSlice, out: *mut RVec) -> Status {
    let (status, body) = match SERVER.get() {
        // SAFETY: the plugin passes arguments that live for this call.
        Some(server) => server.callback(id, method, unsafe { args.as_bytes() }),
        None => (Status::MALFORMED, b"no host to call back yet (the plugin is still being made)".to_vec()),
    };
    // SAFETY: the plugin passes a writable `out`.
    unsafe { out.write(RVec::from_vec(body)) };
    status
}

unsafe extern "C" fn log_record(
    _plugin: RSlice,
    level: u8,
    _target: RSlice,
    message: RSlice,
    module: RSlice,
    file: RSlice,
    line: u32,
) {
    // SAFETY: the plugin passes borrows that live for this call.
    let record =
        unsafe { crate::logs::encode_record(level, message.as_bytes(), module.as_bytes(), file.as_bytes(), line) };
    send_log(&record);
}

/// A record the plugin encoded itself (`tomada::logging::Record`), sent as it is: the
/// host decodes (and escapes) it; the export's name is the host's to give.
unsafe extern "C" fn record_bytes(_plugin: RSlice, bytes: RSlice) {
    // SAFETY: the plugin passes borrows that live for this call.
    send_log(unsafe { bytes.as_bytes() });
}

/// Records logged before the server exists (by the plugin's constructor), sent once it
/// does; `None` from then on. At most [`EARLY_MAX`] bytes are kept; later ones are dropped.
static EARLY: Mutex<Option<Vec<Vec<u8>>>> = Mutex::new(Some(Vec::new()));
const EARLY_MAX: usize = 64 << 10;

/// Sends one encoded record to the host: before the reply of the call that logged it,
/// so the host delivers it first; kept for later while the plugin is being made.
fn send_log(record: &[u8]) {
    {
        let mut early = EARLY.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = early.as_mut() {
            if kept.iter().map(Vec::len).sum::<usize>() + record.len() <= EARLY_MAX {
                kept.push(record.to_vec());
            }
            return;
        }
    }
    if let Some(server) = SERVER.get() {
        let _ = server.channel().write(Header { kind: Kind::Log, status: 0, id: 0 }, &[record]);
    }
}

/// The records kept so far (logged while the plugin was made); later ones are kept
/// until [`flush_early_logs`].
fn take_early_logs() -> Vec<Vec<u8>> {
    EARLY.lock().unwrap_or_else(|e| e.into_inner()).as_mut().map(std::mem::take).unwrap_or_default()
}

/// Sends the records logged since [`take_early_logs`], in order, before any call is
/// served (the lock holds back records logged meanwhile, so order is kept).
fn flush_early_logs(server: &Server) {
    let mut early = EARLY.lock().unwrap_or_else(|e| e.into_inner());
    for record in early.take().unwrap_or_default() {
        let _ = server.endpoint.write(Header { kind: Kind::Log, status: 0, id: 0 }, &[&record]);
    }
}

/// The plugin's dispatch function and instance, shared by the serving threads.
struct Served {
    dispatch: tomada::client::DispatchFn,
    this: *const std::ffi::c_void,
    destroy: tomada::descriptor::DestroyFn,
    /// The host dropped its handle: the instance is destroyed (its library stays,
    /// for the objects it made).
    dropped: AtomicBool,
    /// Its dispatch function answers a byte string with its bytes alone when asked
    /// (its manifest's `flags::BYTES_ALONE`): they are sent from the plugin's own
    /// buffer, their length before them (`Endpoint::serve`), not encoded into another
    /// buffer first.
    bytes_alone: bool,
}

// SAFETY: a contract trait is `Send + Sync` (the `#[contract]` macro requires it), so
// its instance may be called from any thread, at once; the dispatch function is plain
// code.
unsafe impl Send for Served {}
// SAFETY: as above.
unsafe impl Sync for Served {}

/// Serves calls: the main thread reads a call and serves it itself (no hand-off to
/// another thread for calls one at a time). When the host sends a call while others
/// are in flight, it also posts to the nudge pipe (descriptor 5: this process's own
/// read-write opening of it, see `NUDGE_FD`); a pool thread
/// takes the post, reads that call and serves it, so calls run at once, each on its
/// own thread, and a slow call never holds up the others. Replies go back in
/// whatever order the calls end, each with its request id. A thread waiting for the
/// host's answer to a callback reads too (see `endpoint`), and hands a new call it
/// reads to the pool (`pending`).
struct Server {
    plugin: Served,
    endpoint: Endpoint,
    /// The plugin's objects the host holds, by number.
    objects: Objects,
    /// The plugin's calls being served, by request id: the address of their `out`
    /// slot (how an async call is cancelled).
    running: Mutex<rustc_hash::FxHashMap<u64, usize>>,
    /// Calls read by a thread that cannot serve them (it waits for a callback's
    /// answer), for a pool thread.
    pending: Mutex<VecDeque<Request>>,
    /// Held by the pool thread that waits for a nudge.
    #[cfg(not(target_os = "linux"))]
    standby: Mutex<()>,
    /// Pool threads waiting for a nudge, or to be the one that does.
    idle: AtomicUsize,
    /// Serving threads, the main one included.
    threads: AtomicUsize,
    /// A call's arguments buffer, given back once the call is served, for the next
    /// call to be read into (see [`Server::recycle`]): a large argument then lands in
    /// pages already in use, not fresh ones faulted in call after call.
    spare: Mutex<Vec<u8>>,
    /// The lanes the host passed: dormant until it asks for them, then served.
    lanes: Mutex<Lanes>,
    /// The largest frame either side sends (for the lanes' endpoints).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // (no lanes there)
    max: usize,
    /// Frames stay on the socket (nobody spins for them).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    socket_only: bool,
}

/// A lane the host passed (Linux): its memory and this side's end of its bell, with
/// the channel's socket; mapped and served once the host asks (see
/// [`Server::start_lanes`]).
#[cfg(target_os = "linux")]
type Dormant = (std::os::fd::OwnedFd, std::os::fd::OwnedFd, std::sync::Arc<UnixStream>);
/// (No lanes but on Linux.)
#[cfg(not(target_os = "linux"))]
type Dormant = std::convert::Infallible;

/// The lanes of this process.
enum Lanes {
    /// Passed by the host, not asked for yet.
    Dormant(Vec<Dormant>),
    /// Asked for: how many are served (each by a thread of its own).
    Served(u8),
}

/// The largest arguments buffer kept for the next call ([`Server::recycle`]): calls
/// of up to this many bytes reuse their memory; a larger one's is given back to the
/// system, not held for good.
const KEEP: usize = 64 << 20;

impl Handler for Server {
    fn serve(&self, request: Request) -> (u8, RVec) {
        if request.target == 0 && request.method == super::START_LANES {
            return (Status::OK.0, RVec::from_vec(vec![self.start_lanes()]));
        }
        if request.target == 0 && request.method == super::DROP_INSTANCE {
            // The host's handle is gone and it waits for the instance to go: answered
            // once it is dropped, after whatever its `Drop` sent (releases of the host's
            // objects it held) is on its way.
            self.drop_instance();
            return (Status::OK.0, RVec::new());
        }
        if request.target == 0 {
            if self.plugin.dropped.load(Ordering::Acquire) {
                return (Status::MALFORMED.0, RVec::from_vec(b"the plugin's instance was dropped".to_vec()));
            }
            // The call's `out` slot names it, for a cancel (see `Incoming::Cancel`).
            let mut out = std::mem::MaybeUninit::uninit();
            let key = out.as_ptr() as usize;
            Endpoint::lock(&self.running).insert(request.id, key);
            super::steps::mark("worker: call read");
            // (A contract method's number never has the bit: the host's are indices.)
            let method =
                if self.plugin.bytes_alone { request.method | tomada::client::BYTES_ALONE } else { request.method };
            // SAFETY: `dispatch` is the plugin's (descriptor checked by `open`), `this`
            // its instance (callable from any thread), and the arguments live for the
            // call.
            let (status, body) = unsafe {
                crate::plugin_fn::dispatch_into(
                    self.plugin.dispatch,
                    self.plugin.this,
                    method,
                    request.args(),
                    &mut out,
                )
            };
            // Out of the table before `out` goes: no cancel reaches another call's slot.
            Endpoint::lock(&self.running).remove(&request.id);
            self.recycle(request.payload);
            return (status.0, body);
        }
        match self.objects.get(request.target) {
            Some(object) => {
                let (status, body) = object.serve(request.method, request.args());
                self.recycle(request.payload);
                (status.0, body)
            }
            None => super::endpoint::no_object(request.target),
        }
    }

    fn incoming(&self, incoming: Incoming) {
        match incoming {
            Incoming::Request(request) => {
                self.pending.lock().unwrap_or_else(|p| p.into_inner()).push_back(request);
                nudge_self();
            }
            Incoming::Release(0) => self.drop_instance(),
            Incoming::Release(id) => self.objects.release(id),
            Incoming::Cancel(id) => {
                // Held while the plugin is told: the call cannot end and free its slot
                // meanwhile (it takes this lock first).
                let running = Endpoint::lock(&self.running);
                if let Some(key) = running.get(&id) {
                    // SAFETY: the plugin's dispatch function and instance; the reserved
                    // method reads the 8 bytes of a running call's `out` address, which
                    // stays valid while it is in `running`.
                    let _ = unsafe {
                        crate::plugin_fn::dispatch(
                            self.plugin.dispatch,
                            self.plugin.this,
                            tomada::future::CANCEL_METHOD,
                            &key.to_le_bytes(),
                        )
                    };
                }
            }
            Incoming::Log(_) => {}
        }
    }

    /// Looks for bytes left unread, and nudges a pool thread to read them; if another
    /// thread holds the reading, that one looks when it lets go.
    fn reading_wanted(&self) {
        // (A loop, not `let_go`: no recursion however often it is wanted meanwhile.)
        while let Some(reading) = self.endpoint.try_reading() {
            let more = self.unread(&reading);
            let wanted = self.endpoint.let_go(reading);
            if more {
                nudge_self();
                return;
            }
            if !wanted {
                return;
            }
        }
    }
}

impl Server {
    /// Keeps `buffer` (a served call's arguments, no longer borrowed) for the next
    /// call to be read into, if it is larger than the one kept and not over [`KEEP`].
    fn recycle(&self, buffer: Vec<u8>) {
        if buffer.capacity() > KEEP {
            return;
        }
        let mut spare = Endpoint::lock(&self.spare);
        if buffer.capacity() > spare.capacity() {
            *spare = buffer;
        }
    }

    /// Drops the plugin's instance, once.
    fn drop_instance(&self) {
        if !self.plugin.dropped.swap(true, Ordering::AcqRel) {
            // SAFETY: the instance `create` made, destroyed once (the flag), while
            // the library stays loaded. Calls that reach it after this are
            // refused (`serve`); the host asks for this only once its handle, through
            // which such calls come, is gone.
            unsafe { crate::plugin_fn::destroy(self.plugin.destroy, self.plugin.this) };
        }
    }
}

/// Posts to the nudge pipe (as the host does), so a pool thread wakes.
fn nudge_self() {
    #[cfg(windows)]
    super::windows::post_self();
    #[cfg(unix)]
    let one = 1u64;
    // SAFETY: writing 8 bytes from a local to the nudge descriptor (if the host passed
    // none, this fails, and calls wait for the main thread).
    #[cfg(unix)]
    unsafe {
        libc::write(NUDGE_FD, (&raw const one).cast(), 8)
    };
}

impl Server {
    /// A call of the plugin to the host's object `target`, within the call this thread
    /// serves (if any); its status and answer.
    fn callback(&'static self, target: u64, method: u32, args: &[u8]) -> (Status, Vec<u8>) {
        if let Some(lane) = LANE.with(Cell::get) {
            return lane.callback(target, method, args);
        }
        let Some((id, _)) = self.endpoint.register() else {
            return (Status::MALFORMED, b"the channel to the host has ended".to_vec());
        };
        if self.endpoint.send(id, target, method, args, None).is_err() {
            // The host is gone: so is this process.
            std::process::exit(0);
        }
        let answer = self.endpoint.wait(id, None, self, Vec::new());
        // Reading for its answer, this thread may have taken more than it needed: a new
        // call for the pool. (If another thread reads now, it looks when it lets go.)
        self.reading_wanted();
        match answer {
            Ok((status, body)) => (Status(status), body),
            Err(WaitError::Fault(ReadError::Eof)) => std::process::exit(0),
            Err(WaitError::Fault(_)) => std::process::exit(4),
            Err(WaitError::Ended(e)) => (Status::MALFORMED, e.to_string().into_bytes()),
        }
    }

    /// Reads with `reading` held, until a new call (returned) comes; ends the process
    /// if the channel ended or is corrupted.
    ///
    /// Anything else that is not for a waiting thread (a release, a cancel) is returned
    /// too, to be handled once the reading is let go: dropping an object may run the
    /// plugin's code, which may call the host and need a reader.
    fn read_next(&self, buf: &mut ReadBuf) -> Incoming {
        // Read into the buffer of a call served before, if one is kept.
        let mut spare = std::mem::take(&mut *Endpoint::lock(&self.spare));
        loop {
            match self.endpoint.read_for(buf, None, None, &mut spare) {
                Ok(Read::Incoming(incoming)) => return incoming,
                Ok(_) => {}
                // The host closed the channel: it is done with us, or gone.
                Err(ReadError::Eof) => std::process::exit(0),
                // Anything else is a broken host or a corrupted channel: stop.
                Err(_) => std::process::exit(4),
            }
        }
    }

    /// The main thread: reads a call, serves it, and so on; ends the process when
    /// the channel ends.
    fn main_loop(&'static self) -> ! {
        loop {
            // A call another thread read and left for the pool, first: where no pool
            // thread is free and none can start (`Sandbox::max_processes`, or
            // `MAX_THREADS`), this thread is the only one left to serve it. (Its
            // nudge then wakes a pool thread for nothing, later.)
            let handed = self.pending.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            if let Some(request) = handed {
                self.handle(Incoming::Request(request));
                continue;
            }
            let mut reading = Endpoint::lock(&self.endpoint.reading);
            let incoming = self.read_next(&mut reading);
            // More has arrived: a pool thread reads it while this one serves (the host's
            // nudge for it may have come while this thread still held the reading).
            let more = self.unread(&reading);
            self.let_go(reading, more);
            // A thread waiting for a callback's answer may need a reader now.
            self.endpoint.pass_reading_on(0);
            self.handle(incoming);
        }
    }

    /// A pool thread: waits for a nudge, then serves a call handed over, or reads and
    /// serves one if one is there (the main thread may have taken it).
    fn pool_loop(&'static self) -> ! {
        loop {
            // One idle thread at a time waits for a nudge (the *standby*); the others
            // wait for that role. Threads blocked in one `read` of the nudge would all be
            // woken by every post (a thundering herd); a mutex wakes one. Not on Linux,
            // whose pipes wake one blocked reader per post (exclusive waits, since 5.5;
            // an older kernel wakes them all, which costs CPU, not calls): all idle
            // threads wait in the `read`, and no post costs a hand-over of the role as
            // well (a futex wake and a context switch).
            self.idle.fetch_add(1, Ordering::SeqCst);
            #[cfg(unix)]
            let n = {
                #[cfg(not(target_os = "linux"))]
                let _standby = Endpoint::lock(&self.standby);
                let mut count = 0u64;
                // SAFETY: reading 8 bytes into a local from the nudge pipe.
                unsafe { libc::read(NUDGE_FD, (&raw mut count).cast(), 8) }
            };
            #[cfg(windows)]
            let n = {
                let _standby = Endpoint::lock(&self.standby);
                if super::windows::take() { 8 } else { -2 }
            };
            let idle = self.idle.fetch_sub(1, Ordering::SeqCst) - 1;
            if n != 8 {
                if n == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                // No nudges (no descriptor 5): calls are served by the main thread.
                park_forever();
            }
            if idle == 0 {
                self.grow();
            }
            let handed = self.pending.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            let incoming = match handed {
                Some(request) => Incoming::Request(request),
                None => {
                    // If another thread has the reading, this one does not wait for it:
                    // its holder may be blocked in a read for a frame not sent yet (the
                    // main thread, between calls), and a thread waiting behind it is
                    // a thread less to serve. The holder looks for this nudge's frame
                    // when it lets go (`try_reading`, `let_go`): it may have looked for
                    // more just before the frame came, and giving up without a word
                    // left the frame unread until the next nudge, if any (a lost
                    // wake-up).
                    #[cfg(unix)]
                    let Some(mut reading) = self.endpoint.try_reading() else { continue };
                    // On Windows the nudge can come before the call's bytes are on
                    // this side (this process's pipe reader thread moves them from the
                    // pipe), so a holder that looks finds nothing yet, and cannot wait
                    // for them: this thread waits for the reading, then for the bytes
                    // a while (reading meanwhile, as whoever holds the reading does),
                    // or the call would wait for the main thread. (Only this thread
                    // waits: another is the standby meanwhile, see above.)
                    #[cfg(windows)]
                    let mut reading = Endpoint::lock(&self.endpoint.reading);
                    // (Nothing there: taken by another thread already.)
                    let ready = self.unread(&reading);
                    #[cfg(windows)]
                    let ready =
                        ready || self.endpoint.link.wait_readable(Some(std::time::Instant::now() + NUDGE_LAG)).is_ok();
                    let read = ready.then(|| self.read_next(&mut reading));
                    // One `recv` may have taken more than this call, whose nudge
                    // another thread consumed while this one read.
                    let more = self.unread(&reading);
                    self.let_go(reading, more);
                    // Whoever lets go of the reading wakes a thread that may need it.
                    self.endpoint.pass_reading_on(0);
                    match read {
                        Some(incoming) => incoming,
                        None => continue,
                    }
                }
            };
            self.handle(incoming);
        }
    }

    /// Whether bytes are left unread, with the reading held (`reading`).
    fn unread(&self, reading: &ReadBuf) -> bool {
        reading.has_bytes() || self.endpoint.link.readable()
    }

    /// Lets go of the reading, and nudges a pool thread if bytes are left unread:
    /// `more` (seen with the reading held), or, if a nudged thread found the reading
    /// taken meanwhile and did not wait, what is there now ([`Handler::reading_wanted`]).
    fn let_go(&self, reading: MutexGuard<'_, ReadBuf>, more: bool) {
        let wanted = self.endpoint.let_go(reading);
        if more {
            // (The thread it wakes looks, or tells the reading's holder to.)
            nudge_self();
        } else if wanted {
            self.reading_wanted();
        }
    }

    /// Serves a call, or handles what else came, with the reading let go.
    fn handle(&self, incoming: Incoming) {
        match incoming {
            Incoming::Request(request) => self.endpoint.serve(request, self),
            other => self.incoming(other),
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
}

thread_local! {
    /// The lane this thread serves (`None`: not a lane's thread): the plugin's
    /// callbacks, releases and log records made on it go back through it, before the
    /// reply of the call that made them, as on the main rings.
    static LANE: Cell<Option<&'static Lane>> = const { Cell::new(None) };
}

/// A lane (see `Isolation::lanes`): rings of their own, served by a thread of their
/// own. The host sends a call through a lane only while no other of its calls is
/// there (but the calls made within the plugin's callbacks, for this same thread to
/// serve, re-entrant): no nudge, no hand-over, no reading lock taken by another thread.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // (made only on Linux)
struct Lane {
    server: &'static Server,
    endpoint: Endpoint,
    /// When this lane last began or ended serving a call (see [`Lane::quiet`]).
    served: &'static AtomicU64,
}

/// How long after its last call a lane counts as busy still, for the others' spinning
/// (see [`Lane::quiet`]): about the time between two calls of a thread that calls
/// again and again.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const BUSY_FOR: Duration = Duration::from_micros(500);

impl Server {
    /// The endpoint this thread's requests go through: its lane's, or the main one.
    fn channel(&self) -> &Endpoint {
        LANE.with(Cell::get).map_or(&self.endpoint, |lane| &lane.endpoint)
    }
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // (lanes are Linux's)
impl Lane {
    /// The lane's thread: reads a call, serves it, and so on; ends the process if its
    /// lane's channel is found ended or broken. (It sleeps on a futex word the host
    /// rings, which does not tell the host's end: the host ends this process when it
    /// ends the channel, and the main thread sees the end through its bells.)
    fn serve_loop(&'static self) -> ! {
        LANE.with(|l| l.set(Some(self)));
        loop {
            let incoming = {
                let mut reading = Endpoint::lock(&self.endpoint.reading);
                let mut spare = std::mem::take(&mut *Endpoint::lock(&self.server.spare));
                match self.endpoint.read_for(&mut reading, None, None, &mut spare) {
                    Ok(Read::Incoming(incoming)) => incoming,
                    Ok(_) => continue,
                    Err(ReadError::Eof) => std::process::exit(0),
                    Err(_) => std::process::exit(4),
                }
            };
            match incoming {
                Incoming::Request(request) => {
                    self.served.store(now_us(), Ordering::Relaxed);
                    self.endpoint.serve(request, self);
                    self.served.store(now_us(), Ordering::Relaxed);
                }
                other => self.incoming(other),
            }
        }
    }

    /// A call of the plugin to the host's object `target`, within the call this lane's
    /// thread serves; its status and answer.
    fn callback(&'static self, target: u64, method: u32, args: &[u8]) -> (Status, Vec<u8>) {
        let Some((id, _)) = self.endpoint.register() else {
            return (Status::MALFORMED, b"the channel to the host has ended".to_vec());
        };
        if self.endpoint.send(id, target, method, args, None).is_err() {
            std::process::exit(0);
        }
        match self.endpoint.wait(id, None, self, Vec::new()) {
            Ok((status, body)) => (Status(status), body),
            Err(WaitError::Fault(ReadError::Eof)) => std::process::exit(0),
            Err(WaitError::Fault(_)) => std::process::exit(4),
            Err(WaitError::Ended(e)) => (Status::MALFORMED, e.to_string().into_bytes()),
        }
    }
}

impl Server {
    /// Maps the lanes the host passed and starts a thread to serve each, the first
    /// time the host asks (its calls overlap); how many are served, then and after.
    /// A lane whose memory cannot be mapped or whose thread cannot start (under
    /// `Sandbox::max_processes`, say) is not served, nor are those after it: the host
    /// uses only the first ones this answers.
    fn start_lanes(&self) -> u8 {
        let mut lanes = Endpoint::lock(&self.lanes);
        let dormant = match &mut *lanes {
            Lanes::Served(n) => return *n,
            Lanes::Dormant(dormant) => std::mem::take(dormant),
        };
        let started = match SERVER.get().copied() {
            Some(server) => server.serve_lanes(dormant),
            None => 0,
        };
        *lanes = Lanes::Served(started);
        started
    }

    /// Maps each of `dormant` and starts its thread, in order, until one fails; how
    /// many run.
    #[cfg(target_os = "linux")]
    fn serve_lanes(&'static self, dormant: Vec<Dormant>) -> u8 {
        use std::os::fd::AsRawFd;
        let count = dormant.len();
        // When each lane last began or ended a call (see `Lane::quiet`).
        let served: &'static [AtomicU64] = Box::leak((0..count).map(|_| AtomicU64::new(0)).collect());
        let mut started = 0u8;
        let mut dormant = dormant.into_iter().enumerate();
        for (i, (memfd, bell, socket)) in dormant.by_ref() {
            if let Err(e) = super::transport::shm::usable(memfd.as_raw_fd(), Some(bell.as_raw_fd())) {
                eprintln!("tomada runner: {i} of {count} lanes: its descriptors were changed: {e}");
                // The plugin closed them, or put other files there: not closed here
                // (another file of the plugin's may have their numbers).
                std::mem::forget((memfd, bell));
                break;
            }
            // (Found usable just now: closed with the rest if the mapping fails. Only
            // the plugin's own threads, racing this one, could have changed them.)
            let link = match super::transport::shm::Shared::lane(memfd, bell, false, socket, None) {
                Ok(shared) => Link::Rings(shared),
                Err(e) => {
                    eprintln!("tomada runner: {i} of {count} lanes: cannot map its shared memory: {e}");
                    break;
                }
            };
            let waiter = Waiter::new(if self.socket_only { Duration::ZERO } else { SPIN });
            let endpoint = Endpoint::new(link, false, waiter, self.max).crowd(move || Lane::quiet(served, i));
            let lane: &'static Lane = Box::leak(Box::new(Lane { server: self, endpoint, served: &served[i] }));
            match std::thread::Builder::new().name(format!("tomada-lane-{i}")).spawn(move || lane.serve_loop()) {
                Ok(_) => started = started.saturating_add(1),
                Err(e) => {
                    eprintln!("tomada runner: {i} of {count} lanes: cannot start another thread: {e}");
                    break;
                }
            }
        }
        // The lanes not served, not looked at: the plugin may have changed their
        // descriptors too, so they are left open rather than closed (a few
        // descriptors, for the life of a process that serves no more lanes).
        dormant.for_each(|(_, (memfd, bell, _))| std::mem::forget((memfd, bell)));
        started
    }

    /// (No lanes but on Linux.)
    #[cfg(not(target_os = "linux"))]
    fn serve_lanes(&'static self, dormant: Vec<Dormant>) -> u8 {
        drop(dormant);
        0
    }
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl Lane {
    /// Whether the lanes but lane `me` are quiet: none began or ended a call within
    /// [`BUSY_FOR`]. The child cannot see how many of the host's threads are calling
    /// (the host's lanes know, see `Endpoint::crowd`); a lane used a moment ago is one
    /// whose caller is about to call again. While they are not, lane `me`'s thread does
    /// not spin for its next call.
    fn quiet(served: &[AtomicU64], me: usize) -> bool {
        let now = now_us();
        let busy = BUSY_FOR.as_micros() as u64;
        served.iter().enumerate().all(|(i, at)| i == me || now.saturating_sub(at.load(Ordering::Relaxed)) > busy)
    }
}

/// Microseconds since this process first asked (a monotonic clock; on Linux a vDSO
/// read, no system call).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn now_us() -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_micros() as u64
}

impl Handler for Lane {
    fn serve(&self, request: Request) -> (u8, RVec) {
        Handler::serve(self.server, request)
    }

    fn incoming(&self, incoming: Incoming) {
        match incoming {
            // (Only while this thread waits for a callback's answer: the host sends a
            // lane one call at a time, so this is a broken host's. Served all the same.)
            Incoming::Request(request) => self.endpoint.serve(request, self),
            other => self.server.incoming(other),
        }
    }
}

/// Parks this thread for good.
fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}
