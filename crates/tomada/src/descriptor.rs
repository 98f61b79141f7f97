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
//! A library may export several implementations (one [`export!`](crate::export)
//! with several entries): each has its own manifest, all of them in the one section
//! (concatenated, each self-delimiting; [`Manifest::parse_section`] reads them all),
//! and its own descriptor symbol, named by its position ([`Manifest::index`],
//! [`symbol`]): the first is `TOMADA_DESCRIPTOR`, so a host that knows only one
//! export per library still finds it.
//!
//! Both start with [`MAGIC`] and [`BOUNDARY_VERSION`], a header whose layout never
//! changes, checked before anything else is read.

use std::ffi::c_void;
use std::fmt;

use crate::ffi::{RSlice, RVec, Status};
use crate::interface::{self, ContractDesc, Interface, Reader, put, put_str, put_u32};

/// The first eight bytes of every descriptor. The high first byte catches 7-bit
/// mangling, as PNG's signature does.
pub const MAGIC: [u8; 8] = *b"\x89TOMADA\n";

/// The version of tomada's own boundary: the descriptor, the manifest encoding and
/// the FFI types of [`crate::ffi`]. Host and plugin must agree on it exactly.
pub const BOUNDARY_VERSION: u32 = 3;

/// Which tomada releases speak which boundary version, for refusals that say what to
/// rebuild with.
pub const fn boundary_releases(version: u32) -> &'static str {
    match version {
        1 => "tomada 0.1",
        2 => "tomada 0.2",
        3 => "tomada 0.3",
        _ => "an unknown tomada release",
    }
}

/// Name of the exported descriptor symbol (of a library's first export).
pub const SYMBOL: &str = "TOMADA_DESCRIPTOR";

/// The most exports one library may have.
pub const MAX_EXPORTS: u32 = 32;

/// Name of the descriptor symbol of export number `index` ([`Manifest::index`]):
/// [`SYMBOL`] for the first, `TOMADA_DESCRIPTOR_<index>` for the others.
pub fn symbol(index: u32) -> String {
    if index == 0 { SYMBOL.to_owned() } else { format!("{SYMBOL}_{index}") }
}

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
    /// The plugin's tomada reads and sends native sequences (see
    /// [`crate::abi::native`]): a host built by the same compiler for the same target
    /// may pass it `Vec`s of native records as they lie.
    pub const NATIVE_RECORDS: u32 = 2;
    /// The plugin's dispatch function answers a byte string (a `String`, a `Vec<u8>`)
    /// with its bytes alone, handed over as they lie, when its caller asks (a method
    /// number with [`BYTES_ALONE`](crate::client::BYTES_ALONE) set; status
    /// [`Status::BYTES`](crate::ffi::Status::BYTES)): a runner then sends the
    /// plugin's own buffer, without encoding it into another first. A runner asks
    /// only a plugin with this flag (one built before it would take the bit for an
    /// unknown method); a plugin with it answers as before when not asked.
    pub const BYTES_ALONE: u32 = 4;
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
/// Makes the plugin instance with the host's context (see [`crate::context()`]):
/// `context` is readable by the constructor while it runs.
pub type CreateWithFn = unsafe extern "C" fn(out: *mut *const c_void, panic: *mut RVec, context: RSlice) -> Status;
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
    /// Runs a byte-level call (isolated mode: see [`crate::client`]).
    pub dispatch: crate::client::DispatchFn,
    /// Receives the host's services (its logger) before the instance is made.
    pub attach: crate::logging::AttachFn,
    /// Makes the plugin instance with the host's context. Added after the first
    /// release of this boundary version: a descriptor whose [`Header::size`] ends
    /// before it has none (the host reads it as `None` and calls [`Self::create`]).
    pub create_with: Option<CreateWithFn>,
}

impl Descriptor {
    /// The size of a descriptor without [`Descriptor::create_with`] (the smallest a
    /// host of this boundary version accepts).
    pub const MIN_SIZE: usize = std::mem::offset_of!(Descriptor, create_with);
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
    /// [`flags`] bits.
    pub flags: u32,
    /// The export's position in its library: 0 for the first (or only) one. Its
    /// descriptor symbol is [`symbol`]`(index)`.
    pub index: u32,
    /// The plugin's metadata.
    pub info: Info,
    /// `rustc --version` of the compiler that built the plugin.
    pub rustc: String,
    /// The target triple the plugin was built for.
    pub target: String,
    /// The contract the plugin implements, method by method.
    pub contract: Interface,
}

/// Why manifest bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestError {
    /// The bytes do not start with the expected magic.
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
            ManifestError::BadMagic => f.write_str("the tomada descriptor does not start with tomada's magic bytes"),
            ManifestError::Boundary { found } => write!(
                f,
                "built for tomada boundary version {found} ({}), this side speaks {BOUNDARY_VERSION} ({})",
                boundary_releases(*found),
                boundary_releases(BOUNDARY_VERSION)
            ),
            ManifestError::Malformed(why) => write!(f, "the tomada descriptor is damaged: {why}"),
        }
    }
}

impl std::error::Error for ManifestError {}

/// Magic, boundary, total length, flags, export index.
const FIXED: usize = 24;
/// Name, version, description, rustc, target.
const STRINGS: usize = 5;

/// The number of bytes [`encode`] writes.
pub const fn encoded_len(strings: &[&str; STRINGS], contract: &ContractDesc) -> usize {
    let mut len = FIXED;
    let mut i = 0;
    while i < STRINGS {
        len += interface::str_len(strings[i]);
        i += 1;
    }
    len + interface::contract_len(contract)
}

/// Encodes a manifest: `strings` are the plugin's name, version and description, and
/// the rustc version and target that built it. `N` must be [`encoded_len`]. Runs at
/// compile time in [`export!`](crate::export). The manifest of a library's first
/// export: see [`encode_export`] for the others.
pub const fn encode<const N: usize>(flags: u32, strings: &[&str; STRINGS], contract: &ContractDesc) -> [u8; N] {
    encode_export::<N>(flags, 0, strings, contract)
}

/// [`encode`] for export number `index` of its library ([`Manifest::index`]).
pub const fn encode_export<const N: usize>(
    flags: u32,
    index: u32,
    strings: &[&str; STRINGS],
    contract: &ContractDesc,
) -> [u8; N] {
    assert!(N == encoded_len(strings, contract), "manifest length mismatch");
    assert!(N <= u32::MAX as usize, "manifest too long");
    let mut out = [0u8; N];
    let mut at = put(&mut out, 0, &MAGIC);
    at = put_u32(&mut out, at, BOUNDARY_VERSION);
    at = put_u32(&mut out, at, N as u32);
    at = put_u32(&mut out, at, flags);
    // Reserved (always 0) before several exports per library: old hosts ignore it.
    at = put_u32(&mut out, at, index);
    let mut i = 0;
    while i < STRINGS {
        at = put_str(&mut out, at, strings[i]);
        i += 1;
    }
    at = interface::write_contract(&mut out, at, contract);
    assert!(at == N, "manifest length mismatch");
    out
}

/// The manifests of a library's exports as one section image, in order. `N` must
/// be the sum of their lengths. Runs at compile time in [`export!`](crate::export).
pub const fn concat<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut p = 0;
    while p < parts.len() {
        at = put(&mut out, at, parts[p]);
        p += 1;
    }
    assert!(at == N, "manifest length mismatch");
    out
}

/// Checks magic and boundary version and cuts `bytes` to the declared length.
fn header<'a>(bytes: &'a [u8], magic: &[u8; 8]) -> Result<Reader<'a>, ManifestError> {
    if bytes.len() < magic.len() || bytes[..magic.len()] != *magic {
        return Err(ManifestError::BadMagic);
    }
    let mut r = Reader { bytes: &bytes[magic.len()..] };
    let boundary = r.u32().map_err(ManifestError::Malformed)?;
    if boundary != BOUNDARY_VERSION {
        return Err(ManifestError::Boundary { found: boundary });
    }
    let total = r.u32().map_err(ManifestError::Malformed)? as usize;
    if total < 16 || total > bytes.len() {
        return Err(ManifestError::Malformed("its length is wrong"));
    }
    // Linkers pad sections: read only the declared length.
    Ok(Reader { bytes: &bytes[16..total] })
}

impl Manifest {
    /// Reads manifest bytes, checking magic and boundary version first. Never panics,
    /// never recurses or allocates without bound, whatever the bytes.
    ///
    /// # Errors
    /// [`ManifestError`] says which part is wrong.
    ///
    /// # Examples
    /// ```
    /// use tomada::Contract;
    /// use tomada::descriptor::{encode, encoded_len, Manifest, ManifestError};
    ///
    /// #[tomada::contract(abi = 1, name = "demo::Api")]
    /// pub trait Api { fn ping(&self) -> u8; }
    ///
    /// const S: [&str; 5] = ["demo", "1.0.0", "a demo", "rustc 1.95.0", "x86_64-unknown-linux-gnu"];
    /// const N: usize = encoded_len(&S, &<dyn Api as Contract>::DESCRIPTION);
    /// static BYTES: [u8; N] = encode::<N>(0, &S, &<dyn Api as Contract>::DESCRIPTION);
    ///
    /// let m = Manifest::parse(&BYTES).unwrap();
    /// assert_eq!((m.info.name.as_str(), m.contract.name.as_str(), m.contract.abi), ("demo", "demo::Api", 1));
    /// assert_eq!(m.contract.methods[0].to_string(), "fn ping(&self) -> u8");
    /// assert_eq!(Manifest::parse(b"not a manifest"), Err(ManifestError::BadMagic));
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let mut r = header(bytes, &MAGIC)?;
        let m = (|| {
            let flags = r.u32()?;
            let index = r.u32()?;
            if index >= MAX_EXPORTS {
                return Err("its export index is out of range");
            }
            let name = r.string()?;
            let version = r.string()?;
            let description = r.string()?;
            let rustc = r.string()?;
            let target = r.string()?;
            let contract = r.interface()?;
            if !r.bytes.is_empty() {
                return Err("it has trailing bytes");
            }
            Ok(Manifest {
                boundary: BOUNDARY_VERSION,
                flags,
                index,
                info: Info { name, version, description },
                rustc,
                target,
                contract,
            })
        })();
        m.map_err(ManifestError::Malformed)
    }

    /// Reads every manifest of a library's section: one per export, in the order
    /// of their [`index`](Manifest::index), each with its own bytes (without
    /// padding). Zero bytes between and after manifests (linker padding) are skipped.
    ///
    /// # Errors
    /// As [`Manifest::parse`] for the first manifest that is wrong; `Malformed` if
    /// the section holds none, or two exports share an index or a name, or the
    /// indices leave a gap.
    pub fn parse_section(mut bytes: &[u8]) -> Result<Vec<(Manifest, &[u8])>, ManifestError> {
        let mut out: Vec<(Manifest, &[u8])> = Vec::new();
        loop {
            while let [0, rest @ ..] = bytes {
                bytes = rest;
            }
            if bytes.is_empty() {
                break;
            }
            let manifest = Manifest::parse(bytes)?;
            let len = Manifest::declared_len(bytes).ok_or(ManifestError::Malformed("its length is wrong"))?;
            if out.len() as u32 >= MAX_EXPORTS {
                return Err(ManifestError::Malformed("it has too many exports"));
            }
            if out.iter().any(|(m, _)| m.index == manifest.index) {
                return Err(ManifestError::Malformed("two exports have the same index"));
            }
            if out.iter().any(|(m, _)| m.info.name == manifest.info.name) {
                return Err(ManifestError::Malformed("two exports have the same name"));
            }
            out.push((manifest, &bytes[..len]));
            bytes = &bytes[len..];
        }
        if out.is_empty() {
            return Err(ManifestError::Malformed("its section holds no manifest"));
        }
        out.sort_by_key(|(m, _)| m.index);
        if out.iter().enumerate().any(|(i, (m, _))| m.index as usize != i) {
            return Err(ManifestError::Malformed("an export is missing (a gap in the export indices)"));
        }
        Ok(out)
    }

    /// The manifest's length as declared in its header, if the header is readable;
    /// lets a reader cut padding off a section.
    pub fn declared_len(bytes: &[u8]) -> Option<usize> {
        let len = bytes.get(12..16)?;
        Some(u32::from_le_bytes(len.try_into().ok()?) as usize)
    }
}

/// The plugin's name inside manifest bytes (empty if they are too short to hold it):
/// a slice of the same bytes, so it lives as long as they do.
pub fn name_in(manifest: &[u8]) -> &[u8] {
    let Some(len) = manifest.get(FIXED..FIXED + 4) else { return &[] };
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    manifest.get(FIXED + 4..FIXED + 4 + len).unwrap_or(&[])
}

/// Whether all `names` differ (checked at compile time by
/// [`export!`](crate::export): each export of a library has its own name).
pub const fn distinct(names: &[&str]) -> bool {
    let mut i = 0;
    while i < names.len() {
        let mut j = i + 1;
        while j < names.len() {
            if crate::interface::str_eq(names[i], names[j]) {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// The first eight bytes of each contract a host executable expects (see
/// [`expects!`](crate::expects)).
pub const EXPECT_MAGIC: [u8; 8] = *b"\x89TOMADA?";
/// ELF/PE section holding a host's expected contracts.
pub const EXPECT_SECTION_ELF: &str = ".tomada.host";
/// Mach-O section (segment `__DATA`) holding a host's expected contracts.
pub const EXPECT_SECTION_MACHO: &str = "__tomada_host";
/// PE section holding a host's expected contracts (at most 8 bytes).
pub const EXPECT_SECTION_PE: &str = ".tomadah";

/// The number of bytes [`encode_expectation`] writes.
pub const fn expectation_len(contract: &ContractDesc) -> usize {
    16 + interface::contract_len(contract)
}

/// Encodes one expected contract for a host executable's section.
pub const fn encode_expectation<const N: usize>(contract: &ContractDesc) -> [u8; N] {
    assert!(N == expectation_len(contract), "expectation length mismatch");
    let mut out = [0u8; N];
    let mut at = put(&mut out, 0, &EXPECT_MAGIC);
    at = put_u32(&mut out, at, BOUNDARY_VERSION);
    at = put_u32(&mut out, at, N as u32);
    at = interface::write_contract(&mut out, at, contract);
    assert!(at == N, "expectation length mismatch");
    out
}

/// Reads every contract in a host executable's expectations section. Zero bytes
/// between records (linker padding) are skipped.
///
/// # Errors
/// As [`Manifest::parse`], for the first record that is wrong.
pub fn parse_expectations(mut bytes: &[u8]) -> Result<Vec<Interface>, ManifestError> {
    let mut out = Vec::new();
    loop {
        while let [0, rest @ ..] = bytes {
            bytes = rest;
        }
        if bytes.is_empty() {
            return Ok(out);
        }
        let mut r = header(bytes, &EXPECT_MAGIC)?;
        let len = Manifest::declared_len(bytes).expect("header checked the length");
        let contract = r.interface().map_err(ManifestError::Malformed)?;
        if !r.bytes.is_empty() {
            return Err(ManifestError::Malformed("a contract record has trailing bytes"));
        }
        out.push(contract);
        bytes = &bytes[len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interface::MethodDesc;

    const C: ContractDesc = ContractDesc {
        name: "c::Api",
        abi: 7,
        minor: 0,
        methods: &[MethodDesc {
            name: "go",
            since: 0,
            fallback: false,
            args: &[<&str as crate::Arg>::DESC],
            ret: <() as crate::Abi>::DESC,
        }],
    };
    const S: [&str; 5] = ["plug", "0.1.0", "dá oi 👋", "rustc x", "t"];
    const N: usize = encoded_len(&S, &C);
    static BYTES: [u8; N] = encode::<N>(flags::PANIC_UNWIND, &S, &C);

    #[test]
    fn round_trip() {
        let m = Manifest::parse(&BYTES).unwrap();
        assert_eq!(m.boundary, BOUNDARY_VERSION);
        assert_eq!(m.flags, flags::PANIC_UNWIND);
        assert_eq!(m.info, Info { name: "plug".into(), version: "0.1.0".into(), description: "dá oi 👋".into() });
        assert_eq!((m.rustc.as_str(), m.target.as_str()), ("rustc x", "t"));
        assert_eq!(m.contract, Interface::from(&C));
        assert_eq!(Manifest::declared_len(&BYTES), Some(N));
    }

    #[test]
    fn padding_is_ignored() {
        let mut padded = BYTES.to_vec();
        padded.extend([0; 16]);
        assert_eq!(Manifest::parse(&padded).unwrap(), Manifest::parse(&BYTES).unwrap());
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
        assert_eq!(Manifest::parse(&other), Err(ManifestError::Boundary { found: 99 }));
    }

    #[test]
    fn lying_lengths_are_errors() {
        let mut bad = BYTES;
        bad[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(Manifest::parse(&bad), Err(ManifestError::Malformed(_))));
        let mut bad = BYTES;
        bad[12..16].copy_from_slice(&(N as u32 + 1).to_le_bytes());
        assert!(matches!(Manifest::parse(&bad), Err(ManifestError::Malformed(_))));
    }

    const S2: [&str; 5] = ["other", "0.2.0", "", "rustc x", "t"];
    const N2: usize = encoded_len(&S2, &C);
    static SECOND: [u8; N2] = encode_export::<N2>(flags::PANIC_UNWIND, 1, &S2, &C);

    #[test]
    fn a_section_of_several_exports_is_read_whole_in_index_order() {
        // Second first, with padding between and after, as a linker may lay them out.
        let mut section = SECOND.to_vec();
        section.extend([0; 5]);
        section.extend(BYTES);
        section.extend([0; 3]);
        let all = Manifest::parse_section(&section).unwrap();
        let names: Vec<(&str, u32)> = all.iter().map(|(m, _)| (m.info.name.as_str(), m.index)).collect();
        assert_eq!(names, [("plug", 0), ("other", 1)]);
        assert_eq!(all[0].1, &BYTES[..]);
        assert_eq!(all[1].1, &SECOND[..]);
        // A single manifest reads as one export, as `parse` reads it.
        let one = Manifest::parse_section(&BYTES).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].0, Manifest::parse(&BYTES).unwrap());
        // Old readers, which parse the section as one manifest, see the first export.
        assert_eq!(Manifest::parse(&section[N2 + 5..]).unwrap().info.name, "plug");
    }

    #[test]
    fn a_section_that_contradicts_itself_is_refused() {
        let malformed = |bytes: &[u8]| matches!(Manifest::parse_section(bytes), Err(ManifestError::Malformed(_)));
        assert!(malformed(&[]), "empty");
        assert!(malformed(&[0; 16]), "only padding");
        // Two manifests with index 0.
        let twice = [BYTES.to_vec(), BYTES.to_vec()].concat();
        assert!(malformed(&twice));
        // Only the second export: a gap.
        assert!(malformed(&SECOND));
        // Garbage after a good manifest.
        let mut trailing = BYTES.to_vec();
        trailing.extend(b"junk");
        assert!(Manifest::parse_section(&trailing).is_err());
        // Every cut of a two-export section fails or reads the first only.
        let section = [BYTES.to_vec(), SECOND.to_vec()].concat();
        for cut in 0..section.len() {
            if let Ok(all) = Manifest::parse_section(&section[..cut]) {
                assert_eq!(cut, N, "only the whole first manifest may stand alone");
                assert_eq!(all.len(), 1);
            }
        }
        // An index past the limit.
        let mut far = SECOND;
        far[20..24].copy_from_slice(&MAX_EXPORTS.to_le_bytes());
        assert!(matches!(Manifest::parse(&far), Err(ManifestError::Malformed(_))));
    }

    #[test]
    fn names_are_distinct() {
        assert!(distinct(&["a", "b", "ab"]));
        assert!(!distinct(&["a", "b", "a"]));
        assert!(distinct(&[]));
        assert_eq!((symbol(0).as_str(), symbol(3).as_str()), (SYMBOL, "TOMADA_DESCRIPTOR_3"));
    }

    #[test]
    fn expectations_round_trip_with_padding() {
        const L: usize = expectation_len(&C);
        static ONE: [u8; L] = encode_expectation::<L>(&C);
        let mut section = ONE.to_vec();
        section.extend([0, 0, 0]);
        section.extend(ONE);
        let parsed = parse_expectations(&section).unwrap();
        assert_eq!(parsed, vec![Interface::from(&C), Interface::from(&C)]);
        assert_eq!(parse_expectations(&[]).unwrap(), vec![]);
        assert!(parse_expectations(&section[..L - 1]).is_err());
    }
}
