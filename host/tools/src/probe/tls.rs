//! TLS configurations for the probe: how the broker's certificate is checked, and the cipher list
//! of the 24.07 client, which offers only AES-256-GCM-SHA384 suites.

use std::sync::Arc;

use rustls::{CipherSuite, ClientConfig};

use crate::wire::{ClientError, Verify, tls_config_with};

/// The only suites the 24.07 PCoIP client offers.
const CLIENT_2407_SUITES: [CipherSuite; 3] = [
    CipherSuite::TLS13_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
];

/// Parses a certificate pin: 64 hex digits, colons allowed (as fingerprints are usually shown).
pub fn parse_pin(text: &str) -> Option<[u8; 32]> {
    interstate_tls::parse_fingerprint(text)
}

/// A client configuration offering only the 24.07 client's cipher suites.
pub fn client_2407_config(verify: &Verify) -> Result<Arc<ClientConfig>, ClientError> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|s| CLIENT_2407_SUITES.contains(&s.suite()));
    tls_config_with(Arc::new(provider), verify)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_with_or_without_colons() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_pin(&hex), Some([0xab; 32]));
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_pin(&colons), Some([0xab; 32]));
        assert_eq!(parse_pin("abcd"), None);
        assert_eq!(parse_pin("zz"), None);
    }
}
