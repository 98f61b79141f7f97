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
    let bytes = find(path, data, len, Record::Manifest)?.ok_or_else(|| LoadError::NoDescriptor { path: owned() })?;
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
    let bytes = find(path, data, len, Record::Expectations)?
        .ok_or_else(|| LoadError::NoExpectations { path: path.to_path_buf() })?;
    descriptor::parse_expectations(bytes).map_err(|e| manifest_error(path, e))
}

/// Checks the file (a shared library for a manifest, any object for expectations)
/// and returns the bytes of `record`'s section, or `None` if it has none.
fn find<'d, R: ReadRef<'d>>(path: &Path, data: R, len: u64, record: Record) -> Result<Option<&'d [u8]>, LoadError> {
    if let Some(found) = elf::fast_path(data, len, record) {
        return Ok(found);
    }
    let owned = || path.to_path_buf();
    let object = parse(path, data, len)?;
    if record == Record::Manifest {
        let not_a_library = |reason: &str| Err(LoadError::NotALibrary { path: owned(), reason: reason.into() });
        match object.kind() {
            ObjectKind::Dynamic => {}
            ObjectKind::Executable => return not_a_library("it is an executable"),
            ObjectKind::Relocatable => return not_a_library("it is an object file (`.o`) that was never linked"),
            ObjectKind::Core => return not_a_library("it is a core dump"),
            _ => return not_a_library("it is an object file of an unknown kind"),
        }
    }
    section_bytes(&object, record)
        .transpose()
        .map_err(|e| LoadError::Damaged { path: owned(), reason: format!("its tomada section cannot be read ({e})") })
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

/// Reads with `pread`, keeping the position here: a `ReadCache` over a plain `File`
/// would `lseek` before every read, doubling the system calls of an inspection.
#[cfg(unix)]
struct Source {
    file: File,
    pos: u64,
    len: u64,
}

#[cfg(unix)]
impl object::ReadCacheOps for Source {
    fn len(&mut self) -> Result<u64, ()> {
        Ok(self.len)
    }
    fn seek(&mut self, pos: u64) -> Result<u64, ()> {
        self.pos = pos;
        Ok(pos)
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ()> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos).map_err(|_| ())?;
        self.pos += n as u64;
        Ok(n)
    }
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, self.pos).map_err(|_| ())?;
        self.pos += buf.len() as u64;
        Ok(())
    }
}

#[cfg(not(unix))]
type Source = File;

/// Opens a non-empty regular file for reading on demand.
fn open(path: &Path) -> Result<(u64, ReadCache<Source>), LoadError> {
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
    #[cfg(unix)]
    let file = Source { file, pos: 0, len: meta.len() };
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

/// The common case, fast: an ELF shared library for this machine. Reads the file
/// header, the program headers, the section headers and the section-name table once
/// each, and the one section wanted — where `object::File::parse` would also read the
/// symbol tables and each section name separately. Anything unusual returns `None`,
/// and the general path (above) runs and says what is wrong.
mod elf {
    use object::elf::{FileHeader32, FileHeader64, PT_LOAD};
    use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
    use object::{BinaryFormat, Endianness, FileKind, ReadRef};

    use super::Record;

    pub(super) fn fast_path<'d, R: ReadRef<'d>>(data: R, len: u64, record: Record) -> Option<Option<&'d [u8]>> {
        match FileKind::parse(data).ok()? {
            FileKind::Elf64 => sections::<FileHeader64<Endianness>, R>(data, len, record),
            FileKind::Elf32 => sections::<FileHeader32<Endianness>, R>(data, len, record),
            _ => None,
        }
    }

    fn host_machine() -> Option<object::elf::Machine> {
        use object::elf::{EM_386, EM_AARCH64, EM_ARM, EM_RISCV, EM_X86_64};
        Some(match std::env::consts::ARCH {
            "x86_64" => EM_X86_64,
            "x86" => EM_386,
            "aarch64" => EM_AARCH64,
            "arm" => EM_ARM,
            "riscv64" => EM_RISCV,
            _ => return None,
        })
    }

    fn sections<'d, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'d>>(
        data: R,
        len: u64,
        record: Record,
    ) -> Option<Option<&'d [u8]>> {
        let header = Elf::parse(data).ok()?;
        let endian = header.endian().ok()?;
        if header.e_machine(endian) != host_machine()? {
            return None;
        }
        if record == Record::Manifest && header.e_type(endian) != object::elf::ET_DYN {
            return None;
        }
        for segment in header.program_headers(endian, data).ok()? {
            let (offset, size): (u64, u64) = (segment.p_offset(endian).into(), segment.p_filesz(endian).into());
            if segment.p_type(endian) == PT_LOAD && offset.checked_add(size)? > len {
                return None;
            }
        }
        let headers = header.section_headers(endian, data).ok()?;
        let names = headers.get(header.shstrndx(endian, data).ok()? as usize)?.data(endian, data).ok()?;
        let wanted = record.section_name(BinaryFormat::Elf).as_bytes();
        for section in headers {
            let name = names.get(section.sh_name(endian) as usize..)?;
            let name = &name[..name.iter().position(|&b| b == 0)?];
            if name == wanted {
                return Some(Some(section.data(endian, data).ok()?));
            }
        }
        Some(None)
    }
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

    #[test]
    fn the_elf_fast_path_agrees_with_the_general_path() {
        let greeter = std::fs::read(tomada_test_support::cdylib("greeter")).unwrap();
        let fast = elf::fast_path(&*greeter, greeter.len() as u64, Record::Manifest)
            .expect("a plain plugin takes the fast path");
        let object = object::File::parse(&*greeter).unwrap();
        let general = section_bytes(&object, Record::Manifest).unwrap().unwrap();
        assert_eq!(fast, Some(general));
        // A library without the section: the fast path says so by itself.
        assert_eq!(elf::fast_path(&*greeter, greeter.len() as u64, Record::Expectations), Some(None));
        // Anything odd is left to the general path, which explains it.
        let cut = &greeter[..greeter.len() / 2];
        assert_eq!(elf::fast_path(cut, cut.len() as u64, Record::Manifest), None);
        let mut arm = greeter.clone();
        arm[18] ^= 0x40;
        assert_eq!(elf::fast_path(&*arm, arm.len() as u64, Record::Manifest), None);
    }
}
