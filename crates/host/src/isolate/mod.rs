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
//! [`CallError`](crate::CallError) for that call, and the next call starts a new
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
mod runner;
mod sandbox;
mod spawner;

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tomada::CallError;
use tomada::client::Channel;

pub use runner::serve_if_runner;
pub use sandbox::Sandbox;

use frame::{Kind, ReadError};
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
/// How long a caller spins for an answer before it blocks.
const CALL_SPIN: Duration = Duration::from_micros(200);
/// How long a dead child's output may still take to arrive.
const FORWARDER_GRACE: Duration = Duration::from_millis(500);
/// How long a child whose channel ended may take to exit by itself.
const END_GRACE: Duration = Duration::from_millis(500);
/// The longest line of plugin output passed on whole; longer ones are split.
const MAX_LINE: u64 = 64 * 1024;

/// Where a plugin runs.
// Built once per plugin and passed by reference: its size does not matter, and a
// box would change how every host writes `Mode::Isolated(..)`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Default)]
pub enum Mode {
    /// In the host's process: fastest; a crash of the plugin is a crash of the host.
    #[default]
    InProcess,
    /// In a child process: a crash, hang or runaway allocation costs only the plugin.
    Isolated(Isolation),
}

/// Which executable the child process runs.
#[derive(Debug, Clone, Default)]
pub enum Runner {
    /// The host's own executable, which calls [`serve_if_runner`] first in `main`.
    #[default]
    CurrentExe,
    /// Another executable that calls [`serve_if_runner`] (e.g. `tomada-runner`).
    Path(PathBuf),
}

/// Receives each line a plugin prints: plugin name, which stream, the line.
pub type OutputFn = Arc<dyn Fn(&str, Stream, &str) + Send + Sync>;

/// Which of a plugin's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Its standard output.
    Stdout,
    /// Its standard error.
    Stderr,
}

/// How an isolated plugin runs: deadlines, limits, restarts, sandbox.
#[derive(Clone)]
pub struct Isolation {
    deadline: Duration,
    startup: Duration,
    memory_limit: Option<u64>,
    cpu_seconds: Option<u64>,
    open_files: Option<u64>,
    crash_budget: u32,
    crash_window: Duration,
    runner: Runner,
    sandbox: Option<Sandbox>,
    output: OutputFn,
    env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    max_frame: usize,
}

impl fmt::Debug for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Isolation")
            .field("deadline", &self.deadline)
            .field("startup", &self.startup)
            .field("memory_limit", &self.memory_limit)
            .field("cpu_seconds", &self.cpu_seconds)
            .field("open_files", &self.open_files)
            .field("crash_budget", &self.crash_budget)
            .field("crash_window", &self.crash_window)
            .field("runner", &self.runner)
            .field("sandbox", &self.sandbox)
            .field("env", &self.env)
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

impl Default for Isolation {
    fn default() -> Self {
        Isolation {
            deadline: Duration::from_secs(30),
            startup: Duration::from_secs(10),
            memory_limit: None,
            cpu_seconds: None,
            open_files: None,
            crash_budget: 3,
            crash_window: Duration::from_secs(60),
            runner: Runner::CurrentExe,
            sandbox: None,
            output: Arc::new(|plugin, stream, line| {
                let stream = if stream == Stream::Stdout { "stdout" } else { "stderr" };
                // Escaped: a plugin must not forge log lines or drive the terminal.
                let (plugin, line) = (crate::escape::escape_controls(plugin), crate::escape::escape_controls(line));
                eprintln!("[{plugin} {stream}] {line}");
            }),
            env: Vec::new(),
            max_frame: frame::DEFAULT_MAX_FRAME,
        }
    }
}

impl Isolation {
    /// Defaults: a 30 s deadline per call, 10 s to start, no resource limits, 3
    /// crashes a minute before quarantine, the host's own executable as runner, no
    /// sandbox, plugin output to stderr as `[name stream] line` (control characters
    /// escaped), an empty environment, frames of at most 64 MiB.
    pub fn new() -> Self {
        Self::default()
    }
    /// The longest a call may take; past it the process is killed and the call
    /// returns [`CallError::TimedOut`](crate::CallError::TimedOut).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
    /// The longest the process may take to start and load the plugin.
    pub fn startup(mut self, startup: Duration) -> Self {
        self.startup = startup;
        self
    }
    /// Limits the process's address space (`RLIMIT_AS`), in bytes. An allocation
    /// past it fails, which aborts the plugin's process.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }
    /// Limits the process's CPU time (`RLIMIT_CPU`), in seconds, over its life.
    pub fn cpu_seconds(mut self, seconds: u64) -> Self {
        self.cpu_seconds = Some(seconds);
        self
    }
    /// Limits the process's open files (`RLIMIT_NOFILE`).
    pub fn open_files(mut self, count: u64) -> Self {
        self.open_files = Some(count);
        self
    }
    /// After `crashes` crashes (or deadline kills) within `window`, the plugin is
    /// quarantined: calls fail at once with
    /// [`CallError::Quarantined`](crate::CallError::Quarantined).
    pub fn crash_budget(mut self, crashes: u32, window: Duration) -> Self {
        self.crash_budget = crashes.max(1);
        self.crash_window = window;
        self
    }
    /// Which executable runs the plugin.
    pub fn runner(mut self, runner: Runner) -> Self {
        self.runner = runner;
        self
    }
    /// Sandboxes the plugin's process (Linux; see [`Sandbox`]).
    pub fn sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }
    /// Sets an environment variable for the plugin's process. Nothing else of the
    /// host's environment reaches it (it may hold secrets): the plugin's process
    /// starts with only the variables given here.
    pub fn env(mut self, key: impl Into<std::ffi::OsString>, value: impl Into<std::ffi::OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    /// The largest message either side may send, in bytes (default 64 MiB, at most
    /// 1 GiB): a call whose arguments are larger fails before it is sent, and a
    /// plugin's answer that is larger is a
    /// [`CallError::Channel`](crate::CallError::Channel) — the host never allocates
    /// more than this for one answer, whatever the plugin's memory limit.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes.clamp(64, frame::MAX_FRAME);
        self
    }
    /// Where the plugin's output lines go. They are passed on as the plugin
    /// printed them: escape them (see [`escape_controls`](crate::escape::escape_controls))
    /// before they reach a terminal or a log.
    pub fn on_output(mut self, output: impl Fn(&str, Stream, &str) + Send + Sync + 'static) -> Self {
        self.output = Arc::new(output);
        self
    }
}

/// A running child process and its end of the channel.
struct Connection {
    child: Child,
    stream: UnixStream,
    next_id: u64,
    forwarders: Vec<JoinHandle<()>>,
}

impl Connection {
    /// Kills the whole process group and reaps the child: no zombie, no orphan.
    fn kill(self) -> Option<ExitStatus> {
        let pid = self.child.id() as i32;
        // SAFETY: `kill` takes plain integers; the group is the child's own (it was
        // started with `process_group(0)`), and the child is not reaped yet, so its
        // pid cannot have been reused.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        self.reap()
    }

    /// Gives a child whose channel ended up to `grace` to exit by itself (so its
    /// own exit status, e.g. the signal that crashed it, is what gets reported),
    /// then kills what is left of its process group and reaps it.
    fn end(self, grace: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + grace;
        let pid = self.child.id();
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
    fn reap(mut self) -> Option<ExitStatus> {
        let status = self.child.wait().ok();
        // Its pipes close with it and with its process group; something that left the
        // group could keep them open, so wait for the forwarders a short while only.
        let until = Instant::now() + FORWARDER_GRACE;
        for f in self.forwarders.drain(..) {
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
    connection: Option<Connection>,
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
    options: Isolation,
    state: Mutex<State>,
}

impl Isolated {
    /// Starts the child and loads the plugin in it.
    pub(crate) fn start(inspection: &Inspection, file: &PluginFile, options: Isolation) -> Result<Isolated, LoadError> {
        let file = file.file.try_clone().map_err(|e| LoadError::Io { path: inspection.path.clone(), source: e })?;
        let isolated = Isolated {
            path: inspection.path.clone(),
            file,
            name: inspection.manifest.info.name.clone(),
            manifest_bytes: inspection.manifest_bytes.clone(),
            options,
            state: Mutex::new(State { connection: None, crashes: VecDeque::new(), quarantined: None }),
        };
        let connection = isolated.spawn()?;
        isolated.lock().connection = Some(connection);
        Ok(isolated)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pid of the plugin's current process, if one is running.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.lock().connection.as_ref().map(|c| c.child.id())
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
        let (mut host_end, pair_end) =
            UnixStream::pair().map_err(|e| fail(format!("cannot make a socket pair: {e}")))?;
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
                if libc::dup2(child_fd, CHILD_FD) < 0 || libc::dup2(plugin_fd, PLUGIN_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Nothing else of the host's leaks into the plugin's process (where a
                // sandbox could not take back an open descriptor): every descriptor
                // above 3 closes at exec. (Marked, not closed: std reports a failed
                // exec through one of them.)
                #[cfg(target_os = "linux")]
                libc::syscall(
                    libc::SYS_close_range,
                    PLUGIN_FD as libc::c_uint + 1,
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
                    Connection { child, stream: host_end, next_id: 0, forwarders }.kill();
                    return Err(e);
                }
            }
        }

        // The handshake: hello (version), load, ready (the manifest it read).
        let deadline = Some(Instant::now() + self.options.startup);
        // The child's own `LoadError`, if it refused the plugin with one.
        let mut reported = None;
        let mut handshake = || {
            let max = self.options.max_frame;
            let hello = frame::read(&host_end, Duration::ZERO, deadline, max).map_err(|e| match e {
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
            let request = LoadRequest { path: self.path.clone(), fd: PLUGIN_FD, sandbox: self.options.sandbox.clone() };
            frame::write(&mut host_end, Kind::Load, 0, &[&request.encode()])
                .map_err(|e| format!("cannot send the load request: {e}"))?;
            let ready = frame::read(&host_end, Duration::ZERO, deadline, max).map_err(|e| match e {
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
        let connection = Connection { child, stream: host_end, next_id: 1, forwarders };
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

impl Channel for Isolated {
    fn call(&self, method: u32, args: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let mut state = self.lock();
        if state.quarantined.is_some() {
            return Err(self.quarantined());
        }
        if state.connection.is_none() {
            match self.spawn() {
                Ok(c) => state.connection = Some(c),
                Err(e) => {
                    return Err(match self.crashed(&mut state) {
                        Some(_) => self.quarantined(),
                        None => CallError::Crashed {
                            signal: None,
                            exit_code: None,
                            detail: format!("the plugin's process could not be restarted: {e}"),
                        },
                    });
                }
            }
        }
        if args.len() + 4 + 9 > self.options.max_frame {
            // Refused here: the plugin's process is fine and stays.
            return Err(CallError::Channel {
                message: format!(
                    "the arguments take {} bytes, over the limit of {} bytes a call (`Isolation::max_frame`)",
                    args.len(),
                    self.options.max_frame
                ),
            });
        }
        let connection = state.connection.as_mut().expect("set above");
        let id = connection.next_id;
        connection.next_id += 1;
        let deadline = Instant::now() + self.options.deadline;
        let sent = frame::write(&mut connection.stream, Kind::Call, id, &[&method.to_le_bytes(), &args]);
        let answer = match sent {
            Ok(()) => frame::read(&connection.stream, CALL_SPIN, Some(deadline), self.options.max_frame),
            // The child is gone: its socket end is closed. Report it as such.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                Err(ReadError::TimedOut)
            }
            Err(_) => Err(ReadError::Eof),
        };
        let fault = match answer {
            // The child answers a value, a caught panic, or undecodable arguments;
            // any other status is a forgery (crashes and deadlines are ours to say).
            Ok(f) if f.kind == Kind::Reply && f.id == id && matches!(f.payload.first(), Some(0..=2)) => {
                let status = f.payload[0];
                let mut body = f.payload;
                body.remove(0);
                return tomada::client::answer(status, body);
            }
            Ok(f) => CallError::Channel {
                message: format!("a malformed answer ({:?} frame, id {} for call {id})", f.kind, f.id),
            },
            Err(ReadError::Malformed(why)) => CallError::Channel { message: format!("a malformed answer: {why}") },
            Err(ReadError::Io(e)) => CallError::Channel { message: format!("the channel failed: {e}") },
            Err(ReadError::TimedOut) => CallError::TimedOut { deadline: self.options.deadline },
            Err(ReadError::Eof) => CallError::Crashed { signal: None, exit_code: None, detail: String::new() },
        };
        // Whatever happened, this process is done: kill it (a malformed frame or a
        // hang) or reap it (it died), and start afresh on the next call.
        // (A child that closed the channel may still be alive: it is killed too.)
        let connection = state.connection.take().expect("set above");
        let exit =
            if matches!(fault, CallError::Crashed { .. }) { connection.end(END_GRACE) } else { connection.kill() };
        let quarantine = self.crashed(&mut state);
        Err(match fault {
            CallError::Crashed { .. } => crashed(exit, quarantine),
            other => other,
        })
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        if let Some(connection) = self.lock().connection.take() {
            connection.kill();
        }
    }
}

/// Starts an isolated plugin for `inspection` (already checked by the caller).
pub(crate) fn start(
    inspection: &Inspection,
    file: &PluginFile,
    options: &Isolation,
) -> Result<Arc<Isolated>, LoadError> {
    Isolated::start(inspection, file, options.clone()).map(Arc::new)
}
