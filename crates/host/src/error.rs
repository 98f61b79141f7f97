//! [`LoadError`]: every way loading a plugin can fail, each with what to do, and the
//! typed reasons inside it: [`NotLibrary`] (what a file is instead of a library),
//! [`Damage`] (what is wrong in a damaged one, with [`Flaw`] and [`Table`]),
//! [`Mismatch`] (what a loaded library contradicts) and [`Exposure`] (why a file's
//! permissions are unsafe). A caller matches on these; the text is for people.

use std::io;
use std::path::PathBuf;

/// Why a plugin was not loaded. Each message names the file, says what was
/// expected and what was found, and gives one remedy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The path does not exist.
    #[error("`{}` does not exist; check the path", path.display())]
    NotFound {
        /// The plugin path.
        path: PathBuf,
    },
    /// The path is a directory, a device, a pipe or a socket: not a regular file.
    #[error(
        "`{}` is not a regular file (a directory, a device or a pipe); give the path of a plugin library",
        path.display()
    )]
    NotAFile {
        /// The plugin path.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read `{}`", path.display())]
    Io {
        /// The plugin path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not a shared library at all (empty, text, an executable, ...).
    #[error("`{}` is not a shared library: {reason}; a plugin is a cdylib (`.so`, `.dylib`, `.dll`)", path.display())]
    NotALibrary {
        /// The plugin path.
        path: PathBuf,
        /// What the file is instead.
        reason: NotLibrary,
    },
    /// The file looks like a shared library but is cut short or corrupt.
    #[error("`{}` is damaged: {reason}; rebuild or copy the plugin again", path.display())]
    Damaged {
        /// The plugin path.
        path: PathBuf,
        /// What is wrong.
        reason: Damage,
    },
    /// The library was built for another CPU architecture.
    #[error("`{}` was built for {found}, this host runs on {expected}; build the plugin for {expected}", path.display())]
    WrongArchitecture {
        /// The plugin path.
        path: PathBuf,
        /// The host's architecture.
        expected: String,
        /// The library's architecture.
        found: String,
    },
    /// The library is for another operating system, object format or C library.
    #[error("`{}` was built for {found}, this host needs {expected}; build the plugin for this host's target", path.display())]
    WrongPlatform {
        /// The plugin path.
        path: PathBuf,
        /// What this host loads.
        expected: String,
        /// What the file is.
        found: String,
    },
    /// A shared library without a tomada descriptor: not a tomada plugin.
    #[error("`{}` is a shared library but not a tomada plugin (it has no tomada descriptor); a plugin calls `tomada::export!`", path.display())]
    NoDescriptor {
        /// The plugin path.
        path: PathBuf,
    },
    /// A file that records no expected contracts (`tomada::expects!`).
    #[error("`{}` records no expected tomada contracts; a host records them with `tomada::expects!(Contract)`", path.display())]
    NoExpectations {
        /// The file.
        path: PathBuf,
    },
    /// A descriptor section whose first bytes are not tomada's magic.
    #[error("`{}` has a tomada section without tomada's magic bytes: it is damaged or was not built by tomada; rebuild the plugin", path.display())]
    BadMagic {
        /// The plugin path.
        path: PathBuf,
    },
    /// The plugin was built with another version of tomada's boundary.
    #[error("`{}` was built for tomada boundary version {found} ({}), this host speaks version {expected} ({}); rebuild the plugin with {}", path.display(), tomada::descriptor::boundary_releases(*found), tomada::descriptor::boundary_releases(*expected), tomada::descriptor::boundary_releases(*expected))]
    BoundaryMismatch {
        /// The plugin path.
        path: PathBuf,
        /// The host's boundary version.
        expected: u32,
        /// The plugin's boundary version.
        found: u32,
    },
    /// The plugin implements another contract (none of its exports implements it).
    #[error("{}", contract_mismatch(path, expected, found, exports))]
    ContractMismatch {
        /// The plugin path.
        path: PathBuf,
        /// The contract the host expects.
        expected: String,
        /// The contract the plugin implements (its first export's).
        found: String,
        /// For a library of several exports, each as `name (contract)`; empty for
        /// a library of one.
        exports: Vec<String>,
    },
    /// The library exports nothing by the name asked for.
    #[error("`{}` has no export named `{name}`; it exports {}; pick one of those names", path.display(), list(exports))]
    NoSuchExport {
        /// The plugin path.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// What the library exports, each as `name (contract)`.
        exports: Vec<String>,
    },
    /// Several exports of the library implement the contract, and none was named.
    #[error("`{}` exports several `{contract}` plugins ({}); pick one by name (`Loader::export`)", path.display(), list(names))]
    AmbiguousExport {
        /// The plugin path.
        path: PathBuf,
        /// The contract asked for.
        contract: String,
        /// The names of the exports that implement it.
        names: Vec<String>,
    },
    /// The plugin was built against another major version of the contract.
    #[error("`{}` was built for {contract} ABI {found}, this host speaks ABI {expected}; rebuild the plugin against the contract with ABI {expected}", path.display())]
    AbiMismatch {
        /// The plugin path.
        path: PathBuf,
        /// The contract's name.
        contract: String,
        /// The host's ABI number.
        expected: u32,
        /// The plugin's ABI number.
        found: u32,
    },
    /// The plugin was built against a different definition of the contract that
    /// claims the same ABI number, and not one that differs only by methods appended
    /// in a minor version.
    #[error("`{}` implements {contract} {plugin_version}, which does not fit this host's {contract} {host_version}: {}; rebuild the plugin against the host's contract crate, or change the contract only in the ways docs/evolution.md allows (anything else needs a new ABI number)", path.display(), joined(differences))]
    LayoutMismatch {
        /// The plugin path.
        path: PathBuf,
        /// The contract's name.
        contract: String,
        /// The contract version the plugin was built against, e.g. `1.0`.
        plugin_version: String,
        /// The contract version this host was built against.
        host_version: String,
        /// Every difference, method by method: the member that changed, where inside
        /// its signature, and how (each prints as a sentence naming the member).
        differences: Vec<tomada::interface::Difference>,
    },
    /// The plugin was built with `panic = "abort"`: a panic in it would abort the host.
    #[error("`{}` was built with `panic = \"abort\"`, so any panic in it would abort the host; build the plugin with `panic = \"unwind\"`", path.display())]
    PanicAbort {
        /// The plugin path.
        path: PathBuf,
    },
    /// The dynamic loader refused the library.
    #[error("the dynamic loader could not open `{}`", path.display())]
    Open {
        /// The plugin path.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: libloading::Error,
    },
    /// The library passed inspection but does not export the descriptor symbol.
    #[error("`{}` has a tomada manifest but does not export `{}`; it is damaged, rebuild the plugin", path.display(), tomada::descriptor::SYMBOL)]
    MissingSymbol {
        /// The plugin path.
        path: PathBuf,
    },
    /// What the loaded library exports differs from what was read from the file.
    #[error("`{}` changed between inspection and loading, or its descriptor contradicts its manifest ({what}); make sure nothing rewrites the file while it loads", path.display())]
    DescriptorMismatch {
        /// The plugin path.
        path: PathBuf,
        /// What differs.
        what: Mismatch,
    },
    /// An isolated plugin's process could not be started, or did not load the plugin.
    #[error("`{}` could not be started in its own process: {source}", path.display())]
    Isolation {
        /// The plugin path.
        path: PathBuf,
        /// What went wrong.
        source: LaunchError,
    },
    /// Isolation ([`isolate`](crate::isolate)) is not implemented on this platform
    /// (it is on Unix and Windows).
    #[error("`{}` cannot run in its own process: isolation is not supported on {platform} yet; load it in-process", path.display())]
    IsolationUnsupported {
        /// The plugin path.
        path: PathBuf,
        /// The platform (`std::env::consts::OS`), e.g. `windows`.
        platform: &'static str,
    },
    /// A remote plugin's server could not be reached, or refused this host's
    /// connection (see the `remote` module, feature `remote`).
    #[error("remote plugin `{}` is unavailable: {detail}", plugin.display())]
    Unavailable {
        /// The plugin's name on the server.
        plugin: PathBuf,
        /// Why, endpoint by endpoint.
        detail: String,
    },
    /// A remote plugin's server serves as many clients as it may.
    #[error("remote plugin `{}`: the server serves as many clients as it may ({detail}); try again later or another server", plugin.display())]
    Overloaded {
        /// The plugin's name on the server.
        plugin: PathBuf,
        /// What the server said.
        detail: String,
    },
    /// Under a trust policy: the plugin has no signature (`PLUGIN.minisig`) and is not pinned.
    #[error("`{}` is not signed (no `.minisig` next to it) and its digest is not pinned; sign it with `tomada sign` or `minisign -S` by a key the host trusts", path.display())]
    Unsigned {
        /// The plugin path.
        path: PathBuf,
    },
    /// Under a trust policy: the signature does not match the file (tampered, or a
    /// malformed signature file).
    #[error("{}", bad_signature(path, key))]
    BadSignature {
        /// The plugin path.
        path: PathBuf,
        /// The signing key's id, or what is wrong with the signature file.
        key: String,
    },
    /// Under a trust policy: signed by a key the host does not trust.
    #[error("`{}` is signed by key {key}, which this host does not trust; add its public key to the host's trusted keys if you trust its publisher", path.display())]
    UnknownKey {
        /// The plugin path.
        path: PathBuf,
        /// The signing key's id.
        key: String,
    },
    /// Under a policy of pinned digests: the plugin's name is not pinned.
    #[error("`{}` (plugin `{name}`, SHA-256 {sha256}) is not pinned by this host's policy; pin it if you trust this file", path.display())]
    NotPinned {
        /// The plugin path.
        path: PathBuf,
        /// The plugin's name.
        name: String,
        /// The file's SHA-256.
        sha256: String,
    },
    /// Under a policy of pinned digests: the file is not the one pinned for its name.
    #[error("`{}` (plugin `{name}`) has SHA-256 {found}, the host's policy pins {expected}; the file changed: get the pinned file back, or update the pin if the change is trusted", path.display())]
    DigestMismatch {
        /// The plugin path.
        path: PathBuf,
        /// The plugin's name.
        name: String,
        /// The pinned digest.
        expected: String,
        /// The file's digest.
        found: String,
    },
    /// Under a trust policy: the plugin is older than the minimum version for its name.
    #[error("`{}` is {name} {found}, older than the minimum {minimum} this host's policy allows; install {name} {minimum} or later", path.display())]
    VersionTooOld {
        /// The plugin path.
        path: PathBuf,
        /// The plugin's name.
        name: String,
        /// Its version.
        found: String,
        /// The minimum allowed.
        minimum: String,
    },
    /// Under a trust policy: someone other than its owner could change the file.
    #[error("`{}` has unsafe permissions: {reason}; make it writable only by its owner (root or this host's user), in a directory only its owner can change", path.display())]
    Permissions {
        /// The plugin path.
        path: PathBuf,
        /// What is wrong.
        reason: Exposure,
    },
    /// The plugin's constructor panicked.
    #[error("`{}` panicked while making its instance: {message}", path.display())]
    InitPanicked {
        /// The plugin path.
        path: PathBuf,
        /// The panic message.
        message: String,
    },
}

// Isolated plugins run on Unix and Windows (see `isolate`).
#[cfg(any(unix, windows))]
impl LoadError {
    /// The byte form of this error, for the `Failed` frame of an isolated plugin's
    /// process: [`LoadError::from_wire`] makes the same variant of it in the host.
    pub(crate) fn to_wire(&self) -> Vec<u8> {
        use LoadError::*;
        let mut w = wire::Writer::default();
        match self {
            NotFound { path } => w.tag(0).path(path),
            NotAFile { path } => w.tag(1).path(path),
            Io { path, source } => w.tag(2).path(path).io(source),
            NotALibrary { path, reason } => w.tag(3).path(path).not_library(reason),
            Damaged { path, reason } => w.tag(4).path(path).damage(reason),
            WrongArchitecture { path, expected, found } => w.tag(5).path(path).str(expected).str(found),
            WrongPlatform { path, expected, found } => w.tag(6).path(path).str(expected).str(found),
            NoDescriptor { path } => w.tag(7).path(path),
            NoExpectations { path } => w.tag(8).path(path),
            BadMagic { path } => w.tag(9).path(path),
            BoundaryMismatch { path, expected, found } => w.tag(10).path(path).u32(*expected).u32(*found),
            ContractMismatch { path, expected, found, exports } => {
                w.tag(11).path(path).str(expected).str(found).strings(exports)
            }
            AbiMismatch { path, contract, expected, found } => {
                w.tag(12).path(path).str(contract).u32(*expected).u32(*found)
            }
            LayoutMismatch { path, contract, plugin_version, host_version, differences } => {
                w.tag(13).path(path).str(contract).str(plugin_version).str(host_version).differences(differences)
            }
            PanicAbort { path } => w.tag(14).path(path),
            Open { path, source } => {
                // The loader's own message (`dlerror`), or nothing if it gave none.
                let message = match source {
                    libloading::Error::DlOpenUnknown => String::new(),
                    other => std::error::Error::source(other).map_or_else(|| other.to_string(), |s| s.to_string()),
                };
                w.tag(15).path(path).str(&message)
            }
            MissingSymbol { path } => w.tag(16).path(path),
            DescriptorMismatch { path, what } => w.tag(17).path(path).index(Mismatch::ALL, what),
            Isolation { path, source } => w.tag(18).path(path).launch(source),
            // Made by a host (of the same build, on the same platform), never by a
            // plugin's process.
            IsolationUnsupported { path, .. } => w.tag(29).path(path),
            // A remote plugin's server refusing a client (see `remote`).
            Unavailable { plugin, detail } => w.tag(30).path(plugin).str(detail),
            Overloaded { plugin, detail } => w.tag(31).path(plugin).str(detail),
            Unsigned { path } => w.tag(19).path(path),
            BadSignature { path, key } => w.tag(20).path(path).str(key),
            UnknownKey { path, key } => w.tag(21).path(path).str(key),
            NotPinned { path, name, sha256 } => w.tag(22).path(path).str(name).str(sha256),
            DigestMismatch { path, name, expected, found } => w.tag(23).path(path).str(name).str(expected).str(found),
            VersionTooOld { path, name, found, minimum } => w.tag(24).path(path).str(name).str(found).str(minimum),
            Permissions { path, reason } => w.tag(25).path(path).exposure(reason),
            InitPanicked { path, message } => w.tag(26).path(path).str(message),
            NoSuchExport { path, name, exports } => w.tag(27).path(path).str(name).strings(exports),
            AmbiguousExport { path, contract, names } => w.tag(28).path(path).str(contract).strings(names),
        };
        w.0
    }

    /// The error [`LoadError::to_wire`] wrote; `None` if `bytes` are not one (cut
    /// short, an unknown variant, bytes left over). Never panics.
    pub(crate) fn from_wire(bytes: &[u8]) -> Option<LoadError> {
        use LoadError::*;
        let mut r = wire::Reader(bytes);
        let tag = r.u8()?;
        let path = r.path()?;
        let error = match tag {
            0 => NotFound { path },
            1 => NotAFile { path },
            2 => Io { path, source: r.io()? },
            3 => NotALibrary { path, reason: r.not_library()? },
            4 => Damaged { path, reason: r.damage()? },
            5 => WrongArchitecture { path, expected: r.string()?, found: r.string()? },
            6 => WrongPlatform { path, expected: r.string()?, found: r.string()? },
            7 => NoDescriptor { path },
            8 => NoExpectations { path },
            9 => BadMagic { path },
            10 => BoundaryMismatch { path, expected: r.u32()?, found: r.u32()? },
            11 => ContractMismatch { path, expected: r.string()?, found: r.string()?, exports: r.strings()? },
            12 => AbiMismatch { path, contract: r.string()?, expected: r.u32()?, found: r.u32()? },
            13 => LayoutMismatch {
                path,
                contract: r.string()?,
                plugin_version: r.string()?,
                host_version: r.string()?,
                differences: r.differences()?,
            },
            14 => PanicAbort { path },
            15 => {
                let message = r.string()?;
                let source = if message.is_empty() {
                    libloading::Error::DlOpenUnknown
                } else {
                    let message = std::ffi::CString::new(message).ok()?;
                    libloading::Error::DlOpen { source: message.as_c_str().into() }
                };
                Open { path, source }
            }
            16 => MissingSymbol { path },
            17 => DescriptorMismatch { path, what: r.index(Mismatch::ALL)? },
            18 => Isolation { path, source: r.launch()? },
            19 => Unsigned { path },
            20 => BadSignature { path, key: r.string()? },
            21 => UnknownKey { path, key: r.string()? },
            22 => NotPinned { path, name: r.string()?, sha256: r.string()? },
            23 => DigestMismatch { path, name: r.string()?, expected: r.string()?, found: r.string()? },
            24 => VersionTooOld { path, name: r.string()?, found: r.string()?, minimum: r.string()? },
            25 => Permissions { path, reason: r.exposure()? },
            26 => InitPanicked { path, message: r.string()? },
            27 => NoSuchExport { path, name: r.string()?, exports: r.strings()? },
            28 => AmbiguousExport { path, contract: r.string()?, names: r.strings()? },
            29 => IsolationUnsupported { path, platform: std::env::consts::OS },
            30 => Unavailable { plugin: path, detail: r.string()? },
            31 => Overloaded { plugin: path, detail: r.string()? },
            _ => return None,
        };
        r.0.is_empty().then_some(error)
    }
}

/// A field-less reason enum: each value's message, and `ALL` of them in one list, so
/// the wire form (a value's place in `ALL`) needs no table kept in step by hand.
macro_rules! reasons {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[doc = $doc:literal])* $variant:ident => $message:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[doc = $doc])* #[error($message)] $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
        }
    };
}

/// What a file that is not a shared library is instead ([`LoadError::NotALibrary`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotLibrary {
    /// It has no bytes.
    #[error("the file is empty")]
    Empty,
    /// It is text (a script, a manifest, a source file...).
    #[error("it is a text file")]
    Text,
    /// No object format this host knows.
    #[error("it is not an ELF, Mach-O or PE file")]
    UnknownFormat,
    /// Another kind of object file (an archive, WebAssembly, ...).
    #[error("it is a {format} file")]
    OtherFormat {
        /// The kind, as the `object` crate names it (`Archive`, `Wasm`, ...).
        format: String,
    },
    /// An executable (a plugin is a shared library).
    #[error("it is an executable")]
    Executable,
    /// An object file never linked into a library.
    #[error("it is an object file (`.o`) that was never linked")]
    Relocatable,
    /// A core dump.
    #[error("it is a core dump")]
    CoreDump,
    /// An object file of a kind neither library, executable nor object.
    #[error("it is an object file of an unknown kind")]
    UnknownObject,
}

/// What is wrong in a damaged library ([`LoadError::Damaged`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    /// A part of the file is malformed or contradicts another (see [`Flaw`]).
    #[error(transparent)]
    Structure(Flaw),
    /// A loadable segment ends past the end of the file: a copy cut short.
    #[error("it is truncated: a segment ends at byte {segment_end}, the file has {file_len}")]
    Truncated {
        /// Where the segment ends.
        segment_end: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The tomada section claims more bytes than a manifest may have.
    #[error("its tomada section claims {size} bytes, more than the {limit} a manifest may have")]
    SectionTooLarge {
        /// The size the section claims.
        size: u64,
        /// The most a manifest may have.
        limit: u64,
    },
    /// A table the dynamic loader reads claims an implausible size.
    #[error("its {table} claims {size} bytes")]
    TableTooLarge {
        /// Which table.
        table: Table,
        /// The size it claims.
        size: u64,
    },
    /// A table the dynamic loader reads lies outside the library's segments.
    #[error("its {table} lies outside its segments")]
    TableOutside {
        /// Which table.
        table: Table,
    },
    /// A table the dynamic loader reads lies outside the file.
    #[error("its {table} cannot be read")]
    TableUnreadable {
        /// Which table.
        table: Table,
    },
    /// A relocation table's size and entry count disagree.
    #[error("its {table} are malformed")]
    RelocationsMalformed {
        /// [`Table::Relocations`] or [`Table::PltRelocations`].
        table: Table,
    },
    /// A relocation of a type tomada does not know for this machine.
    #[error("it has a relocation of unknown type {kind}")]
    UnknownRelocation {
        /// The ELF relocation type.
        kind: u32,
    },
    /// The file starts like an object file but ends before its headers do.
    #[error("it starts like {format} file but is too short to be one")]
    CutShort {
        /// The format its first bytes name, with its article (`an ELF`).
        format: String,
    },
    /// The object parser could not read its headers.
    #[error("its headers cannot be read ({detail})")]
    Headers {
        /// The parser's words.
        detail: String,
    },
    /// The object parser could not read a universal Mach-O's header.
    #[error("its universal (fat) Mach-O header cannot be read ({detail})")]
    FatHeader {
        /// The parser's words.
        detail: String,
    },
    /// The object parser could not read the tomada section.
    #[error("its tomada section cannot be read ({detail})")]
    SectionUnreadable {
        /// The parser's words.
        detail: String,
    },
    /// The manifests in the tomada section are malformed or contradict each other.
    #[error("{detail}")]
    Manifest {
        /// What the manifest reader found.
        detail: String,
    },
}

impl From<Flaw> for Damage {
    fn from(flaw: Flaw) -> Self {
        Damage::Structure(flaw)
    }
}

reasons! {
    /// A table the dynamic loader reads ([`Damage`]).
    pub enum Table {
        /// `DT_STRTAB`.
        DynamicStrings => "dynamic string table",
        /// `DT_SYMTAB`.
        DynamicSymbols => "dynamic symbol table",
        /// `DT_HASH`.
        Hash => "hash table",
        /// `DT_RELA`.
        Relocations => "relocations",
        /// `DT_JMPREL`.
        PltRelocations => "PLT relocations",
        /// `DT_VERSYM`.
        SymbolVersions => "symbol version table",
    }
}

reasons! {
    /// A part of a library that is malformed, or contradicts another ([`Damage::Structure`]).
    pub enum Flaw {
        /// Its ELF header names no known byte order.
        ByteOrder => "its byte order is unknown",
        /// Its program header table's entry size or count is wrong.
        ProgramHeaderTable => "its program header table is malformed",
        /// Its program headers lie outside the file.
        ProgramHeadersOutside => "its program headers lie outside the file",
        /// A loadable segment's sizes or addresses contradict each other.
        SegmentInconsistent => "a loadable segment's sizes or addresses are inconsistent",
        /// A loadable segment's offset and address disagree modulo its alignment.
        SegmentMisaligned => "a loadable segment is misaligned",
        /// Two dynamic segments, or one outside the file.
        DynamicSegmentDuplicated => "its dynamic segment is duplicated or outside the file",
        /// A program interpreter (`PT_INTERP`).
        Interpreter => "it has a program interpreter, like an executable",
        /// Its `PT_TLS` or `PT_GNU_RELRO` segment contradicts the others.
        TlsOrRelroInconsistent => "its thread-local or read-only-after-relocation segment is inconsistent",
        /// Its `PT_TLS` or `PT_GNU_RELRO` segment lies outside its data.
        TlsOrRelroOutside => "its thread-local or read-only-after-relocation segment lies outside its data",
        /// No dynamic segment.
        NoDynamicSegment => "it has no dynamic segment",
        /// Its dynamic segment is not where its loadable segments map it.
        DynamicSegmentMisplaced => "its dynamic segment is not where its loadable segments put it",
        /// Its dynamic segment cannot be read.
        DynamicSegmentUnreadable => "its dynamic segment cannot be read",
        /// Its dynamic segment has no `DT_NULL`.
        DynamicSegmentUnterminated => "its dynamic segment has no end",
        /// No `DT_STRTAB`/`DT_STRSZ`.
        NoDynamicStrings => "it has no dynamic string table",
        /// Its dynamic string table does not end in NUL.
        DynamicStringsUnterminated => "its dynamic string table is not terminated",
        /// A name's offset lies outside the string table.
        NameOutside => "a name lies outside the string table",
        /// `DT_TEXTREL`.
        TextRelocations => "it relocates its own code (DT_TEXTREL)",
        /// `DT_SYMENT` or `DT_RELAENT` is not the ELF64 size.
        EntrySize => "its symbol or relocation entry size is wrong",
        /// No `DT_SYMTAB`.
        NoDynamicSymbols => "it has no dynamic symbol table",
        /// Its section headers lie outside the file.
        SectionHeadersOutside => "its section headers lie outside the file",
        /// No `.dynsym` section.
        NoDynamicSymbolSection => "it has no dynamic symbol table section",
        /// `.dynsym` contradicts `DT_SYMTAB`.
        DynamicSymbolSectionContradicts => "its dynamic symbol table section contradicts its dynamic segment",
        /// Its hash table names symbols past the symbol table.
        HashNamesNothing => "its hash table names symbols that do not exist",
        /// Its GNU hash table is malformed.
        GnuHash => "its GNU hash table is malformed",
        /// A symbol's address lies outside its segments.
        SymbolOutside => "a symbol lies outside its segments",
        /// `DT_REL` or `DT_RELR`.
        UncheckedRelocationFormat => "it uses relocation formats tomada does not check (REL, RELR)",
        /// A relocation writes outside the writable segments, or names no symbol.
        RelocationOutside => "a relocation writes outside its writable segments or names no symbol",
        /// Two relocations write the same place.
        RelocationTwice => "two relocations write the same place",
        /// Its `DT_INIT_ARRAY`/`DT_FINI_ARRAY` is malformed.
        InitArray => "its initialiser or finaliser array is malformed",
        /// An initialiser or finaliser does not point at code.
        InitNotCode => "an initialiser or finaliser does not point at code",
        /// `DT_INIT` or `DT_FINI` does not point at code.
        InitFunctionNotCode => "its initialiser or finaliser does not point at code",
        /// A symbol names a version no record defines.
        UndefinedVersion => "a symbol names a version that is not defined",
        /// Its symbol version records are malformed.
        VersionRecords => "its symbol version records are malformed",
        /// The exported descriptor symbol is not a whole descriptor object.
        DescriptorNotWhole => "its exported descriptor is not a whole descriptor",
        /// The descriptor's manifest pointer is not into the tomada section.
        DescriptorElsewhere => "its exported descriptor does not point at its .tomada section (a copied section?)",
        /// The descriptor's function pointers do not point at code.
        DescriptorFunctionsNotCode => "its exported descriptor's functions do not point at code",
        /// The ELF headers are malformed in a way only the general parser noticed.
        Headers => "its headers are malformed",
        /// The section-name index is malformed.
        SectionNameIndex => "its section-name index is malformed",
        /// No section-name table.
        NoSectionNames => "its section-name table is missing",
        /// The section-name table is implausibly large.
        SectionNamesTooLarge => "its section-name table is implausibly large",
        /// The section-name table lies outside the file.
        SectionNamesOutside => "its section-name table lies outside the file",
        /// A section's name lies outside the section-name table.
        SectionNameOutside => "a section name lies outside the section-name table",
        /// A section's name has no NUL.
        SectionNameUnterminated => "a section name is not terminated",
        /// The tomada section lies outside the file.
        SectionOutside => "its tomada section lies outside the file",
    }
}

reasons! {
    /// What a loaded library contradicts: the file inspected, or its own manifest
    /// ([`LoadError::DescriptorMismatch`]).
    pub enum Mismatch {
        /// The manifest the descriptor points to is not the one read from the file.
        ManifestBytes => "manifest bytes",
        /// The descriptor's contract name, ABI or fingerprint.
        Contract => "contract, ABI or fingerprint",
        /// The constructor returned a status no tomada plugin returns.
        ConstructorStatus => "constructor status",
        /// The descriptor's fixed header (magic, boundary version).
        Header => "header",
        /// The descriptor is smaller than any boundary version's.
        DescriptorSize => "descriptor size",
        /// The path no longer names the file that was inspected.
        ReplacedFile => "the path names another file than the one inspected",
    }
}

/// Why a plugin file's permissions are unsafe under a trust policy
/// ([`LoadError::Permissions`]): someone other than its owner could change it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Exposure {
    /// The file is writable by its group or others.
    #[error("the file is writable by its group or others (mode {mode:o})")]
    FileWritable {
        /// The file's permission bits.
        mode: u32,
    },
    /// The file belongs to neither root nor the host's user.
    #[error("the file is owned by uid {uid}, neither root nor this host's user ({host_uid})")]
    ForeignOwner {
        /// The file's owner.
        uid: u32,
        /// The host's effective user.
        host_uid: u32,
    },
    /// A directory on the file's resolved path is writable by its group or others and
    /// not sticky: whoever can write it can replace the plugin.
    #[error("its directory `{}` is writable by {} and not sticky (mode {mode:o})", directory.display(), if *by_others { "others" } else { "its group" })]
    DirectoryWritable {
        /// The directory.
        directory: PathBuf,
        /// Writable by others (else by its group only).
        by_others: bool,
        /// Its permission bits.
        mode: u32,
    },
    /// A directory on the file's resolved path belongs to neither root nor the host's user.
    #[error("its directory `{}` is owned by uid {uid}, neither root nor this host's user ({host_uid})", directory.display())]
    DirectoryForeignOwner {
        /// The directory.
        directory: PathBuf,
        /// Its owner.
        uid: u32,
        /// The host's effective user.
        host_uid: u32,
    },
    /// A directory on the file's resolved path could not be examined.
    #[error("cannot check its directory `{}`: {reason}", directory.display())]
    DirectoryUnreadable {
        /// The directory.
        directory: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The file's path could not be resolved (links followed) to check its directories.
    #[error("cannot resolve its path to check its directories: {reason}")]
    Unresolvable {
        /// What the system said.
        reason: String,
    },
    /// The resolved path no longer names the file that was checked.
    #[error("its path (`{}`) no longer names the file that was checked", resolved.display())]
    Replaced {
        /// Where the path leads now.
        resolved: PathBuf,
    },
}

/// `a`, `b`, `c`, each in backquotes.
fn list(items: &[String]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

fn contract_mismatch(path: &std::path::Path, expected: &str, found: &str, exports: &[String]) -> String {
    if exports.is_empty() {
        format!(
            "`{}` implements contract `{found}`, this host expects `{expected}`; load a `{expected}` plugin",
            path.display()
        )
    } else {
        format!(
            "`{}` exports no `{expected}` plugin, only {}; load a `{expected}` plugin",
            path.display(),
            list(exports)
        )
    }
}

/// Why an isolated plugin's process could not be started, or did not load the plugin
/// ([`LoadError::Isolation`]): each step of starting it has its own variant, and
/// those the plugin's process reports (before any plugin code ran) cross to the host
/// as themselves.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// This process was started as a runner, but its `main` did not serve first.
    #[error(
        "this process was started as a plugin runner (TOMADA_RUNNER_FD is set) but did not call \
         `tomada_host::isolate::serve_if_runner()` first in `main`"
    )]
    NotServing,
    /// The host's own executable (the default runner) was not found.
    #[error("cannot find the host's executable: {source}")]
    NoExecutable {
        /// Why.
        source: io::Error,
    },
    /// Something the channel needs could not be made.
    #[error("cannot {step}: {source}")]
    Setup {
        /// What.
        step: Step,
        /// Why.
        source: io::Error,
    },
    /// The runner did not start.
    #[error("cannot start runner `{}`: {source}", runner.display())]
    Start {
        /// The runner's executable.
        runner: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The process ended before its hello.
    #[error("the process ended before it greeted the host")]
    NoHello,
    /// The process sent no hello (in time), or not one.
    #[error(
        "no hello: {source} (a runner's `main` must call `tomada_host::isolate::serve_if_runner()` \
         before any other work)"
    )]
    BadHello {
        /// What was read instead (`TimedOut`, `InvalidData`...).
        source: io::Error,
    },
    /// The runner speaks another protocol version (another tomada-host build).
    #[error(
        "runner `{}` speaks another protocol ({found:?}); it must call \
         `tomada_host::isolate::serve_if_runner()` of the same tomada-host version",
        runner.display()
    )]
    Protocol {
        /// The runner's executable.
        runner: PathBuf,
        /// The version it named, if it named one.
        found: Option<u32>,
    },
    /// The load request could not be sent.
    #[error("cannot send the load request: {source}")]
    SendLoad {
        /// Why.
        source: io::Error,
    },
    /// The process died while loading the plugin.
    #[error("the process died while loading the plugin")]
    DiedLoading,
    /// The plugin did not load within the startup time
    /// ([`Isolation::startup`](crate::isolate::Isolation::startup)).
    #[error("the plugin did not load within {within:?}")]
    LoadTimedOut {
        /// The startup time.
        within: std::time::Duration,
    },
    /// The answer to the load request could not be read.
    #[error("no answer to the load request: {source}")]
    NoAnswer {
        /// Why.
        source: io::Error,
    },
    /// The plugin's process read another manifest than the host inspected (the file
    /// changed in between?).
    #[error("the plugin's process read another manifest than the host inspected")]
    OtherManifest,
    /// The plugin's process sent a failure report that does not decode.
    #[error("the plugin's process sent a malformed failure report")]
    MalformedReport,
    /// A frame the handshake has no place for.
    #[error("unexpected frame of kind {kind} during the handshake")]
    UnexpectedFrame {
        /// Its kind's number.
        kind: u8,
    },
    /// The plugin's process got no load request.
    #[error("no load request: {source}")]
    NoLoadRequest {
        /// Why.
        source: io::Error,
    },
    /// The plugin's process got another frame than the load request.
    #[error("expected a load request, got a frame of kind {kind}")]
    NotALoadRequest {
        /// Its kind's number.
        kind: u8,
    },
    /// The load request does not decode.
    #[error("malformed load request: {source}")]
    MalformedLoadRequest {
        /// Why.
        source: io::Error,
    },
    /// The plugin's process could not be contained (PID namespace), which a sandbox
    /// needs.
    #[error("{source}; a sandboxed plugin needs it (or `Sandbox::accept_weaker_kernel()`)")]
    Contain {
        /// Why.
        source: io::Error,
    },
    /// The sandbox could not be applied.
    #[error("{source}")]
    Sandbox {
        /// Why (the sandbox's own message).
        source: io::Error,
    },
    /// The descriptor the host named is not the plugin file.
    #[error("descriptor {fd} is not the plugin file")]
    NotThePluginFile {
        /// The descriptor.
        fd: i32,
    },
    /// The host named another descriptor than the plugin file's.
    #[error("the plugin file must be descriptor {expected}")]
    PluginDescriptor {
        /// The plugin file's descriptor.
        expected: i32,
    },
    /// A descriptor the host passes is not open: the process was not started by this
    /// host.
    #[error("descriptor {fd} is not open: this process was not started by this host")]
    MissingDescriptor {
        /// The descriptor.
        fd: i32,
    },
    /// A sandbox ([`Isolation::sandbox`](crate::isolate::Isolation::sandbox)) was asked
    /// for on a platform that has none: the plugin is not started unsandboxed.
    #[error(
        "a sandbox is not available on {platform}: the plugin was not started; isolate it without \
         `Isolation::sandbox` (its own process, a job object) or run it on Linux"
    )]
    SandboxUnsupported {
        /// The platform (`std::env::consts::OS`), e.g. `windows`.
        platform: &'static str,
    },
    /// The [`Isolation`](crate::isolate::Isolation) options cannot start a plugin
    /// (a zero deadline, a memory limit under what a process needs to start...):
    /// refused before a process starts.
    #[error("the isolation options cannot run a plugin: {reason}")]
    BadOptions {
        /// Which option, and why.
        reason: String,
    },
    /// The process started but did not load the plugin: why, how it ended, and its
    /// last lines on stderr.
    #[error("{why} ({}){}{}", describe_exit(*.status), hello_hint(why, *.status), stderr_tail(.stderr))]
    Ended {
        /// Why.
        why: Box<LaunchError>,
        /// Its exit status, if it was reaped.
        status: Option<std::process::ExitStatus>,
        /// Its last lines on stderr.
        stderr: Vec<String>,
    },
}

reasons! {
    /// What the host could not make for a plugin's process ([`LaunchError::Setup`]).
    pub enum Step {
        /// The channel's sockets.
        SocketPair => "make a socket pair",
        /// A descriptor for the child.
        Duplicate => "duplicate a descriptor",
        /// The nudge pipe.
        Pipe => "make the nudge pipe",
        /// The nudge pipe's flags or its opening through `/proc`.
        NudgePipe => "set up the nudge pipe",
        /// The shared memory.
        SharedMemory => "make the shared memory for the channel",
        /// Its mapping.
        MapSharedMemory => "map the shared memory for the channel",
        /// A thread forwarding the plugin's output.
        OutputThread => "start a thread for the plugin's output",
        /// The channel's pipes (Windows).
        ChannelPipes => "make the channel's pipes",
        /// The nudge semaphore (Windows).
        Semaphore => "make the nudge semaphore",
        /// The job object (Windows).
        Job => "make the job object",
        /// Putting the process in its job object (Windows).
        AssignJob => "put the plugin's process in its job object",
    }
}

/// How a process ended, for people.
pub(crate) fn describe_exit(status: Option<std::process::ExitStatus>) -> String {
    #[cfg(unix)]
    if let Some(sig) = status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)) {
        let name = match sig {
            libc::SIGSEGV => " (SIGSEGV: invalid memory access)",
            libc::SIGABRT => " (SIGABRT: aborted, e.g. `abort()` or an allocation failure)",
            libc::SIGBUS => " (SIGBUS)",
            libc::SIGILL => " (SIGILL)",
            libc::SIGFPE => " (SIGFPE)",
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGXCPU => " (SIGXCPU: CPU time limit)",
            libc::SIGSYS => " (SIGSYS: a forbidden system call)",
            _ => "",
        };
        return format!("the process was killed by signal {sig}{name}");
    }
    // Windows reports a crash as an exit code: an NTSTATUS.
    #[cfg(windows)]
    if let Some(code) = status.and_then(|s| s.code()) {
        let name = match code as u32 {
            0xC000_0005 => Some("access violation: invalid memory access"),
            0xC000_0409 => Some("fail fast: e.g. `abort()` or a panic with `panic = \"abort\"`"),
            0xC000_00FD => Some("stack overflow"),
            0xC000_0017 | 0xC000_012D => Some("out of memory (or the job's memory limit)"),
            0xC000_001D => Some("illegal instruction"),
            3 => Some("aborted: `abort()`"),
            137 => Some("the code the host kills with"),
            _ => None,
        };
        if let Some(name) = name {
            let code = code as u32;
            let shown = if code >= 0xC000_0000 { format!("{code:#x}") } else { code.to_string() };
            return format!("the process exited with status {shown} ({name})");
        }
    }
    match status {
        Some(s) => match s.code() {
            Some(code) => format!("the process exited with status {code}"),
            None => "the process ended".to_owned(),
        },
        None => "the process ended (its status is unknown)".to_owned(),
    }
}

/// A process's last lines on stderr, quoted after its failure (nothing if none).
/// What to do about a runner that exited cleanly without greeting the host: most
/// often the host's own program (`Runner::CurrentExe`, the default) whose `main`
/// does not serve first, and so ran the host's `main` again in the child.
fn hello_hint(why: &LaunchError, status: Option<std::process::ExitStatus>) -> &'static str {
    if matches!(why, LaunchError::NoHello) && status.is_some_and(|s| s.success()) {
        "; a runner's `main` must call `tomada_host::isolate::serve_if_runner()` first (without it, \
         the host's own program, the default runner, runs its `main` again in the child)"
    } else {
        ""
    }
}

fn stderr_tail(lines: &[String]) -> String {
    if lines.is_empty() { String::new() } else { format!("; its last lines on stderr: {}", lines.join(" | ")) }
}

/// The byte form of a [`LoadError`], for an isolated plugin's process to report its
/// load failure to the host as the same variant (the handshake's `Failed` frame).
///
/// Hand-written (a tag byte per variant, then its fields in order: paths and strings
/// as a little-endian `u32` length and their bytes, numbers little-endian), because
/// `LoadError` holds types no serialisation crate takes as they are (`io::Error`,
/// `libloading::Error`, `&'static str`), and the two ends are always the same
/// tomada-host build (the runner checks the protocol version first).
/// The differences of a [`LoadError::LayoutMismatch`], as one sentence each.
/// A [`LoadError::BadSignature`]'s message: the file is not what was signed (`key`
/// is the signing key's id, 16 hexadecimal digits), or the signature file itself is
/// at fault (`key` says how), which is no news about the plugin file.
fn bad_signature(path: &std::path::Path, key: &str) -> String {
    if key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!(
            "`{}` has a bad signature (key {key}): the file is not what was signed; get the plugin again from its publisher",
            path.display()
        )
    } else {
        format!(
            "`{}` has a bad signature: its signature file (`.minisig`) {key}; have the plugin signed again \
             (`tomada sign`, `minisign -S`), or get both files again from its publisher",
            path.display()
        )
    }
}

/// The differences of a [`LoadError::LayoutMismatch`], for its message: the first
/// [`SHOWN_DIFFERENCES`], then how many more. A type that changed is a difference in
/// every method that uses it, and a message of kilobytes hides the first, which is
/// the one to read; all are in the error's `differences`.
fn joined(differences: &[tomada::interface::Difference]) -> String {
    let mut text = differences.iter().take(SHOWN_DIFFERENCES).map(ToString::to_string).collect::<Vec<_>>().join("; ");
    if let Some(more) = differences.len().checked_sub(SHOWN_DIFFERENCES).filter(|n| *n > 0) {
        text.push_str(&format!(
            "; and {more} more difference{} (a type that changed differs in every method that uses it; \
             all are in the error's `differences`)",
            if more == 1 { "" } else { "s" }
        ));
    }
    text
}

/// How many differences a [`LoadError::LayoutMismatch`]'s message lists.
const SHOWN_DIFFERENCES: usize = 6;

#[cfg(any(unix, windows))]
mod wire {
    use std::io;
    use std::path::PathBuf;

    use tomada::interface::{Change, Difference, Refusal, Side, Style};

    use super::{Damage, Exposure, Flaw, LaunchError, NotLibrary, Step, Table};

    /// The words a [`Change`] holds as `&'static str`, each list in one place: a
    /// word crosses as its place in its list.
    const MEMBERS: &[&str] = &["method", "field", "variant"];
    const WHATS: &[&str] = &["fields", "variants"];
    const KINDS: &[&str] = &["a struct", "an enum", "a contract object"];
    const STYLES: &[Style] = &[Style::Unit, Style::Tuple, Style::Named];
    /// The field-less refusals; [`Refusal::Removed`] crosses as the place after
    /// them, then its two numbers.
    const REFUSALS: &[Refusal] = &[Refusal::NotAppended, Refusal::ClosedEnum, Refusal::NotMarked];

    #[derive(Default)]
    pub(super) struct Writer(pub(super) Vec<u8>);

    impl Writer {
        pub(super) fn tag(&mut self, tag: u8) -> &mut Self {
            self.0.push(tag);
            self
        }
        pub(super) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
            // A length that does not fit is cut: a report is at most a frame anyway.
            let len = bytes.len().min(u32::MAX as usize);
            self.0.extend_from_slice(&(len as u32).to_le_bytes());
            self.0.extend_from_slice(&bytes[..len]);
            self
        }
        pub(super) fn path(&mut self, path: &std::path::Path) -> &mut Self {
            self.bytes(path.as_os_str().as_encoded_bytes())
        }
        pub(super) fn str(&mut self, s: &str) -> &mut Self {
            self.bytes(s.as_bytes())
        }
        pub(super) fn u32(&mut self, n: u32) -> &mut Self {
            self.0.extend_from_slice(&n.to_le_bytes());
            self
        }
        pub(super) fn strings(&mut self, list: &[String]) -> &mut Self {
            self.u32(list.len().min(u32::MAX as usize) as u32);
            for s in list {
                self.str(s);
            }
            self
        }
        fn usize(&mut self, n: usize) -> &mut Self {
            self.u64(n as u64)
        }
        fn word(&mut self, all: &[&str], word: &str) -> &mut Self {
            self.u32(all.iter().position(|w| *w == word).unwrap_or(all.len()) as u32)
        }
        fn refusal(&mut self, why: &Refusal) -> &mut Self {
            match why {
                Refusal::Removed { since, minor } => self.u32(REFUSALS.len() as u32).u32(*since).u32(*minor),
                why => self.index(REFUSALS, why),
            }
        }
        fn option(&mut self, s: Option<&String>) -> &mut Self {
            match s {
                None => self.tag(0),
                Some(s) => self.tag(1).str(s),
            }
        }
        pub(super) fn differences(&mut self, list: &[Difference]) -> &mut Self {
            self.u32(list.len().min(u32::MAX as usize) as u32);
            for d in list {
                self.str(&d.method).str(&d.at).change(&d.change);
            }
            self
        }
        fn change(&mut self, change: &Change) -> &mut Self {
            match change {
                Change::Renamed { position, plugin } => self.tag(0).usize(*position).str(plugin),
                Change::OnlyIn { member, name, side, why } => {
                    self.tag(1).word(MEMBERS, member).str(name).tag(u8::from(*side == Side::Host)).refusal(why)
                }
                Change::Retyped { plugin, host } => self.tag(2).str(plugin).str(host),
                Change::Reordered { what, plugin, host } => self.tag(3).word(WHATS, what).strings(plugin).strings(host),
                Change::Replaced { member, position, plugin, host } => {
                    self.tag(4).word(MEMBERS, member).usize(*position).str(plugin).str(host)
                }
                Change::Since { plugin, host } => self.tag(5).u32(*plugin).u32(*host),
                Change::Async { plugin } => self.tag(6).tag(u8::from(*plugin)),
                Change::Arguments { plugin, host } => self.tag(7).usize(*plugin).usize(*host),
                Change::Style { plugin, host } => self.tag(8).index(STYLES, plugin).index(STYLES, host),
                Change::Kind { plugin, host } => self.tag(9).word(KINDS, plugin).word(KINDS, host),
                Change::Openness { plugin, host } => self.tag(10).option(plugin.as_ref()).option(host.as_ref()),
                Change::ObjectAbi { plugin, host } => self.tag(11).u32(*plugin).u32(*host),
                Change::ObjectMethods { plugin, host } => self.tag(12).strings(plugin).strings(host),
            }
        }
        pub(super) fn io(&mut self, e: &io::Error) -> &mut Self {
            self.u32(e.raw_os_error().map_or(u32::MAX, |n| n as u32));
            self.str(&e.to_string())
        }
        pub(super) fn u64(&mut self, n: u64) -> &mut Self {
            self.0.extend_from_slice(&n.to_le_bytes());
            self
        }
        /// A value of a field-less reason enum, as its place in that enum's `ALL`.
        pub(super) fn index<T: PartialEq>(&mut self, all: &[T], value: &T) -> &mut Self {
            self.u32(all.iter().position(|v| v == value).unwrap_or(all.len()) as u32)
        }
        pub(super) fn launch(&mut self, e: &LaunchError) -> &mut Self {
            use LaunchError::*;
            match e {
                NotServing => self.tag(0),
                NoExecutable { source } => self.tag(1).io(source),
                Setup { step, source } => self.tag(2).index(Step::ALL, step).io(source),
                Start { runner, source } => self.tag(3).path(runner).io(source),
                NoHello => self.tag(4),
                BadHello { source } => self.tag(5).io(source),
                Protocol { runner, found } => self.tag(6).path(runner).u64(found.map_or(u64::MAX, u64::from)),
                SendLoad { source } => self.tag(7).io(source),
                DiedLoading => self.tag(8),
                LoadTimedOut { within } => self.tag(9).u64(within.as_nanos().min(u64::MAX as u128) as u64),
                NoAnswer { source } => self.tag(10).io(source),
                OtherManifest => self.tag(11),
                MalformedReport => self.tag(12),
                UnexpectedFrame { kind } => self.tag(13).tag(*kind),
                NoLoadRequest { source } => self.tag(14).io(source),
                NotALoadRequest { kind } => self.tag(15).tag(*kind),
                MalformedLoadRequest { source } => self.tag(16).io(source),
                Contain { source } => self.tag(17).io(source),
                Sandbox { source } => self.tag(18).io(source),
                NotThePluginFile { fd } => self.tag(19).u32(*fd as u32),
                PluginDescriptor { expected } => self.tag(20).u32(*expected as u32),
                MissingDescriptor { fd } => self.tag(21).u32(*fd as u32),
                SandboxUnsupported { .. } => self.tag(23),
                BadOptions { reason } => self.tag(24).str(reason),
                Ended { why, status, stderr } => {
                    #[cfg(unix)]
                    use std::os::unix::process::ExitStatusExt;
                    // (On Windows an exit status is its exit code.)
                    #[cfg(unix)]
                    let raw = |s: &std::process::ExitStatus| s.into_raw() as u32;
                    #[cfg(windows)]
                    let raw = |s: &std::process::ExitStatus| s.code().unwrap_or_default() as u32;
                    self.tag(22).launch(why);
                    match status {
                        Some(s) => self.tag(1).u32(raw(s)),
                        None => self.tag(0),
                    };
                    self.strings(stderr)
                }
            }
        }
        pub(super) fn not_library(&mut self, what: &NotLibrary) -> &mut Self {
            match what {
                NotLibrary::Empty => self.tag(0),
                NotLibrary::Text => self.tag(1),
                NotLibrary::UnknownFormat => self.tag(2),
                NotLibrary::OtherFormat { format } => self.tag(3).str(format),
                NotLibrary::Executable => self.tag(4),
                NotLibrary::Relocatable => self.tag(5),
                NotLibrary::CoreDump => self.tag(6),
                NotLibrary::UnknownObject => self.tag(7),
            }
        }
        pub(super) fn damage(&mut self, damage: &Damage) -> &mut Self {
            match damage {
                Damage::Structure(flaw) => self.tag(0).index(Flaw::ALL, flaw),
                Damage::Truncated { segment_end, file_len } => self.tag(1).u64(*segment_end).u64(*file_len),
                Damage::SectionTooLarge { size, limit } => self.tag(2).u64(*size).u64(*limit),
                Damage::TableTooLarge { table, size } => self.tag(3).index(Table::ALL, table).u64(*size),
                Damage::TableOutside { table } => self.tag(4).index(Table::ALL, table),
                Damage::TableUnreadable { table } => self.tag(5).index(Table::ALL, table),
                Damage::RelocationsMalformed { table } => self.tag(6).index(Table::ALL, table),
                Damage::UnknownRelocation { kind } => self.tag(7).u32(*kind),
                Damage::CutShort { format } => self.tag(8).str(format),
                Damage::Headers { detail } => self.tag(9).str(detail),
                Damage::FatHeader { detail } => self.tag(10).str(detail),
                Damage::SectionUnreadable { detail } => self.tag(11).str(detail),
                Damage::Manifest { detail } => self.tag(12).str(detail),
            }
        }
        pub(super) fn exposure(&mut self, exposure: &Exposure) -> &mut Self {
            match exposure {
                Exposure::FileWritable { mode } => self.tag(0).u32(*mode),
                Exposure::ForeignOwner { uid, host_uid } => self.tag(1).u32(*uid).u32(*host_uid),
                Exposure::DirectoryWritable { directory, by_others, mode } => {
                    self.tag(2).path(directory).u32(u32::from(*by_others)).u32(*mode)
                }
                Exposure::DirectoryForeignOwner { directory, uid, host_uid } => {
                    self.tag(3).path(directory).u32(*uid).u32(*host_uid)
                }
                Exposure::DirectoryUnreadable { directory, reason } => self.tag(4).path(directory).str(reason),
                Exposure::Unresolvable { reason } => self.tag(5).str(reason),
                Exposure::Replaced { resolved } => self.tag(6).path(resolved),
            }
        }
    }

    /// Reads what [`Writer`] wrote; `None` for anything short or malformed.
    pub(super) struct Reader<'a>(pub(super) &'a [u8]);

    impl Reader<'_> {
        pub(super) fn u8(&mut self) -> Option<u8> {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            Some(b)
        }
        pub(super) fn u32(&mut self) -> Option<u32> {
            let (head, rest) = self.0.split_first_chunk::<4>()?;
            self.0 = rest;
            Some(u32::from_le_bytes(*head))
        }
        fn bytes(&mut self) -> Option<&[u8]> {
            let len = self.u32()? as usize;
            if len > self.0.len() {
                return None;
            }
            let (bytes, rest) = self.0.split_at(len);
            self.0 = rest;
            Some(bytes)
        }
        pub(super) fn path(&mut self) -> Option<PathBuf> {
            let bytes = self.bytes()?;
            #[cfg(unix)]
            {
                use std::os::unix::ffi::OsStrExt;
                Some(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
            }
            #[cfg(not(unix))]
            Some(PathBuf::from(String::from_utf8_lossy(bytes).into_owned()))
        }
        pub(super) fn string(&mut self) -> Option<String> {
            String::from_utf8(self.bytes()?.to_vec()).ok()
        }
        pub(super) fn strings(&mut self) -> Option<Vec<String>> {
            let count = self.u32()?;
            // Each string takes at least its 4-byte length: no count beyond the bytes.
            if count as usize > self.0.len() / 4 {
                return None;
            }
            (0..count).map(|_| self.string()).collect()
        }
        fn usize(&mut self) -> Option<usize> {
            usize::try_from(self.u64()?).ok()
        }
        fn word(&mut self, all: &[&'static str]) -> Option<&'static str> {
            all.get(self.u32()? as usize).copied()
        }
        fn refusal(&mut self) -> Option<Refusal> {
            match self.u32()? as usize {
                i if i == REFUSALS.len() => Some(Refusal::Removed { since: self.u32()?, minor: self.u32()? }),
                i => REFUSALS.get(i).copied(),
            }
        }
        fn flag(&mut self) -> Option<bool> {
            match self.u8()? {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            }
        }
        fn option(&mut self) -> Option<Option<String>> {
            Some(if self.flag()? { Some(self.string()?) } else { None })
        }
        pub(super) fn differences(&mut self) -> Option<Vec<Difference>> {
            let count = self.u32()?;
            // Each takes at least its two lengths and a tag: no count beyond the bytes.
            if count as usize > self.0.len() / 9 {
                return None;
            }
            (0..count)
                .map(|_| Some(Difference { method: self.string()?, at: self.string()?, change: self.change()? }))
                .collect()
        }
        fn change(&mut self) -> Option<Change> {
            Some(match self.u8()? {
                0 => Change::Renamed { position: self.usize()?, plugin: self.string()? },
                1 => Change::OnlyIn {
                    member: self.word(MEMBERS)?,
                    name: self.string()?,
                    side: if self.flag()? { Side::Host } else { Side::Plugin },
                    why: self.refusal()?,
                },
                2 => Change::Retyped { plugin: self.string()?, host: self.string()? },
                3 => Change::Reordered { what: self.word(WHATS)?, plugin: self.strings()?, host: self.strings()? },
                4 => Change::Replaced {
                    member: self.word(MEMBERS)?,
                    position: self.usize()?,
                    plugin: self.string()?,
                    host: self.string()?,
                },
                5 => Change::Since { plugin: self.u32()?, host: self.u32()? },
                6 => Change::Async { plugin: self.flag()? },
                7 => Change::Arguments { plugin: self.usize()?, host: self.usize()? },
                8 => Change::Style { plugin: self.index(STYLES)?, host: self.index(STYLES)? },
                9 => Change::Kind { plugin: self.word(KINDS)?, host: self.word(KINDS)? },
                10 => Change::Openness { plugin: self.option()?, host: self.option()? },
                11 => Change::ObjectAbi { plugin: self.u32()?, host: self.u32()? },
                12 => Change::ObjectMethods { plugin: self.strings()?, host: self.strings()? },
                _ => return None,
            })
        }
        pub(super) fn io(&mut self) -> Option<io::Error> {
            let raw = self.u32()?;
            let message = self.string()?;
            Some(if raw == u32::MAX { io::Error::other(message) } else { io::Error::from_raw_os_error(raw as i32) })
        }
        pub(super) fn u64(&mut self) -> Option<u64> {
            let (head, rest) = self.0.split_first_chunk::<8>()?;
            self.0 = rest;
            Some(u64::from_le_bytes(*head))
        }
        pub(super) fn index<T: Copy>(&mut self, all: &[T]) -> Option<T> {
            all.get(self.u32()? as usize).copied()
        }
        pub(super) fn launch(&mut self) -> Option<LaunchError> {
            use LaunchError::*;
            Some(match self.u8()? {
                0 => NotServing,
                1 => NoExecutable { source: self.io()? },
                2 => Setup { step: self.index(Step::ALL)?, source: self.io()? },
                3 => Start { runner: self.path()?, source: self.io()? },
                4 => NoHello,
                5 => BadHello { source: self.io()? },
                6 => Protocol {
                    runner: self.path()?,
                    found: match self.u64()? {
                        u64::MAX => None,
                        n => Some(u32::try_from(n).ok()?),
                    },
                },
                7 => SendLoad { source: self.io()? },
                8 => DiedLoading,
                9 => LoadTimedOut { within: std::time::Duration::from_nanos(self.u64()?) },
                10 => NoAnswer { source: self.io()? },
                11 => OtherManifest,
                12 => MalformedReport,
                13 => UnexpectedFrame { kind: self.u8()? },
                14 => NoLoadRequest { source: self.io()? },
                15 => NotALoadRequest { kind: self.u8()? },
                16 => MalformedLoadRequest { source: self.io()? },
                17 => Contain { source: self.io()? },
                18 => Sandbox { source: self.io()? },
                19 => NotThePluginFile { fd: self.u32()? as i32 },
                20 => PluginDescriptor { expected: self.u32()? as i32 },
                21 => MissingDescriptor { fd: self.u32()? as i32 },
                23 => SandboxUnsupported { platform: std::env::consts::OS },
                24 => BadOptions { reason: self.string()? },
                22 => {
                    #[cfg(unix)]
                    use std::os::unix::process::ExitStatusExt;
                    #[cfg(windows)]
                    use std::os::windows::process::ExitStatusExt;
                    let why = Box::new(self.launch()?);
                    let status = match self.u8()? {
                        0 => None,
                        #[cfg(unix)]
                        1 => Some(std::process::ExitStatus::from_raw(self.u32()? as i32)),
                        #[cfg(windows)]
                        1 => Some(std::process::ExitStatus::from_raw(self.u32()?)),
                        _ => return None,
                    };
                    Ended { why, status, stderr: self.strings()? }
                }
                _ => return None,
            })
        }
        pub(super) fn not_library(&mut self) -> Option<NotLibrary> {
            Some(match self.u8()? {
                0 => NotLibrary::Empty,
                1 => NotLibrary::Text,
                2 => NotLibrary::UnknownFormat,
                3 => NotLibrary::OtherFormat { format: self.string()? },
                4 => NotLibrary::Executable,
                5 => NotLibrary::Relocatable,
                6 => NotLibrary::CoreDump,
                7 => NotLibrary::UnknownObject,
                _ => return None,
            })
        }
        pub(super) fn damage(&mut self) -> Option<Damage> {
            Some(match self.u8()? {
                0 => Damage::Structure(self.index(Flaw::ALL)?),
                1 => Damage::Truncated { segment_end: self.u64()?, file_len: self.u64()? },
                2 => Damage::SectionTooLarge { size: self.u64()?, limit: self.u64()? },
                3 => Damage::TableTooLarge { table: self.index(Table::ALL)?, size: self.u64()? },
                4 => Damage::TableOutside { table: self.index(Table::ALL)? },
                5 => Damage::TableUnreadable { table: self.index(Table::ALL)? },
                6 => Damage::RelocationsMalformed { table: self.index(Table::ALL)? },
                7 => Damage::UnknownRelocation { kind: self.u32()? },
                8 => Damage::CutShort { format: self.string()? },
                9 => Damage::Headers { detail: self.string()? },
                10 => Damage::FatHeader { detail: self.string()? },
                11 => Damage::SectionUnreadable { detail: self.string()? },
                12 => Damage::Manifest { detail: self.string()? },
                _ => return None,
            })
        }
        pub(super) fn exposure(&mut self) -> Option<Exposure> {
            Some(match self.u8()? {
                0 => Exposure::FileWritable { mode: self.u32()? },
                1 => Exposure::ForeignOwner { uid: self.u32()?, host_uid: self.u32()? },
                2 => Exposure::DirectoryWritable {
                    directory: self.path()?,
                    by_others: self.u32()? != 0,
                    mode: self.u32()?,
                },
                3 => {
                    Exposure::DirectoryForeignOwner { directory: self.path()?, uid: self.u32()?, host_uid: self.u32()? }
                }
                4 => Exposure::DirectoryUnreadable { directory: self.path()?, reason: self.string()? },
                5 => Exposure::Unresolvable { reason: self.string()? },
                6 => Exposure::Replaced { resolved: self.path()? },
                _ => return None,
            })
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::path::PathBuf;

    use super::{Damage, Exposure, Flaw, LoadError, Mismatch, NotLibrary, Table};

    /// A layout mismatch's message lists the first differences and counts the rest:
    /// one type changed in many methods made messages of kilobytes.
    #[test]
    fn a_layout_mismatch_message_lists_the_first_differences_and_counts_the_rest() {
        let differences = every_change();
        assert!(differences.len() > super::SHOWN_DIFFERENCES + 1, "enough to cut");
        let err = LoadError::LayoutMismatch {
            path: PathBuf::from("/p/libx.so"),
            contract: "x::X".into(),
            plugin_version: "1.1".into(),
            host_version: "1.1".into(),
            differences: differences.clone(),
        };
        let text = err.to_string();
        for shown in &differences[..super::SHOWN_DIFFERENCES] {
            assert!(text.contains(&shown.to_string()), "{text}");
        }
        assert!(!text.contains(&differences[super::SHOWN_DIFFERENCES].to_string()), "{text}");
        let more = differences.len() - super::SHOWN_DIFFERENCES;
        assert!(text.contains(&format!("; and {more} more differences")), "{text}");
        // Just as many: all listed, nothing counted.
        let err = LoadError::LayoutMismatch {
            path: PathBuf::from("/p/libx.so"),
            contract: "x::X".into(),
            plugin_version: "1.1".into(),
            host_version: "1.1".into(),
            differences: differences[..super::SHOWN_DIFFERENCES].to_vec(),
        };
        assert!(!err.to_string().contains("more difference"), "{err}");
    }

    /// One of every variant, with distinct field values.
    /// A difference of every kind of change (what a `LayoutMismatch` holds).
    fn every_change() -> Vec<tomada::interface::Difference> {
        use tomada::interface::{Change, Difference, Refusal, Side, Style};
        let s = |t: &str| t.to_owned();
        let changes = vec![
            Change::Renamed { position: 2, plugin: s("greet") },
            Change::OnlyIn { member: "field", name: s("note"), side: Side::Plugin, why: Refusal::NotAppended },
            Change::OnlyIn { member: "variant", name: s("Gone"), side: Side::Host, why: Refusal::ClosedEnum },
            Change::OnlyIn { member: "method", name: s("count"), side: Side::Host, why: Refusal::NotMarked },
            Change::OnlyIn {
                member: "field",
                name: s("note"),
                side: Side::Host,
                why: Refusal::Removed { since: 1, minor: 2 },
            },
            Change::Retyped { plugin: s("String"), host: s("&str") },
            Change::Reordered { what: "fields", plugin: vec![s("b"), s("a")], host: vec![s("a"), s("b")] },
            Change::Replaced { member: "variant", position: 3, plugin: s("X"), host: s("Y") },
            Change::Since { plugin: 0, host: 1 },
            Change::Async { plugin: true },
            Change::Arguments { plugin: 1, host: 2 },
            Change::Style { plugin: Style::Tuple, host: Style::Named },
            Change::Kind { plugin: "an enum", host: "a contract object" },
            Change::Openness { plugin: Some(s("Unknown")), host: None },
            Change::ObjectAbi { plugin: 1, host: 2 },
            Change::ObjectMethods { plugin: vec![s("next")], host: vec![] },
        ];
        changes
            .into_iter()
            .enumerate()
            .map(|(i, change)| Difference {
                method: if i == 0 { s("método ✓") } else { s("greet") },
                at: if i % 2 == 0 { String::new() } else { s("argument 1 `Step`") },
                change,
            })
            .collect()
    }

    fn every_variant() -> Vec<LoadError> {
        use LoadError::*;
        let p = || PathBuf::from("/plugins/ümlaut greeter.so");
        let s = |t: &str| t.to_owned();
        let dl = std::ffi::CString::new("libtomada_gone.so: cannot open shared object file").unwrap();
        vec![
            NotFound { path: p() },
            NotAFile { path: p() },
            Io { path: p(), source: std::io::Error::from_raw_os_error(13) },
            Io { path: p(), source: std::io::Error::other("short read") },
            NotALibrary { path: p(), reason: NotLibrary::Text },
            NotALibrary { path: p(), reason: NotLibrary::OtherFormat { format: s("Wasm") } },
            Damaged { path: p(), reason: Flaw::HashNamesNothing.into() },
            Damaged { path: p(), reason: Damage::Truncated { segment_end: 1 << 40, file_len: 7 } },
            Damaged { path: p(), reason: Damage::TableTooLarge { table: Table::SymbolVersions, size: u64::MAX } },
            Damaged { path: p(), reason: Damage::RelocationsMalformed { table: Table::PltRelocations } },
            Damaged { path: p(), reason: Damage::UnknownRelocation { kind: 42 } },
            Damaged { path: p(), reason: Damage::Manifest { detail: s("two exports have the same index") } },
            WrongArchitecture { path: p(), expected: s("X86_64"), found: s("Aarch64") },
            WrongPlatform { path: p(), expected: s("a glibc library"), found: s("musl") },
            NoDescriptor { path: p() },
            NoExpectations { path: p() },
            BadMagic { path: p() },
            BoundaryMismatch { path: p(), expected: 3, found: 2 },
            ContractMismatch { path: p(), expected: s("Greeter"), found: s("Kv"), exports: vec![] },
            ContractMismatch {
                path: p(),
                expected: s("Greeter"),
                found: s("Kv"),
                exports: vec![s("kv (Kv)"), s("x (Y)")],
            },
            AbiMismatch { path: p(), contract: s("Greeter"), expected: 1, found: 2 },
            LayoutMismatch {
                path: p(),
                contract: s("Greeter"),
                plugin_version: s("1.0"),
                host_version: s("1.1"),
                differences: every_change(),
            },
            PanicAbort { path: p() },
            Open { path: p(), source: libloading::Error::DlOpen { source: dl.as_c_str().into() } },
            Open { path: p(), source: libloading::Error::DlOpenUnknown },
            MissingSymbol { path: p() },
            DescriptorMismatch { path: p(), what: Mismatch::ConstructorStatus },
            DescriptorMismatch { path: p(), what: Mismatch::ReplacedFile },
            Isolation { path: p(), source: crate::LaunchError::NoHello },
            Isolation {
                path: p(),
                source: crate::LaunchError::Ended {
                    why: Box::new(crate::LaunchError::Setup {
                        step: crate::error::Step::OutputThread,
                        source: std::io::Error::from_raw_os_error(11),
                    }),
                    status: Some(std::os::unix::process::ExitStatusExt::from_raw(9)),
                    stderr: vec![s("olá"), s("")],
                },
            },
            Isolation { path: p(), source: crate::LaunchError::Protocol { runner: p(), found: Some(2) } },
            Isolation { path: p(), source: crate::LaunchError::BadOptions { reason: s("`deadline` is zero") } },
            Isolation {
                path: p(),
                source: crate::LaunchError::Sandbox { source: std::io::Error::other("Landlock: no") },
            },
            Isolation {
                path: p(),
                source: crate::LaunchError::LoadTimedOut { within: std::time::Duration::from_millis(1500) },
            },
            Unsigned { path: p() },
            BadSignature { path: p(), key: s("0123456789ABCDEF") },
            UnknownKey { path: p(), key: s("FEDCBA9876543210") },
            NotPinned { path: p(), name: s("greeter"), sha256: s("ab".repeat(32).as_str()) },
            DigestMismatch { path: p(), name: s("greeter"), expected: s("00"), found: s("ff") },
            VersionTooOld { path: p(), name: s("greeter"), found: s("1.0.0"), minimum: s("1.2.0") },
            Permissions { path: p(), reason: Exposure::FileWritable { mode: 0o666 } },
            Permissions { path: p(), reason: Exposure::ForeignOwner { uid: 4242, host_uid: 1000 } },
            Permissions {
                path: p(),
                reason: Exposure::DirectoryWritable { directory: p(), by_others: true, mode: 0o777 },
            },
            Permissions {
                path: p(),
                reason: Exposure::DirectoryWritable { directory: p(), by_others: false, mode: 0o775 },
            },
            Permissions {
                path: p(),
                reason: Exposure::DirectoryForeignOwner { directory: p(), uid: 4242, host_uid: 0 },
            },
            Permissions { path: p(), reason: Exposure::DirectoryUnreadable { directory: p(), reason: s("denied") } },
            Permissions { path: p(), reason: Exposure::Unresolvable { reason: s("no such file") } },
            Permissions { path: p(), reason: Exposure::Replaced { resolved: p() } },
            InitPanicked { path: p(), message: s("configuração ausente") },
            NoSuchExport { path: p(), name: s("hola"), exports: vec![s("hello (Greeter)"), s("memory (Store)")] },
            AmbiguousExport { path: p(), contract: s("Greeter"), names: vec![s("hello"), s("hola")] },
        ]
    }

    #[test]
    fn every_variant_crosses_the_wire_as_itself() {
        let all = every_variant();
        let mut tags: Vec<u8> = all.iter().map(|e| e.to_wire()[0]).collect();
        tags.dedup();
        assert_eq!(tags.len(), 29, "one tag per variant: {tags:?}");
        for error in all {
            let back = LoadError::from_wire(&error.to_wire()).unwrap_or_else(|| panic!("{error:?} did not decode"));
            assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&error), "{error:?} -> {back:?}");
            assert_eq!(format!("{back:?}"), format!("{error:?}"), "the typed reason crosses as itself");
            assert_eq!(back.to_string(), error.to_string());
            let source = |e: &LoadError| std::error::Error::source(e).map(|s| s.to_string());
            assert_eq!(source(&back), source(&error), "{error:?}");
        }
    }

    /// Every value of the field-less reasons, not one of each kind: the wire form is
    /// a value's place in its enum's `ALL`.
    #[test]
    fn every_reason_value_crosses_the_wire_as_itself() {
        let p = || PathBuf::from("/plugins/x.so");
        let mut all: Vec<LoadError> =
            Flaw::ALL.iter().map(|&f| LoadError::Damaged { path: p(), reason: f.into() }).collect();
        for &table in Table::ALL {
            all.push(LoadError::Damaged { path: p(), reason: Damage::TableTooLarge { table, size: 1 << 40 } });
            all.push(LoadError::Damaged { path: p(), reason: Damage::TableOutside { table } });
            all.push(LoadError::Damaged { path: p(), reason: Damage::TableUnreadable { table } });
        }
        all.extend(Mismatch::ALL.iter().map(|&what| LoadError::DescriptorMismatch { path: p(), what }));
        assert_eq!(all.len(), Flaw::ALL.len() + 3 * Table::ALL.len() + Mismatch::ALL.len());
        for error in all {
            let back = LoadError::from_wire(&error.to_wire()).unwrap_or_else(|| panic!("{error:?} did not decode"));
            assert_eq!(format!("{back:?}"), format!("{error:?}"));
            assert_eq!(back.to_string(), error.to_string());
        }
        // A value past the end of a list is refused, not guessed.
        let mut wire = LoadError::DescriptorMismatch { path: p(), what: Mismatch::Header }.to_wire();
        let last = wire.len() - 4;
        wire[last..].copy_from_slice(&(Mismatch::ALL.len() as u32).to_le_bytes());
        assert!(LoadError::from_wire(&wire).is_none());
    }

    #[test]
    fn malformed_reports_are_refused_without_panicking() {
        for error in every_variant() {
            let wire = error.to_wire();
            for cut in 0..wire.len() {
                assert!(LoadError::from_wire(&wire[..cut]).is_none(), "{error:?} cut at {cut}");
            }
            let mut longer = wire.clone();
            longer.push(0);
            assert!(LoadError::from_wire(&longer).is_none(), "{error:?} with a byte more");
        }
        assert!(LoadError::from_wire(&[200, 0, 0, 0, 0]).is_none(), "an unknown variant");
        // A length that claims more than there is.
        assert!(LoadError::from_wire(&[4, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, b'x']).is_none());
        // A string that is not UTF-8.
        assert!(LoadError::from_wire(&[4, 0, 0, 0, 0, 1, 0, 0, 0, 0xff]).is_none());
    }
}
