//! Starting and supervising a plugin's process, knowing nothing of the channel: the
//! descriptors it inherits (each at the number the caller names, nothing else of the
//! host's), its environment (only what the host passes), its session and limits, its
//! output forwarded line by line, its exit status, and killing its whole process
//! group. Every failure is a typed [`LaunchError`].
//!
//! On Windows: the handles the caller passes are inherited (their values are the
//! caller's to tell the child), and the process group is a job object (see
//! `windows.rs`).

use std::collections::VecDeque;
#[cfg(unix)]
use std::io;
use std::io::{BufRead, BufReader, Read};
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
#[cfg(all(unix, not(all(target_os = "linux", target_env = "gnu"))))]
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitStatus;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::options::{Isolation, OutputFn, Stream};
#[cfg(unix)]
use super::spawner;
use crate::{LaunchError, Step};

/// How many of a plugin's last stderr lines a load failure quotes.
const STDERR_TAIL: usize = 8;
/// The longest line of plugin output passed on whole; longer ones are split.
const MAX_LINE: u64 = 64 * 1024;
/// How long a dead child's output may still take to arrive.
const FORWARDER_GRACE: Duration = Duration::from_millis(500);

/// What to start.
pub(crate) struct Launch<'a> {
    /// The runner's executable.
    pub(crate) exe: &'a Path,
    /// Its environment (with the host's own variables, `options.env`), limits and
    /// output.
    pub(crate) options: &'a Isolation,
    /// The plugin's name, for its output.
    pub(crate) name: &'a str,
    /// Variables of the host's own for the child.
    pub(crate) env: Vec<(&'static str, String)>,
    /// Descriptors the child inherits, each at its number (see [`above`]); closed in
    /// this process once the child started.
    #[cfg(unix)]
    pub(crate) pass: Vec<(OwnedFd, RawFd)>,
    /// The last descriptor the child inherits: every one above closes at exec.
    #[cfg(unix)]
    pub(crate) last_fd: RawFd,
    /// Handles the child inherits (Windows); closed in this process once the child
    /// started.
    #[cfg(windows)]
    pub(crate) pass: Vec<std::os::windows::io::OwnedHandle>,
}

/// The lowest number [`above`] gives: above every number a child is passed (on
/// Linux up to its last lane's bell, 26).
#[cfg(unix)]
const ABOVE: RawFd = 32;
#[cfg(target_os = "linux")]
const _: () = {
    use super::protocol::{LANE_FD, LANE_FDS, MAX_LANES};
    assert!(ABOVE > LANE_FD + LANE_FDS * MAX_LANES as RawFd - 1);
};

/// Duplicates `fd` above the standard descriptors and every number passed (≥
/// [`ABOVE`]), close on exec: then `dup2` onto its number in the child always makes
/// a new descriptor (without close-on-exec), and no `dup2` of the ones before it
/// lands on a descriptor still to be passed. (It was ≥ 10, below the lanes' numbers:
/// a host whose low numbers were free in another order than it took them, as in a
/// busy test process, passed one lane's descriptor where another's was due.)
#[cfg(unix)]
pub(crate) fn above(fd: BorrowedFd<'_>) -> Result<OwnedFd, LaunchError> {
    // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` on a descriptor the caller holds open returns
    // a new one (or -1).
    match unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, ABOVE) } {
        -1 => Err(LaunchError::Setup { step: Step::Duplicate, source: io::Error::last_os_error() }),
        // SAFETY: a fresh descriptor returned by `fcntl`, owned by nobody else.
        fd => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
    }
}

/// Whether this process ignores `SIGPIPE` (as every Rust program does unless it opts
/// out): a write to a pipe without readers is then an `EPIPE` error, not the
/// process's death, and the readers of `Connection::_readers` need not be kept.
#[cfg(unix)]
pub(crate) fn sigpipe_ignored() -> bool {
    // SAFETY: a query (no new action): `sigaction` writes the current one into a
    // zeroed local.
    let mut old = unsafe { std::mem::zeroed::<libc::sigaction>() };
    // SAFETY: as above.
    let queried = unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) } == 0;
    queried && old.sa_sigaction == libc::SIG_IGN
}

/// Raises this process's soft limit of open descriptors to its hard limit (on macOS
/// at most `OPEN_MAX`, which `setrlimit` accepts), as Go's runtime and the JVM do at
/// start; whether it rose. tomada does it only once a start ran out of descriptors
/// (each isolated plugin holds about a dozen, and soft limits are often 1,024), and
/// says so in a `tracing` record: the host's own later descriptors may then be
/// numbered above 1,023, which only `select(2)` cannot take.
#[cfg(unix)]
pub(crate) fn raise_open_files() -> bool {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` writes one `rlimit` into a local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= limit.rlim_max {
        return false;
    }
    let was = limit.rlim_cur;
    #[cfg(target_os = "macos")]
    let most = limit.rlim_max.min(10_240); // (`OPEN_MAX`, `<sys/syslimits.h>`; not in `libc`)
    #[cfg(not(target_os = "macos"))]
    let most = limit.rlim_max;
    if most <= was {
        return false;
    }
    limit.rlim_cur = most;
    // SAFETY: `setrlimit` reads one `rlimit` from a local; a soft limit up to the hard
    // one needs no privilege.
    let raised = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0;
    if raised {
        tracing::info!(from = was, to = most, "out of file descriptors: raised the soft limit to the hard one");
    }
    raised
}

/// The nudge: a pipe, where each 8-byte write is one post and each 8-byte read takes
/// one. Returns the host's write end (non-blocking), a reader the host keeps (see
/// `Connection::_readers`), and the child's opening (see [`above`]).
///
/// Not an eventfd: a descriptor both processes hold shares its open file description,
/// whose `O_NONBLOCK` the plugin could clear and whose counter it could fill, blocking
/// the host's next post for good. The host keeps the write end for itself: a full
/// pipe (`EAGAIN`: thousands of posts not taken) means the child has plenty already.
/// The child gets an opening of its own (Linux: read-write through `/proc`, so its
/// threads also post to one another; elsewhere the read end).
#[cfg(unix)]
pub(crate) fn nudge_pipe() -> Result<(OwnedFd, OwnedFd, OwnedFd), LaunchError> {
    let fail = |step| LaunchError::Setup { step, source: io::Error::last_os_error() };
    let mut fds = [0; 2];
    // SAFETY: `pipe` writes two new descriptors into the local array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(fail(Step::Pipe));
    }
    // SAFETY: fresh descriptors returned by `pipe`, owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: `fcntl` on our own descriptors: close at exec, and the write end
    // non-blocking (its flags are the host's alone: the child never gets it).
    let flagged = unsafe {
        libc::fcntl(read.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) == 0
            && libc::fcntl(write.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) == 0
            && libc::fcntl(write.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) == 0
    };
    if !flagged {
        return Err(fail(Step::NudgePipe));
    }
    #[cfg(target_os = "linux")]
    let read = {
        let path = std::ffi::CString::new(format!("/proc/self/fd/{}", read.as_raw_fd())).expect("no NUL in a number");
        // SAFETY: a NUL-terminated path and flags; returns a new descriptor or -1.
        match unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) } {
            -1 => return Err(fail(Step::NudgePipe)),
            // SAFETY: a fresh descriptor returned by `open`, owned by nobody else.
            fd => unsafe { OwnedFd::from_raw_fd(fd) },
        }
    };
    let child = above(read.as_fd())?;
    Ok((write, read, child))
}

/// A started child, until reaped.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Started = vfork::Spawned;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Started = Child;

/// A started process, supervised: its pid (its own process group's id), the child to
/// reap, and the threads forwarding its output.
pub(crate) struct Process {
    pub(crate) pid: u32,
    /// `None` once reaped.
    child: Mutex<Option<Started>>,
    forwarders: Mutex<Vec<JoinHandle<()>>>,
    /// Its last lines on stderr.
    tail: Arc<Mutex<VecDeque<String>>>,
    /// Where its output lines go, and under which plugin's name (changed when a spare
    /// runner is taken for a plugin: see [`Process::adopt`]).
    sink: Arc<Mutex<(OutputFn, String)>>,
    /// The job object it runs in (Windows), the host's handle the only one.
    #[cfg(windows)]
    job: std::os::windows::io::OwnedHandle,
}

/// `options`' limits, by resource (unset ones `None`).
#[cfg(unix)]
fn limits(options: &Isolation) -> [(LimitResource, Option<u64>); 3] {
    [
        (libc::RLIMIT_AS, options.memory_limit),
        (libc::RLIMIT_CPU, options.cpu_seconds),
        (libc::RLIMIT_NOFILE, options.open_files),
    ]
}

/// A resource of `setrlimit` (its type differs between C libraries).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
type LimitResource = libc::__rlimit_resource_t;
#[cfg(all(unix, not(all(target_os = "linux", target_env = "gnu"))))]
type LimitResource = libc::c_int;

/// Starts `launch`: a session of its own (its own process group, killed as one, and
/// no controlling terminal), the descriptors passed and no other, the limits, its
/// stdout and stderr forwarded to `options.output`.
pub(crate) fn start(launch: Launch<'_>) -> Result<Process, LaunchError> {
    #[cfg(unix)]
    let Launch { exe, options, name, env, pass, last_fd } = launch;
    #[cfg(windows)]
    let Launch { exe, options, name, env, pass } = launch;
    #[cfg(unix)]
    let limits = limits(options);
    #[cfg(unix)]
    let moves: Vec<(RawFd, RawFd)> = pass.iter().map(|(fd, to)| (fd.as_raw_fd(), *to)).collect();
    // Linux with glibc: `posix_spawn` (a `vfork`: the host's memory is neither
    // copied nor write-protected, as a `fork` does for a moment that costs a
    // page fault per page written afterwards, in both processes). Everything the
    // `fork` path below does between fork and exec has its `posix_spawn` form but the
    // parent-death signal, which the runner arms first thing (checking that its
    // parent is still the host), and the limits, set below before the runner hears of
    // any plugin.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let mut child = {
        let vars: Vec<(std::ffi::OsString, std::ffi::OsString)> =
            options.env.iter().cloned().chain(env.into_iter().map(|(k, v)| (k.into(), v.into()))).collect();
        let exe_owned = exe.to_path_buf();
        let started = spawner::run(move || vfork::spawn(&exe_owned, &vars, &moves, last_fd))
            .map_err(|source| LaunchError::Start { runner: exe.to_path_buf(), source })?;
        super::steps::mark("host: posix_spawn returned");
        if let Err(source) = vfork::limit(started.pid, &limits) {
            let mut started = started;
            // SAFETY: `kill` takes integers; the child is ours and not reaped yet.
            unsafe { libc::kill(started.pid as i32, libc::SIGKILL) };
            let _ = started.wait();
            return Err(LaunchError::Start { runner: exe.to_path_buf(), source });
        }
        started
    };
    #[cfg(all(unix, not(all(target_os = "linux", target_env = "gnu"))))]
    let mut child = {
        let mut command = Command::new(exe);
        // Only what the host passes: its environment may hold secrets.
        command
            .env_clear()
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(not(target_os = "linux"))]
        let _ = last_fd; // (used on Linux)
        // SAFETY: the closure only makes async-signal-safe system calls (`setsid`,
        // `dup2`, `close_range`, `prctl`, `setrlimit`) between fork and exec, on values
        // computed before (it reads `moves`, allocated before the fork).
        unsafe {
            command.pre_exec(move || {
                // A session of its own: its own process group (killed as one), and no
                // controlling terminal, so nothing it does reaches the user's terminal
                // (`open("/dev/tty")` fails with ENXIO).
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                // Each passed descriptor at its number, without close-on-exec.
                for &(from, to) in &moves {
                    if libc::dup2(from, to) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                // Nothing else of the host's leaks into the plugin's process (where a
                // sandbox could not take back an open descriptor): every descriptor above
                // the last one passed closes at exec. (Marked, not closed: std reports a
                // failed exec through one of them.)
                #[cfg(target_os = "linux")]
                libc::syscall(
                    libc::SYS_close_range,
                    last_fd as libc::c_uint + 1,
                    libc::c_uint::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                #[cfg(target_os = "linux")]
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                for (resource, limit) in limits {
                    if let Some(limit) = limit {
                        let rlim = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
                        if libc::setrlimit(resource, &rlim) != 0 {
                            return Err(io::Error::last_os_error());
                        }
                    }
                }
                Ok(())
            });
        }
        spawner::spawn(command).map_err(|source| LaunchError::Start { runner: exe.to_path_buf(), source })?
    };
    #[cfg(windows)]
    let (mut child, job) = {
        let mut command = Command::new(exe);
        // Only what the host passes: its environment may hold secrets (with the
        // system's root, without which Windows' own libraries fail to start).
        command
            .env_clear()
            .envs(std::env::var_os("SystemRoot").map(|root| ("SystemRoot", root)))
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        super::windows::spawn_in_job(command, exe, options, pass)?
    };
    // The child has its own copies: the host keeps none (it must hold only its own
    // end of the channel, or it never sees the end of a child that dies).
    #[cfg(unix)]
    drop(pass);
    let pipes = [
        (child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>), Stream::Stdout),
        (child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>), Stream::Stderr),
    ];
    let process = Process {
        pid: child.id(),
        child: Mutex::new(Some(child)),
        forwarders: Mutex::new(Vec::new()),
        tail: Arc::default(),
        sink: Arc::new(Mutex::new((Arc::clone(&options.output), name.to_owned()))),
        #[cfg(windows)]
        job,
    };
    for (pipe, stream) in pipes {
        let Some(pipe) = pipe else { continue };
        let sink = Arc::clone(&process.sink);
        let keep = (stream == Stream::Stderr).then(|| Arc::clone(&process.tail));
        let forward = move || {
            let _own = crate::unload::own_thread();
            // Bytes, not `lines()`: a plugin may print anything, and a line without
            // end must not grow the host's memory without bound.
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
                        let (output, plugin) = lock(&sink).clone();
                        output(&plugin, stream, text);
                    }
                }
            }
        };
        match std::thread::Builder::new().name(format!("tomada-output-{name}")).spawn(forward) {
            Ok(f) => lock(&process.forwarders).push(f),
            Err(source) => {
                process.kill();
                return Err(LaunchError::Setup { step: Step::OutputThread, source });
            }
        }
    }
    super::steps::mark("host: limits set, output threads started");
    Ok(process)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Process {
    /// Kills the whole process group and reaps the child: no zombie, no orphan.
    /// `None` if it was reaped already (or its status could not be read).
    pub(crate) fn kill(&self) -> Option<ExitStatus> {
        if lock(&self.child).is_none() {
            return None;
        }
        #[cfg(unix)]
        {
            let pid = self.pid as i32;
            // SAFETY: `kill` takes plain integers; the group is the child's own (it
            // started a session), and the child is not reaped yet, so its pid cannot
            // have been reused.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        #[cfg(windows)]
        super::windows::kill_job(&self.job);
        self.reap()
    }

    /// Waits up to `grace` for the child to exit by itself (so its own exit status,
    /// e.g. the signal that crashed it, is what gets reported); it is not reaped.
    pub(crate) fn wait_exit(&self, grace: Duration) {
        let until = Instant::now() + grace;
        loop {
            // (On Windows a process that exited stays the host's to read until its
            // handle closes, with `reap`.)
            #[cfg(windows)]
            let exited = lock(&self.child).as_mut().is_none_or(|c| c.try_wait().map_or(true, |s| s.is_some()));
            // SAFETY: `waitid` writes into a zeroed local; `WNOWAIT` leaves the child
            // a zombie, so its pid (and group id) stays ours until `reap`.
            #[cfg(unix)]
            let exited = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(libc::P_PID, self.pid, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) == 0
                    && info.si_pid() != 0
            };
            if exited || Instant::now() >= until {
                return;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Waits for the killed child to exit, then (briefly) for its last output.
    fn reap(&self) -> Option<ExitStatus> {
        let status = lock(&self.child).take()?.wait().ok();
        // Its pipes close with it and with its process group; something that left the
        // group could keep them open, so wait for the forwarders a short while only.
        let until = Instant::now() + FORWARDER_GRACE;
        let forwarders = std::mem::take(&mut *lock(&self.forwarders));
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

    /// From now on, its output lines go to `output` under `name` (a spare runner taken
    /// for a plugin), and its stderr tail holds only lines from now on.
    #[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
    pub(crate) fn adopt(&self, output: &OutputFn, name: &str) {
        let mut sink = lock(&self.sink);
        *sink = (Arc::clone(output), name.to_owned());
        lock(&self.tail).clear();
    }

    /// Whether it still runs (it has not exited, or was not reaped yet by us).
    #[cfg(unix)]
    #[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
    pub(crate) fn alive(&self) -> bool {
        if lock(&self.child).is_none() {
            return false;
        }
        // SAFETY: `waitid` writes into a zeroed local; `WNOWAIT` leaves an exited
        // child a zombie (reaped by `kill`).
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(libc::P_PID, self.pid, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) == 0
                && info.si_pid() == 0
        }
    }

    /// Sets `options`' limits on it (a spare runner taken for a plugin: it was told
    /// of no plugin yet, as a new runner is when `start` sets them).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    pub(crate) fn limit(&self, options: &Isolation) -> io::Result<()> {
        vfork::limit(self.pid, &limits(options))
    }

    /// Its last lines on stderr (at most a few).
    pub(crate) fn stderr_tail(&self) -> Vec<String> {
        lock(&self.tail).iter().cloned().collect()
    }
}

/// Starting the runner with `posix_spawn` (Linux with glibc, whose `posix_spawn` is a
/// `clone(CLONE_VM | CLONE_VFORK)`): see [`start`]. Hand-written: std's `Command`
/// falls back to `fork` for anything it cannot say to `posix_spawn` (a new session,
/// descriptors at given numbers), and no well-kept crate says those either.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod vfork {
    use std::ffi::{CString, OsString};
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::ExitStatusExt;
    use std::path::Path;
    use std::process::ExitStatus;

    /// A process started by [`spawn`]: its pid (reaped by [`Spawned::wait`]) and the
    /// host's ends of its stdout and stderr.
    pub(crate) struct Spawned {
        pub(crate) pid: u32,
        pub(crate) stdout: Option<File>,
        pub(crate) stderr: Option<File>,
    }

    impl Spawned {
        pub(crate) fn id(&self) -> u32 {
            self.pid
        }

        /// Waits for it to end and reaps it.
        pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
            let mut status = 0;
            loop {
                // SAFETY: waiting for our own child, into a local.
                if unsafe { libc::waitpid(self.pid as libc::pid_t, &mut status, 0) } != -1 {
                    return Ok(ExitStatus::from_raw(status));
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }

    /// A pipe, both ends close on exec.
    fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
        let mut fds = [0; 2];
        // SAFETY: `pipe2` writes two new descriptors into the local array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors returned by `pipe2`, owned by nobody else.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    /// `fd` moved to a number above 2 if it has one of the standard ones (close on exec).
    fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
        if fd.as_raw_fd() > 2 {
            return Ok(fd);
        }
        // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` on a descriptor we own returns a new one (or -1).
        match unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) } {
            -1 => Err(io::Error::last_os_error()),
            // SAFETY: a fresh descriptor returned by `fcntl`, owned by nobody else.
            new => Ok(unsafe { OwnedFd::from_raw_fd(new) }),
        }
    }

    /// An error number returned by a `posix_spawn*` function, as an error.
    fn check(code: libc::c_int) -> io::Result<()> {
        if code == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(code)) }
    }

    /// Starts `exe` with only `vars` in its environment, in a session of its own,
    /// `/dev/null` as stdin and pipes as stdout and stderr, each of `moves`'
    /// descriptors at its number, and no other descriptor above `last_fd`; signals
    /// unblocked, and `SIGPIPE` at its default (as std's `Command` leaves them).
    pub(crate) fn spawn(
        exe: &Path,
        vars: &[(OsString, OsString)],
        moves: &[(RawFd, RawFd)],
        last_fd: RawFd,
    ) -> io::Result<Spawned> {
        let invalid = |_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the runner's path or environment");
        let path = CString::new(exe.as_os_str().as_bytes()).map_err(invalid)?;
        let vars: Vec<CString> = vars
            .iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).map_err(invalid)
            })
            .collect::<Result<_, _>>()?;
        let argv = [path.as_ptr(), std::ptr::null()];
        let envp: Vec<*const libc::c_char> =
            vars.iter().map(|v| v.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
        // (The child's ends above the standard descriptors: one of those may be closed
        // in the host, and a pipe end there would be replaced before it is moved.)
        let (out_read, out_write) = pipe()?;
        let out_write = above_stdio(out_write)?;
        let (err_read, err_write) = pipe()?;
        let err_write = above_stdio(err_write)?;
        let mut pid: libc::pid_t = 0;
        // SAFETY: the file actions and attributes are initialised before use and
        // destroyed once; every pointer passed (path, argv, envp, the `/dev/null`
        // path) points to NUL-terminated data alive for the whole call, and argv and
        // envp end with a null pointer.
        unsafe {
            let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
            let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
            check(libc::posix_spawn_file_actions_init(&mut actions))?;
            if let Err(e) = check(libc::posix_spawnattr_init(&mut attr)) {
                libc::posix_spawn_file_actions_destroy(&mut actions);
                return Err(e);
            }
            let result = (|| {
                check(libc::posix_spawn_file_actions_addopen(
                    &mut actions,
                    0,
                    c"/dev/null".as_ptr(),
                    libc::O_RDONLY,
                    0,
                ))?;
                check(libc::posix_spawn_file_actions_adddup2(&mut actions, out_write.as_raw_fd(), 1))?;
                check(libc::posix_spawn_file_actions_adddup2(&mut actions, err_write.as_raw_fd(), 2))?;
                // Each passed descriptor at its number, without close-on-exec (they
                // come from above every number passed: see `above`).
                for &(from, to) in moves {
                    check(libc::posix_spawn_file_actions_adddup2(&mut actions, from, to))?;
                }
                // A number up to `last_fd` that is not passed (a spare runner's plugin
                // file, which comes later) is closed, not left to the host's.
                for fd in 3..=last_fd {
                    if !moves.iter().any(|&(_, to)| to == fd) {
                        check(libc::posix_spawn_file_actions_addclose(&mut actions, fd))?;
                    }
                }
                // Nothing else of the host's leaks into the plugin's process (where a
                // sandbox could not take back an open descriptor).
                check(libc::posix_spawn_file_actions_addclosefrom_np(&mut actions, last_fd + 1))?;
                // A session of its own: its own process group (killed as one), and no
                // controlling terminal, so nothing it does reaches the user's terminal.
                let flags = libc::POSIX_SPAWN_SETSID as libc::c_int
                    | libc::POSIX_SPAWN_SETSIGMASK as libc::c_int
                    | libc::POSIX_SPAWN_SETSIGDEF as libc::c_int;
                check(libc::posix_spawnattr_setflags(&mut attr, flags as libc::c_short))?;
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                check(libc::posix_spawnattr_setsigmask(&mut attr, &none))?;
                let mut pipe_signal: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut pipe_signal);
                libc::sigaddset(&mut pipe_signal, libc::SIGPIPE);
                check(libc::posix_spawnattr_setsigdefault(&mut attr, &pipe_signal))?;
                check(libc::posix_spawn(
                    &mut pid,
                    path.as_ptr(),
                    &actions,
                    &attr,
                    argv.as_ptr().cast(),
                    envp.as_ptr().cast(),
                ))
            })();
            libc::posix_spawn_file_actions_destroy(&mut actions);
            libc::posix_spawnattr_destroy(&mut attr);
            result?;
        }
        // (The child's ends close here with `out_write` and `err_write`.)
        Ok(Spawned { pid: pid as u32, stdout: Some(File::from(out_read)), stderr: Some(File::from(err_read)) })
    }

    /// Sets `limits` (soft and hard) on the process `pid`, a child of ours that has
    /// not been told of any plugin yet.
    pub(crate) fn limit(pid: u32, limits: &[(libc::__rlimit_resource_t, Option<u64>)]) -> io::Result<()> {
        for &(resource, limit) in limits {
            if let Some(limit) = limit {
                let rlim = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
                // SAFETY: `prlimit` reads a local and writes nothing (null old limit).
                if unsafe { libc::prlimit(pid as libc::pid_t, resource, &rlim, std::ptr::null_mut()) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }
}
