//! Who may run code in the host: a [`TrustPolicy`] of trusted minisign keys, pinned
//! digests and minimum versions, with StrictModes-like permission checks.
//!
//! Inspection and the contract checks prove a file is *compatible*; they say nothing
//! about who made it. A policy is what authenticates: with one, a plugin loads only if
//! it carries a detached minisign signature (`PLUGIN.minisig`, as `minisign -S` or
//! `tomada sign` writes) by a trusted key, or its SHA-256 is pinned for its name — and
//! is not older than the minimum version for its name, and is not writable by anyone
//! but its owner (root or the host's user) in a directory only its owner may change.
//! The bytes hashed and verified are read once through the same open descriptor the
//! loader then loads (see [`crate::Loader`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ct_codecs::{Base64, Decoder};
use sha2::{Digest, Sha256};

use crate::LoadError;
use crate::file::PluginFile;

/// The longest signature file read (a minisign signature is about 300 bytes).
const MAX_SIGNATURE: u64 = 64 * 1024;

/// What a policy requires of each plugin before it is loaded.
///
/// ```no_run
/// use tomada_host::{Loader, TrustPolicy};
///
/// let policy = TrustPolicy::new()
///     .trust_key_file("keys/release.pub")?
///     .min_version("greeter", "1.0.0")?;
/// let plugin = Loader::with_policy(policy).load::<dyn pluginapi::Greeter>("bin/greeter_v1.so")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    keys: Vec<TrustedKey>,
    pins: HashMap<String, [u8; 32]>,
    min_versions: HashMap<String, semver::Version>,
    strict_modes: bool,
}

#[derive(Debug, Clone)]
struct TrustedKey {
    /// The key id as `minisign` prints it.
    id: String,
    /// The key id as signatures carry it.
    raw_id: [u8; 8],
    key: ed25519_dalek::VerifyingKey,
}

/// A detached minisign signature (`PLUGIN.minisig`), checked by `minisign-verify`'s
/// parser and taken apart for the verification here.
struct Minisig {
    /// Prehashed (`ED`: the signature is over BLAKE2b-512 of the file), as every
    /// minisign since 0.8 and `tomada sign` write; legacy (`Ed`) is refused.
    prehashed: bool,
    raw_id: [u8; 8],
    /// The key id as `minisign` prints it.
    id: String,
    signature: ed25519_dalek::Signature,
    /// The signature over `signature` and the trusted comment.
    global: ed25519_dalek::Signature,
    trusted_comment: String,
}

/// A policy that cannot be built as asked: an unreadable key, a malformed digest or
/// version.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A public key file could not be read.
    #[error("cannot read public key `{}`: {error}", path.display())]
    ReadKey {
        /// The key file.
        path: PathBuf,
        /// Why it could not be read.
        error: std::io::Error,
    },
    /// Text that is not a minisign public key.
    #[error("{}not a minisign public key (expected one base64 line starting `RW`)", in_file(path.as_deref()))]
    NotAKey {
        /// The key file it came from, if it came from one.
        path: Option<PathBuf>,
    },
    /// Text that is not a SHA-256 digest.
    #[error("{}`{text}` is not a SHA-256 digest (64 hex digits)", at_line(*line))]
    NotADigest {
        /// The text.
        text: String,
        /// Its line of a lock file (from 1), if it came from one.
        line: Option<usize>,
    },
    /// A line of a lock file that is not a name and a digest (in that order: a
    /// `sha256sum` line, digest first, is one).
    #[error("line {line}: expected `NAME SHA256` (the name first, unlike `sha256sum`), found `{found}`")]
    LockLine {
        /// Its number, from 1.
        line: usize,
        /// The line.
        found: String,
    },
    /// Text that is not a semantic version.
    #[error("`{text}` is not a semantic version: {error}")]
    NotAVersion {
        /// The text.
        text: String,
        /// What the version parser found.
        error: semver::Error,
    },
}

fn in_file(path: Option<&Path>) -> String {
    path.map(|p| format!("`{}`: ", p.display())).unwrap_or_default()
}

fn at_line(line: Option<usize>) -> String {
    line.map(|n| format!("line {n}: ")).unwrap_or_default()
}

impl Default for TrustPolicy {
    fn default() -> Self {
        TrustPolicy { keys: Vec::new(), pins: HashMap::new(), min_versions: HashMap::new(), strict_modes: true }
    }
}

/// What verification established about a file: its digest, and the key that signed it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Provenance {
    pub(crate) sha256: Option<[u8; 32]>,
    pub(crate) key: Option<String>,
}

impl TrustPolicy {
    /// An empty policy: it trusts nothing, so it refuses every plugin until keys or
    /// pins are added. Permission checks are on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the minisign public key in `path` (a `minisign.pub` file, as written by
    /// `minisign -G` or `tomada keygen`).
    ///
    /// # Errors
    /// The file cannot be read or is not a minisign public key.
    pub fn trust_key_file(self, path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|error| PolicyError::ReadKey { path: path.to_path_buf(), error })?;
        let line = text.lines().find(|l| !l.starts_with("untrusted comment:") && !l.trim().is_empty()).unwrap_or("");
        self.trust_key(line.trim()).map_err(|e| match e {
            PolicyError::NotAKey { path: None } => PolicyError::NotAKey { path: Some(path.to_path_buf()) },
            other => other,
        })
    }

    /// Trusts a minisign public key given as its base64 line (`RWQ...`).
    ///
    /// # Errors
    /// The text is not a minisign public key.
    pub fn trust_key(mut self, base64: &str) -> Result<Self, PolicyError> {
        let bad = || PolicyError::NotAKey { path: None };
        // minisign-verify checks the format; the parts are taken from the same bytes.
        minisign_verify::PublicKey::from_base64(base64).map_err(|_| bad())?;
        let bytes = Base64::decode_to_vec(base64.trim(), None).map_err(|_| bad())?;
        let (Some(raw_id), Some(key)) = (bytes.get(2..10), bytes.get(10..42)) else { return Err(bad()) };
        let key = ed25519_dalek::VerifyingKey::from_bytes(key.try_into().expect("32 bytes")).map_err(|_| bad())?;
        let id = key_id(base64).ok_or_else(bad)?;
        self.keys.push(TrustedKey { id, raw_id: raw_id.try_into().expect("8 bytes"), key });
        Ok(self)
    }

    /// Pins the plugin named `name` (its manifest name) to the file whose SHA-256 is
    /// `sha256` (64 hex digits), like a lock file does.
    ///
    /// # Errors
    /// `sha256` is not 64 hex digits.
    pub fn pin(mut self, name: impl Into<String>, sha256: &str) -> Result<Self, PolicyError> {
        let digest =
            parse_hex(sha256).ok_or_else(|| PolicyError::NotADigest { text: sha256.to_owned(), line: None })?;
        self.pins.insert(name.into(), digest);
        Ok(self)
    }

    /// Pins every plugin in a lock-file-like text: one `NAME SHA256` per line; blank
    /// lines and lines starting with `#` are skipped.
    ///
    /// # Errors
    /// A line that is not a name and a digest (its number is in the message).
    pub fn pins_from_lock(mut self, text: &str) -> Result<Self, PolicyError> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(name), Some(digest), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(PolicyError::LockLine { line: n + 1, found: line.to_owned() });
            };
            // `sha256sum`'s order, digest first: the line as it is, to be turned round.
            if parse_hex(name).is_some() && parse_hex(digest).is_none() {
                return Err(PolicyError::LockLine { line: n + 1, found: line.to_owned() });
            }
            self = self.pin(name, digest).map_err(|e| match e {
                PolicyError::NotADigest { text, line: None } => PolicyError::NotADigest { text, line: Some(n + 1) },
                other => other,
            })?;
        }
        Ok(self)
    }

    /// Refuses the plugin named `name` below `version` (semantic versioning), against
    /// downgrades to a release with a known flaw.
    ///
    /// # Errors
    /// `version` is not a semantic version.
    pub fn min_version(mut self, name: impl Into<String>, version: &str) -> Result<Self, PolicyError> {
        let v = semver::Version::parse(version)
            .map_err(|error| PolicyError::NotAVersion { text: version.to_owned(), error })?;
        self.min_versions.insert(name.into(), v);
        Ok(self)
    }

    /// Turns the permission checks off (on by default): only for files whose
    /// permissions the host cannot choose, and never for plugins others can write.
    pub fn strict_modes(mut self, on: bool) -> Self {
        self.strict_modes = on;
        self
    }

    /// What of the policy a remote plugin can be held to: the host never has its file,
    /// so the minimum versions are checked against the manifest the server sent, and
    /// a policy that asks for signatures or pins refuses the load
    /// (the server applies its own: `tomada serve --trust-key`), rather than being
    /// skipped.
    #[cfg(all(target_os = "linux", feature = "remote"))]
    pub(crate) fn verify_remote(&self, path: &std::path::Path, name: &str, version: &str) -> Result<(), LoadError> {
        if !self.keys.is_empty() || !self.pins.is_empty() {
            return Err(LoadError::Unavailable {
                plugin: path.to_path_buf(),
                detail: "the host's trust policy asks for signatures or pinned digests, which it cannot check \
                         for a remote plugin: the host never has its file (the server checks it: `tomada serve \
                         --trust-key`); load it with a policy of minimum versions only, or none"
                    .to_owned(),
            });
        }
        self.check_version(path, name, version)
    }

    /// Refuses a plugin `name` of `version` older than the policy's minimum for it.
    fn check_version(&self, path: &std::path::Path, name: &str, version: &str) -> Result<(), LoadError> {
        match self.min_versions.get(name) {
            Some(minimum) if semver::Version::parse(version).map_or(true, |v| v < *minimum) => {
                Err(LoadError::VersionTooOld {
                    path: path.to_path_buf(),
                    name: name.to_owned(),
                    found: version.to_owned(),
                    minimum: minimum.to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Verifies `file` (manifest name and version already read) against the policy.
    pub(crate) fn verify(&self, file: &PluginFile, name: &str, version: &str) -> Result<Provenance, LoadError> {
        let path = || file.path.clone();
        if self.strict_modes {
            check_permissions(file)?;
        }
        self.check_version(&file.path, name, version)?;
        let signature = if self.keys.is_empty() { None } else { read_signature(file)? };
        let signer = match &signature {
            Some(sig) => match self.keys.iter().find(|k| k.raw_id == sig.raw_id) {
                Some(key) if !sig.prehashed => {
                    return Err(LoadError::BadSignature {
                        path: path(),
                        key: format!(
                            "is a legacy signature of the whole file, not prehashed (key {}), which tomada \
                             does not take",
                            key.id
                        ),
                    });
                }
                Some(key) => Some((key, sig)),
                None if !self.pins.contains_key(name) => {
                    return Err(LoadError::UnknownKey { path: path(), key: sig.id.clone() });
                }
                None => None,
            },
            None => None,
        };
        // One pass over the file: BLAKE2b-512 (if signed: a minisign prehashed
        // signature signs that digest) and the SHA-256, if pins or the audit trail
        // need it.
        let want_sha = !self.pins.is_empty()
            || self.keys.is_empty()
            || tracing::enabled!(target: "tomada::audit", tracing::Level::INFO);
        let mut sha = want_sha.then(Sha256::new);
        let mut blake = signer.map(|_| blake2b_simd::Params::new().hash_length(64).to_state());
        // Nothing to hash (keys but no pins, a file not signed by a trusted key, no
        // audit trail): refused below without reading the file.
        if sha.is_some() || blake.is_some() {
            file.read_all(|chunk| {
                if let Some(sha) = sha.as_mut() {
                    sha.update(chunk);
                }
                if let Some(blake) = blake.as_mut() {
                    blake.update(chunk);
                }
            })
            .map_err(|e| LoadError::Io { path: path(), source: e })?;
        }
        let sha256: Option<[u8; 32]> = sha.map(|s| s.finalize().into());
        let mut provenance = Provenance { sha256, key: None };
        if let Some(pinned) = self.pins.get(name)
            && let Some(sha256) = sha256
            && *pinned != sha256
        {
            return Err(LoadError::DigestMismatch {
                path: path(),
                name: name.to_owned(),
                expected: hex(pinned),
                found: hex(&sha256),
            });
        }
        if let (Some(blake), Some((key, sig))) = (blake, signer) {
            match verify_signature(&key.key, sig, blake.finalize().as_bytes()) {
                Verified::Yes => {}
                Verified::NotTheFile => return Err(LoadError::BadSignature { path: path(), key: key.id.clone() }),
                Verified::NotTheComment => {
                    return Err(LoadError::BadSignature {
                        path: path(),
                        key: format!(
                            "has a trusted comment that is not the one signed (key {}): it was edited after signing",
                            key.id
                        ),
                    });
                }
            }
            provenance.key = Some(key.id.clone());
        }
        if self.pins.contains_key(name) || provenance.key.is_some() {
            return Ok(provenance);
        }
        if self.keys.is_empty() {
            let sha256 = sha256.map(|d| hex(&d)).unwrap_or_default();
            return Err(LoadError::NotPinned { path: path(), name: name.to_owned(), sha256 });
        }
        Err(LoadError::Unsigned { path: path() })
    }
}

/// The SHA-256 of a file, read through its open descriptor (for the audit trail).
pub(crate) fn sha256(file: &PluginFile) -> Option<[u8; 32]> {
    let mut sha = Sha256::new();
    file.read_all(|chunk| sha.update(chunk)).ok()?;
    Some(sha.finalize().into())
}

/// Whether `sig` is `key`'s minisign signature of a file whose BLAKE2b-512 is
/// `prehash`: the signature of the digest, and the global signature of the signature
/// and its trusted comment (which `minisign -V` prints), as minisign checks them.
/// Strict Ed25519 verification (canonical encodings, no small-order keys), as
/// libsodium's, which minisign uses.
/// What a minisign signature's two Ed25519 signatures say.
#[derive(Debug, PartialEq)]
enum Verified {
    /// Both hold.
    Yes,
    /// The file's is not the file's: the file is not what was signed.
    NotTheFile,
    /// The file's holds, the global one (over it and the trusted comment) not: the
    /// comment was changed.
    NotTheComment,
}

fn verify_signature(key: &ed25519_dalek::VerifyingKey, sig: &Minisig, prehash: &[u8]) -> Verified {
    if key.verify_strict(prehash, &sig.signature).is_err() {
        return Verified::NotTheFile;
    }
    let mut global = sig.signature.to_bytes().to_vec();
    global.extend_from_slice(sig.trusted_comment.as_bytes());
    if key.verify_strict(&global, &sig.global).is_err() {
        return Verified::NotTheComment;
    }
    Verified::Yes
}

/// `PLUGIN.minisig`, if there is one.
fn read_signature(file: &PluginFile) -> Result<Option<Minisig>, LoadError> {
    let mut name = file.absolute.clone().into_os_string();
    name.push(".minisig");
    let sig_path = PathBuf::from(name);
    let bad = |key: String| LoadError::BadSignature { path: file.path.clone(), key };
    let text = match std::fs::File::open(&sig_path) {
        Ok(f) => {
            use std::io::Read;
            let mut text = String::new();
            if f.take(MAX_SIGNATURE).read_to_string(&mut text).is_err() {
                return Err(bad("cannot be read as text".into()));
            }
            text
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io { path: sig_path, source: e }),
    };
    // minisign-verify checks the format (lengths, algorithm, the trusted comment);
    // the parts are taken from the same lines.
    let malformed = || bad("is not a minisign signature (malformed)".into());
    let checked = minisign_verify::Signature::decode(&text).map_err(|_| malformed())?;
    let mut lines = text.lines();
    let (Some(_), Some(line), Some(_), Some(global)) = (lines.next(), lines.next(), lines.next(), lines.next()) else {
        return Err(malformed());
    };
    let bytes = Base64::decode_to_vec(line, None).map_err(|_| malformed())?;
    let global = Base64::decode_to_vec(global, None).map_err(|_| malformed())?;
    let (Some(raw_id), Some(signature), Ok(global)) =
        (bytes.get(2..10), bytes.get(10..74), <[u8; 64]>::try_from(global))
    else {
        return Err(malformed());
    };
    Ok(Some(Minisig {
        prehashed: bytes[..2] == *b"ED",
        raw_id: raw_id.try_into().expect("8 bytes"),
        id: key_id(line).unwrap_or_else(|| "unknown".into()),
        signature: ed25519_dalek::Signature::from_bytes(signature.try_into().expect("64 bytes")),
        global: ed25519_dalek::Signature::from_bytes(&global),
        trusted_comment: checked.trusted_comment().to_owned(),
    }))
}

/// minisign's key id (as `minisign` prints it: 16 hex digits) from a public key's or
/// signature's base64 line, whose bytes 2..10 are the id, little-endian.
fn key_id(base64: &str) -> Option<String> {
    let bytes = Base64::decode_to_vec(base64.trim(), None).ok()?;
    let id: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
    Some(format!("{:016X}", u64::from_le_bytes(id)))
}

fn parse_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Lowercase hex, as `sha256sum` prints it.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// sshd's StrictModes for a plugin: the file writable only by its owner, the owner
/// root or this process's user; then, as sshd's `secure_filename` does, every
/// directory from the file's real location (links resolved) up to `/`: owned by root
/// or this process's user, and writable by no one else unless sticky (as `/tmp`:
/// there others cannot replace an entry they do not own, and each entry on the path
/// is checked in turn). The resolved path must still name the checked file.
fn check_permissions(file: &PluginFile) -> Result<(), LoadError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;

        use crate::error::Exposure;
        let refuse = |reason: Exposure| Err(LoadError::Permissions { path: file.path.clone(), reason });
        let mode = file.meta.mode();
        if mode & 0o022 != 0 {
            return refuse(Exposure::FileWritable { mode: mode & 0o7777 });
        }
        // SAFETY: `geteuid` has no preconditions.
        let me = unsafe { libc::geteuid() };
        if file.meta.uid() != 0 && file.meta.uid() != me {
            return refuse(Exposure::ForeignOwner { uid: file.meta.uid(), host_uid: me });
        }
        let real = match std::fs::canonicalize(&file.absolute) {
            Ok(real) => real,
            Err(e) => return refuse(Exposure::Unresolvable { reason: e.to_string() }),
        };
        match std::fs::metadata(&real) {
            Ok(m) if m.dev() == file.meta.dev() && m.ino() == file.meta.ino() => {}
            _ => return refuse(Exposure::Replaced { resolved: real }),
        }
        for dir in real.ancestors().skip(1) {
            let meta = match std::fs::metadata(dir) {
                Ok(meta) => meta,
                Err(e) => {
                    return refuse(Exposure::DirectoryUnreadable {
                        directory: dir.to_path_buf(),
                        reason: e.to_string(),
                    });
                }
            };
            let (mode, uid) = (meta.mode(), meta.uid());
            if uid != 0 && uid != me {
                return refuse(Exposure::DirectoryForeignOwner { directory: dir.to_path_buf(), uid, host_uid: me });
            }
            if mode & 0o022 != 0 && mode & 0o1000 == 0 {
                return refuse(Exposure::DirectoryWritable {
                    directory: dir.to_path_buf(),
                    by_others: mode & 0o002 != 0,
                    mode: mode & 0o7777,
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}
