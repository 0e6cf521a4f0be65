//! One blocking `GET` through wasi:http, reported as text.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};

/// GETs `url` (`http://host[:port]/path` or `https://...`) and describes the outcome.
pub fn get(url: &str) -> String {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return format!("unsupported url {url:?}");
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    if request.set_method(&Method::Get).is_err()
        || request.set_scheme(Some(&scheme)).is_err()
        || request.set_authority(Some(authority)).is_err()
        || request.set_path_with_query(Some(path)).is_err()
    {
        return format!("could not build a request for {url:?}");
    }
    let response = match outgoing_handler::handle(request, None) {
        Ok(response) => response,
        Err(code) => return format!("refused at once: {code:?}"),
    };
    response.subscribe().block();
    match response.get() {
        Some(Ok(Ok(incoming))) => format!("status {}", incoming.status()),
        Some(Ok(Err(code))) => format!("error {code:?}"),
        Some(Err(())) => "response already taken".to_owned(),
        None => "no response after blocking".to_owned(),
    }
}
