//! A blocking HTTP GET over `wasi:http/outgoing-handler`, the only IO this mapper does.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingRequest, RequestOptions, Scheme as WasiScheme,
};
use wasip2::io::streams::StreamError;

use crate::url::{Scheme, Url};

/// The largest response body read; a bigger one is an error, not a memory bomb.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What the mapper needs of a response.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Every `Set-Cookie` header value, raw.
    pub set_cookies: Vec<Vec<u8>>,
    /// The body, at most [`MAX_BODY_BYTES`].
    pub body: Vec<u8>,
}

/// Sends `GET url` with `headers` and waits for the whole response.
///
/// Every error names the host, so that an operator can tell an unreachable service from one
/// missing in `mapper.allowed_hosts`. Header values never appear in errors: they carry
/// credentials.
pub fn get(url: &Url, headers: &[(&str, &str)], timeout_ms: u32) -> Result<Response, String> {
    let host = url.host();
    let fields = Fields::from_list(
        &headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
            .collect::<Vec<_>>(),
    )
    .map_err(|e| format!("request to {host}: a header was refused: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    let (scheme, origin) = match url.scheme() {
        Scheme::Http => (WasiScheme::Http, format!("http://{}", url.authority())),
        Scheme::Https => (WasiScheme::Https, format!("https://{}", url.authority())),
    };
    request
        .set_method(&Method::Get)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(url.authority())))
        .and_then(|()| request.set_path_with_query(Some(url.path_with_query())))
        .map_err(|()| format!("request to {host}: the URL {url} was refused"))?;

    let options = RequestOptions::new();
    let timeout_ns = Some(u64::from(timeout_ms) * 1_000_000);
    // A host that cannot honour a timeout still has the call deadline; ignoring is safe.
    let _ = options.set_connect_timeout(timeout_ns);
    let _ = options.set_first_byte_timeout(timeout_ns);
    let _ = options.set_between_bytes_timeout(timeout_ns);

    let pending =
        outgoing_handler::handle(request, Some(options)).map_err(|e| describe_error(host, &origin, &e))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(describe_error(host, &origin, &e)),
        Some(Err(())) | None => {
            return Err(format!(
                "request to {host}: the response was lost by the host"
            ));
        }
    };

    let status = response.status();
    let set_cookies = response.headers().get("set-cookie");
    let body = response
        .consume()
        .map_err(|()| format!("request to {host}: the response body was unavailable"))?;
    let bytes = read_body(&body, host)?;
    drop(IncomingBody::finish(body));
    Ok(Response {
        status,
        set_cookies,
        body: bytes,
    })
}

fn read_body(body: &IncomingBody, host: &str) -> Result<Vec<u8>, String> {
    let stream = body
        .stream()
        .map_err(|()| format!("request to {host}: the response body was unavailable"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_BODY_BYTES {
                    return Err(format!(
                        "response from {host}: the body is larger than {MAX_BODY_BYTES} bytes"
                    ));
                }
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!(
                    "response from {host}: reading the body failed: {}",
                    e.to_debug_string()
                ));
            }
        }
    }
}

fn describe_error(host: &str, origin: &str, error: &ErrorCode) -> String {
    match error {
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
    }
}
