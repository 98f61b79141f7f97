//! The framing of the channel between a host and a plugin's process: length-prefixed
//! frames, each with a kind, a status and a request id, over any
//! [`Transport`](super::transport::Transport) (which moves the bytes, and knows
//! nothing of frames).
//!
//! ```text
//! u32 length of what follows | u8 kind | u8 status | u64 id | payload
//! ```
//!
//! Request ids multiplex the channel: several calls may be in flight at once, and
//! their replies come back in any order. Frame kinds are an open set (a new pair, e.g.
//! callbacks from the plugin to the host, is a new `Kind` and a protocol version), so
//! neither side assumes one request, then its reply.
//!
//! After the handshake the frames go through the channel's
//! [`Link`](super::transport::Link): on Linux the shared rings, elsewhere the
//! socket. Reading spins only when it pays
//! ([`Waiter`]): with two CPUs or more, for a peer that is awake and answered quickly
//! last time, for a short while, then the reader sleeps. With one CPU it never spins:
//! the peer could not run meanwhile (and yielding to it would hand the CPU to any
//! other process as well, for a whole time slice). Payloads are read straight into
//! the buffer they end up in (no zero-fill, no shifting).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) use super::transport::ReadError;
use super::transport::{Transport, several_cpus};

pub(crate) use super::options::{DEFAULT_MAX_FRAME, MAX_FRAME};

/// The bytes of a header after the length: kind, status, id.
pub(crate) const HEADER_REST: usize = 1 + 1 + 8;

/// The most a reader allocates ahead of the bytes that arrived: a header alone
/// cannot make it allocate what its length claims past this.
const AHEAD: usize = 1 << 20;

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
    /// Host → child: the object called (0: the plugin), the request it is made
    /// within (0: none), method number, the time left to its caller's deadline
    /// (protocol 4; see `endpoint::REQUEST_HEAD`) and encoded arguments.
    Call = 5,
    /// Child → host: the status (in the header) and the encoded result (or message).
    Reply = 6,
    /// Child → host, during a call: a call to an object of the host, laid out as a
    /// `Call`.
    Callback = 7,
    /// Host → child: the answer to a `Callback`, laid out as a `Reply`.
    CallbackReply = 8,
    /// Either way: the sender dropped its handle to the receiver's object (its id).
    Release = 9,
    /// Child → host: a log record of the plugin.
    Log = 10,
    /// Host → child: the host dropped its async call (the id), which is stopped.
    Cancel = 11,
    /// Server → host, remote only, last: the plugin's process on the server ended by
    /// itself (it crashed), or the server ended it past a deadline; see `ended` for
    /// the payload.
    Ended = 12,
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
            7 => Kind::Callback,
            8 => Kind::CallbackReply,
            9 => Kind::Release,
            10 => Kind::Log,
            12 => Kind::Ended,
            11 => Kind::Cancel,
            _ => return None,
        })
    }
}

/// A frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    /// A reply's status (see `tomada::ffi::Status`); 0 in other frames.
    pub(crate) status: u8,
    pub(crate) id: u64,
}

/// One message.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: Kind,
    /// Its header's status (a reply's; `Ready`'s: the lanes the child serves).
    pub(crate) status: u8,
    pub(crate) payload: Vec<u8>,
}

/// How long to spin before blocking, learnt from the last wait: spin (for up to
/// `limit`) only if the last frame came within `limit`. A peer that answers back to
/// back is never put to sleep; one that comes after idle gaps or long calls is spun
/// for only one wait in [`Waiter::PROBE`] (a wait that slept also counts the time to
/// wake up, which alone can pass `limit` on a busy machine: without the probes, a
/// side put to sleep once would sleep for good), so waiting costs little when idle.
#[derive(Debug)]
pub(crate) struct Waiter {
    limit: Duration,
    spin: AtomicBool,
    /// Waits since the last spin.
    waits: std::sync::atomic::AtomicU32,
}

impl Waiter {
    /// One wait in this many spins even when the last did not pay.
    const PROBE: u32 = 16;

    /// A waiter that spins for up to `limit`, starting without spinning.
    pub(crate) const fn new(limit: Duration) -> Waiter {
        Waiter { limit, spin: AtomicBool::new(false), waits: std::sync::atomic::AtomicU32::new(0) }
    }

    /// A waiter that never spins.
    #[cfg(test)]
    pub(crate) const fn blocking() -> Waiter {
        Waiter::new(Duration::ZERO)
    }

    /// How long to spin now; `peer_awake`: whether the other side was awake when this
    /// side last wrote (if it slept, its answer comes only after it wakes up).
    fn spin_for(&self, peer_awake: bool) -> Duration {
        if !several_cpus() {
            return Duration::ZERO;
        }
        if self.spin.load(Ordering::Relaxed) && peer_awake {
            return self.limit;
        }
        let waits = self.waits.fetch_add(1, Ordering::Relaxed) + 1;
        if waits >= Self::PROBE {
            self.waits.store(0, Ordering::Relaxed);
            return self.limit;
        }
        Duration::ZERO
    }

    /// Records how long the last wait for a frame took.
    fn learn(&self, waited: Duration) {
        let spin = waited < self.limit;
        if self.spin.load(Ordering::Relaxed) != spin {
            self.spin.store(spin, Ordering::Relaxed);
        }
    }
}

/// A frame's first bytes: its length, then the header.
fn head(header: Header, parts: &[&[u8]]) -> io::Result<[u8; 4 + HEADER_REST]> {
    let len: usize = HEADER_REST + parts.iter().map(|p| p.len()).sum::<usize>();
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("a frame of {len} bytes is over the limit")));
    }
    let mut head = [0u8; 4 + HEADER_REST];
    head[..4].copy_from_slice(&(len as u32).to_le_bytes());
    head[4] = header.kind as u8;
    head[5] = header.status;
    head[6..].copy_from_slice(&header.id.to_le_bytes());
    Ok(head)
}

/// The bytes of a [`Kind::Ended`] frame: how the plugin's process ended (its signal,
/// its exit code; `i32`s, each after a byte saying whether there is one), and whether
/// the server ended it because a call ran past its deadline (a byte). (Written by the
/// server's relay, Linux only.)
#[cfg(all(target_os = "linux", feature = "remote"))]
pub(crate) fn ended(signal: Option<i32>, exit_code: Option<i32>, timed_out: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(11);
    for v in [signal, exit_code] {
        payload.push(u8::from(v.is_some()));
        payload.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
    }
    payload.push(u8::from(timed_out));
    let header = Header { kind: Kind::Ended, status: 0, id: 0 };
    let mut bytes = head(header, &[&payload]).expect("a small frame").to_vec();
    bytes.extend_from_slice(&payload);
    bytes
}

/// Reads the payload of a [`Kind::Ended`] frame (see [`ended`]).
pub(crate) fn read_ended(payload: &[u8]) -> Result<(Option<i32>, Option<i32>, bool), ReadError> {
    let field = |at: usize| -> Result<Option<i32>, ReadError> {
        let bytes = payload.get(at..at + 5).ok_or_else(|| ReadError::Malformed("a short `Ended` frame".to_owned()))?;
        let value = i32::from_le_bytes(bytes[1..].try_into().expect("4 bytes"));
        Ok((bytes[0] != 0).then_some(value))
    };
    let timed_out = payload.get(10).ok_or_else(|| ReadError::Malformed("a short `Ended` frame".to_owned()))?;
    Ok((field(0)?, field(5)?, *timed_out != 0))
}

/// Writes one frame: header and parts in one send, no copy of the parts.
pub(crate) fn write(to: &(impl Transport + ?Sized), header: Header, parts: &[&[u8]]) -> io::Result<()> {
    write_for(to, header, parts, None)
}

/// [`write`], waiting for room no longer than `timeout` (`None`: the transport's own
/// write timeout).
pub(crate) fn write_for(
    to: &(impl Transport + ?Sized),
    header: Header,
    parts: &[&[u8]],
    timeout: Option<Duration>,
) -> io::Result<()> {
    let head = head(header, parts)?;
    // The head and up to three parts (every frame but a rare few) without allocating.
    let mut all: [&[u8]; 4] = [&head, &[], &[], &[]];
    if parts.len() <= 3 {
        all[1..=parts.len()].copy_from_slice(parts);
        return to.send(&all[..=parts.len()], timeout);
    }
    let all: Vec<&[u8]> = std::iter::once(&head[..]).chain(parts.iter().copied()).collect();
    to.send(&all, timeout)
}

/// Reads one frame of at most `max` bytes straight from the socket, blocking until
/// `deadline` (forever if `None`): for the handshake, before the channel's endpoint
/// (and its buffered, spinning reads) exists.
pub(crate) fn read(
    stream: &(impl Transport + ?Sized),
    deadline: Option<Instant>,
    max: usize,
) -> Result<Frame, ReadError> {
    let mut payload = Vec::new();
    let header = read_into(stream, deadline, max, &mut payload)?;
    Ok(Frame { kind: header.kind, status: header.status, payload })
}

/// [`read`] into `payload` (cleared first; its capacity is reused).
pub(crate) fn read_into(
    stream: &(impl Transport + ?Sized),
    deadline: Option<Instant>,
    max: usize,
    payload: &mut Vec<u8>,
) -> Result<Header, ReadError> {
    let mut head = [0u8; 4 + HEADER_REST];
    recv_all(stream, as_uninit(&mut head), deadline)?;
    let (header, want) = parse_header(&head, max)?;
    payload.clear();
    recv_payload(stream, payload, want, deadline)?;
    Ok(header)
}

/// A frame's header, checked, and the length of its payload.
fn parse_header(head: &[u8], max: usize) -> Result<(Header, usize), ReadError> {
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    if len < HEADER_REST {
        return Err(ReadError::Malformed(format!("a frame declares {len} bytes")));
    }
    if len > max.min(MAX_FRAME) {
        return Err(ReadError::Malformed(format!(
            "a frame declares {len} bytes, over the limit of {} bytes",
            max.min(MAX_FRAME)
        )));
    }
    let kind = Kind::from_u8(head[4]).ok_or_else(|| ReadError::Malformed(format!("unknown frame kind {}", head[4])))?;
    let id = u64::from_le_bytes(head[6..4 + HEADER_REST].try_into().expect("8 bytes"));
    Ok((Header { kind, status: head[5], id }, len - HEADER_REST))
}

/// Receives the rest of a payload (what `payload` holds already is its start) until it
/// has `want` bytes, straight into `payload`: no zero-fill, and room grown at most
/// `AHEAD` past what arrived, so a lying header cannot make this side allocate.
fn recv_payload(
    src: &(impl Transport + ?Sized),
    payload: &mut Vec<u8>,
    want: usize,
    deadline: Option<Instant>,
) -> Result<(), ReadError> {
    while payload.len() < want {
        let have = payload.len();
        let more = (want - have).min(AHEAD.max(have));
        if have == 0 && payload.capacity() < more {
            // A buffer too small and empty: a new one, not a reallocation, which
            // would copy the old one's bytes (none of which are kept).
            *payload = Vec::new();
        }
        payload.reserve(more);
        let room = (payload.capacity() - have).min(want - have);
        recv_all(src, &mut payload.spare_capacity_mut()[..room], deadline)?;
        // SAFETY: `recv_all` initialised exactly those `room` bytes past the length.
        unsafe { payload.set_len(have + room) };
    }
    Ok(())
}

/// What a reader has received past the frames it returned: one `recv` takes every
/// frame that has arrived (several small replies at once, say), not one header at a
/// time. Held by the one thread that reads a channel.
pub(crate) struct ReadBuf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// How much the buffer holds.
    const SIZE: usize = 64 * 1024;
    /// How much one `recv` may take beyond what is needed: enough for a burst of small
    /// frames at once, little of a large frame's payload, which is received straight
    /// into its own buffer (what passes through here is copied twice).
    const BATCH: usize = 4 * 1024;

    pub(crate) fn new() -> ReadBuf {
        ReadBuf { data: vec![0; Self::SIZE].into_boxed_slice(), start: 0, end: 0 }
    }

    /// Whether a frame's bytes (some at least) are here already.
    pub(crate) fn has_bytes(&self) -> bool {
        self.end > self.start
    }

    /// Receives until at least `n` bytes are here (`n` ≤ the buffer's size).
    fn fill(
        &mut self,
        src: &(impl Transport + ?Sized),
        n: usize,
        mut spin: Duration,
        deadline: Option<Instant>,
    ) -> Result<(), ReadError> {
        while self.end - self.start < n {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let room = (Self::SIZE - self.end).min(Self::BATCH.max(n));
            let got = src.recv(as_uninit(&mut self.data[self.end..self.end + room]), spin, deadline)?;
            self.end += got;
            spin = Duration::ZERO;
        }
        Ok(())
    }
}

/// Reads one frame of at most `max` bytes through `buf`, spinning first if `may_spin`
/// and `waiter` say so (e.g. only one call is in flight: with more, the CPUs are
/// better left to them), until `deadline`: frames already received are returned
/// without a system call, and one `recv` takes as many as have arrived.
///
/// `strip` says, once the header is read, whether the payload starts with an 8-byte
/// length to leave out (a byte string's answer, see [`Strip`]): then `payload` gets
/// the bytes after it alone, no memory moved to drop it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_buffered(
    src: &(impl Transport + ?Sized),
    buf: &mut ReadBuf,
    waiter: &Waiter,
    may_spin: bool,
    deadline: Option<Instant>,
    max: usize,
    payload: &mut Vec<u8>,
    strip: impl FnOnce(&Header) -> bool,
) -> Result<(Header, Strip), ReadError> {
    const HEAD: usize = 4 + HEADER_REST;
    if buf.end - buf.start < HEAD {
        let spin = if may_spin { waiter.spin_for(src.peer_awake()) } else { Duration::ZERO };
        // (The clock only for a source that does not say how long the other side took.)
        let started = src.waited().is_none().then(Instant::now);
        buf.fill(src, 1, spin, deadline)?;
        waiter.learn(src.waited().or_else(|| started.map(|s| s.elapsed())).unwrap_or_default());
        buf.fill(src, HEAD, Duration::ZERO, deadline)?;
    }
    let (header, mut want) = parse_header(&buf.data[buf.start..buf.start + HEAD], max)?;
    buf.start += HEAD;
    let mut stripped = Strip::No;
    if strip(&header) {
        stripped = Strip::Refused;
        if want >= 8 {
            buf.fill(src, 8, Duration::ZERO, deadline)?;
            let len = u64::from_le_bytes(buf.data[buf.start..buf.start + 8].try_into().expect("8 bytes"));
            buf.start += 8;
            want -= 8;
            // (A length that lies is refused; the bytes are read all the same, so the
            // next frame starts where it should.)
            if len == want as u64 {
                stripped = Strip::Done;
            }
        }
    }
    payload.clear();
    // Room for the payload first (as much as `recv_payload` would make for it): what
    // arrived with the header is not moved again when the rest comes.
    let first = want.min(AHEAD);
    if payload.capacity() < first {
        *payload = Vec::with_capacity(first);
    }
    // What arrived with the header, then the rest straight into the payload.
    let here = want.min(buf.end - buf.start);
    payload.extend_from_slice(&buf.data[buf.start..buf.start + here]);
    buf.start += here;
    if buf.start == buf.end {
        (buf.start, buf.end) = (0, 0);
    }
    recv_payload(src, payload, want, deadline)?;
    Ok((header, stripped))
}

/// Whether [`read_buffered`] left out the length that starts a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strip {
    /// Not asked to: the payload is whole.
    No,
    /// The payload's first 8 bytes were the length of what follows, and are left out.
    Done,
    /// Asked to, but the payload's first 8 bytes are not the length of what follows
    /// (or there are not 8): the other side lied. What is in `payload` means nothing.
    Refused,
}

/// Receives exactly `to.len()` bytes into `to`, blocking when none are there.
fn recv_all(
    src: &(impl Transport + ?Sized),
    to: &mut [std::mem::MaybeUninit<u8>],
    deadline: Option<Instant>,
) -> Result<(), ReadError> {
    let mut filled = 0;
    while filled < to.len() {
        filled += src.recv(&mut to[filled..], Duration::ZERO, deadline)?;
    }
    Ok(())
}

/// Initialised bytes, as room to receive into.
fn as_uninit(bytes: &mut [u8]) -> &mut [std::mem::MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and a receive only writes
    // initialised bytes into it (it never de-initialises any).
    unsafe { &mut *(std::ptr::from_mut(bytes) as *mut [std::mem::MaybeUninit<u8>]) }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    fn head(kind: Kind, id: u64) -> Header {
        Header { kind, status: 0, id }
    }

    #[test]
    fn frames_round_trip() {
        let (a, b) = UnixStream::pair().unwrap();
        let header = Header { kind: Kind::Reply, status: 2, id: 7 };
        write(&a, header, &[&3u32.to_le_bytes(), b"args"]).unwrap();
        let mut payload = Vec::new();
        let got = read_into(&b, None, MAX_FRAME, &mut payload).unwrap();
        assert_eq!(got, header);
        assert_eq!(payload, b"\x03\x00\x00\x00args");
    }

    #[test]
    fn a_large_frame_arrives_whole_into_a_reused_buffer() {
        let (a, b) = UnixStream::pair().unwrap();
        let big: Vec<u8> = (0..3 * AHEAD + 17).map(|i| (i % 251) as u8).collect();
        let sent = big.clone();
        let writer = std::thread::spawn(move || {
            write(&a, head(Kind::Call, 1), &[&sent]).unwrap();
            write(&a, head(Kind::Call, 2), &[b"small"]).unwrap();
        });
        let mut buf = Vec::new();
        let h = read_into(&b, None, MAX_FRAME, &mut buf).unwrap();
        assert_eq!(h.id, 1);
        assert!(buf == big, "the payload differs");
        let capacity = buf.capacity();
        let h = read_into(&b, None, MAX_FRAME, &mut buf).unwrap();
        assert_eq!((h.id, &buf[..]), (2, &b"small"[..]));
        assert_eq!(buf.capacity(), capacity, "the buffer is reused");
        writer.join().unwrap();
    }

    #[test]
    fn buffered_reads_take_several_frames_at_once_and_large_ones_whole() {
        let (a, b) = UnixStream::pair().unwrap();
        let big: Vec<u8> = (0..ReadBuf::SIZE * 2 + 5).map(|i| (i % 249) as u8).collect();
        let sent = big.clone();
        let writer = std::thread::spawn(move || {
            for id in 1..=3 {
                write(&a, head(Kind::Reply, id), &[&[id as u8; 3]]).unwrap();
            }
            write(&a, head(Kind::Call, 4), &[&sent]).unwrap();
            write(&a, head(Kind::Release, 5), &[b"tail"]).unwrap();
        });
        let mut buf = ReadBuf::new();
        let mut payload = Vec::new();
        let w = Waiter::blocking();
        for id in 1..=3 {
            let h = read_buffered(&b, &mut buf, &w, false, None, MAX_FRAME, &mut payload, |_| false).unwrap().0;
            assert_eq!((h.id, &payload[..]), (id, &[id as u8; 3][..]));
        }
        let h = read_buffered(&b, &mut buf, &w, false, None, MAX_FRAME, &mut payload, |_| false).unwrap().0;
        assert_eq!(h.id, 4);
        assert!(payload == big, "a frame larger than the buffer arrives whole");
        let h = read_buffered(&b, &mut buf, &w, false, None, MAX_FRAME, &mut payload, |_| false).unwrap().0;
        assert_eq!((h.kind, &payload[..]), (Kind::Release, &b"tail"[..]));
        assert!(!buf.has_bytes());
        writer.join().unwrap();
        // A header over the limit is refused before its payload is read.
        let (mut c, d) = UnixStream::pair().unwrap();
        c.write_all(&[0xff, 0xff, 0xff, 0x0f, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        let r = read_buffered(&d, &mut ReadBuf::new(), &w, false, None, 1000, &mut payload, |_| false);
        assert!(matches!(r, Err(ReadError::Malformed(_))), "{r:?}");
    }

    /// Frames of every small size in a burst larger than one `recv`'s batch, with a
    /// few larger than the batch among them: each arrives whole, however its header
    /// and payload fall across receives.
    #[test]
    fn a_burst_of_frames_across_many_batches_arrives_frame_by_frame() {
        let (a, b) = UnixStream::pair().unwrap();
        let sizes: Vec<usize> = (0..700).map(|i| if i % 97 == 5 { ReadBuf::BATCH + i } else { i % 301 }).collect();
        let sent = sizes.clone();
        let writer = std::thread::spawn(move || {
            for (id, &len) in sent.iter().enumerate() {
                let payload: Vec<u8> = (0..len).map(|j| (j + id) as u8).collect();
                write(&a, head(Kind::Reply, id as u64), &[&payload]).unwrap();
            }
        });
        let mut buf = ReadBuf::new();
        let mut payload = Vec::new();
        let w = Waiter::blocking();
        for (id, &len) in sizes.iter().enumerate() {
            let h = read_buffered(&b, &mut buf, &w, false, None, MAX_FRAME, &mut payload, |_| false).unwrap().0;
            let expected: Vec<u8> = (0..len).map(|j| (j + id) as u8).collect();
            assert!(h.id == id as u64 && payload == expected, "frame {id} of {len} bytes");
        }
        assert!(!buf.has_bytes());
        writer.join().unwrap();
    }

    #[test]
    fn the_waiter_spins_only_after_a_quick_frame() {
        let w = Waiter::new(Duration::from_millis(5));
        assert_eq!(w.spin_for(true), Duration::ZERO);
        w.learn(Duration::from_micros(3));
        let spin = if several_cpus() { Duration::from_millis(5) } else { Duration::ZERO };
        assert_eq!(w.spin_for(true), spin);
        w.learn(Duration::from_millis(8));
        // After a slow frame: no spinning, but for one probe in `PROBE` waits.
        let spins: Vec<Duration> = (0..2 * Waiter::PROBE).map(|_| w.spin_for(true)).collect();
        let probes = spins.iter().filter(|s| !s.is_zero()).count();
        assert_eq!(probes, if several_cpus() { 2 } else { 0 }, "{spins:?}");
        assert!(spins[0].is_zero());
    }

    #[test]
    fn eof_timeout_and_garbage() {
        let (a, b) = UnixStream::pair().unwrap();
        let r = read(&b, Some(Instant::now() + Duration::from_millis(20)), MAX_FRAME);
        assert!(matches!(r, Err(ReadError::TimedOut)), "{r:?}");
        drop(a);
        assert!(matches!(read(&b, None, MAX_FRAME), Err(ReadError::Eof)));

        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(matches!(read(&b, None, MAX_FRAME), Err(ReadError::Malformed(_))));
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&[10, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(matches!(read(&b, None, MAX_FRAME), Err(ReadError::Malformed(_))));
    }

    #[test]
    fn a_frame_over_the_limit_is_malformed_before_its_payload_is_read() {
        let (a, b) = UnixStream::pair().unwrap();
        write(&a, head(Kind::Reply, 1), &[&[0u8; 1000]]).unwrap();
        let r = read(&b, None, 100);
        assert!(matches!(&r, Err(ReadError::Malformed(m)) if m.contains("1010 bytes, over the limit of 100")), "{r:?}");
    }

    #[test]
    #[cfg(all(target_os = "linux", feature = "remote"))]
    fn an_ended_frame_says_how_the_process_ended() {
        for (signal, code, late) in
            [(Some(6), None, false), (None, Some(3), false), (None, None, true), (Some(-1), Some(0), true)]
        {
            let bytes = ended(signal, code, late);
            let (a, b) = UnixStream::pair().unwrap();
            (&a).write_all(&bytes).unwrap();
            let f = read(&b, None, MAX_FRAME).unwrap();
            assert_eq!(f.kind, Kind::Ended);
            assert_eq!(read_ended(&f.payload).unwrap(), (signal, code, late));
        }
        assert!(matches!(read_ended(&[1, 0, 0]), Err(ReadError::Malformed(_))));
    }
}
