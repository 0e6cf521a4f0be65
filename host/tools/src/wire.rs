//! A PCoIP-client-shaped HTTP/1.1 client that keeps what real clients depend on.
//!
//! It speaks the way the real client does (keep-alive, `text/xml`, `Client-Log-Id`, the cookie
//! echoed back) and returns each response with its header names spelled as they came off the
//! wire, whether the body was chunked, and the decoded body, so that callers can check chunked
//! framing, `Set-Cookie` spelled exactly so, and the cookie attributes. Used by probe, bench and
//! the end-to-end tests.
//!
//! # Layout
//! - [`http`]: the response head and chunked bodies, parsed from bytes with `httparse`.
//! - this file: TLS set-up and the connection, which owns the socket and the buffer.

pub mod http;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use interstate_tls::{ClientConfigError, Verification};
use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub use http::WireResponse;
use http::{ChunkedBody, Framing};

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
    /// The TLS client configuration (a CA file, most likely).
    #[error(transparent)]
    Config(#[from] ClientConfigError),
    /// The host name is not valid for TLS.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
}

/// How the broker's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl From<&Verify> for Verification {
    fn from(verify: &Verify) -> Self {
        match verify {
            Verify::Insecure => Verification::DangerAcceptAny,
            Verify::Pin(pin) => Verification::Pinned(vec![*pin]),
            Verify::Ca(path) => Verification::CaFile(path.clone()),
            Verify::None => Verification::NoRoots,
        }
    }
}

/// Builds the TLS client configuration for `verify`.
pub fn tls_config(verify: &Verify) -> Result<Arc<ClientConfig>, ClientError> {
    tls_config_with(Arc::new(rustls::crypto::ring::default_provider()), verify)
}

/// Builds the TLS client configuration for `verify` on a given provider (for instance one
/// narrowed to the suites a particular PCoIP client offers).
pub fn tls_config_with(
    provider: Arc<CryptoProvider>,
    verify: &Verify,
) -> Result<Arc<ClientConfig>, ClientError> {
    let config = interstate_tls::client_config_with(
        provider,
        interstate_tls::DEFAULT_VERSIONS,
        &verify.into(),
    )?;
    Ok(Arc::new(config))
}

/// A kept-alive TLS connection to a broker.
#[derive(Debug)]
pub struct Connection {
    stream: TlsStream<TcpStream>,
    buffer: Vec<u8>,
    host_header: String,
    fingerprint: Option<[u8; 32]>,
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

    /// Reads more bytes into the buffer; the peer closing is an error.
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
        let head = loop {
            if let Some((head, length)) = http::parse_head(&self.buffer)? {
                self.buffer.drain(..length);
                break head;
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(ClientError::Mangled("response head too large".into()));
            }
            self.fill().await?;
        };
        let body = match head.framing {
            Framing::Chunked => {
                let mut decoder = ChunkedBody::new(MAX_BODY);
                loop {
                    if let Some(body) = decoder.decode(&mut self.buffer)? {
                        break body;
                    }
                    self.fill().await?;
                }
            }
            Framing::Length(length) if length > MAX_BODY => {
                return Err(ClientError::Mangled("body too large".into()));
            }
            Framing::Length(length) => {
                while self.buffer.len() < length {
                    self.fill().await?;
                }
                self.buffer.drain(..length).collect()
            }
            Framing::UntilClose => {
                loop {
                    match self.fill().await {
                        Ok(()) if self.buffer.len() <= MAX_BODY => {}
                        Ok(()) => return Err(ClientError::Mangled("body too large".into())),
                        Err(_) => break,
                    }
                }
                std::mem::take(&mut self.buffer)
            }
        };
        Ok(WireResponse {
            status_line: head.status_line,
            status: head.status,
            headers: head.headers,
            chunked: head.framing == Framing::Chunked,
            body,
            close: head.close,
            peer_fingerprint: self.fingerprint,
        })
    }
}
