//! HTTP/1.1 responses read from bytes, never from a socket: the head with `httparse`, chunked
//! bodies with `httparse::parse_chunk_size`. The connection in [`super`] owns the buffer and
//! loops "parse, else read more".

use super::ClientError;

/// Most header lines accepted in one response head.
const MAX_HEADERS: usize = 64;

/// One HTTP response as received.
#[derive(Debug, Clone)]
pub struct WireResponse {
    /// The status line, such as `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// The status code.
    pub status: u16,
    /// Header lines exactly as sent (name case preserved), values trimmed.
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

/// How the body after a head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length: n`.
    Length(usize),
    /// Neither: the body runs until the server closes, as old servers did.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone)]
pub struct Head {
    /// The status line, rebuilt from its parts (`HTTP/1.1 200 OK`).
    pub status_line: String,
    /// The status code.
    pub status: u16,
    /// Header lines, names as spelled on the wire.
    pub headers: Vec<(String, String)>,
    /// How the body is framed.
    pub framing: Framing,
    /// `Connection: close` was sent.
    pub close: bool,
}

/// Parses a response head at the start of `buffer`: `Ok(None)` when more bytes are needed,
/// otherwise the head and its length in bytes.
pub fn parse_head(buffer: &[u8]) -> Result<Option<(Head, usize)>, ClientError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let length = match response.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ClientError::Mangled(format!("response head: {e}"))),
    };
    let (Some(version), Some(status)) = (response.version, response.code) else {
        return Err(ClientError::Mangled(
            "response head without a status".into(),
        ));
    };
    let status_line = format!(
        "HTTP/1.{version} {status} {}",
        response.reason.unwrap_or_default()
    );
    let mut headers = Vec::with_capacity(response.headers.len());
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| ClientError::Mangled(format!("header {:?} is not UTF-8", header.name)))?;
        headers.push((header.name.to_owned(), value.trim().to_owned()));
    }
    let find = |wanted: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let close = find("connection").is_some_and(|v| v.contains("close"));
    let framing = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        Framing::Chunked
    } else if let Some(length) = find("content-length") {
        Framing::Length(
            length
                .parse()
                .map_err(|_| ClientError::Mangled(format!("bad Content-Length {length:?}")))?,
        )
    } else {
        Framing::UntilClose
    };
    let head = Head {
        status_line,
        status,
        headers,
        framing,
        close,
    };
    Ok(Some((head, length)))
}

/// A chunked body being decoded: feed it the buffer after each read.
#[derive(Debug, Default)]
pub struct ChunkedBody {
    body: Vec<u8>,
    limit: usize,
}

impl ChunkedBody {
    /// A decoder that refuses bodies larger than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            body: Vec::new(),
            limit,
        }
    }

    /// Consumes every complete chunk at the start of `buffer`. Returns the body once the last
    /// chunk and the trailers have arrived, `None` while more bytes are needed.
    pub fn decode(&mut self, buffer: &mut Vec<u8>) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            let (line, size) = match httparse::parse_chunk_size(buffer) {
                Ok(httparse::Status::Complete(found)) => found,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(_) => {
                    return Err(ClientError::Mangled(format!(
                        "cannot get a chunk size from {:?}",
                        String::from_utf8_lossy(&buffer[..buffer.len().min(32)])
                    )));
                }
            };
            let size = usize::try_from(size)
                .ok()
                .filter(|size| self.body.len().saturating_add(*size) <= self.limit)
                .ok_or_else(|| ClientError::Mangled("body too large".into()))?;
            if size == 0 {
                // The last chunk: trailer lines (usually none) end with an empty line.
                let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                return match httparse::parse_headers(&buffer[line..], &mut slots) {
                    Ok(httparse::Status::Complete((trailers, _))) => {
                        buffer.drain(..line + trailers);
                        Ok(Some(std::mem::take(&mut self.body)))
                    }
                    Ok(httparse::Status::Partial) => Ok(None),
                    Err(e) => Err(ClientError::Mangled(format!("chunk trailers: {e}"))),
                };
            }
            let end = line + size;
            if buffer.len() < end + 2 {
                return Ok(None);
            }
            if &buffer[end..end + 2] != b"\r\n" {
                return Err(ClientError::Mangled("chunk not followed by CRLF".into()));
            }
            self.body.extend_from_slice(&buffer[line..end]);
            buffer.drain(..end + 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_keep_the_exact_spelling_and_find_the_framing() {
        let bytes = b"HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=ab; Path=/\r\nset-cookie: x=1\r\n\
            Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello";
        assert!(parse_head(&bytes[..20]).unwrap().is_none());
        let (head, length) = parse_head(bytes).unwrap().unwrap();
        assert_eq!(&bytes[length..], b"5\r\nhello");
        assert_eq!(head.status_line, "HTTP/1.1 200 OK");
        assert_eq!(head.status, 200);
        assert_eq!(
            head.headers[0],
            ("Set-Cookie".into(), "JSESSIONID=ab; Path=/".into())
        );
        assert_eq!(head.headers[1].0, "set-cookie");
        assert_eq!(head.framing, Framing::Chunked);
        assert!(head.close);

        let (sized, _) = parse_head(b"HTTP/1.0 500 Oops\r\nContent-Length: 3\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(sized.status_line, "HTTP/1.0 500 Oops");
        assert_eq!(sized.framing, Framing::Length(3));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies_decode_across_reads() {
        let whole = b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT".to_vec();
        let mut decoder = ChunkedBody::new(1024);
        let mut buffer = Vec::new();
        let mut body = None;
        for byte in &whole {
            buffer.push(*byte);
            if let Some(done) = decoder.decode(&mut buffer).unwrap() {
                body = Some(done);
                break;
            }
        }
        assert_eq!(body.unwrap(), b"hello!");
        assert!(buffer.is_empty(), "the rest stays for the next response");

        let mut bad = b"zz\r\n".to_vec();
        assert!(ChunkedBody::new(1024).decode(&mut bad).is_err());
        let mut no_crlf = b"2\r\nabXY".to_vec();
        assert!(ChunkedBody::new(1024).decode(&mut no_crlf).is_err());
        let mut large = b"ffff\r\n".to_vec();
        assert!(ChunkedBody::new(1024).decode(&mut large).is_err());
    }
}
