//! A certificate check for peers whose certificates no public CA signs: PCoIP agents (which ship
//! self-signed certificates) and brokers probed with `--insecure` or `--pin`.
//!
//! The handshake signature is always verified, so the peer must hold the certificate's key; only
//! the question "whose certificate is this?" is answered by a pin list, or not at all.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Accepts a certificate whose SHA-256 is pinned, or any certificate when there are no pins.
#[derive(Debug)]
pub struct PinnedOrAny {
    pins: Option<Vec<[u8; 32]>>,
    provider: Arc<CryptoProvider>,
}

impl PinnedOrAny {
    /// Accepts any certificate. The name carries the warning.
    pub fn danger_accept_any(provider: Arc<CryptoProvider>) -> Self {
        Self {
            pins: None,
            provider,
        }
    }

    /// Accepts only certificates whose SHA-256 is in `pins`, whatever their name or issuer.
    pub fn pinned(pins: Vec<[u8; 32]>, provider: Arc<CryptoProvider>) -> Self {
        Self {
            pins: Some(pins),
            provider,
        }
    }
}

impl ServerCertVerifier for PinnedOrAny {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pins) = &self.pins else {
            return Ok(ServerCertVerified::assertion());
        };
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        let pinned = pins
            .iter()
            .fold(subtle::Choice::from(0), |acc, pin| acc | pin.ct_eq(&digest));
        if bool::from(pinned) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate with SHA-256 {} is not pinned",
                hex::encode(digest)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a PEM file of CA certificates could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// The file could not be read, or a PEM section in it could not be decoded.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// A certificate could not be added as a trust anchor.
    #[error("{0}")]
    Certificate(#[from] rustls::Error),
    /// The file holds no certificate.
    #[error("no PEM certificate found")]
    Empty,
}

/// Reads every certificate of a PEM file into a root store.
pub fn roots_from_pem(path: &Path) -> Result<rustls::RootCertStore, PemError> {
    let pem = std::fs::read(path)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert?)?;
    }
    if roots.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(roots)
}

/// Parses a SHA-256 certificate fingerprint: 64 hex digits, colons allowed (as fingerprints are
/// usually shown, and as `interstate serve` prints them).
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex_only: String = text.trim().chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(hex_only).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_fingerprint(&hex), Some([0xab; 32]));
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons), Some([0xab; 32]));
        assert_eq!(parse_fingerprint("abcd"), None);
        assert_eq!(parse_fingerprint("zz"), None);
    }

    #[test]
    fn pem_files_without_certificates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        assert!(matches!(roots_from_pem(&empty), Err(PemError::Empty)));
        assert!(matches!(
            roots_from_pem(&dir.path().join("missing.pem")),
            Err(PemError::Read(_))
        ));
        let certified = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, certified.cert.pem()).unwrap();
        assert_eq!(roots_from_pem(&good).unwrap().len(), 1);
    }
}
