//! Reading a plugin's manifest out of the file, without loading it.
//!
//! No code of the plugin runs here: the file is parsed with the `object` crate
//! (ELF, Mach-O and PE alike), read on demand through [`object::ReadCache`] so only
//! the headers and the manifest section are touched.

use std::fs::File;
use std::path::{Path, PathBuf};

use object::read::ReadCache;
use object::{Architecture, FileKind, Object, ObjectKind, ObjectSection, ObjectSegment};
use tomada::Manifest;
use tomada::descriptor::{ManifestError, SECTION_ELF, SECTION_MACHO, SECTION_PE};

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

/// Reads the manifest of the plugin at `path` without loading it.
///
/// Checks that the file exists, is a shared library for this machine's
/// architecture and is whole, and that it carries a tomada manifest of this
/// boundary version. It does not check the contract: see [`crate::load`].
///
/// # Errors
/// [`LoadError::NotFound`], [`LoadError::NotAFile`], [`LoadError::Io`],
/// [`LoadError::NotALibrary`], [`LoadError::Damaged`],
/// [`LoadError::WrongArchitecture`], [`LoadError::NoDescriptor`],
/// [`LoadError::BadMagic`], [`LoadError::BoundaryMismatch`].
pub fn inspect(path: impl AsRef<Path>) -> Result<Inspection, LoadError> {
    let path = path.as_ref();
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
    let cache = ReadCache::new(file);
    let data = &cache;

    let kind = FileKind::parse(data).map_err(|_| match unknown_format(data, meta.len()) {
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
    match object.kind() {
        ObjectKind::Dynamic => {}
        ObjectKind::Executable => {
            return Err(LoadError::NotALibrary { path: owned(), reason: "it is an executable".into() });
        }
        ObjectKind::Relocatable => {
            return Err(LoadError::NotALibrary {
                path: owned(),
                reason: "it is an object file (`.o`) that was never linked".into(),
            });
        }
        ObjectKind::Core => {
            return Err(LoadError::NotALibrary { path: owned(), reason: "it is a core dump".into() });
        }
        _ => {
            return Err(LoadError::NotALibrary {
                path: owned(),
                reason: "it is an object file of an unknown kind".into(),
            });
        }
    }
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
        if offset.checked_add(size).is_none_or(|end| end > meta.len()) {
            return Err(LoadError::Damaged {
                path: owned(),
                reason: format!(
                    "it is truncated: a segment ends at byte {}, the file has {}",
                    offset.saturating_add(size),
                    meta.len()
                ),
            });
        }
    }

    let section_name = match kind {
        FileKind::MachO32 | FileKind::MachO64 => SECTION_MACHO,
        FileKind::Pe32 | FileKind::Pe64 => SECTION_PE,
        _ => SECTION_ELF,
    };
    let section = object.section_by_name(section_name).ok_or_else(|| LoadError::NoDescriptor { path: owned() })?;
    let bytes = section.data().map_err(|e| LoadError::Damaged {
        path: owned(),
        reason: format!("its tomada section cannot be read ({e})"),
    })?;
    let manifest = Manifest::parse(bytes).map_err(|e| match e {
        ManifestError::BadMagic => LoadError::BadMagic { path: owned() },
        ManifestError::Boundary { found } => {
            LoadError::BoundaryMismatch { path: owned(), expected: tomada::BOUNDARY_VERSION, found }
        }
        other => LoadError::Damaged { path: owned(), reason: other.to_string() },
    })?;
    let len = Manifest::declared_len(bytes).expect("a parsed manifest has a length");
    Ok(Inspection { path: owned(), manifest, manifest_bytes: bytes[..len].to_vec() })
}

enum Unknown {
    /// The magic bytes of an object format, then too little to parse.
    CutShort(&'static str),
    Text,
    Binary,
}

fn unknown_format(data: &ReadCache<File>, len: u64) -> Unknown {
    use object::ReadRef;
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
