//! What a host and its runner agree on, in one place: the descriptors the child
//! inherits, the environment variables that name them, and the handshake on the
//! socket before any call (the child's hello with the protocol version, the host's
//! load request, the child's ready or failure).
//!
//! ```text
//! child → host  Hello   PROTOCOL (u32) | pid (u32)
//! host → child  Load    LoadRequest (postcard)
//! child → host  Log*    the constructor's log records
//! child → host  Ready   the manifest bytes it read  |  Failed  a LoadError (error.rs's wire form)
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
#[cfg(unix)]
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use super::sandbox::{self, Sandbox};

/// The protocol version, sent in the child's hello. 2: status in the header,
/// concurrent calls. 3: callbacks, objects and log records.
pub(crate) const PROTOCOL: u32 = 3;

/// The environment variable naming the runner's socket descriptor (Windows: the
/// handles of its two pipes, `IN,OUT`).
pub(crate) const FD_VAR: &str = "TOMADA_RUNNER_FD";
/// The environment variable naming the host's pid, for the runner to check.
pub(crate) const PARENT_VAR: &str = "TOMADA_RUNNER_PARENT";
/// The environment variable giving the runner the largest frame either side sends.
pub(crate) const MAX_FRAME_VAR: &str = "TOMADA_RUNNER_MAX_FRAME";
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
/// The last descriptor the child inherits (the others close at exec).
#[cfg(target_os = "linux")]
pub(crate) const LAST_FD: i32 = 10;

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
}

impl LoadRequest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let sandbox = self.sandbox.as_ref().map(Sandbox::to_wire);
        #[cfg(unix)]
        let path = self.path.as_os_str().as_bytes().to_vec();
        #[cfg(windows)]
        let path = self.path.to_string_lossy().into_owned().into_bytes();
        postcard::to_allocvec(&(path, self.fd, sandbox, self.log_level, self.export, &self.config)).expect("encodable")
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<LoadRequest, postcard::Error> {
        type Wire = (Vec<u8>, i32, Option<sandbox::Wire>, u8, u32, Vec<u8>);
        let (path, fd, sandbox, log_level, export, config): Wire = postcard::from_bytes(bytes)?;
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_request_and_a_hello_round_trip() {
        const PLUGIN_FD: i32 = 4;
        let request = LoadRequest {
            path: PathBuf::from("/plugins/greeter.so"),
            fd: PLUGIN_FD,
            sandbox: Some(Sandbox::strict()),
            log_level: 0x35,
            export: 2,
            config: b"cfg".to_vec(),
        };
        let back = LoadRequest::decode(&request.encode()).unwrap();
        assert_eq!((back.path, back.fd, back.log_level, back.export), (request.path, PLUGIN_FD, 0x35, 2));
        assert_eq!(back.config, b"cfg");
        assert!(back.sandbox.is_some());
        assert!(LoadRequest::decode(b"\xff\xff").is_err(), "garbage is refused");
        assert_eq!(hello_version(&hello()), Some(PROTOCOL));
        assert_eq!(hello_version(b"\x03"), None);
    }
}
