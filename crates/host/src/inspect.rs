//! Reading tomada's records out of a file, without loading it.
//!
//! No code of the file runs here: it is parsed with the `object` crate (ELF,
//! Mach-O and PE by the same code), read on demand through [`object::ReadCache`] so
//! only the headers and the one section wanted are touched. [`inspect`] reads a
//! plugin's manifest; [`expectations`] the contracts a host executable records with
//! `tomada::expects!`.

use std::fs::File;
use std::path::{Path, PathBuf};

use object::read::ReadCache;
use object::{Architecture, BinaryFormat, FileKind, Object, ObjectKind, ObjectSection, ObjectSegment, ReadRef};
use tomada::descriptor::{self, ManifestError};
use tomada::{Interface, Manifest};

use crate::LoadError;

/// A plugin file that passed inspection: a shared library for this architecture
/// with a readable tomada manifest.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The file inspected.
    pub path: PathBuf,
    /// What the plugin declares about itself.
    pub manifest: Manifest,
    /// The raw manifest bytes (without section padding), to compare with the
    /// loaded library's.
    pub manifest_bytes: Vec<u8>,
}

/// Which tomada section to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record {
    /// A plugin's manifest (`.tomada`).
    Manifest,
    /// A host's expected contracts (`.tomada.host`).
    Expectations,
}

impl Record {
    /// The section's name in a file of `format`.
    pub(crate) fn section_name(self, format: BinaryFormat) -> &'static str {
        match (self, format) {
            (Record::Manifest, BinaryFormat::MachO) => descriptor::SECTION_MACHO,
            (Record::Manifest, BinaryFormat::Pe | BinaryFormat::Coff) => descriptor::SECTION_PE,
            (Record::Manifest, _) => descriptor::SECTION_ELF,
            (Record::Expectations, BinaryFormat::MachO) => descriptor::EXPECT_SECTION_MACHO,
            (Record::Expectations, BinaryFormat::Pe | BinaryFormat::Coff) => descriptor::EXPECT_SECTION_PE,
            (Record::Expectations, _) => descriptor::EXPECT_SECTION_ELF,
        }
    }
}

/// The bytes of `record`'s section in `object`: `None` if there is none.
pub(crate) fn section_bytes<'d, R: ReadRef<'d>>(
    object: &object::File<'d, R>,
    record: Record,
) -> Option<Result<&'d [u8], object::Error>> {
    object.section_by_name(record.section_name(object.format())).map(|s| s.data())
}

/// Reads the manifest of the plugin at `path` without loading it.
///
/// Checks that the file exists, is a shared library for this machine's
/// architecture and is whole, and that it carries a tomada manifest of this
/// boundary version. It does not check the contract: see [`crate::check`].
///
/// # Errors
/// [`LoadError::NotFound`], [`LoadError::NotAFile`], [`LoadError::Io`],
/// [`LoadError::NotALibrary`], [`LoadError::Damaged`],
/// [`LoadError::WrongArchitecture`], [`LoadError::NoDescriptor`],
/// [`LoadError::BadMagic`], [`LoadError::BoundaryMismatch`].
///
/// # Examples
/// ```no_run
/// let inspection = tomada_host::inspect("bin/greeter_v1.so")?;
/// let m = &inspection.manifest;
/// println!("{} {} implements {} {}", m.info.name, m.info.version, m.contract.name, m.contract.version());
/// # Ok::<(), tomada_host::LoadError>(())
/// ```
pub fn inspect(path: impl AsRef<Path>) -> Result<Inspection, LoadError> {
    let path = path.as_ref();
    let (len, cache) = open(path)?;
    inspect_data(path, &cache, len)
}

/// [`inspect`] on bytes in memory, for fuzzing; `path` only names them in errors.
#[doc(hidden)]
pub fn inspect_bytes(path: &Path, bytes: &[u8]) -> Result<Inspection, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::NotALibrary { path: path.to_path_buf(), reason: "the file is empty".into() });
    }
    inspect_data(path, bytes, bytes.len() as u64)
}

fn inspect_data<'d, R: ReadRef<'d>>(path: &Path, data: R, len: u64) -> Result<Inspection, LoadError> {
    let owned = || path.to_path_buf();
    let object = parse(path, data, len)?;
    let not_a_library = |reason: &str| Err(LoadError::NotALibrary { path: owned(), reason: reason.into() });
    match object.kind() {
        ObjectKind::Dynamic => {}
        ObjectKind::Executable => return not_a_library("it is an executable"),
        ObjectKind::Relocatable => return not_a_library("it is an object file (`.o`) that was never linked"),
        ObjectKind::Core => return not_a_library("it is a core dump"),
        _ => return not_a_library("it is an object file of an unknown kind"),
    }
    let bytes =
        section_bytes(&object, Record::Manifest).ok_or_else(|| LoadError::NoDescriptor { path: owned() })?.map_err(
            |e| LoadError::Damaged { path: owned(), reason: format!("its tomada section cannot be read ({e})") },
        )?;
    let manifest = Manifest::parse(bytes).map_err(|e| manifest_error(path, e))?;
    let len = Manifest::declared_len(bytes).expect("a parsed manifest has a length");
    Ok(Inspection { path: owned(), manifest, manifest_bytes: bytes[..len].to_vec() })
}

/// Reads the contracts a host executable (or library) records that it expects,
/// with `tomada::expects!`, without running it.
///
/// # Errors
/// As [`inspect`] for the file itself; [`LoadError::NoExpectations`] if it records
/// none.
pub fn expectations(path: impl AsRef<Path>) -> Result<Vec<Interface>, LoadError> {
    let path = path.as_ref();
    let (len, cache) = open(path)?;
    expectations_data(path, &cache, len)
}

/// [`expectations`] on bytes in memory, for fuzzing.
#[doc(hidden)]
pub fn expectations_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<Interface>, LoadError> {
    expectations_data(path, bytes, bytes.len() as u64)
}

fn expectations_data<'d, R: ReadRef<'d>>(path: &Path, data: R, len: u64) -> Result<Vec<Interface>, LoadError> {
    let object = parse(path, data, len)?;
    let bytes = section_bytes(&object, Record::Expectations)
        .ok_or_else(|| LoadError::NoExpectations { path: path.to_path_buf() })?
        .map_err(|e| LoadError::Damaged {
            path: path.to_path_buf(),
            reason: format!("its tomada section cannot be read ({e})"),
        })?;
    descriptor::parse_expectations(bytes).map_err(|e| manifest_error(path, e))
}

fn manifest_error(path: &Path, e: ManifestError) -> LoadError {
    let path = path.to_path_buf();
    match e {
        ManifestError::BadMagic => LoadError::BadMagic { path },
        ManifestError::Boundary { found } => {
            LoadError::BoundaryMismatch { path, expected: tomada::BOUNDARY_VERSION, found }
        }
        other => LoadError::Damaged { path, reason: other.to_string() },
    }
}

/// Opens a non-empty regular file for reading on demand.
fn open(path: &Path) -> Result<(u64, ReadCache<File>), LoadError> {
    let owned = || path.to_path_buf();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound { path: owned() },
        _ => LoadError::Io { path: owned(), source: e },
    })?;
    if !meta.is_file() {
        return Err(LoadError::NotAFile { path: owned() });
    }
    if meta.len() == 0 {
        return Err(LoadError::NotALibrary { path: owned(), reason: "the file is empty".into() });
    }
    let file = File::open(path).map_err(|e| LoadError::Io { path: owned(), source: e })?;
    Ok((meta.len(), ReadCache::new(file)))
}

/// Parses an object file of this machine's architecture whose segments all lie
/// inside the file.
fn parse<'d, R: ReadRef<'d>>(path: &Path, data: R, len: u64) -> Result<object::File<'d, R>, LoadError> {
    let owned = || path.to_path_buf();
    let kind = FileKind::parse(data).map_err(|_| match unknown_format(data, len) {
        Unknown::CutShort(format) => LoadError::Damaged {
            path: owned(),
            reason: format!("it starts like {format} file but is too short to be one"),
        },
        Unknown::Text => LoadError::NotALibrary { path: owned(), reason: "it is a text file".into() },
        Unknown::Binary => {
            LoadError::NotALibrary { path: owned(), reason: "it is not an ELF, Mach-O or PE file".into() }
        }
    })?;
    let object = object::File::parse(data).map_err(|e| match kind {
        FileKind::Elf32 | FileKind::Elf64 | FileKind::MachO32 | FileKind::MachO64 | FileKind::Pe32 | FileKind::Pe64 => {
            LoadError::Damaged { path: owned(), reason: format!("its headers cannot be read ({e})") }
        }
        other => LoadError::NotALibrary { path: owned(), reason: format!("it is a {other:?} file") },
    })?;
    if let Some(expected) = host_architecture()
        && object.architecture() != expected
    {
        return Err(LoadError::WrongArchitecture {
            path: owned(),
            expected: format!("{expected:?}"),
            found: format!("{:?}", object.architecture()),
        });
    }
    // A copy cut short still has intact headers: the loader would map pages past
    // the end of the file and fault on first touch.
    for segment in object.segments() {
        let (offset, size) = segment.file_range();
        if offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(LoadError::Damaged {
                path: owned(),
                reason: format!(
                    "it is truncated: a segment ends at byte {}, the file has {len}",
                    offset.saturating_add(size)
                ),
            });
        }
    }
    Ok(object)
}

enum Unknown {
    /// The magic bytes of an object format, then too little to parse.
    CutShort(&'static str),
    Text,
    Binary,
}

fn unknown_format<'d, R: ReadRef<'d>>(data: R, len: u64) -> Unknown {
    let head = data.read_bytes_at(0, len.min(512)).unwrap_or_default();
    const MAGICS: [(&[u8], &str); 6] = [
        (b"\x7fELF", "an ELF"),
        (b"MZ", "a PE"),
        (&[0xfe, 0xed, 0xfa, 0xce], "a Mach-O"),
        (&[0xfe, 0xed, 0xfa, 0xcf], "a Mach-O"),
        (&[0xce, 0xfa, 0xed, 0xfe], "a Mach-O"),
        (&[0xcf, 0xfa, 0xed, 0xfe], "a Mach-O"),
    ];
    if let Some((_, format)) = MAGICS.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Unknown::CutShort(format);
    }
    if head.iter().all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace() || b >= 0x80) {
        Unknown::Text
    } else {
        Unknown::Binary
    }
}

fn host_architecture() -> Option<Architecture> {
    Some(match std::env::consts::ARCH {
        "x86_64" => Architecture::X86_64,
        "x86" => Architecture::I386,
        "aarch64" => Architecture::Aarch64,
        "arm" => Architecture::Arm,
        "riscv64" => Architecture::Riscv64,
        "powerpc64" => Architecture::PowerPc64,
        "s390x" => Architecture::S390x,
        "loongarch64" => Architecture::LoongArch64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    //! Mach-O and PE/COFF are read by the same code as ELF; these objects, written
    //! with `object`'s writer, prove the sections are found and read in each format.

    use object::write::{Object as Writer, StandardSegment};
    use object::{Architecture, BinaryFormat, Endianness, SectionKind};

    use super::*;

    const MANIFEST: &[u8] = b"\x89TOMADA\n pretend manifest";
    const EXPECTS: &[u8] = b"\x89TOMADA? pretend expectations";

    fn object_with_sections(format: BinaryFormat) -> Vec<u8> {
        let mut obj = Writer::new(format, Architecture::X86_64, Endianness::Little);
        let segment = obj.segment_name(StandardSegment::Data).to_vec();
        for (record, bytes) in [(Record::Manifest, MANIFEST), (Record::Expectations, EXPECTS)] {
            let name = record.section_name(format).as_bytes().to_vec();
            let id = obj.add_section(segment.clone(), name, SectionKind::ReadOnlyData);
            obj.append_section_data(id, bytes, 1);
        }
        obj.write().unwrap()
    }

    #[test]
    fn sections_are_found_in_every_format() {
        for format in [BinaryFormat::Elf, BinaryFormat::MachO, BinaryFormat::Coff] {
            let bytes = object_with_sections(format);
            let file = object::File::parse(&*bytes).unwrap();
            assert_eq!(file.format(), format);
            let manifest = section_bytes(&file, Record::Manifest).unwrap().unwrap();
            assert_eq!(manifest, MANIFEST, "{format:?}");
            let expects = section_bytes(&file, Record::Expectations).unwrap().unwrap();
            assert_eq!(expects, EXPECTS, "{format:?}");
        }
    }

    #[test]
    fn a_missing_section_is_none_in_every_format() {
        for format in [BinaryFormat::Elf, BinaryFormat::MachO, BinaryFormat::Coff] {
            let obj = Writer::new(format, Architecture::X86_64, Endianness::Little);
            let bytes = obj.write().unwrap();
            let file = object::File::parse(&*bytes).unwrap();
            assert!(section_bytes(&file, Record::Manifest).is_none(), "{format:?}");
        }
    }

    #[test]
    fn pe_section_names_fit_in_eight_bytes() {
        assert!(Record::Manifest.section_name(BinaryFormat::Pe).len() <= 8);
        assert!(Record::Expectations.section_name(BinaryFormat::Pe).len() <= 8);
        assert!(Record::Expectations.section_name(BinaryFormat::MachO).len() <= 16);
    }
}
