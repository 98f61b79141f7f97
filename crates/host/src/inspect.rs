//! Reading tomada's records out of a file, without loading it.
//!
//! No code of the file runs here: it is parsed with the `object` crate (ELF,
//! Mach-O and PE by the same code), read on demand through [`object::ReadCache`] so
//! only the headers and the one section wanted are touched. [`inspect`] reads a
//! plugin's manifests (one per export); [`expectations`] the contracts a host executable records with
//! `tomada::expects!`.

use std::cell::{Cell, OnceCell};
use std::path::{Path, PathBuf};

use object::read::ReadCache;
use object::{Architecture, BinaryFormat, FileKind, Object, ObjectKind, ObjectSection, ObjectSegment, ReadRef};
use tomada::__private::descriptor::{self, ManifestError};
use tomada::{Interface, Manifest};

use crate::LoadError;
use crate::error::{Damage, Flaw, NotLibrary};
use crate::file::PluginFile;
use crate::structure::{self, Facts};

/// A plugin file that passed inspection: a shared library for this architecture
/// with readable tomada manifests, one per export.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The file inspected.
    pub path: PathBuf,
    /// What the chosen export declares about itself: the first (or only) export's
    /// manifest, until [`Inspection::choose`] picks another (as loading does, by
    /// contract or by name).
    pub manifest: Manifest,
    /// The chosen export's raw manifest bytes (without section padding), to compare
    /// with the loaded library's.
    pub manifest_bytes: Vec<u8>,
    /// Every export of the library, in the order of their
    /// [`index`](Manifest::index): one for a library with one `export!` entry.
    pub exports: Vec<Export>,
    /// The libraries it needs (ELF `DT_NEEDED`), in order; empty where not read.
    pub needed: Vec<String>,
}

/// One export of a plugin library: what it declares, read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Its manifest (name, version, description, contract, ABI, fingerprint, ...).
    pub manifest: Manifest,
    /// Its raw manifest bytes (without section padding).
    pub manifest_bytes: Vec<u8>,
}

impl Export {
    /// `name (contract)`, as errors list exports.
    fn label(&self) -> String {
        format!("{} ({})", self.manifest.info.name, self.manifest.contract.name)
    }
}

impl Inspection {
    /// The export named `name`.
    ///
    /// # Errors
    /// [`LoadError::NoSuchExport`], listing what the file exports.
    pub fn export(&self, name: &str) -> Result<&Export, LoadError> {
        self.exports.iter().find(|e| e.manifest.info.name == name).ok_or_else(|| LoadError::NoSuchExport {
            path: self.path.clone(),
            name: name.to_owned(),
            exports: self.exports.iter().map(Export::label).collect(),
        })
    }

    /// The export a host loading contract `contract` takes: the one named `name` if
    /// given (whatever its contract: the contract check says if it is wrong), else
    /// the only one implementing `contract`.
    ///
    /// # Errors
    /// [`LoadError::NoSuchExport`] for a name the file does not export;
    /// [`LoadError::AmbiguousExport`] when several implement `contract` and no name
    /// picks one; [`LoadError::ContractMismatch`] when none does.
    pub fn export_for(&self, contract: &str, name: Option<&str>) -> Result<&Export, LoadError> {
        if let Some(name) = name {
            return self.export(name);
        }
        let matching: Vec<&Export> = self.exports.iter().filter(|e| e.manifest.contract.name == contract).collect();
        match matching.as_slice() {
            [one] => Ok(one),
            [] => {
                let first = self.exports.first().map(|e| e.manifest.contract.name.clone()).unwrap_or_default();
                Err(LoadError::ContractMismatch {
                    path: self.path.clone(),
                    expected: contract.to_owned(),
                    found: first,
                    exports: if self.exports.len() > 1 {
                        self.exports.iter().map(Export::label).collect()
                    } else {
                        Vec::new()
                    },
                })
            }
            several => Err(LoadError::AmbiguousExport {
                path: self.path.clone(),
                contract: contract.to_owned(),
                names: several.iter().map(|e| e.manifest.info.name.clone()).collect(),
            }),
        }
    }

    /// The export for a host of `contract` at ABI `abi`: as [`Inspection::export_for`],
    /// except that a library exporting several majors of the contract (to serve old
    /// and new hosts) is not ambiguous: the export at the host's ABI is taken, or,
    /// without one, the highest (which the host then refuses with
    /// [`LoadError::AbiMismatch`], naming it).
    ///
    /// # Errors
    /// As [`Inspection::export_for`]; [`LoadError::AmbiguousExport`] only for several
    /// exports of the contract at the same ABI.
    pub fn export_for_abi(&self, contract: &str, abi: u32, name: Option<&str>) -> Result<&Export, LoadError> {
        if name.is_some() {
            return self.export_for(contract, name);
        }
        let matching: Vec<&Export> = self.exports.iter().filter(|e| e.manifest.contract.name == contract).collect();
        let majors: std::collections::BTreeSet<u32> = matching.iter().map(|e| e.manifest.contract.abi).collect();
        if majors.len() < 2 {
            return self.export_for(contract, None);
        }
        let pick = if majors.contains(&abi) { abi } else { *majors.last().expect("two or more") };
        match matching.iter().filter(|e| e.manifest.contract.abi == pick).collect::<Vec<_>>().as_slice() {
            [one] => Ok(one),
            several => Err(LoadError::AmbiguousExport {
                path: self.path.clone(),
                contract: contract.to_owned(),
                names: several.iter().map(|e| e.manifest.info.name.clone()).collect(),
            }),
        }
    }

    /// Makes export number `index` ([`Manifest::index`]) the chosen one:
    /// [`Inspection::manifest`] and [`Inspection::manifest_bytes`] become its own.
    /// Loading and isolating open the chosen export.
    ///
    /// # Errors
    /// [`LoadError::NoSuchExport`] if the file has no export of that index.
    pub fn choose(&mut self, index: u32) -> Result<(), LoadError> {
        let export = self.exports.get(index as usize).ok_or_else(|| LoadError::NoSuchExport {
            path: self.path.clone(),
            name: format!("#{index}"),
            exports: self.exports.iter().map(Export::label).collect(),
        })?;
        self.manifest = export.manifest.clone();
        self.manifest_bytes = export.manifest_bytes.clone();
        Ok(())
    }
}

/// Refuses a plugin built for another OS or C library than this host's: the target
/// it declares (its triple, without the vendor) and, for ELF, the C library it links.
fn check_platform(path: &Path, manifest: &Manifest, facts: &Facts) -> Result<(), LoadError> {
    fn platform(triple: &str) -> (&str, &str) {
        // arch-vendor-os[-env]: compare all but the vendor.
        let (arch, rest) = triple.split_once('-').unwrap_or((triple, ""));
        match rest.split_once('-') {
            Some((_vendor, os_env)) => (arch, os_env),
            None => (arch, rest),
        }
    }
    let wrong =
        |expected: String, found: String| LoadError::WrongPlatform { path: path.to_path_buf(), expected, found };
    if platform(&manifest.target) != platform(tomada::__private::TARGET) {
        return Err(wrong(tomada::__private::TARGET.to_owned(), manifest.target.clone()));
    }
    let glibc = facts.needed.iter().any(|n| n.starts_with("libc.so.6"));
    let musl = facts.needed.iter().any(|n| n == "libc.so" || n.starts_with("libc.musl-"));
    if cfg!(target_env = "gnu") && musl {
        return Err(wrong("a glibc library".into(), "a library linked against musl".into()));
    }
    if cfg!(target_env = "musl") && glibc {
        return Err(wrong("a musl library".into(), "a library linked against glibc (libc.so.6)".into()));
    }
    Ok(())
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
/// It reads the file in place, since nothing of it is loaded; a load inspects the
/// sealed copy it then loads (see [`crate::Loader::inspect`]).
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
    // Nothing of it is loaded: read the file itself, not a sealed copy of it.
    inspect_file(&PluginFile::open_to_read(path.as_ref())?)
}

/// [`inspect`] through an open file: what the loader will load is what is read.
///
/// Read by kept blocks (a `pread` of the few pages the checks ask for), whatever the
/// file: the sealed copy or a file that cannot change could be mapped instead, but a
/// mapping of the whole file costs its `mmap`, a fault per 64 KiB window touched (each
/// mapping sixteen pages) and the `munmap` (page tables torn down, the TLB flushed),
/// more than six `pread`s of one to six pages: 7–10 µs more per load of the greeter,
/// measured (docs/benchmarks.md, "Loads, round 3").
///
/// The executable segments the checks found are kept with the file
/// ([`PluginFile::set_code`]): an unload looks for what still runs the library's code
/// there, without reading its headers again.
pub(crate) fn inspect_file(file: &PluginFile) -> Result<Inspection, LoadError> {
    let blocks = Blocks::new(file);
    let (inspection, code) = inspect_data_and_code(&file.path, &blocks, file.len(), Platform::Host)?;
    if let Some(code) = code {
        file.set_code(code);
    }
    Ok(inspection)
}

/// Whose platform a file must be for: only a file for this host can be loaded, but
/// tools (`tomada inspect`, `tomada diff`) read files built for any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    /// This host's object format, architecture, OS and C library.
    Host,
    /// Any: the architecture and platform checks are skipped.
    Any,
}

/// One architecture's part of a plugin file: the whole file, or one slice of a
/// universal (fat) Mach-O.
#[derive(Debug)]
pub struct Slice {
    /// The architecture, as the `object` crate names it (`X86_64`, `Aarch64`, ...).
    pub architecture: String,
    /// What that slice declares, or why it cannot be read.
    pub inspection: Result<Inspection, LoadError>,
}

/// Reads what a plugin built for *any* architecture and OS declares, without loading
/// it: [`inspect`]'s checks but the platform ones (only loading needs this host's
/// platform). A universal (fat) Mach-O gives one [`Slice`] per architecture, this
/// host's first if it has one; any other file gives one.
///
/// # Errors
/// As [`inspect`] for the file as a whole (it cannot be opened, is no object file,
/// or a universal file's header is damaged); each slice has its own result.
pub fn inspect_slices(path: impl AsRef<Path>) -> Result<Vec<Slice>, LoadError> {
    let file = PluginFile::open_to_read(path.as_ref())?;
    let cache = Blocks::new(&file);
    let path = &file.path;
    Ok(match fat_slices(path, &cache)? {
        Some(slices) => slices
            .into_iter()
            .map(|(arch, bytes)| Slice {
                architecture: format!("{arch:?}"),
                inspection: inspect_data(path, bytes, bytes.len() as u64, Platform::Any),
            })
            .collect(),
        None => {
            let architecture = object::File::parse(&cache).map(|o| format!("{:?}", o.architecture()));
            let inspection = inspect_data(path, &cache, file.len(), Platform::Any);
            vec![Slice { architecture: architecture.unwrap_or_else(|_| "Unknown".into()), inspection }]
        }
    })
}

/// The architectures of a universal Mach-O and their files.
type FatSlices<'d> = Vec<(Architecture, &'d [u8])>;

/// The slices of a universal (fat) Mach-O, this host's architecture first; `None`
/// for any other file.
fn fat_slices<'d, R: ReadRef<'d>>(path: &Path, data: R) -> Result<Option<FatSlices<'d>>, LoadError> {
    use object::read::macho::{FatArch, MachOFatFile32, MachOFatFile64};
    fn read<'d, R: ReadRef<'d>, A: FatArch>(data: R, arches: &[A]) -> object::Result<Vec<(Architecture, &'d [u8])>> {
        arches.iter().map(|a| Ok((a.architecture(), a.data(data)?))).collect()
    }
    let slices = match FileKind::parse(data) {
        Ok(FileKind::MachOFat32) => MachOFatFile32::parse(data).and_then(|f| read(data, f.arches())),
        Ok(FileKind::MachOFat64) => MachOFatFile64::parse(data).and_then(|f| read(data, f.arches())),
        _ => return Ok(None),
    };
    let mut slices = slices.map_err(|e| LoadError::Damaged {
        path: path.to_path_buf(),
        reason: Damage::FatHeader { detail: e.to_string() },
    })?;
    // Stable: this host's slice first, the rest in file order.
    slices.sort_by_key(|(arch, _)| Some(*arch) != host_architecture());
    Ok(Some(slices))
}

/// The slice of a universal Mach-O that `platform` reads: this host's architecture
/// (loading, and reading when there is one), else the first.
fn pick_slice<'d>(path: &Path, slices: FatSlices<'d>, platform: Platform) -> Result<&'d [u8], LoadError> {
    match slices.first() {
        Some((arch, bytes)) if platform == Platform::Any || Some(*arch) == host_architecture() => Ok(bytes),
        _ => Err(LoadError::WrongArchitecture {
            path: path.to_path_buf(),
            expected: host_architecture().map(|a| format!("{a:?}")).unwrap_or_else(|| std::env::consts::ARCH.into()),
            found: format!(
                "a universal file of {}",
                slices.iter().map(|(a, _)| format!("{a:?}")).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// [`inspect`] on bytes in memory, for fuzzing; `path` only names them in errors.
#[doc(hidden)]
pub fn inspect_bytes(path: &Path, bytes: &[u8]) -> Result<Inspection, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::NotALibrary { path: path.to_path_buf(), reason: NotLibrary::Empty });
    }
    inspect_data(path, bytes, bytes.len() as u64, Platform::Host)
}

fn inspect_data<'d, R: ReadRef<'d>>(
    path: &Path,
    data: R,
    len: u64,
    platform: Platform,
) -> Result<Inspection, LoadError> {
    inspect_data_and_code(path, data, len, platform).map(|(inspection, _)| inspection)
}

/// The executable `PT_LOAD` segments of a library: `p_vaddr`, `p_memsz`.
type Code = Vec<(u64, u64)>;

/// [`inspect_data`], and the executable segments of a 64-bit ELF library of this
/// machine (the structural check's [`Facts::code`]); `None` for anything else (a
/// slice of a universal file, which is never ELF, included).
fn inspect_data_and_code<'d, R: ReadRef<'d>>(
    path: &Path,
    data: R,
    len: u64,
    platform: Platform,
) -> Result<(Inspection, Option<Code>), LoadError> {
    if let Some(slices) = fat_slices(path, data)? {
        let bytes = pick_slice(path, slices, platform)?;
        return inspect_data(path, bytes, bytes.len() as u64, platform).map(|inspection| (inspection, None));
    }
    let owned = || path.to_path_buf();
    let (bytes, facts) = find(path, data, len, Record::Manifest, platform)?;
    let bytes = bytes.ok_or_else(|| LoadError::NoDescriptor { path: owned() })?;
    let exports: Vec<Export> = Manifest::parse_section(bytes)
        .map_err(|e| manifest_error(path, e))?
        .into_iter()
        .map(|(manifest, bytes)| Export { manifest, manifest_bytes: bytes.to_vec() })
        .collect();
    let first = exports.first().expect("a parsed section has an export").clone();
    if platform == Platform::Host {
        for export in &exports {
            check_platform(path, &export.manifest, &facts)?;
        }
    }
    let code = (!facts.code.is_empty()).then_some(facts.code);
    let inspection = Inspection {
        path: owned(),
        manifest: first.manifest,
        manifest_bytes: first.manifest_bytes,
        exports,
        needed: facts.needed,
    };
    Ok((inspection, code))
}

/// Reads the contracts a host executable (or library) records that it expects,
/// with `tomada::expects!`, without running it.
///
/// # Errors
/// As [`inspect`] for the file itself; [`LoadError::NoExpectations`] if it records
/// none.
pub fn expectations(path: impl AsRef<Path>) -> Result<Vec<Interface>, LoadError> {
    let file = PluginFile::open_to_read(path.as_ref())?;
    let blocks = Blocks::new(&file);
    expectations_data(&file.path, &blocks, file.len())
}

/// [`expectations`] on bytes in memory, for fuzzing.
#[doc(hidden)]
pub fn expectations_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<Interface>, LoadError> {
    expectations_data(path, bytes, bytes.len() as u64)
}

fn expectations_data<'d, R: ReadRef<'d>>(path: &Path, data: R, len: u64) -> Result<Vec<Interface>, LoadError> {
    // Nothing of a host executable is ever loaded: read one built for any platform.
    if let Some(slices) = fat_slices(path, data)? {
        let bytes = pick_slice(path, slices, Platform::Any)?;
        return expectations_data(path, bytes, bytes.len() as u64);
    }
    let bytes = find(path, data, len, Record::Expectations, Platform::Any)?
        .0
        .ok_or_else(|| LoadError::NoExpectations { path: path.to_path_buf() })?;
    descriptor::parse_expectations(bytes).map_err(|e| manifest_error(path, e))
}

/// Checks the file (a shared library for a manifest, any object for expectations)
/// and returns the bytes of `record`'s section, or `None` if it has none, with what
/// the structural check found.
fn find<'d, R: ReadRef<'d>>(
    path: &Path,
    data: R,
    len: u64,
    record: Record,
    platform: Platform,
) -> Result<(Option<&'d [u8]>, Facts), LoadError> {
    let owned = || path.to_path_buf();
    if let Some(found) = elf::fast_path(data, len, record) {
        return found.map_err(|reason| match reason {
            Some(reason) => LoadError::Damaged { path: owned(), reason },
            None => LoadError::MissingSymbol { path: owned() },
        });
    }
    let format = FileKind::parse(data).ok().and_then(|kind| match kind {
        FileKind::Elf32 | FileKind::Elf64 => Some(BinaryFormat::Elf),
        FileKind::MachO32 | FileKind::MachO64 | FileKind::MachOFat32 | FileKind::MachOFat64 => {
            Some(BinaryFormat::MachO)
        }
        FileKind::Pe32 | FileKind::Pe64 | FileKind::Coff => Some(BinaryFormat::Pe),
        _ => None,
    });
    if record == Record::Manifest
        && platform == Platform::Host
        && let Some(found) = format
        && found != host_format()
    {
        return Err(LoadError::WrongPlatform {
            path: owned(),
            expected: format!("{:?} ({})", host_format(), std::env::consts::OS),
            found: format!("{found:?}"),
        });
    }
    let object = parse(path, data, len, platform)?;
    if record == Record::Manifest {
        let not_a_library = |reason: NotLibrary| Err(LoadError::NotALibrary { path: owned(), reason });
        match object.kind() {
            ObjectKind::Dynamic => {}
            ObjectKind::Executable => return not_a_library(NotLibrary::Executable),
            ObjectKind::Relocatable => return not_a_library(NotLibrary::Relocatable),
            ObjectKind::Core => return not_a_library(NotLibrary::CoreDump),
            _ => return not_a_library(NotLibrary::UnknownObject),
        }
        if object.format() == BinaryFormat::Elf && platform == Platform::Host {
            // The fast path checks every ELF library of this machine; one that got
            // here is malformed in a way the general parser did not notice.
            return Err(LoadError::Damaged { path: owned(), reason: Flaw::Headers.into() });
        }
    }
    if let Some(section) = object.section_by_name(record.section_name(object.format()))
        && section.size() > MAX_RECORD
    {
        return Err(too_big(path, section.size()));
    }
    let bytes = section_bytes(&object, record).transpose().map_err(|e| LoadError::Damaged {
        path: owned(),
        reason: Damage::SectionUnreadable { detail: e.to_string() },
    })?;
    Ok((bytes, Facts::default()))
}

/// The largest manifest or expectations record read: anything larger is damage.
pub(crate) const MAX_RECORD: u64 = 1 << 20;

fn too_big(path: &Path, size: u64) -> LoadError {
    LoadError::Damaged { path: path.to_path_buf(), reason: Damage::SectionTooLarge { size, limit: MAX_RECORD } }
}

/// The object format this host's loader takes.
fn host_format() -> BinaryFormat {
    if cfg!(target_vendor = "apple") {
        BinaryFormat::MachO
    } else if cfg!(windows) {
        BinaryFormat::Pe
    } else {
        BinaryFormat::Elf
    }
}

fn manifest_error(path: &Path, e: ManifestError) -> LoadError {
    let path = path.to_path_buf();
    match e {
        ManifestError::BadMagic => LoadError::BadMagic { path },
        ManifestError::Boundary { found } => {
            LoadError::BoundaryMismatch { path, expected: tomada::__private::descriptor::BOUNDARY_VERSION, found }
        }
        other => LoadError::Damaged { path, reason: Damage::Manifest { detail: other.to_string() } },
    }
}

/// The plugin file as the checks read it: each read of a range not read before
/// fetches it, widened to the first page or to whole cache lines elsewhere, with one
/// `pread` and keeps it, and later reads inside it are slices of what is kept (no
/// system call, no copy).
///
/// An inspection asks for some thirty small ranges (headers, the dynamic segment, and
/// each table, version record and section it names); most lie in the first page of a
/// library and the rest in a few clusters (the dynamic segment, the section headers,
/// their name table, the manifest), so about thirty system calls become about seven.
/// What is kept is bounded by what the checks ask for (each read at most a page more),
/// and those reads are bounded before they are made, so memory stays proportional to
/// the real file, never to what it claims.
struct Blocks<'f> {
    file: &'f PluginFile,
    /// Blocks read, in order: their file offset and bytes. Set once each, so slices
    /// of them live as long as `self`.
    slots: [OnceCell<(u64, Box<[u8]>)>; SLOTS],
    used: Cell<usize>,
    /// Past [`SLOTS`] blocks (a file with an unusual layout): `object`'s cache.
    rest: ReadCache<Source<'f>>,
}

/// How many blocks are kept before reads go through `rest` (an inspection of a
/// plugin takes about seven).
const SLOTS: usize = 32;

/// The block a small read in the first page fetches: the whole page. (16 KiB blocks
/// saved one read of seven on the greeter but copied three times the bytes, and were
/// slower.)
const READ_AHEAD: u64 = 4096;

/// What a read past the first page is widened to: whole cache lines, not pages. The
/// far reads (the dynamic segment, the manifest, the section headers and their names:
/// under 3 kB on the greeter) took 25 kB as pages, each a copy out of the page cache
/// and, in a fresh process, a newly faulted heap page: 4 faults and ~6 µs of a first
/// load in a fresh process (docs/benchmarks.md, "Loads, round 3").
const LINE: u64 = 64;

impl<'f> Blocks<'f> {
    fn new(file: &'f PluginFile) -> Self {
        Blocks {
            file,
            slots: std::array::from_fn(|_| OnceCell::new()),
            used: Cell::new(0),
            rest: ReadCache::new(Source { file, pos: 0 }),
        }
    }

    /// The kept block holding `[at, end)`, from its `at`.
    fn find(&self, at: u64, end: u64) -> Option<&[u8]> {
        self.slots[..self.used.get()].iter().find_map(|slot| {
            let (start, block) = slot.get()?;
            let from = at.checked_sub(*start)? as usize;
            let to = (end - start) as usize;
            block.get(from..to)
        })
    }

    /// The rest of the kept block holding byte `at`, from `at`.
    fn kept_from(&self, at: u64) -> Option<&[u8]> {
        self.slots[..self.used.get()].iter().find_map(|slot| {
            let (start, block) = slot.get()?;
            let from = usize::try_from(at.checked_sub(*start)?).ok()?;
            block.get(from..).filter(|rest| !rest.is_empty())
        })
    }
}

impl<'a> ReadRef<'a> for &'a Blocks<'_> {
    fn len(self) -> Result<u64, ()> {
        Ok(self.file.len())
    }

    fn read_bytes_at(self, offset: u64, size: u64) -> Result<&'a [u8], ()> {
        if size == 0 {
            return Ok(&[]);
        }
        // Never past the length inspected: a claimed size beyond it is refused before
        // anything is allocated for it.
        let len = self.file.len();
        let end = offset.checked_add(size).filter(|&end| end <= len).ok_or(())?;
        if let Some(bytes) = self.find(offset, end) {
            return Ok(bytes);
        }
        let used = self.used.get();
        if used == SLOTS {
            return (&self.rest).read_bytes_at(offset, size);
        }
        // The first page whole (the headers and, in most libraries, the dynamic
        // symbols, versions, hash and strings after them); elsewhere what is asked
        // for, in whole cache lines.
        let align = if offset < READ_AHEAD { READ_AHEAD } else { LINE };
        let start = offset - offset % align;
        let block_end = end.div_ceil(align).saturating_mul(align).min(len);
        let n = usize::try_from(block_end - start).map_err(|_| ())?;
        let mut block = Vec::new();
        block.try_reserve_exact(n).map_err(|_| ())?;
        // What a kept block already holds from `start` on is copied, not read again
        // (the relocations usually start in the first page, read for the headers).
        if let Some(kept) = self.kept_from(start) {
            block.extend_from_slice(&kept[..kept.len().min(n)]);
        }
        let read_from = start + block.len() as u64;
        self.file.append_at(&mut block, (block_end - read_from) as usize, read_from).map_err(|_| ())?;
        self.slots[used].set((start, block.into_boxed_slice())).map_err(|_| ())?;
        self.used.set(used + 1);
        let (_, block) = self.slots[used].get().ok_or(())?;
        block.get((offset - start) as usize..(end - start) as usize).ok_or(())
    }

    fn read_bytes_at_until(self, range: std::ops::Range<u64>, delimiter: u8) -> Result<&'a [u8], ()> {
        // A string: from a kept block if the block holds its end, else as `object`
        // reads strings.
        let kept = self.slots[..self.used.get()].iter().filter_map(|slot| slot.get()).find_map(|(start, block)| {
            let from = usize::try_from(range.start.checked_sub(*start)?).ok()?;
            let to = usize::try_from(range.end.saturating_sub(*start)).unwrap_or(usize::MAX).min(block.len());
            block.get(from..to)
        });
        if let Some(bytes) = kept
            && let Some(n) = bytes.iter().position(|&b| b == delimiter)
        {
            return Ok(&bytes[..n]);
        }
        (&self.rest).read_bytes_at_until(range, delimiter)
    }
}

/// Reads with `pread`, keeping the position here: a `ReadCache` over a plain `File`
/// would `lseek` before every read.
struct Source<'f> {
    file: &'f PluginFile,
    pos: u64,
}

impl object::ReadCacheOps for Source<'_> {
    fn len(&mut self) -> Result<u64, ()> {
        Ok(self.file.len())
    }
    fn seek(&mut self, pos: u64) -> Result<u64, ()> {
        self.pos = pos;
        Ok(pos)
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ()> {
        let n = (self.file.len().saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        self.read_exact(&mut buf[..n])?;
        Ok(n)
    }
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        if self.pos.checked_add(buf.len() as u64).is_none_or(|end| end > self.file.len()) {
            return Err(());
        }
        self.file.read_exact_at(buf, self.pos).map_err(|_| ())?;
        self.pos += buf.len() as u64;
        Ok(())
    }
}

/// Parses an object file of this machine's architecture whose segments all lie
/// inside the file.
fn parse<'d, R: ReadRef<'d>>(
    path: &Path,
    data: R,
    len: u64,
    platform: Platform,
) -> Result<object::File<'d, R>, LoadError> {
    let owned = || path.to_path_buf();
    let kind = FileKind::parse(data).map_err(|_| match unknown_format(data, len) {
        Unknown::CutShort(format) => {
            LoadError::Damaged { path: owned(), reason: Damage::CutShort { format: format.to_owned() } }
        }
        Unknown::Text => LoadError::NotALibrary { path: owned(), reason: NotLibrary::Text },
        Unknown::Binary => LoadError::NotALibrary { path: owned(), reason: NotLibrary::UnknownFormat },
    })?;
    let object = object::File::parse(data).map_err(|e| match kind {
        FileKind::Elf32 | FileKind::Elf64 | FileKind::MachO32 | FileKind::MachO64 | FileKind::Pe32 | FileKind::Pe64 => {
            LoadError::Damaged { path: owned(), reason: Damage::Headers { detail: e.to_string() } }
        }
        other => {
            LoadError::NotALibrary { path: owned(), reason: NotLibrary::OtherFormat { format: format!("{other:?}") } }
        }
    })?;
    if platform == Platform::Host
        && let Some(expected) = host_architecture()
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
                reason: Damage::Truncated { segment_end: offset.saturating_add(size), file_len: len },
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

/// ELF, read directly: the file header, the program headers, the section headers
/// and the section-name table once each, the one section wanted, and (for a plugin)
/// what the loader will walk ([`structure::check`]). `None` leaves the file to the
/// general path (another format, machine or class), which says what is wrong.
mod elf {
    use object::elf::FileHeader64;
    use object::read::elf::{FileHeader, SectionHeader};
    use object::{BinaryFormat, FileKind, NativeEndian, ReadRef};

    use super::{MAX_RECORD, Record, structure};
    use crate::error::{Damage, Flaw};
    use crate::structure::Facts;

    type Found<'d> = Result<(Option<&'d [u8]>, Facts), Option<Damage>>;

    pub(super) fn fast_path<'d, R: ReadRef<'d>>(data: R, len: u64, record: Record) -> Option<Found<'d>> {
        if cfg!(not(target_pointer_width = "64")) || FileKind::parse(data).ok()? != FileKind::Elf64 {
            return None;
        }
        // Read in this machine's byte order: a file of the other one cannot load here
        // and is left to the general path (`endian()` refuses it), and every field
        // the checks read is a plain load, with no byte-order test and swap.
        let header = FileHeader64::<NativeEndian>::parse(data).ok()?;
        let endian = header.endian().ok()?;
        if header.e_machine(endian) != host_machine()? || header.is_little_endian() != cfg!(target_endian = "little") {
            return None;
        }
        let is_dyn = header.e_type(endian) == object::elf::ET_DYN;
        if record == Record::Manifest && !is_dyn {
            return None;
        }
        Some(sections(header, endian, data, len, record))
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

    fn sections<'d, R: ReadRef<'d>>(
        header: &FileHeader64<NativeEndian>,
        endian: NativeEndian,
        data: R,
        len: u64,
        record: Record,
    ) -> Found<'d> {
        let damaged = |flaw: Flaw| Some(Damage::Structure(flaw));
        let headers = header.section_headers(endian, data).map_err(|_| damaged(Flaw::SectionHeadersOutside))?;
        let names = headers
            .get(header.shstrndx(endian, data).map_err(|_| damaged(Flaw::SectionNameIndex))? as usize)
            .ok_or_else(|| damaged(Flaw::NoSectionNames))?;
        if names.sh_size(endian) > MAX_RECORD {
            return Err(damaged(Flaw::SectionNamesTooLarge));
        }
        let names = names.data(endian, data).map_err(|_| damaged(Flaw::SectionNamesOutside))?;
        let wanted = record.section_name(BinaryFormat::Elf).as_bytes();
        let mut found = None;
        for section in headers {
            let Some(name) = names.get(section.sh_name(endian) as usize..) else {
                return Err(damaged(Flaw::SectionNameOutside));
            };
            let Some(end) = name.iter().position(|&b| b == 0) else {
                return Err(damaged(Flaw::SectionNameUnterminated));
            };
            if &name[..end] == wanted {
                found = Some(section);
                break;
            }
        }
        let Some(section) = found else { return Ok((None, Facts::default())) };
        let size = section.sh_size(endian);
        if size > MAX_RECORD {
            return Err(Some(Damage::SectionTooLarge { size, limit: MAX_RECORD }));
        }
        let bytes = section.data(endian, data).map_err(|_| damaged(Flaw::SectionOutside))?;
        let facts = if record == Record::Manifest {
            structure::check(header, data, len, (section.sh_addr(endian), size))?
        } else {
            Facts::default()
        };
        Ok((Some(bytes), facts))
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
    fn a_place_two_relocations_write_is_refused() {
        let mut greeter = std::fs::read(tomada_test_support::cdylib("greeter")).unwrap();
        let object = object::File::parse(&*greeter).unwrap();
        let (offset, size) = object.section_by_name(".rela.dyn").unwrap().file_range().unwrap();
        drop(object);
        assert!(size >= 48, "two relocations at least");
        let at = offset as usize;
        // The second relocation now writes where the first does.
        let first: [u8; 8] = greeter[at..at + 8].try_into().unwrap();
        greeter[at + 24..at + 32].copy_from_slice(&first);
        let err = elf::fast_path(&*greeter, greeter.len() as u64, Record::Manifest).unwrap().unwrap_err().unwrap();
        assert_eq!(err, Damage::Structure(Flaw::RelocationTwice));
    }

    /// Found by the fuzzer: a symbol name starting exactly at the end of the string
    /// table (its length) once made the checker panic instead of refusing the file.
    #[test]
    fn a_name_at_the_end_of_the_string_table_is_refused() {
        let mut greeter = std::fs::read(tomada_test_support::cdylib("greeter")).unwrap();
        let object = object::File::parse(&*greeter).unwrap();
        let (strtab, strsz) = object.section_by_name(".dynstr").unwrap().file_range().unwrap();
        let (dynsym, _) = object.section_by_name(".dynsym").unwrap().file_range().unwrap();
        drop(object);
        assert!(strtab > 0);
        // The second symbol (the first is the null symbol); st_name is its first word.
        let at = dynsym as usize + 24;
        greeter[at..at + 4].copy_from_slice(&u32::try_from(strsz).unwrap().to_le_bytes());
        let err = elf::fast_path(&*greeter, greeter.len() as u64, Record::Manifest).unwrap().unwrap_err().unwrap();
        assert_eq!(err, Damage::Structure(Flaw::NameOutside));
        // The whole inspection says the same, as an error and not a panic.
        let err = inspect_bytes(Path::new("damaged.so"), &greeter).unwrap_err().to_string();
        assert!(err.contains("outside the string table"), "{err}");
    }

    /// A load's inspection (the sealed copy) and `inspect` (the file itself) read
    /// the same things.
    #[test]
    fn the_sealed_copy_and_the_file_read_in_place_agree() {
        let path = tomada_test_support::cdylib("greeter");
        let sealed = PluginFile::open(&path, crate::file::Extent::Whole).unwrap();
        #[cfg(target_os = "linux")]
        assert!(sealed.sealed_copy(), "a load inspects the sealed copy");
        let in_place = PluginFile::open_to_read(&path).unwrap();
        assert!(!in_place.sealed_copy(), "`inspect` reads the file itself");
        let (a, b) = (inspect_file(&sealed).unwrap(), inspect_file(&in_place).unwrap());
        assert_eq!(a.manifest_bytes, b.manifest_bytes);
        assert_eq!(a.exports, b.exports);
        assert_eq!(a.needed, b.needed);
        assert!(!a.needed.is_empty());
        // Cut short, through each path: refused alike.
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("cut.so");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let a = inspect_file(&PluginFile::open(&cut, crate::file::Extent::WithoutDebugInfo).unwrap()).unwrap_err();
        let b = inspect_file(&PluginFile::open_to_read(&cut).unwrap()).unwrap_err();
        assert_eq!(a.to_string(), b.to_string());
        assert!(matches!(a, LoadError::Damaged { .. }), "{a:?}");
    }

    #[test]
    fn the_elf_fast_path_agrees_with_the_general_path() {
        let greeter = std::fs::read(tomada_test_support::cdylib("greeter")).unwrap();
        let (fast, facts) = elf::fast_path(&*greeter, greeter.len() as u64, Record::Manifest)
            .expect("a plain plugin takes the fast path")
            .unwrap();
        assert!(facts.needed.iter().any(|n| n.starts_with("libc.so")), "{:?}", facts.needed);
        let object = object::File::parse(&*greeter).unwrap();
        let general = section_bytes(&object, Record::Manifest).unwrap().unwrap();
        assert_eq!(fast, Some(general));
        // A library without the section: the fast path says so by itself.
        let (none, _) = elf::fast_path(&*greeter, greeter.len() as u64, Record::Expectations).unwrap().unwrap();
        assert_eq!(none, None);
        // Cut short: refused as damaged, by the fast path.
        let cut = &greeter[..greeter.len() / 2];
        let err = elf::fast_path(cut, cut.len() as u64, Record::Manifest).unwrap().unwrap_err().unwrap();
        assert!(matches!(err, Damage::Truncated { .. } | Damage::Structure(Flaw::SectionHeadersOutside)), "{err:?}");
        // Another machine is left to the general path, which explains it.
        let mut arm = greeter.clone();
        arm[18] ^= 0x40;
        assert!(elf::fast_path(&*arm, arm.len() as u64, Record::Manifest).is_none());
    }
}
