//! One end of the channel between a host and a plugin's process, the same on both
//! sides: requests go out with ids, and while a thread waits for its reply it also
//! serves the requests the other side makes *within* its call.
//!
//! Both sides make requests: the host calls the plugin (`Call`), and the plugin,
//! during a call, calls back into objects of the host (`Callback`); each request
//! names the request it was made within (its *parent*: the one the sending thread is
//! serving, 0 for none). A request whose parent is a call this side is waiting for is
//! handed to the thread waiting for it, which serves it and goes on waiting: so
//! host → plugin → host → plugin runs on one thread of each side, re-entrant, and can
//! never deadlock for want of a free thread. Requests with no such parent, releases
//! of objects and log records are the owner's to handle ([`Incoming`]).
//!
//! Reading: whichever waiting thread holds `reading` reads frames and hands each to
//! its thread; one call at a time thus reads its own reply, with no hand-off.

use std::cell::Cell;
use std::collections::VecDeque;

// Call and object ids are small integers this side makes: a fast hash will do.
use rustc_hash::{FxHashMap as HashMap, FxHashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use tomada::CallError;

use super::frame::{self, Header, Kind, ReadBuf, ReadError, Strip, Waiter};
use super::transport::{Link, Transport};

/// How many requests made within one call may wait for its thread.
const MAX_NESTED: usize = 64;

/// The bytes of a request's payload before its arguments: target (u64), parent (u64),
/// method (u32), and the time left to its caller's deadline when it was sent
/// (microseconds, u64; [`NO_DEADLINE`]: none). The time left, not an instant: the two
/// sides' clocks (another machine's, for a remote plugin) need not agree.
pub(crate) const REQUEST_HEAD: usize = 8 + 8 + 4 + 8;

/// Where the time left to a request's deadline is, in its payload (see [`REQUEST_HEAD`]).
pub(crate) const DEADLINE_AT: usize = 8 + 8 + 4;

/// The time left of a request sent without a deadline.
pub(crate) const NO_DEADLINE: u64 = u64::MAX;

/// The bytes of the time left to `deadline` (see [`REQUEST_HEAD`]), at most
/// `u64::MAX - 1` microseconds.
pub(crate) fn time_left(deadline: Option<Instant>) -> [u8; 8] {
    let micros = deadline.map_or(NO_DEADLINE, |d| {
        let left = d.saturating_duration_since(Instant::now()).as_micros();
        u64::try_from(left).unwrap_or(NO_DEADLINE - 1).min(NO_DEADLINE - 1)
    });
    micros.to_le_bytes()
}

/// The time a request's sender gave it, read from its time-left bytes.
pub(crate) fn read_time_left(bytes: [u8; 8]) -> Option<std::time::Duration> {
    match u64::from_le_bytes(bytes) {
        NO_DEADLINE => None,
        micros => Some(std::time::Duration::from_micros(micros)),
    }
}

thread_local! {
    /// The id of the other side's request this thread is serving (0: none): the
    /// parent of the requests it makes meanwhile.
    /// With the endpoint it came through (its address): a request made through
    /// another channel has no parent there.
    static SERVING: Cell<(usize, u64)> = const { Cell::new((0, 0)) };
}

/// The address of the endpoint whose request this thread serves (0: none).
pub(crate) fn serving() -> usize {
    SERVING.with(Cell::get).0
}

impl Endpoint {
    /// Runs `f` as the server of this endpoint's request `id` (see `SERVING`).
    fn serving<R>(&self, id: u64, f: impl FnOnce() -> R) -> R {
        struct Restore((usize, u64));
        impl Drop for Restore {
            fn drop(&mut self) {
                SERVING.with(|s| s.set(self.0));
            }
        }
        let _restore = Restore(SERVING.with(|s| s.replace((std::ptr::from_ref(self) as usize, id))));
        f()
    }

    /// The request this thread serves for this endpoint, if any (0: none).
    fn parent(&self) -> u64 {
        match SERVING.with(Cell::get) {
            (endpoint, id) if endpoint == std::ptr::from_ref(self) as usize => id,
            _ => 0,
        }
    }
}

/// A request from the other side.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) id: u64,
    /// The object called: 0 is the plugin's instance.
    pub(crate) target: u64,
    pub(crate) method: u32,
    /// The whole payload; the arguments start at [`REQUEST_HEAD`].
    pub(crate) payload: Vec<u8>,
}

impl Request {
    pub(crate) fn args(&self) -> &[u8] {
        &self.payload[REQUEST_HEAD..]
    }

    /// The time its sender gave it, left when it was sent (`None`: no deadline).
    #[allow(dead_code)] // (The plugin's side ends calls by the host's word, not its own.)
    pub(crate) fn time_left(&self) -> Option<std::time::Duration> {
        read_time_left(self.payload[DEADLINE_AT..REQUEST_HEAD].try_into().expect("8 bytes"))
    }
}

/// What a reader found that is not for a waiting thread.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A request made outside any call of this side.
    Request(Request),
    /// The other side dropped its handle to our object `id`.
    Release(u64),
    /// A log record (child to host).
    Log(Vec<u8>),
    /// The host dropped its async call `id` (host to child).
    Cancel(u64),
}

/// Why waiting stopped without a reply.
#[derive(Debug)]
pub(crate) enum WaitError {
    /// This call found the channel broken (or its deadline passed).
    Fault(ReadError),
    /// The channel had ended: this call's error.
    Ended(CallError),
}

/// The calls in flight on this end, and whether it ended.
#[derive(Default)]
pub(crate) struct Flight {
    waiting: HashMap<u64, Slot>,
    /// A call found the channel failed and is ending it.
    pub(crate) ending: bool,
    /// It ended: the error of every call still in flight.
    pub(crate) ended: Option<CallError>,
    /// Async calls dropped before their answer: the answer, when it comes, is dropped.
    cancelled: FxHashSet<u64>,
}

impl Slot {
    /// Wakes its thread; returns its future's waker, to wake once the lock on the
    /// calls is let go (a waker may run anything, even a poll of this call).
    #[must_use]
    fn wake(&mut self) -> Option<std::task::Waker> {
        if let Some(thread) = &self.thread {
            thread.unpark();
        }
        self.waker.take()
    }
}

/// One call in flight.
struct Slot {
    /// The thread waiting for it; `None` for an async call, whose future is woken.
    thread: Option<Thread>,
    waker: Option<std::task::Waker>,
    /// An async call's deadline (a blocked thread keeps its own), and its error once
    /// past it.
    deadline: Option<Instant>,
    overdue: Option<CallError>,
    /// Its reply (status and body), once read by another thread.
    answer: Option<(u8, Vec<u8>)>,
    /// Requests made within it, for its thread to serve.
    requests: VecDeque<Request>,
    /// Its answer is a byte string's, read without the length that starts it (see
    /// [`frame::Strip`]).
    strip: bool,
}

/// The status an answer is given, on this side, whose byte string's length lied
/// (see [`frame::Strip::Refused`]): no status that comes from the other side (those
/// are refused past `Status::CANCELLED`).
pub(crate) const LENGTH_REFUSED: u8 = u8::MAX;

/// What a waiting thread does with what it is handed.
pub(crate) trait Handler {
    /// Serves a request made within this thread's call; returns status and body.
    fn serve(&self, request: Request) -> (u8, tomada::ffi::RVec);
    /// Handles what is not for a waiting thread.
    fn incoming(&self, incoming: Incoming);
    /// A thread wanted the reading while this one held it, and did not wait
    /// ([`Endpoint::try_reading`], the plugin's pool), or this thread, waiting for an
    /// answer, is about to serve what it read: look for frames left unread.
    fn reading_wanted(&self) {}
}

/// One end of the channel.
pub(crate) struct Endpoint {
    /// The transport: the socket, or the shared rings over it.
    pub(crate) link: Link,
    /// The kind of this side's requests, and of the replies to them.
    request: Kind,
    reply: Kind,
    next_id: AtomicU64,
    /// Held while one frame is written.
    writing: Mutex<()>,
    /// Held by the thread that reads, with what it received past the last frame.
    pub(crate) reading: Mutex<ReadBuf>,
    /// A thread wanted the reading while another held it, and did not wait for it
    /// ([`Endpoint::try_reading`]): whoever lets go of it next looks for frames left
    /// unread ([`Endpoint::let_go`]).
    wanted: AtomicBool,
    flight: Mutex<Flight>,
    /// How long a reader spins for a frame before it blocks.
    waiter: Waiter,
    /// Requests of the other side being served on this side now: while there are,
    /// readers do not spin (the CPUs are better left to them).
    serving: std::sync::atomic::AtomicUsize,
    /// For a lane: whether its channel's other lanes are quiet (see
    /// [`Endpoint::crowd`]); while they are not, its reader does not spin either.
    crowd: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    max: usize,
}

/// What one read brought, for the thread that read it.
pub(crate) enum Read {
    /// Its reply.
    Answer((u8, Vec<u8>)),
    /// A request made within its call: to serve.
    Request(Request),
    /// Something for the owner (also what a reader waiting for nothing gets).
    Incoming(Incoming),
    /// Something for another thread, handed over; or this thread's reply or request,
    /// handed over by another reader meanwhile.
    Handed,
}

impl Endpoint {
    /// The host's end (it sends `Call`s) or the plugin's (it sends `Callback`s).
    pub(crate) fn new(link: Link, host: bool, waiter: Waiter, max: usize) -> Endpoint {
        let (request, reply) = if host { (Kind::Call, Kind::Reply) } else { (Kind::Callback, Kind::CallbackReply) };
        Endpoint {
            link,
            request,
            reply,
            next_id: AtomicU64::new(1),
            writing: Mutex::new(()),
            reading: Mutex::new(ReadBuf::new()),
            wanted: AtomicBool::new(false),
            flight: Mutex::default(),
            waiter,
            serving: std::sync::atomic::AtomicUsize::new(0),
            crowd: None,
            max,
        }
    }

    /// This endpoint, a lane among others: its reader spins for a frame only while
    /// `quiet` says the others are (no call on them). Lanes are for calls from several
    /// threads at once, as many as there are lanes, which may be more than the CPUs:
    /// a reader that spins then takes the CPU from the very thread that would answer.
    #[cfg_attr(not(unix), allow(dead_code))] // (no lanes on Windows)
    pub(crate) fn crowd(mut self, quiet: impl Fn() -> bool + Send + Sync + 'static) -> Endpoint {
        self.crowd = Some(Box::new(quiet));
        self
    }

    /// This endpoint, numbering its requests from `first` on: the lanes of one
    /// channel number theirs apart, so the other side's tables by request id (the
    /// calls it runs, for a cancel) never mix two of them up.
    #[cfg_attr(not(unix), allow(dead_code))] // (no lanes on Windows)
    pub(crate) fn first_id(self, first: u64) -> Endpoint {
        self.next_id.store(first, Ordering::Relaxed);
        self
    }

    pub(crate) fn flight(&self) -> MutexGuard<'_, Flight> {
        self.flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reading, for a thread that must not wait behind its holder (who may be
    /// blocked in a read for a frame that is not there yet): `None` if it is taken, and
    /// then the holder learns, when it lets go ([`Endpoint::let_go`]), that a thread
    /// wanted it, and looks for what that thread would have read.
    ///
    /// No wanting is missed, whatever the interleaving (the Dekker pattern: each side
    /// writes its own variable, then reads the other's). This thread sets `wanted`,
    /// then tries the lock again; a holder unlocks, then takes `wanted` (`let_go`).
    /// Both are `swap`s (read-modify-writes, `SeqCst`), and a read-modify-write always
    /// reads the last value in `wanted`'s modification order. So either the holder's
    /// swap comes after this thread's and reads `true`; or it comes before, and this
    /// thread's swap reads from it (an acquire reading a release), so the unlock, made
    /// before that swap, *happens before* this thread's second try, which then finds
    /// the lock free, or taken by a later holder, whose own swap is then the later one
    /// (the same argument, one holder on). Plain stores and loads (even `SeqCst` ones)
    /// would not do: each side's write could still sit unseen while it reads the
    /// other's variable (store buffering), and both would miss.
    pub(crate) fn try_reading(&self) -> Option<MutexGuard<'_, ReadBuf>> {
        let take = || match self.reading.try_lock() {
            Ok(reading) => Some(reading),
            // (Frames are read whole or the channel ends: nothing is half-read.)
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        take().or_else(|| {
            self.wanted.swap(true, Ordering::SeqCst);
            take()
        })
    }

    /// Lets go of the reading; whether a thread wanted it meanwhile and did not wait
    /// ([`Endpoint::try_reading`]): then the caller looks for the frames that thread
    /// would have read (on the plugin's side: [`Handler::reading_wanted`]). On a side
    /// whose threads use `try_reading` (the plugin's), every holder lets go through
    /// here, or a wanting could be missed.
    #[must_use]
    pub(crate) fn let_go(&self, reading: MutexGuard<'_, ReadBuf>) -> bool {
        drop(reading);
        self.wanted.swap(false, Ordering::SeqCst)
    }

    /// Writes one frame.
    pub(crate) fn write(&self, header: Header, parts: &[&[u8]]) -> std::io::Result<()> {
        let _writing = Self::lock(&self.writing);
        frame::write(&self.link, header, parts)
    }

    /// Enters a new call in flight; returns its id and how many others are (cancelled
    /// ones not yet answered included), or `None` if the channel is ending.
    pub(crate) fn register(&self) -> Option<(u64, usize)> {
        self.enter(Some(std::thread::current()), None, None, false)
    }

    /// How many calls are in flight now besides one of them that is (counted as
    /// [`Endpoint::register`] counts them).
    pub(crate) fn others_in_flight(&self) -> usize {
        let flight = self.flight();
        (flight.waiting.len() + flight.cancelled.len()).saturating_sub(1)
    }

    /// [`Endpoint::register`] for a call whose answer is a byte string's (see
    /// [`frame::Strip`]): a good answer comes without its length, one whose length
    /// lied with status [`LENGTH_REFUSED`].
    pub(crate) fn register_bytes(&self) -> Option<(u64, usize)> {
        self.enter(Some(std::thread::current()), None, None, true)
    }

    /// Enters a new async call in flight, woken through `waker`; as [`Endpoint::register`].
    pub(crate) fn register_async(&self, waker: std::task::Waker, deadline: Instant) -> Option<(u64, usize)> {
        self.enter(None, Some(waker), Some(deadline), false)
    }

    /// Enters a call waited for by `thread`, or by a future through `waker`.
    fn enter(
        &self,
        thread: Option<Thread>,
        waker: Option<std::task::Waker>,
        deadline: Option<Instant>,
        strip: bool,
    ) -> Option<(u64, usize)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut flight = self.flight();
        if flight.ending || flight.ended.is_some() {
            return None;
        }
        // A cancelled call not yet answered still holds a thread on the other side
        // (until it hears of the cancel): a new call must not count on that one.
        let others = flight.waiting.len() + flight.cancelled.len();
        let slot = Slot { thread, waker, deadline, overdue: None, answer: None, requests: VecDeque::new(), strip };
        flight.waiting.insert(id, slot);
        Some((id, others))
    }

    /// An async call's answer, if it came (or the channel's end); else keeps `waker`
    /// to wake when it comes.
    pub(crate) fn poll_async(&self, id: u64, waker: &std::task::Waker) -> Option<Result<(u8, Vec<u8>), CallError>> {
        let mut flight = self.flight();
        let ended = flight.ended.clone();
        let Some(slot) = flight.waiting.get_mut(&id) else {
            return Some(Err(ended.unwrap_or_else(|| CallError::Channel { message: "the call is gone".to_owned() })));
        };
        if let Some(answer) = slot.answer.take() {
            flight.waiting.remove(&id);
            return Some(Ok(answer));
        }
        if let Some(e) = slot.overdue.take().or(ended) {
            flight.waiting.remove(&id);
            return Some(Err(e));
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            slot.waker = Some(waker.clone());
        }
        None
    }

    /// Drops async call `id` before its answer: tells the other side to stop it, and
    /// drops the answer if it still comes.
    pub(crate) fn cancel(&self, id: u64) {
        let tell = {
            let mut flight = self.flight();
            match flight.waiting.remove(&id) {
                Some(slot) if slot.answer.is_none() && flight.ended.is_none() => {
                    flight.cancelled.insert(id);
                    true
                }
                _ => false,
            }
        };
        if tell {
            let _ = self.write(Header { kind: Kind::Cancel, status: 0, id }, &[]);
        }
    }

    /// Whether a thread waits here for a blocking call of its own (it reads for itself,
    /// and for the others, while it does).
    pub(crate) fn awaits_blocking(&self) -> bool {
        self.flight().waiting.values().any(|s| s.thread.is_some())
    }

    /// Whether a thread waiting here for a blocking call of its own is free to read:
    /// more of them wait than threads serve requests here (a thread serving a
    /// callback within its call reads nothing until the callback returns, and the
    /// callback may wait for what another frame brings). Counted loosely: a thread
    /// serving outside any call counts too, which only makes this `false` sooner.
    pub(crate) fn blocking_reader(&self) -> bool {
        let waiting = self.flight().waiting.values().filter(|s| s.thread.is_some()).count();
        waiting > self.serving.load(Ordering::SeqCst)
    }

    /// Whether an async call is in flight, or a cancelled one's answer is still to
    /// come: someone must read for them.
    pub(crate) fn awaits_async(&self) -> bool {
        let flight = self.flight();
        flight.ended.is_none() && (!flight.cancelled.is_empty() || flight.waiting.values().any(|s| s.thread.is_none()))
    }

    /// Marks the async calls past their deadline to fail with `error` (they are woken
    /// when the channel is closed, which the caller does next, so no new call takes
    /// this channel meanwhile); whether there were any.
    pub(crate) fn fail_overdue(&self, now: Instant, error: &CallError) -> bool {
        let mut any = false;
        for slot in self.flight().waiting.values_mut() {
            if slot.deadline.is_some_and(|d| now >= d) && slot.answer.is_none() {
                slot.overdue = Some(error.clone());
                any = true;
            }
        }
        any
    }

    /// Takes call `id` out of flight.
    pub(crate) fn unregister(&self, id: u64) {
        self.flight().waiting.remove(&id);
    }

    /// Sends request `id` (registered) for `target`'s method `method`, whose caller
    /// gives up at `deadline` (the time left to it travels with the request).
    pub(crate) fn send(
        &self,
        id: u64,
        target: u64,
        method: u32,
        args: &[u8],
        deadline: Option<Instant>,
    ) -> std::io::Result<()> {
        self.send_within(id, target, self.parent(), method, args, deadline)
    }

    /// [`Endpoint::send`], giving up at `by` (waiting for another writer, or for
    /// room): for a side that ends the channel if the peer takes nothing by then,
    /// and must not wait for it until the call's `deadline` (which the request
    /// still carries). A frame cut short by `by` leaves the channel unusable: the
    /// caller ends it.
    pub(crate) fn send_by(
        &self,
        id: u64,
        target: u64,
        method: u32,
        args: &[u8],
        deadline: Option<Instant>,
        by: Instant,
    ) -> std::io::Result<()> {
        let writing = loop {
            match self.writing.try_lock() {
                Ok(w) => break w,
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                // Another writer waits for room (up to its deadline): not this long.
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < by => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "another writer held the channel"));
                }
            }
        };
        let head = self.request_head(target, self.parent(), method, deadline);
        let left = by.saturating_duration_since(Instant::now());
        let sent =
            frame::write_for(&self.link, Header { kind: self.request, status: 0, id }, &[&head, args], Some(left));
        drop(writing);
        sent
    }

    /// [`Endpoint::send`] of arguments in parts, sent as they lie, in one frame.
    pub(crate) fn send_parts(
        &self,
        id: u64,
        target: u64,
        method: u32,
        args: &[&[u8]],
        deadline: Option<Instant>,
    ) -> std::io::Result<()> {
        let head = self.request_head(target, self.parent(), method, deadline);
        let parts: Vec<&[u8]> = std::iter::once(&head[..]).chain(args.iter().copied()).collect();
        self.write(Header { kind: self.request, status: 0, id }, &parts)
    }

    /// A request's payload before its arguments (see [`REQUEST_HEAD`]).
    fn request_head(&self, target: u64, parent: u64, method: u32, deadline: Option<Instant>) -> [u8; REQUEST_HEAD] {
        let mut head = [0u8; REQUEST_HEAD];
        head[..8].copy_from_slice(&target.to_le_bytes());
        head[8..16].copy_from_slice(&parent.to_le_bytes());
        head[16..DEADLINE_AT].copy_from_slice(&method.to_le_bytes());
        head[DEADLINE_AT..].copy_from_slice(&time_left(deadline));
        head
    }

    /// [`Endpoint::send`], made within request `parent` of the other side (0: none).
    pub(crate) fn send_within(
        &self,
        id: u64,
        target: u64,
        parent: u64,
        method: u32,
        args: &[u8],
        deadline: Option<Instant>,
    ) -> std::io::Result<()> {
        let head = self.request_head(target, parent, method, deadline);
        self.write(Header { kind: self.request, status: 0, id }, &[&head, args])
    }

    /// Sends the reply to the other side's request `id`.
    pub(crate) fn answer(&self, id: u64, status: u8, body: &[u8]) -> std::io::Result<()> {
        self.answer_parts(id, status, &[body])
    }

    /// [`Endpoint::answer`] of a body in parts, sent as they lie, in one frame.
    fn answer_parts(&self, id: u64, status: u8, parts: &[&[u8]]) -> std::io::Result<()> {
        let kind = if self.request == Kind::Call { Kind::CallbackReply } else { Kind::Reply };
        self.write(Header { kind, status, id }, parts)
    }

    /// Waits for the reply to call `id` until `deadline`, serving the requests made
    /// within it meanwhile: reads frames itself if no other thread does, else sleeps
    /// until something is handed over.
    ///
    /// `spare` is a buffer to read into first (the call's own arguments, sent): a
    /// large answer then reuses memory already in use, not fresh pages.
    pub(crate) fn wait(
        &self,
        id: u64,
        deadline: Option<Instant>,
        handler: &dyn Handler,
        mut spare: Vec<u8>,
    ) -> Result<(u8, Vec<u8>), WaitError> {
        loop {
            let request = {
                let mut flight = self.flight();
                let ended = flight.ended.clone();
                let slot = flight.waiting.get_mut(&id);
                match slot {
                    Some(slot) if slot.answer.is_some() => {
                        let answer = slot.answer.take().expect("checked");
                        flight.waiting.remove(&id);
                        return Ok(answer);
                    }
                    Some(slot) if !slot.requests.is_empty() => slot.requests.pop_front(),
                    _ => {
                        if let Some(e) = ended {
                            flight.waiting.remove(&id);
                            return Err(WaitError::Ended(e));
                        }
                        None
                    }
                }
            };
            if let Some(request) = request {
                self.serve(request, handler);
                continue;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(WaitError::Fault(ReadError::TimedOut));
            }
            match self.reading.try_lock() {
                Ok(mut reading) => {
                    let read = self.read_for(&mut reading, Some(id), deadline, &mut spare);
                    // About to serve what it read (a request, a release whose drop runs
                    // the other side's code): frames that came in the same `recv`, or
                    // that a thread wanted to read meanwhile, are another thread's to
                    // read (on the plugin's side: a pool thread nudged). A call sent
                    // while this thread slept, behind the one it serves, found it
                    // asleep and nudged no one.
                    let serves = matches!(read, Ok(Read::Request(_) | Read::Incoming(_)));
                    if self.let_go(reading) || serves {
                        handler.reading_wanted();
                    }
                    self.pass_reading_on(id);
                    match read {
                        Ok(Read::Answer(answer)) => return Ok(answer),
                        Ok(Read::Request(request)) => self.serve(request, handler),
                        Ok(Read::Incoming(incoming)) => handler.incoming(incoming),
                        Ok(Read::Handed) => {}
                        Err(e) => return Err(WaitError::Fault(e)),
                    }
                }
                Err(std::sync::TryLockError::Poisoned(p)) => {
                    // A reader panicked (host code): nothing is half-read, as frames
                    // are read whole or the channel ends.
                    drop(p.into_inner());
                    self.reading.clear_poison();
                }
                // Woken when something is handed over, or when the reader lets go
                // (`pass_reading_on`); the timeout is only a backstop.
                Err(std::sync::TryLockError::WouldBlock) => {
                    let backstop = Duration::from_millis(50);
                    std::thread::park_timeout(deadline.map_or(backstop, |d| (d - now).min(backstop)));
                }
            }
        }
    }

    /// Serves a request made within one of this side's calls, and answers it.
    pub(crate) fn serve(&self, request: Request, handler: &dyn Handler) {
        let id = request.id;
        self.serving.fetch_add(1, Ordering::SeqCst);
        let (status, body) = self.serving(id, || handler.serve(request));
        self.serving.fetch_sub(1, Ordering::SeqCst);
        let body = body.as_slice();
        // A byte string's bytes alone (the plugin's own buffer, see
        // `tomada::descriptor::flags::BYTES_ALONE`): their byte form is their length,
        // then them, sent as they lie.
        let bytes_alone = status == tomada::ffi::Status::BYTES.0;
        let length = (body.len() as u64).to_le_bytes();
        let (status, length): (u8, &[u8]) =
            if bytes_alone { (tomada::ffi::Status::OK.0, &length) } else { (status, &[]) };
        let too_large;
        let (status, length, body) = if length.len() + body.len() + frame::HEADER_REST > self.max {
            too_large =
                format!("the answer takes {} bytes, over the limit of {} bytes", length.len() + body.len(), self.max);
            (tomada::ffi::Status::MALFORMED.0, &[][..], too_large.as_bytes())
        } else {
            (status, length, body)
        };
        // A failed write is the channel's end, which the next read reports.
        let _ = self.answer_parts(id, status, &[length, body]);
    }

    /// With `reading` held: reads frames until one is for this thread (`mine`, the
    /// call it waits for, if any), or another reader handed it what it waits for.
    pub(crate) fn read_for(
        &self,
        buf: &mut ReadBuf,
        mine: Option<u64>,
        deadline: Option<Instant>,
        spare: &mut Vec<u8>,
    ) -> Result<Read, ReadError> {
        let mut payload = std::mem::take(spare);
        loop {
            let alone = {
                let flight = self.flight();
                if let Some(id) = mine {
                    let slot = flight.waiting.get(&id);
                    if flight.ended.is_some() || slot.is_none_or(|s| s.answer.is_some() || !s.requests.is_empty()) {
                        return Ok(Read::Handed);
                    }
                }
                // (Not counting the request this thread itself is serving, if any: a
                // callback's answer comes as fast as a call's.)
                let own = usize::from(self.parent() != 0);
                flight.waiting.len() <= 1
                    && self.serving.load(Ordering::Relaxed) <= own
                    && self.crowd.as_ref().is_none_or(|quiet| quiet())
            };
            let strip = |h: &Header| self.strips(h);
            let (header, strip) =
                frame::read_buffered(&self.link, buf, &self.waiter, alone, deadline, self.max, &mut payload, strip)?;
            match self.route(header, std::mem::take(&mut payload), mine, strip)? {
                Read::Handed => {}
                read => return Ok(read),
            }
        }
    }

    /// With `reading` held, for a thread that waits for no call of its own (the reader
    /// of async calls): waits up to `tick` for a frame to begin, then reads it whole and
    /// hands it to its thread; `Ok(None)` if none began.
    pub(crate) fn read_one(&self, buf: &mut ReadBuf, tick: Duration) -> Result<Option<Read>, ReadError> {
        if !buf.has_bytes() {
            match self.link.wait_readable(Some(Instant::now() + tick)) {
                Ok(()) => {}
                Err(ReadError::TimedOut) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let mut payload = Vec::new();
        let strip = |h: &Header| self.strips(h);
        let (header, strip) =
            frame::read_buffered(&self.link, buf, &self.waiter, false, None, self.max, &mut payload, strip)?;
        self.route(header, payload, None, strip).map(Some)
    }

    /// Whether the frame that begins with `header` is the good answer to a call whose
    /// answer is a byte string's: read without the length that starts it.
    fn strips(&self, header: &Header) -> bool {
        header.kind == self.reply
            && header.status == tomada::ffi::Status::OK.0
            && self.flight().waiting.get(&header.id).is_some_and(|s| s.strip)
    }

    /// Hands a frame to its thread, or returns it if it is for this one.
    fn route(&self, header: Header, payload: Vec<u8>, mine: Option<u64>, strip: Strip) -> Result<Read, ReadError> {
        let kind = header.kind;
        if kind == self.reply {
            // A reply is a value, a caught panic, or undecodable arguments; any other
            // status is a forgery (crashes and deadlines are ours to say).
            // (Or a cancelled async call's.)
            if header.status > tomada::ffi::Status::CANCELLED.0 {
                return Err(ReadError::Malformed(format!("a reply with status {}", header.status)));
            }
            // (A byte string whose length lied: refused, for its caller to report.)
            let (status, payload) =
                if strip == Strip::Refused { (LENGTH_REFUSED, Vec::new()) } else { (header.status, payload) };
            if Some(header.id) == mine {
                self.flight().waiting.remove(&header.id);
                return Ok(Read::Answer((status, payload)));
            }
            let waker = {
                let mut flight = self.flight();
                if flight.cancelled.remove(&header.id) {
                    return Ok(Read::Handed);
                }
                let Some(slot) = flight.waiting.get_mut(&header.id) else {
                    return Err(ReadError::Malformed(format!(
                        "an answer to call {}, which is not in flight",
                        header.id
                    )));
                };
                slot.answer = Some((status, payload));
                slot.wake()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
            return Ok(Read::Handed);
        }
        let theirs = if self.request == Kind::Call { Kind::Callback } else { Kind::Call };
        if kind == theirs {
            if payload.len() < REQUEST_HEAD {
                return Err(ReadError::Malformed("a request without its head".to_owned()));
            }
            let word = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
            let (target, parent) = (word(0), word(8));
            let method = u32::from_le_bytes(payload[16..20].try_into().expect("4 bytes"));
            let request = Request { id: header.id, target, method, payload };
            if parent != 0 {
                if Some(parent) == mine {
                    return Ok(Read::Request(request));
                }
                // (Made within an async call: no thread waits there to serve it.)
                let mut flight = self.flight();
                if let Some(slot) = flight.waiting.get_mut(&parent).filter(|s| s.thread.is_some()) {
                    // One thread serves them in turn; a plugin does not make many at
                    // once within one call, so a flood is refused, not queued.
                    if slot.requests.len() >= MAX_NESTED {
                        drop(flight);
                        let message = b"too many requests within one call are waiting";
                        let _ = self.answer(request.id, tomada::ffi::Status::MALFORMED.0, message);
                        return Ok(Read::Handed);
                    }
                    slot.requests.push_back(request);
                    let _ = slot.wake(); // a thread's slot: no waker
                    return Ok(Read::Handed);
                }
            }
            return Ok(Read::Incoming(Incoming::Request(request)));
        }
        match kind {
            Kind::Release => {
                let id = payload.get(..8).ok_or_else(|| ReadError::Malformed("a release without its id".to_owned()))?;
                Ok(Read::Incoming(Incoming::Release(u64::from_le_bytes(id.try_into().expect("8 bytes")))))
            }
            Kind::Log if self.request == Kind::Call => Ok(Read::Incoming(Incoming::Log(payload))),
            Kind::Cancel if self.request == Kind::Callback => Ok(Read::Incoming(Incoming::Cancel(header.id))),
            Kind::Ended if self.request == Kind::Call => {
                let (signal, exit_code, timed_out) = frame::read_ended(&payload)?;
                Err(ReadError::Ended { signal, exit_code, timed_out })
            }
            other => Err(ReadError::Malformed(format!("an unexpected {other:?} frame"))),
        }
    }

    /// After a reader let go of `reading`: wakes a thread still waiting (other than
    /// `me`; 0 for none), to read.
    pub(crate) fn pass_reading_on(&self, me: u64) {
        let flight = self.flight();
        let idle = |(id, s): &(&u64, &Slot)| **id != me && s.answer.is_none() && s.requests.is_empty();
        if let Some(thread) =
            flight.waiting.iter().find(|e| e.1.thread.is_some() && idle(e)).and_then(|e| e.1.thread.as_ref())
        {
            thread.unpark();
        }
    }

    /// Ends every call in flight with `error` and wakes their threads.
    pub(crate) fn close(&self, error: CallError) {
        let mut flight = self.flight();
        flight.ended = Some(error);
        flight.cancelled.clear();
        let wakers: Vec<_> = flight.waiting.values_mut().filter_map(Slot::wake).collect();
        drop(flight);
        wakers.into_iter().for_each(std::task::Waker::wake);
    }

    /// Tells the other side its object `id` is no longer used (a failure is the
    /// channel's end, which matters no more to the object).
    pub(crate) fn release(&self, id: u64) {
        let _ = self.write(Header { kind: Kind::Release, status: 0, id: 0 }, &[&id.to_le_bytes()]);
    }
}

/// Objects this side gave the other, by number (see [`tomada::remote::Table`]: a lent
/// object's methods never run after its call returned).
pub(crate) type Objects = tomada::remote::Table;

/// The answer to a call of an object that is not (or no longer) there.
pub(crate) fn no_object(id: u64) -> (u8, tomada::ffi::RVec) {
    let message = format!("no object number {id} here: it was released, or belonged to an earlier process");
    (tomada::ffi::Status::MALFORMED.0, tomada::ffi::RVec::from_vec(message.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolate::transport::memory::Memory;
    use tomada::ffi::RVec;

    const MAX: usize = 1 << 20;
    /// A hang guard only: every wait here ends long before, or the test fails.
    const GUARD: Duration = Duration::from_secs(60);

    fn end(transport: Memory, host: bool) -> Endpoint {
        Endpoint::new(Link::Other(Box::new(transport)), host, Waiter::blocking(), MAX)
    }

    /// The host's end and the plugin's, over an in-memory transport.
    fn pair() -> (Endpoint, Endpoint) {
        let (a, b) = Memory::pair();
        (end(a, true), end(b, false))
    }

    /// Answers each request made within a call with its arguments reversed, and keeps
    /// what it served and what is not for a waiting thread.
    #[derive(Default)]
    struct Reverse {
        served: Mutex<Vec<(u64, u32, Vec<u8>)>>,
        incoming: Mutex<Vec<Incoming>>,
    }

    impl Handler for Reverse {
        fn serve(&self, request: Request) -> (u8, RVec) {
            let mut body = request.args().to_vec();
            Endpoint::lock(&self.served).push((request.target, request.method, body.clone()));
            body.reverse();
            (tomada::ffi::Status::OK.0, RVec::from_vec(body))
        }

        fn incoming(&self, incoming: Incoming) {
            Endpoint::lock(&self.incoming).push(incoming);
        }
    }

    #[test]
    fn a_thread_that_finds_the_reading_taken_is_told_to_its_holder_once() {
        let (_host, child) = pair();
        let reading = Endpoint::lock(&child.reading);
        let got = std::thread::scope(|s| s.spawn(|| child.try_reading().is_some()).join().unwrap());
        assert!(!got, "the reading was held");
        assert!(child.let_go(reading), "its holder learns, as it lets go, that a thread wanted it");
        let reading = child.try_reading().expect("free now");
        assert!(!child.let_go(reading), "told once only");
    }

    /// The wanting of `try_reading` against the holder's `let_go`, raced again and
    /// again: a thread posts work (a frame, in the runner) and tries the reading while
    /// its holder takes what was posted and lets go. Whatever the interleaving, the
    /// post is taken before both are done: by the poster if it got the reading, or by
    /// the holder, told it was wanted. (A holder that took before the post, and a
    /// poster that gave up before the holder let go, without a word: the post left
    /// untaken, a lost wake-up.)
    #[test]
    fn no_wanting_of_the_reading_is_lost_however_the_threads_interleave() {
        const ROUNDS: u64 = 20_000;
        let (_host, child) = pair();
        let posted = AtomicU64::new(0);
        // Changed with the reading held only.
        let taken = AtomicU64::new(0);
        let take = || taken.store(posted.load(Ordering::SeqCst), Ordering::SeqCst);
        // Both threads meet before and after each round, spinning (a barrier that
        // sleeps wakes the second thread so late that the first is always done).
        let arrived = AtomicU64::new(0);
        let both = |meeting: &mut u64| {
            *meeting += 1;
            arrived.fetch_add(1, Ordering::SeqCst);
            let mut spins = 0u32;
            while arrived.load(Ordering::SeqCst) < 2 * *meeting {
                spins += 1;
                if spins.is_multiple_of(1024) {
                    std::thread::yield_now(); // (the other thread may have no CPU)
                }
                std::hint::spin_loop();
            }
        };
        let mut left = 0;
        // Each side dawdles a different while each round (the holder between its look
        // and letting go, as the runner's threads do), so every interleaving comes up.
        let dawdle = |round: u64, salt: u64| {
            let spins = (round.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt).rotate_left(17) % 256;
            (0..spins).for_each(|_| std::hint::spin_loop());
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut meeting = 0;
                for round in 1..=ROUNDS {
                    both(&mut meeting);
                    dawdle(round, 1);
                    posted.fetch_add(1, Ordering::SeqCst);
                    if let Some(reading) = child.try_reading() {
                        take();
                        let _ = child.let_go(reading);
                    }
                    both(&mut meeting);
                }
            });
            let mut meeting = 0;
            for round in 1..=ROUNDS {
                both(&mut meeting);
                let mut reading = Endpoint::lock(&child.reading);
                take();
                dawdle(round, 2);
                while child.let_go(reading) {
                    let Some(again) = child.try_reading() else { break };
                    take();
                    reading = again;
                }
                both(&mut meeting);
                // (Counted, not asserted here: a panic would leave the other thread
                // waiting at the barrier for good.)
                if taken.load(Ordering::SeqCst) != round {
                    left += 1;
                    take();
                }
            }
        });
        assert_eq!(left, 0, "rounds of {ROUNDS} whose post was left untaken");
    }

    /// Reads on `end`, for no call of its own, until something for its owner comes.
    fn next_incoming(end: &Endpoint) -> Incoming {
        let until = Instant::now() + GUARD;
        let mut buf = Endpoint::lock(&end.reading);
        loop {
            assert!(Instant::now() < until, "nothing came");
            match end.read_one(&mut buf, Duration::from_millis(50)) {
                Ok(Some(Read::Incoming(incoming))) => return incoming,
                Ok(_) => {}
                Err(e) => panic!("the read failed: {e:?}"),
            }
        }
    }

    fn next_request(end: &Endpoint) -> Request {
        match next_incoming(end) {
            Incoming::Request(request) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    /// Calls method 7 of object 0 on the other side with `args`, and waits.
    fn call(end: &Endpoint, args: &[u8], handler: &dyn Handler) -> Result<(u8, Vec<u8>), WaitError> {
        let (id, _) = end.register().expect("the channel is open");
        end.send(id, 0, 7, args, None).unwrap();
        end.wait(id, Some(Instant::now() + GUARD), handler, Vec::new())
    }

    #[test]
    fn a_request_and_its_reply() {
        let (host, child) = pair();
        std::thread::scope(|s| {
            s.spawn(|| {
                let request = next_request(&child);
                assert_eq!((request.target, request.method, request.args()), (0, 7, &b"abc"[..]));
                child.answer(request.id, 0, b"cba").unwrap();
            });
            let answer = call(&host, b"abc", &Reverse::default()).unwrap();
            assert_eq!(answer, (0, b"cba".to_vec()));
        });
        assert!(host.flight().waiting.is_empty(), "the call left the flight");
    }

    #[test]
    fn a_request_carries_the_time_left_to_its_deadline() {
        let (host, child) = pair();
        let (id, _) = host.register().unwrap();
        host.send(id, 0, 7, b"soon", Some(Instant::now() + Duration::from_secs(5))).unwrap();
        let request = next_request(&child);
        let left = request.time_left().expect("a deadline was given");
        assert!(left <= Duration::from_secs(5) && left > Duration::ZERO, "{left:?}");
        assert_eq!(request.args(), b"soon");
        let (id, _) = host.register().unwrap();
        host.send(id, 0, 7, b"whenever", None).unwrap();
        assert_eq!(next_request(&child).time_left(), None);
        // A deadline already past is no time left, not none.
        let past = Instant::now().checked_sub(Duration::from_millis(10)).unwrap_or_else(Instant::now);
        assert_eq!(read_time_left(time_left(Some(past))), Some(Duration::ZERO));
    }

    #[test]
    fn replies_out_of_order_reach_their_own_callers() {
        let (host, child) = pair();
        let handler = Reverse::default();
        std::thread::scope(|s| {
            let one = s.spawn(|| call(&host, b"one", &handler).unwrap());
            let two = s.spawn(|| call(&host, b"two", &handler).unwrap());
            let (a, b) = (next_request(&child), next_request(&child));
            // The later request first, each answered with its own arguments.
            child.answer(b.id, 0, b.args()).unwrap();
            child.answer(a.id, 0, a.args()).unwrap();
            assert_eq!(one.join().unwrap(), (0, b"one".to_vec()));
            assert_eq!(two.join().unwrap(), (0, b"two".to_vec()));
        });
    }

    #[test]
    fn a_callback_within_a_call_is_served_by_the_calling_thread() {
        let (host, child) = pair();
        let handler = Reverse::default();
        let caller = std::thread::current().id();
        std::thread::scope(|s| {
            s.spawn(|| {
                let request = next_request(&child);
                // Serving the host's call, the plugin calls back object 5 of the host.
                let back = child.serving(request.id, || {
                    let (id, _) = child.register().unwrap();
                    child.send(id, 5, 9, b"hi", None).unwrap();
                    child.wait(id, Some(Instant::now() + GUARD), &Reverse::default(), Vec::new()).unwrap()
                });
                assert_eq!(back, (0, b"ih".to_vec()));
                child.answer(request.id, 0, &back.1).unwrap();
            });
            struct OnCaller<'a>(&'a Reverse, std::thread::ThreadId);
            impl Handler for OnCaller<'_> {
                fn serve(&self, request: Request) -> (u8, RVec) {
                    assert_eq!(std::thread::current().id(), self.1, "served on the waiting thread");
                    self.0.serve(request)
                }
                fn incoming(&self, incoming: Incoming) {
                    self.0.incoming(incoming);
                }
            }
            let answer = call(&host, b"x", &OnCaller(&handler, caller)).unwrap();
            assert_eq!(answer, (0, b"ih".to_vec()));
        });
        assert_eq!(*Endpoint::lock(&handler.served), [(5, 9, b"hi".to_vec())]);
        assert!(Endpoint::lock(&handler.incoming).is_empty(), "nothing went to the owner");
    }

    #[test]
    fn a_cancelled_call_is_told_and_its_late_answer_dropped() {
        let (host, child) = pair();
        let deadline = Instant::now() + GUARD;
        let (id, _) = host.register_async(std::task::Waker::noop().clone(), deadline).unwrap();
        host.send(id, 0, 7, b"slow", Some(deadline)).unwrap();
        assert!(host.poll_async(id, std::task::Waker::noop()).is_none(), "no answer yet");
        host.cancel(id);
        let request = next_request(&child);
        assert_eq!(request.id, id);
        assert!(matches!(next_incoming(&child), Incoming::Cancel(c) if c == id));
        assert!(host.awaits_async(), "its answer is still to come, and to read");
        child.answer(id, tomada::ffi::Status::CANCELLED.0, b"").unwrap();
        let mut buf = Endpoint::lock(&host.reading);
        assert!(matches!(host.read_one(&mut buf, GUARD), Ok(Some(Read::Handed))));
        drop(buf);
        assert!(!host.awaits_async(), "the late answer was dropped");
        // The channel goes on.
        std::thread::scope(|s| {
            s.spawn(|| {
                let request = next_request(&child);
                child.answer(request.id, 0, b"ok").unwrap();
            });
            assert_eq!(call(&host, b"next", &Reverse::default()).unwrap(), (0, b"ok".to_vec()));
        });
    }

    #[test]
    fn a_peer_gone_mid_call_ends_the_call_and_the_channel() {
        let (host, child) = pair();
        std::thread::scope(|s| {
            s.spawn(move || {
                let _request = next_request(&child);
                drop(child);
            });
            let r = call(&host, b"x", &Reverse::default());
            assert!(matches!(r, Err(WaitError::Fault(ReadError::Eof))), "{r:?}");
        });
        // Ended (as the host does on a fault): calls in flight and new ones fail.
        let error = CallError::Channel { message: "gone".to_owned() };
        host.close(error.clone());
        assert!(host.register().is_none(), "no call starts on an ended channel");
    }

    /// Frames the other side must not send: each ends the wait as malformed.
    #[test]
    fn malformed_frames_end_the_wait() {
        type Sends<'a> = &'a dyn Fn(&Memory);
        let cases: [(&str, Sends<'_>); 4] = [
            ("unknown frame kind 99", &|raw| {
                raw.send(&[&[10, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0]], None).unwrap();
            }),
            ("not in flight", &|raw| {
                frame::write(raw, Header { kind: Kind::Reply, status: 0, id: 999 }, &[b"x"]).unwrap();
            }),
            ("a reply with status 200", &|raw| {
                frame::write(raw, Header { kind: Kind::Reply, status: 200, id: 1 }, &[b"x"]).unwrap();
            }),
            ("a request without its head", &|raw| {
                frame::write(raw, Header { kind: Kind::Callback, status: 0, id: 1 }, &[b"abc"]).unwrap();
            }),
        ];
        for (why, send) in cases {
            let (a, raw) = Memory::pair();
            let host = end(a, true);
            send(&raw);
            let r = call(&host, b"x", &Reverse::default());
            assert!(matches!(&r, Err(WaitError::Fault(ReadError::Malformed(m))) if m.contains(why)), "{why}: {r:?}");
        }
    }

    #[test]
    fn a_deadline_passes_without_a_reply() {
        let (host, _child) = pair();
        let (id, _) = host.register().unwrap();
        host.send(id, 0, 7, b"x", None).unwrap();
        let r = host.wait(id, Some(Instant::now() + Duration::from_millis(10)), &Reverse::default(), Vec::new());
        assert!(matches!(r, Err(WaitError::Fault(ReadError::TimedOut))), "{r:?}");
    }
}
