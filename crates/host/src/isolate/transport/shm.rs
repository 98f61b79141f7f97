//! The channel's bytes through shared memory (Linux): two byte rings in one sealed
//! memfd, one each way, under the same frames as the socket (see [`super::super::frame`]): one
//! [`Transport`] of the channel.
//!
//! Why: over a socket every frame costs a `writev` and a `recv` on each side, and a
//! reader that spins for the next frame spins in `recv` system calls; back to back,
//! those calls were most of an isolated call. Through the rings a frame is a copy in
//! and a copy out, and a spinning reader reads one word of memory. A side that sleeps
//! says so in the ring (`reader_sleeping`, `writer_waiting`) and is woken through a
//! pipe (its *bell*, see [`Bells`]); the host sleeps in `poll` on its bell *and* the
//! socket, which stays open for the handshake and for one more job: its end is how the
//! host learns the child died, at once, as before. The child sleeps on its bell alone
//! and learns the host's end from it (see `Shared::host`).
//!
//! The other side is not trusted (it is the plugin's process, or the host): each side
//! keeps its own position (`head` of what it reads, `tail` of what it writes) and only
//! publishes it; the other's position is read, checked to be within the ring, and a
//! ring found corrupt ends the channel. Bytes are copied out before they are parsed,
//! so changing them afterwards changes nothing here. The memfd is sealed against
//! shrinking before the child sees it: a plugin cannot make the host's accesses fault.
//!
//! Written by hand: the crates that do this (`shmem-ipc`, whose design this follows:
//! a sealed memfd and a pair of eventfds per ring) are unmaintained or assume a trusted
//! peer, and the rings here are a byte stream for frames the socket code already reads.
//! (Bells are pipes here, not eventfds, for the reason given at [`Bells`].)
//!
//! Nothing the other side does makes this side wait past its deadline: rings never
//! block (a full bell is a rung bell), a full ring is waited on until the write's
//! deadline, and a flood of rings that bring nothing ends the channel
//! ([`MAX_EMPTY_WAKES`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use std::os::unix::net::UnixStream;

use super::{ReadError, Transport};

/// The bytes of one ring's data: a frame of 1 MiB of bytes (and its head) fits whole,
/// so its writer never waits for room (sleeping, and being rung awake by the reader,
/// once or more per frame: ~10 % of a 1 MiB call; docs/benchmarks.md, "Bulk bytes,
/// round 4"); larger frames stream through it. Two rings of it per isolated plugin,
/// shared memory whose pages are taken only as frames reach them.
pub(crate) const CAPACITY: usize = 2 * 1024 * 1024;
/// The page before each ring's data: its positions and flags.
const CONTROL: usize = 4096;
/// One ring: control page and data.
const RING: usize = CONTROL + CAPACITY;
/// The whole shared memory: the host's ring (host → child), then the child's.
pub(crate) const SIZE: usize = 2 * RING;
/// The most copied before the position is published, so a reader starts on a large
/// frame while the rest is written.
const CHUNK: usize = 64 * 1024;
/// How long a writer spins for room before it sleeps (when it may spin at all).
const ROOM_SPIN: Duration = Duration::from_micros(20);
/// How many times in a row the other side may ring a bell without sending anything
/// (no bytes, no room) before the channel is taken for broken. An honest side makes at
/// most one such wake-up in a row: its rings follow what it sends, and a ring left from
/// bytes taken before the sleep is taken with the others at the next wake-up.
const MAX_EMPTY_WAKES: u32 = 64;
/// How long a side that was woken twice in a row for nothing waits before it sleeps
/// on the bell again: what rings meanwhile wakes it once. So a bell flood wakes this
/// side at most once a millisecond after its first two wake-ups (each a `poll` and at
/// most 17 `read`s: tens of microseconds, a few percent of one core at worst), and
/// for at most [`MAX_EMPTY_WAKES`] wake-ups in all (about 62 ms) before the channel
/// ends: under 1 ms of CPU per flood.
const COALESCE: Duration = Duration::from_millis(1);
/// The most rings taken from a bell by one `read`.
const DRAIN: usize = 4096;
/// A pipe's default capacity (Linux): the most rings a bell holds.
const PIPE_SIZE: usize = 64 * 1024;

/// A value alone on its cache lines (two: the adjacent-line prefetcher pairs them).
#[repr(C, align(128))]
struct Line<T>(T);

/// A ring's control page.
#[repr(C)]
struct Control {
    /// Bytes written in all (the writer's).
    tail: Line<AtomicU64>,
    /// When the tail last moved (`CLOCK_MONOTONIC`, ns; the writer's): how long the
    /// writer took, for a reader that woke up later (see `Shared::waited`).
    published: Line<AtomicU64>,
    /// The writer sleeps until there is room (the writer's): 0 if not, else the
    /// number of this sleep (see [`Naps`]).
    writer_waiting: Line<AtomicU32>,
    /// Bytes read in all (the reader's).
    head: Line<AtomicU64>,
    /// When the reader last took bytes (`CLOCK_MONOTONIC`, ns; the reader's).
    taken: Line<AtomicU64>,
    /// The reader sleeps until bytes come (the reader's): 0 if not, else the number
    /// of this sleep (see [`Naps`]).
    reader_sleeping: Line<AtomicU32>,
    /// A lane's child-side bell, in the host's ring's page (the host's to set, the
    /// child's to take): a futex word, 1 when rung (see [`Wake::HostLane`]).
    bell: Line<AtomicU32>,
}

const _: () = assert!(size_of::<Control>() <= CONTROL);

/// Which sleep of the other side this side last rang a bell for, so it rings once
/// per sleep, not once per chunk published (or taken) while the other side is still
/// waking up: a large frame published in 16 chunks rang its sleeping reader up to 16
/// times (a `write` to a pipe and a wake-up each), for one sleep.
///
/// A side that sleeps stores a number of its own in its flag (`reader_sleeping`,
/// `writer_waiting`), new for each sleep and never 0 or 1; the other side rings when
/// the flag holds a number it has not rung for yet. A ring stays in the pipe until
/// the sleeper takes it when it wakes (see `sleep`), so one ring per sleep wakes it;
/// its next sleep has another number, rung for anew. (1, what sides before these
/// numbers stored, is rung for every time, as they were.) The other side's numbers
/// only decide when this side rings *it*: a side that lies about them only fails to
/// be woken itself.
#[derive(Debug)]
struct Naps {
    /// This side's last sleep number (its reader's and writer's alike).
    mine: AtomicU32,
    /// The other side's reader's sleep this side last rang `their_data` for; its
    /// writer's, `their_room`.
    rung_data: AtomicU32,
    rung_room: AtomicU32,
}

/// The number every sleep stored before [`Naps`]: rung for each time.
const EVERY_TIME: u32 = 1;

impl Naps {
    fn new() -> Naps {
        Naps { mine: AtomicU32::new(EVERY_TIME), rung_data: AtomicU32::new(0), rung_room: AtomicU32::new(0) }
    }

    /// A number for this side's next sleep: never 0 (awake) nor [`EVERY_TIME`].
    fn next(&self) -> u32 {
        let n = self.mine.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if n > EVERY_TIME { n } else { self.next() }
    }

    /// Whether to ring for the other side's sleep `nap` (its flag, as read), whose
    /// last one rung for is in `rung`; notes it as rung.
    fn ring_for(nap: u32, rung: &AtomicU32) -> bool {
        if nap == 0 {
            // Awake: the sleep last rung for is over, and forgotten, so that the same
            // number coming round again (the counter wraps after 2^32 sleeps, most of
            // them never rung for) is rung for anew.
            rung.store(0, Ordering::Relaxed);
            return false;
        }
        if nap != EVERY_TIME && rung.load(Ordering::Relaxed) == nap {
            return false;
        }
        rung.store(nap, Ordering::Relaxed);
        true
    }
}

/// One side's ends of the four bells: who sleeps on which.
///
/// Each bell is a pipe, rung by one side and slept on by the other, and each side
/// holds only its own end: the read end of the bells it sleeps on, the write end of
/// those it rings. Never an eventfd both sides hold: a descriptor shared between
/// processes shares its open file description, so the other side could clear
/// `O_NONBLOCK` on it (`fcntl(F_SETFL)`) and fill its counter, or drain it between
/// this side's `poll` and `read`, and a write or read of this side would then block
/// for good. Here the other side cannot reach this side's ends at all: a ring on a
/// full pipe fails with `EAGAIN`, which means "already rung", and a read after
/// `poll` finds what nobody else could take.
#[derive(Debug)]
pub(crate) struct Bells {
    /// The host's reader sleeps on it: bytes came in the child's ring.
    pub(crate) host_data: OwnedFd,
    /// The host's writer sleeps on it: room came in the host's ring.
    pub(crate) host_room: OwnedFd,
    /// The child's reader sleeps on it.
    pub(crate) child_data: OwnedFd,
    /// The child's writer sleeps on it.
    pub(crate) child_room: OwnedFd,
}

/// A new, zeroed, sealed memfd of [`SIZE`] bytes and the bells: the host's ends and
/// the child's (which the host passes to the child and closes).
pub(crate) fn create() -> io::Result<(OwnedFd, Bells, Bells)> {
    let memfd = memfd()?;
    // Each bell: the read end for the side that sleeps on it, the write end for the
    // side that rings it; both non-blocking (each its own open file description).
    let bell = || {
        let mut fds = [0; 2];
        // SAFETY: `pipe2` writes two new descriptors into the local array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors returned by `pipe2`, owned by nobody else.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    };
    let (host_data, child_data, host_room, child_room) = (bell()?, bell()?, bell()?, bell()?);
    let host =
        Bells { host_data: host_data.0, host_room: host_room.0, child_data: child_data.1, child_room: child_room.1 };
    let child =
        Bells { host_data: host_data.1, host_room: host_room.1, child_data: child_data.0, child_room: child_room.0 };
    Ok((memfd, host, child))
}

/// A new, zeroed memfd of [`SIZE`] bytes, sealed against shrinking and growing.
fn memfd() -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name and flags; returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"tomada-channel".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor, owned by nobody else.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain calls on our descriptor.
    let sized = unsafe { libc::ftruncate(fd, SIZE as libc::off_t) } == 0
        // SAFETY: as above. Sealed: neither side can shrink it under the other's
        // accesses (a `SIGBUS`), nor take the seals back.
        && unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL) }
            == 0;
    if !sized {
        return Err(io::Error::last_os_error());
    }
    Ok(memfd)
}

/// The shared memory, mapped.
struct Mapping {
    base: *mut u8,
}

// SAFETY: the mapping is plain memory, used through atomics (positions, flags) and
// byte copies of ranges that the ring protocol gives to one thread at a time (the
// holder of the endpoint's writing or reading lock).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

/// Whether `memfd` is open and holds [`SIZE`] bytes, as rings to map must; and, for a
/// lane, whether `bell` is open and a socket. (The child looks before it takes a
/// lane's descriptors into a [`Shared`]: a plugin may have closed them, or put other
/// files there, and what its own code broke must not be closed again by the runner,
/// as that could close another file of the plugin's that took the number.)
pub(crate) fn usable(memfd: RawFd, bell: Option<RawFd>) -> io::Result<()> {
    let size = stat(memfd)?.st_size;
    if size as u64 != SIZE as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the shared memory has {size} bytes, not {SIZE}"),
        ));
    }
    if let Some(bell) = bell
        && stat(bell)?.st_mode & libc::S_IFMT != libc::S_IFSOCK
    {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the lane's bell is not a socket"));
    }
    Ok(())
}

impl Mapping {
    fn new(memfd: &OwnedFd) -> io::Result<Mapping> {
        usable(memfd.as_raw_fd(), None)?;
        // SAFETY: a new shared mapping of the whole memfd (its size checked above and
        // sealed by the host); the kernel chooses the address.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                memfd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { base: base.cast() })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our mapping of `SIZE` bytes; the rings that point into it are fields
        // of the same `Shared`, dropped with it.
        unsafe { libc::munmap(self.base.cast(), SIZE) };
    }
}

/// One end of the channel through shared memory: the ring this side writes, the one
/// it reads, the bells, and the socket whose end means the other side's.
pub(crate) struct Shared {
    _mapping: Mapping,
    /// The child's memfd, kept open at the number the host passed (the mapping would
    /// do, but the child's descriptors then stay as the host passed them). The
    /// host's is closed once mapped: a descriptor less per ring pair, per process.
    _memfd: Option<OwnedFd>,
    tx: Ring,
    rx: Ring,
    /// This side's position in `tx` (its tail) and in `rx` (its head).
    tail: AtomicU64,
    head: AtomicU64,
    /// How the sides wake each other.
    wake: Wake,
    /// The channel's socket: its end is the other side's. (Shared by the channel's
    /// lanes, each a `Shared` of its own over its own memory: see `runner::Lane`.)
    socket: std::sync::Arc<UnixStream>,
    /// This is the host's end: it sleeps on the socket too. The child's sleeps on its
    /// bell alone, and learns the host's end from the bell's (the host holds the only
    /// write end, see [`Bells`]): a thread of the child that sleeps in `poll` on the
    /// socket holds it open, so a plugin that closes its descriptor of the socket
    /// while a thread of its process sleeps (an idle lane's, the main one's while a
    /// lane serves) would not end the host's side of it.
    host: bool,
    /// The child's socket as it was (device and inode of its descriptor): a child
    /// that goes to sleep looks first whether its descriptor still names it. A plugin
    /// that closed it (or put another file at its number) and answered its call would
    /// otherwise live on unseen, with nobody waiting on either side.
    socket_id: Option<(u64, u64)>,
    /// How long a write may wait for room (`None`: as long as the other side lives).
    write_timeout: Option<Duration>,
    /// How long the last `recv` that found nothing at first waited for the writer (ns).
    waited: AtomicU64,
    /// The other side's reader slept when this side last published (it was rung for
    /// that sleep, by this publish or an earlier one: either way it looks at the tail
    /// after it wakes).
    rang: std::sync::atomic::AtomicBool,
    /// This side's sleeps, and the other side's rung for.
    naps: Naps,
    /// Wake-ups in a row on `my_data` that found no bytes, and on `my_room` that found
    /// no room (see [`MAX_EMPTY_WAKES`]).
    empty_data: AtomicU32,
    empty_room: AtomicU32,
}

/// How the two sides of a `Shared` wake each other.
enum Wake {
    /// Four bells (the main rings'): see [`Bells`].
    Pipes {
        /// Rung when bytes are in `tx` for a sleeping reader.
        their_data: OwnedFd,
        /// Rung when `rx` has room for a waiting writer.
        their_room: OwnedFd,
        /// Slept on for bytes in `rx`.
        my_data: OwnedFd,
        /// Slept on for room in `tx`.
        my_room: OwnedFd,
    },
    /// A lane's host side: its end of the lane's own socketpair, which it sleeps on
    /// for bytes and for room alike (one thread a side uses a lane, waiting for one
    /// of them at a time; a ring for the other is one wake-up for nothing, see
    /// [`MAX_EMPTY_WAKES`]). Its `recv` takes the rings and learns the child's end
    /// (`0`: the child's process is gone) in one system call, where a pipe needs a
    /// `poll` (of the pipe and the channel's socket) and a `read`. It rings the child
    /// through the futex word [`Control::bell`], not the socketpair: a socket's
    /// reader that takes a byte wakes whoever sleeps on the *sender's* end
    /// (`unix_write_space`: the sender's socket became writable), and the host sleeps
    /// there, waiting for the answer, so a ring through the socketpair woke it for
    /// nothing at each request the child took; and a futex wake is a hash-bucket lock
    /// where a socket `send` allocates a buffer (docs/benchmarks.md, "Many threads,
    /// round 5").
    HostLane(OwnedFd),
    /// A lane's child side: rings the host through its end of the socketpair, and
    /// sleeps on the futex word [`Control::bell`], which the host sets and wakes. It
    /// learns nothing of the host's end from the word, and needs not: the host ends the
    /// child's process when it ends the channel, and the child's main thread learns
    /// the host's end from the main rings' bells.
    ChildLane(OwnedFd),
}

/// The most a lane's host side waits in one `recv` before it looks at its deadline
/// (`SO_RCVTIMEO` of the host's end; the child sleeps on a futex word instead).
const LANE_TICK: Duration = Duration::from_secs(1);

/// A new, zeroed, sealed memfd of [`SIZE`] bytes and a lane's bell, a socketpair: the
/// host's end and the child's (which the host passes to the child and closes).
pub(crate) fn create_lane() -> io::Result<(OwnedFd, OwnedFd, OwnedFd)> {
    let memfd = memfd()?;
    let mut fds = [0; 2];
    // SAFETY: `socketpair` writes two new descriptors into the local array.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors returned by `socketpair`, owned by nobody else.
    let (host, child) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let tick = libc::timeval { tv_sec: LANE_TICK.as_secs() as libc::time_t, tv_usec: 0 };
    // SAFETY: one `timeval` from a local, its size given.
    let set = unsafe {
        libc::setsockopt(
            host.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tick).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((memfd, host, child))
}

/// A ring in the mapping.
struct Ring {
    control: *const Control,
    data: *mut u8,
}

// SAFETY: as for `Mapping`, which it points into (and which outlives it).
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// Ring `n` (0: the host's, 1: the child's) of `mapping`.
    fn new(mapping: &Mapping, n: usize) -> Ring {
        // SAFETY: `n` is 0 or 1, so both ranges are within the `SIZE` bytes mapped.
        let start = unsafe { mapping.base.add(n * RING) };
        // SAFETY: as above; the control page is page-aligned, so aligned for `Control`.
        Ring { control: start.cast(), data: unsafe { start.add(CONTROL) } }
    }

    fn control(&self) -> &Control {
        // SAFETY: the control page lives as long as the mapping, which outlives every
        // use (both are fields of one `Shared`); its fields are atomics, valid at any
        // bit pattern (zeroed at first), so the other process writing them is fine.
        unsafe { &*self.control }
    }
}

impl Shared {
    /// The host's end (`host`) or the child's, over `memfd` and its bells; `socket` is
    /// the channel's socket, watched for the other side's end.
    pub(crate) fn new(
        memfd: OwnedFd,
        bells: Bells,
        host: bool,
        socket: impl Into<std::sync::Arc<UnixStream>>,
        write_timeout: Option<Duration>,
    ) -> io::Result<Shared> {
        let Bells { host_data, host_room, child_data, child_room } = bells;
        let (their_data, their_room, my_data, my_room) = if host {
            (child_data, child_room, host_data, host_room)
        } else {
            (host_data, host_room, child_data, child_room)
        };
        let wake = Wake::Pipes { their_data, their_room, my_data, my_room };
        Shared::with(memfd, wake, host, socket.into(), write_timeout)
    }

    /// A lane's end (see `Isolation::lanes`): as [`Shared::new`], woken through `bell`,
    /// this side's end of the lane's socketpair (see [`Wake::HostLane`], [`Wake::ChildLane`]).
    pub(crate) fn lane(
        memfd: OwnedFd,
        bell: OwnedFd,
        host: bool,
        socket: std::sync::Arc<UnixStream>,
        write_timeout: Option<Duration>,
    ) -> io::Result<Shared> {
        let wake = if host { Wake::HostLane(bell) } else { Wake::ChildLane(bell) };
        Shared::with(memfd, wake, host, socket, write_timeout)
    }

    fn with(
        memfd: OwnedFd,
        wake: Wake,
        host: bool,
        socket: std::sync::Arc<UnixStream>,
        write_timeout: Option<Duration>,
    ) -> io::Result<Shared> {
        let mapping = Mapping::new(&memfd)?;
        let (mine, theirs) = if host { (0, 1) } else { (1, 0) };
        let (tx, rx) = (Ring::new(&mapping, mine), Ring::new(&mapping, theirs));
        // The host starts at zero: nothing crosses a ring before the host maps it, and
        // by then the child (whose plugin may have run, for a lane started late, and
        // holds the memory) may have written anything there. The child starts where
        // the rings are (zero, unless this is a second end).
        let (tail, head) = if host {
            (0, 0)
        } else {
            (tx.control().tail.0.load(Ordering::Acquire), rx.control().head.0.load(Ordering::Acquire))
        };
        Ok(Shared {
            _mapping: mapping,
            _memfd: (!host).then_some(memfd),
            tx,
            rx,
            tail: AtomicU64::new(tail),
            head: AtomicU64::new(head),
            wake,
            socket_id: if host { None } else { file_id(socket.as_raw_fd()) },
            socket,
            host,
            write_timeout,
            waited: AtomicU64::new(0),
            rang: std::sync::atomic::AtomicBool::new(false),
            naps: Naps::new(),
            empty_data: AtomicU32::new(0),
            empty_room: AtomicU32::new(0),
        })
    }

    /// Writes `parts` whole, waiting for room as needed (by the holder of the
    /// endpoint's writing lock: one writer at a time).
    #[cfg(test)]
    pub(crate) fn send(&self, parts: &[&[u8]]) -> io::Result<()> {
        self.send_for(parts, self.write_timeout)
    }

    /// [`Shared::send`], waiting for room no longer than `timeout` in all (`None`: as
    /// long as the other side lives). A send that times out may leave part of the frame
    /// in the ring: the channel is then broken, and must end.
    pub(crate) fn send_for(&self, parts: &[&[u8]], timeout: Option<Duration>) -> io::Result<()> {
        let control = self.tx.control();
        let mut tail = self.tail.load(Ordering::Relaxed);
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let deadline = timeout.map(|t| Instant::now() + t);
        for part in parts {
            let mut rest: &[u8] = part;
            while !rest.is_empty() {
                let head = control.head.0.load(Ordering::Acquire);
                let used = tail.wrapping_sub(head);
                if used > CAPACITY as u64 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "the other side corrupted the shared ring"));
                }
                let room = CAPACITY - used as usize;
                if room == 0 {
                    self.publish(tail);
                    self.wait_room(tail, deadline)?;
                    continue;
                }
                let n = room.min(rest.len()).min(CHUNK);
                let at = (tail % CAPACITY as u64) as usize;
                let first = n.min(CAPACITY - at);
                // SAFETY: `at + first` ≤ CAPACITY and `n - first` < CAPACITY: both
                // ranges are in the ring's data, which the protocol gives to the writer
                // (between tail and head + CAPACITY: not yet published, nor read).
                unsafe {
                    std::ptr::copy_nonoverlapping(rest.as_ptr(), self.tx.data.add(at), first);
                    std::ptr::copy_nonoverlapping(rest.as_ptr().add(first), self.tx.data, n - first);
                }
                tail += n as u64;
                rest = &rest[n..];
                // A large frame goes out in chunks, for the reader to take meanwhile.
                if total > CHUNK {
                    self.publish(tail);
                }
            }
        }
        self.publish(tail);
        Ok(())
    }

    /// Makes the bytes up to `tail` visible, and rings the reader if it sleeps.
    fn publish(&self, tail: u64) {
        self.tail.store(tail, Ordering::Relaxed);
        let control = self.tx.control();
        control.published.0.store(now_ns(), Ordering::Relaxed);
        control.tail.0.store(tail, Ordering::Release);
        // Either the reader sees the new tail before it sleeps, or this sees it
        // sleeping (each side stores, fences, then loads the other's word).
        fence(Ordering::SeqCst);
        let nap = control.reader_sleeping.0.load(Ordering::Relaxed);
        // (Rung once per sleep: `Naps`; one writer at a time, the holder of the
        // endpoint's writing lock, reads and notes `rung_data`.)
        if Naps::ring_for(nap, &self.naps.rung_data) {
            self.ring_data();
        }
        let asleep = nap != 0;
        self.rang.store(asleep, Ordering::Relaxed);
    }

    /// Whether the other side was awake when this side last wrote: its answer may
    /// come at once. (If it slept, the answer comes after it wakes up, which spinning
    /// for would only take a CPU from it.)
    pub(crate) fn peer_awake(&self) -> bool {
        !self.rang.load(Ordering::Relaxed)
    }

    /// Waits until the reader has taken bytes written before `tail`.
    fn wait_room(&self, tail: u64, deadline: Option<Instant>) -> io::Result<()> {
        let control = self.tx.control();
        let has_room = || tail.wrapping_sub(control.head.0.load(Ordering::Acquire)) < CAPACITY as u64;
        if super::several_cpus() {
            let until = Instant::now() + ROOM_SPIN;
            while Instant::now() < until {
                if has_room() {
                    self.empty_room.store(0, Ordering::Relaxed);
                    return Ok(());
                }
                std::hint::spin_loop();
            }
        }
        loop {
            control.writer_waiting.0.store(self.naps.next(), Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if has_room() {
                control.writer_waiting.0.store(0, Ordering::Relaxed);
                self.empty_room.store(0, Ordering::Relaxed);
                return Ok(());
            }
            let woken = self.sleep_room(deadline);
            control.writer_waiting.0.store(0, Ordering::Relaxed);
            // (Room found is checked at the top of the loop, which resets the count.)
            let woken = woken.and_then(|()| if has_room() { Ok(()) } else { woken_for_nothing(&self.empty_room) });
            match woken {
                Ok(()) => {}
                Err(ReadError::TimedOut) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "the other side took no bytes in time"));
                }
                Err(ReadError::Io(e)) => return Err(e),
                Err(ReadError::Malformed(why)) => return Err(io::Error::new(io::ErrorKind::InvalidData, why)),
                Err(ReadError::Eof | ReadError::Ended { .. }) => return Err(io::ErrorKind::BrokenPipe.into()),
            }
        }
    }

    /// Receives at least one and at most `len` bytes to `to` (by the holder of the
    /// endpoint's reading lock): spins for up to `spin` reading the ring's tail, then
    /// sleeps on the bell and the socket until `deadline`.
    pub(crate) fn recv(
        &self,
        to: *mut u8,
        len: usize,
        spin: Duration,
        deadline: Option<Instant>,
    ) -> Result<usize, ReadError> {
        if let Some(n) = self.take(to, len)? {
            self.waited.store(0, Ordering::Relaxed);
            return Ok(n);
        }
        let spin_until = (!spin.is_zero()).then(|| Instant::now() + spin);
        let mut spins = 0u32;
        loop {
            if let Some(n) = self.take(to, len)? {
                // How long the other side took to answer: from when it took what this
                // side wrote last to when it wrote this; neither side's waking up
                // counts (which, on a busy machine, can alone take longer than spinning
                // would pay for, and would keep a side from spinning for good).
                let published = self.rx.control().published.0.load(Ordering::Relaxed);
                let taken = self.tx.control().taken.0.load(Ordering::Relaxed);
                self.waited.store(published.saturating_sub(taken), Ordering::Relaxed);
                return Ok(n);
            }
            // The clock is read every 64 looks only: it costs more than a look.
            spins = spins.wrapping_add(1);
            if spin_until.is_some_and(|until| !spins.is_multiple_of(64) || Instant::now() < until) {
                std::hint::spin_loop();
                continue;
            }
            self.wait_bytes(deadline)?;
        }
    }

    /// Copies what is there (up to `len` bytes) to `to`; `None` if nothing is.
    fn take(&self, to: *mut u8, len: usize) -> Result<Option<usize>, ReadError> {
        let control = self.rx.control();
        let head = self.head.load(Ordering::Relaxed);
        let avail = control.tail.0.load(Ordering::Acquire).wrapping_sub(head);
        if avail == 0 || len == 0 {
            return Ok(None);
        }
        if avail > CAPACITY as u64 {
            return Err(ReadError::Malformed("the other side corrupted the shared ring".to_owned()));
        }
        let n = (avail as usize).min(len);
        let at = (head % CAPACITY as u64) as usize;
        let first = n.min(CAPACITY - at);
        // SAFETY: both ranges are in the ring's data (`at + first` ≤ CAPACITY, `n -
        // first` < CAPACITY) and published by the writer (before the tail read with
        // `Acquire`); the caller passes `len` ≥ `n` writable bytes at `to`. (A writer
        // breaking the protocol can only change the bytes copied, which are checked
        // after, as any bytes that come from the other side.)
        unsafe {
            std::ptr::copy_nonoverlapping(self.rx.data.add(at), to, first);
            std::ptr::copy_nonoverlapping(self.rx.data, to.add(first), n - first);
        }
        let head = head + n as u64;
        self.head.store(head, Ordering::Relaxed);
        // Bytes came: the wake-ups for nothing before them were not in a row.
        if self.empty_data.load(Ordering::Relaxed) != 0 {
            self.empty_data.store(0, Ordering::Relaxed);
        }
        control.taken.0.store(now_ns(), Ordering::Relaxed);
        control.head.0.store(head, Ordering::Release);
        fence(Ordering::SeqCst);
        // (Rung once per sleep, see `Naps`; one reader at a time.)
        if Naps::ring_for(control.writer_waiting.0.load(Ordering::Relaxed), &self.naps.rung_room) {
            self.ring_room();
        }
        Ok(Some(n))
    }

    /// How long the other side took to answer, the last time this side waited for
    /// it (see `recv`).
    pub(crate) fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited.load(Ordering::Relaxed))
    }

    /// Whether bytes are there to read (a look at one word: no system call; the
    /// other side's end is found by the next wait).
    pub(crate) fn readable(&self) -> bool {
        self.rx.control().tail.0.load(Ordering::Acquire) != self.head.load(Ordering::Relaxed)
    }

    /// Sleeps until bytes are there (returns at once if they are), the other side
    /// ends (`Eof`), or `deadline` passes.
    pub(crate) fn wait_bytes(&self, deadline: Option<Instant>) -> Result<(), ReadError> {
        let control = self.rx.control();
        let head = self.head.load(Ordering::Relaxed);
        control.reader_sleeping.0.store(self.naps.next(), Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if control.tail.0.load(Ordering::Relaxed) != head {
            control.reader_sleeping.0.store(0, Ordering::Relaxed);
            self.empty_data.store(0, Ordering::Relaxed);
            return Ok(());
        }
        let woken = self.sleep_data(deadline);
        control.reader_sleeping.0.store(0, Ordering::Relaxed);
        // A writer that still saw this side asleep after publishing its bytes counts
        // on this side to see them, whatever it reads next (the host's nudges do: see
        // `Connection::nudge_for`): awake first, then every later look at the tail.
        fence(Ordering::SeqCst);
        woken?;
        if control.tail.0.load(Ordering::Acquire) != head {
            self.empty_data.store(0, Ordering::Relaxed);
            return Ok(());
        }
        woken_for_nothing(&self.empty_data)
    }
}

/// The device and inode of the file open at `fd`, if it is open.
fn file_id(fd: RawFd) -> Option<(u64, u64)> {
    stat(fd).ok().map(|stat| (stat.st_dev, stat.st_ino))
}

/// What `fstat` says of `fd` (an error if it is not open).
fn stat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: `fstat` writes into a local buffer; a closed descriptor is an error.
    let mut stat = unsafe { std::mem::zeroed::<libc::stat>() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stat)
}

impl Shared {
    /// The child's side, before it sleeps: `Eof` if its socket's descriptor no longer
    /// names the socket it was made with (the plugin closed it, or put another file
    /// there): the channel is over, as when the host ends it.
    fn socket_kept(&self) -> Result<(), ReadError> {
        match self.socket_id {
            Some(id) if file_id(self.socket.as_raw_fd()) != Some(id) => Err(ReadError::Eof),
            _ => Ok(()),
        }
    }

    /// The socket to sleep on besides a bell (the host's; -1, which `poll` skips: the
    /// child's, see `host`).
    fn watched(&self) -> RawFd {
        if self.host { self.socket.as_raw_fd() } else { -1 }
    }

    /// A lane's child-side bell (see [`Wake::ChildLane`]): in the control page of the
    /// host's ring, whichever side this is.
    fn child_bell(&self) -> &AtomicU32 {
        let ring = if self.host { &self.tx } else { &self.rx };
        &ring.control().bell.0
    }

    /// Rings the other side's reader.
    fn ring_data(&self) {
        match &self.wake {
            Wake::Pipes { their_data, .. } => ring(their_data),
            Wake::HostLane(_) => ring_futex(self.child_bell()),
            Wake::ChildLane(bell) => ring_socket(bell),
        }
    }

    /// Rings the other side's writer.
    fn ring_room(&self) {
        match &self.wake {
            Wake::Pipes { their_room, .. } => ring(their_room),
            Wake::HostLane(_) => ring_futex(self.child_bell()),
            Wake::ChildLane(bell) => ring_socket(bell),
        }
    }

    /// Sleeps until this side's reader is rung (see [`sleep`]).
    fn sleep_data(&self, deadline: Option<Instant>) -> Result<(), ReadError> {
        self.socket_kept()?;
        match &self.wake {
            Wake::Pipes { my_data, .. } => sleep(my_data, self.watched(), deadline),
            Wake::HostLane(bell) => sleep_socket(bell, deadline),
            Wake::ChildLane(_) => sleep_futex(self.child_bell(), deadline),
        }
    }

    /// Sleeps until this side's writer is rung.
    fn sleep_room(&self, deadline: Option<Instant>) -> Result<(), ReadError> {
        self.socket_kept()?;
        match &self.wake {
            Wake::Pipes { my_room, .. } => sleep(my_room, self.watched(), deadline),
            Wake::HostLane(bell) => sleep_socket(bell, deadline),
            Wake::ChildLane(_) => sleep_futex(self.child_bell(), deadline),
        }
    }

    /// The channel's socket (for the handshake, before the rings carry the frames).
    pub(crate) fn socket(&self) -> &UnixStream {
        &self.socket
    }
}

impl Transport for Shared {
    fn send(&self, parts: &[&[u8]], timeout: Option<Duration>) -> io::Result<()> {
        self.send_for(parts, timeout.or(self.write_timeout))
    }

    fn recv(
        &self,
        to: &mut [std::mem::MaybeUninit<u8>],
        spin: Duration,
        deadline: Option<Instant>,
    ) -> Result<usize, ReadError> {
        Shared::recv(self, to.as_mut_ptr().cast(), to.len(), spin, deadline)
    }

    fn readable(&self) -> bool {
        Shared::readable(self)
    }

    fn wait_readable(&self, deadline: Option<Instant>) -> Result<(), ReadError> {
        self.wait_bytes(deadline)
    }

    fn waited(&self) -> Option<Duration> {
        Some(Shared::waited(self))
    }

    fn peer_awake(&self) -> bool {
        Shared::peer_awake(self)
    }
}

/// Counts a wake-up that found nothing (see [`MAX_EMPTY_WAKES`]): the channel's end
/// after too many in a row; after the first, a pause that coalesces further rings.
fn woken_for_nothing(in_a_row: &AtomicU32) -> Result<(), ReadError> {
    let n = in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
    if n >= MAX_EMPTY_WAKES {
        return Err(ReadError::Malformed(format!(
            "the other side rang its bell {n} times in a row without sending anything"
        )));
    }
    if n >= 2 {
        std::thread::sleep(COALESCE);
    }
    Ok(())
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in both processes.
fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes one `timespec` into a local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// Rings a bell (a pipe: a ring stays until taken, so none is lost).
fn ring(bell: &OwnedFd) {
    let one = 1u8;
    // SAFETY: writing 1 byte from a local to our end of the pipe. It never blocks: the
    // end is non-blocking and this process's alone; a full pipe (`EAGAIN`) is a bell
    // rung already.
    unsafe { libc::write(bell.as_raw_fd(), (&raw const one).cast(), 1) };
}

/// Rings a lane's bell (its socketpair): one byte, never blocking, a full socket being
/// a bell rung already, a peer gone being for the next wait to find (no `SIGPIPE`).
fn ring_socket(bell: &OwnedFd) {
    let one = 1u8;
    // SAFETY: sending 1 byte from a local on our end of the socketpair, without waiting.
    unsafe { libc::send(bell.as_raw_fd(), (&raw const one).cast(), 1, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
}

/// Rings a lane's child-side bell (see [`Wake::ChildLane`]): sets the word, then wakes
/// the one thread that may sleep on it (the lane's, in the child). Never blocks.
fn ring_futex(word: &AtomicU32) {
    word.store(1, Ordering::Release);
    // SAFETY: `FUTEX_WAKE` of a word in our shared mapping of the lane's memory, which
    // outlives the call (this `Shared` holds it); not private (`FUTEX_PRIVATE_FLAG`):
    // the sleeper is in another process, which maps the same memfd.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1, std::ptr::null::<libc::timespec>()) };
}

/// Sleeps on a lane's child-side bell until it is rung (and takes the ring: the word
/// back to 0), or `deadline` passes. A ring made before the sleep is found at once, as
/// a byte left in a socket would be: `FUTEX_WAIT` sleeps only while the word is
/// still 0, checked by the kernel against the waker's store.
fn sleep_futex(word: &AtomicU32, deadline: Option<Instant>) -> Result<(), ReadError> {
    loop {
        if word.swap(0, Ordering::Acquire) != 0 {
            return Ok(());
        }
        let left = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ReadError::TimedOut);
                }
                Some(libc::timespec {
                    tv_sec: left.as_secs() as libc::time_t,
                    tv_nsec: left.subsec_nanos() as libc::c_long,
                })
            }
            None => None,
        };
        let timeout = left.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `FUTEX_WAIT` on a word of our shared mapping (alive for the call), with
        // a relative timeout read from a local or none; not private: the waker is the
        // host's process. It returns at once if the word is no longer 0.
        let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, 0, timeout) };
        if r != 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                // (Rung meanwhile, a signal, or the timeout: the word and the deadline
                // are looked at again above.)
                Some(libc::EAGAIN | libc::EINTR | libc::ETIMEDOUT) => {}
                _ => return Err(ReadError::Io(err)),
            }
        }
    }
}

/// The host's side of a lane: sleeps until the child rings its socketpair (and takes its rings, a whole `DRAIN` at once), the
/// child's end closes (`Eof`), or `deadline` passes: one `recv` (that waits at
/// most [`LANE_TICK`]), and a `poll` first only in the last tick
/// before a deadline.
fn sleep_socket(bell: &OwnedFd, deadline: Option<Instant>) -> Result<(), ReadError> {
    let mut rings = [0u8; DRAIN];
    loop {
        // Within the last tick before the deadline: `poll` for it, then a `recv` that
        // cannot block (so the deadline is kept to the millisecond, not to the tick).
        let mut flags = 0;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::TimedOut);
            }
            if left < LANE_TICK {
                let mut fds = [libc::pollfd { fd: bell.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
                // SAFETY: one valid `pollfd`, for the duration of the call.
                let r = unsafe { libc::poll(fds.as_mut_ptr(), 1, super::poll_timeout(deadline)?) };
                if r < 0 {
                    let err = io::Error::last_os_error();
                    if err.kind() != io::ErrorKind::Interrupted {
                        return Err(ReadError::Io(err));
                    }
                }
                if r <= 0 {
                    continue; // (the deadline, or a signal: looked at again above)
                }
                flags = libc::MSG_DONTWAIT;
            }
        }
        // SAFETY: reading up to `DRAIN` bytes into a local from our end of the lane's
        // socketpair (which nobody else reads).
        let n = unsafe { libc::recv(bell.as_raw_fd(), rings.as_mut_ptr().cast(), DRAIN, flags) };
        match n {
            0 => return Err(ReadError::Eof),
            n if n > 0 => return Ok(()),
            _ => match io::Error::last_os_error().kind() {
                // (The tick, or a signal: the deadline is looked at again.)
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted | io::ErrorKind::TimedOut => {}
                _ => return Err(ReadError::Eof),
            },
        }
    }
}

/// Sleeps until `bell` rings (and takes its rings), the socket shows the other side's
/// end (`Eof`; bytes on it are a broken peer: after the handshake nothing is sent
/// there), or `deadline` passes.
fn sleep(bell: &OwnedFd, socket: RawFd, deadline: Option<Instant>) -> Result<(), ReadError> {
    loop {
        let timeout_ms = super::poll_timeout(deadline)?;
        let mut fds = [
            libc::pollfd { fd: bell.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: socket, events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: two valid `pollfd`s, for the duration of the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
        if r < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(ReadError::Io(err));
        }
        if fds[1].revents != 0 {
            let mut byte = 0u8;
            // SAFETY: one writable byte; the socket is the endpoint's, open.
            let n = unsafe { libc::recv(socket, (&raw mut byte).cast(), 1, libc::MSG_DONTWAIT | libc::MSG_PEEK) };
            return Err(match n {
                0 => ReadError::Eof,
                n if n > 0 => ReadError::Malformed("bytes on the socket after the handshake".to_owned()),
                _ => match io::Error::last_os_error().kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => continue,
                    _ => ReadError::Eof,
                },
            });
        }
        if fds[0].revents != 0 {
            // Every ring there (a whole pipe's worth at most): rings left over from a
            // burst then cost one wake-up for nothing, not one per `DRAIN` bytes.
            let mut rings = [0u8; DRAIN];
            for first in (0..PIPE_SIZE / DRAIN).map(|i| i == 0) {
                // SAFETY: reading up to `DRAIN` bytes into a local from our non-blocking
                // end of the pipe (which nobody else reads).
                let n = unsafe { libc::read(bell.as_raw_fd(), rings.as_mut_ptr().cast(), DRAIN) };
                // Nothing, and no writer left: the other side ended (its process holds
                // the only write end).
                if first && n == 0 {
                    return Err(ReadError::Eof);
                }
                if n < DRAIN as isize {
                    break;
                }
            }
            return Ok(());
        }
        if r == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(ReadError::TimedOut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn pair() -> (Shared, Shared) {
        let (memfd, bells, child_bells) = create().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let child_memfd = memfd.try_clone().unwrap();
        let host = Shared::new(memfd, bells, true, a, Some(Duration::from_secs(5))).unwrap();
        let child = Shared::new(child_memfd, child_bells, false, b, None).unwrap();
        (host, child)
    }

    fn recv_exactly(end: &Shared, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        let mut got = 0;
        while got < n {
            // SAFETY: `got` < `n`, the buffer's length: `n - got` writable bytes there.
            let to = unsafe { out.as_mut_ptr().add(got) };
            got += end.recv(to, n - got, Duration::ZERO, None).unwrap();
        }
        out
    }

    #[test]
    fn bytes_cross_both_ways_and_wrap_around() {
        let (host, child) = pair();
        // More than the capacity in all, in odd sizes, so the positions wrap.
        let mut total = 0;
        for round in 0..40u32 {
            let len = (round as usize * 7919 * 13) % (CAPACITY / 10) + 1;
            total += len;
            let msg: Vec<u8> = (0..len).map(|i| (i as u32 ^ round) as u8).collect();
            host.send(&[&msg[..3.min(msg.len())], &msg[3.min(msg.len())..]]).unwrap();
            assert_eq!(recv_exactly(&child, msg.len()), msg);
            child.send(&[&msg]).unwrap();
            assert_eq!(recv_exactly(&host, msg.len()), msg);
        }
        assert!(total > CAPACITY, "the positions wrapped: {total} bytes each way");
    }

    #[test]
    fn a_frame_larger_than_the_ring_streams_through_a_sleeping_reader() {
        let (host, child) = pair();
        let big: Vec<u8> = (0..3 * CAPACITY + 11).map(|i| (i % 253) as u8).collect();
        let sent = big.clone();
        let reader = std::thread::spawn(move || {
            // Sleeps first (nothing there yet), woken by the bell.
            recv_exactly(&child, sent.len()) == sent
        });
        std::thread::sleep(Duration::from_millis(20));
        host.send(&[&big]).unwrap();
        assert!(reader.join().unwrap(), "the bytes differ");
    }

    #[test]
    fn the_other_sides_end_wakes_a_sleeping_reader_and_a_deadline_holds() {
        let (host, child) = pair();
        let r = host.wait_bytes(Some(Instant::now() + Duration::from_millis(20)));
        assert!(matches!(r, Err(ReadError::TimedOut)), "{r:?}");
        let sleeper = std::thread::spawn(move || {
            let mut byte = 0u8;
            let r = host.recv(&raw mut byte, 1, Duration::ZERO, None);
            matches!(r, Err(ReadError::Eof))
        });
        std::thread::sleep(Duration::from_millis(20));
        drop(child);
        assert!(sleeper.join().unwrap(), "the end of the socket ends the wait");
    }

    /// A lane: the host woken through its socketpair, the child through a futex word
    /// (see `Wake::HostLane`).
    fn lane_pair() -> (Shared, Shared) {
        let (memfd, bell, child_bell) = create_lane().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let child_memfd = memfd.try_clone().unwrap();
        let host = Shared::lane(memfd, bell, true, a.into(), Some(Duration::from_secs(5))).unwrap();
        let child = Shared::lane(child_memfd, child_bell, false, b.into(), None).unwrap();
        (host, child)
    }

    /// Through a lane, bytes cross both ways (a frame larger than the ring too, the
    /// writer woken for room through the same bell), a sleeper is woken by the bell,
    /// and the other side's end (its end of the socketpair closed) ends a wait.
    #[test]
    fn a_lane_wakes_through_its_socketpair_and_learns_the_other_sides_end() {
        let (host, child) = lane_pair();
        let big: Vec<u8> = (0..3 * CAPACITY + 11).map(|i| (i % 251) as u8).collect();
        let sent = big.clone();
        let (host, child) = std::thread::scope(|s| {
            let reader = s.spawn(move || (recv_exactly(&child, sent.len()) == sent, child));
            std::thread::sleep(Duration::from_millis(20));
            host.send(&[&big]).unwrap();
            let (same, child) = reader.join().unwrap();
            assert!(same, "the bytes differ");
            (host, child)
        });
        child.send(&[b"back"]).unwrap();
        assert_eq!(recv_exactly(&host, 4), b"back");
        let r = host.wait_bytes(Some(Instant::now() + Duration::from_millis(20)));
        assert!(matches!(r, Err(ReadError::TimedOut)), "{r:?}");
        let sleeper = std::thread::spawn(move || {
            let mut byte = 0u8;
            matches!(host.recv(&raw mut byte, 1, Duration::ZERO, None), Err(ReadError::Eof))
        });
        std::thread::sleep(Duration::from_millis(20));
        drop(child);
        assert!(sleeper.join().unwrap(), "the end of the lane's bell ends the wait");
    }

    /// A lane's child sleeps on the futex word in the shared memory, not on the
    /// socketpair: the host's ring sets the word and sends nothing through the socket
    /// (a byte there would also wake the host's own `recv` for nothing when the child
    /// took it); a ring made before the child sleeps is found at once and taken; a
    /// sleeping child is woken by a ring from another thread; a deadline holds.
    #[test]
    fn a_lanes_child_is_rung_through_a_futex_word_not_the_socketpair() {
        let (host, child) = lane_pair();
        let Wake::ChildLane(childs_end) = &child.wake else { panic!("a lane wakes through its socketpair") };
        let queued = |end: &OwnedFd| {
            let mut byte = 0u8;
            // SAFETY: one writable byte of a local; a non-blocking peek.
            unsafe { libc::recv(end.as_raw_fd(), (&raw mut byte).cast(), 1, libc::MSG_DONTWAIT | libc::MSG_PEEK) }
        };
        host.ring_data();
        assert_eq!(child.child_bell().load(Ordering::Acquire), 1, "rung: the word is set");
        assert_eq!(queued(childs_end), -1, "nothing sent through the child's end of the socketpair");
        child.sleep_data(Some(Instant::now() + Duration::from_secs(60))).unwrap();
        assert_eq!(child.child_bell().load(Ordering::Acquire), 0, "the ring is taken by the sleep it ended");
        // The ring wakes a child asleep in `FUTEX_WAIT` (seen there by the kernel's
        // `wchan`), long before the sleep's deadline: the word alone, without the
        // wake, would be found only when the wait times out.
        let tid = std::sync::atomic::AtomicI32::new(0);
        std::thread::scope(|s| {
            let sleeper = s.spawn(|| {
                // SAFETY: `gettid` has no preconditions.
                tid.store(unsafe { libc::gettid() }, Ordering::Release);
                let began = Instant::now();
                (child.sleep_data(Some(began + Duration::from_secs(30))), began.elapsed())
            });
            let asleep = || {
                let tid = tid.load(Ordering::Acquire);
                tid != 0
                    && std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan"))
                        .is_ok_and(|w| w.contains("futex"))
            };
            let guard = Instant::now() + Duration::from_secs(20);
            while !asleep() && Instant::now() < guard {
                std::thread::sleep(Duration::from_millis(1));
            }
            host.ring_room();
            let (woken, after) = sleeper.join().unwrap();
            assert!(woken.is_ok(), "{woken:?}");
            assert!(after < Duration::from_secs(25), "woken by the ring, not by the deadline: {after:?}");
        });
        let r = child.sleep_data(Some(Instant::now() + Duration::from_millis(20)));
        assert!(matches!(r, Err(ReadError::TimedOut)), "{r:?}");
        // The other way, the host is still rung through the socketpair.
        child.ring_data();
        let Wake::HostLane(hosts_end) = &host.wake else { panic!("a lane wakes through its socketpair") };
        assert_eq!(queued(hosts_end), 1, "the child rings the host through the socketpair");
    }

    /// The child's side sleeps on its bell alone (not on the socket, which a sleeping
    /// thread would hold open) and learns the host's end from the bell: the host holds
    /// its only write end.
    #[test]
    fn the_childs_side_learns_the_hosts_end_from_its_bell() {
        let (host, child) = pair();
        assert_eq!(child.watched(), -1, "the child does not sleep on the socket");
        let sleeper = std::thread::spawn(move || {
            let mut byte = 0u8;
            matches!(child.recv(&raw mut byte, 1, Duration::ZERO, None), Err(ReadError::Eof))
        });
        std::thread::sleep(Duration::from_millis(20));
        drop(host);
        assert!(sleeper.join().unwrap(), "the end of the host's bell ends the wait");
    }

    /// A lane the child maps (and its plugin scribbles on) before the host does, as
    /// lanes started when calls first overlap are: the host's positions are its own
    /// (zero), not the ones written there, so its sends neither overflow (a panic in
    /// a debug build) nor start elsewhere; the child reads what the host sent.
    #[test]
    fn a_late_mapped_lanes_positions_are_the_hosts_own() {
        let (memfd, bell, child_bell) = create_lane().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let child_memfd = memfd.try_clone().unwrap();
        let child = Shared::lane(child_memfd, child_bell, false, b.into(), None).unwrap();
        child.rx.control().tail.0.store(u64::MAX - 10, Ordering::Release);
        child.rx.control().head.0.store(u64::MAX - 10, Ordering::Release);
        let host = Shared::lane(memfd, bell, true, a.into(), Some(Duration::from_secs(5))).unwrap();
        let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.send(&[&[7u8; 64]])));
        assert!(matches!(sent, Ok(Ok(()))), "the host's send: {sent:?}");
        assert_eq!(host.tx.control().tail.0.load(Ordering::Acquire), 64, "published from the host's own zero");
    }

    #[test]
    fn a_corrupt_position_is_refused_not_followed() {
        let (host, child) = pair();
        // The child's ring claims more bytes than it holds.
        child.tx.control().tail.0.store(CAPACITY as u64 + 1, Ordering::Release);
        let mut byte = 0u8;
        let r = host.recv(&raw mut byte, 1, Duration::ZERO, None);
        assert!(matches!(r, Err(ReadError::Malformed(_))), "{r:?}");
        // The host's ring claims to have been read far past what was written.
        child.rx.control().head.0.store(1 << 40, Ordering::Release);
        let r = host.send(&[b"x"]);
        assert!(r.is_err_and(|e| e.kind() == io::ErrorKind::InvalidData));
    }

    #[test]
    fn a_full_ring_waits_for_room_until_the_write_timeout() {
        let (memfd, bells, _child_bells) = create().unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        let host = Shared::new(memfd, bells, true, a, Some(Duration::from_millis(30))).unwrap();
        host.send(&[&vec![1u8; CAPACITY]]).unwrap();
        let r = host.send(&[b"one more"]);
        assert!(r.is_err_and(|e| e.kind() == io::ErrorKind::TimedOut));
    }

    /// A bell flood: the other side rings without end and sends nothing. The waiting
    /// side is woken for nothing, coalesces (after two in a row), and after
    /// `MAX_EMPTY_WAKES` in a row ends the wait as a broken channel. (The deadline is
    /// only a hang guard: without the limit, the wait would end there, `TimedOut`,
    /// which this test refuses.)
    #[test]
    fn a_bell_rung_for_nothing_ends_the_wait_after_a_bounded_number_of_wake_ups() {
        let (host, child) = pair();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    child.ring_data();
                    std::thread::yield_now();
                }
            });
            let guard = Some(Instant::now() + Duration::from_secs(60));
            let r = loop {
                match host.wait_bytes(guard) {
                    Ok(()) => assert!(!host.readable(), "no bytes were sent"),
                    e => break e,
                }
            };
            stop.store(true, Ordering::Relaxed);
            assert!(matches!(&r, Err(ReadError::Malformed(why)) if why.contains("without sending anything")), "{r:?}");
        });
    }

    /// An honest ring left over (the reader took the bytes before it slept) costs one
    /// wake-up for nothing, and bytes reset the count.
    #[test]
    fn a_ring_left_over_is_one_wake_up_and_bytes_reset_the_count() {
        let (host, child) = pair();
        for _ in 0..3 * MAX_EMPTY_WAKES {
            child.ring_data();
            host.wait_bytes(None).unwrap();
            child.send(&[b"x"]).unwrap();
            assert_eq!(recv_exactly(&host, 1), b"x");
        }
        assert!(host.empty_data.load(Ordering::Relaxed) <= 1);
    }

    /// The bell a side (of [`pair`]: pipes) sleeps on for bytes (`data`) or for room.
    fn my_bell(side: &Shared, data: bool) -> &OwnedFd {
        match (&side.wake, data) {
            (Wake::Pipes { my_data, .. }, true) => my_data,
            (Wake::Pipes { my_room, .. }, false) => my_room,
            (Wake::HostLane(_) | Wake::ChildLane(_), _) => panic!("`pair` makes pipes"),
        }
    }

    /// How many rings wait in `bell` (taken, as the sleeper's wake-up takes them).
    fn rings_in(bell: &OwnedFd) -> usize {
        let mut rings = [0u8; DRAIN];
        // SAFETY: reading up to `DRAIN` bytes into a local from a non-blocking pipe end.
        let n = unsafe { libc::read(bell.as_raw_fd(), rings.as_mut_ptr().cast(), DRAIN) };
        n.max(0) as usize
    }

    /// A large frame, published in chunks to a reader that sleeps, rings it once per
    /// sleep, not once per chunk; a new sleep is rung anew; a side that stores 1 (as
    /// sides did before sleep numbers) is rung at every chunk. The same for a writer
    /// waiting for room, rung by the reader's takes.
    #[test]
    fn a_sleeper_is_rung_once_per_sleep_however_many_chunks_come() {
        let (host, child) = pair();
        let frame = vec![3u8; 4 * CHUNK + 5];
        let sleeping = |nap: u32| child.rx.control().reader_sleeping.0.store(nap, Ordering::Relaxed);
        sleeping(7);
        host.send(&[&frame]).unwrap();
        assert_eq!(rings_in(my_bell(&child, true)), 1, "one sleep, one ring");
        assert_eq!(recv_exactly(&child, frame.len()), frame);
        let sent = |expected: usize, why: &str| {
            host.send(&[&frame]).unwrap();
            assert_eq!(rings_in(my_bell(&child, true)), expected, "{why}");
            assert_eq!(recv_exactly(&child, frame.len()), frame);
        };
        sent(0, "the same sleep: rung already");
        sleeping(8);
        sent(1, "a new sleep is rung");
        sleeping(EVERY_TIME);
        sent(6, "rung at each of 5 chunks and at the end");
        sleeping(0);
        sent(0, "awake: not rung");
        sleeping(8);
        sent(1, "a number rung for before, after an awake spell: rung anew (the counter wraps)");
        // The writer's side: each take rings a waiting writer once per sleep.
        let waiting = |nap: u32| host.tx.control().writer_waiting.0.store(nap, Ordering::Relaxed);
        host.send(&[&frame]).unwrap();
        waiting(9);
        for _ in 0..4 {
            drop(recv_exactly(&child, CHUNK));
        }
        assert_eq!(rings_in(my_bell(&host, false)), 1, "one wait for room, one ring");
        waiting(10);
        drop(recv_exactly(&child, 5));
        assert_eq!(rings_in(my_bell(&host, false)), 1, "a new wait is rung");
        // Sleep numbers are never 0 nor 1, and new each time.
        let naps: Vec<u32> = (0..3).map(|_| host.naps.next()).collect();
        assert!(naps.iter().all(|&n| n > EVERY_TIME) && naps[0] != naps[1] && naps[1] != naps[2], "{naps:?}");
        host.naps.mine.store(u32::MAX, Ordering::Relaxed);
        assert!(host.naps.next() > EVERY_TIME, "past the wrap too");
    }

    /// A bell that the other side filled (a pipe to the brim) is rung without blocking:
    /// a full bell is a rung bell.
    #[test]
    fn ringing_a_full_bell_does_not_block() {
        let (host, _child) = pair();
        for _ in 0..200_000 {
            host.ring_data();
        }
        host.send(&[b"still here"]).unwrap();
    }

    /// Both sides always sleep before they read (no spinning), so every message is a
    /// publish racing a sleep: through pipes and through a lane, each of thousands of
    /// round trips comes back, in order, long before a deadline a lost wake-up would
    /// run into.
    #[test]
    fn round_trips_between_sleeping_sides_lose_no_wake_up() {
        for (host, child) in [pair(), lane_pair()] {
            const ROUNDS: u64 = 20_000;
            let read = |end: &Shared, deadline: Option<Instant>| {
                let mut word = [0u8; 8];
                let mut got = 0;
                while got < 8 {
                    got += end.recv(word[got..].as_mut_ptr(), 8 - got, Duration::ZERO, deadline)?;
                }
                Ok::<u64, ReadError>(u64::from_le_bytes(word))
            };
            std::thread::scope(|s| {
                s.spawn(|| {
                    for i in 0..ROUNDS {
                        assert_eq!(read(&child, Some(Instant::now() + Duration::from_secs(60))).unwrap(), i);
                        child.send(&[&(i + 1).to_le_bytes()]).unwrap();
                    }
                });
                for i in 0..ROUNDS {
                    host.send(&[&i.to_le_bytes()]).unwrap();
                    let back = read(&host, Some(Instant::now() + Duration::from_secs(60)));
                    assert_eq!(back.unwrap_or_else(|e| panic!("round trip {i}: {e:?}")), i + 1);
                }
            });
        }
    }
}
