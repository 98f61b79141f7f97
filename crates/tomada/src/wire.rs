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
//! types travel. Decoding is defensive all the same: a length is checked against the
//! bytes left before anything is allocated, and every variant index and string is
//! validated, so a corrupt frame is an error, never undefined behaviour.
//!
//! Written by hand rather than with serde: the format is part of each type's single
//! [`Abi`](crate::Abi) implementation, byte buffers move as one copy, and a plugin
//! that is only ever loaded in-process carries no serialisation framework.

use std::fmt;

/// Why bytes could not be decoded into a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for WireError {}

/// A cursor over encoded bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `bytes`.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The bytes not read yet.
    pub const fn remaining(&self) -> &'a [u8] {
        self.bytes
    }

    /// Takes the next `n` bytes.
    ///
    /// # Errors
    /// If fewer are left.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.bytes.len() < n {
            return Err(WireError("the bytes end early"));
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
        let n = usize::try_from(n).map_err(|_| WireError("a length does not fit this machine"))?;
        if n.saturating_mul(min.max(1)) > self.bytes.len() && min > 0 {
            return Err(WireError("a length is larger than the bytes that follow"));
        }
        if min == 0 && n > MAX_ZERO_SIZED {
            return Err(WireError("too many zero-sized items"));
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

    /// Fails unless every byte was read.
    ///
    /// # Errors
    /// If bytes are left over.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.bytes.is_empty() { Ok(()) } else { Err(WireError("there are bytes left over")) }
    }
}

/// The most zero-sized items (`Vec<()>`) a sequence may claim: they take no bytes, so
/// their count is bounded here instead.
const MAX_ZERO_SIZED: usize = 1 << 20;

/// Writes a length prefix.
#[inline]
pub fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u64).to_le_bytes());
}

/// Writes a variant index.
#[inline]
pub fn put_variant(out: &mut Vec<u8>, index: u32) {
    out.extend_from_slice(&index.to_le_bytes());
}

/// The error for an unknown variant index.
#[cold]
pub fn bad_variant() -> WireError {
    WireError("an unknown variant index")
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
}
