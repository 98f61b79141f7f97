//! An in-memory transport for tests: two byte queues, one each way, in this process.
//! Dropping either end is the other side's end (`Eof` once its bytes are read; a
//! send to it fails with `BrokenPipe`).

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{ReadError, Transport};

/// One direction: its bytes, and whether either end is gone.
#[derive(Default)]
struct Pipe {
    state: Mutex<(VecDeque<u8>, bool)>,
    changed: Condvar,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, (VecDeque<u8>, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn close(&self) {
        self.lock().1 = true;
        self.changed.notify_all();
    }
}

/// One end of an in-memory channel.
pub(crate) struct Memory {
    tx: Arc<Pipe>,
    rx: Arc<Pipe>,
}

impl Memory {
    /// Two ends, connected.
    pub(crate) fn pair() -> (Memory, Memory) {
        let (a, b) = (Arc::new(Pipe::default()), Arc::new(Pipe::default()));
        (Memory { tx: Arc::clone(&a), rx: Arc::clone(&b) }, Memory { tx: b, rx: a })
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        self.tx.close();
        self.rx.close();
    }
}

impl Transport for Memory {
    fn send(&self, parts: &[&[u8]], _timeout: Option<Duration>) -> io::Result<()> {
        let mut state = self.tx.lock();
        if state.1 {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        parts.iter().for_each(|p| state.0.extend(p.iter()));
        drop(state);
        self.tx.changed.notify_all();
        Ok(())
    }

    fn recv(&self, to: &mut [MaybeUninit<u8>], _spin: Duration, deadline: Option<Instant>) -> Result<usize, ReadError> {
        self.wait_readable(deadline)?;
        let mut state = self.rx.lock();
        if state.0.is_empty() {
            return Err(ReadError::Eof);
        }
        let n = to.len().min(state.0.len());
        for (slot, byte) in to.iter_mut().zip(state.0.drain(..n)) {
            slot.write(byte);
        }
        Ok(n)
    }

    fn readable(&self) -> bool {
        let state = self.rx.lock();
        !state.0.is_empty() || state.1
    }

    fn wait_readable(&self, deadline: Option<Instant>) -> Result<(), ReadError> {
        let mut state = self.rx.lock();
        while state.0.is_empty() && !state.1 {
            let wait = match deadline {
                None => Duration::from_secs(3600),
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Err(ReadError::TimedOut),
                },
            };
            state = self.rx.changed.wait_timeout(state, wait).unwrap_or_else(|p| p.into_inner()).0;
        }
        Ok(())
    }
}
