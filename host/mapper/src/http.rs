//! The wasi:http allow-list: a mapper reaches only the hosts its settings list, and never
//! past its call's deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::outgoing::{self, SendResult};

/// The smallest timeout handed to the connector, so that an almost-spent deadline still
/// fails as a timeout rather than as a zero-duration oddity.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The per-call wasi:http hooks.
#[derive(Debug)]
pub(crate) struct HttpPolicy {
    mapper: Arc<str>,
    allowed_hosts: Arc<[String]>,
    /// `mapper.deny_private_addresses`: refuse hosts that resolve to private addresses.
    deny_private_addresses: bool,
    deadline: Instant,
}

impl HttpPolicy {
    pub(crate) fn new(
        mapper: Arc<str>,
        allowed_hosts: Arc<[String]>,
        deny_private_addresses: bool,
        deadline: Instant,
    ) -> Self {
        Self {
            mapper,
            allowed_hosts,
            deny_private_addresses,
            deadline,
        }
    }
}

/// Whether `uri` targets one of `allowed`. Every entry names exactly one origin: `host` is
/// `https://host:443`, `host:port` is `https://host:port`, and `http://host[:port]` or
/// `https://host[:port]` that scheme, the port defaulting to the scheme's. Plain HTTP is only
/// ever allowed by an entry that says `http://`. An entry with any other scheme allows nothing.
pub(crate) fn host_allowed(allowed: &[String], uri: &http::Uri) -> bool {
    let Some(host) = uri.host() else {
        return false;
    };
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("http") => 80,
        _ => 443,
    });
    allowed.iter().any(|entry| {
        let entry = entry.trim();
        let (entry, default_port) = match entry.split_once("://") {
            Some((scheme, rest)) => {
                let Some(default_port) = scheme_port(scheme) else {
                    return false;
                };
                if !uri
                    .scheme_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
                {
                    return false;
                }
                (rest, default_port)
            }
            None => {
                if !uri
                    .scheme_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case("https"))
                {
                    return false;
                }
                (entry, 443)
            }
        };
        let (entry_host, entry_port) = split_host_port(entry);
        entry_port.unwrap_or(default_port) == port && entry_host.eq_ignore_ascii_case(host)
    })
}

/// The default port of a scheme an allow-list entry may name.
fn scheme_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else {
        None
    }
}

/// Splits `host:port`, `[v6]:port`, `[v6]` or `host` (a bare IPv6 address has no port).
fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if entry.starts_with('[') {
        if let Some((host, port)) = entry.rsplit_once("]:") {
            return (&entry[..host.len() + 1], port.parse().ok());
        }
        return (entry, None);
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn clamp(timeout: Option<Duration>, remaining: Duration) -> Option<Duration> {
    let bounded = timeout.map_or(remaining, |t| t.min(remaining));
    Some(bounded.max(MIN_TIMEOUT))
}

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        let uri = request.uri().clone();
        if !host_allowed(&self.allowed_hosts, &uri) {
            tracing::warn!(
                target: "interstate::mapper",
                mapper = %self.mapper,
                host = uri.authority().map(|a| a.as_str()).unwrap_or(""),
                "outgoing HTTP request refused: the host is not in mapper.allowed_hosts"
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let asked = options.unwrap_or_default();
        let options = RequestOptions {
            connect_timeout: clamp(asked.connect_timeout, remaining),
            first_byte_timeout: clamp(asked.first_byte_timeout, remaining),
            between_bytes_timeout: clamp(asked.between_bytes_timeout, remaining),
        };
        tracing::debug!(
            target: "interstate::mapper",
            mapper = %self.mapper,
            method = %request.method(),
            host = uri.authority().map(|a| a.as_str()).unwrap_or(""),
            "outgoing HTTP request"
        );
        Box::new(outgoing::send(
            Arc::clone(&self.mapper),
            request,
            options,
            self.deny_private_addresses,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str], uri: &str) -> bool {
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        host_allowed(&list, &uri.parse().unwrap())
    }

    #[test]
    fn entries_without_a_scheme_allow_https_only_on_one_port() {
        assert!(allowed(&["api.example.com"], "https://API.example.com/x"));
        assert!(allowed(
            &["api.example.com"],
            "https://api.example.com:443/x"
        ));
        // Neither plain HTTP nor another port: a bare host is https on 443.
        assert!(!allowed(
            &["api.example.com"],
            "http://api.example.com:8080/x"
        ));
        assert!(!allowed(&["api.example.com"], "http://api.example.com/x"));
        assert!(!allowed(
            &["api.example.com"],
            "https://api.example.com:8443/x"
        ));
        assert!(!allowed(
            &["api.example.com:8443"],
            "http://api.example.com:8443/"
        ));
        assert!(allowed(
            &["api.example.com:8443"],
            "https://api.example.com:8443/"
        ));
        assert!(!allowed(
            &["api.example.com:8443"],
            "https://api.example.com/"
        ));
        assert!(allowed(
            &["api.example.com:443"],
            "https://api.example.com/"
        ));
        assert!(!allowed(&["127.0.0.1:80"], "http://127.0.0.1/"));
        assert!(allowed(&["http://127.0.0.1:80"], "http://127.0.0.1/"));
        assert!(!allowed(
            &["example.com"],
            "https://evil.example.com.attacker/"
        ));
        assert!(!allowed(&["example.com"], "https://sub.example.com/"));
        assert!(!allowed(&[], "https://example.com/"));
        assert!(allowed(&["[::1]:8080"], "https://[::1]:8080/"));
        assert!(!allowed(&["[::1]:8080"], "http://[::1]:8080/"));
        assert!(allowed(&["[::1]"], "https://[::1]/"));
        assert!(!allowed(&["[::1]"], "https://[::1]:9/"));
    }

    #[test]
    fn scheme_entries_allow_exactly_one_origin() {
        let entry = ["http://127.0.0.1:8080"];
        assert!(allowed(&entry, "http://127.0.0.1:8080/login"));
        assert!(!allowed(&entry, "https://127.0.0.1:8080/login"));
        assert!(!allowed(&entry, "http://127.0.0.1:8081/login"));
        assert!(!allowed(&entry, "http://127.0.0.1/login"));
        assert!(!allowed(&entry, "http://127.0.0.2:8080/login"));

        // Without a port: the scheme's own.
        let entry = ["https://Hosts.Example.com"];
        assert!(allowed(&entry, "https://hosts.example.com/api"));
        assert!(allowed(&entry, "https://hosts.example.com:443/api"));
        assert!(!allowed(&entry, "https://hosts.example.com:8443/api"));
        assert!(!allowed(&entry, "http://hosts.example.com:443/api"));
        assert!(!allowed(&entry, "http://hosts.example.com/api"));
        assert!(allowed(
            &["HTTP://hosts.example.com:80"],
            "http://hosts.example.com/"
        ));

        assert!(allowed(&["http://[::1]:8080"], "http://[::1]:8080/"));
        assert!(!allowed(&["http://[::1]:8080"], "https://[::1]:8080/"));

        // Other schemes, paths, user info and bad ports allow nothing.
        for entry in [
            "ftp://hosts.example.com",
            "ws://hosts.example.com:443",
            "https://hosts.example.com/api",
            "https://hosts.example.com:443/",
            "https://user@hosts.example.com",
            "https://hosts.example.com:x",
            "https://",
            "://hosts.example.com",
        ] {
            assert!(
                !allowed(&[entry], "https://hosts.example.com/api"),
                "{entry}"
            );
        }
    }
}
