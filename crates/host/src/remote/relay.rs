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
use std::time::{Duration, Instant};

/// How much of one side's bytes the relay holds before it stops reading that side.
const HELD: usize = 256 * 1024;
/// How much the relay reads at once.
const CHUNK: usize = 64 * 1024;

/// A frame's head: `u32 length of what follows | u8 kind | u8 status | u64 id`.
const HEAD: usize = 14;

/// A request's head, after the frame's: target, parent, method, time left (see
/// `isolate::endpoint::REQUEST_HEAD`).
const REQUEST: usize = crate::isolate::REQUEST_HEAD;

/// Where the frames of one direction start, followed byte by byte (the relay
/// passes bytes on in whatever pieces they come): only each frame's kind and id are
/// read, and a call's time left. Frames are `u32 length of what follows | u8 kind |
/// u8 status | u64 id | ...` (see `isolate::frame`); a call's payload starts with
/// `u64 target | u64 parent | u32 method | u64 time left (µs)`.
struct Frames {
    head: [u8; HEAD + REQUEST],
    have: usize,
    /// How many bytes of the head to gather: [`HEAD`], and for a call the request's too.
    want: usize,
    skip: u64,
}

impl Default for Frames {
    fn default() -> Frames {
        Frames { head: [0; HEAD + REQUEST], have: 0, want: HEAD, skip: 0 }
    }
}

impl Frames {
    /// Follows `bytes`, calling `frame` with the kind and id of each frame whose head
    /// is in them, and a call's time left (`None` for other frames, or a call sent
    /// without a deadline).
    fn feed(&mut self, mut bytes: &[u8], mut frame: impl FnMut(u8, u64, Option<Duration>)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = (self.skip.min(bytes.len() as u64)) as usize;
                self.skip -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (self.want - self.have).min(bytes.len());
            self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < self.want {
                continue;
            }
            let len = u64::from(u32::from_le_bytes(self.head[..4].try_into().expect("4 bytes")));
            // (What follows the header: a malformed length is the endpoints' to refuse.)
            let payload = len.saturating_sub((HEAD - 4) as u64);
            let kind = self.head[4];
            if self.want == HEAD && kind == CALL && payload >= REQUEST as u64 {
                self.want = HEAD + REQUEST;
                continue;
            }
            let id = u64::from_le_bytes(self.head[6..HEAD].try_into().expect("8 bytes"));
            let left = if self.want == HEAD + REQUEST {
                let at = HEAD + crate::isolate::DEADLINE_AT;
                crate::isolate::read_time_left(self.head[at..at + 8].try_into().expect("8 bytes"))
            } else {
                None
            };
            frame(kind, id, left);
            self.skip = payload - (self.want - HEAD) as u64;
            (self.have, self.want) = (0, HEAD);
        }
    }
}

/// The kinds the relay counts (see `isolate::frame::Kind`).
const CALL: u8 = 5;
const REPLY: u8 = 6;
const CANCEL: u8 = 11;

/// When the server's child needs a nudge: as the isolated host nudges, for a call
/// sent while others are in flight (the thread that would read it may be busy
/// serving one), and for a cancel (the thread serving that call is busy with it).
/// A call that comes alone is read by the child's reading thread, without waking
/// a pool thread for nothing.
///
/// It also keeps, for each call in flight, when its caller gives up on it (the time
/// left it carries, from when it was passed on, plus a margin), so the server ends
/// calls that are hopeless by itself (see [`pump`]).
struct Nudges {
    to_child: Frames,
    from_child: Frames,
    /// Calls passed on whose reply has not come back: their id, and when they are
    /// hopeless.
    in_flight: std::collections::HashMap<u64, Instant>,
    deadlines: Deadlines,
}

/// How long the server lets a call run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// For a call that carries no time left: the connection's deadline.
    pub(crate) default: Duration,
    /// How long past its caller's deadline a call is ended: the host's own deadline
    /// usually comes first (it closes the connection, and says `TimedOut` itself).
    pub(crate) margin: Duration,
}

impl Nudges {
    fn new(deadlines: Deadlines) -> Nudges {
        Nudges {
            to_child: Frames::default(),
            from_child: Frames::default(),
            in_flight: std::collections::HashMap::new(),
            deadlines,
        }
    }

    /// Bytes passed on to the child: whether to nudge it.
    fn passed(&mut self, bytes: &[u8]) -> bool {
        let (mut nudge, in_flight, deadlines) = (false, &mut self.in_flight, self.deadlines);
        self.to_child.feed(bytes, |kind, id, left| match kind {
            CALL => {
                nudge |= !in_flight.is_empty();
                let now = Instant::now();
                let hopeless = now.checked_add(left.unwrap_or(deadlines.default) + deadlines.margin);
                // (A time too far for the clock: never.)
                in_flight.insert(id, hopeless.unwrap_or(now + Duration::from_secs(86_400 * 365)));
            }
            CANCEL => nudge = true,
            _ => {}
        });
        nudge
    }

    /// Bytes the child sent.
    fn sent(&mut self, bytes: &[u8]) {
        let in_flight = &mut self.in_flight;
        self.from_child.feed(bytes, |kind, id, _| {
            if kind == REPLY {
                in_flight.remove(&id);
            }
        });
    }

    /// When the first call in flight becomes hopeless.
    fn first_hopeless(&self) -> Option<Instant> {
        self.in_flight.values().min().copied()
    }
}

/// Why a relay ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The local side closed its socket (the host dropped the plugin, or the child died).
    Local,
    /// The peer closed the connection, or it failed.
    Peer(String),
    /// A call ran past its deadline (and the margin) with no reply.
    Deadline,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Local => f.write_str("this side closed its channel"),
            Ended::Peer(why) => write!(f, "the peer's side ended: {why}"),
            Ended::Deadline => f.write_str("a call ran past its deadline: its process was ended"),
        }
    }
}

/// Pumps bytes between `local` and the peer behind `tls` over `tcp` until either ends;
/// calls `arrived` when the child needs a nudge for what was passed on (see [`Nudges`]).
/// A call without a reply once the time it carries (or `deadlines.default`), and
/// `deadlines.margin`, passed since it was passed on ends the relay
/// ([`Ended::Deadline`]): the server enforces each call's deadline itself, so a host
/// that vanished without closing its connection leaves no call stuck in a child.
/// If the local side or a deadline ended it, what `last` gives (the server's `Ended`
/// frame, saying how the child ended; told whether it was a deadline) goes to the peer
/// after all the child sent, before the close.
/// Then shuts both down, so the other side of each sees the end.
pub(crate) fn pump(
    mut tls: rustls::Connection,
    mut tcp: TcpStream,
    mut local: UnixStream,
    deadlines: Deadlines,
    arrived: &dyn Fn(),
    last: &dyn Fn(bool) -> Vec<u8>,
) -> Ended {
    // (What it holds is bounded here: it reads the local side only once all is sent.)
    tls.set_buffer_limit(None);
    let ended = run(&mut tls, &mut tcp, &mut local, deadlines, arrived);
    if matches!(ended, Ended::Local | Ended::Deadline) {
        let _ = tls.writer().write_all(&last(matches!(ended, Ended::Deadline)));
        tls.send_close_notify();
        let _ = tcp.set_nonblocking(false);
        let _ = tcp.set_write_timeout(Some(std::time::Duration::from_secs(2)));
        while tls.wants_write() && tls.write_tls(&mut tcp).is_ok_and(|n| n > 0) {}
    }
    let _ = tcp.shutdown(Shutdown::Both);
    let _ = local.shutdown(Shutdown::Both);
    ended
}

fn run(
    tls: &mut rustls::Connection,
    tcp: &mut TcpStream,
    local: &mut UnixStream,
    deadlines: Deadlines,
    arrived: &dyn Fn(),
) -> Ended {
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
    let mut nudges = Nudges::new(deadlines);
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
        let mut nudge = false;
        while sent < inbound.len() {
            match local.write(&inbound[sent..]) {
                Ok(0) => return Ended::Local,
                Ok(n) => {
                    nudge |= nudges.passed(&inbound[sent..sent + n]);
                    sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Ended::Local,
            }
        }
        if nudge {
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
        // Until the first call in flight is hopeless.
        let timeout = match nudges.first_hopeless() {
            None => -1,
            Some(hopeless) => {
                let left = hopeless.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ended::Deadline;
                }
                // (Rounded up: a wake-up just before it would only poll again.)
                i32::try_from(left.as_millis() + 1).unwrap_or(i32::MAX)
            }
        };
        // SAFETY: `poll` reads and writes the two local `pollfd`s it is given.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
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
                    nudges.sent(&chunk[..n]);
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

#[cfg(test)]
mod tests {
    use super::{Deadlines, Duration, Frames, Instant, Nudges};

    fn frame(kind: u8, id: u64, payload: &[u8]) -> Vec<u8> {
        let mut f = ((10 + payload.len()) as u32).to_le_bytes().to_vec();
        f.push(kind);
        f.push(0);
        f.extend_from_slice(&id.to_le_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A call's frame: target 0, parent 0, method 1, `left` µs, then `args`.
    fn call(id: u64, left: u64, args: &[u8]) -> Vec<u8> {
        let mut payload = [0u8; 20].to_vec();
        payload.extend_from_slice(&left.to_le_bytes());
        payload.extend_from_slice(args);
        frame(5, id, &payload)
    }

    fn nudges() -> Nudges {
        Nudges::new(Deadlines { default: Duration::from_secs(30), margin: Duration::ZERO })
    }

    #[test]
    fn frames_are_found_in_any_pieces() {
        let bytes: Vec<u8> = [
            call(1, 2_000_000, b"abc"),
            frame(9, 0, &[]),
            frame(6, 1 << 40, &[7; 300]),
            call(3, u64::MAX, &[]),
            // A call too short for its head: the endpoint's to refuse, passed on.
            frame(5, 4, b"short"),
            call(5, 7, &[1; 100]),
        ]
        .concat();
        let expected = [
            (5, 1, Some(Duration::from_secs(2))),
            (9, 0, None),
            (6, 1 << 40, None),
            (5, 3, None),
            (5, 4, None),
            (5, 5, Some(Duration::from_micros(7))),
        ];
        for piece in [1, 2, 3, 5, 7, 13, 14, 15, 41, 42, 43, 64, 1000] {
            let (mut frames, mut seen) = (Frames::default(), Vec::new());
            for chunk in bytes.chunks(piece) {
                frames.feed(chunk, |k, id, left| seen.push((k, id, left)));
            }
            assert_eq!(seen, expected, "pieces of {piece}");
        }
    }

    #[test]
    fn only_a_call_beside_another_or_a_cancel_nudges() {
        let mut n = nudges();
        assert!(!n.passed(&call(1, u64::MAX, b"first")), "a call alone is read by the reading thread");
        assert!(n.passed(&call(2, u64::MAX, b"second")), "a call beside one in flight");
        assert!(n.first_hopeless().is_some());
        n.sent(&frame(6, 1, b"one"));
        n.sent(&frame(10, 0, b"a log"));
        n.sent(&frame(6, 2, b"two"));
        assert_eq!(n.first_hopeless(), None, "both answered");
        assert!(!n.passed(&call(3, u64::MAX, b"third")), "both answered");
        assert!(n.passed(&frame(11, 3, &[])), "a cancel");
        assert!(!n.passed(&frame(9, 0, &[])), "a release");
    }

    #[test]
    fn each_call_is_hopeless_when_the_time_it_carries_is_spent() {
        let mut n = nudges();
        let before = Instant::now();
        n.passed(&call(1, u64::MAX, b"none: the connection's 30 s"));
        n.passed(&call(2, 500_000, b"half a second"));
        let first = n.first_hopeless().unwrap();
        assert!(first >= before + Duration::from_millis(500), "{:?}", first - before);
        assert!(first <= Instant::now() + Duration::from_millis(500));
        n.sent(&frame(6, 2, b"answered"));
        assert!(n.first_hopeless().unwrap() >= before + Duration::from_secs(30), "the connection's deadline");
    }
}
