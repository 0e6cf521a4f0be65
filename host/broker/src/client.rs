//! A PCoIP-client-shaped HTTP/1.1 client that keeps the raw bytes.
//!
//! It speaks the way the real client does (keep-alive, `text/xml`, `Client-Log-Id`, the cookie
//! echoed back) and returns each response with its header block exactly as it came off the wire,
//! so that callers can check what real clients depend on: chunked framing, `Set-Cookie` spelled
//! exactly so, the cookie attributes. Used by `interstate probe`, `interstate bench` and the tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::verify::{PinnedOrAny, roots_from_pem};

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest response body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// What went wrong talking to a broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS handshake failed (certificate refused, no common suite, ...).
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Reading or writing failed, or the peer closed early.
    #[error("connection to the broker failed: {0}")]
    Io(#[from] std::io::Error),
    /// The response could not be parsed as HTTP/1.1.
    #[error("mangled HTTP response: {0}")]
    Mangled(String),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The CA file.
    #[error("CA file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The host name is not valid for TLS.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
}

/// How the broker's certificate is checked.
#[derive(Debug, Clone)]
pub enum Verify {
    /// Accept any certificate (PCoIP client security mode 0). Signatures are still checked.
    Insecure,
    /// Accept only a certificate with this SHA-256.
    Pin([u8; 32]),
    /// Accept certificates signed by this CA for the host name.
    Ca(PathBuf),
    /// The system's usual roots are not bundled; use [`Verify::Ca`].
    None,
}

/// One HTTP response as received.
#[derive(Debug, Clone)]
pub struct WireResponse {
    /// The status line, such as `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// The status code.
    pub status: u16,
    /// Header lines exactly as sent (name case preserved).
    pub headers: Vec<(String, String)>,
    /// True when the body came with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The connection will be closed by the server.
    pub close: bool,
    /// SHA-256 of the server's certificate.
    pub peer_fingerprint: Option<[u8; 32]>,
}

impl WireResponse {
    /// The first header with this exact name (case-sensitive, as the wire showed it).
    pub fn header_exact(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first header with this name, any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A kept-alive TLS connection to a broker.
#[derive(Debug)]
pub struct Connection {
    stream: TlsStream<TcpStream>,
    buffer: Vec<u8>,
    host_header: String,
    fingerprint: Option<[u8; 32]>,
}

/// Builds the TLS client configuration for `verify`.
pub fn tls_config(verify: &Verify) -> Result<Arc<ClientConfig>, ClientError> {
    tls_config_with(Arc::new(rustls::crypto::ring::default_provider()), verify)
}

/// Builds the TLS client configuration for `verify` on a given provider (for instance one
/// narrowed to the suites a particular PCoIP client offers).
pub fn tls_config_with(
    provider: Arc<rustls::crypto::CryptoProvider>,
    verify: &Verify,
) -> Result<Arc<ClientConfig>, ClientError> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ClientError::Mangled(e.to_string()))?;
    let config = match verify {
        Verify::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedOrAny::danger_accept_any(provider)))
            .with_no_client_auth(),
        Verify::Pin(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedOrAny::pinned(vec![*pin], provider)))
            .with_no_client_auth(),
        Verify::Ca(path) => {
            let roots = roots_from_pem(path).map_err(|e| ClientError::CaFile {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Verify::None => builder
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

impl Connection {
    /// Connects to `addr` (`host:port`) and completes the TLS handshake, naming `server_name`.
    pub async fn connect(
        addr: &str,
        server_name: &str,
        tls: Arc<ClientConfig>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let connect = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|source| ClientError::Connect {
                    addr: addr.to_owned(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from(server_name.to_owned())
                .map_err(|_| ClientError::ServerName(server_name.to_owned()))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|source| ClientError::Tls {
                    addr: addr.to_owned(),
                    source,
                })?;
            let fingerprint = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|leaf| Sha256::digest(leaf.as_ref()).into());
            Ok(Self {
                stream,
                buffer: Vec::new(),
                host_header: addr.to_owned(),
                fingerprint,
            })
        };
        tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    /// Sends raw bytes (for tests that need to misbehave).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Posts `body` to `path` with the PCoIP client's headers plus `extra`, and reads the answer.
    pub async fn post(
        &mut self,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<WireResponse, ClientError> {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: Mozilla/4.0 (compatible; MSIE 6.0)\r\n\
             Accept: text/*, application/octet-stream\r\nContent-Type: text/xml; charset=UTF-8\r\n\
             Connection: Keep-Alive\r\nCache-Control: no-cache\r\nContent-Length: {}\r\n",
            self.host_header,
            body.len()
        );
        for (name, value) in extra {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes).await?;
        self.read_response(timeout).await
    }

    /// Sends a GET and reads the answer.
    pub async fn get(
        &mut self,
        path: &str,
        timeout: Duration,
    ) -> Result<WireResponse, ClientError> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host_header);
        self.send_raw(request.as_bytes()).await?;
        self.read_response(timeout).await
    }

    /// Reads one response.
    pub async fn read_response(&mut self, timeout: Duration) -> Result<WireResponse, ClientError> {
        tokio::time::timeout(timeout, self.read_response_inner())
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    async fn fill(&mut self) -> Result<(), ClientError> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn read_response_inner(&mut self) -> Result<WireResponse, ClientError> {
        let head_end = loop {
            if let Some(pos) = find(&self.buffer, b"\r\n\r\n") {
                break pos;
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(ClientError::Mangled("response head too large".into()));
            }
            self.fill().await?;
        };
        let head = String::from_utf8(self.buffer[..head_end].to_vec())
            .map_err(|_| ClientError::Mangled("response head is not UTF-8".into()))?;
        self.buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_owned();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| {
                ClientError::Mangled(format!("HTTP 1.1 not found in status line {status_line:?}"))
            })?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ClientError::Mangled(format!("bad header line {line:?}")))?;
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let find_header = |wanted: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(wanted))
                .map(|(_, v)| v.to_ascii_lowercase())
        };
        let chunked = find_header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let close = find_header("connection").is_some_and(|v| v.contains("close"));
        let body = if chunked {
            self.read_chunked().await?
        } else if let Some(len) = find_header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| ClientError::Mangled("bad Content-Length".into()))?;
            if len > MAX_BODY {
                return Err(ClientError::Mangled("body too large".into()));
            }
            while self.buffer.len() < len {
                self.fill().await?;
            }
            self.buffer.drain(..len).collect()
        } else {
            // Neither chunked nor sized: read until the server closes, as old clients did.
            loop {
                match self.fill().await {
                    Ok(()) if self.buffer.len() <= MAX_BODY => {}
                    Ok(()) => return Err(ClientError::Mangled("body too large".into())),
                    Err(_) => break,
                }
            }
            std::mem::take(&mut self.buffer)
        };
        Ok(WireResponse {
            status_line,
            status,
            headers,
            chunked,
            body,
            close,
            peer_fingerprint: self.fingerprint,
        })
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(pos) = find(&self.buffer, b"\r\n") {
                    break pos;
                }
                self.fill().await?;
            };
            let size_text = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            let size_hex = size_text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16).map_err(|_| {
                ClientError::Mangled(format!("cannot get chunk size from {size_text:?}"))
            })?;
            self.buffer.drain(..line_end + 2);
            if body.len() + size > MAX_BODY {
                return Err(ClientError::Mangled("body too large".into()));
            }
            while self.buffer.len() < size + 2 {
                self.fill().await?;
            }
            body.extend(self.buffer.drain(..size));
            if self.buffer.get(..2) != Some(b"\r\n") {
                return Err(ClientError::Mangled("chunk not followed by CRLF".into()));
            }
            self.buffer.drain(..2);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The text of the first `<name>...</name>` in `xml` (no nesting; enough for result ids).
pub fn element_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let start = xml.find(&open)?;
    let after_open = start + xml[start..].find('>')? + 1;
    if xml[..after_open].ends_with("/>") {
        return Some(String::new());
    }
    let end = after_open + xml[after_open..].find(&close)?;
    Some(xml[after_open..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_text_finds_simple_elements() {
        let xml = "<a><result-id>OK</result-id><b attr=\"1\">x</b><c/></a>";
        assert_eq!(element_text(xml, "result-id").as_deref(), Some("OK"));
        assert_eq!(element_text(xml, "b").as_deref(), Some("x"));
        assert_eq!(element_text(xml, "c").as_deref(), Some(""));
        assert_eq!(element_text(xml, "d"), None);
    }
}
