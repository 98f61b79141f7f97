//! Isolation: run a plugin in a child process, behind the same typed handle.
//!
//! The host chooses per plugin ([`Mode`]): in-process (fast) or isolated (safe). An
//! isolated plugin is the very same `.so`, checked the same way (inspection, ABI,
//! layout) *before* any process starts, then loaded by a child process: the host's
//! own executable re-run as a runner ([`serve_if_runner`], nothing extra to ship), or
//! the `tomada-runner` binary. The host talks to it over an inherited Unix socket
//! (length-prefixed frames with request ids, a versioned handshake); the plugin's
//! stdout and stderr are separate pipes, forwarded line by line to
//! [`Isolation::on_output`], so nothing a plugin prints can corrupt the channel.
//!
//! A panic, `abort()`, segfault, `exit()`, a call that outlives its deadline, an
//! allocation past the memory limit, or a plugin closing its own socket: each is a
//! [`CallError`] for that call, and the next call starts a new
//! process — until the plugin crashes more often than its crash budget allows, and is
//! quarantined. The child dies with the host (socket EOF, and on Linux a parent-death
//! signal) and its process group is killed when the [`Plugin`](crate::Plugin) drops.
//!
//! ```no_run
//! use pluginapi::Greeter;
//! use tomada_host::isolate::{Isolation, Mode};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     tomada_host::isolate::serve_if_runner(); // first thing: the child runs here
//!     let mode = Mode::Isolated(Isolation::new().deadline(std::time::Duration::from_secs(2)));
//!     let plugin = tomada_host::load_with::<dyn Greeter>("bin/greeter_v1.so", &mode)?;
//!     println!("{}", plugin.greet("Mundo")?); // same call as in-process
//!     Ok(())
//! }
//! ```

mod contain;
mod frame;
mod options;
mod runner;
mod sandbox;
mod spawner;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use tomada::CallError;
use tomada::client::Channel;
use tomada::ffi::Status;

pub use options::{Isolation, Mode, OutputFn, Runner, Stream};
pub use runner::serve_if_runner;
pub use sandbox::Sandbox;

use frame::{Header, Kind, ReadError, Waiter};
use runner::LoadRequest;

use crate::file::PluginFile;
use crate::{Inspection, LoadError};

/// The environment variable naming the runner's socket descriptor.
const FD_VAR: &str = "TOMADA_RUNNER_FD";
/// The environment variable naming the host's pid, for the runner to check.
const PARENT_VAR: &str = "TOMADA_RUNNER_PARENT";
/// The environment variable giving the runner the largest frame either side sends.
const MAX_FRAME_VAR: &str = "TOMADA_RUNNER_MAX_FRAME";
/// How many of a plugin's last stderr lines a load failure quotes.
const STDERR_TAIL: usize = 8;
/// The descriptor number the socket gets in the child.
const CHILD_FD: i32 = 3;
/// The descriptor number the plugin file gets in the child: it loads exactly the file
/// the host inspected, never a path.
const PLUGIN_FD: i32 = 4;
/// The descriptor number of the nudge eventfd in the child: the host posts to it
/// when it sends a call while others are in flight, so a second thread of the
/// plugin's process reads and serves it (see `runner::Server`).
const NUDGE_FD: i32 = 5;
/// How long either side may spin for the next frame before it blocks in `poll`;
/// only when the last one came within this (see `frame::Waiter`), so a side that
/// waits after an idle gap or a long call blocks at once and costs nothing.
pub(crate) const SPIN: Duration = Duration::from_micros(50);
/// How long a dead child's output may still take to arrive.
const FORWARDER_GRACE: Duration = Duration::from_millis(500);
/// How long a child whose channel ended may take to exit by itself.
const END_GRACE: Duration = Duration::from_millis(500);
/// The longest line of plugin output passed on whole; longer ones are split.
const MAX_LINE: u64 = 64 * 1024;

/// A running child process and its end of the channel, shared by the calls in
/// flight: each call registers its request id, writes its frame, and waits for its
/// reply. Whoever holds `reading` reads replies and hands each to its caller (a
/// thread of the host, parked until then); a caller whose reply arrived while it
/// read returns and passes the reading on. One call at a time therefore reads its
/// own reply, with no hand-off between threads.
struct Connection {
    pid: u32,
    /// `None` once reaped.
    child: Mutex<Option<Child>>,
    stream: UnixStream,
    /// The eventfd the child's pool threads wait on (its descriptor 5 there).
    nudge: OwnedFd,
    next_id: AtomicU64,
    /// Held while one frame is written.
    writing: Mutex<()>,
    /// Held by the thread that reads replies.
    reading: Mutex<()>,
    calls: Mutex<Calls>,
    /// How long the reader spins for a reply before it blocks.
    waiter: Waiter,
    forwarders: Mutex<Vec<JoinHandle<()>>>,
    max_frame: usize,
}

/// The calls in flight on a connection, and whether it ended.
#[derive(Default)]
struct Calls {
    waiting: HashMap<u64, Slot>,
    /// A call found the connection failed and is ending it.
    ending: bool,
    /// It ended: the error of every call still in flight.
    ended: Option<CallError>,
}

/// One call in flight.
struct Slot {
    thread: Thread,
    /// Its reply (status and body), once read by another thread.
    answer: Option<(u8, Vec<u8>)>,
}

/// Why waiting for a reply stopped without one.
enum WaitError {
    /// This call found the connection broken (or its deadline passed).
    Fault(ReadError),
    /// Another call ended the connection; this call's error.
    Ended(CallError),
}

impl Connection {
    fn calls(&self) -> MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enters call `id` in flight; returns how many others are, or `None` if the
    /// connection is ending.
    fn register(&self, id: u64) -> Option<usize> {
        let mut calls = self.calls();
        if calls.ending || calls.ended.is_some() {
            return None;
        }
        let others = calls.waiting.len();
        calls.waiting.insert(id, Slot { thread: std::thread::current(), answer: None });
        Some(others)
    }

    /// Takes call `id` out of flight.
    fn unregister(&self, id: u64) {
        self.calls().waiting.remove(&id);
    }

    /// Wakes one pool thread of the child.
    fn nudge(&self) {
        let one = 1u64;
        // SAFETY: writing 8 bytes from a local to our eventfd. It cannot block: the
        // counter would have to reach 2^64 - 1 first.
        unsafe { libc::write(self.nudge.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    /// Waits for the reply to call `id` until `deadline`: reads replies itself if no
    /// other thread does, else sleeps until its reply is handed over.
    fn wait(&self, id: u64, deadline: Instant) -> Result<(u8, Vec<u8>), WaitError> {
        loop {
            {
                let mut calls = self.calls();
                if let Some(answer) = calls.waiting.get_mut(&id).and_then(|s| s.answer.take()) {
                    calls.waiting.remove(&id);
                    return Ok(answer);
                }
                if let Some(e) = &calls.ended {
                    let e = e.clone();
                    calls.waiting.remove(&id);
                    return Err(WaitError::Ended(e));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitError::Fault(ReadError::TimedOut));
            }
            match self.reading.try_lock() {
                Ok(reading) => {
                    let read = self.read_replies(id, deadline);
                    drop(reading);
                    self.pass_reading_on();
                    match read {
                        Ok(Some(answer)) => return Ok(answer),
                        Ok(None) => {}
                        Err(e) => return Err(WaitError::Fault(e)),
                    }
                }
                Err(std::sync::TryLockError::Poisoned(p)) => {
                    // A reader panicked (host code): nothing is half-read, as frames
                    // are read whole or the connection ends.
                    drop(p.into_inner());
                    self.reading.clear_poison();
                }
                Err(std::sync::TryLockError::WouldBlock) => std::thread::park_timeout(deadline - now),
            }
        }
    }

    /// With `reading` held: reads replies, handing each to its caller, until the
    /// reply to `id` (returned), or until another thread handed it over or the
    /// connection ended (`None`).
    fn read_replies(&self, id: u64, deadline: Instant) -> Result<Option<(u8, Vec<u8>)>, ReadError> {
        loop {
            let alone = {
                let calls = self.calls();
                if calls.ended.is_some() || calls.waiting.get(&id).is_none_or(|s| s.answer.is_some()) {
                    return Ok(None);
                }
                calls.waiting.len() == 1
            };
            let mut payload = Vec::new();
            let (stream, waiter, max) = (&self.stream, &self.waiter, self.max_frame);
            let header = frame::read_into_spinning(stream, waiter, alone, Some(deadline), max, &mut payload)?;
            if header.kind != Kind::Reply {
                return Err(ReadError::Malformed(format!("an unexpected {:?} frame", header.kind)));
            }
            // The child answers a value, a caught panic, or undecodable arguments; any
            // other status is a forgery (crashes and deadlines are ours to say).
            if header.status > Status::MALFORMED.0 {
                return Err(ReadError::Malformed(format!("a reply with status {}", header.status)));
            }
            let mut calls = self.calls();
            if header.id == id {
                calls.waiting.remove(&id);
                return Ok(Some((header.status, payload)));
            }
            match calls.waiting.get_mut(&header.id) {
                Some(slot) => {
                    slot.answer = Some((header.status, payload));
                    slot.thread.unpark();
                }
                None => {
                    return Err(ReadError::Malformed(format!(
                        "an answer to call {}, which is not in flight",
                        header.id
                    )));
                }
            }
        }
    }

    /// After a reader let go of `reading`: wakes a caller still waiting, to read.
    fn pass_reading_on(&self) {
        let calls = self.calls();
        if let Some(slot) = calls.waiting.values().find(|s| s.answer.is_none()) {
            slot.thread.unpark();
        }
    }

    /// Ends every call in flight with `error` and wakes their threads.
    fn close(&self, error: CallError) {
        let mut calls = self.calls();
        calls.ended = Some(error);
        for slot in calls.waiting.values() {
            slot.thread.unpark();
        }
    }

    /// Kills the whole process group and reaps the child: no zombie, no orphan.
    fn kill(&self) -> Option<ExitStatus> {
        if self.child.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            return None;
        }
        let pid = self.pid as i32;
        // SAFETY: `kill` takes plain integers; the group is the child's own (it was
        // started with `process_group(0)`), and the child is not reaped yet, so its
        // pid cannot have been reused.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        self.reap()
    }

    /// Gives a child whose channel ended up to `grace` to exit by itself (so its
    /// own exit status, e.g. the signal that crashed it, is what gets reported),
    /// then kills what is left of its process group and reaps it.
    fn end(&self, grace: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + grace;
        let pid = self.pid;
        loop {
            // SAFETY: `waitid` writes into a zeroed local; `WNOWAIT` leaves the child
            // a zombie, so its pid (and group id) stays ours until `reap`.
            let exited = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) == 0
                    && info.si_pid() != 0
            };
            if exited || Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        self.kill()
    }

    /// Waits for the killed child to exit, then (briefly) for its last output.
    fn reap(&self) -> Option<ExitStatus> {
        let status = self.child.lock().unwrap_or_else(|p| p.into_inner()).take()?.wait().ok();
        // Its pipes close with it and with its process group; something that left the
        // group could keep them open, so wait for the forwarders a short while only.
        let until = Instant::now() + FORWARDER_GRACE;
        let forwarders = std::mem::take(&mut *self.forwarders.lock().unwrap_or_else(|p| p.into_inner()));
        for f in forwarders {
            while !f.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
            if f.is_finished() {
                let _ = f.join();
            }
        }
        status
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    match status {
        Some(s) if s.signal().is_some() => {
            let sig = s.signal().expect("checked");
            let name = match sig {
                libc::SIGSEGV => " (SIGSEGV: invalid memory access)",
                libc::SIGABRT => " (SIGABRT: aborted, e.g. `abort()` or an allocation failure)",
                libc::SIGBUS => " (SIGBUS)",
                libc::SIGILL => " (SIGILL)",
                libc::SIGFPE => " (SIGFPE)",
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGXCPU => " (SIGXCPU: CPU time limit)",
                libc::SIGSYS => " (SIGSYS: a forbidden system call)",
                _ => "",
            };
            format!("the process was killed by signal {sig}{name}")
        }
        Some(s) => match s.code() {
            Some(code) => format!("the process exited with status {code}"),
            None => "the process ended".to_owned(),
        },
        None => "the process ended (its status is unknown)".to_owned(),
    }
}

/// The state of an isolated plugin.
struct State {
    connection: Option<Arc<Connection>>,
    crashes: VecDeque<Instant>,
    quarantined: Option<String>,
}

/// An isolated plugin: the channel the remote vtable's calls go through.
pub(crate) struct Isolated {
    path: PathBuf,
    /// The inspected file, open: each (re)started child inherits it.
    file: std::fs::File,
    name: String,
    manifest_bytes: Vec<u8>,
    /// Which export of the library the child opens ([`tomada::Manifest::index`]).
    export: u32,
    /// What the plugin's constructor receives (`tomada::context()`).
    config: Vec<u8>,
    options: Isolation,
    state: Mutex<State>,
}

impl Isolated {
    /// Starts the child and loads the plugin in it.
    pub(crate) fn start(
        inspection: &Inspection,
        file: &PluginFile,
        config: &[u8],
        options: Isolation,
    ) -> Result<Isolated, LoadError> {
        let file = file.file.try_clone().map_err(|e| LoadError::Io { path: inspection.path.clone(), source: e })?;
        let isolated = Isolated {
            path: inspection.path.clone(),
            file,
            name: inspection.manifest.info.name.clone(),
            manifest_bytes: inspection.manifest_bytes.clone(),
            export: inspection.manifest.index,
            config: config.to_vec(),
            options,
            state: Mutex::new(State { connection: None, crashes: VecDeque::new(), quarantined: None }),
        };
        let connection = isolated.spawn()?;
        isolated.lock().connection = Some(Arc::new(connection));
        Ok(isolated)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pid of the plugin's current process, if one is running.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.lock().connection.as_ref().map(|c| c.pid)
    }

    fn spawn(&self) -> Result<Connection, LoadError> {
        let fail = |reason: String| LoadError::Isolation { path: self.path.clone(), reason };
        if std::env::var_os(FD_VAR).is_some() {
            // A host that forgot `serve_if_runner` would otherwise start copies of
            // itself, each starting another.
            return Err(fail(format!(
                "this process was started as a plugin runner ({FD_VAR} is set) but did not call \
                 `tomada_host::isolate::serve_if_runner()` first in `main`"
            )));
        }
        let exe = match &self.options.runner {
            Runner::CurrentExe => {
                std::env::current_exe().map_err(|e| fail(format!("cannot find the host's executable: {e}")))?
            }
            Runner::Path(p) => p.clone(),
        };
        let (host_end, pair_end) = UnixStream::pair().map_err(|e| fail(format!("cannot make a socket pair: {e}")))?;
        // Move the child's end above the standard descriptors and 3, so `dup2` onto 3
        // in the child always makes a new descriptor (without close-on-exec).
        // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` on a descriptor we own returns a new one,
        // which we own from here on.
        let child_end = match unsafe { libc::fcntl(pair_end.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) } {
            -1 => return Err(fail(format!("cannot duplicate the socket: {}", std::io::Error::last_os_error()))),
            // SAFETY: a fresh descriptor returned by `fcntl`, owned by nobody else.
            fd => unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
        };
        // Closed now, not at the end of this function: the host must hold only its
        // own end, or it never sees the end of a child that dies while loading.
        drop(pair_end);
        let child_fd = child_end.as_raw_fd();
        // The plugin file, likewise above 10, to become descriptor 4.
        // SAFETY: as above, on the open plugin file.
        let plugin_file = match unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) } {
            -1 => return Err(fail(format!("cannot duplicate the plugin file: {}", std::io::Error::last_os_error()))),
            // SAFETY: a fresh descriptor returned by `fcntl`, owned by nobody else.
            fd => unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
        };
        let plugin_fd = plugin_file.as_raw_fd();
        // The nudge: on Linux an eventfd used as a semaphore (each 8-byte read takes one
        // post); elsewhere a pipe, where each 8-byte write is one post and each 8-byte
        // read takes one. The child's end goes above 10 like the socket's.
        #[cfg(target_os = "linux")]
        let (nudge, nudge_child_raw) = {
            // SAFETY: `eventfd` takes plain integers and returns a new descriptor.
            let nudge = match unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_SEMAPHORE) } {
                -1 => return Err(fail(format!("cannot make an eventfd: {}", std::io::Error::last_os_error()))),
                // SAFETY: a fresh descriptor returned by `eventfd`, owned by nobody else.
                fd => unsafe { OwnedFd::from_raw_fd(fd) },
            };
            let raw = nudge.as_raw_fd();
            (nudge, raw)
        };
        #[cfg(not(target_os = "linux"))]
        let (nudge, _read_end, nudge_child_raw) = {
            let mut fds = [0; 2];
            // SAFETY: `pipe` writes two new descriptors into the local array.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(fail(format!("cannot make a pipe: {}", std::io::Error::last_os_error())));
            }
            // SAFETY: fresh descriptors returned by `pipe`, owned by nobody else.
            let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            let raw = read.as_raw_fd();
            (write, read, raw)
        };
        // SAFETY: as for the socket.
        let child_nudge = match unsafe { libc::fcntl(nudge_child_raw, libc::F_DUPFD_CLOEXEC, 10) } {
            -1 => return Err(fail(format!("cannot duplicate the eventfd: {}", std::io::Error::last_os_error()))),
            // SAFETY: a fresh descriptor returned by `fcntl`, owned by nobody else.
            fd => unsafe { OwnedFd::from_raw_fd(fd) },
        };
        let nudge_fd = child_nudge.as_raw_fd();
        let limits = [
            (libc::RLIMIT_AS, self.options.memory_limit),
            (libc::RLIMIT_CPU, self.options.cpu_seconds),
            (libc::RLIMIT_NOFILE, self.options.open_files),
        ];
        let mut command = Command::new(&exe);
        command
            // Only what the host passes: its environment may hold secrets.
            .env_clear()
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .env(FD_VAR, CHILD_FD.to_string())
            .env(PARENT_VAR, std::process::id().to_string())
            .env(MAX_FRAME_VAR, self.options.max_frame.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the closure only makes async-signal-safe system calls (`setsid`,
        // `dup2`, `close_range`, `prctl`, `setrlimit`) between fork and exec, on
        // values computed before.
        unsafe {
            command.pre_exec(move || {
                // A session of its own: its own process group (killed as one), and no
                // controlling terminal, so nothing it does reaches the user's
                // terminal (`open("/dev/tty")` fails with ENXIO).
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The socket becomes descriptor 3, without close-on-exec.
                if libc::dup2(child_fd, CHILD_FD) < 0
                    || libc::dup2(plugin_fd, PLUGIN_FD) < 0
                    || libc::dup2(nudge_fd, NUDGE_FD) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // Nothing else of the host's leaks into the plugin's process (where a
                // sandbox could not take back an open descriptor): every descriptor
                // above 5 closes at exec. (Marked, not closed: std reports a failed
                // exec through one of them.)
                #[cfg(target_os = "linux")]
                libc::syscall(
                    libc::SYS_close_range,
                    NUDGE_FD as libc::c_uint + 1,
                    libc::c_uint::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                #[cfg(target_os = "linux")]
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                for (resource, limit) in limits {
                    if let Some(limit) = limit {
                        let rlim = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
                        if libc::setrlimit(resource, &rlim) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                }
                Ok(())
            });
        }
        let mut child =
            spawner::spawn(command).map_err(|e| fail(format!("cannot start runner `{}`: {e}", exe.display())))?;
        drop(child_end);
        drop(plugin_file);
        drop(child_nudge);
        let connection = |child: Child, forwarders: Vec<JoinHandle<()>>| Connection {
            pid: child.id(),
            child: Mutex::new(Some(child)),
            stream: host_end,
            nudge,
            next_id: AtomicU64::new(1),
            writing: Mutex::new(()),
            reading: Mutex::new(()),
            calls: Mutex::default(),
            waiter: Waiter::new(SPIN),
            forwarders: Mutex::new(forwarders),
            max_frame: self.options.max_frame,
        };
        let tail: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let mut forwarders = Vec::new();
        for (pipe, stream) in [
            (child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>), Stream::Stdout),
            (child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>), Stream::Stderr),
        ] {
            let Some(pipe) = pipe else { continue };
            let (output, name) = (Arc::clone(&self.options.output), self.name.clone());
            let keep = (stream == Stream::Stderr).then(|| Arc::clone(&tail));
            let forward = move || {
                // Bytes, not `lines()`: a plugin may print anything, and a line
                // without end must not grow the host's memory without bound.
                let mut reader = BufReader::new(pipe);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = String::from_utf8_lossy(&line);
                            let text = text.trim_end_matches(['\n', '\r']);
                            if let Some(tail) = &keep {
                                let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                                if tail.len() == STDERR_TAIL {
                                    tail.pop_front();
                                }
                                tail.push_back(text.to_owned());
                            }
                            output(&name, stream, text);
                        }
                    }
                }
            };
            let forwarder = std::thread::Builder::new()
                .name(format!("tomada-output-{}", self.name))
                .spawn(forward)
                .map_err(|e| fail(format!("cannot start a thread for the plugin's output: {e}")));
            match forwarder {
                Ok(f) => forwarders.push(f),
                Err(e) => {
                    connection(child, forwarders).kill();
                    return Err(e);
                }
            }
        }

        let connection = connection(child, forwarders);
        // The handshake: hello (version), load, ready (the manifest it read).
        let deadline = Some(Instant::now() + self.options.startup);
        let host_end = &connection.stream;
        // The child's own `LoadError`, if it refused the plugin with one.
        let mut reported = None;
        let mut handshake = || {
            let max = self.options.max_frame;
            let hello = frame::read(host_end, &Waiter::blocking(), deadline, max).map_err(|e| match e {
                ReadError::Eof => "the process ended before it greeted the host".to_owned(),
                e => format!("no hello: {e:?}"),
            })?;
            let version = hello.payload.get(..4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
            if hello.kind != Kind::Hello || version != Some(frame::PROTOCOL) {
                return Err(format!(
                    "runner `{}` speaks another protocol ({version:?}); it must call \
                     `tomada_host::isolate::serve_if_runner()` of the same tomada-host version",
                    exe.display()
                ));
            }
            let request = LoadRequest {
                path: self.path.clone(),
                fd: PLUGIN_FD,
                sandbox: self.options.sandbox.clone(),
                export: self.export,
                config: self.config.clone(),
            };
            frame::write(host_end, Header { kind: Kind::Load, status: 0, id: 0 }, &[&request.encode()])
                .map_err(|e| format!("cannot send the load request: {e}"))?;
            let ready = frame::read(host_end, &Waiter::blocking(), deadline, max).map_err(|e| match e {
                ReadError::Eof => "the process died while loading the plugin".to_owned(),
                ReadError::TimedOut => format!("the plugin did not load within {:?}", self.options.startup),
                e => format!("no answer to the load request: {e:?}"),
            })?;
            match ready.kind {
                Kind::Ready if ready.payload == self.manifest_bytes => Ok(()),
                Kind::Ready => Err("the plugin's process read another manifest than the host inspected".to_owned()),
                Kind::Failed => Err(match LoadError::from_wire(&ready.payload) {
                    Some(LoadError::Isolation { reason, .. }) => reason,
                    Some(e) => reported.insert(e).to_string(),
                    None => "the plugin's process sent a malformed failure report".to_owned(),
                }),
                other => Err(format!("unexpected {other:?} frame")),
            }
        };
        let result = handshake();
        // Sending a call blocks once the socket buffer is full: no longer than a
        // call's deadline (set once here, not per call: it is a system call).
        let _ = host_end.set_write_timeout(Some(self.options.deadline));
        match result {
            Ok(()) => Ok(connection),
            Err(reason) => {
                let status = connection.end(END_GRACE);
                if let Some(e) = reported {
                    return Err(e);
                }
                let tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                let said = if tail.is_empty() {
                    String::new()
                } else {
                    let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
                    format!("; its last lines on stderr: {}", lines.join(" | "))
                };
                Err(fail(format!("{reason} ({}){said}", describe(status))))
            }
        }
    }

    /// Records a crash; returns the quarantine message if the budget is spent.
    fn crashed(&self, state: &mut State) -> Option<String> {
        let now = Instant::now();
        state.crashes.push_back(now);
        while state.crashes.front().is_some_and(|t| now.duration_since(*t) > self.options.crash_window) {
            state.crashes.pop_front();
        }
        if state.crashes.len() >= self.options.crash_budget as usize {
            let why = format!(
                "`{}` crashed {} times within {:?}; it is not restarted",
                self.name,
                state.crashes.len(),
                self.options.crash_window
            );
            state.quarantined = Some(why.clone());
            Some(why)
        } else {
            None
        }
    }
}

impl Isolated {
    fn quarantined(&self) -> CallError {
        CallError::Quarantined { crashes: self.options.crash_budget, window: self.options.crash_window }
    }
}

/// The error for a process that ended during a call.
fn crashed(exit: Option<ExitStatus>, quarantine: Option<String>) -> CallError {
    let mut detail = describe(exit);
    if let Some(q) = quarantine {
        detail = format!("{detail}; {q}");
    }
    CallError::Crashed { signal: exit.and_then(|s| s.signal()), exit_code: exit.and_then(|s| s.code()), detail }
}

impl Isolated {
    /// The running process, started if there is none.
    fn connection(&self) -> Result<Arc<Connection>, CallError> {
        let mut state = self.lock();
        if state.quarantined.is_some() {
            return Err(self.quarantined());
        }
        if let Some(c) = &state.connection {
            return Ok(Arc::clone(c));
        }
        match self.spawn() {
            Ok(c) => {
                let c = Arc::new(c);
                state.connection = Some(Arc::clone(&c));
                Ok(c)
            }
            Err(e) => Err(match self.crashed(&mut state) {
                Some(_) => self.quarantined(),
                None => CallError::Crashed {
                    signal: None,
                    exit_code: None,
                    detail: format!("the plugin's process could not be restarted: {e}"),
                },
            }),
        }
    }

    /// Ends `connection`, which failed during a call (`fault`): kills its process
    /// (a malformed frame or a hang) or reaps it (it died), counts the crash, and
    /// fails every other call in flight. Returns this call's error. The next call
    /// starts a new process.
    fn end(&self, connection: &Arc<Connection>, fault: ReadError) -> CallError {
        // Held throughout: no new process starts before this one is reaped and counted.
        let mut state = self.lock();
        {
            let mut calls = connection.calls();
            if let Some(e) = &calls.ended {
                // Ended by another call meanwhile; this one ran past its own deadline
                // all the same, if that is what it found.
                return match fault {
                    ReadError::TimedOut => CallError::TimedOut { deadline: self.options.deadline },
                    _ => e.clone(),
                };
            }
            calls.ending = true;
        }
        if state.connection.as_ref().is_some_and(|c| Arc::ptr_eq(c, connection)) {
            state.connection = None;
        }
        let (mine, why) = match fault {
            // The child answers a value, a caught panic, or undecodable arguments;
            // a malformed frame is a broken or forged channel.
            ReadError::Malformed(why) => {
                let message = format!("a malformed answer: {why}");
                (CallError::Channel { message: message.clone() }, message)
            }
            ReadError::Io(e) => {
                let message = format!("the channel failed: {e}");
                (CallError::Channel { message: message.clone() }, message)
            }
            ReadError::TimedOut => (
                CallError::TimedOut { deadline: self.options.deadline },
                format!("another call ran past its deadline of {:?}", self.options.deadline),
            ),
            ReadError::Eof => {
                (CallError::Crashed { signal: None, exit_code: None, detail: String::new() }, String::new())
            }
        };
        // (A child that closed the channel may still be alive: it is killed too.)
        let exit =
            if matches!(mine, CallError::Crashed { .. }) { connection.end(END_GRACE) } else { connection.kill() };
        let quarantine = self.crashed(&mut state);
        let mine = match mine {
            CallError::Crashed { .. } => crashed(exit, quarantine.clone()),
            other => other,
        };
        let others = match &mine {
            CallError::Crashed { .. } => mine.clone(),
            _ => {
                let mut e = crashed(exit, quarantine);
                if let CallError::Crashed { detail, .. } = &mut e {
                    *detail = format!("{detail}: the host killed it, as {why}");
                }
                e
            }
        };
        connection.close(others);
        mine
    }
}

impl Channel for Isolated {
    fn call(&self, method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        if args.len() + 4 + frame::HEADER_REST > self.options.max_frame {
            // Refused here: the plugin's process is fine and stays.
            return Err(CallError::Channel {
                message: format!(
                    "the arguments take {} bytes, over the limit of {} bytes a call (`Isolation::max_frame`)",
                    args.len(),
                    self.options.max_frame
                ),
            });
        }
        let deadline = Instant::now() + self.options.deadline;
        // A connection that another call is ending is replaced: this call was not sent.
        let (connection, id, others) = loop {
            let connection = self.connection()?;
            let id = connection.next_id.fetch_add(1, Ordering::Relaxed);
            if let Some(others) = connection.register(id) {
                break (connection, id, others);
            }
            std::thread::yield_now();
        };
        let sent = {
            let _writing = connection.writing.lock().unwrap_or_else(|p| p.into_inner());
            let header = Header { kind: Kind::Call, status: 0, id };
            frame::write(&connection.stream, header, &[&method.to_le_bytes(), &args])
        };
        drop(args);
        let outcome = match sent {
            Ok(()) => {
                if others > 0 {
                    connection.nudge();
                }
                connection.wait(id, deadline)
            }
            // The child is gone: its socket end is closed. Report it as such.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                connection.unregister(id);
                Err(WaitError::Fault(ReadError::TimedOut))
            }
            Err(_) => {
                connection.unregister(id);
                Err(WaitError::Fault(ReadError::Eof))
            }
        };
        match outcome {
            Ok((status, body)) => tomada::client::answer(status, body),
            Err(WaitError::Ended(e)) => Err(e),
            Err(WaitError::Fault(fault)) => Err(self.end(&connection, fault)),
        }
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        if let Some(connection) = self.lock().connection.take() {
            connection.kill();
        }
    }
}

/// Starts an isolated plugin for `inspection`'s chosen export (already checked by
/// the caller), whose constructor receives `config`.
pub(crate) fn start(
    inspection: &Inspection,
    file: &PluginFile,
    config: &[u8],
    options: &Isolation,
) -> Result<Arc<Isolated>, LoadError> {
    Isolated::start(inspection, file, config, options.clone()).map(Arc::new)
}
