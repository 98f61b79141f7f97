//! [`LoadError`]: every way loading a plugin can fail, each with what to do.

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
    /// The path is a directory or another non-file.
    #[error("`{}` is not a file (a directory?); give the path of a plugin library", path.display())]
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
        reason: String,
    },
    /// The file looks like a shared library but is cut short or corrupt.
    #[error("`{}` is damaged: {reason}; rebuild or copy the plugin again", path.display())]
    Damaged {
        /// The plugin path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
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
    #[error("`{}` implements {contract} {plugin_version}, which does not fit this host's {contract} {host_version}: {}; rebuild the plugin against the host's contract crate, or change the contract only in the ways docs/evolution.md allows (anything else needs a new ABI number)", path.display(), differences.join("; "))]
    LayoutMismatch {
        /// The plugin path.
        path: PathBuf,
        /// The contract's name.
        contract: String,
        /// The contract version the plugin was built against, e.g. `1.0`.
        plugin_version: String,
        /// The contract version this host was built against.
        host_version: String,
        /// Every difference, method by method, in words (each a
        /// [`tomada::interface::Difference`], printed).
        differences: Vec<String>,
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
        what: &'static str,
    },
    /// An isolated plugin's process could not be started, or did not load the plugin.
    #[error("`{}` could not be started in its own process: {reason}", path.display())]
    Isolation {
        /// The plugin path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Isolation ([`isolate`](crate::isolate)) is not implemented on this platform yet.
    #[error("`{}` cannot run in its own process: isolation is not supported on {platform} yet; load it in-process", path.display())]
    IsolationUnsupported {
        /// The plugin path.
        path: PathBuf,
        /// The platform (`std::env::consts::OS`), e.g. `windows`.
        platform: &'static str,
    },
    /// Under a trust policy: the plugin has no signature (`PLUGIN.minisig`) and is not pinned.
    #[error("`{}` is not signed (no `.minisig` next to it) and its digest is not pinned; sign it with `tomada sign` or `minisign -S` by a key the host trusts", path.display())]
    Unsigned {
        /// The plugin path.
        path: PathBuf,
    },
    /// Under a trust policy: the signature does not match the file (tampered, or a
    /// malformed signature file).
    #[error("`{}` has a bad signature (key {key}): the file is not what was signed; get the plugin again from its publisher", path.display())]
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
        reason: String,
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

// Isolated plugins run on Unix only (see `isolate`).
#[cfg(unix)]
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
            NotALibrary { path, reason } => w.tag(3).path(path).str(reason),
            Damaged { path, reason } => w.tag(4).path(path).str(reason),
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
                w.tag(13).path(path).str(contract).str(plugin_version).str(host_version).strings(differences)
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
            DescriptorMismatch { path, what } => w.tag(17).path(path).mismatch(what),
            Isolation { path, reason } => w.tag(18).path(path).str(reason),
            // Made by a host, never by a plugin's process; crosses as its reason.
            IsolationUnsupported { path, .. } => w.tag(18).path(path).str(&self.to_string()),
            Unsigned { path } => w.tag(19).path(path),
            BadSignature { path, key } => w.tag(20).path(path).str(key),
            UnknownKey { path, key } => w.tag(21).path(path).str(key),
            NotPinned { path, name, sha256 } => w.tag(22).path(path).str(name).str(sha256),
            DigestMismatch { path, name, expected, found } => w.tag(23).path(path).str(name).str(expected).str(found),
            VersionTooOld { path, name, found, minimum } => w.tag(24).path(path).str(name).str(found).str(minimum),
            Permissions { path, reason } => w.tag(25).path(path).str(reason),
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
            3 => NotALibrary { path, reason: r.string()? },
            4 => Damaged { path, reason: r.string()? },
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
                differences: r.strings()?,
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
            17 => DescriptorMismatch { path, what: r.mismatch()? },
            18 => Isolation { path, reason: r.string()? },
            19 => Unsigned { path },
            20 => BadSignature { path, key: r.string()? },
            21 => UnknownKey { path, key: r.string()? },
            22 => NotPinned { path, name: r.string()?, sha256: r.string()? },
            23 => DigestMismatch { path, name: r.string()?, expected: r.string()?, found: r.string()? },
            24 => VersionTooOld { path, name: r.string()?, found: r.string()?, minimum: r.string()? },
            25 => Permissions { path, reason: r.string()? },
            26 => InitPanicked { path, message: r.string()? },
            27 => NoSuchExport { path, name: r.string()?, exports: r.strings()? },
            28 => AmbiguousExport { path, contract: r.string()?, names: r.strings()? },
            _ => return None,
        };
        r.0.is_empty().then_some(error)
    }
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

/// The byte form of a [`LoadError`], for an isolated plugin's process to report its
/// load failure to the host as the same variant (the handshake's `Failed` frame).
///
/// Hand-written (a tag byte per variant, then its fields in order: paths and strings
/// as a little-endian `u32` length and their bytes, numbers little-endian), because
/// `LoadError` holds types no serialisation crate takes as they are (`io::Error`,
/// `libloading::Error`, `&'static str`), and the two ends are always the same
/// tomada-host build (the runner checks the protocol version first).
#[cfg(unix)]
mod wire {
    use std::io;
    use std::path::PathBuf;

    /// Every `&'static str` a [`LoadError::DescriptorMismatch`] is made with.
    const MISMATCHES: &[&str] = &[
        "manifest bytes",
        "contract, ABI or fingerprint",
        "constructor status",
        "header",
        "descriptor size",
        "the path names another file than the one inspected",
    ];

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
        pub(super) fn io(&mut self, e: &io::Error) -> &mut Self {
            self.u32(e.raw_os_error().map_or(u32::MAX, |n| n as u32));
            self.str(&e.to_string())
        }
        pub(super) fn mismatch(&mut self, what: &str) -> &mut Self {
            let index = MISMATCHES.iter().position(|&m| m == what).unwrap_or(MISMATCHES.len());
            self.u32(index as u32)
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
        pub(super) fn io(&mut self) -> Option<io::Error> {
            let raw = self.u32()?;
            let message = self.string()?;
            Some(if raw == u32::MAX { io::Error::other(message) } else { io::Error::from_raw_os_error(raw as i32) })
        }
        pub(super) fn mismatch(&mut self) -> Option<&'static str> {
            Some(MISMATCHES.get(self.u32()? as usize).copied().unwrap_or("reported by the plugin's process"))
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::path::PathBuf;

    use super::LoadError;

    /// One of every variant, with distinct field values.
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
            NotALibrary { path: p(), reason: s("it is a text file") },
            Damaged { path: p(), reason: s("its hash table names symbols that do not exist") },
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
                differences: vec![s("method `greet` takes `&str`"), s(""), s("método ✓")],
            },
            PanicAbort { path: p() },
            Open { path: p(), source: libloading::Error::DlOpen { source: dl.as_c_str().into() } },
            Open { path: p(), source: libloading::Error::DlOpenUnknown },
            MissingSymbol { path: p() },
            DescriptorMismatch { path: p(), what: "constructor status" },
            Isolation { path: p(), reason: s("no hello") },
            Unsigned { path: p() },
            BadSignature { path: p(), key: s("0123456789ABCDEF") },
            UnknownKey { path: p(), key: s("FEDCBA9876543210") },
            NotPinned { path: p(), name: s("greeter"), sha256: s("ab".repeat(32).as_str()) },
            DigestMismatch { path: p(), name: s("greeter"), expected: s("00"), found: s("ff") },
            VersionTooOld { path: p(), name: s("greeter"), found: s("1.0.0"), minimum: s("1.2.0") },
            Permissions { path: p(), reason: s("the file is writable by others") },
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
            assert_eq!(back.to_string(), error.to_string());
            let source = |e: &LoadError| std::error::Error::source(e).map(|s| s.to_string());
            assert_eq!(source(&back), source(&error), "{error:?}");
        }
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
