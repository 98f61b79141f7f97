//! TLS 1.3 with mutual authentication by pinned keys (`rustls`, `ring`).
//!
//! Each side has an Ed25519 key ([`Identity`]) and presents a certificate made from it
//! on the spot (self-signed, `rcgen`): no certificate authority, no names. A side
//! accepts the other only if the SHA-256 of the public key in its certificate (its
//! SPKI) is one it pins ([`KeyId`]), and only if the other proves, by the handshake's
//! signature, that it holds that key. A peer with another key fails the handshake:
//! nothing it sends is read.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::Digest;

use super::KeyError;

/// The name each side's certificate carries and the client asks for (pinning, not
/// names, decides whom a side accepts).
pub(crate) const NAME: &str = "tomada";

/// The SHA-256 of a public key (of its DER `SubjectPublicKeyInfo`): what a side pins.
/// Written as 64 hexadecimal digits (what `tomada tls-key` prints and writes to `.pub`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 32]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::trust::hex(&self.0))
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// What a minisign key file given for a TLS key is told.
const MINISIGN_KEY: &str = "this is a minisign key (`tomada keygen`, `minisign -G`: for signing plugin files), \
     not a remote plugin's TLS key: make those with `tomada tls-key FILE` (FILE and FILE.pub)";

impl std::str::FromStr for KeyId {
    type Err = KeyError;

    /// 64 hexadecimal digits (surrounding white space ignored).
    fn from_str(s: &str) -> Result<KeyId, KeyError> {
        let s = s.trim();
        let bad = || KeyError::BadId { text: s.chars().take(80).collect() };
        if s.len() != 64 || !s.is_ascii() {
            return Err(bad());
        }
        let mut id = [0u8; 32];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(KeyId(id))
    }
}

/// A side's private key, with the certificate it presents.
#[derive(Clone)]
pub struct Identity {
    pkcs8: Vec<u8>,
    cert: CertificateDer<'static>,
    id: KeyId,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Identity {
    /// A new Ed25519 key.
    ///
    /// # Errors
    /// [`KeyError::Generate`] if the system's random source fails.
    pub fn generate() -> Result<Identity, KeyError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|e| KeyError::Generate { reason: e.to_string() })?;
        Identity::from_key(key)
    }

    /// The key in `pem` (PKCS#8 PEM, as [`Identity::to_pem`] writes it).
    ///
    /// # Errors
    /// [`KeyError::BadKey`] for anything else.
    pub fn from_pem(pem: &str) -> Result<Identity, KeyError> {
        if pem.trim_start().starts_with("untrusted comment:") {
            return Err(KeyError::BadKey { reason: MINISIGN_KEY.to_owned() });
        }
        let key = rcgen::KeyPair::from_pem(pem).map_err(|e| KeyError::BadKey { reason: e.to_string() })?;
        Identity::from_key(key)
    }

    /// Reads a key file (see [`Identity::from_pem`]). A file that others than its
    /// owner can write is refused (anyone who can write it can replace this side's
    /// identity); one they can read is used, with a warning (`tracing`, target
    /// `tomada::remote`): anyone who can read it can pose as this side.
    ///
    /// # Errors
    /// [`KeyError::Read`] if it cannot be read or others can write it,
    /// [`KeyError::BadKey`] if it holds no key.
    pub fn read(path: impl AsRef<std::path::Path>) -> Result<Identity, KeyError> {
        use std::os::unix::fs::PermissionsExt;
        let path = path.as_ref();
        let read = |source| KeyError::Read { path: path.to_path_buf(), source };
        let mode = std::fs::metadata(path).map_err(read)?.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(read(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "others than its owner can write it (mode {mode:04o}), so anyone of them could replace this \
                     key; make it readable by its owner only: `chmod 600 {}`",
                    path.display()
                ),
            )));
        }
        if mode & 0o044 != 0 {
            tracing::warn!(
                target: "tomada::remote",
                key = %path.display(),
                "the secret key file is readable by others than its owner (mode {mode:04o}): anyone who can read it can pose as this side; `chmod 600` it"
            );
        }
        let pem = std::fs::read_to_string(path).map_err(read)?;
        Identity::from_pem(&pem)
    }

    fn from_key(key: rcgen::KeyPair) -> Result<Identity, KeyError> {
        let params = rcgen::CertificateParams::new(vec![NAME.to_owned()])
            .map_err(|e| KeyError::BadKey { reason: e.to_string() })?;
        let cert = params.self_signed(&key).map_err(|e| KeyError::BadKey { reason: e.to_string() })?;
        let cert = cert.der().clone();
        let id = key_id(&cert).map_err(|e| KeyError::BadKey { reason: e.to_string() })?;
        Ok(Identity { pkcs8: key.serialize_der(), cert, id })
    }

    /// The private key as PKCS#8 PEM (keep it secret: it is who this side is).
    pub fn to_pem(&self) -> String {
        let key = rcgen::KeyPair::try_from(self.pkcs8.as_slice()).expect("a key this identity was made from");
        key.serialize_pem()
    }

    /// The id of its public key: what the other side pins.
    pub fn id(&self) -> KeyId {
        self.id
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone()))
    }
}

/// The id of the key a certificate holds: the SHA-256 of its SPKI, as `webpki` reads it
/// (the very key the handshake's signature is then checked with).
pub(crate) fn key_id(cert: &CertificateDer<'_>) -> Result<KeyId, rustls::Error> {
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let spki = parsed.subject_public_key_info();
    Ok(KeyId(sha2::Sha256::digest(spki.as_ref()).into()))
}

/// `ring`'s provider: `aws-lc-rs` (rustls' default, with post-quantum key exchange)
/// needs cmake and a C toolchain to build; `ring` builds anywhere Rust does. rustls
/// 0.23.48 deprecates it for lacking post-quantum key exchange, which these pinned,
/// short-lived connections do without for now.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts a peer whose key is pinned, and nothing else.
#[derive(Debug)]
struct Pinned {
    keys: Vec<KeyId>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    fn new(keys: &[KeyId]) -> Arc<Pinned> {
        Arc::new(Pinned { keys: keys.to_vec(), algorithms: provider().signature_verification_algorithms })
    }

    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let id = key_id(cert)?;
        if self.keys.contains(&id) {
            Ok(())
        } else {
            // The key the peer claims (not yet proven: its signature comes later), for
            // whoever keeps this side's keys: what to add to `--allow` or
            // `Remote::trust_server` if the peer is welcome.
            // (Within the server's budget of refusals logged: see `server::log_refusal`.)
            super::server::log_refusal(|| {
                tracing::warn!(
                    target: "tomada::remote",
                    key = %id,
                    "a peer presented key {id}, which is not among the keys this side accepts (`tomada serve --allow`, `Remote::trust_server`)"
                )
            });
            // (The peer is told only that its certificate is refused.)
            Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        }
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

/// Only TLS 1.3 is offered (see the configs), so a TLS 1.2 signature never comes.
fn no_tls12() -> Result<HandshakeSignatureValid, rustls::Error> {
    Err(rustls::Error::General("TLS 1.2 is not used".to_owned()))
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity).map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity).map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client's TLS configuration: it presents `me` and accepts only servers in `servers`.
pub(crate) fn client_config(me: &Identity, servers: &[KeyId]) -> Result<Arc<rustls::ClientConfig>, KeyError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| KeyError::BadKey { reason: e.to_string() })?
        .dangerous()
        .with_custom_certificate_verifier(Pinned::new(servers))
        .with_client_auth_cert(vec![me.cert.clone()], me.key())
        .map_err(|e| KeyError::BadKey { reason: e.to_string() })?;
    Ok(Arc::new(config))
}

/// A server's TLS configuration: it presents `me` and accepts only clients in `clients`.
pub(crate) fn server_config(me: &Identity, clients: &[KeyId]) -> Result<Arc<rustls::ServerConfig>, KeyError> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| KeyError::BadKey { reason: e.to_string() })?
        .with_client_cert_verifier(Pinned::new(clients))
        .with_single_cert(vec![me.cert.clone()], me.key())
        .map_err(|e| KeyError::BadKey { reason: e.to_string() })?;
    Ok(Arc::new(config))
}

/// The name a client asks for.
pub(crate) fn server_name() -> ServerName<'static> {
    ServerName::try_from(NAME).expect("a valid DNS name")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minisign key given where a TLS key goes (`tomada keygen` makes those) is told
    /// apart, and every key error names the command that makes TLS keys (they named
    /// `tomada keygen`, whose keys are refused here); a key file others can write is
    /// refused, one they can only read is used (with a warning).
    #[test]
    fn key_files_and_ids_are_refused_with_the_fix() {
        let minisign = "untrusted comment: minisign encrypted secret key\nRWQAAEIyAAAAAAAAAAAAAAAAAAAAAA==\n";
        let err = Identity::from_pem(minisign).map(drop).expect_err("a minisign key is no TLS key").to_string();
        assert!(err.contains("this is a minisign key") && err.contains("tomada tls-key FILE"), "{err}");
        let err = Identity::from_pem("-----BEGIN PRIVATE KEY-----\ngarbage\n").map(drop).unwrap_err().to_string();
        assert!(err.contains("as `tomada tls-key` writes"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("host.key");
        std::fs::write(&file, Identity::generate().unwrap().to_pem()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for (mode, usable) in [(0o600, true), (0o644, true), (0o620, false), (0o666, false)] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let read = Identity::read(&file);
            assert_eq!(read.is_ok(), usable, "mode {mode:o}");
            if let Err(e) = read {
                assert!(e.to_string().contains("chmod 600"), "{e}");
            }
        }
        let err = "3f0c".parse::<KeyId>().unwrap_err().to_string();
        assert!(err.contains("as `tomada tls-key` prints"), "{err}");
        assert!(!err.contains("keygen"), "{err}");
    }
}
