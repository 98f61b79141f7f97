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
    /// The plugin implements another contract.
    #[error("`{}` implements contract `{found}`, this host expects `{expected}`; load a `{expected}` plugin", path.display())]
    ContractMismatch {
        /// The plugin path.
        path: PathBuf,
        /// The contract the host expects.
        expected: String,
        /// The contract the plugin implements.
        found: String,
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
    #[error("`{}` was built against a different {contract} {plugin_version} than this host's {host_version}: {}; rebuild the plugin against the host's contract crate (a contract that changes this way needs a new ABI number)", path.display(), differences.join("; "))]
    LayoutMismatch {
        /// The plugin path.
        path: PathBuf,
        /// The contract's name.
        contract: String,
        /// The contract version the plugin was built against, e.g. `1.0`.
        plugin_version: String,
        /// The contract version this host was built against.
        host_version: String,
        /// Every difference, method by method, in words.
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
