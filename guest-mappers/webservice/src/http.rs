//! The mapper's two kinds of request, `GET` and `POST` with a JSON body, over the SDK's
//! blocking `wasi:http` client ([`interstate_mapper_sdk::http`]).

use std::time::Duration;

use interstate_mapper_sdk::http::{self as sdk, Method};
use serde_json::Value;

use crate::url::{Scheme, Url};

pub use interstate_mapper_sdk::http::MAX_BODY_BYTES;

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
    send(Method::Get, url, headers, Vec::new(), timeout_ms)
}

/// Sends `POST url` with `headers` and `body` as JSON (`content-type: application/json`).
/// Errors as [`get`]; the body (which may hold passwords) never appears in them.
pub fn post_json(
    url: &Url,
    headers: &[(&str, &str)],
    body: &Value,
    timeout_ms: u32,
) -> Result<Response, String> {
    let mut all = vec![
        ("content-type", "application/json"),
        ("accept", "application/json"),
    ];
    all.extend_from_slice(headers);
    send(
        Method::Post,
        url,
        &all,
        body.to_string().into_bytes(),
        timeout_ms,
    )
}

fn send(
    method: Method,
    url: &Url,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    timeout_ms: u32,
) -> Result<Response, String> {
    let scheme = match url.scheme() {
        Scheme::Http => sdk::Scheme::Http,
        Scheme::Https => sdk::Scheme::Https,
    };
    let mut request =
        sdk::Request::from_parts(method, scheme, url.authority(), url.path_with_query())
            .body(body)
            .timeout(Duration::from_millis(u64::from(timeout_ms)));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().map_err(|e| e.to_string())?;
    let set_cookies = response
        .header_values("set-cookie")
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    Ok(Response {
        status: response.status,
        set_cookies,
        body: response.body,
    })
}
