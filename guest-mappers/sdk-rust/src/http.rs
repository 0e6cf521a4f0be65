//! One blocking HTTP request over `wasi:http/outgoing-handler`, the way a mapper calls a web
//! service. The broker lets a request through only to the origins in `mapper.allowed_hosts`
//! (and, with `mapper.deny_private_addresses`, only to public addresses); an error says which
//! rule refused it.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use interstate_mapper_sdk::http::{Method, Request};
//!
//! # fn main() -> Result<(), interstate_mapper_sdk::http::HttpError> {
//! let response = Request::new(Method::Post, "https://power.example.com/machines/ws-7/restart")?
//!     .header("content-type", "application/json")
//!     .body(b"{}".to_vec())
//!     .timeout(Duration::from_secs(3))
//!     .send()?;
//! if (200..300).contains(&response.status) {
//!     let _text = String::from_utf8_lossy(&response.body);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Header values never appear in errors (they often carry credentials). These are the
//! component's imports: from a native build [`Request::send`] panics; [`Request::new`] and the
//! rest of the builder work everywhere.

use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme as WasiScheme,
};
use wasip2::io::streams::StreamError;

/// The largest response body read; a bigger one is an error, not a memory bomb.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The timeout used when the request sets none: under the host's default 5 s call deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

/// A failed request. The message names the host, so that an operator can tell an unreachable
/// service from one missing in `mapper.allowed_hosts`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HttpError {
    message: String,
    denied: bool,
}

impl HttpError {
    fn new(message: String) -> Self {
        Self {
            message,
            denied: false,
        }
    }

    /// True when the broker refused the request (`mapper.allowed_hosts` or
    /// `mapper.deny_private_addresses`) rather than the network or the service failing.
    pub fn is_denied(&self) -> bool {
        self.denied
    }
}

/// The request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    scheme: Scheme,
    authority: String,
    path_with_query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    timeout: Duration,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Every header, in the order received (names in lower case).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, at most [`MAX_BODY_BYTES`].
    pub body: Vec<u8>,
}

impl Response {
    /// Every value of the header `name` (case-insensitive), in order.
    pub fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
            .collect()
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Request {
    /// A request for an absolute `http://` or `https://` URL (no user info, no fragment).
    ///
    /// # Errors
    /// A URL this module cannot send.
    pub fn new(method: Method, url: &str) -> Result<Self, HttpError> {
        let refuse = |why: &str| HttpError::new(format!("cannot request {url:?}: {why}"));
        let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            (Scheme::Http, rest)
        } else {
            return Err(refuse("expected an http:// or https:// URL"));
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() || authority.contains('@') {
            return Err(refuse("expected a host (without user info)"));
        }
        if path.contains('#') {
            return Err(refuse("a fragment cannot be sent"));
        }
        if url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(refuse(
                "spaces and control characters must be percent-encoded",
            ));
        }
        let path_with_query = match path.strip_prefix('?') {
            Some(query) => format!("/?{query}"),
            None if path.is_empty() => "/".to_owned(),
            None => path.to_owned(),
        };
        Ok(Self::from_parts(
            method,
            scheme,
            authority,
            &path_with_query,
        ))
    }

    /// A request from a URL already split: `authority` is `host[:port]`, `path_with_query`
    /// starts with `/`.
    pub fn from_parts(
        method: Method,
        scheme: Scheme,
        authority: &str,
        path_with_query: &str,
    ) -> Self {
        Self {
            method,
            scheme,
            authority: authority.to_owned(),
            path_with_query: path_with_query.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }

    /// Sets the body (none by default).
    #[must_use]
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Sets the connect, first-byte and between-bytes timeout ([`DEFAULT_TIMEOUT`] by default).
    /// The call's own deadline still applies.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The host without the port (an IPv6 address keeps its brackets): what errors name.
    pub fn host(&self) -> &str {
        let authority = self.authority.as_str();
        if authority.starts_with('[') {
            return authority.split_inclusive(']').next().unwrap_or(authority);
        }
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
    }

    /// `scheme://authority`, as `mapper.allowed_hosts` spells the origin.
    pub fn origin(&self) -> String {
        match self.scheme {
            Scheme::Http => format!("http://{}", self.authority),
            Scheme::Https => format!("https://{}", self.authority),
        }
    }

    /// Sends the request and waits for the whole response.
    ///
    /// # Errors
    /// The broker refused the request, the network or the service failed, or the body is
    /// larger than [`MAX_BODY_BYTES`]. Every message names the host.
    pub fn send(self) -> Result<Response, HttpError> {
        let host = self.host().to_owned();
        let origin = self.origin();
        let mut headers = self.headers.clone();
        if !self.body.is_empty()
            && !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        {
            // A known length rather than chunked encoding, which some services refuse.
            headers.push((
                "content-length".to_owned(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        let fields = Fields::from_list(&headers).map_err(|e| {
            HttpError::new(format!("request to {host}: a header was refused: {e:?}"))
        })?;
        let request = OutgoingRequest::new(fields);
        let method = match self.method {
            Method::Get => WasiMethod::Get,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Delete => WasiMethod::Delete,
        };
        let scheme = match self.scheme {
            Scheme::Http => WasiScheme::Http,
            Scheme::Https => WasiScheme::Https,
        };
        request
            .set_method(&method)
            .and_then(|()| request.set_scheme(Some(&scheme)))
            .and_then(|()| request.set_authority(Some(&self.authority)))
            .and_then(|()| request.set_path_with_query(Some(&self.path_with_query)))
            .map_err(|()| {
                HttpError::new(format!(
                    "request to {host}: the URL {origin}{} was refused",
                    self.path_with_query
                ))
            })?;

        let options = RequestOptions::new();
        let timeout_ns = Some(u64::try_from(self.timeout.as_nanos()).unwrap_or(u64::MAX));
        // A host that cannot honour a timeout still has the call deadline; ignoring is safe.
        let _ = options.set_connect_timeout(timeout_ns);
        let _ = options.set_first_byte_timeout(timeout_ns);
        let _ = options.set_between_bytes_timeout(timeout_ns);

        let body = if self.body.is_empty() {
            None
        } else {
            Some(request.body().map_err(|()| {
                HttpError::new(format!(
                    "request to {host}: the request body was unavailable"
                ))
            })?)
        };
        let pending = outgoing_handler::handle(request, Some(options))
            .map_err(|e| describe_error(&host, &origin, &e))?;
        if let Some(body) = body {
            write_body(body, &self.body, &host)?;
        }
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(e))) => return Err(describe_error(&host, &origin, &e)),
            Some(Err(())) | None => {
                return Err(HttpError::new(format!(
                    "request to {host}: the response was lost by the host"
                )));
            }
        };

        let status = response.status();
        let headers = response.headers().entries();
        let incoming = response.consume().map_err(|()| {
            HttpError::new(format!(
                "request to {host}: the response body was unavailable"
            ))
        })?;
        let bytes = read_body(&incoming, &host)?;
        drop(IncomingBody::finish(incoming));
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn write_body(body: OutgoingBody, bytes: &[u8], host: &str) -> Result<(), HttpError> {
    let failed = || HttpError::new(format!("request to {host}: sending the body failed"));
    {
        let stream = body.write().map_err(|()| failed())?;
        // `blocking-write-and-flush` takes at most 4096 bytes a call.
        for chunk in bytes.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|_| failed())?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| {
        HttpError::new(format!(
            "request to {host}: finishing the body failed: {e:?}"
        ))
    })
}

fn read_body(body: &IncomingBody, host: &str) -> Result<Vec<u8>, HttpError> {
    let stream = body.stream().map_err(|()| {
        HttpError::new(format!(
            "request to {host}: the response body was unavailable"
        ))
    })?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_BODY_BYTES {
                    return Err(HttpError::new(format!(
                        "response from {host}: the body is larger than {MAX_BODY_BYTES} bytes"
                    )));
                }
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(HttpError::new(format!(
                    "response from {host}: reading the body failed: {}",
                    e.to_debug_string()
                )));
            }
        }
    }
}

fn describe_error(host: &str, origin: &str, error: &ErrorCode) -> HttpError {
    let message = match error {
        ErrorCode::HttpRequestDenied => format!(
            "request to {host} refused by the broker: add \"{origin}\" to mapper.allowed_hosts"
        ),
        ErrorCode::DestinationIpProhibited => format!(
            "request to {host} refused by the broker: it resolves to a private, loopback or \
             link-local address (mapper.deny_private_addresses)"
        ),
        ErrorCode::DnsError(_) | ErrorCode::DnsTimeout => {
            format!("request to {host}: the name did not resolve ({error:?})")
        }
        ErrorCode::ConnectionRefused => format!("request to {host}: connection refused"),
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::HttpResponseTimeout => format!("request to {host}: timed out ({error:?})"),
        other => format!("request to {host} failed: {other:?}"),
    };
    HttpError {
        message,
        denied: matches!(
            error,
            ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited
        ),
    }
}

/// Percent-encodes every byte outside RFC 3986's unreserved set, so that a value (a host name,
/// a user name) is exactly one path segment: it can never add a segment, a query or a fragment
/// (`::ffff:127.0.0.2` becomes `%3A%3Affff%3A127.0.0.2`).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn urls_split_for_wasi_http() {
        let r = Request::new(Method::Get, "HTTP://127.0.0.1:8080/machines/a%3Ab?x=1").unwrap();
        assert_eq!(r.scheme, Scheme::Http);
        assert_eq!(r.authority, "127.0.0.1:8080");
        assert_eq!(r.path_with_query, "/machines/a%3Ab?x=1");
        assert_eq!(r.host(), "127.0.0.1");
        assert_eq!(r.origin(), "http://127.0.0.1:8080");
        let r = Request::new(Method::Post, "https://[::1]:8443").unwrap();
        assert_eq!(r.path_with_query, "/");
        assert_eq!(r.host(), "[::1]");
        assert_eq!(
            Request::new(Method::Get, "https://h?q")
                .unwrap()
                .path_with_query,
            "/?q"
        );
    }

    #[test]
    fn urls_it_cannot_send_are_refused() {
        for url in [
            "ftp://h/",
            "https://",
            "https://user:pw@h/",
            "https://h/#frag",
            "https://h/a b",
        ] {
            assert!(Request::new(Method::Get, url).is_err(), "{url}");
        }
    }

    #[test]
    fn the_builder_keeps_headers_body_and_timeout() {
        let r = Request::new(Method::Post, "https://h/x")
            .unwrap()
            .header("content-type", "application/json")
            .body(b"{}".to_vec())
            .timeout(Duration::from_millis(250));
        assert_eq!(
            r.headers,
            [("content-type".to_owned(), b"application/json".to_vec())]
        );
        assert_eq!(r.body, b"{}");
        assert_eq!(r.timeout, Duration::from_millis(250));
        let response = Response {
            status: 204,
            headers: vec![
                ("Set-Cookie".to_owned(), b"a=1".to_vec()),
                ("set-cookie".to_owned(), b"b=2".to_vec()),
            ],
            body: Vec::new(),
        };
        assert!(response.is_success());
        assert_eq!(response.header_values("SET-COOKIE"), [b"a=1", b"b=2"]);
    }
}
