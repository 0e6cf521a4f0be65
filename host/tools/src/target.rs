//! The broker URL a probe or a bench is pointed at.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// The path PCoIP clients post to.
pub const BROKER_PATH: &str = "/pcoip-broker/xml";

/// The port PCoIP clients use when the address names none.
const DEFAULT_PORT: u16 = 443;

/// The URL could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Not an `https://` URL.
    #[error(
        "{0:?}: expected https://HOST[:PORT][/pcoip-broker/xml] (PCoIP brokers speak only HTTPS)"
    )]
    Scheme(String),
    /// Host or port missing or malformed.
    #[error("{url:?}: {reason}")]
    Malformed {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host name does not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
}

/// Where a broker listens: `https://host:port/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as written (no brackets around IPv6 addresses); also the TLS server name.
    pub host: String,
    /// The port (443 when the URL names none, as PCoIP clients assume).
    pub port: u16,
    /// The request path, `/pcoip-broker/xml` unless the URL names another.
    pub path: String,
}

impl Target {
    /// Parses `https://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let malformed = |reason: &str| TargetError::Malformed {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| TargetError::Scheme(url.to_owned()))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        let path = match path {
            "" | "/" => BROKER_PATH.to_owned(),
            other => other.to_owned(),
        };
        if authority.contains('@') {
            return Err(malformed("user information in the URL is not supported"));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| malformed("unclosed '[' in the host"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| malformed("junk after ']'"))?,
                ),
            };
            (host, port)
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(malformed("no host"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| malformed("the port must be 1-65535"))?,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// `host:port` for connecting, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL, normalised.
    pub fn url(&self) -> String {
        format!("https://{}{}", self.authority(), self.path)
    }

    /// Every address the host resolves to.
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, TargetError> {
        let resolve_error = |reason: String| TargetError::Resolve {
            host: self.host.clone(),
            reason,
        };
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| resolve_error(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(resolve_error("no address".into()));
        }
        Ok(addrs)
    }

    /// True when every address the host resolves to is a loopback address.
    pub fn is_loopback(&self) -> Result<bool, TargetError> {
        Ok(self.resolve()?.iter().all(|a| a.ip().is_loopback()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults() {
        let t = Target::parse("https://broker.example.com").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("broker.example.com", 443));
        assert_eq!(t.path, "/pcoip-broker/xml");
        let t = Target::parse("https://127.0.0.1:60443/pcoip-broker/xml").unwrap();
        assert_eq!(t.authority(), "127.0.0.1:60443");
        let t = Target::parse("https://[::1]:8443/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8443));
        assert_eq!(t.authority(), "[::1]:8443");
        assert_eq!(t.url(), "https://[::1]:8443/pcoip-broker/xml");
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        assert!(matches!(
            Target::parse("http://x:1"),
            Err(TargetError::Scheme(_))
        ));
        assert!(Target::parse("https://:60443").is_err());
        assert!(Target::parse("https://host:0").is_err());
        assert!(Target::parse("https://host:http").is_err());
        assert!(Target::parse("https://[::1").is_err());
    }

    #[test]
    fn loopback_is_recognised() {
        assert!(
            Target::parse("https://127.0.0.2:1")
                .unwrap()
                .is_loopback()
                .unwrap()
        );
        assert!(
            Target::parse("https://[::1]:1")
                .unwrap()
                .is_loopback()
                .unwrap()
        );
        assert!(
            !Target::parse("https://192.0.2.1:1")
                .unwrap()
                .is_loopback()
                .unwrap()
        );
    }
}
