//! The wire between a host and a plugin's process: length-prefixed frames over an
//! inherited Unix socket, each with a kind and a request id.
//!
//! ```text
//! u32 length of what follows | u8 kind | u64 id | payload
//! ```
//!
//! Reading spins briefly before it blocks: a plugin call answered within a few
//! microseconds is picked up without waking a sleeping thread (the cost that
//! dominates a blocking round trip between two processes), and a slower one costs at
//! most the spin in CPU time.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The protocol version, sent in the child's hello.
pub(crate) const PROTOCOL: u32 = 1;

/// No frame is ever larger than this, whatever the configured limit: a call's
/// arguments or result over 1 GiB is refused before it is sent.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// The default limit of one frame (see `Isolation::max_frame`): 64 MiB.
pub(crate) const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// Child → host, first: protocol version and pid.
    Hello = 1,
    /// Host → child: what to load and how to sandbox it.
    Load = 2,
    /// Child → host: loaded; the manifest bytes it read.
    Ready = 3,
    /// Child → host: could not load; why.
    Failed = 4,
    /// Host → child: method number and encoded arguments.
    Call = 5,
    /// Child → host: status and encoded result (or message).
    Reply = 6,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Load,
            3 => Kind::Ready,
            4 => Kind::Failed,
            5 => Kind::Call,
            6 => Kind::Reply,
            _ => return None,
        })
    }
}

/// One message.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    pub(crate) id: u64,
    pub(crate) payload: Vec<u8>,
}

/// Why no frame was read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the channel (or died).
    Eof,
    /// The deadline passed.
    TimedOut,
    /// The bytes are not a frame.
    Malformed(String),
    /// The socket failed.
    Io(io::Error),
}

/// Writes one frame with a single `write` of the assembled bytes.
pub(crate) fn write(stream: &mut UnixStream, kind: Kind, id: u64, parts: &[&[u8]]) -> io::Result<()> {
    let len: usize = 1 + 8 + parts.iter().map(|p| p.len()).sum::<usize>();
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("a frame of {len} bytes is over the limit")));
    }
    let mut buf = Vec::with_capacity(4 + len);
    buf.extend_from_slice(&u32::try_from(len).map_err(|_| io::Error::other("frame too large"))?.to_le_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(&id.to_le_bytes());
    for p in parts {
        buf.extend_from_slice(p);
    }
    stream.write_all(&buf)
}

/// Reads one frame of at most `max` bytes: spins for up to `spin` on a
/// non-blocking receive, then blocks until `deadline` (forever if `None`).
pub(crate) fn read(
    stream: &UnixStream,
    spin: Duration,
    deadline: Option<Instant>,
    max: usize,
) -> Result<Frame, ReadError> {
    let fd = stream.as_raw_fd();
    let mut header = [0u8; 4 + 1 + 8];
    fill(fd, &mut header, spin, deadline)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if len < 9 {
        return Err(ReadError::Malformed(format!("a frame declares {len} bytes")));
    }
    if len > max.min(MAX_FRAME) {
        return Err(ReadError::Malformed(format!(
            "a frame declares {len} bytes, over the limit of {} bytes",
            max.min(MAX_FRAME)
        )));
    }
    let kind =
        Kind::from_u8(header[4]).ok_or_else(|| ReadError::Malformed(format!("unknown frame kind {}", header[4])))?;
    let id = u64::from_le_bytes(header[5..].try_into().expect("8 bytes"));
    // Grow the buffer as bytes arrive (doubling from 64 KiB), so a header alone
    // cannot make us allocate what its length claims.
    let want = len - 9;
    let mut payload = Vec::with_capacity(want.min(64 * 1024));
    while payload.len() < want {
        let start = payload.len();
        let step = (want - start).min(start.max(64 * 1024));
        payload.resize(start + step, 0);
        fill(fd, &mut payload[start..], spin, deadline)?;
    }
    Ok(Frame { kind, id, payload })
}

/// Fills `buf` from `fd`.
fn fill(fd: RawFd, buf: &mut [u8], spin: Duration, deadline: Option<Instant>) -> Result<(), ReadError> {
    let mut filled = 0;
    let spin_until = Instant::now() + spin;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is valid for writes of `rest.len()` bytes; `fd` is a socket
        // owned by the caller's `UnixStream` for the duration of the call.
        let n = unsafe { libc::recv(fd, rest.as_mut_ptr().cast(), rest.len(), libc::MSG_DONTWAIT) };
        if n > 0 {
            filled += n as usize;
            continue;
        }
        if n == 0 {
            return Err(ReadError::Eof);
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => {}
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => return Err(ReadError::Eof),
            _ => return Err(ReadError::Io(err)),
        }
        if Instant::now() < spin_until {
            std::hint::spin_loop();
            continue;
        }
        wait_readable(fd, deadline)?;
    }
    Ok(())
}

/// Blocks until `fd` is readable (or closed), or `deadline` passes.
fn wait_readable(fd: RawFd, deadline: Option<Instant>) -> Result<(), ReadError> {
    loop {
        let timeout_ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ReadError::TimedOut);
                }
                // Round up, so a deadline 0.5 ms away does not spin on 0 ms polls.
                left.as_millis().saturating_add(1).min(libc::c_int::MAX as u128) as libc::c_int
            }
        };
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid `pollfd`, for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r > 0 {
            return Ok(());
        }
        if r == 0 {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(ReadError::TimedOut);
            }
            continue;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(ReadError::Io(err));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let (mut a, b) = UnixStream::pair().unwrap();
        write(&mut a, Kind::Call, 7, &[&3u32.to_le_bytes(), b"args"]).unwrap();
        let f = read(&b, Duration::from_micros(10), None, MAX_FRAME).unwrap();
        assert_eq!((f.kind, f.id), (Kind::Call, 7));
        assert_eq!(f.payload, b"\x03\x00\x00\x00args");
    }

    #[test]
    fn eof_timeout_and_garbage() {
        let (a, b) = UnixStream::pair().unwrap();
        let r = read(&b, Duration::ZERO, Some(Instant::now() + Duration::from_millis(20)), MAX_FRAME);
        assert!(matches!(r, Err(ReadError::TimedOut)), "{r:?}");
        drop(a);
        assert!(matches!(read(&b, Duration::ZERO, None, MAX_FRAME), Err(ReadError::Eof)));

        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(matches!(read(&b, Duration::ZERO, None, MAX_FRAME), Err(ReadError::Malformed(_))));
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&[9, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(matches!(read(&b, Duration::ZERO, None, MAX_FRAME), Err(ReadError::Malformed(_))));
    }

    #[test]
    fn a_frame_over_the_limit_is_malformed_before_its_payload_is_read() {
        let (mut a, b) = UnixStream::pair().unwrap();
        write(&mut a, Kind::Reply, 1, &[&[0u8; 1000]]).unwrap();
        let r = read(&b, Duration::ZERO, None, 100);
        assert!(matches!(&r, Err(ReadError::Malformed(m)) if m.contains("1009 bytes, over the limit of 100")), "{r:?}");
    }
}
