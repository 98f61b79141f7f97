//! Isolation on Windows: what differs from Unix, and only that.
//!
//! - The channel is two anonymous pipes ([`Pipe`]), the handshake included; the
//!   child inherits its ends as handles, named in [`FD_VAR`] (`IN,OUT`).
//! - The nudge is a semaphore ([`NUDGE_VAR`]): the host posts with
//!   `ReleaseSemaphore`, a pool thread of the child takes a post with
//!   `WaitForSingleObject`. (A semaphore, not a pipe: a post never blocks.)
//! - The plugin file is the host's open handle, inherited; its value is in the load
//!   request, and the runner checks it is a disk file.
//! - The process runs in a job object, made per process: *kill on close* (the
//!   host's handle is the only one: when the host exits, however it exits, the
//!   plugin's process and anything it started die with it), killed as one
//!   (`TerminateJobObject`), and the memory ([`Isolation::memory_limit`]) and CPU
//!   time ([`Isolation::cpu_seconds`]) limits set on it. The process is put in its
//!   job before the load request is sent: no plugin code runs outside it.
//! - No sandbox: [`Isolation::sandbox`] is refused with
//!   [`LaunchError::SandboxUnsupported`], never run without one.
//!
//! The frames, the endpoint, calls, callbacks, objects, logs, deadlines, crashes and
//! restarts are the same code as on Unix (`mod.rs`, `endpoint.rs`, `runner.rs`).
//!
//! Handles are made inheritable only for the moment of one spawn, under a lock, so
//! two plugins starting at once do not inherit each other's (std's `Command` starts
//! every process with the inheritable handles of the host: a process the host
//! starts elsewhere at that very moment could still inherit them).

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::os::windows::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock};

use windows_sys::Win32::Foundation::{HANDLE, HANDLE_FLAG_INHERIT, SetHandleInformation, WAIT_OBJECT_0};
use windows_sys::Win32::Storage::FileSystem::{FILE_TYPE_DISK, GetFileType};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, JOB_OBJECT_LIMIT_PROCESS_MEMORY,
    JOB_OBJECT_LIMIT_PROCESS_TIME, JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{CreateSemaphoreW, INFINITE, ReleaseSemaphore, WaitForSingleObject};

use super::endpoint::{Endpoint, Objects};
use super::frame::Waiter;
use super::options::{Isolation, Runner};
use super::protocol::{FD_VAR, MAX_FRAME_VAR, NUDGE_VAR, PARENT_VAR};
use super::transport::Link;
use super::transport::pipe::{HOST_BUFFER, Pipe};
use super::{Connection, Isolated, SPIN, launch, spawner};
use crate::{LaunchError, LoadError, Step};

/// The exit code of a process the host killed (as `128 + SIGKILL` on Unix shells).
const KILLED: u32 = 137;
/// `CREATE_NO_WINDOW`: a console program started without a console window of its
/// own (its output goes to the host's pipes).
const CREATE_NO_WINDOW: u32 = 0x0800_0000;

/// Held while handles are inheritable, for one spawn.
static SPAWNING: Mutex<()> = Mutex::new(());

/// A handle's value as the child sees it (handle values fit in 32 bits, for 32-bit
/// processes' sake).
fn value(handle: &impl AsRawHandle) -> i32 {
    handle.as_raw_handle() as isize as i32
}

/// A handle from its value (see [`value`]).
fn from_value(value: i32) -> RawHandle {
    value as isize as RawHandle
}

/// Makes `handle` inheritable (or not).
fn inheritable(handle: &(impl AsRawHandle + ?Sized), yes: bool) -> std::io::Result<()> {
    // SAFETY: a handle this process owns; only its inherit flag changes.
    let ok = unsafe {
        SetHandleInformation(
            handle.as_raw_handle() as HANDLE,
            HANDLE_FLAG_INHERIT,
            if yes { HANDLE_FLAG_INHERIT } else { 0 },
        )
    };
    if ok == 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// Posts one nudge.
pub(super) fn post(semaphore: &OwnedHandle) {
    // SAFETY: our semaphore's handle; at its maximum count the post fails, and one
    // more is not needed (thousands are pending).
    unsafe { ReleaseSemaphore(semaphore.as_raw_handle() as HANDLE, 1, std::ptr::null_mut()) };
}

/// Kills every process of `job`.
pub(super) fn kill_job(job: &OwnedHandle) {
    // SAFETY: our job object's handle.
    unsafe { TerminateJobObject(job.as_raw_handle() as HANDLE, KILLED) };
}

/// A job object that kills its processes when its last handle (the host's) closes,
/// with the limits of `options`.
fn job(options: &Isolation) -> Result<OwnedHandle, LaunchError> {
    let fail = || LaunchError::Setup { step: Step::Job, source: std::io::Error::last_os_error() };
    // SAFETY: no attributes, no name: a new anonymous job (null on failure).
    let raw = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
    if raw.is_null() {
        return Err(fail());
    }
    // SAFETY: a fresh handle returned by `CreateJobObjectW`, owned by nobody else.
    let job = unsafe { OwnedHandle::from_raw_handle(raw as RawHandle) };
    let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if let Some(bytes) = options.memory_limit {
        limits.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_PROCESS_MEMORY;
        limits.ProcessMemoryLimit = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    if let Some(seconds) = options.cpu_seconds {
        limits.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_PROCESS_TIME;
        // In 100 ns units, of user time.
        limits.BasicLimitInformation.PerProcessUserTimeLimit =
            i64::try_from(seconds).unwrap_or(i64::MAX / 10_000_000) * 10_000_000;
    }
    // SAFETY: our job's handle, and a structure of the size given, read during the call.
    let set = unsafe {
        SetInformationJobObject(
            job.as_raw_handle() as HANDLE,
            JobObjectExtendedLimitInformation,
            (&raw const limits).cast(),
            size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    };
    if set == 0 {
        return Err(fail());
    }
    Ok(job)
}

/// A semaphore for the nudges (see [`post`]).
fn semaphore() -> Result<OwnedHandle, LaunchError> {
    // SAFETY: no attributes, no name; counts from 0 to `i32::MAX`.
    let raw = unsafe { CreateSemaphoreW(std::ptr::null(), 0, i32::MAX, std::ptr::null()) };
    if raw.is_null() {
        return Err(LaunchError::Setup { step: Step::Semaphore, source: std::io::Error::last_os_error() });
    }
    // SAFETY: a fresh handle returned by `CreateSemaphoreW`, owned by nobody else.
    Ok(unsafe { OwnedHandle::from_raw_handle(raw as RawHandle) })
}

impl Isolated {
    /// Starts the child and loads the plugin in it (see the module's comment).
    pub(super) fn spawn(&self) -> Result<Connection, LoadError> {
        let fail = |source: LaunchError| LoadError::Isolation { path: self.path.clone(), source };
        if std::env::var_os(FD_VAR).is_some() {
            // A host that forgot `serve_if_runner` would otherwise start copies of
            // itself, each starting another.
            return Err(fail(LaunchError::NotServing));
        }
        if self.options.sandbox.is_some() {
            return Err(fail(LaunchError::SandboxUnsupported { platform: std::env::consts::OS }));
        }
        let exe = match &self.options.runner {
            Runner::CurrentExe => {
                std::env::current_exe().map_err(|source| fail(LaunchError::NoExecutable { source }))?
            }
            Runner::Path(p) => p.clone(),
        };
        let setup = |step: Step| move |source: std::io::Error| fail(LaunchError::Setup { step, source });
        let (child_in, host_out) = std::io::pipe().map_err(setup(Step::ChannelPipes))?;
        let (host_in, child_out) = std::io::pipe().map_err(setup(Step::ChannelPipes))?;
        let link = Link::Pipe(Pipe::new(host_in, host_out, Some(HOST_BUFFER)).map_err(setup(Step::ChannelPipes))?);
        let Some(file) = &self.file else {
            return Err(fail(LaunchError::Setup {
                step: Step::Duplicate,
                source: std::io::Error::other("a remote plugin has no plugin file here"),
            }));
        };
        let plugin: OwnedHandle = file.try_clone().map_err(setup(Step::Duplicate))?.into();
        let nudge = semaphore().map_err(fail)?;
        let child_nudge = nudge.try_clone().map_err(setup(Step::Duplicate))?;
        let (child_in, child_out): (OwnedHandle, OwnedHandle) = (child_in.into(), child_out.into());
        let plugin_fd = value(&plugin);
        let process = launch::start(launch::Launch {
            exe: &exe,
            options: &self.options,
            name: &self.name,
            env: vec![
                (FD_VAR, format!("{},{}", value(&child_in), value(&child_out))),
                (NUDGE_VAR, value(&child_nudge).to_string()),
                (PARENT_VAR, std::process::id().to_string()),
                (MAX_FRAME_VAR, self.options.max_frame.to_string()),
            ],
            pass: vec![child_in, child_out, plugin, child_nudge],
        })
        .map_err(fail)?;
        let connection = Connection {
            process: Some(process),
            remote: None,
            endpoint: Endpoint::new(link, true, Waiter::new(SPIN), self.options.max_frame),
            lanes: std::sync::OnceLock::new(),
            watching: std::sync::atomic::AtomicBool::new(false),
            crowd: std::sync::Arc::default(),
            watcher: Mutex::new(None),
            nudge,
            objects: Objects::new(),
            callbacks: Mutex::new(None),
            async_reader: std::sync::atomic::AtomicBool::new(false),
            name: self.name.clone(),
        };
        // The handshake: hello (version), load, ready (the manifest it read).
        match self.handshake(&connection.endpoint.link, &exe, false, plugin_fd) {
            Ok(_) => Ok(connection),
            Err(refused) => Err(self.refused(&connection, refused)),
        }
    }
}

/// Starts `command` with the handles `pass` inherited (made inheritable for this
/// spawn only, and closed here once it started), and puts the process in a job
/// object of its own with `options`' limits before anything else happens: the
/// runner waits for the load request, which the host sends only after this.
pub(super) fn spawn_in_job(
    mut command: Command,
    exe: &Path,
    options: &Isolation,
    pass: Vec<OwnedHandle>,
) -> Result<(Child, OwnedHandle), LaunchError> {
    let job = job(options)?;
    command.creation_flags(CREATE_NO_WINDOW);
    let mut child = {
        let _spawning = SPAWNING.lock().unwrap_or_else(|p| p.into_inner());
        for handle in &pass {
            inheritable(handle, true).map_err(|source| LaunchError::Setup { step: Step::Duplicate, source })?;
        }
        let started = spawner::spawn(command);
        // The child has its copies; the host keeps none of the child's ends (or it
        // would never see the end of a child that dies).
        drop(pass);
        started.map_err(|source| LaunchError::Start { runner: exe.to_path_buf(), source })?
    };
    // SAFETY: our job's handle and the child's process handle (not waited for yet,
    // so still the child's).
    if unsafe { AssignProcessToJobObject(job.as_raw_handle() as HANDLE, child.as_raw_handle() as HANDLE) } == 0 {
        let source = std::io::Error::last_os_error();
        let _ = child.kill();
        let _ = child.wait();
        return Err(LaunchError::Setup { step: Step::AssignJob, source });
    }
    Ok((child, job))
}

// The runner's side.

/// The nudge semaphore of this runner process (its handle's value).
static NUDGE: OnceLock<usize> = OnceLock::new();

/// The runner's channel, from the handles [`FD_VAR`] and [`NUDGE_VAR`] name; `None`
/// if they do not name pipes (this process was not started by a tomada host).
pub(super) fn runner_channel(fds: &std::ffi::OsStr) -> Option<Pipe> {
    let (read, write) = fds.to_str()?.split_once(',')?;
    let (read, write) = (read.parse::<i32>().ok()?, write.parse::<i32>().ok()?);
    let nudge = std::env::var(NUDGE_VAR).ok()?.parse::<i32>().ok()?;
    let is_pipe = |value: i32| {
        // SAFETY: `GetFileType` on any handle value: an invalid one is `FILE_TYPE_UNKNOWN`.
        unsafe { GetFileType(from_value(value) as HANDLE) == windows_sys::Win32::Storage::FileSystem::FILE_TYPE_PIPE }
    };
    if !is_pipe(read) || !is_pipe(write) {
        return None;
    }
    // SAFETY: the host passed these handles (checked above to be pipes), for this
    // process alone; nothing else here owns them.
    let (read, write) =
        unsafe { (OwnedHandle::from_raw_handle(from_value(read)), OwnedHandle::from_raw_handle(from_value(write))) };
    // Anything the plugin starts must not inherit the channel (nor the nudge).
    let _ = inheritable(&read, false);
    let _ = inheritable(&write, false);
    // SAFETY: a handle value the host passed: only its inherit flag changes (an invalid
    // one fails, and the nudges then fail too: calls wait for the main thread).
    unsafe { SetHandleInformation(from_value(nudge) as HANDLE, HANDLE_FLAG_INHERIT, 0) };
    let _ = NUDGE.set(from_value(nudge) as usize);
    Pipe::new(read.into(), write.into(), None).ok()
}

/// Posts to this runner's nudge semaphore (as the host does), so a pool thread wakes.
pub(super) fn post_self() {
    if let Some(&nudge) = NUDGE.get() {
        // SAFETY: the semaphore the host passed (a failure posts nothing).
        unsafe { ReleaseSemaphore(nudge as HANDLE, 1, std::ptr::null_mut()) };
    }
}

/// Takes one post of this runner's nudge semaphore, waiting for it; `false` if there
/// is none to wait on.
pub(super) fn take() -> bool {
    let Some(&nudge) = NUDGE.get() else { return false };
    // SAFETY: the semaphore the host passed; an invalid handle fails at once.
    unsafe { WaitForSingleObject(nudge as HANDLE, INFINITE) == WAIT_OBJECT_0 }
}

/// The plugin file the host passed (handle `value`), if it is a disk file.
pub(super) fn plugin_file(value: i32) -> Option<std::fs::File> {
    // SAFETY: `GetFileType` on any handle value: an invalid one is `FILE_TYPE_UNKNOWN`.
    if unsafe { GetFileType(from_value(value) as HANDLE) } != FILE_TYPE_DISK {
        return None;
    }
    // SAFETY: the host passed this handle (a disk file, checked above) for this
    // process alone; nothing else here owns it.
    let file = unsafe { OwnedHandle::from_raw_handle(from_value(value)) };
    let _ = inheritable(&file, false);
    Some(file.into())
}
