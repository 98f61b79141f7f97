//! The host's transport to a remote plugin: the isolated frames written straight
//! into TLS over TCP (an [`isolate`](crate::isolate) [`Transport`]), no relay thread
//! on this side.
//!
//! `rustls` is driven by hand: one lock over the connection state, taken briefly by
//! the sending thread (encrypt, write) and by the receiving one (read what arrived,
//! decrypt); the receiver waits for the socket (`poll`) without it, so a send and a
//! receive run at once as the trait allows.

use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::isolate::transport::{ReadError, Transport, poll_timeout};

/// How much one `recv` decrypts into its own buffer before copying it out.
const CHUNK: usize = 64 * 1024;

/// TLS over TCP, as a [`Transport`].
pub(crate) struct Tls {
    conn: Mutex<rustls::ClientConnection>,
    tcp: TcpStream,
}

impl Tls {
    /// Takes over an established connection (handshake and opening exchange done),
    /// in blocking mode: sends wait at most `write_timeout` for room.
    pub(crate) fn new(conn: rustls::ClientConnection, tcp: TcpStream, write_timeout: Duration) -> io::Result<Tls> {
        tcp.set_nonblocking(false)?;
        tcp.set_read_timeout(None)?;
        tcp.set_write_timeout(Some(write_timeout))?;
        Ok(Tls { conn: Mutex::new(conn), tcp })
    }

    fn lock(&self) -> MutexGuard<'_, rustls::ClientConnection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes what `rustls` holds for the peer.
    fn flush(&self, conn: &mut rustls::ClientConnection) -> io::Result<()> {
        while conn.wants_write() {
            match conn.write_tls(&mut &self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether decrypted bytes wait to be read.
    fn buffered(conn: &mut rustls::ClientConnection) -> bool {
        conn.process_new_packets().is_ok_and(|state| state.plaintext_bytes_to_read() > 0)
    }

    /// Waits until the socket has bytes (or its end), until `deadline`.
    fn wait_socket(&self, deadline: Option<Instant>) -> Result<(), ReadError> {
        loop {
            let mut pfd = libc::pollfd { fd: self.tcp.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid `pollfd`.
            match unsafe { libc::poll(&mut pfd, 1, poll_timeout(deadline)?) } {
                0 => {}
                n if n > 0 => return Ok(()),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(ReadError::Io(e));
                    }
                }
            }
        }
    }
}

impl Transport for Tls {
    fn send(&self, parts: &[&[u8]], _timeout: Option<Duration>) -> io::Result<()> {
        // All the parts in one vectored write: a small frame (its header, a request's
        // head, the arguments) is one TLS record, encrypted once and decrypted once on
        // the server, not one record per part. (No copy: `rustls` takes the slices.)
        let mut stack = [IoSlice::new(&[]); 4];
        let mut heap;
        let mut slices: &mut [IoSlice<'_>] = if parts.len() <= stack.len() {
            for (slice, part) in stack.iter_mut().zip(parts) {
                *slice = IoSlice::new(part);
            }
            &mut stack[..parts.len()]
        } else {
            heap = parts.iter().map(|p| IoSlice::new(p)).collect::<Vec<_>>();
            &mut heap
        };
        let mut left: usize = parts.iter().map(|p| p.len()).sum();
        let mut conn = self.lock();
        // `rustls` takes what fits its buffer (64 KiB), then that is sent, and so on.
        while left > 0 {
            let n = conn.writer().write_vectored(slices)?;
            if n == 0 && !conn.wants_write() {
                return Err(io::ErrorKind::WriteZero.into());
            }
            left -= n;
            IoSlice::advance_slices(&mut slices, n);
            if left > 0 {
                self.flush(&mut conn)?;
            }
        }
        self.flush(&mut conn)
    }

    fn recv(&self, to: &mut [MaybeUninit<u8>], _spin: Duration, deadline: Option<Instant>) -> Result<usize, ReadError> {
        let mut chunk = [0u8; CHUNK];
        let want = to.len().min(CHUNK);
        let mut ended = false;
        loop {
            {
                let mut conn = self.lock();
                match conn.reader().read(&mut chunk[..want]) {
                    Ok(0) => return Err(ReadError::Eof),
                    Ok(n) => {
                        for (slot, byte) in to.iter_mut().zip(&chunk[..n]) {
                            slot.write(*byte);
                        }
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && ended => return Err(ReadError::Eof),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(ReadError::Eof),
                    Err(e) => return Err(ReadError::Io(e)),
                }
            }
            self.wait_socket(deadline)?;
            let mut conn = self.lock();
            match conn.read_tls(&mut &self.tcp) {
                // The end: what was decrypted before it is still read.
                Ok(0) => ended = true,
                Ok(_) => {
                    if let Err(e) = conn.process_new_packets() {
                        let _ = self.flush(&mut conn);
                        return Err(ReadError::Malformed(format!("TLS: {e}")));
                    }
                    // (A key update, say, asks for an answer.)
                    self.flush(&mut conn).map_err(ReadError::Io)?;
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    fn readable(&self) -> bool {
        if Tls::buffered(&mut self.lock()) {
            return true;
        }
        let mut pfd = libc::pollfd { fd: self.tcp.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid `pollfd`; a zero timeout only looks.
        unsafe { libc::poll(&mut pfd, 1, 0) > 0 }
    }

    fn wait_readable(&self, deadline: Option<Instant>) -> Result<(), ReadError> {
        if Tls::buffered(&mut self.lock()) {
            return Ok(());
        }
        self.wait_socket(deadline)
    }
}
