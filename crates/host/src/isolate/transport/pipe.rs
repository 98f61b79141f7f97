//! The channel's bytes over two anonymous pipes (Windows), one each way.
//!
//! Anonymous pipes have no overlapped (asynchronous) I/O and no `poll`: a read
//! blocks until bytes come, with no timeout. So each side reads its incoming pipe on
//! a thread of its own, into a buffer, and [`Transport::recv`] waits on that buffer
//! with the call's deadline (a condition variable: no spinning). Writes go straight
//! into the outgoing pipe; the other side's reader thread drains it at once, so a
//! write waits only for that thread (the host's buffer is bounded, [`HOST_BUFFER`]:
//! a plugin that floods the host is made to wait, not the host to grow).
//!
//! The other side's end: its process exits (or closes its write end), the read
//! returns `ERROR_BROKEN_PIPE` (0 bytes), and `recv` returns `Eof` once the buffer
//! is empty.

use std::collections::VecDeque;
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::mem::MaybeUninit;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{ReadError, Transport};

/// How many bytes one read of the pipe takes at most (and writes of several small
/// parts are joined up to).
const CHUNK: usize = 64 * 1024;
/// The most bytes the host's side holds unread: past them its reader thread stops
/// reading, and the plugin's writes wait.
pub(crate) const HOST_BUFFER: usize = 4 << 20;

/// One side of a channel over two pipes.
pub(crate) struct Pipe {
    out: PipeWriter,
    inbox: Arc<Inbox>,
}

struct Inbox {
    state: Mutex<State>,
    /// Bytes came (or the end).
    arrived: Condvar,
    /// Bytes were taken (or this side closed): room for the reader thread.
    taken: Condvar,
    /// The most bytes held unread (`None`: no bound).
    bound: Option<usize>,
}

#[derive(Default)]
struct State {
    bytes: VecDeque<u8>,
    /// The other side ended (or the read failed: `error`).
    ended: bool,
    error: Option<io::Error>,
    /// This side is gone: the reader thread stops.
    closed: bool,
}

impl Pipe {
    /// A side reading `incoming` (on a thread of its own) and writing `outgoing`;
    /// `bound`: the most bytes it holds unread (see [`HOST_BUFFER`]).
    pub(crate) fn new(incoming: PipeReader, outgoing: PipeWriter, bound: Option<usize>) -> io::Result<Pipe> {
        let inbox = Arc::new(Inbox {
            state: Mutex::new(State::default()),
            arrived: Condvar::new(),
            taken: Condvar::new(),
            bound,
        });
        let filler = Arc::clone(&inbox);
        std::thread::Builder::new().name("tomada-pipe".into()).spawn(move || fill(incoming, &filler))?;
        Ok(Pipe { out: outgoing, inbox })
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.inbox.lock().closed = true;
        self.inbox.taken.notify_all();
    }
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for `arrived` until `deadline`; `TimedOut` once it has passed.
    fn wait<'a>(
        &self,
        state: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> Result<MutexGuard<'a, State>, ReadError> {
        let Some(deadline) = deadline else {
            return Ok(self.arrived.wait(state).unwrap_or_else(|p| p.into_inner()));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::TimedOut);
        }
        Ok(self.arrived.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0)
    }
}

/// The reader thread: moves what comes through the pipe into the inbox until the other
/// side ends (or this one is dropped).
fn fill(mut incoming: PipeReader, inbox: &Inbox) {
    let mut chunk = vec![0u8; CHUNK];
    loop {
        if let Some(bound) = inbox.bound {
            let mut state = inbox.lock();
            while state.bytes.len() >= bound && !state.closed {
                state = inbox.taken.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.closed {
                return;
            }
        }
        let read = incoming.read(&mut chunk);
        let mut state = inbox.lock();
        match read {
            Ok(0) => state.ended = true,
            Ok(n) => state.bytes.extend(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => state.ended = true,
            Err(e) => {
                state.error = Some(e);
                state.ended = true;
            }
        }
        let (ended, closed) = (state.ended, state.closed);
        drop(state);
        inbox.arrived.notify_all();
        if ended || closed {
            return;
        }
    }
}

impl Transport for Pipe {
    /// (Waits only for the other side's reader thread; see the module's comment.)
    fn send(&self, parts: &[&[u8]], _timeout: Option<Duration>) -> io::Result<()> {
        let mut out = &self.out;
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if parts.len() > 1 && total <= CHUNK {
            // One write for a small frame, not one per part.
            let mut joined = Vec::with_capacity(total);
            parts.iter().for_each(|p| joined.extend_from_slice(p));
            return out.write_all(&joined);
        }
        parts.iter().try_for_each(|p| out.write_all(p))
    }

    /// (Never spins: the bytes come from this side's own reader thread.)
    fn recv(&self, to: &mut [MaybeUninit<u8>], _spin: Duration, deadline: Option<Instant>) -> Result<usize, ReadError> {
        let mut state = self.inbox.lock();
        loop {
            if !state.bytes.is_empty() {
                let n = to.len().min(state.bytes.len());
                for (to, from) in to.iter_mut().zip(state.bytes.drain(..n)) {
                    to.write(from);
                }
                drop(state);
                if self.inbox.bound.is_some() {
                    self.inbox.taken.notify_one();
                }
                return Ok(n);
            }
            if state.ended {
                return Err(state.error.take().map_or(ReadError::Eof, ReadError::Io));
            }
            state = self.inbox.wait(state, deadline)?;
        }
    }

    fn readable(&self) -> bool {
        let state = self.inbox.lock();
        !state.bytes.is_empty() || state.ended
    }

    fn wait_readable(&self, deadline: Option<Instant>) -> Result<(), ReadError> {
        let mut state = self.inbox.lock();
        while state.bytes.is_empty() && !state.ended {
            state = self.inbox.wait(state, deadline)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sides over two pipes.
    fn pair(bound: Option<usize>) -> (Pipe, Pipe) {
        let (a_in, b_out) = std::io::pipe().unwrap();
        let (b_in, a_out) = std::io::pipe().unwrap();
        (Pipe::new(a_in, a_out, bound).unwrap(), Pipe::new(b_in, b_out, None).unwrap())
    }

    /// A hang guard only.
    const GUARD: Duration = Duration::from_secs(60);

    fn recv_all(side: &Pipe, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [MaybeUninit::<u8>::uninit(); 1000];
        while got.len() < n {
            let k = side.recv(&mut buf, Duration::ZERO, Some(Instant::now() + GUARD)).unwrap();
            // SAFETY: `recv` initialised the first `k` bytes.
            got.extend(buf[..k].iter().map(|b| unsafe { b.assume_init() }));
        }
        got
    }

    #[test]
    fn bytes_cross_both_ways_in_order() {
        let (a, b) = pair(None);
        a.send(&[b"he", b"llo"], None).unwrap();
        assert_eq!(recv_all(&b, 5), b"hello");
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        b.send(&[&big[..100], &big[100..]], None).unwrap();
        assert_eq!(recv_all(&a, big.len()), big);
        assert!(!a.readable());
    }

    #[test]
    fn a_wait_ends_at_its_deadline_and_at_the_other_sides_end() {
        let (a, b) = pair(None);
        let mut buf = [MaybeUninit::<u8>::uninit(); 8];
        let soon = Some(Instant::now() + Duration::from_millis(20));
        assert!(matches!(a.recv(&mut buf, Duration::ZERO, soon), Err(ReadError::TimedOut)));
        assert!(matches!(a.wait_readable(soon), Err(ReadError::TimedOut)));
        b.send(&[b"last"], None).unwrap();
        drop(b);
        // What was sent before the end is received first.
        assert_eq!(recv_all(&a, 4), b"last");
        let end = a.recv(&mut buf, Duration::ZERO, Some(Instant::now() + GUARD));
        assert!(matches!(end, Err(ReadError::Eof)), "{end:?}");
        assert!(a.readable());
    }

    #[test]
    fn a_bounded_side_holds_no_more_than_its_bound_and_takes_the_rest_later() {
        let (a, b) = pair(Some(CHUNK));
        let flood = vec![9u8; 8 * CHUNK];
        let writer = std::thread::spawn(move || {
            b.send(&[&flood], None).unwrap();
            b
        });
        wait(|| a.inbox.lock().bytes.len() >= CHUNK);
        // The reader thread waits for room: at most one read past the bound.
        std::thread::sleep(Duration::from_millis(50));
        assert!(a.inbox.lock().bytes.len() <= 2 * CHUNK);
        assert_eq!(recv_all(&a, 8 * CHUNK).len(), 8 * CHUNK);
        drop(writer.join().unwrap());
    }

    fn wait(mut done: impl FnMut() -> bool) {
        let until = Instant::now() + GUARD;
        while !done() {
            assert!(Instant::now() < until, "hang guard");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
