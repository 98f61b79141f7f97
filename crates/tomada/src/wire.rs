//! The byte form of boundary values, for calls to a plugin in another process.
//!
//! Every [`Abi`](crate::Abi) type writes itself straight from its Rust value and
//! reads itself straight back ([`Abi::encode`](crate::Abi::encode) /
//! [`Abi::decode`](crate::Abi::decode)), with no detour through the `#[repr(C)]`
//! form. The format is small and fixed:
//!
//! * integers and floats: little-endian, their own width (`bool` one byte, `char`
//!   its `u32` scalar value, `usize`/`isize` 8 bytes);
//! * lengths (strings, sequences, maps): a little-endian `u64`;
//! * strings and byte buffers: length, then the bytes, copied in bulk; so is any
//!   sequence of integers or floats;
//! * `Option` and `Result`: a `u32` variant index, then the fields;
//! * tuples and arrays: their fields in order;
//! * derived structs: a block of their fields (see [`crate::block`]); derived enums:
//!   a `u32` variant number, then, for a variant with fields (flagged in the number's
//!   high bit), a block of them, so sides of two minor versions read each other
//!   (`docs/evolution.md`).
//!
//! Both processes run contracts that fit (the fit check passed), so no names or
//! types travel. Decoding is defensive all the same, because the other process may be
//! hostile: every decode is *total* (any bytes give a value or a [`WireError`], never
//! undefined behaviour, a panic or an abort) and *bounded*:
//!
//! * **depth**: boxes, vectors, maps and sets (the only ways a value can nest without
//!   end) may sit at most [`Limits::max_depth`] within each other, 128 by default (a
//!   string or a vector of numbers is a leaf: nothing nests in it), and
//!   decoding never uses more than [`MAX_DECODE_STACK`] bytes of stack, whatever the
//!   types: a 100 000-deep chain is [`WireError::TooDeep`], not a stack overflow;
//! * **memory**: decoding `n` bytes allocates at most
//!   [`Limits::memory_factor`]` × n + `[`Limits::memory_slack`] bytes (8 × n + 1 MiB by
//!   default), counted before each allocation is made. A length is first checked
//!   against the bytes left (each element takes at least [`Abi::WIRE_MIN`](crate::Abi::WIRE_MIN)
//!   bytes), then what its elements take in memory is charged to that budget, and only
//!   then reserved, with `try_reserve`: a count the peer claims never sizes an
//!   allocation on its own, a sparse answer that would take 36 × its size in memory is
//!   [`WireError::TooLarge`], and a failed allocation is [`WireError::OutOfMemory`],
//!   not an abort. With the answer's own buffer, the host's peak for one answer of `n`
//!   bytes is at most `(factor + 1) × n + slack`;
//! * **keys**: a map or set whose bytes hold the same key twice is
//!   [`WireError::DuplicateKey`], never silently collapsed. From a peer built with
//!   tomada, that means a key type that evolved: keys the sender told apart by a
//!   variant or field this side does not know (read as the `#[tomada(other)]`
//!   variant, or skipped) are equal here (see `docs/evolution.md`).
//!
//! The limits are this process's ([`set_limits`]): the host's copy of tomada governs
//! what the host decodes (answers, callback arguments), a plugin's what it decodes.
//!
//! Written by hand rather than with serde: the format is part of each type's single
//! [`Abi`](crate::Abi) implementation, byte buffers move as one copy, and a plugin
//! that is only ever loaded in-process carries no serialisation framework.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Why bytes could not be decoded into a value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes are not a value of the type (cut short, an unknown variant, a string
    /// that is not UTF-8...): a broken or hostile peer.
    Malformed(&'static str),
    /// Boxes, vectors, maps or sets nest deeper than the limit.
    TooDeep {
        /// The limit ([`Limits::max_depth`]).
        limit: u32,
    },
    /// Decoding would use more than [`MAX_DECODE_STACK`] bytes of stack (a type whose
    /// every level takes a lot of it).
    StackExhausted {
        /// The depth reached.
        depth: u32,
    },
    /// The value would take more memory than the bytes it came in allow.
    TooLarge {
        /// What decoding these bytes may allocate ([`Limits::budget`]).
        budget: usize,
        /// How many bytes came.
        received: usize,
    },
    /// The system refused an allocation the bytes asked for.
    OutOfMemory {
        /// The size of the allocation refused.
        bytes: usize,
    },
    /// A map or set holds the same key twice. A sender built with tomada sends a map's
    /// keys distinct, so this is most likely a key type that evolved across minor
    /// versions: keys that differ only in a variant this side reads as its enum's
    /// `#[tomada(other)]` variant, or in a `#[tomada(since = N)]` field it skips, are
    /// equal here. Decoding refuses the value rather than drop an entry.
    DuplicateKey,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Malformed(what) => f.write_str(what),
            WireError::TooDeep { limit } => write!(
                f,
                "the value nests deeper than {limit} levels of boxes, vectors, maps or sets; \
                 if the contract's values really are this deep, raise `max_depth` with `tomada::wire::set_limits`"
            ),
            WireError::StackExhausted { depth } => write!(
                f,
                "the value needs more than {MAX_DECODE_STACK} bytes of stack to decode at depth {depth}; \
                 lower `max_depth` with `tomada::wire::set_limits`, or make the contract's types shallower"
            ),
            WireError::TooLarge { budget, received } => write!(
                f,
                "the value would take more than {budget} bytes of memory, sent in {received} bytes; \
                 if the contract's values really are this sparse, raise `memory_factor` with `tomada::wire::set_limits`"
            ),
            WireError::OutOfMemory { bytes } => write!(f, "cannot allocate {bytes} bytes for the value"),
            WireError::DuplicateKey => f.write_str(
                "a map or set holds the same key twice; if the two sides are built against different minor versions of the contract, \
                 the key type likely evolved: keys that differ only in a variant or field this side does not know \
                 (an open enum's variant read as its `#[tomada(other)]` variant, a skipped `#[tomada(since = N)]` field) are equal here; \
                 keep structs and enums that evolve out of map and set keys (docs/evolution.md)",
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// What decoding may take, in this process (see [`set_limits`] and the
/// [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How deep boxes, vectors, maps and sets may nest within each other.
    pub max_depth: u32,
    /// Decoding `n` bytes may allocate `memory_factor × n + memory_slack` bytes.
    pub memory_factor: usize,
    /// See [`Limits::memory_factor`].
    pub memory_slack: usize,
}

impl Limits {
    /// 128 levels; 8 × the bytes received, plus 1 MiB.
    ///
    /// Each level of kv-api's `Entry` chain (five fields, strings, vectors, an enum)
    /// takes about 575 bytes of stack to decode in a release build and 2.4 KiB in a
    /// debug build (measured): 128 levels are 72 KiB and 310 KiB, well within the
    /// 2 MiB of the smallest threads that decode (the host's callback threads, the
    /// runner's, std's default), and deep enough for any value a contract means to
    /// nest. [`MAX_DECODE_STACK`] stops types whose levels take far more. Eight
    /// times the bytes holds every value whose memory is at most eight times its byte
    /// form: strings and byte buffers (about 1 ×), numbers, structs (≤ 3 ×),
    /// `Vec<String>` of empty strings (3 ×), `Vec<Option<String>>` of `None`s (6 ×),
    /// hash maps and sets (their tables ≤ 7 ×); a `Vec` of `None`s of a 144-byte
    /// record (36 ×) needs a larger factor.
    pub const DEFAULT: Limits = Limits { max_depth: 128, memory_factor: 8, memory_slack: 1 << 20 };

    /// What decoding `received` bytes may allocate.
    pub const fn budget(&self, received: usize) -> usize {
        received.saturating_mul(self.memory_factor).saturating_add(self.memory_slack)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

static MAX_DEPTH: AtomicU32 = AtomicU32::new(Limits::DEFAULT.max_depth);
static MEMORY_FACTOR: AtomicUsize = AtomicUsize::new(Limits::DEFAULT.memory_factor);
static MEMORY_SLACK: AtomicUsize = AtomicUsize::new(Limits::DEFAULT.memory_slack);

/// Sets what decoding may take in this process from now on (answers and callback
/// arguments decoded by the host, if called there).
///
/// # Examples
/// ```
/// use tomada::wire::{Limits, limits, set_limits};
/// set_limits(Limits { max_depth: 256, ..Limits::DEFAULT });
/// assert_eq!(limits().max_depth, 256);
/// # set_limits(Limits::DEFAULT);
/// ```
pub fn set_limits(limits: Limits) {
    MAX_DEPTH.store(limits.max_depth, Ordering::Relaxed);
    MEMORY_FACTOR.store(limits.memory_factor, Ordering::Relaxed);
    MEMORY_SLACK.store(limits.memory_slack, Ordering::Relaxed);
}

/// What decoding may take in this process ([`Limits::DEFAULT`] unless [`set_limits`]
/// changed it).
pub fn limits() -> Limits {
    Limits {
        max_depth: MAX_DEPTH.load(Ordering::Relaxed),
        memory_factor: MEMORY_FACTOR.load(Ordering::Relaxed),
        memory_slack: MEMORY_SLACK.load(Ordering::Relaxed),
    }
}

/// The most stack one decode may use below its outermost box, vector, map or set,
/// whatever [`Limits::max_depth`] says: half of the 2 MiB that Rust gives a spawned
/// thread (the host's callback threads, the runner's threads), leaving the other half
/// to what runs above and after the decode.
#[doc(hidden)]
pub const MAX_DECODE_STACK: usize = 1 << 20;

/// A cursor over encoded bytes, with what decoding them may still take (see the
/// [module docs](self)).
#[derive(Debug)]
#[doc(hidden)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    /// How deep in boxes, vectors, maps and sets the decode is.
    depth: u32,
    max_depth: u32,
    /// The bytes decoding may still allocate.
    budget: usize,
    /// What it could allocate at first, and from how many bytes.
    limit: (usize, usize),
    /// The stack address at depth 0 (where the outermost nesting value started).
    stack: usize,
}

impl<'a> Reader<'a> {
    /// Reads from `bytes`, within this process's [`limits`].
    #[inline]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self::with_limits(bytes, limits())
    }

    /// Reads from `bytes` within `limits`.
    #[inline]
    pub const fn with_limits(bytes: &'a [u8], limits: Limits) -> Self {
        let budget = limits.budget(bytes.len());
        Self { bytes, depth: 0, max_depth: limits.max_depth, budget, limit: (budget, bytes.len()), stack: 0 }
    }

    /// The bytes not read yet.
    pub const fn remaining(&self) -> &'a [u8] {
        self.bytes
    }

    /// What decoding may still allocate, in bytes.
    pub const fn budget(&self) -> usize {
        self.budget
    }

    /// A reader over the next `n` bytes (this one moves past them) that goes on within
    /// this one's limits: the same depth, stack guard and allocation budget, so a value
    /// nested through blocks (see [`crate::block`]) is bounded as if read in one piece.
    /// Give it back with [`Reader::rejoin`] once read, so what it allocated counts here.
    ///
    /// # Errors
    /// If fewer bytes are left.
    #[inline]
    pub fn sub(&mut self, n: usize) -> Result<Reader<'a>, WireError> {
        let bytes = self.take(n)?;
        let sub = Reader { bytes, ..*self };
        // The budget moves to the sub-reader until it is given back: what it allocates
        // is charged here even when its decode fails before [`Reader::rejoin`].
        self.budget = 0;
        Ok(sub)
    }

    /// Takes back a reader made by [`Reader::sub`]: what it charged is charged here.
    #[inline]
    pub fn rejoin(&mut self, sub: Reader<'a>) {
        self.budget = sub.budget;
    }

    /// Takes the next `n` bytes.
    ///
    /// # Errors
    /// If fewer are left.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.bytes.len() < n {
            return Err(WireError::Malformed("the bytes end early"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// Takes `N` bytes as an array.
    ///
    /// # Errors
    /// If fewer are left.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    /// A length prefix for `min`-byte items: never more items than the remaining
    /// bytes could hold, so a lying length cannot make the reader allocate.
    ///
    /// # Errors
    /// If the bytes end early or the length is impossible.
    #[inline]
    pub fn len(&mut self, min: usize) -> Result<usize, WireError> {
        let n = u64::from_le_bytes(self.array()?);
        let n = usize::try_from(n).map_err(|_| WireError::Malformed("a length does not fit this machine"))?;
        if n.saturating_mul(min.max(1)) > self.bytes.len() && min > 0 {
            return Err(WireError::Malformed("a length is larger than the bytes that follow"));
        }
        if min == 0 && n > MAX_ZERO_SIZED {
            return Err(WireError::Malformed("too many zero-sized items"));
        }
        Ok(n)
    }

    /// A variant index.
    ///
    /// # Errors
    /// If the bytes end early.
    #[inline]
    pub fn variant(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Goes one level deeper (into a box, vector, map or set); [`Reader::leave`] comes
    /// back out once the value is read.
    ///
    /// # Errors
    /// [`WireError::TooDeep`] past [`Limits::max_depth`], [`WireError::StackExhausted`]
    /// past [`MAX_DECODE_STACK`].
    #[inline]
    pub fn enter(&mut self) -> Result<(), WireError> {
        if self.depth >= self.max_depth {
            return Err(WireError::TooDeep { limit: self.max_depth });
        }
        // Miri places locals anywhere: the stack guard means nothing there (the depth
        // limit still holds).
        #[cfg(not(miri))]
        {
            let marker = 0u8;
            let here = std::hint::black_box(&raw const marker).addr();
            if self.depth == 0 {
                self.stack = here;
            } else if self.stack.abs_diff(here) > MAX_DECODE_STACK {
                return Err(WireError::StackExhausted { depth: self.depth });
            }
        }
        self.depth += 1;
        Ok(())
    }

    /// Comes back out of the level [`Reader::enter`] went into.
    #[inline]
    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Counts `bytes` of memory the value about to be built takes against what
    /// decoding may allocate; call it before allocating them.
    ///
    /// # Errors
    /// [`WireError::TooLarge`] past the budget.
    #[inline]
    pub fn charge(&mut self, bytes: usize) -> Result<(), WireError> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(self.too_large()),
        }
    }

    #[cold]
    fn too_large(&self) -> WireError {
        WireError::TooLarge { budget: self.limit.0, received: self.limit.1 }
    }

    /// A vector with room for `n` elements of `T`, charged first: what a sequence of
    /// `n` claimed elements takes is checked against the bytes before it is
    /// allocated, and an allocation failure is an error.
    ///
    /// # Errors
    /// [`WireError::TooLarge`] or [`WireError::OutOfMemory`].
    #[inline]
    pub fn vec<T>(&mut self, n: usize) -> Result<Vec<T>, WireError> {
        let bytes = n.saturating_mul(size_of::<T>());
        self.charge(bytes)?;
        if bytes <= self.bytes.len() {
            // No larger than bytes already in memory (the common case): allocated
            // directly, which is cheaper than the fallible path.
            Ok(Vec::with_capacity(n))
        } else {
            let mut vec = Vec::new();
            vec.try_reserve_exact(n).map_err(|_| WireError::OutOfMemory { bytes })?;
            Ok(vec)
        }
    }

    /// Fails unless every byte was read.
    ///
    /// # Errors
    /// If bytes are left over.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.bytes.is_empty() { Ok(()) } else { Err(WireError::Malformed("there are bytes left over")) }
    }
}

/// The most zero-sized items (`Vec<()>`) a sequence may claim: they take no bytes, so
/// their count is bounded here instead.
const MAX_ZERO_SIZED: usize = 1 << 20;

/// Writes a length prefix.
#[inline]
#[doc(hidden)]
pub fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u64).to_le_bytes());
}

/// Writes a variant index.
#[inline]
#[doc(hidden)]
pub fn put_variant(out: &mut Vec<u8>, index: u32) {
    out.extend_from_slice(&index.to_le_bytes());
}

/// The error for an unknown variant index.
#[cold]
#[doc(hidden)]
pub fn bad_variant() -> WireError {
    WireError::Malformed("an unknown variant index")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_bounded_by_the_bytes() {
        let mut out = Vec::new();
        put_len(&mut out, 3);
        out.extend([1, 2, 3]);
        let mut r = Reader::new(&out);
        assert_eq!(r.len(1), Ok(3));
        assert_eq!(r.take(3), Ok(&[1u8, 2, 3][..]));
        assert!(r.finish().is_ok());

        let mut lying = Vec::new();
        put_len(&mut lying, usize::MAX / 2);
        assert!(Reader::new(&lying).len(1).is_err());
        assert!(Reader::new(&lying).len(0).is_err());
        assert!(Reader::new(&[1, 2]).len(1).is_err());
    }

    #[test]
    fn a_whole_string_answer_keeps_its_buffer_and_is_checked() {
        use crate::Abi;
        let mut bytes = Vec::new();
        "olá".to_owned().encode(&mut bytes);
        let ptr = bytes.as_ptr();
        let s = String::decode_owned(bytes).unwrap();
        assert_eq!(s, "olá");
        assert_eq!(s.as_ptr(), ptr, "the same buffer, not a copy");

        let mut left_over = Vec::new();
        "a".to_owned().encode(&mut left_over);
        left_over.push(0);
        assert!(String::decode_owned(left_over).is_err());
        let mut not_utf8 = Vec::new();
        put_len(&mut not_utf8, 1);
        not_utf8.push(0xff);
        assert!(String::decode_owned(not_utf8).is_err());
        assert!(String::decode_owned(vec![1, 0]).is_err(), "a length cut short");
        // Other types read the same bytes the same way.
        let mut pair = Vec::new();
        (7u8, "x".to_owned()).encode(&mut pair);
        assert_eq!(<(u8, String)>::decode_owned(pair), Ok((7, "x".to_owned())));
    }

    #[test]
    fn a_whole_bytes_answer_keeps_its_buffer_and_is_checked() {
        use crate::Abi;
        let mut bytes = Vec::new();
        vec![1u8, 2, 255].encode(&mut bytes);
        let ptr = bytes.as_ptr();
        let v = Vec::<u8>::decode_owned(bytes).unwrap();
        assert_eq!(v, [1, 2, 255]);
        assert_eq!(v.as_ptr(), ptr, "the same buffer, not a copy");
        let mut signed = Vec::new();
        vec![-1i8, 5].encode(&mut signed);
        assert_eq!(Vec::<i8>::decode_owned(signed), Ok(vec![-1, 5]));
        let mut empty = Vec::new();
        Vec::<u8>::new().encode(&mut empty);
        assert_eq!(Vec::<u8>::decode_owned(empty), Ok(Vec::new()));

        let mut left_over = Vec::new();
        vec![1u8].encode(&mut left_over);
        left_over.push(0);
        assert!(Vec::<u8>::decode_owned(left_over).is_err(), "a byte left over");
        let mut short = Vec::new();
        put_len(&mut short, 3);
        short.push(1);
        assert!(Vec::<u8>::decode_owned(short).is_err(), "fewer bytes than the length says");
        assert!(Vec::<u8>::decode_owned(vec![1, 0]).is_err(), "a length cut short");
        // Wider elements and nested vectors still go through the reader.
        let mut wide = Vec::new();
        vec![1u32, 2].encode(&mut wide);
        assert_eq!(Vec::<u32>::decode_owned(wide), Ok(vec![1, 2]));
        let mut nested = Vec::new();
        vec![vec![3u8]].encode(&mut nested);
        assert_eq!(Vec::<Vec<u8>>::decode_owned(nested), Ok(vec![vec![3]]));
    }
}
