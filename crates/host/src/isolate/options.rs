//! The options of isolated plugins, the same on every platform (where isolation is not
//! implemented yet they are accepted, and loading says it is unsupported), so a host
//! compiles unchanged everywhere.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::Sandbox;

/// No frame is ever larger than this, whatever the configured limit: a call's
/// arguments or result over 1 GiB is refused before it is sent.
pub(crate) const MAX_FRAME: usize = 1 << 30;
/// The default limit of one frame (see `Isolation::max_frame`): 64 MiB.
pub(crate) const DEFAULT_MAX_FRAME: usize = 64 << 20;
/// The smallest [`Isolation::memory_limit`] accepted: what a plugin's process needs
/// to start (measured on Linux x86_64 with the greeter fixture: it starts and answers
/// under 16 MiB of address space; under 8 MiB its first call fails, under 4 MiB the
/// runner's own libraries do not map).
pub(crate) const MIN_MEMORY: u64 = 16 << 20;

/// Where a plugin runs.
// Built once per plugin and passed by reference: its size does not matter, and a
// box would change how every host writes `Mode::Isolated(..)`.
// Non-exhaustive: `Remote` exists only with the `remote` feature (on Linux), so a
// host's `match` needs a `_` arm to compile either way.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Mode {
    /// In the host's process: fastest; a crash of the plugin is a crash of the host.
    #[default]
    InProcess,
    /// In a child process: a crash, hang or runaway allocation costs only the plugin.
    Isolated(Isolation),
    /// In a child process on another machine, served by `tomada serve` over TLS with
    /// pinned keys on both sides (see [`crate::remote`]); the path given to the loader
    /// names the plugin the server serves.
    #[cfg(all(target_os = "linux", feature = "remote"))]
    #[cfg_attr(docsrs, doc(cfg(all(target_os = "linux", feature = "remote"))))]
    Remote(crate::remote::Remote),
}

/// Which executable the child process runs.
#[derive(Debug, Clone, Default)]
pub enum Runner {
    /// The host's own executable, which calls [`serve_if_runner`](super::serve_if_runner) first in `main`.
    #[default]
    CurrentExe,
    /// Another executable that calls [`serve_if_runner`](super::serve_if_runner) (e.g. `tomada-runner`).
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
#[cfg_attr(not(unix), allow(dead_code))]
pub struct Isolation {
    pub(super) deadline: Duration,
    pub(super) startup: Duration,
    pub(super) memory_limit: Option<u64>,
    pub(super) cpu_seconds: Option<u64>,
    pub(super) open_files: Option<u64>,
    pub(super) crash_budget: u32,
    pub(super) crash_window: Duration,
    pub(super) runner: Runner,
    pub(super) sandbox: Option<Sandbox>,
    pub(super) output: OutputFn,
    pub(super) env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    pub(super) max_frame: usize,
    /// Frames over the socket alone (no shared memory): a relay carries them elsewhere.
    #[cfg(unix)]
    pub(crate) socket_only: bool,
    /// Set for a remote plugin: each "process" is a connection to a server.
    #[cfg(all(target_os = "linux", feature = "remote"))]
    pub(crate) remote: Option<Arc<crate::remote::client::Client>>,
    /// The log levels the plugin may send, if not this process's (a server passes on
    /// its client's).
    pub(crate) log_level: Option<u8>,
    /// Keep a spare runner started (see [`Isolation::spare_runner`]).
    pub(super) spare_runner: bool,
    /// How many lanes (see [`Isolation::lanes`]); `None`: the default.
    pub(super) lanes: Option<usize>,
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
            .field("spare_runner", &self.spare_runner)
            .field("lanes", &self.lanes)
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
            max_frame: DEFAULT_MAX_FRAME,
            #[cfg(unix)]
            socket_only: false,
            #[cfg(all(target_os = "linux", feature = "remote"))]
            remote: None,
            log_level: None,
            spare_runner: false,
            lanes: None,
        }
    }
}

impl Isolation {
    /// Which isolated plugins may share a sealed copy of one file with a plugin
    /// started with these options (see `crate::file::shared`): a plugin's process can
    /// change the copy's mode (`fchmod`, as its owner's uid) unless its sandbox
    /// refuses metadata changes, which would make the other processes' loads of it
    /// fail. So copies are shared only among plugins without a sandbox (0: each runs
    /// as the host's user and can reach what that user can: the copies of the others,
    /// through the host's `/proc`, and the plugin file itself), and among plugins whose
    /// sandbox refuses every metadata change (1: `Sandbox::read_only_filesystem`,
    /// which `Sandbox::strict` sets); `None`, not shared, for the rest.
    pub(crate) fn sharing_class(&self) -> Option<u8> {
        match &self.sandbox {
            None => Some(0),
            Some(sandbox) if sandbox.read_only => Some(1),
            Some(_) => None,
        }
    }

    /// Defaults: a 30 s deadline per call, 10 s to start, no resource limits, 3
    /// crashes a minute before quarantine, the host's own executable as runner, no
    /// sandbox, plugin output to stderr as `[name stream] line` (control characters
    /// escaped), an empty environment, frames of at most 64 MiB.
    pub fn new() -> Self {
        Self::default()
    }
    /// The longest a call may take; past it the process is killed and the call
    /// returns [`CallError::TimedOut`](crate::CallError::TimedOut). Zero fails the
    /// load with [`LaunchError::BadOptions`](crate::LaunchError::BadOptions).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }
    /// The longest the process may take to start and load the plugin (not zero).
    pub fn startup(mut self, startup: Duration) -> Self {
        self.startup = startup;
        self
    }
    /// Limits the process's address space (`RLIMIT_AS`; Windows: its committed
    /// memory, through its job object), in bytes. An allocation past it fails, which
    /// aborts the plugin's process. At least 16 MiB (what the process needs to
    /// start): a smaller limit fails the load with
    /// [`LaunchError::BadOptions`](crate::LaunchError::BadOptions).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }
    /// Limits the process's CPU time (`RLIMIT_CPU`; Windows: its user time, through
    /// its job object), in seconds, over its life.
    pub fn cpu_seconds(mut self, seconds: u64) -> Self {
        self.cpu_seconds = Some(seconds);
        self
    }
    /// Limits the process's open files (`RLIMIT_NOFILE`; not applied on Windows): the highest descriptor
    /// number it can open, plus one. The process starts with descriptors 0 to 10 (stdio,
    /// the channel's socket, the plugin file, the nudge pipe, and on Linux the channel's
    /// shared memory and its four bells, each a pipe) plus the few the runtime opens, so leave
    /// room above 16 for what the plugin opens itself.
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
    /// Sandboxes the plugin's process (Linux; see [`Sandbox`]). On Windows there is no
    /// sandbox: the load fails with
    /// [`LaunchError::SandboxUnsupported`](crate::LaunchError::SandboxUnsupported).
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
    /// The largest message either side may send, in bytes (default 64 MiB, at least
    /// 64 bytes, at most 1 GiB): a call whose arguments are larger fails before it is
    /// sent, and a plugin's answer that is larger is a
    /// [`CallError::Channel`](crate::CallError::Channel) — the host never allocates
    /// more than this for one answer, whatever the plugin's memory limit. The start's
    /// own messages (the load request, with the manifest and the configuration, and
    /// its answer) may take up to 16 MiB whatever this is, so a small limit set for
    /// calls does not stop the plugin from starting.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes.clamp(64, MAX_FRAME);
        self
    }
    /// Keeps a spare runner process started, so that the next start of a plugin with
    /// these options (another plugin loaded, or this one restarted after a crash)
    /// does not wait for the runner's `exec` and start-up, most of a start's time.
    ///
    /// The spare is started in the background after each start of a plugin with this
    /// option, with everything a runner gets when it starts that does not depend on
    /// the plugin (the runner executable, [`env`](Self::env), [`max_frame`](Self::max_frame));
    /// it says hello and waits, unsandboxed but idle, holding nothing of any plugin.
    /// A start whose runner, environment and frame limit are the same takes it and
    /// goes on as with a new runner: limits, plugin file, containment, sandbox and the
    /// plugin all come after, so what differs (the plugin, [`sandbox`](Self::sandbox),
    /// limits, deadlines, output) may differ. A spare that died is replaced by a new
    /// runner, silently. It is one idle process (~2 MB resident) more; it is killed
    /// when the last plugin loaded with this option (and the same runner, environment
    /// and frame limit) is dropped, and dies with the host. Off by default.
    ///
    /// Linux with glibc only; elsewhere accepted and ignored.
    pub fn spare_runner(mut self, on: bool) -> Self {
        self.spare_runner = on;
        self
    }

    /// How many *lanes* the plugin's process gets: pairs of shared-memory rings beside
    /// the main pair, each served by a thread of its own in the child. A blocking call
    /// takes a free lane (one atomic try) and travels alone on it: host threads calling
    /// at once do not share a ring, a reading lock or a wake-up. A call that finds none
    /// free (more threads than lanes), an async call and a call made from a plugin's own
    /// thread's callback travel the main rings, as without lanes. At most 8; `0`: none.
    /// Each lane is two rings of 2 MiB of shared memory (touched as used), a sleeping
    /// thread in the child, and two descriptors there (under
    /// [`open_files`](Self::open_files), lanes take at most half of the limit: fewer
    /// lanes, or none).
    ///
    /// By default a process gets twice the CPUs, at most 4, and starts them only when
    /// calls first overlap: once a blocking call (not one made within a callback) that
    /// was sent while another call was in flight has its answer, its thread asks the
    /// child to start them (one round trip and the child's threads, once per process,
    /// on that call's time). A process whose calls never overlap maps none and starts
    /// no thread for them; what it pays is their making (~25 µs of its start) and
    /// their descriptors, one per lane in the host (its bell; the host closes its ring
    /// memories once mapped) and two in the child, held from the
    /// start (`lanes(0)` for a host that runs very many isolated plugins under a low
    /// limit of open files). With 4 threads, lanes make
    /// about twice the calls a second at half the CPU a call, and 2.4–3.3 context
    /// switches a call instead of 3.6–5.5 (docs/benchmarks.md, "Many threads, round 3").
    /// Set here, the lanes are started with the process, before its first call (~0.2 ms
    /// more per start), so that even the first calls that overlap take them.
    ///
    /// ```
    /// # use tomada_host::isolate::Isolation;
    /// // A plugin that a pool of four request threads calls at once, from the start.
    /// let isolation = Isolation::new().lanes(4);
    /// # drop(isolation);
    /// ```
    ///
    /// Linux, over shared memory only; elsewhere (and for a remote plugin) accepted and
    /// ignored.
    pub fn lanes(mut self, lanes: usize) -> Self {
        self.lanes = Some(lanes);
        self
    }

    /// Why these options cannot start a plugin, if they cannot: checked before a
    /// process starts, so that a zero or too small a value is an error that names
    /// it rather than a process that dies before it greets the host, or calls that
    /// all time out.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.deadline.is_zero() {
            return Err("`Isolation::deadline` is zero: every call would time out before it is sent".to_owned());
        }
        if self.startup.is_zero() {
            return Err("`Isolation::startup` is zero: no process can start and load the plugin in no time".to_owned());
        }
        if let Some(bytes) = self.memory_limit.filter(|b| *b < MIN_MEMORY) {
            return Err(format!(
                "`Isolation::memory_limit` of {bytes} bytes is under the {} MiB a plugin's process needs to start \
                 (the runner's code and libraries, its threads' stacks, the channel's rings)",
                MIN_MEMORY >> 20
            ));
        }
        if self.cpu_seconds == Some(0) {
            return Err("`Isolation::cpu_seconds` is zero: the process would be killed as it starts".to_owned());
        }
        Ok(())
    }

    /// The lanes a new process of the plugin gets (see [`Isolation::lanes`]).
    #[cfg(target_os = "linux")]
    pub(crate) fn lane_count(&self) -> usize {
        if self.socket_only {
            return 0;
        }
        let lanes = self.lanes.unwrap_or_else(default_lanes).min(super::protocol::MAX_LANES);
        // Each lane takes descriptors in the child (`protocol::LANE_FDS`): under a limit
        // of open files, they may take up to half of it (the rest is the plugin's).
        let room = self.open_files.map_or(usize::MAX, |n| {
            let half = usize::try_from(n / 2).unwrap_or(usize::MAX);
            half.saturating_sub(super::protocol::LANE_FD as usize) / super::protocol::LANE_FDS as usize
        });
        lanes.min(room)
    }

    /// Where the plugin's output lines go. They are passed on as the plugin
    /// printed them: escape them (see [`escape_controls`](crate::escape::escape_controls))
    /// before they reach a terminal or a log.
    pub fn on_output(mut self, output: impl Fn(&str, Stream, &str) + Send + Sync + 'static) -> Self {
        self.output = Arc::new(output);
        self
    }
}

/// The lanes a process gets by default: twice the CPUs, at most 4 (looked up once).
#[cfg(target_os = "linux")]
fn default_lanes() -> usize {
    static LANES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LANES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_mul(2).min(4))
}
