//! The server's relay: carries the isolated channel's bytes between its child's Unix
//! socket and the client's TLS connection, in one thread per connection.
//!
//! The server's child runs the very runner of an isolated plugin and reads its frames
//! from a Unix socket (`Isolation::socket_only`: no shared memory); this relay pumps
//! that socket's bytes through TLS, unchanged: frames are never decoded here (the
//! endpoints do that, with their limits), and nothing arrives before the handshake
//! authenticated the peer. One thread waits (`poll`) on both descriptors and drives
//! `rustls` by hand, as blocking `StreamOwned` cannot read and write at once from two
//! threads. (The child keeps the network out of its sandbox, so TLS stays here.)

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// How much of one side's bytes the relay holds before it stops reading that side.
const HELD: usize = 256 * 1024;
/// How much the relay reads at once.
const CHUNK: usize = 64 * 1024;

/// Why a relay ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The local side closed its socket (the host dropped the plugin, or the child died).
    Local,
    /// The peer closed the connection, or it failed.
    Peer(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Local => f.write_str("this side closed its channel"),
            Ended::Peer(why) => write!(f, "the peer's side ended: {why}"),
        }
    }
}

/// Pumps bytes between `local` and the peer behind `tls` over `tcp` until either ends;
/// calls `arrived` after passing the peer's bytes on (the server nudges its child).
/// Then shuts both down, so the other side of each sees the end.
pub(crate) fn pump(
    mut tls: rustls::Connection,
    mut tcp: TcpStream,
    mut local: UnixStream,
    arrived: &dyn Fn(),
) -> Ended {
    // (What it holds is bounded here: it reads the local side only once all is sent.)
    tls.set_buffer_limit(None);
    let ended = run(&mut tls, &mut tcp, &mut local, arrived);
    if matches!(ended, Ended::Local) {
        tls.send_close_notify();
        let _ = tcp.set_nonblocking(false);
        let _ = tcp.set_write_timeout(Some(std::time::Duration::from_millis(200)));
        while tls.wants_write() && tls.write_tls(&mut tcp).is_ok_and(|n| n > 0) {}
    }
    let _ = tcp.shutdown(Shutdown::Both);
    let _ = local.shutdown(Shutdown::Both);
    ended
}

fn run(tls: &mut rustls::Connection, tcp: &mut TcpStream, local: &mut UnixStream, arrived: &dyn Fn()) -> Ended {
    let peer = |e: &dyn std::fmt::Display| Ended::Peer(e.to_string());
    if let Err(e) = tcp.set_nonblocking(true).and_then(|()| local.set_nonblocking(true)) {
        return peer(&e);
    }
    let _ = tcp.set_nodelay(true);
    // The peer's plaintext not yet written to `local`, from `sent` on.
    let mut inbound: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut sent = 0;
    let mut chunk = vec![0u8; CHUNK];
    let mut peer_done = false;
    let mut tcp_eof = false;
    loop {
        // What `rustls` already decrypted (also what came with the opening exchange).
        while !peer_done && inbound.len() - sent < HELD {
            match tls.reader().read(&mut chunk) {
                // (A clean close, or the connection's end without one.)
                Ok(0) => peer_done = true,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => peer_done = true,
                Ok(n) => inbound.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    peer_done = tcp_eof;
                    break;
                }
                Err(e) => return peer(&e),
            }
        }
        // Pass the peer's bytes on.
        let mut passed = false;
        while sent < inbound.len() {
            match local.write(&inbound[sent..]) {
                Ok(0) => return Ended::Local,
                Ok(n) => {
                    sent += n;
                    passed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Ended::Local,
            }
        }
        if passed {
            arrived();
        }
        if sent == inbound.len() {
            inbound.clear();
            sent = 0;
            if peer_done {
                return Ended::Peer("the peer closed the connection".to_owned());
            }
        }
        // Send what `rustls` holds for the peer.
        while tls.wants_write() {
            match tls.write_tls(tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return peer(&e),
            }
        }
        let want_local_in = !tls.wants_write();
        let want_tcp_in = !tcp_eof && !peer_done && inbound.len() - sent < HELD;
        let mut fds = [
            libc::pollfd {
                fd: local.as_raw_fd(),
                events: if want_local_in { libc::POLLIN } else { 0 }
                    | if sent < inbound.len() { libc::POLLOUT } else { 0 },
                revents: 0,
            },
            libc::pollfd {
                fd: tcp.as_raw_fd(),
                events: if want_tcp_in { libc::POLLIN } else { 0 } | if tls.wants_write() { libc::POLLOUT } else { 0 },
                revents: 0,
            },
        ];
        // SAFETY: `poll` reads and writes the two local `pollfd`s it is given.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return peer(&e);
        }
        let [l, t] = fds;
        if t.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && want_tcp_in {
            match tls.read_tls(tcp) {
                Ok(0) => tcp_eof = true,
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        // (Tell the peer why, if it still listens.)
                        let _ = tls.write_tls(tcp);
                        return peer(&e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return peer(&e),
            }
        }
        if l.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && want_local_in {
            match local.read(&mut chunk) {
                Ok(0) => return Ended::Local,
                Ok(n) => {
                    if let Err(e) = tls.writer().write_all(&chunk[..n]) {
                        return peer(&e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Ended::Local,
            }
        }
    }
}
