//! The channel's transport after the handshake, chosen once per channel.

use std::io;
use std::mem::MaybeUninit;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::{ReadError, Transport};

/// The transport of one channel: an enum, so the local ones are dispatched with a
/// `match` (inlined, as fast as calling them directly), and any other one boxed.
pub(crate) enum Link {
    /// Frames through the socket (where there are no rings).
    #[cfg(unix)]
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    Socket(UnixStream),
    /// Frames through a pair of anonymous pipes (Windows), the handshake too.
    #[cfg(windows)]
    Pipe(super::pipe::Pipe),
    /// Frames through the shared rings; the socket only tells of the other side's end.
    #[cfg(target_os = "linux")]
    Rings(super::shm::Shared),
    /// Frames through another transport (one to another machine, or an in-memory
    /// pair in tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Other(Box<dyn Transport>),
}

impl Link {
    /// The channel's socket, if it has one: the handshake goes through it.
    #[cfg(unix)]
    pub(crate) fn socket(&self) -> Option<&UnixStream> {
        match self {
            Link::Socket(stream) => Some(stream),
            #[cfg(target_os = "linux")]
            Link::Rings(rings) => Some(rings.socket()),
            Link::Other(_) => None,
        }
    }
}

/// Calls `$call` on the transport `$self` holds.
macro_rules! dispatch {
    ($self:ident, $t:ident => $call:expr) => {
        match $self {
            #[cfg(unix)]
            Link::Socket($t) => $call,
            #[cfg(windows)]
            Link::Pipe($t) => $call,
            #[cfg(target_os = "linux")]
            Link::Rings($t) => $call,
            Link::Other($t) => $call,
        }
    };
}

impl Transport for Link {
    #[inline]
    fn send(&self, parts: &[&[u8]], timeout: Option<Duration>) -> io::Result<()> {
        dispatch!(self, t => Transport::send(t, parts, timeout))
    }

    #[inline]
    fn recv(&self, to: &mut [MaybeUninit<u8>], spin: Duration, deadline: Option<Instant>) -> Result<usize, ReadError> {
        dispatch!(self, t => Transport::recv(t, to, spin, deadline))
    }

    #[inline]
    fn readable(&self) -> bool {
        dispatch!(self, t => Transport::readable(t))
    }

    #[inline]
    fn wait_readable(&self, deadline: Option<Instant>) -> Result<(), ReadError> {
        dispatch!(self, t => Transport::wait_readable(t, deadline))
    }

    #[inline]
    fn waited(&self) -> Option<Duration> {
        dispatch!(self, t => Transport::waited(t))
    }

    #[inline]
    fn peer_awake(&self) -> bool {
        dispatch!(self, t => Transport::peer_awake(t))
    }
}
