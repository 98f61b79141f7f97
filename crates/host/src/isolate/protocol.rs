//! What a host and its runner agree on, in one place: the descriptors the child
//! inherits, the environment variables that name them, and the handshake on the
//! socket before any call (the child's hello with the protocol version, the host's
//! load request, the child's ready or failure).
//!
//! ```text
//! child → host  Hello   PROTOCOL (u32) | pid (u32)
//! host → child  (a spare runner only: one byte carrying the plugin file, SCM_RIGHTS)
//! host → child  Load    LoadRequest (postcard)
//! child → host  Log*    the constructor's log records
//! child → host  Ready   the manifest bytes it read (status: the lanes it holds)  |  Failed  a LoadError (error.rs's wire form)
//! ```
//!
//! After `Ready` the frames (see [`super::frame`]) go through the channel's transport
//! (see [`super::transport`]).
//!
//! On Windows the child inherits handles, not descriptors at fixed numbers: their
//! values are in the environment ([`FD_VAR`]: the channel's two pipes, [`NUDGE_VAR`]:
//! the nudge semaphore) and in the load request (the plugin file); everything else
//! is the same.

#[cfg(unix)]
use std::ffi::OsString;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
use std::os::fd::FromRawFd;
#[cfg(unix)]
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::frame::{self, Header, Kind, ReadError};
use super::sandbox::{self, Filters, Sandbox};
use super::transport::Transport;
use crate::{LaunchError, LoadError};

/// The protocol version, sent in the child's hello (and, for a remote plugin, in the
/// host's opening request: see `remote::VERSION`). 2: status in the header,
/// concurrent calls. 3: callbacks, objects and log records. 4: each request carries
/// the time left to its caller's deadline. 5: the load request carries the manifest
/// the host inspected. 6: it carries the seccomp programs the host compiled, and
/// whether the host may run on several CPUs. 7: a spare runner ([`SPARE_VAR`]) gets
/// the plugin file over the socket after its hello. 8: lanes ([`LANES_VAR`],
/// [`LANE_FD`]): more pairs of rings, each served by its own thread of the child.
/// 9: rings of 2 MiB (the shared memory's size: a runner of 8 would refuse it only
/// after its hello), sleep numbers (`shm::Naps`), byte answers asked for alone
/// (`tomada::descriptor::flags::BYTES_ALONE`). 10: lanes are started when the host
/// asks (method `START_LANES` of target 0), not before `Ready`, which says how many
/// the child holds. 11: on a lane, the host rings the child through a futex word in
/// the lane's memory, not its socketpair (`shm::Wake::HostLane`).
pub(crate) const PROTOCOL: u32 = 11;

/// The environment variable naming the runner's socket descriptor (Windows: the
/// handles of its two pipes, `IN,OUT`).
pub(crate) const FD_VAR: &str = "TOMADA_RUNNER_FD";
/// The environment variable naming the host's pid, for the runner to check.
pub(crate) const PARENT_VAR: &str = "TOMADA_RUNNER_PARENT";
/// The environment variable giving the runner the largest frame either side sends.
pub(crate) const MAX_FRAME_VAR: &str = "TOMADA_RUNNER_MAX_FRAME";
/// Set when frames stay on the socket (no shared memory): see `Isolation::socket_only`.
pub(crate) const SOCKET_VAR: &str = "TOMADA_RUNNER_SOCKET_ONLY";
/// Set for a spare runner (see `Isolation::spare`), started before any plugin is
/// chosen: after its hello it receives the plugin file over the socket (one byte with
/// the descriptor, `SCM_RIGHTS`), puts it at [`PLUGIN_FD`], then reads the load request.
#[cfg(unix)]
pub(crate) const SPARE_VAR: &str = "TOMADA_RUNNER_SPARE";
/// The environment variable giving the runner the number of lanes (Linux, shared
/// memory only): pairs of rings besides the main one, at [`LANE_FD`] on, each served
/// by a thread of its own (see `runner::Lane`).
#[cfg(target_os = "linux")]
pub(crate) const LANES_VAR: &str = "TOMADA_RUNNER_LANES";
/// The environment variable naming the nudge semaphore's handle (Windows).
#[cfg(windows)]
pub(crate) const NUDGE_VAR: &str = "TOMADA_RUNNER_NUDGE";
/// The descriptor number the socket gets in the child.
#[cfg(unix)]
pub(crate) const CHILD_FD: i32 = 3;
/// The descriptor number the plugin file gets in the child: it loads exactly the file
/// the host inspected, never a path.
#[cfg(unix)]
pub(crate) const PLUGIN_FD: i32 = 4;
/// The descriptor number of the nudge pipe in the child: the host posts to
/// it when it sends a call while others are in flight, so a second thread of the
/// plugin's process reads and serves it (see `runner::Server`).
#[cfg(unix)]
pub(crate) const NUDGE_FD: i32 = 5;
/// The descriptor numbers of the shared memory the frames go through (Linux), then of
/// its four bells (see `shm::Bells`, in field order).
#[cfg(target_os = "linux")]
pub(crate) const SHM_FD: i32 = 6;
#[cfg(target_os = "linux")]
pub(crate) const BELL_FDS: [i32; 4] = [7, 8, 9, 10];
/// The last descriptor the child inherits without lanes (the others close at exec).
#[cfg(target_os = "linux")]
pub(crate) const LAST_FD: i32 = 10;
/// The first descriptor of the lanes (Linux): lane `i`'s shared memory at
/// `LANE_FD + LANE_FDS * i`, then its bell (the child's end of a socketpair, see
/// `shm::Wake::ChildLane`).
#[cfg(target_os = "linux")]
pub(crate) const LANE_FD: i32 = LAST_FD + 1;
/// The descriptors of one lane.
#[cfg(target_os = "linux")]
pub(crate) const LANE_FDS: i32 = 2;
/// The most lanes a host passes (and a runner takes).
#[cfg(target_os = "linux")]
pub(crate) const MAX_LANES: usize = 8;

/// The payload of this process's hello: the protocol version, then its pid.
pub(crate) fn hello() -> [u8; 8] {
    let mut hello = [0u8; 8];
    hello[..4].copy_from_slice(&PROTOCOL.to_le_bytes());
    hello[4..].copy_from_slice(&std::process::id().to_le_bytes());
    hello
}

/// The protocol version a hello's payload names, if it names one.
pub(crate) fn hello_version(payload: &[u8]) -> Option<u32> {
    payload.get(..4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

/// What the host asks the child to load.
pub(crate) struct LoadRequest {
    /// The plugin's path, for messages only.
    pub(crate) path: PathBuf,
    /// The inherited descriptor of the plugin file, which is what is loaded (Windows:
    /// its inherited handle's value, which fits 32 bits).
    pub(crate) fd: i32,
    pub(crate) sandbox: Option<Sandbox>,
    /// The most verbose log level the host takes from the plugin (0: none).
    pub(crate) log_level: u8,
    /// Which export of the library to open ([`tomada::Manifest::index`]).
    pub(crate) export: u32,
    /// What the plugin's constructor receives (`tomada::context()`).
    pub(crate) config: Vec<u8>,
    /// The chosen export's manifest bytes, as the host read them in the file it
    /// passes. When that file is a sealed copy (nothing can change its bytes since
    /// the host inspected them) the child takes the manifest from here instead of
    /// inspecting the file again; the loaded library's own manifest is compared with
    /// these bytes all the same.
    pub(crate) manifest: Vec<u8>,
    /// The seccomp programs the child installs before loading (for `sandbox`, or the
    /// ones every isolated process gets), compiled by the host: the child refuses a
    /// set that is not what its sandbox installs (see `sandbox::Filters`).
    pub(crate) filters: std::sync::Arc<Filters>,
    /// Whether the host may run on two CPUs or more (its affinity and CPU quota,
    /// which the child shares): the child takes it instead of looking again (see
    /// `transport::several_cpus`).
    pub(crate) several_cpus: bool,
}

impl LoadRequest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let sandbox = self.sandbox.as_ref().map(Sandbox::to_wire);
        #[cfg(unix)]
        let path = self.path.as_os_str().as_bytes().to_vec();
        #[cfg(windows)]
        let path = self.path.to_string_lossy().into_owned().into_bytes();
        let rest = (&self.config, &self.manifest, &self.filters.arch, self.several_cpus);
        let mut bytes =
            postcard::to_allocvec(&(path, self.fd, sandbox, self.log_level, self.export, rest)).expect("encodable");
        // The filters' programs after it, each its length (u32, little-endian) then its
        // bytes: copied whole, where postcard would go byte by byte (~10 kB for the
        // allow-list, ~10 µs each way).
        for program in &self.filters.programs {
            bytes.extend_from_slice(&(program.len() as u32).to_le_bytes());
            bytes.extend_from_slice(program);
        }
        bytes
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<LoadRequest, postcard::Error> {
        type Rest = (Vec<u8>, Vec<u8>, String, bool);
        type Wire = (Vec<u8>, i32, Option<sandbox::Wire>, u8, u32, Rest);
        let ((path, fd, sandbox, log_level, export, rest), mut tail): (Wire, _) = postcard::take_from_bytes(bytes)?;
        let (config, manifest, arch, several_cpus) = rest;
        let mut programs = Vec::new();
        while !tail.is_empty() {
            let (len, after) = tail.split_first_chunk::<4>().ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
            let len = u32::from_le_bytes(*len) as usize;
            let program = after.get(..len).ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
            programs.push(program.to_vec());
            tail = &after[len..];
        }
        #[cfg(unix)]
        let path = PathBuf::from(OsString::from_vec(path));
        #[cfg(windows)]
        let path = PathBuf::from(String::from_utf8_lossy(&path).into_owned());
        Ok(LoadRequest {
            path,
            fd,
            sandbox: sandbox.map(Sandbox::from_wire),
            // Both levels, `log` and `tracing` (see `logs::split_levels`).
            log_level,
            export,
            config,
            manifest,
            filters: std::sync::Arc::new(Filters { arch, programs }),
            several_cpus,
        })
    }
}

/// Why the handshake did not end ready, on the host's side.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The process could not take part (or the plugin's process refused to load it).
    Launch(LaunchError),
    /// The plugin's process refused it with a `LoadError` of the plugin (not loadable,
    /// a panicking constructor...), returned as it is.
    Plugin(LoadError),
}

/// Reads the child's hello (from `runner`) over `channel` before `deadline`, and
/// checks its protocol version.
pub(crate) fn read_hello(
    channel: &(impl Transport + ?Sized),
    runner: &Path,
    deadline: Option<Instant>,
    max: usize,
) -> Result<(), LaunchError> {
    let hello = frame::read(channel, deadline, max).map_err(|e| match e {
        ReadError::Eof => LaunchError::NoHello,
        e => LaunchError::BadHello { source: e.into() },
    })?;
    super::steps::mark("host: hello read");
    let version = hello_version(&hello.payload);
    if hello.kind != Kind::Hello || version != Some(PROTOCOL) {
        return Err(LaunchError::Protocol { runner: runner.to_path_buf(), found: version });
    }
    Ok(())
}

/// The host's side of the handshake over `channel`: reads the hello (from `runner`;
/// unless `greeted`: read already, a spare runner's), sends `request`, then reads
/// until the child is ready, passing the log records the plugin wrote meanwhile to
/// `log`; all before `deadline` (the startup time, `startup`, from now). Returns the
/// manifest bytes the child read.
pub(crate) fn host_handshake(
    channel: &(impl Transport + ?Sized),
    runner: &Path,
    greeted: bool,
    request: &LoadRequest,
    startup: Duration,
    max: usize,
    mut log: impl FnMut(&[u8]),
) -> Result<(Vec<u8>, u8), Refused> {
    let max = handshake_max(max);
    let deadline = Some(Instant::now() + startup);
    if !greeted {
        read_hello(channel, runner, deadline, max).map_err(Refused::Launch)?;
    }
    frame::write(channel, Header { kind: Kind::Load, status: 0, id: 0 }, &[&request.encode()])
        .map_err(|source| Refused::Launch(LaunchError::SendLoad { source }))?;
    super::steps::mark("host: load request sent");
    let ready = loop {
        let frame = frame::read(channel, deadline, max).map_err(|e| match e {
            ReadError::Eof => LaunchError::DiedLoading,
            ReadError::TimedOut => LaunchError::LoadTimedOut { within: startup },
            e => LaunchError::NoAnswer { source: e.into() },
        });
        let frame = frame.map_err(Refused::Launch)?;
        // What the plugin logged while it was made comes first, as in-process.
        match frame.kind {
            Kind::Log => log(&frame.payload),
            _ => break frame,
        }
    };
    match ready.kind {
        Kind::Ready => Ok((ready.payload, ready.status)),
        Kind::Failed => Err(match LoadError::from_wire(&ready.payload) {
            Some(LoadError::Isolation { source, .. }) => Refused::Launch(source),
            Some(e) => Refused::Plugin(e),
            None => Refused::Launch(LaunchError::MalformedReport),
        }),
        other => Err(Refused::Launch(LaunchError::UnexpectedFrame { kind: other as u8 })),
    }
}

/// Sends `file` over `socket` to a spare runner that said hello: one byte carrying
/// the descriptor (`SCM_RIGHTS`). Hand-written (a `sendmsg` with one control
/// message): the crates that wrap it (`nix`, `rustix`) are not dependencies here.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn send_plugin_file(
    socket: &std::os::unix::net::UnixStream,
    file: std::os::fd::BorrowedFd<'_>,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // (Room for one descriptor, aligned for `cmsghdr`.)
    let mut space = [0u64; 8];
    // SAFETY: `CMSG_SPACE` is arithmetic.
    let control_len = unsafe { libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) } as usize;
    debug_assert!(control_len <= size_of_val(&space));
    // SAFETY: a zeroed `msghdr` is valid (no name, no control yet).
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = space.as_mut_ptr().cast();
    message.msg_controllen = control_len as _;
    // SAFETY: the control buffer is `control_len` bytes, room for one header and one
    // descriptor (`CMSG_SPACE` above), aligned; `CMSG_FIRSTHDR` points into it.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as _;
        libc::CMSG_DATA(header).cast::<libc::c_int>().write_unaligned(file.as_raw_fd());
    }
    loop {
        // SAFETY: `message` points to the local byte and control buffer above, alive
        // for the call; `MSG_NOSIGNAL`: a peer gone is `EPIPE`, not a signal.
        match unsafe { libc::sendmsg(socket.as_raw_fd(), &message, libc::MSG_NOSIGNAL) } {
            1 => return Ok(()),
            -1 if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            -1 => return Err(std::io::Error::last_os_error()),
            _ => return Err(std::io::Error::other("the plugin file was not sent")),
        }
    }
}

/// A spare runner's side of [`send_plugin_file`]: receives the plugin file over
/// `socket` (the one byte the host sends after the hello, nothing read before it) and
/// puts it at [`PLUGIN_FD`] in place of the `/dev/null` placeholder the host passed
/// there (refused if something else is there). `Ok(false)` if the host closed the socket instead (it
/// needed no spare any more).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn receive_plugin_file(socket: std::os::fd::RawFd) -> Result<bool, LaunchError> {
    let missing = LaunchError::MissingDescriptor { fd: PLUGIN_FD };
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let mut space = [0u64; 8];
    // SAFETY: a zeroed `msghdr` is valid.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = space.as_mut_ptr().cast();
    message.msg_controllen = size_of_val(&space) as _;
    let received = loop {
        // SAFETY: `message` points to the local byte and control buffer, alive for the
        // call; descriptors received are close-on-exec (`MSG_CMSG_CLOEXEC`).
        let n = unsafe { libc::recvmsg(socket, &mut message, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break n;
        }
    };
    if received == 0 {
        return Ok(false);
    }
    // Every descriptor that came is taken (and closed unless it is the one).
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `message`'s control buffer (`msg_controllen` says how
    // much); the `CMSG_*` walk stays within it.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header).cast::<libc::c_int>();
                let count = ((*header).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / size_of::<libc::c_int>();
                for i in 0..count {
                    fds.push(std::os::fd::OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
    }
    let truncated = message.msg_flags & libc::MSG_CTRUNC != 0;
    if received != 1 || truncated || fds.len() != 1 {
        return Err(missing);
    }
    let file = fds.pop().expect("one descriptor");
    use std::os::fd::AsRawFd;
    // The host passed a spare `/dev/null` at the plugin file's number (see
    // `ends::make`): that placeholder, and only it, is replaced. Anything else there
    // (the number closed and taken since by something of the runner's) is not closed
    // under its owner: refused.
    // SAFETY: `fstat` on a number (an error if none is open there) into a zeroed local.
    let placeholder = unsafe {
        let mut held: libc::stat = std::mem::zeroed();
        let mut null: libc::stat = std::mem::zeroed();
        libc::fstat(PLUGIN_FD, &mut held) == 0
            && libc::stat(c"/dev/null".as_ptr(), &mut null) == 0
            && held.st_mode & libc::S_IFMT == libc::S_IFCHR
            && (held.st_rdev, held.st_dev, held.st_ino) == (null.st_rdev, null.st_dev, null.st_ino)
    };
    if !placeholder {
        return Err(missing);
    }
    // SAFETY: `dup2` onto the plugin file's number, atomically replacing the runner's
    // own `/dev/null` placeholder there (checked just above; the runner's threads
    // start after this, none opens or closes it meanwhile); the received one closes
    // when dropped. The new one is not close-on-exec, as an inherited one.
    if unsafe { libc::dup2(file.as_raw_fd(), PLUGIN_FD) } != PLUGIN_FD {
        return Err(missing);
    }
    Ok(true)
}

/// The child's hello to the host over `channel`: its protocol version and pid.
pub(crate) fn greet(channel: &(impl Transport + ?Sized)) -> std::io::Result<()> {
    frame::write(channel, Header { kind: Kind::Hello, status: 0, id: 0 }, &[&hello()])
}

/// The smallest frame limit of the handshake: its frames (the load request, with the
/// manifest and the host's configuration; the ready answer, with the manifest) are
/// not calls, and a small [`Isolation::max_frame`](super::Isolation::max_frame), set
/// for calls, must not make a plugin impossible to start.
pub(crate) const HANDSHAKE_MIN_FRAME: usize = 16 << 20;

/// The frame limit of the handshake for a channel whose calls' limit is `max`.
pub(crate) fn handshake_max(max: usize) -> usize {
    max.max(HANDSHAKE_MIN_FRAME)
}

/// The host's load request, read by the child after its hello.
pub(crate) fn read_load_request(channel: &(impl Transport + ?Sized), max: usize) -> Result<LoadRequest, LaunchError> {
    match frame::read(channel, None, handshake_max(max)) {
        Ok(f) if f.kind == Kind::Load => LoadRequest::decode(&f.payload).map_err(|e| {
            LaunchError::MalformedLoadRequest { source: std::io::Error::new(std::io::ErrorKind::InvalidData, e) }
        }),
        Ok(f) => Err(LaunchError::NotALoadRequest { kind: f.kind as u8 }),
        Err(e) => Err(LaunchError::NoLoadRequest { source: e.into() }),
    }
}

/// The child's last word of the handshake once the plugin is loaded: the manifest
/// bytes it read (the host compares them with its own).
/// With it, in the header's status, how many of the lanes the host passed it holds
/// (the first `lanes`), to map and serve when the host asks (`runner::Server::start_lanes`).
pub(crate) fn ready(channel: &(impl Transport + ?Sized), manifest: &[u8], lanes: u8) -> std::io::Result<()> {
    frame::write(channel, Header { kind: Kind::Ready, status: lanes, id: 0 }, &[manifest])
}

/// The child's last word of the handshake when it cannot load the plugin: why (the
/// host reports it as this very `LoadError`).
pub(crate) fn refuse(channel: &(impl Transport + ?Sized), why: &LoadError) {
    // (If the host is gone, nobody is left to tell.)
    let _ = frame::write(channel, Header { kind: Kind::Failed, status: 0, id: 0 }, &[&why.to_wire()]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plugin file's descriptor in a request (the Unix one, on every platform).
    const PLUGIN_FD: i32 = 4;

    #[test]
    fn a_load_request_and_a_hello_round_trip() {
        let request = LoadRequest {
            path: PathBuf::from("/plugins/greeter.so"),
            fd: PLUGIN_FD,
            sandbox: Some(Sandbox::strict()),
            log_level: 0x35,
            export: 2,
            config: b"cfg".to_vec(),
            manifest: b"manifest".to_vec(),
            filters: std::sync::Arc::new(Filters { arch: "x86_64".into(), programs: vec![vec![1; 8], vec![2; 16]] }),
            several_cpus: true,
        };
        let back = LoadRequest::decode(&request.encode()).unwrap();
        assert_eq!(back.filters, request.filters);
        assert!(back.several_cpus);
        assert_eq!((back.path, back.fd, back.log_level, back.export), (request.path.clone(), PLUGIN_FD, 0x35, 2));
        assert_eq!((back.config.as_slice(), back.manifest.as_slice()), (&b"cfg"[..], &b"manifest"[..]));
        assert!(back.sandbox.is_some());
        assert!(LoadRequest::decode(b"\xff\xff").is_err(), "garbage is refused");
        // A program cut short is refused, not read past.
        let bytes = request.encode();
        assert!(LoadRequest::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(LoadRequest::decode(&bytes[..bytes.len() - 17]).is_err());
        // No programs at all decodes as none (the runner refuses that count).
        let none = LoadRequest { filters: Default::default(), ..request };
        assert!(LoadRequest::decode(&none.encode()).unwrap().filters.programs.is_empty());
        assert_eq!(hello_version(&hello()), Some(PROTOCOL));
        assert_eq!(hello_version(b"\x03"), None);
    }

    fn request() -> LoadRequest {
        LoadRequest {
            path: PathBuf::from("/p.so"),
            fd: PLUGIN_FD,
            sandbox: None,
            log_level: 0,
            export: 0,
            config: Vec::new(),
            manifest: Vec::new(),
            filters: Default::default(),
            several_cpus: false,
        }
    }

    const STARTUP: Duration = Duration::from_secs(60); // a hang guard only

    /// The handshake over an in-memory transport: the child's `child` plays its part
    /// (or not) while the host runs its own.
    /// What the host's side of a handshake returns.
    type Handshake = Result<(Vec<u8>, u8), Refused>;

    fn handshake(child: impl FnOnce(Memory) + Send) -> (Handshake, Vec<Vec<u8>>) {
        let (host, theirs) = Memory::pair();
        let mut logs = Vec::new();
        let result = std::thread::scope(|s| {
            s.spawn(move || child(theirs));
            host_handshake(&host, Path::new("/runner"), false, &request(), STARTUP, 1 << 20, |r| logs.push(r.to_vec()))
        });
        (result, logs)
    }

    use super::super::transport::memory::Memory;

    #[test]
    fn the_handshake_hello_load_logs_ready() {
        let (result, logs) = handshake(|child| {
            greet(&child).unwrap();
            let request = read_load_request(&child, 1 << 20).unwrap();
            assert_eq!(request.path, PathBuf::from("/p.so"));
            frame::write(&child, Header { kind: Kind::Log, status: 0, id: 0 }, &[b"early"]).unwrap();
            ready(&child, b"manifest", 3).unwrap();
        });
        assert_eq!(result.unwrap(), (b"manifest".to_vec(), 3), "the manifest, and the lanes served");
        assert_eq!(logs, [b"early".to_vec()]);
    }

    #[test]
    fn a_handshake_that_goes_wrong_says_how() {
        let (result, _) = handshake(drop);
        assert!(matches!(result, Err(Refused::Launch(LaunchError::NoHello))), "{result:?}");
        let (result, _) = handshake(|child| {
            // (Its bytes stay readable after it is gone.)
            frame::write(&child, Header { kind: Kind::Hello, status: 0, id: 0 }, &[&2u32.to_le_bytes()]).unwrap();
        });
        assert!(matches!(result, Err(Refused::Launch(LaunchError::Protocol { found: Some(2), .. }))), "{result:?}");
        let (result, _) = handshake(|child| {
            greet(&child).unwrap();
            read_load_request(&child, 1 << 20).unwrap();
        });
        assert!(matches!(result, Err(Refused::Launch(LaunchError::DiedLoading))), "{result:?}");
        let (result, _) = handshake(|child| {
            greet(&child).unwrap();
            read_load_request(&child, 1 << 20).unwrap();
            refuse(&child, &LoadError::NotFound { path: PathBuf::from("/p.so") });
        });
        assert!(matches!(result, Err(Refused::Plugin(LoadError::NotFound { .. }))), "{result:?}");
        let (result, _) = handshake(|child| {
            greet(&child).unwrap();
            read_load_request(&child, 1 << 20).unwrap();
            let why = LaunchError::NotThePluginFile { fd: 4 };
            refuse(&child, &LoadError::Isolation { path: PathBuf::new(), source: why });
        });
        assert!(matches!(result, Err(Refused::Launch(LaunchError::NotThePluginFile { fd: 4 }))), "{result:?}");
    }
}
