//! The HTTP answers: PCoIP XML (always 200, chunked, with the session cookie spelled as clients
//! need it), plain text, and the health page load balancers probe.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use interstate_protocol::{BrokerReply, ErrorId, ErrorResp, Root, encode_reply};

use super::Generation;
use crate::body::ChunkedBody;

/// An `error-resp` with its own text.
pub(super) fn error_reply(id: ErrorId, text: &str, detail: Option<&str>) -> BrokerReply {
    BrokerReply::Error(ErrorResp {
        result_id: id,
        result_str: text.to_owned(),
        detail: detail.map(str::to_owned),
    })
}

/// An `error-resp` answer, closing the connection after it when `close`.
pub(super) fn xml_error(
    root: Root,
    id: ErrorId,
    text: &str,
    detail: Option<&str>,
    close: bool,
) -> Response<ChunkedBody> {
    xml_response(root, &error_reply(id, text, detail), None, close)
}

/// The answer to a body over the limit.
pub(super) fn too_large(limit: usize) -> Response<ChunkedBody> {
    let detail = format!("the request body is larger than {limit} bytes");
    // The rest of the body was not read, so the connection cannot carry another request.
    xml_error(
        Root::PcoipClient,
        ErrorId::InvalidMsgFormat,
        "The request is too large",
        Some(&detail),
        true,
    )
}

/// `reply` in `root`, with `Set-Cookie: JSESSIONID=<cookie>; Path=/; Secure; HttpOnly` when a
/// session goes with it.
pub(super) fn xml_response(
    root: Root,
    reply: &BrokerReply,
    cookie: Option<&str>,
    close: bool,
) -> Response<ChunkedBody> {
    xml_body_response(encode_reply(root, reply).into(), cookie, close)
}

/// An encoded PCoIP XML answer, as [`xml_response`] sends it.
pub(super) fn xml_body_response(
    body: bytes::Bytes,
    cookie: Option<&str>,
    close: bool,
) -> Response<ChunkedBody> {
    let mut response = Response::new(ChunkedBody::new(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=UTF-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(id) = cookie
        && let Ok(value) =
            HeaderValue::from_str(&format!("JSESSIONID={id}; Path=/; Secure; HttpOnly"))
    {
        headers.insert(header::SET_COOKIE, value);
    }
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A plain-text answer.
pub(super) fn plain(status: StatusCode, text: &'static str) -> Response<ChunkedBody> {
    let mut response = Response::new(ChunkedBody::new(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

/// The page `GET /pcoip-broker/xml` answers (load-balancer health checks).
pub(super) fn health_page(generation: &Generation) -> Response<ChunkedBody> {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{name}</title></head><body>\n\
         <h1>{name}</h1>\n<p>PCoIP connection broker {version}: OK. Point a PCoIP client at this host.</p>\n\
         </body></html>\n",
        name = escape_html(&generation.info.product_name),
        version = env!("CARGO_PKG_VERSION"),
    );
    let mut response = Response::new(ChunkedBody::new(page));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    response
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
