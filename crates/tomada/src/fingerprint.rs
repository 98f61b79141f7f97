//! The layout fingerprint: a 64-bit FNV-1a hash, computed at compile time, over
//! the encoded description of a contract's methods (see
//! [`interface::fingerprint`](crate::interface::fingerprint)): their order, names and
//! every type that crosses them, described whole.
//!
//! Any change that breaks callers changes the fingerprint: a method added, removed,
//! reordered or renamed, an argument or result type changed, a struct field or enum
//! variant added, removed, renamed or retyped. Argument *names* are not part of it.
//!
//! Written by hand because it must run in `const` context on every supported rustc,
//! which no hashing crate offers; FNV-1a is the standard choice for short keys.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// The starting state of a fingerprint.
pub const START: u64 = OFFSET;

/// Feeds `bytes` into the hash state `h`.
pub const fn bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(PRIME);
        i += 1;
    }
    h
}

/// Feeds a number into the hash state `h`.
pub const fn u64(h: u64, v: u64) -> u64 {
    bytes(h, &v.to_le_bytes())
}

/// Feeds a string, prefixed by its length so that `("ab", "c")` and `("a", "bc")`
/// differ, into the hash state `h`.
pub const fn str(h: u64, s: &str) -> u64 {
    bytes(u64(h, s.len() as u64), s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_length_prefixed() {
        assert_ne!(str(str(START, "ab"), "c"), str(str(START, "a"), "bc"));
    }

    #[test]
    fn known_fnv1a_vector() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c.
        assert_eq!(bytes(START, b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
