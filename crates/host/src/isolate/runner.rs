//! The child side: a process that loads one plugin and serves calls to it.
//!
//! It knows no contract: it inspects and opens the file the host names (the host
//! has checked it against its contract already), then hands each call's method
//! number and encoded arguments to the plugin's own dispatch function.

use std::ffi::OsString;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use tomada::ffi::Status;

use super::frame::{self, Kind, ReadError};
use super::{FD_VAR, MAX_FRAME_VAR, PARENT_VAR, Sandbox};

/// How long the child spins for the next call after answering one.
const SPIN: Duration = Duration::from_micros(200);

/// What the host asks the child to load.
pub(crate) struct LoadRequest {
    /// The plugin's path, for messages only.
    pub(crate) path: PathBuf,
    /// The inherited descriptor of the plugin file, which is what is loaded.
    pub(crate) fd: RawFd,
    pub(crate) sandbox: Option<Sandbox>,
}

impl LoadRequest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let sandbox = self.sandbox.as_ref().map(Sandbox::to_wire);
        postcard::to_allocvec(&(self.path.clone().into_os_string().into_vec(), self.fd, sandbox)).expect("encodable")
    }

    fn decode(bytes: &[u8]) -> Result<LoadRequest, String> {
        type Wire = (Vec<u8>, RawFd, Option<super::sandbox::Wire>);
        let (path, fd, sandbox): Wire =
            postcard::from_bytes(bytes).map_err(|e| format!("malformed load request: {e}"))?;
        Ok(LoadRequest { path: PathBuf::from(OsString::from_vec(path)), fd, sandbox: sandbox.map(Sandbox::from_wire) })
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
    let mut stream = unsafe { UnixStream::from_raw_fd(fd) };
    // Anything the plugin starts must not inherit the channel.
    // SAFETY: `fcntl(F_SETFD)` on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // The largest frame either side sends (the host reads replies with the same).
    let max = std::env::var(MAX_FRAME_VAR).ok().and_then(|m| m.parse().ok()).unwrap_or(frame::DEFAULT_MAX_FRAME);
    // Nor see these variables (it would take itself for a runner).
    // SAFETY: no other thread runs yet: the plugin is not loaded.
    unsafe {
        std::env::remove_var(FD_VAR);
        std::env::remove_var(PARENT_VAR);
        std::env::remove_var(MAX_FRAME_VAR);
    }
    if let Err(e) =
        frame::write(&mut stream, Kind::Hello, 0, &[&frame::PROTOCOL.to_le_bytes(), &std::process::id().to_le_bytes()])
    {
        eprintln!("tomada runner: cannot greet the host: {e}");
        return 2;
    }
    let request = match frame::read(&stream, Duration::ZERO, None, max) {
        Ok(f) if f.kind == Kind::Load => LoadRequest::decode(&f.payload),
        Ok(f) => Err(format!("expected a load request, got {:?}", f.kind)),
        Err(e) => Err(format!("no load request: {e:?}")),
    };
    // A load failure reaches the host as the same `LoadError` variant; anything else
    // as `LoadError::Isolation` with its reason.
    let fail_with = |stream: &mut UnixStream, why: crate::LoadError| {
        let _ = frame::write(stream, Kind::Failed, 0, &[&why.to_wire()]);
        1
    };
    let fail = |stream: &mut UnixStream, reason: String| {
        fail_with(stream, crate::LoadError::Isolation { path: PathBuf::new(), reason })
    };
    let request = match request {
        Ok(r) => r,
        Err(why) => return fail(&mut stream, why),
    };
    // Containment first (a PID namespace: this process becomes supervisor, init and
    // worker, and only the worker returns), then the sandbox: both before the plugin's
    // file is opened, so its initialisers run inside.
    if let Err(why) = super::contain::enter_pid_namespace(fd)
        && request.sandbox.as_ref().is_some_and(|s| !s.accept_weaker)
    {
        return fail(&mut stream, format!("{why}; a sandboxed plugin needs it (or `Sandbox::accept_weaker_kernel()`)"));
    }
    let sandboxed = match &request.sandbox {
        Some(sandbox) => super::sandbox::apply(sandbox, &request.path),
        None => super::sandbox::contain_always(),
    };
    if let Err(why) = sandboxed {
        return fail(&mut stream, why);
    }
    // The plugin file: the host's open descriptor, checked like any file.
    let file = if request.fd == super::PLUGIN_FD {
        // SAFETY: `fstat` writes into a local buffer; an invalid descriptor is an error.
        let mut stat = unsafe { std::mem::zeroed::<libc::stat>() };
        // SAFETY: as above.
        let open = unsafe { libc::fstat(request.fd, &mut stat) } == 0;
        if !open || stat.st_mode & libc::S_IFMT != libc::S_IFREG {
            return fail(&mut stream, format!("descriptor {} is not the plugin file", request.fd));
        }
        // SAFETY: the host passed this descriptor (checked above to be an open regular
        // file) for this process alone; nothing else here owns it.
        let file = unsafe { std::fs::File::from_raw_fd(request.fd) };
        // SAFETY: `fcntl(F_SETFD)` on a descriptor we own.
        unsafe { libc::fcntl(request.fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        crate::file::PluginFile::from_file(request.path.clone(), request.path.clone(), file)
    } else {
        return fail(&mut stream, format!("the plugin file must be descriptor {}", super::PLUGIN_FD));
    };
    let file = match file {
        Ok(f) => f,
        Err(e) => return fail_with(&mut stream, e),
    };
    let inspection = match crate::inspect::inspect_file(&file) {
        Ok(i) => i,
        Err(e) => return fail_with(&mut stream, e),
    };
    let local = match crate::open(file, &inspection) {
        Ok(l) => l,
        Err(e) => return fail_with(&mut stream, e),
    };
    if frame::write(&mut stream, Kind::Ready, 0, &[&inspection.manifest_bytes]).is_err() {
        return 1;
    }
    loop {
        let call = match frame::read(&stream, SPIN, None, max) {
            Ok(f) if f.kind == Kind::Call && f.payload.len() >= 4 => f,
            // The host closed the channel: it is done with us, or gone.
            Err(ReadError::Eof) => return 0,
            // Anything else is a broken host or a corrupted channel: stop.
            Ok(_) | Err(_) => return 4,
        };
        let method = u32::from_le_bytes(call.payload[..4].try_into().expect("4 bytes"));
        // SAFETY: `dispatch` is the plugin's (descriptor checked by `open`), `this` its
        // live instance.
        let (status, body) =
            unsafe { crate::plugin_fn::dispatch(local.dispatch, local.this, method, &call.payload[4..]) };
        let too_large;
        let (status, body) = if body.as_slice().len() + 1 + 9 > max {
            // Refused here, so the host never reads (nor allocates) it.
            too_large =
                format!("the plugin's answer takes {} bytes, over the limit of {max} bytes", body.as_slice().len());
            (Status::MALFORMED, too_large.as_bytes())
        } else {
            (status, body.as_slice())
        };
        if frame::write(&mut stream, Kind::Reply, call.id, &[&[status.0], body]).is_err() {
            return 0;
        }
    }
}
