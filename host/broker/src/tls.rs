//! The broker's TLS identity: a certificate from files, or a generated self-signed one.
//!
//! PCoIP clients of the 24.x line offer only AES-256-GCM-SHA384 suites (reference §1.2); the
//! ring provider's defaults include them for TLS 1.2 and 1.3, and a test pins that. No ALPN is
//! offered: the client needs HTTP/1.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

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

    /// Generates a self-signed certificate for `names` (host names and/or addresses).
    pub fn self_signed(names: &[String]) -> Result<Self, TlsError> {
        let certified = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let leaf = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        Ok(Self {
            fingerprint: fingerprint(&leaf),
            chain: vec![leaf],
            key,
            self_signed: true,
        })
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

    #[test]
    fn self_signed_identity_builds_a_server_config() {
        let id = Identity::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        assert_eq!(id.fingerprint.len(), 32 * 3 - 1);
        let config = id.server_config().unwrap();
        assert!(config.alpn_protocols.is_empty());
    }
}
