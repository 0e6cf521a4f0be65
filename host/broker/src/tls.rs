//! The broker's TLS identity: a certificate from files, or a generated self-signed one.
//!
//! A generated certificate is valid for at most [`GENERATED_CERT_DAYS`] and persists in
//! `server.generated_cert_dir` (key mode 0600, folder 0700), so that users who accepted it once
//! are not asked to accept a new, unverifiable one after every restart. A configured key file
//! that group or others can read is used, with a warning.
//!
//! PCoIP clients of the 24.x line offer only AES-256-GCM-SHA384 suites (reference §1.2); the
//! ring provider's defaults include them for TLS 1.2 and 1.3, and a test pins that. No ALPN is
//! offered: the client needs HTTP/1.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::time::{Duration, SystemTime};

use interstate_config::defaults::GENERATED_CERT_DAYS;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

/// The generated certificate and its key, in one PEM file in `server.generated_cert_dir`, mode
/// 0600. One file, renamed into place at once, so that brokers starting together never pair
/// one's certificate with another's key.
const GENERATED_KEY_FILE: &str = "broker.pem";
/// A day.
const DAY: Duration = Duration::from_secs(86_400);

/// Why the TLS identity could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{0}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate(PathBuf),
    /// The key file holds no usable PEM key.
    #[error("{0}: no PEM private key found (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(PathBuf),
    /// rustls refused the pair.
    #[error("certificate and key do not form a usable pair: {0}")]
    Rustls(#[from] rustls::Error),
    /// Self-signed generation failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    /// The generated certificate could not be saved.
    #[error("{path}: cannot save the generated certificate: {source}")]
    Save {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A certificate chain with its key and the leaf's fingerprint.
#[derive(Debug)]
pub struct Identity {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 of the leaf certificate, `AB:CD:...`.
    pub fingerprint: String,
    /// True when generated at startup.
    pub self_signed: bool,
}

impl Identity {
    /// Loads a PEM chain and key.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        if let Some(mode) = key_file_exposure(key) {
            warn!(
                file = %key.display(),
                mode = format_args!("{mode:o}"),
                "the TLS private key file is readable by group or others; chmod 600 it"
            );
        }
        let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
            .filter_map(Result::ok)
            .collect();
        let Some(leaf) = chain.first() else {
            return Err(TlsError::NoCertificate(cert.to_owned()));
        };
        let fingerprint = fingerprint(leaf);
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .ok()
            .flatten()
            .ok_or_else(|| TlsError::NoKey(key.to_owned()))?;
        Ok(Self {
            chain,
            key,
            fingerprint,
            self_signed: false,
        })
    }

    /// Generates a self-signed certificate for `names` (host names and/or addresses), valid
    /// from a day ago (clock skew) for [`GENERATED_CERT_DAYS`].
    pub fn self_signed(names: &[String]) -> Result<Self, TlsError> {
        Ok(Self::generate(names)?.0)
    }

    /// The generated certificate kept in `dir`, or a new one saved there when there is none, it
    /// cannot be used, or it expires within a day. The file (certificate and key) is written
    /// with mode 0600 (the folder 0700) and replaced atomically.
    pub fn persisted(dir: &Path, names: &[String]) -> Result<Self, TlsError> {
        let key_path = dir.join(GENERATED_KEY_FILE);
        if let Some(identity) = Self::saved(&key_path) {
            info!(dir = %dir.display(), "using the certificate generated earlier");
            return Ok(identity);
        }
        let (identity, cert_pem, key_pem) = Self::generate(names)?;
        let save_err = |path: &Path| {
            let path = path.to_owned();
            move |source| TlsError::Save { path, source }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(save_err(dir))?;
        let pem = zeroize::Zeroizing::new(format!("{cert_pem}{}", key_pem.as_str()));
        write_atomically(&key_path, pem.as_bytes(), 0o600).map_err(save_err(&key_path))?;
        info!(dir = %dir.display(), "generated a certificate and saved it for later starts");
        Ok(identity)
    }

    /// The identity saved earlier, if the file reads, its certificate and key form a pair, and
    /// the certificate is still valid for a day (the file's age stands for the certificate's:
    /// this module wrote it).
    fn saved(path: &Path) -> Option<Self> {
        let age = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .unwrap_or_default();
        if age + DAY >= DAY * u32::try_from(GENERATED_CERT_DAYS).unwrap_or(u32::MAX) {
            return None;
        }
        let mut identity = Self::from_files(path, path).ok()?;
        identity.server_config().ok()?;
        identity.self_signed = true;
        Some(identity)
    }

    /// A new self-signed identity, with its certificate and key in PEM.
    fn generate(names: &[String]) -> Result<(Self, String, zeroize::Zeroizing<String>), TlsError> {
        let generate_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
        let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(generate_err)?;
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
        params.not_before = now - DAY;
        params.not_after = now + DAY * u32::try_from(GENERATED_CERT_DAYS).unwrap_or(365);
        let signing_key = rcgen::KeyPair::generate().map_err(generate_err)?;
        let cert = params.self_signed(&signing_key).map_err(generate_err)?;
        let leaf = cert.der().clone();
        let identity = Self {
            fingerprint: fingerprint(&leaf),
            chain: vec![leaf],
            key: PrivateKeyDer::Pkcs8(signing_key.serialize_der().into()),
            self_signed: true,
        };
        Ok((
            identity,
            cert.pem(),
            zeroize::Zeroizing::new(signing_key.serialize_pem()),
        ))
    }

    /// A copy (the key is cloned).
    pub fn clone_identity(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            fingerprint: self.fingerprint.clone(),
            self_signed: self.self_signed,
        }
    }

    /// The rustls server configuration: TLS 1.2 and 1.3, ring's suites, no client auth, no ALPN,
    /// and no session resumption of any kind.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        // The HP Anyware PCoIP Client 24.07.3 broker library (its wolfSSL/asio stream) cannot
        // read a reply that follows a TLS 1.3 NewSessionTicket: it fails with "asio.ssl.stream
        // unexpected result" before the first hello-resp (reference §11). It also opens a new
        // connection for every request and never resumes one, so resumption gains nothing:
        // send no TLS 1.3 tickets, and keep no TLS 1.2 session ids (no ticketer is set either).
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(config))
    }
}

/// The permission bits of a key file that group or others may read, if so.
pub fn key_file_exposure(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o044 != 0).then_some(mode)
}

/// Writes `bytes` to a new file beside `path` with `mode`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".{:016x}.tmp", rand::random::<u64>()));
    let temp = PathBuf::from(temp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}

/// `AB:CD:...` SHA-256 of a DER certificate, the form PCoIP clients and browsers show.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_256_gcm_sha384_suites_are_offered() {
        let suites: Vec<String> = rustls::crypto::ring::default_provider()
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        for wanted in [
            "TLS13_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ] {
            assert!(
                suites.iter().any(|s| s == wanted),
                "{wanted} missing from {suites:?}"
            );
        }
    }

    /// The validity of a DER certificate: its first two UTCTime / GeneralizedTime values, as
    /// (year, month, day) each.
    fn validity(der: &[u8]) -> Vec<(u32, u32, u32)> {
        let digits = |b: &[u8]| -> u32 { std::str::from_utf8(b).unwrap().parse().unwrap() };
        let mut found = Vec::new();
        let mut i = 0;
        while i + 2 < der.len() && found.len() < 2 {
            match (der[i], der[i + 1]) {
                (0x17, 13) => {
                    let t = &der[i + 2..i + 15];
                    found.push((2000 + digits(&t[0..2]), digits(&t[2..4]), digits(&t[4..6])));
                    i += 15;
                }
                (0x18, 15) => {
                    let t = &der[i + 2..i + 17];
                    found.push((digits(&t[0..4]), digits(&t[4..6]), digits(&t[6..8])));
                    i += 17;
                }
                _ => i += 1,
            }
        }
        found
    }

    /// Issue #13 item 8: at most a year (it was until 4096), the same certificate after a
    /// restart, and a key only its owner can read.
    #[test]
    fn generated_certificate_lasts_a_year_and_persists_with_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("state/tls");
        let names = ["localhost".to_owned()];
        let first = Identity::persisted(&tls, &names).unwrap();
        let dates = validity(first.chain[0].as_ref());
        assert_eq!(dates.len(), 2, "{dates:?}");
        let days = |(y, m, d): (u32, u32, u32)| y * 372 + m * 31 + d;
        let span = days(dates[1]) - days(dates[0]);
        assert!(span <= 372 + 2, "valid for more than a year: {dates:?}");

        let again = Identity::persisted(&tls, &names).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint, "a restart keeps it");
        assert!(again.self_signed);
        again.server_config().unwrap();

        // Brokers starting together on an empty folder all end up with a usable pair.
        let racing = dir.path().join("race");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let racing = racing.clone();
                std::thread::spawn(move || {
                    Identity::persisted(&racing, &["localhost".to_owned()]).unwrap()
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap().server_config().unwrap();
        }
        Identity::persisted(&racing, &names)
            .unwrap()
            .server_config()
            .unwrap();

        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tls.join(GENERATED_KEY_FILE)), 0o600);
        assert_eq!(mode(&tls), 0o700);
        assert_eq!(key_file_exposure(&tls.join(GENERATED_KEY_FILE)), None);
        std::fs::set_permissions(
            tls.join(GENERATED_KEY_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_eq!(
            key_file_exposure(&tls.join(GENERATED_KEY_FILE)),
            Some(0o644)
        );
    }

    #[test]
    fn self_signed_identity_builds_a_server_config() {
        let id = Identity::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        assert_eq!(id.fingerprint.len(), 32 * 3 - 1);
        let config = id.server_config().unwrap();
        assert!(config.alpn_protocols.is_empty());
    }
}
