//! What a request's headers say: the session cookie, the client's address behind trusted
//! proxies, and single header values.

use std::net::IpAddr;

use http::header::{self, HeaderMap};

use crate::settings::Settings;

/// A header's value, trimmed, when it is present and text.
pub(super) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The `JSESSIONID` cookie, if the request carries a well-formed one.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("JSESSIONID"))
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|value| value.len() <= 128)
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
///
/// Addresses are compared in canonical form: on a dual-stack listener an IPv4 peer arrives as
/// `::ffff:a.b.c.d`, which must match a proxy written `a.b.c.d` (and the reverse), and must
/// count against the same per-address limits as the plain IPv4 address.
pub(super) fn client_address(settings: &Settings, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    let trusted = |ip: &IpAddr| {
        settings
            .server
            .trusted_proxies
            .iter()
            .any(|proxy| proxy.to_canonical() == *ip)
    };
    if !trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted(ip))
        .unwrap_or(peer)
}

/// How a `Client-Log-Id` is logged when it can find a session: `sha256:` and the first 16 hex
/// digits of its SHA-256 (an operator holding a client's log compares hashes).
pub(super) fn log_id_hash(log_id: &str) -> String {
    use sha2::{Digest, Sha256};
    if log_id.is_empty() {
        return String::new();
    }
    let digest = Sha256::digest(log_id.as_bytes());
    format!("sha256:{}", hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use http::header::HeaderValue;

    use super::*;

    #[test]
    fn cookie_is_found_among_others_and_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("lb=1; jsessionid=abc ; x=y"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("lb=1"));
        assert_eq!(session_cookie(&headers), None);
    }

    #[test]
    fn forwarded_for_is_honoured_only_from_trusted_proxies() {
        let mut settings = Settings::defaults();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 10.0.0.1"),
        );
        assert_eq!(client_address(&settings, proxy, &headers), proxy);
        settings.server.trusted_proxies = vec![proxy];
        assert_eq!(
            client_address(&settings, proxy, &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_log_id_is_logged_as_a_short_hash() {
        let hashed = log_id_hash("ddff1100-72e7-1039-8825-0123456789ab");
        assert!(
            hashed.starts_with("sha256:") && hashed.len() == 7 + 16,
            "{hashed}"
        );
        assert!(!hashed.contains("ddff1100"));
        assert_eq!(hashed, log_id_hash("ddff1100-72e7-1039-8825-0123456789ab"));
        assert_eq!(log_id_hash(""), "");
    }

    /// Issue #13 item 11: a dual-stack listener sees `127.0.0.1` as `::ffff:127.0.0.1`.
    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxies_and_the_reverse() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, ::ffff:127.0.0.1"),
        );
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let plain: IpAddr = "127.0.0.1".parse().unwrap();

        let mut settings = Settings::defaults();
        settings.server.trusted_proxies = vec![plain];
        assert_eq!(client_address(&settings, mapped, &headers), client);

        settings.server.trusted_proxies = vec![mapped];
        assert_eq!(client_address(&settings, plain, &headers), client);

        settings.server.trusted_proxies = Vec::new();
        assert_eq!(
            client_address(&settings, mapped, &headers),
            plain,
            "an untrusted mapped peer is reported as its IPv4 address"
        );
    }
}
