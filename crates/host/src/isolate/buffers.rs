//! The buffers an isolated plugin's channel lends its blocking calls' arguments
//! (`Channel::lend`) and takes back once a call is decoded (`Channel::take_back`):
//! a large call's arguments (bytes inside a struct, which are copied into them), and
//! the answer then read into the same buffer, land in pages already in use instead
//! of fresh ones faulted in call after call.
//!
//! This lives in the host's own code, not in tomada's client code: that code also
//! runs inside plugins (a plugin of another minor calls a host back through its own
//! copy), where a per-thread cache would need a thread-local with a destructor, which
//! keeps a plugin's library mapped after `dlclose`. A pool owned by the `Isolated`
//! goes with it.
//!
//! Bounded: at most [`KEEP`] buffers, [`MAX_BYTES`] of capacity in all; a buffer is
//! shrunk when the calls of late used much less of it than it holds.

use std::sync::Mutex;

/// How many buffers are kept at most (calls in flight at once beyond this get new
/// ones, as without a pool).
const KEEP: usize = 4;
/// The capacity kept at most, all buffers together: a larger buffer is dropped.
const MAX_BYTES: usize = 16 << 20;
/// Room a buffer may keep beyond twice what calls use of late before it is shrunk.
const SLACK: usize = 64 << 10;

/// A few buffers for calls' arguments (and the answers read into them).
#[derive(Default)]
pub(crate) struct Buffers {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The buffers kept, empty; the last one taken back is lent first (its pages
    /// the likeliest to be in the caches still).
    kept: Vec<Vec<u8>>,
    /// The most the calls of late used of their buffer: the largest `used`, decaying
    /// by a sixteenth a call, so that a run of small calls after large ones lets the
    /// buffers shrink, and small calls among large ones do not.
    recent: usize,
}

impl Buffers {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // (Only plain data under the lock: a panic cannot leave it half-changed.)
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An empty buffer: a kept one, or a new one if none is kept.
    pub(crate) fn lend(&self) -> Vec<u8> {
        self.lock().kept.pop().unwrap_or_default()
    }

    /// Keeps `buffer`, of which a call used `used` bytes, for a later [`Buffers::lend`],
    /// shrunk if it holds much more than calls use of late; dropped if the pool is at
    /// its bounds (then the smallest buffer of all goes).
    pub(crate) fn take_back(&self, mut buffer: Vec<u8>, used: usize) {
        buffer.clear();
        let mut state = self.lock();
        state.recent = used.max(state.recent - state.recent / 16);
        let recent = state.recent;
        if buffer.capacity() > recent.saturating_mul(2).saturating_add(SLACK) {
            // (Shrinking in place: the allocator gives back the end of the block.)
            buffer.shrink_to(recent.saturating_add(SLACK));
        }
        if buffer.capacity() == 0 {
            return;
        }
        let mut held: usize = state.kept.iter().map(Vec::capacity).sum();
        let mut evict = None;
        if state.kept.len() >= KEEP {
            let (smallest, small) = state.kept.iter().enumerate().min_by_key(|(_, b)| b.capacity()).expect("KEEP > 0");
            if small.capacity() >= buffer.capacity() {
                return;
            }
            held -= small.capacity();
            evict = Some(smallest);
        }
        if held.saturating_add(buffer.capacity()) > MAX_BYTES {
            return;
        }
        if let Some(smallest) = evict {
            // (Dropped with the lock held: freeing a buffer takes no lock of ours.)
            state.kept.swap_remove(smallest);
        }
        state.kept.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacities(buffers: &Buffers) -> Vec<usize> {
        buffers.lock().kept.iter().map(Vec::capacity).collect()
    }

    #[test]
    fn a_buffer_taken_back_is_lent_again_empty() {
        let buffers = Buffers::default();
        assert_eq!(buffers.lend().capacity(), 0, "none kept yet: a new one");
        let mut b = Vec::with_capacity(1 << 20);
        b.extend_from_slice(&[1; 1000]);
        let at = b.as_ptr();
        buffers.take_back(b, 1 << 20);
        let again = buffers.lend();
        assert!(again.is_empty() && again.capacity() >= 1 << 20 && again.as_ptr() == at, "the same buffer, emptied");
        assert_eq!(buffers.lend().capacity(), 0, "lent out: none kept");
    }

    #[test]
    fn the_pool_is_bounded_in_count_and_bytes_and_keeps_the_largest() {
        let buffers = Buffers::default();
        for size in [100, 200, 300, 400, 50, 500] {
            buffers.take_back(Vec::with_capacity(size << 10), size << 10);
        }
        let mut kept = capacities(&buffers);
        kept.sort_unstable();
        assert_eq!(kept.len(), KEEP);
        assert!(kept[0] >= 200 << 10, "the smallest went: {kept:?}");
        // Over the bytes bound: dropped, not kept.
        buffers.take_back(Vec::with_capacity(MAX_BYTES), MAX_BYTES);
        assert!(capacities(&buffers).iter().sum::<usize>() <= MAX_BYTES);
        let after = capacities(&buffers);
        assert!(after.len() == KEEP && after.iter().all(|&c| c < MAX_BYTES), "none lost for it: {after:?}");
    }

    #[test]
    fn a_run_of_small_calls_shrinks_a_large_buffer_and_a_few_do_not() {
        let buffers = Buffers::default();
        buffers.take_back(Vec::with_capacity(8 << 20), 8 << 20);
        // A few small calls among large ones: the buffer keeps its room.
        for _ in 0..3 {
            let b = buffers.lend();
            buffers.take_back(b, 100);
        }
        assert!(capacities(&buffers)[0] >= 8 << 20, "{:?}", capacities(&buffers));
        // Many: it shrinks to what they use, and some room.
        for _ in 0..200 {
            let b = buffers.lend();
            buffers.take_back(b, 100);
        }
        let kept = capacities(&buffers);
        assert!(kept.len() == 1 && kept[0] <= 2 * SLACK && kept[0] >= 100, "{kept:?}");
    }
}
