//! The checks every answer must pass for real PCoIP clients to accept it (see the client quirks
//! in the protocol reference): HTTP/1.1 200, a chunked body, `Set-Cookie` spelled exactly so
//! with the right attributes, the request's root element, the expected message.

use interstate_protocol::Root;
use serde::Serialize;

use crate::wire::WireResponse;
use crate::xml::{element_text, message_element, root_element};

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A short stable name, such as `chunked`.
    pub name: &'static str,
    /// Whether it passed.
    pub passed: bool,
    /// What was seen, or why it failed.
    pub detail: String,
}

impl Check {
    /// A passed check.
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            passed: true,
            detail: detail.into(),
        }
    }

    /// A failed check.
    pub fn fail(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            passed: false,
            detail: detail.into(),
        }
    }
}

/// What an answer must do about the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieRule {
    /// It must set one (the real hello).
    Required,
    /// It must not (the `QueryBrokerClient` probe creates no session).
    Forbidden,
    /// It may; when it does, the cookie must be well-formed.
    Optional,
}

/// The status line is `HTTP/1.1 200`: clients refuse other versions and treat any other status as
/// a transport error.
pub fn http_ok(response: &WireResponse) -> Check {
    if response.status_line.starts_with("HTTP/1.1 200") {
        Check::pass("http-1.1-200", response.status_line.clone())
    } else {
        Check::fail(
            "http-1.1-200",
            format!(
                "status line {:?}: PCoIP clients need HTTP/1.1 200 for every answer, failures included",
                response.status_line
            ),
        )
    }
}

/// The body is chunked: clients cannot read a `Content-Length` body on a kept-alive connection.
pub fn chunked(response: &WireResponse) -> Check {
    let length = response.header("content-length");
    match (response.chunked, length) {
        (true, None) => Check::pass("chunked", "Transfer-Encoding: chunked"),
        (true, Some(_)) => Check::fail(
            "chunked",
            "both Transfer-Encoding: chunked and Content-Length were sent",
        ),
        (false, Some(len)) => Check::fail(
            "chunked",
            format!(
                "the body came with Content-Length: {len}, not Transfer-Encoding: chunked; PCoIP clients wait for chunks until they time out"
            ),
        ),
        (false, None) => Check::fail(
            "chunked",
            "the body was neither chunked nor sized (read until the connection closed)",
        ),
    }
}

/// The session cookie, per `rule`; `None` when there is nothing to check.
pub fn cookie(response: &WireResponse, rule: CookieRule) -> Option<Check> {
    const NAME: &str = "set-cookie";
    let session_cookies: Vec<&(String, String)> = response
        .headers
        .iter()
        .filter(|(n, v)| {
            n.eq_ignore_ascii_case("set-cookie")
                && v.trim_start()
                    .get(..11)
                    .is_some_and(|p| p.eq_ignore_ascii_case("JSESSIONID="))
        })
        .collect();
    let Some((name, value)) = session_cookies.first() else {
        return match rule {
            CookieRule::Required => Some(Check::fail(
                NAME,
                "no Set-Cookie: JSESSIONID=... header: the hello must start a session",
            )),
            CookieRule::Forbidden => {
                Some(Check::pass("probe-creates-no-session", "no session cookie"))
            }
            CookieRule::Optional => None,
        };
    };
    if rule == CookieRule::Forbidden {
        return Some(Check::fail(
            "probe-creates-no-session",
            "the QueryBrokerClient probe got a session cookie: every probe leaves a session behind",
        ));
    }
    Some(match cookie_problem(name, value) {
        None => Check::pass(
            NAME,
            "Set-Cookie: JSESSIONID=<32 hex>; Path=/; Secure; HttpOnly",
        ),
        Some(problem) => Check::fail(NAME, problem),
    })
}

fn cookie_problem(name: &str, value: &str) -> Option<String> {
    if name != "Set-Cookie" {
        return Some(format!(
            "the header is spelled {name:?}; older PCoIP clients only accept exactly \"Set-Cookie\""
        ));
    }
    let mut parts = value.split(';').map(str::trim);
    let pair = parts.next().unwrap_or_default();
    let (cookie_name, id) = pair.split_once('=').unwrap_or((pair, ""));
    if cookie_name != "JSESSIONID" {
        return Some(format!(
            "the cookie is named {cookie_name:?}, not JSESSIONID"
        ));
    }
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(format!(
            "the session id has {} characters; expected 32 hex digits (128 bits)",
            id.len()
        ));
    }
    let attributes: Vec<&str> = parts.collect();
    let has = |wanted: &str| attributes.iter().any(|a| a.eq_ignore_ascii_case(wanted));
    let missing: Vec<&str> = ["Path=/", "Secure", "HttpOnly"]
        .into_iter()
        .filter(|a| !has(a))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "the cookie lacks {}; got attributes {:?}",
            missing.join(", "),
            attributes.join("; ")
        ));
    }
    None
}

/// The answer's root element is the request's.
pub fn root(response: &WireResponse, expected: Root) -> Check {
    let text = response.text();
    match root_element(&text) {
        Some(name) if name == expected.as_str() => Check::pass("root", format!("<{name}>")),
        Some(name) => Check::fail(
            "root",
            format!(
                "the answer's root is <{name}>, the request's was <{}>",
                expected.as_str()
            ),
        ),
        None => Check::fail("root", format!("the answer is not XML: {}", snippet(&text))),
    }
}

/// The answer is `expected` (such as `hello-resp`).
pub fn message(response: &WireResponse, expected: &str) -> Check {
    let text = response.text();
    match message_element(&text) {
        Some(name) if name == expected => Check::pass("message", format!("<{name}>")),
        Some(name) => Check::fail(
            "message",
            format!(
                "expected <{expected}>, got <{name}>{}",
                result_suffix(&text)
            ),
        ),
        None => Check::fail(
            "message",
            format!("expected <{expected}>, got {}", snippet(&text)),
        ),
    }
}

/// The answer's `result-id` is `expected`.
pub fn result_id(response: &WireResponse, expected: &str) -> Check {
    let text = response.text();
    match element_text(&text, "result-id") {
        Some(id) if id.trim() == expected => Check::pass("result-id", expected),
        Some(id) => Check::fail(
            "result-id",
            format!(
                "expected {expected}, got {}{}",
                id.trim(),
                element_text(&text, "result-str")
                    .map(|s| format!(" ({})", s.trim()))
                    .unwrap_or_default()
            ),
        ),
        None => Check::fail("result-id", format!("no result-id in {}", snippet(&text))),
    }
}

fn result_suffix(text: &str) -> String {
    element_text(text, "result-id")
        .map(|id| format!(" with {}", id.trim()))
        .unwrap_or_default()
}

/// The start of a body, for error messages.
pub fn snippet(text: &str) -> String {
    let flat: String = text
        .chars()
        .take(120)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > 120 {
        format!("{flat:?}...")
    } else {
        format!("{flat:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(headers: &[(&str, &str)], chunked: bool, body: &str) -> WireResponse {
        WireResponse {
            status_line: "HTTP/1.1 200 OK".into(),
            status: 200,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            chunked,
            body: body.as_bytes().to_vec(),
            close: false,
            peer_fingerprint: None,
        }
    }

    const GOOD: &str = "JSESSIONID=0123456789abcdef0123456789abcdef; Path=/; Secure; HttpOnly";

    #[test]
    fn cookies_are_checked_for_case_id_and_attributes() {
        let ok = response(&[("Set-Cookie", GOOD)], true, "");
        assert!(cookie(&ok, CookieRule::Required).unwrap().passed);
        let ils_order = response(
            &[(
                "Set-Cookie",
                "JSESSIONID=0123456789abcdef0123456789ABCDEF; HttpOnly; Path=/; Secure",
            )],
            true,
            "",
        );
        assert!(cookie(&ils_order, CookieRule::Required).unwrap().passed);
        let lower = response(&[("set-cookie", GOOD)], true, "");
        let check = cookie(&lower, CookieRule::Required).unwrap();
        assert!(
            !check.passed && check.detail.contains("spelled"),
            "{check:?}"
        );
        let short = response(
            &[("Set-Cookie", "JSESSIONID=abc; Path=/; Secure; HttpOnly")],
            true,
            "",
        );
        assert!(!cookie(&short, CookieRule::Required).unwrap().passed);
        let no_secure = response(
            &[(
                "Set-Cookie",
                "JSESSIONID=0123456789abcdef0123456789abcdef; Path=/; HttpOnly",
            )],
            true,
            "",
        );
        let check = cookie(&no_secure, CookieRule::Optional).unwrap();
        assert!(check.detail.contains("Secure"), "{check:?}");
        let none = response(&[], true, "");
        assert!(!cookie(&none, CookieRule::Required).unwrap().passed);
        assert!(cookie(&none, CookieRule::Forbidden).unwrap().passed);
        assert!(cookie(&none, CookieRule::Optional).is_none());
        assert!(!cookie(&ok, CookieRule::Forbidden).unwrap().passed);
    }

    #[test]
    fn framing_root_and_result_are_checked() {
        let sized = response(&[("Content-Length", "10")], false, "");
        assert!(chunked(&sized).detail.contains("Content-Length"));
        let body = "<?xml version=\"1.0\"?><pcoip-client version=\"2.1\"><authenticate-resp method=\"password\">\
            <result><result-id>AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD</result-id><result-str>no</result-str></result>\
            </authenticate-resp></pcoip-client>";
        let r = response(&[], true, body);
        assert!(root(&r, Root::PcoipClient).passed);
        assert!(!root(&r, Root::PcoipBroker).passed);
        assert!(message(&r, "authenticate-resp").passed);
        let check = result_id(&r, "AUTH_SUCCESSFUL_AND_COMPLETE");
        assert!(
            !check.passed && check.detail.contains("UNKNOWN_USERNAME"),
            "{check:?}"
        );
        assert!(!message(&response(&[], true, "{}"), "hello-resp").passed);
    }
}
