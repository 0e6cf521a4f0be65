//! A certificate check for peers whose certificates no public CA signs: PCoIP agents (which ship
//! self-signed certificates) and brokers probed with `--insecure` or `--pin`.
//!
//! The handshake signature is always verified, so the peer must hold the certificate's key; only
//! the question "whose certificate is this?" is answered by a pin list, or not at all.

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

/// Reads every certificate of a PEM file into a root store.
pub fn roots_from_pem(path: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    if roots.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(roots)
}
