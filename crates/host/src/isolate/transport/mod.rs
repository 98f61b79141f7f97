//! Transports: what moves the channel's bytes between a host and a plugin's process,
//! under the frames (see [`super::frame`]), which know nothing of how.
//!
//! A [`Transport`] is a byte stream each way with waits the frames' reader can tune:
//! how long to spin before it sleeps, until when, and (if it knows) how long the
//! other side took. Two exist today:
//!
//! - a Unix socket ([`socket`]): `writev` out, `recv` in, `poll` to wait;
//! - the shared-memory rings ([`shm`], Linux): a copy in and a copy out, a pipe as
//!   the bell of a side that sleeps, and the socket kept for its end;
//! - a pair of anonymous pipes ([`pipe`], Windows): written in place, read by a thread
//!   of each side into a buffer that `recv` waits on.
//!
//! A channel's [`Link`] picks one, dispatched statically (a `match`, no virtual
//! call); any other byte stream (a TLS stream to another machine, a Windows pipe)
//! implements the same trait and rides in [`Link::Other`].

use std::io;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

mod link;
#[cfg(test)]
pub(crate) mod memory;
#[cfg(windows)]
pub(crate) mod pipe;
#[cfg(target_os = "linux")]
pub(crate) mod shm;
#[cfg(unix)]
pub(crate) mod socket;

pub(crate) use link::Link;

/// Why no bytes (or no frame) were read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the channel (or died).
    Eof,
    /// The deadline passed.
    TimedOut,
    /// The bytes are not a frame (or the transport found the other side broke it).
    Malformed(String),
    /// The transport failed.
    Io(io::Error),
    /// The other side said the plugin's process ended by itself (a remote server's
    /// last frame, [`Kind::Ended`](super::frame::Kind::Ended)): how.
    Ended {
        /// The signal that ended it.
        signal: Option<i32>,
        /// Its exit code.
        exit_code: Option<i32>,
        /// The server ended it: a call ran past its deadline.
        timed_out: bool,
    },
}

impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> io::Error {
        match e {
            ReadError::Eof => io::Error::new(io::ErrorKind::UnexpectedEof, "the other side ended the channel"),
            ReadError::TimedOut => io::Error::new(io::ErrorKind::TimedOut, "the deadline passed"),
            ReadError::Malformed(why) => io::Error::new(io::ErrorKind::InvalidData, why),
            ReadError::Io(e) => e,
            ReadError::Ended { .. } => io::Error::new(io::ErrorKind::UnexpectedEof, "the plugin's process ended"),
        }
    }
}

/// A byte stream each way between two sides of a channel.
///
/// One thread at a time sends (the holder of the endpoint's writing lock) and one
/// at a time receives (the holder of its reading lock); a send and a receive may run
/// at once, on two threads. Nothing the other side does may make a call wait past
/// its deadline (or timeout).
pub(crate) trait Transport: Send + Sync {
    /// Sends the bytes of `parts`, in order and whole, waiting for room no longer
    /// than `timeout` (`None`: the transport's own write timeout). A send that fails
    /// may have sent part of them: the channel is then broken.
    fn send(&self, parts: &[&[u8]], timeout: Option<Duration>) -> io::Result<()>;

    /// Receives at least one and at most `to.len()` bytes into the start of `to`,
    /// spinning for up to `spin` before it sleeps, until `deadline`; returns how many
    /// (that many bytes of `to` are then initialised). `Eof` once the other side
    /// has ended and every byte it sent was received.
    fn recv(&self, to: &mut [MaybeUninit<u8>], spin: Duration, deadline: Option<Instant>) -> Result<usize, ReadError>;

    /// Whether bytes (or the other side's end) are there to receive now, without
    /// waiting (a look: it may miss an end that the next wait finds).
    fn readable(&self) -> bool;

    /// Blocks until bytes (or the other side's end) are there, or `deadline` passes.
    fn wait_readable(&self, deadline: Option<Instant>) -> Result<(), ReadError>;

    /// How long the last `recv` that waited waited for the writer, if this transport
    /// knows better than the reader's own clock (which counts its waking up too).
    fn waited(&self) -> Option<Duration> {
        None
    }

    /// Whether the other side was awake when this side last sent (as far as this
    /// transport knows): if it slept, its answer comes only after it wakes up.
    fn peer_awake(&self) -> bool {
        true
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn send(&self, parts: &[&[u8]], timeout: Option<Duration>) -> io::Result<()> {
        (**self).send(parts, timeout)
    }

    fn recv(&self, to: &mut [MaybeUninit<u8>], spin: Duration, deadline: Option<Instant>) -> Result<usize, ReadError> {
        (**self).recv(to, spin, deadline)
    }

    fn readable(&self) -> bool {
        (**self).readable()
    }

    fn wait_readable(&self, deadline: Option<Instant>) -> Result<(), ReadError> {
        (**self).wait_readable(deadline)
    }

    fn waited(&self) -> Option<Duration> {
        (**self).waited()
    }

    fn peer_awake(&self) -> bool {
        (**self).peer_awake()
    }
}

/// Whether this process may run on two CPUs or more (its affinity and CPU quota):
/// with one, spinning for the other side never pays (it cannot run meanwhile).
pub(crate) fn several_cpus() -> bool {
    *SEVERAL.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// [`several_cpus`]' answer, looked up once per process.
static SEVERAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Takes `several` as [`several_cpus`]' answer, unless it was looked up already: the
/// runner takes the host's (it shares the host's affinity and CPU quota), which spares
/// `available_parallelism`'s reads of `/proc` and the cgroup files on its start.
pub(crate) fn assume_several_cpus(several: bool) {
    let _ = SEVERAL.set(several);
}

#[cfg(unix)]
/// `poll`'s timeout until `deadline` (-1: none), rounded up to whole milliseconds so a
/// deadline 0.5 ms away does not spin on 0 ms polls; `TimedOut` once it has passed.
pub(crate) fn poll_timeout(deadline: Option<Instant>) -> Result<libc::c_int, ReadError> {
    let Some(d) = deadline else { return Ok(-1) };
    let left = d.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ReadError::TimedOut);
    }
    Ok(left.as_millis().saturating_add(1).min(libc::c_int::MAX as u128) as libc::c_int)
}
