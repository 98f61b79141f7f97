//! The channel's bytes over a Unix stream socket: `writev` out (no copy of the
//! parts), a non-blocking `recv` in (tried again for up to the spin asked), `poll` to
//! wait. The handshake always goes this way; after it, the frames too where there
//! are no shared rings (see [`super::shm`]).

use std::io::{self, IoSlice, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::{ReadError, Transport, poll_timeout};

impl Transport for UnixStream {
    /// (A socket's writes time out at its own write timeout, set once for the channel:
    /// setting it per write would be a system call each.)
    fn send(&self, parts: &[&[u8]], _timeout: Option<Duration>) -> io::Result<()> {
        send_all(self, parts)
    }

    fn recv(&self, to: &mut [MaybeUninit<u8>], spin: Duration, deadline: Option<Instant>) -> Result<usize, ReadError> {
        recv_into(self.as_raw_fd(), to, spin, deadline)
    }

    fn readable(&self) -> bool {
        let mut pfd = libc::pollfd { fd: self.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid `pollfd`; a zero timeout only looks.
        unsafe { libc::poll(&mut pfd, 1, 0) > 0 }
    }

    fn wait_readable(&self, deadline: Option<Instant>) -> Result<(), ReadError> {
        wait_readable(self.as_raw_fd(), deadline)
    }
}

/// Writes `parts` to the socket with `writev`.
fn send_all(stream: &UnixStream, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len());
    slices.extend(parts.iter().filter(|p| !p.is_empty()).map(|p| IoSlice::new(p)));
    let mut rest = &mut slices[..];
    let mut stream = stream;
    while !rest.is_empty() {
        match stream.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Receives at least one and at most `to.len()` bytes into `to`: tries a non-blocking
/// `recv`, again and again for up to `spin`, then waits in `poll`.
fn recv_into(
    fd: RawFd,
    to: &mut [MaybeUninit<u8>],
    spin: Duration,
    deadline: Option<Instant>,
) -> Result<usize, ReadError> {
    let spin_until = (!spin.is_zero()).then(|| Instant::now() + spin);
    loop {
        // SAFETY: `to` is `to.len()` writable bytes; `fd` is a socket owned by the
        // caller's `UnixStream` for the duration of the call.
        let n = unsafe { libc::recv(fd, to.as_mut_ptr().cast(), to.len(), libc::MSG_DONTWAIT) };
        if n > 0 {
            return Ok(n as usize);
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
        if spin_until.is_some_and(|until| Instant::now() < until) {
            std::hint::spin_loop();
            continue;
        }
        wait_readable(fd, deadline)?;
    }
}

/// Blocks until `fd` is readable (or closed), or `deadline` passes.
fn wait_readable(fd: RawFd, deadline: Option<Instant>) -> Result<(), ReadError> {
    loop {
        let timeout_ms = poll_timeout(deadline)?;
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
