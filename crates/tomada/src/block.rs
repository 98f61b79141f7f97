//! The byte form of a field list (a struct's fields, an enum variant's): a *block*,
//! its length then the fields in order. The length is what lets contracts evolve:
//! a side that knows fewer fields (an older minor version) reads those and skips the
//! rest; a side that knows more (`#[tomada(since = N)]` fields) finds the block ending
//! early and gives the missing fields their defaults; a side that meets a variant it
//! does not know (of an open enum, see `#[tomada(other)]`) skips the variant's block.
//! See `docs/evolution.md`.

use crate::wire::{Reader, WireError};

/// The high bit of a derived enum's variant number: a block of the variant's fields
/// follows (it has fields). A unit variant's number is written alone, so an open
/// enum costs no more than a closed one; a side that meets a number it does not know
/// skips the block if the bit says there is one.
pub const VARIANT_BLOCK: u32 = 1 << 31;

/// Starts a block: reserves its length; returns where it is, for [`end_block`].
#[inline]
pub fn begin_block(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    at
}

/// Ends the block started at `at`: writes its length. Bytes of its fields noted to be
/// sent from where they lie (a large `Vec<u8>` or `String` field given away in a
/// blocking isolated call, see `client::gather_owned`), not copied into `out`, count
/// in it all the same.
#[inline]
pub fn end_block(out: &mut [u8], at: usize) {
    let len = (out.len() - at - 8 + crate::client::gathered_after(at)) as u64;
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
}

/// Reads a block: a reader over its bytes (the outer reader moves past all of them),
/// within the outer reader's depth and allocation limits (see [`Reader::sub`]); give it
/// back with [`end_block_read`] once its fields are read.
///
/// # Errors
/// If the bytes end early or the length is impossible.
#[inline]
pub fn block<'a>(r: &mut Reader<'a>) -> Result<Reader<'a>, WireError> {
    let n = r.len(1)?;
    r.sub(n)
}

/// Skips a block whose fields this side does not read (a variant it does not know).
///
/// # Errors
/// If the bytes end early or the length is impossible.
#[inline]
pub fn skip_block(r: &mut Reader<'_>) -> Result<(), WireError> {
    let n = r.len(1)?;
    r.take(n).map(drop)
}

/// Ends the reading of a block made by [`block`]: what decoding its fields allocated
/// counts against the outer reader's budget.
#[inline]
pub fn end_block_read<'a>(r: &mut Reader<'a>, block: Reader<'a>) {
    r.rejoin(block);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_skipped_whole_and_read_alone() {
        let mut out = vec![9];
        let at = begin_block(&mut out);
        out.extend_from_slice(&[1, 2, 3]);
        end_block(&mut out, at);
        out.push(7);
        let mut r = Reader::new(&out[1..]);
        let inner = block(&mut r).unwrap();
        assert_eq!(inner.remaining(), &[1, 2, 3]);
        assert_eq!(r.remaining(), &[7]);
    }

    #[test]
    fn a_lying_length_is_an_error() {
        let mut out = Vec::new();
        crate::wire::put_len(&mut out, 100);
        out.extend_from_slice(&[1, 2]);
        assert!(block(&mut Reader::new(&out)).is_err());
    }
}
