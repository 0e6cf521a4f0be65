//! TLS client pieces shared by the broker (its calls to PCoIP agents) and the client-side tools
//! (`interstate probe`, `interstate bench`, the tests' client): how a peer's certificate is
//! checked, and one builder of rustls client configurations for every verification mode.
//!
//! # Layout
//! - [`verify`]: [`PinnedOrAny`], a certificate check for self-signed peers (pins, or none);
//!   CA files; fingerprints.
//! - this file: [`Verification`] and [`client_config`], the one place client configurations are
//!   built.
//!
//! The broker's own server identity (certificate files or a generated one) stays in the broker.

pub mod verify;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

pub use verify::{PemError, PinnedOrAny, parse_fingerprint, roots_from_pem};

/// The protocol versions clients offer unless told otherwise: TLS 1.3, then TLS 1.2 (PCoIP agents
/// and older brokers still speak only 1.2).
pub const DEFAULT_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// How a client checks its peer's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// Accept any certificate (PCoIP client security mode 0; agents' self-signed certificates).
    /// The handshake signature is still checked. The name carries the warning.
    DangerAcceptAny,
    /// Accept only certificates whose SHA-256 is one of these, whatever their name or issuer.
    Pinned(Vec<[u8; 32]>),
    /// Accept certificates signed by a CA in this PEM file, for the server's name.
    CaFile(PathBuf),
    /// No trust anchors at all (the system's roots are not bundled): every certificate is
    /// refused. Useful to show what a client that trusts nothing sees.
    NoRoots,
}

/// Why a client configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientConfigError {
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {}: {source}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: PemError,
    },
    /// rustls refused the configuration (no protocol version the provider supports, ...).
    #[error("TLS client configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A client configuration for `verification` on the ring provider, offering TLS 1.3 and 1.2.
pub fn client_config(verification: &Verification) -> Result<ClientConfig, ClientConfigError> {
    client_config_with(
        Arc::new(rustls::crypto::ring::default_provider()),
        DEFAULT_VERSIONS,
        verification,
    )
}

/// A client configuration for `verification` on a given provider (for instance one narrowed to
/// the suites a particular PCoIP client offers) and protocol versions. The configuration is
/// returned unshared so that callers can still adjust it (resumption, ALPN) before wrapping it
/// in an `Arc`.
pub fn client_config_with(
    provider: Arc<CryptoProvider>,
    versions: &[&'static SupportedProtocolVersion],
    verification: &Verification,
) -> Result<ClientConfig, ClientConfigError> {
    let builder =
        ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions)?;
    let config = match verification {
        Verification::DangerAcceptAny => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedOrAny::danger_accept_any(provider)))
            .with_no_client_auth(),
        Verification::Pinned(pins) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedOrAny::pinned(pins.clone(), provider)))
            .with_no_client_auth(),
        Verification::CaFile(path) => {
            let roots = roots_from_pem(path).map_err(|source| ClientConfigError::CaFile {
                path: path.clone(),
                source,
            })?;
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Verification::NoRoots => builder
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_builds_and_a_missing_ca_file_is_named() {
        for verification in [
            Verification::DangerAcceptAny,
            Verification::Pinned(vec![[1; 32]]),
            Verification::NoRoots,
        ] {
            client_config(&verification).unwrap();
        }
        let only_13 = client_config_with(
            Arc::new(rustls::crypto::ring::default_provider()),
            &[&rustls::version::TLS13],
            &Verification::DangerAcceptAny,
        );
        assert!(only_13.is_ok());
        let missing = Verification::CaFile(PathBuf::from("/nonexistent/ca.pem"));
        let err = client_config(&missing).unwrap_err();
        assert!(
            err.to_string().starts_with("CA file /nonexistent/ca.pem: "),
            "{err}"
        );
    }
}
