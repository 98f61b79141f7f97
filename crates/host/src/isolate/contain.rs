//! Containment: nothing a plugin starts outlives its process, its `Plugin` handle,
//! or a host killed with `SIGKILL` — with or without a sandbox.
//!
//! Linux has one mechanism that cannot be undone from inside: a PID namespace. When
//! a namespace's first process (its *init*) dies, the kernel kills every process in
//! it, daemons that called `setsid` and double-forked included. The runner process
//! (started by the host, parent-death signal armed) therefore becomes three:
//!
//! ```text
//! host ── supervisor (outside, our code) ── init (pid 1 inside, our code) ── worker (pid 2, loads the plugin)
//! ```
//!
//! - the *supervisor* stays in the host's namespace: it is the host's child, dies with
//!   the host (parent-death signal) and mirrors the worker's end (exit code or signal),
//!   so the host reports a crash exactly as before;
//! - the *init* dies with the supervisor (parent-death signal, sent from the parent
//!   namespace, which the kernel delivers to an init), reaps orphans, and exits when
//!   the worker does — taking the whole namespace with it. The plugin cannot kill it
//!   (an init ignores signals it has no handler for from inside its namespace) nor
//!   `ptrace` it (seccomp, Landlock);
//! - the *worker* serves the plugin. It is not the init, so `abort()` and the like
//!   behave as anywhere else.
//!
//! The same `unshare` also makes a new IPC namespace, always (the plugin cannot
//! attach the host's SysV segments, and those it makes die with the namespace), and
//! a new network namespace under `Sandbox::deny_network` with the deny-list filter
//! (no interface but a down loopback, whatever socket a system call the list does
//! not name could make); the allow-list of `Sandbox::strict` refuses every way to
//! make a socket, and needs none.
//!
//! Root creates the namespaces directly; any other user inside a new user
//! namespace that maps only its own uid and gid (`unshare -r` without the root). A
//! kernel that allows neither (user namespaces disabled) leaves the plugin without
//! containment: loading fails under a sandbox, and proceeds otherwise (the process
//! group is still killed, but a `setsid` daemon escapes). See `docs/isolation.md`.

use std::os::fd::RawFd;

use super::Sandbox;

/// Why the plugin's process could not be contained.
#[derive(Debug, thiserror::Error)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // (made by Linux's containment only)
pub(crate) enum ContainError {
    /// `unshare` refused (user namespaces disabled, or not Linux).
    #[error("cannot create the plugin's namespaces (PID, IPC{net}): {source}")]
    Namespaces { net: &'static str, source: std::io::Error },
    /// Writing the user namespace's id maps failed.
    #[error("cannot write {file}: {source}")]
    IdMap { file: &'static str, source: std::io::Error },
    /// A pipe or fork failed.
    #[error("cannot start the namespace's init ({step}): {source}")]
    Start { step: &'static str, source: std::io::Error },
}

/// Splits this process into supervisor, init and worker, in new PID and IPC
/// namespaces (and a network namespace under `sandbox`'s `deny_network`); returns in
/// the worker only. `channel` is closed in the other two. On error nothing was
/// changed.
#[cfg(target_os = "linux")]
pub(crate) fn enter_pid_namespace(channel: RawFd, sandbox: Option<&Sandbox>) -> Result<(), ContainError> {
    // SAFETY: `geteuid`/`getegid` have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // Under the allow-list (`strict()`), no system call that makes a socket is
    // allowed, known or future, and none is inherited: a network namespace would
    // add nothing there but its cost (it doubles the time to start a plugin when
    // plugins start one after another: the kernel tears the last one down meanwhile).
    let deny_network = sandbox.is_some_and(|s| s.deny_network && !s.allow_list);
    let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
    if deny_network {
        flags |= libc::CLONE_NEWNET;
    }
    if uid != 0 {
        flags |= libc::CLONE_NEWUSER;
    }
    // SAFETY: `unshare` takes flags; the process is single-threaded here (the runner
    // has not loaded anything), as `CLONE_NEWUSER` requires.
    if unsafe { libc::unshare(flags) } != 0 {
        let net = if deny_network { ", network" } else { "" };
        return Err(ContainError::Namespaces { net, source: std::io::Error::last_os_error() });
    }
    if uid != 0 {
        let maps = [
            ("/proc/self/setgroups", "deny".to_owned()),
            ("/proc/self/uid_map", format!("{uid} {uid} 1")),
            ("/proc/self/gid_map", format!("{gid} {gid} 1")),
        ];
        for (file, map) in maps {
            std::fs::write(file, map).map_err(|source| ContainError::IdMap { file, source })?;
        }
    }
    super::steps::mark("runner: namespaces made");
    let (status_r, status_w) = pipe()?;
    let (alive_r, alive_w) = pipe()?;
    // SAFETY: single-threaded; the child only continues this function's code.
    match unsafe { libc::fork() } {
        -1 => Err(ContainError::Start { step: "fork", source: std::io::Error::last_os_error() }),
        0 => {
            close(&[status_r, alive_w]);
            init(channel, status_w, alive_r)
        }
        init_pid => {
            close(&[channel, status_w, alive_r]);
            supervise(init_pid, status_r)
        }
    }
}

/// The supervisor: waits for the init, then ends as the worker ended.
#[cfg(target_os = "linux")]
fn supervise(init_pid: libc::pid_t, status_r: RawFd) -> ! {
    let mut init_status = 0;
    // SAFETY: waiting for our own child, into a local.
    while unsafe { libc::waitpid(init_pid, &mut init_status, 0) } == -1
        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
    {}
    let mut buf = [0u8; 4];
    // SAFETY: reading at most 4 bytes into a 4-byte buffer from our pipe.
    let n = unsafe { libc::read(status_r, buf.as_mut_ptr().cast(), 4) };
    // The worker's status if the init passed it on, else the init's own (killed).
    let status = if n == 4 { i32::from_ne_bytes(buf) } else { init_status };
    mirror(status)
}

/// Ends this process the way `status` (from `waitpid`) says another one ended.
#[cfg(target_os = "linux")]
fn mirror(status: i32) -> ! {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: plain system calls on values of ours: no core file (the worker's
        // was its own), the default action for `sig`, unblocked, then raised.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(sig);
            libc::_exit(128 + sig)
        }
    }
    // SAFETY: `_exit` ends the process without running anything of the plugin's.
    unsafe { libc::_exit(libc::WEXITSTATUS(status)) }
}

/// The namespace's init: starts the worker (returning in it), then reaps until
/// the worker ends and passes its status to the supervisor.
#[cfg(target_os = "linux")]
fn init(channel: RawFd, status_w: RawFd, alive_r: RawFd) -> Result<(), ContainError> {
    // SAFETY: `prctl` and `poll` on plain values; if the supervisor is already gone,
    // the death signal was armed too late and we leave at once.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let mut pfd = libc::pollfd { fd: alive_r, events: libc::POLLIN, revents: 0 };
        if libc::poll(&mut pfd, 1, 0) > 0 && pfd.revents & libc::POLLHUP != 0 {
            libc::_exit(3);
        }
    }
    super::steps::mark("init: started");
    // SAFETY: single-threaded; the worker returns to the runner's code.
    let worker = unsafe { libc::fork() };
    if worker == 0 {
        close(&[status_w, alive_r]);
        return Ok(());
    }
    close(&[channel]);
    if worker == -1 {
        // SAFETY: ends the init, and with it the namespace.
        unsafe { libc::_exit(3) }
    }
    loop {
        let mut status = 0;
        // SAFETY: reaping any child of ours (orphans of the namespace come to us).
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == worker {
            let bytes = status.to_ne_bytes();
            // SAFETY: writing 4 bytes from a local to our pipe; then `_exit` ends the
            // init, which makes the kernel kill everything left in the namespace.
            unsafe {
                libc::write(status_w, bytes.as_ptr().cast(), 4);
                libc::_exit(0)
            }
        }
        if pid == -1 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // SAFETY: no child left (cannot happen while the worker lives): end.
            unsafe { libc::_exit(3) }
        }
    }
}

#[cfg(target_os = "linux")]
fn pipe() -> Result<(RawFd, RawFd), ContainError> {
    let mut fds = [0; 2];
    // SAFETY: `pipe2` writes two descriptors into a 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(ContainError::Start { step: "pipe", source: std::io::Error::last_os_error() });
    }
    Ok((fds[0], fds[1]))
}

#[cfg(target_os = "linux")]
fn close(fds: &[RawFd]) {
    for &fd in fds {
        // SAFETY: each is a descriptor this process owns and no longer uses.
        unsafe { libc::close(fd) };
    }
}

/// No PID namespaces off Linux: containment is the process group only.
#[cfg(not(target_os = "linux"))]
pub(crate) fn enter_pid_namespace(_: RawFd, _: Option<&Sandbox>) -> Result<(), ContainError> {
    Err(ContainError::Namespaces { net: "", source: std::io::Error::from(std::io::ErrorKind::Unsupported) })
}
