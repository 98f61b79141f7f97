//! [`Abi`] for the standard library's types. Each impl is the whole story of its type
//! at the boundary: `#[repr(C)]` form, byte form and description.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hash};

use super::Abi;
use super::seq::{decode_vec, encode_slice, vec_from_ffi, vec_from_ffi_native, vec_into_ffi, vec_into_ffi_native};
use crate::ffi::{R128, RArray, RBox, ROption, RResult, RSeq, RTuple1, RTuple2};
use crate::interface::{TypeDesc, TypeRef};
use crate::wire::{Reader, WireError, bad_variant, put_variant};

macro_rules! plain {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive with the same layout on every rustc for a given target,
        // valid for every bit pattern.
        unsafe impl Abi for $t {
            type Ffi = $t;
            const DESC: TypeRef = TypeRef::new(&TypeDesc::leaf(stringify!($t)));
            const WIRE_MIN: usize = size_of::<$t>();
            const PLAIN: bool = true;
            #[inline(always)]
            fn native() -> bool { true }
            #[inline(always)]
            fn into_ffi(self) -> $t { self }
            #[inline(always)]
            unsafe fn from_ffi(ffi: $t) -> $t { ffi }
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()) }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<$t, WireError> { Ok(<$t>::from_le_bytes(r.array()?)) }
        }
    )*};
}
plain!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

macro_rules! pointer_sized {
    ($($t:ty as $wide:ty),*) => {$(
        // SAFETY: a primitive with the same layout on every rustc for a given target;
        // its byte form is always 8 bytes wide.
        unsafe impl Abi for $t {
            type Ffi = $t;
            const DESC: TypeRef = TypeRef::new(&TypeDesc::leaf(stringify!($t)));
            const WIRE_MIN: usize = 8;
            const PLAIN: bool = size_of::<$t>() == 8;
            #[inline(always)]
            fn native() -> bool { true }
            #[inline(always)]
            fn into_ffi(self) -> $t { self }
            #[inline(always)]
            unsafe fn from_ffi(ffi: $t) -> $t { ffi }
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) { out.extend_from_slice(&(*self as $wide).to_le_bytes()) }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<$t, WireError> {
                <$t>::try_from(<$wide>::from_le_bytes(r.array()?)).map_err(|_| WireError::Malformed("a size does not fit this machine"))
            }
        }
    )*};
}
pointer_sized!(usize as u64, isize as i64);

// SAFETY: a ZST; its `Ffi` is `()` too.
unsafe impl Abi for () {
    type Ffi = ();
    const DESC: TypeRef = TypeRef::new(&TypeDesc::leaf("()"));
    const WIRE_MIN: usize = 0;
    #[inline(always)]
    fn native() -> bool {
        true
    }
    #[inline(always)]
    fn into_ffi(self) {}
    #[inline(always)]
    unsafe fn from_ffi(_: ()) {}
    #[inline]
    fn encode(&self, _: &mut Vec<u8>) {}
    #[inline]
    fn decode(_: &mut Reader<'_>) -> Result<(), WireError> {
        Ok(())
    }
}

// SAFETY: crosses as a `u8` (0 or 1); any non-zero byte reads back as `true`, so a
// `bool` never holds an invalid bit pattern.
unsafe impl Abi for bool {
    type Ffi = u8;
    const DESC: TypeRef = TypeRef::new(&TypeDesc::leaf("bool"));
    const WIRE_MIN: usize = 1;
    #[inline(always)]
    fn native() -> bool {
        true
    }
    #[inline(always)]
    fn into_ffi(self) -> u8 {
        self as u8
    }
    #[inline(always)]
    unsafe fn from_ffi(ffi: u8) -> bool {
        ffi != 0
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self as u8)
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<bool, WireError> {
        match r.array::<1>()? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(WireError::Malformed("a bool is neither 0 nor 1")),
        }
    }
}

// SAFETY: crosses as its scalar value; an invalid one reads back as U+FFFD rather than
// as an invalid `char`.
unsafe impl Abi for char {
    type Ffi = u32;
    const DESC: TypeRef = TypeRef::new(&TypeDesc::leaf("char"));
    const WIRE_MIN: usize = 4;
    #[inline(always)]
    fn native() -> bool {
        true
    }
    #[inline(always)]
    fn into_ffi(self) -> u32 {
        self as u32
    }
    #[inline(always)]
    unsafe fn from_ffi(ffi: u32) -> char {
        char::from_u32(ffi).unwrap_or(char::REPLACEMENT_CHARACTER)
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(*self as u32).to_le_bytes())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<char, WireError> {
        char::from_u32(u32::from_le_bytes(r.array()?)).ok_or(WireError::Malformed("not a char"))
    }
}

macro_rules! wide {
    ($($t:ty),*) => {$(
        // SAFETY: two `u64` halves in a `#[repr(C)]` struct, whatever rustc's 128-bit
        // alignment.
        unsafe impl Abi for $t {
            type Ffi = R128;
            const DESC: TypeRef = TypeRef::new(&TypeDesc::leaf(stringify!($t)));
            const WIRE_MIN: usize = 16;
            #[inline(always)]
            fn native() -> bool { true }
            #[inline(always)]
            fn into_ffi(self) -> R128 { R128::from_u128(self as u128) }
            #[inline(always)]
            unsafe fn from_ffi(ffi: R128) -> $t { ffi.to_u128() as $t }
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()) }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<$t, WireError> { Ok(<$t>::from_le_bytes(r.array()?)) }
        }
    )*};
}
wide!(u128, i128);

// SAFETY: an owned `System` buffer of UTF-8 bytes (see `RSeq`), as `Vec<u8>`.
unsafe impl Abi for String {
    type Ffi = RSeq<u8>;
    const DESC: TypeRef = TypeRef::new(&TypeDesc::leaf("String"));
    const WIRE_MIN: usize = 8;
    #[inline(always)]
    fn native() -> bool {
        true
    }
    #[inline]
    fn into_ffi(self) -> RSeq<u8> {
        RSeq::from_vec(self.into_bytes())
    }
    #[inline]
    unsafe fn from_ffi(ffi: RSeq<u8>) -> String {
        // SAFETY: the buffer was made from a `String` (same description).
        unsafe { ffi.into_string() }
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        crate::wire::put_len(out, self.len());
        out.extend_from_slice(self.as_bytes());
    }
    #[inline]
    fn encode_owned(self, out: &mut Vec<u8>) {
        // A large one given away (a field of an argument, say), for a blocking
        // isolated call: sent from its own buffer, kept until the call is over.
        crate::wire::put_len(out, self.len());
        if let Err(bytes) = crate::client::gather_owned(out, self.into_bytes()) {
            out.extend_from_slice(&bytes);
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<String, WireError> {
        let n = r.len(1)?;
        let text = std::str::from_utf8(r.take(n)?).map_err(|_| WireError::Malformed("a string is not UTF-8"))?;
        // `n` bytes that came, copied once: charged, but not reserved fallibly (a
        // string's size is the bytes present, never a count the peer only claims).
        r.charge(n)?;
        Ok(text.to_owned())
    }
    #[inline]
    fn decode_owned(mut bytes: Vec<u8>) -> Result<String, WireError> {
        let mut r = Reader::new(&bytes);
        let len = r.len(1)?;
        if len != r.remaining().len() {
            return Err(WireError::Malformed("bytes left over after a string"));
        }
        std::str::from_utf8(r.remaining()).map_err(|_| WireError::Malformed("a string is not UTF-8"))?;
        // The buffer becomes the string: its 8-byte length goes, nothing is copied
        // elsewhere.
        bytes.drain(..8);
        // SAFETY: checked to be UTF-8 just above.
        Ok(unsafe { String::from_utf8_unchecked(bytes) })
    }
    const BYTE_STRING: bool = true;
    #[inline]
    fn from_answer_bytes(bytes: Vec<u8>) -> Result<String, WireError> {
        String::from_utf8(bytes).map_err(|_| WireError::Malformed("a string is not UTF-8"))
    }
    #[inline]
    fn into_byte_string(self) -> Result<Vec<u8>, String> {
        Ok(self.into_bytes())
    }
}

// SAFETY: see `seq`: elements converted in place or moved into a `System` buffer,
// or, native (see `native`), the buffer handed over as it lies.
unsafe impl<T: Abi> Abi for Vec<T> {
    type Ffi = RSeq<T::Ffi>;
    const DESC: TypeRef = TypeRef::new(&TypeDesc::generic("Vec", &[T::DESC]));
    const WIRE_MIN: usize = 8;
    #[inline(always)]
    fn native() -> bool {
        T::native()
    }
    #[inline(always)]
    fn into_ffi(self) -> RSeq<T::Ffi> {
        vec_into_ffi_native(self)
    }
    #[inline(always)]
    unsafe fn from_ffi(ffi: RSeq<T::Ffi>) -> Vec<T> {
        // SAFETY: made by `into_ffi` of the same type (the caller's guarantee).
        unsafe { vec_from_ffi_native(ffi) }
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        encode_slice(self, out)
    }
    #[inline]
    fn encode_owned(self, out: &mut Vec<u8>) {
        if Self::BYTE_STRING {
            // As a `String`'s: a large one given away is sent from its own buffer.
            match self.into_byte_string() {
                Ok(bytes) => {
                    crate::wire::put_len(out, bytes.len());
                    if let Err(bytes) = crate::client::gather_owned(out, bytes) {
                        out.extend_from_slice(&bytes);
                    }
                }
                Err(this) => encode_slice(&this, out),
            }
        } else if T::PLAIN {
            encode_slice(&self, out)
        } else {
            crate::wire::put_len(out, self.len());
            for item in self {
                item.encode_owned(out);
            }
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Vec<T>, WireError> {
        decode_vec(r)
    }
    #[inline]
    fn decode_owned(bytes: Vec<u8>) -> Result<Vec<T>, WireError> {
        // Bytes (`Vec<u8>`, `Vec<i8>`): the answer's buffer becomes the vector, as a
        // `String`'s does — no second buffer of the answer's size, no fresh pages.
        if Self::BYTE_STRING {
            return vec_of_bytes_owned(bytes);
        }
        let mut r = Reader::new(&bytes);
        let value = decode_vec(&mut r)?;
        r.finish()?;
        Ok(value)
    }
    const BYTE_STRING: bool = T::PLAIN && size_of::<T>() == 1 && align_of::<T>() == 1 && T::WIRE_MIN == 1;
    #[inline]
    fn from_answer_bytes(bytes: Vec<u8>) -> Result<Vec<T>, WireError> {
        if !Self::BYTE_STRING {
            return Err(WireError::Malformed("the answer is not a byte string"));
        }
        Ok(bytes_into_vec(bytes))
    }
    #[inline]
    fn into_byte_string(self) -> Result<Vec<u8>, Vec<T>> {
        if !Self::BYTE_STRING {
            return Err(self);
        }
        let mut vec = std::mem::ManuallyDrop::new(self);
        // SAFETY: `T` is plain with the size and alignment of `u8` (`BYTE_STRING`), so
        // the buffer is `len` initialised bytes in an allocation of `u8`'s layout for the
        // same capacity; the `Vec<T>` is not dropped.
        Ok(unsafe { Vec::from_raw_parts(vec.as_mut_ptr().cast::<u8>(), vec.len(), vec.capacity()) })
    }
}

/// [`Abi::decode_owned`] of a `Vec<T>` of a plain one-byte `T`: the answer's buffer
/// without its 8-byte length.
fn vec_of_bytes_owned<T: Abi>(mut bytes: Vec<u8>) -> Result<Vec<T>, WireError> {
    let mut r = Reader::new(&bytes);
    let len = r.len(1)?;
    if len != r.remaining().len() {
        return Err(WireError::Malformed("bytes left over after a sequence"));
    }
    bytes.drain(..8);
    Ok(bytes_into_vec(bytes))
}

/// `bytes` as a `Vec<T>` of a plain one-byte `T` ([`Abi::BYTE_STRING`]), the same buffer.
fn bytes_into_vec<T: Abi>(bytes: Vec<u8>) -> Vec<T> {
    assert!(<Vec<T> as Abi>::BYTE_STRING, "bytes are not a vector of this type");
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    // SAFETY: `T` is plain (every byte is a valid `T`) with the size and alignment of
    // `u8`, so the buffer's allocation has `T`'s layout for the same capacity and its
    // `len` initialised bytes are `len` valid `T`s; the `Vec<u8>` is not dropped.
    unsafe { Vec::from_raw_parts(bytes.as_mut_ptr().cast::<T>(), bytes.len(), bytes.capacity()) }
}

// SAFETY: as `Vec<T>`, through one.
unsafe impl<T: Abi> Abi for VecDeque<T> {
    type Ffi = RSeq<T::Ffi>;
    const DESC: TypeRef = TypeRef::new(&TypeDesc::generic("VecDeque", &[T::DESC]));
    const WIRE_MIN: usize = 8;
    #[inline]
    fn into_ffi(self) -> RSeq<T::Ffi> {
        vec_into_ffi(Vec::from(self))
    }
    #[inline]
    unsafe fn from_ffi(ffi: RSeq<T::Ffi>) -> VecDeque<T> {
        // SAFETY: made by `into_ffi` of the same type (the caller's guarantee).
        VecDeque::from(unsafe { vec_from_ffi::<T>(ffi) })
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        crate::wire::put_len(out, self.len());
        for item in self {
            item.encode(out);
        }
    }
    #[inline]
    fn encode_owned(self, out: &mut Vec<u8>) {
        crate::wire::put_len(out, self.len());
        for item in self {
            item.encode_owned(out);
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<VecDeque<T>, WireError> {
        decode_vec(r).map(VecDeque::from)
    }
}

/// Sets and maps cross as sequences of their elements (maps: of key-value pairs).
/// Decoding one goes a level deeper, charges what its table or nodes take before
/// they are allocated (see [`crate::wire`]), and refuses a key that comes twice.
macro_rules! collection {
    ($name:literal, [$($bound:tt)*], $coll:ty, [$($param:ident),+], $item:ty, $ffi_item:ty,
     |$into:ident| $to_ffi:expr, |$from:ident| $from_ffi:expr, |$enc:ident, $out:ident| $encode:expr,
     |$own:ident| $encode_owned:expr, |$r:ident| $decode:expr, $with_capacity:expr,
     |$nr:ident, $n:ident| $decode_new:expr, |$coll_var:ident, $ins:ident| $insert:expr) => {
        // SAFETY: a sequence of the elements' `Ffi` forms in a `System` buffer (`RSeq`),
        // each element converted by its own `Abi` impl.
        unsafe impl<$($bound)*> Abi for $coll {
            type Ffi = RSeq<$ffi_item>;
            const DESC: TypeRef = TypeRef::new(&TypeDesc::generic($name, &[$(<$param as Abi>::DESC),+]));
            const WIRE_MIN: usize = 8;
            #[inline]
            fn into_ffi(self) -> Self::Ffi {
                let mut items = self.into_iter();
                RSeq::collect(items.len(), || {
                    let $into: $item = items.next().expect("an exact-size iterator");
                    $to_ffi
                })
            }
            #[inline]
            unsafe fn from_ffi(ffi: Self::Ffi) -> Self {
                let mut coll: Self = $with_capacity(ffi.len());
                ffi.for_each(|$from| {
                    // SAFETY: each element was made by the same impls' `into_ffi`.
                    let item = unsafe { $from_ffi };
                    coll.extend(std::iter::once(item));
                });
                coll
            }
            #[inline]
            fn encode(&self, $out: &mut Vec<u8>) {
                crate::wire::put_len($out, self.len());
                for $enc in self {
                    $encode;
                }
            }
            #[inline]
            fn encode_owned(self, $out: &mut Vec<u8>) {
                crate::wire::put_len($out, self.len());
                for $own in self {
                    $encode_owned;
                }
            }
            #[inline]
            fn decode($r: &mut Reader<'_>) -> Result<Self, WireError> {
                let len = $r.len(<$item as Abi>::WIRE_MIN)?;
                let mut coll: Self = {
                    let ($nr, $n) = (&mut *$r, len);
                    $decode_new
                };
                $r.enter()?;
                for _ in 0..len {
                    let $ins: $item = $decode;
                    let $coll_var = &mut coll;
                    if !$insert {
                        return Err(WireError::DuplicateKey);
                    }
                }
                $r.leave();
                Ok(coll)
            }
        }
    };
}

/// An upper bound of what a hash table for `n` items of `T` allocates (hashbrown's
/// buckets: a power of two at least `n * 8 / 7`, one control byte each, one group
/// more), so it can be charged before it is reserved.
fn hash_table_bytes<T>(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let buckets = n.saturating_mul(8).div_ceil(7).max(4).checked_next_power_of_two();
    match buckets {
        Some(b) => b.saturating_mul(size_of::<T>() + 1).saturating_add(64),
        None => usize::MAX,
    }
}

/// An upper bound of what a B-tree allocates per item of `T` (std's nodes hold 11
/// items; every node but the root holds at least 5, and an internal node adds 12
/// edges; 32 bytes for its header and padding).
const fn btree_bytes_per_item<T>() -> usize {
    (11 * size_of::<T>() + 12 * 8 + 32).div_ceil(5)
}

/// A whole node more, for the root (which may hold a single item).
const fn btree_root_bytes<T>() -> usize {
    11 * size_of::<T>() + 12 * 8 + 32
}

/// Reserves a hash table for `n` items, charged first.
fn hash_reserve<T>(r: &mut Reader<'_>, n: usize, reserve: impl FnOnce(usize) -> bool) -> Result<(), WireError> {
    let bytes = hash_table_bytes::<T>(n);
    r.charge(bytes)?;
    if reserve(n) { Ok(()) } else { Err(WireError::OutOfMemory { bytes }) }
}

/// Charges a B-tree of `n` items (std's B-trees cannot reserve: their nodes are
/// allocated as items go in).
fn btree_charge<T>(r: &mut Reader<'_>, n: usize) -> Result<(), WireError> {
    if n == 0 {
        return Ok(());
    }
    r.charge(n.saturating_mul(btree_bytes_per_item::<T>()).saturating_add(btree_root_bytes::<T>()))
}

collection!("HashMap", [K: Abi + Eq + Hash, V: Abi, S: BuildHasher + Default], HashMap<K, V, S>, [K, V],
    (K, V), RTuple2<K::Ffi, V::Ffi>,
    |kv| RTuple2(kv.0.into_ffi(), kv.1.into_ffi()),
    |f| (K::from_ffi(f.0), V::from_ffi(f.1)),
    |kv, out| { kv.0.encode(out); kv.1.encode(out) },
    |kv| { Abi::encode(&kv.0, out); kv.1.encode_owned(out) },
    |r| (K::decode(r)?, V::decode(r)?),
    |n| HashMap::with_capacity_and_hasher(n, S::default()),
    |r, n| {
        let mut map = HashMap::with_hasher(S::default());
        hash_reserve::<(K, V)>(r, n, |n| map.try_reserve(n).is_ok())?;
        map
    },
    |map, kv| map.insert(kv.0, kv.1).is_none());
collection!("BTreeMap", [K: Abi + Ord, V: Abi], BTreeMap<K, V>, [K, V],
    (K, V), RTuple2<K::Ffi, V::Ffi>,
    |kv| RTuple2(kv.0.into_ffi(), kv.1.into_ffi()),
    |f| (K::from_ffi(f.0), V::from_ffi(f.1)),
    |kv, out| { kv.0.encode(out); kv.1.encode(out) },
    |kv| { Abi::encode(&kv.0, out); kv.1.encode_owned(out) },
    |r| (K::decode(r)?, V::decode(r)?),
    |_| BTreeMap::new(),
    |r, n| {
        btree_charge::<(K, V)>(r, n)?;
        BTreeMap::new()
    },
    |map, kv| map.insert(kv.0, kv.1).is_none());
collection!("HashSet", [T: Abi + Eq + Hash, S: BuildHasher + Default], HashSet<T, S>, [T],
    T, RTuple1<T::Ffi>,
    |t| RTuple1(t.into_ffi()),
    |f| T::from_ffi(f.0),
    |t, out| t.encode(out),
    |t| Abi::encode(&t, out),
    |r| T::decode(r)?,
    |n| HashSet::with_capacity_and_hasher(n, S::default()),
    |r, n| {
        let mut set = HashSet::with_hasher(S::default());
        hash_reserve::<T>(r, n, |n| set.try_reserve(n).is_ok())?;
        set
    },
    |set, t| set.insert(t));
collection!("BTreeSet", [T: Abi + Ord], BTreeSet<T>, [T],
    T, RTuple1<T::Ffi>,
    |t| RTuple1(t.into_ffi()),
    |f| T::from_ffi(f.0),
    |t, out| t.encode(out),
    |t| Abi::encode(&t, out),
    |r| T::decode(r)?,
    |_| BTreeSet::new(),
    |r, n| {
        btree_charge::<T>(r, n)?;
        BTreeSet::new()
    },
    |set, t| set.insert(t));

// SAFETY: `ROption` is `#[repr(C, u8)]` over `T::Ffi`.
unsafe impl<T: Abi> Abi for Option<T> {
    type Ffi = ROption<T::Ffi>;
    const DESC: TypeRef = TypeRef::new(&TypeDesc::generic("Option", &[T::DESC]));
    const WIRE_MIN: usize = 4;
    #[inline(always)]
    fn native() -> bool {
        T::native()
    }
    #[inline]
    fn into_ffi(self) -> Self::Ffi {
        match self {
            Some(v) => ROption::Some(v.into_ffi()),
            None => ROption::None,
        }
    }
    #[inline]
    unsafe fn from_ffi(ffi: Self::Ffi) -> Self {
        match ffi {
            // SAFETY: the payload was made by `T::into_ffi`.
            ROption::Some(v) => Some(unsafe { T::from_ffi(v) }),
            ROption::None => None,
        }
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => put_variant(out, 0),
            Some(v) => {
                put_variant(out, 1);
                v.encode(out)
            }
        }
    }
    #[inline]
    fn encode_owned(self, out: &mut Vec<u8>) {
        match self {
            None => put_variant(out, 0),
            Some(v) => {
                put_variant(out, 1);
                v.encode_owned(out)
            }
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.variant()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(r)?)),
            _ => Err(bad_variant()),
        }
    }
}

// SAFETY: `RResult` is `#[repr(C, u8)]` over `T::Ffi` and `E::Ffi`.
unsafe impl<T: Abi, E: Abi> Abi for Result<T, E> {
    type Ffi = RResult<T::Ffi, E::Ffi>;
    const DESC: TypeRef = TypeRef::new(&TypeDesc::generic("Result", &[T::DESC, E::DESC]));
    const WIRE_MIN: usize = 4;
    #[inline(always)]
    fn native() -> bool {
        T::native() && E::native()
    }
    #[inline]
    fn into_ffi(self) -> Self::Ffi {
        match self {
            Ok(v) => RResult::Ok(v.into_ffi()),
            Err(e) => RResult::Err(e.into_ffi()),
        }
    }
    #[inline]
    unsafe fn from_ffi(ffi: Self::Ffi) -> Self {
        match ffi {
            // SAFETY: the payload was made by `T::into_ffi`.
            RResult::Ok(v) => Ok(unsafe { T::from_ffi(v) }),
            // SAFETY: the payload was made by `E::into_ffi`.
            RResult::Err(e) => Err(unsafe { E::from_ffi(e) }),
        }
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Ok(v) => {
                put_variant(out, 0);
                v.encode(out)
            }
            Err(e) => {
                put_variant(out, 1);
                e.encode(out)
            }
        }
    }
    #[inline]
    fn encode_owned(self, out: &mut Vec<u8>) {
        match self {
            Ok(v) => {
                put_variant(out, 0);
                v.encode_owned(out)
            }
            Err(e) => {
                put_variant(out, 1);
                e.encode_owned(out)
            }
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match r.variant()? {
            0 => Ok(Ok(T::decode(r)?)),
            1 => Ok(Err(E::decode(r)?)),
            _ => Err(bad_variant()),
        }
    }
}

// SAFETY: a `System` allocation holding `T::Ffi` (`RBox`), so recursive types have a
// finite `#[repr(C)]` form.
unsafe impl<T: Abi> Abi for Box<T> {
    type Ffi = RBox<T::Ffi>;
    const DESC: TypeRef = TypeRef::new(&TypeDesc::generic("Box", &[T::DESC]));
    const WIRE_MIN: usize = T::WIRE_MIN;
    #[inline(always)]
    fn native() -> bool {
        T::native()
    }
    #[inline]
    fn into_ffi(self) -> Self::Ffi {
        RBox::new((*self).into_ffi())
    }
    #[inline]
    unsafe fn from_ffi(ffi: Self::Ffi) -> Self {
        // SAFETY: the payload was made by `T::into_ffi`.
        Box::new(unsafe { T::from_ffi(ffi.into_inner()) })
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        (**self).encode(out)
    }
    #[inline]
    fn encode_owned(self, out: &mut Vec<u8>) {
        (*self).encode_owned(out)
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.charge(size_of::<T>())?;
        r.enter()?;
        let value = T::decode(r)?;
        r.leave();
        Ok(Box::new(value))
    }
}

// SAFETY: `RArray` is a `#[repr(C)]` struct of `[T::Ffi; N]`, N consecutive `T::Ffi`s on
// every rustc; elements are converted one by one. `PLAIN` holds through it: an
// `[T; N]` of plain `T` has the same bytes as its `RArray`.
unsafe impl<T: Abi, const N: usize> Abi for [T; N] {
    type Ffi = RArray<T::Ffi, N>;
    const DESC: TypeRef = TypeRef::new(&TypeDesc::array(&[T::DESC], N as u64));
    const WIRE_MIN: usize = T::WIRE_MIN * N;
    const PLAIN: bool = T::PLAIN;
    #[inline(always)]
    fn native() -> bool {
        T::native()
    }
    #[inline]
    fn into_ffi(self) -> Self::Ffi {
        RArray(self.map(T::into_ffi))
    }
    #[inline]
    unsafe fn from_ffi(ffi: Self::Ffi) -> Self {
        // SAFETY: each element was made by `T::into_ffi`.
        ffi.0.map(|f| unsafe { T::from_ffi(f) })
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        for item in self {
            item.encode(out);
        }
    }
    #[inline]
    fn encode_owned(self, out: &mut Vec<u8>) {
        for item in self {
            item.encode_owned(out);
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        // Decoded into a `Vec` first: an array cannot be built element by element
        // with `?` on stable Rust without unsafe code.
        let mut items = r.vec(N)?;
        for _ in 0..N {
            items.push(T::decode(r)?);
        }
        Ok(items.try_into().unwrap_or_else(|_| unreachable!("exactly N elements")))
    }
}

macro_rules! tuples {
    ($($name:ident($($t:ident $i:tt),+);)*) => {$(
        // SAFETY: a `#[repr(C)]` tuple struct of the elements' `Ffi` forms.
        unsafe impl<$($t: Abi),+> Abi for ($($t,)+) {
            type Ffi = crate::ffi::$name<$($t::Ffi),+>;
            const DESC: TypeRef = TypeRef::new(&TypeDesc::tuple(&[$($t::DESC),+]));
            const WIRE_MIN: usize = 0 $(+ $t::WIRE_MIN)+;
            #[inline(always)]
            fn native() -> bool {
                true $(&& $t::native())+
            }
            #[inline]
            fn into_ffi(self) -> Self::Ffi {
                crate::ffi::$name($(self.$i.into_ffi()),+)
            }
            #[inline]
            unsafe fn from_ffi(ffi: Self::Ffi) -> Self {
                // SAFETY: each element was made by its type's `into_ffi`.
                unsafe { ($($t::from_ffi(ffi.$i),)+) }
            }
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                $(self.$i.encode(out);)+
            }
            #[inline]
            fn encode_owned(self, out: &mut Vec<u8>) {
                $(self.$i.encode_owned(out);)+
            }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
                Ok(($($t::decode(r)?,)+))
            }
        }
    )*};
}
crate::ffi::with_tuples!(tuples);
