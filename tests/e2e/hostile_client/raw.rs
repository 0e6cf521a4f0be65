//! Connections that misbehave below HTTP: raw TCP, bare TLS streams, half a ClientHello.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use interstate_tools::wire::{Verify, tls_config};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A TLS connection to the broker with nothing sent on it yet.
pub async fn tls(addr: SocketAddr) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    let connector = TlsConnector::from(tls_config(&Verify::Insecure).unwrap());
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(30), connector.connect(name, tcp))
        .await
        .expect("the handshake finished in time")
        .expect("the handshake succeeded")
}

/// How a connection ended.
#[derive(Debug)]
pub struct Closed {
    /// From the start of the wait to the close.
    pub after: Duration,
    /// Whatever arrived before the close.
    pub received: Vec<u8>,
}

/// Reads until the peer closes (EOF, TLS close, reset) and returns when; `None` if it was still
/// open after `limit`.
pub async fn wait_closed<S: AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> Option<Closed> {
    let started = Instant::now();
    let read_all = async {
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return received,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    };
    let received = tokio::time::timeout(limit, read_all).await.ok()?;
    Some(Closed {
        after: started.elapsed(),
        received,
    })
}

/// The first flight a real client sends: a TLS ClientHello for `localhost`.
pub fn client_hello() -> Vec<u8> {
    let config = tls_config(&Verify::Insecure).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut connection = rustls::ClientConnection::new(config, name).unwrap();
    let mut hello = Vec::new();
    while connection.wants_write() {
        connection.write_tls(&mut hello).unwrap();
    }
    assert_eq!(hello.first(), Some(&0x16), "a TLS handshake record");
    hello
}

/// The status line of the first HTTP response in `bytes`, if any.
pub fn status_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .next()
        .filter(|line| line.starts_with("HTTP/"))
        .map(str::to_owned)
}
