//! The plugin descriptor: what a plugin says about itself, in two forms.
//!
//! * The [`Manifest`] bytes sit in a link section of their own (`.tomada` on ELF
//!   and PE, `__DATA,__tomada` on Mach-O) and hold no pointers, so a host can read
//!   and check them straight from the file, before the dynamic loader runs any of
//!   the plugin's code.
//! * The exported [`Descriptor`] symbol (`TOMADA_DESCRIPTOR`) is what a host finds
//!   once it has opened the library: the same facts plus the vtable and the
//!   functions that make and drop the plugin instance.
//!
//! Both start with [`MAGIC`] and [`BOUNDARY_VERSION`], a header whose layout never
//! changes, checked before anything else is read.

use std::ffi::c_void;
use std::fmt;

use crate::ffi::{RSlice, RVec, Status};

/// The first eight bytes of every descriptor. The high first byte catches 7-bit
/// mangling, as PNG's signature does.
pub const MAGIC: [u8; 8] = *b"\x89TOMADA\n";

/// The version of tomada's own boundary: the descriptor, the manifest encoding and
/// the FFI types of [`crate::ffi`]. Host and plugin must agree on it exactly.
pub const BOUNDARY_VERSION: u32 = 1;

/// Name of the exported descriptor symbol.
pub const SYMBOL: &str = "TOMADA_DESCRIPTOR";

/// Name of the link section holding the manifest, per object format.
pub const SECTION_ELF: &str = ".tomada";
/// Name of the Mach-O section (in segment `__DATA`) holding the manifest.
pub const SECTION_MACHO: &str = "__tomada";
/// Name of the PE section holding the manifest.
pub const SECTION_PE: &str = ".tomada";

/// Bits of [`Manifest::flags`].
pub mod flags {
    /// The plugin was built with `panic = "unwind"`, so its panics can be caught.
    pub const PANIC_UNWIND: u32 = 1;
}

/// The never-changing start of a descriptor.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// The plugin's [`BOUNDARY_VERSION`].
    pub boundary: u32,
    /// `size_of::<Descriptor>()` in the plugin.
    pub size: u32,
}

/// Makes the plugin instance: writes a pointer to it to `out`, or, if the
/// constructor panicked, the panic message to `panic`.
pub type CreateFn = unsafe extern "C" fn(out: *mut *const c_void, panic: *mut RVec) -> Status;
/// Drops the plugin instance; a panic in its `Drop` is reported, not propagated.
pub type DestroyFn = unsafe extern "C" fn(this: *const c_void, panic: *mut RVec) -> Status;

/// The exported descriptor of a plugin (symbol [`SYMBOL`]). Made by
/// [`export!`](crate::export); read by `tomada-host`.
#[repr(C)]
#[derive(Debug)]
pub struct Descriptor {
    /// Checked first.
    pub header: Header,
    /// The contract's ABI (major) number.
    pub abi: u32,
    /// [`flags`] bits.
    pub flags: u32,
    /// The contract's layout fingerprint.
    pub fingerprint: u64,
    /// The contract's name, e.g. `pluginapi::Greeter`.
    pub contract: RSlice,
    /// The bytes of the manifest section, to compare with what was read from the file.
    pub manifest: RSlice,
    /// The contract's vtable.
    pub vtable: *const c_void,
    /// Makes the plugin instance.
    pub create: CreateFn,
    /// Drops the plugin instance.
    pub destroy: DestroyFn,
}

// SAFETY: the descriptor is immutable static data; its pointers refer to other
// immutable statics of the same library.
unsafe impl Sync for Descriptor {}

/// Plugin metadata: name, version and description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Info {
    /// The plugin's name, e.g. `greeter`.
    pub name: String,
    /// The plugin's version, e.g. `1.0.0`.
    pub version: String,
    /// One line saying what the plugin does.
    pub description: String,
}

/// Everything a plugin declares about itself, as read from its manifest section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// tomada's boundary version the plugin was built with.
    pub boundary: u32,
    /// The contract's ABI (major) number.
    pub abi: u32,
    /// [`flags`] bits.
    pub flags: u32,
    /// The contract's layout fingerprint.
    pub fingerprint: u64,
    /// The contract's name.
    pub contract: String,
    /// The plugin's metadata.
    pub info: Info,
    /// `rustc --version` of the compiler that built the plugin.
    pub rustc: String,
    /// The target triple the plugin was built for.
    pub target: String,
}

/// Why manifest bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestError {
    /// The bytes do not start with [`MAGIC`].
    BadMagic,
    /// The plugin speaks another boundary version.
    Boundary {
        /// What the plugin was built with.
        found: u32,
    },
    /// The bytes end early or contradict themselves.
    Malformed(&'static str),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::BadMagic => {
                f.write_str("the tomada descriptor does not start with tomada's magic bytes")
            }
            ManifestError::Boundary { found } => {
                write!(
                    f,
                    "built for tomada boundary version {found}, this side speaks {BOUNDARY_VERSION}"
                )
            }
            ManifestError::Malformed(why) => write!(f, "the tomada descriptor is damaged: {why}"),
        }
    }
}

impl std::error::Error for ManifestError {}

const FIXED: usize = 32;
const STRINGS: usize = 6;

/// The number of bytes [`encode`] writes for these strings (contract, name,
/// version, description, rustc, target).
pub const fn encoded_len(strings: &[&str; STRINGS]) -> usize {
    let mut len = FIXED;
    let mut i = 0;
    while i < STRINGS {
        len += 4 + strings[i].len();
        i += 1;
    }
    len
}

const fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        out[at + i] = bytes[i];
        i += 1;
    }
    at + bytes.len()
}

/// Encodes a manifest; `N` must be [`encoded_len`] of `strings`. Runs at compile time
/// in [`export!`](crate::export).
pub const fn encode<const N: usize>(
    abi: u32,
    flags: u32,
    fingerprint: u64,
    strings: &[&str; STRINGS],
) -> [u8; N] {
    assert!(N == encoded_len(strings), "manifest length mismatch");
    assert!(N <= u32::MAX as usize, "manifest too long");
    let mut out = [0u8; N];
    let mut at = put(&mut out, 0, &MAGIC);
    at = put(&mut out, at, &BOUNDARY_VERSION.to_le_bytes());
    at = put(&mut out, at, &(N as u32).to_le_bytes());
    at = put(&mut out, at, &abi.to_le_bytes());
    at = put(&mut out, at, &flags.to_le_bytes());
    at = put(&mut out, at, &fingerprint.to_le_bytes());
    let mut i = 0;
    while i < STRINGS {
        at = put(&mut out, at, &(strings[i].len() as u32).to_le_bytes());
        at = put(&mut out, at, strings[i].as_bytes());
        i += 1;
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ManifestError> {
        if self.bytes.len() < n {
            return Err(ManifestError::Malformed("it ends early"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, ManifestError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, ManifestError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn string(&mut self) -> Result<String, ManifestError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| ManifestError::Malformed("a string is not UTF-8"))
    }
}

impl Manifest {
    /// Reads manifest bytes, checking magic and boundary version first. Never panics,
    /// and allocates no more than `bytes.len()`.
    ///
    /// # Errors
    /// [`ManifestError`] says which part is wrong.
    ///
    /// # Examples
    /// ```
    /// use tomada::descriptor::{encode, encoded_len, Manifest, ManifestError};
    /// const S: [&str; 6] = ["demo::Api", "demo", "1.0.0", "a demo", "rustc 1.95.0", "x86_64-unknown-linux-gnu"];
    /// const N: usize = encoded_len(&S);
    /// static BYTES: [u8; N] = encode::<N>(1, 0, 42, &S);
    /// let m = Manifest::parse(&BYTES).unwrap();
    /// assert_eq!((m.abi, m.fingerprint, m.info.name.as_str()), (1, 42, "demo"));
    /// assert_eq!(Manifest::parse(b"not a manifest"), Err(ManifestError::BadMagic));
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(ManifestError::BadMagic);
        }
        let mut r = Reader {
            bytes: &bytes[MAGIC.len()..],
        };
        let boundary = r.u32()?;
        if boundary != BOUNDARY_VERSION {
            return Err(ManifestError::Boundary { found: boundary });
        }
        let total = r.u32()? as usize;
        if total < FIXED || total > bytes.len() {
            return Err(ManifestError::Malformed("its length is wrong"));
        }
        // Linkers pad sections: read only the declared length.
        let mut r = Reader {
            bytes: &bytes[16..total],
        };
        let abi = r.u32()?;
        let flags = r.u32()?;
        let fingerprint = r.u64()?;
        let contract = r.string()?;
        let name = r.string()?;
        let version = r.string()?;
        let description = r.string()?;
        let rustc = r.string()?;
        let target = r.string()?;
        if !r.bytes.is_empty() {
            return Err(ManifestError::Malformed("it has trailing bytes"));
        }
        Ok(Manifest {
            boundary,
            abi,
            flags,
            fingerprint,
            contract,
            info: Info {
                name,
                version,
                description,
            },
            rustc,
            target,
        })
    }

    /// The manifest's length as declared in its header, if the header is readable;
    /// lets a reader cut padding off a section.
    pub fn declared_len(bytes: &[u8]) -> Option<usize> {
        let len = bytes.get(12..16)?;
        Some(u32::from_le_bytes(len.try_into().ok()?) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: [&str; 6] = ["c::Api", "plug", "0.1.0", "dá oi 👋", "rustc x", "t"];
    const N: usize = encoded_len(&S);
    static BYTES: [u8; N] = encode::<N>(7, flags::PANIC_UNWIND, 0xdead_beef, &S);

    #[test]
    fn round_trip() {
        let m = Manifest::parse(&BYTES).unwrap();
        assert_eq!(m.boundary, BOUNDARY_VERSION);
        assert_eq!(m.abi, 7);
        assert_eq!(m.flags, flags::PANIC_UNWIND);
        assert_eq!(m.fingerprint, 0xdead_beef);
        assert_eq!(m.contract, "c::Api");
        assert_eq!(
            m.info,
            Info {
                name: "plug".into(),
                version: "0.1.0".into(),
                description: "dá oi 👋".into()
            }
        );
        assert_eq!((m.rustc.as_str(), m.target.as_str()), ("rustc x", "t"));
    }

    #[test]
    fn padding_is_ignored() {
        let mut padded = BYTES.to_vec();
        padded.extend([0; 16]);
        assert_eq!(
            Manifest::parse(&padded).unwrap(),
            Manifest::parse(&BYTES).unwrap()
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for len in 0..N {
            assert!(Manifest::parse(&BYTES[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn wrong_magic_and_boundary() {
        let mut bad = BYTES;
        bad[0] = b'X';
        assert_eq!(Manifest::parse(&bad), Err(ManifestError::BadMagic));
        let mut other = BYTES;
        other[8..12].copy_from_slice(&99u32.to_le_bytes());
        assert_eq!(
            Manifest::parse(&other),
            Err(ManifestError::Boundary { found: 99 })
        );
    }

    #[test]
    fn lying_lengths_are_errors() {
        let mut bad = BYTES;
        bad[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Manifest::parse(&bad),
            Err(ManifestError::Malformed(_))
        ));
        let mut bad = BYTES;
        bad[12..16].copy_from_slice(&(N as u32 + 1).to_le_bytes());
        assert!(matches!(
            Manifest::parse(&bad),
            Err(ManifestError::Malformed(_))
        ));
    }
}
