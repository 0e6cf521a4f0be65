//! What goes over the wire to the web service and what comes back, as pure functions: the
//! Basic credentials, the session cookie, the host list and the desktop ids derived from it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use interstate_mapper_sdk::types::Operation;
use serde_json::{Value, json};

/// The most desktops the contract lets a mapper return.
pub const MAX_HOSTS: usize = 512;
/// The longest desktop name or host name the contract accepts, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The longest desktop id the contract accepts, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// The longest attribute value the contract accepts, in bytes; the token is one.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The `Authorization` header value for HTTP Basic (RFC 7617), UTF-8 encoded as ILS did.
///
/// A user name containing `:` cannot be expressed in Basic credentials, so it is refused
/// rather than silently authenticating someone else.
pub fn basic_authorization(user: &str, password: &str) -> Result<String, String> {
    if user.contains(':') {
        return Err("the user name contains ':', which HTTP Basic cannot carry".to_owned());
    }
    Ok(format!(
        "Basic {}",
        STANDARD.encode(format!("{user}:{password}"))
    ))
}

/// Finds the value of the cookie `name` among `Set-Cookie` header values.
///
/// Only the leading `name=value` pair of each header counts: the attributes that follow
/// (`Path`, `HttpOnly`, ...) are not cookies. A value wrapped in double quotes is returned
/// with them, because that is how it must be sent back. An empty value (a deletion) is
/// treated as no cookie.
pub fn find_cookie(set_cookie_values: &[Vec<u8>], name: &str) -> Option<String> {
    set_cookie_values.iter().find_map(|raw| {
        let text = std::str::from_utf8(raw).ok()?;
        let pair = text.split(';').next()?;
        let (key, value) = pair.split_once('=')?;
        let value = value.trim();
        let valid = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'\\');
        (key.trim() == name && valid).then(|| value.to_owned())
    })
}

/// One entry of the service's host list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// A stable id derived from the host name.
    pub id: String,
    /// The name shown to the user.
    pub name: String,
    /// The agent's host name.
    pub hostname: String,
    /// The operations the service offers for this host (its optional `operations` list).
    pub operations: Vec<Operation>,
}

/// Parses the listing body `{"hosts":[{"name":...,"hostname":...}]}`.
///
/// Unknown extra keys are ignored (the service is not ours to police), but a missing or
/// mistyped `hosts`, `name` or `hostname` is an error naming the place. Entries repeating a
/// host name already listed are dropped: their ids would collide, and the client could not
/// tell them apart.
pub fn parse_hosts(body: &[u8]) -> Result<Vec<Host>, String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the host list is not valid JSON: {e}"))?;
    let hosts = value
        .get("hosts")
        .ok_or("the host list has no \"hosts\" key")?
        .as_array()
        .ok_or("the host list's \"hosts\" is not a list")?;
    if hosts.len() > MAX_HOSTS {
        return Err(format!(
            "the host list has {} entries; at most {MAX_HOSTS} are allowed",
            hosts.len()
        ));
    }
    let mut out: Vec<Host> = Vec::with_capacity(hosts.len());
    for (i, entry) in hosts.iter().enumerate() {
        let field = |key: &str| -> Result<String, String> {
            match entry.get(key) {
                Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_NAME_BYTES => {
                    Ok(s.clone())
                }
                Some(Value::String(_)) => Err(format!(
                    "hosts[{i}].{key}: expected 1 to {MAX_NAME_BYTES} bytes"
                )),
                Some(_) => Err(format!("hosts[{i}].{key}: expected a string")),
                None => Err(format!("hosts[{i}].{key}: missing")),
            }
        };
        let name = field("name")?;
        let hostname = field("hostname")?;
        let operations = parse_operations(entry.get("operations"), i)?;
        let id = desktop_id(&hostname);
        if out.iter().any(|h| h.id == id) {
            continue;
        }
        out.push(Host {
            id,
            name,
            hostname,
            operations,
        });
    }
    Ok(out)
}

/// An entry's optional `operations`: a list of `"restart"`, `"power-down"` and `"power-up"`
/// (repeats dropped); absent or `null` means none.
fn parse_operations(value: Option<&Value>, index: usize) -> Result<Vec<Operation>, String> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(format!("hosts[{index}].operations: expected a list")),
    };
    let mut operations = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let operation = item.as_str().and_then(operation_from_name).ok_or_else(|| {
            format!(
                "hosts[{index}].operations[{j}]: expected \"restart\", \"power-down\" or \"power-up\""
            )
        })?;
        if !operations.contains(&operation) {
            operations.push(operation);
        }
    }
    Ok(operations)
}

/// The wire name of an operation, as the WIT spells it.
pub fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Restart => "restart",
        Operation::PowerDown => "power-down",
        Operation::PowerUp => "power-up",
    }
}

fn operation_from_name(name: &str) -> Option<Operation> {
    match name {
        "restart" => Some(Operation::Restart),
        "power-down" => Some(Operation::PowerDown),
        "power-up" => Some(Operation::PowerUp),
        _ => None,
    }
}

/// The body of `POST {base_url}/change-password`. It holds both passwords: never log it.
pub fn change_password_body(
    username: &str,
    domain: &str,
    old_password: &str,
    new_password: &str,
) -> Value {
    json!({
        "username": username,
        "domain": domain,
        "old_password": old_password,
        "new_password": new_password,
    })
}

/// The body of `POST {base_url}/operate`.
pub fn operate_body(username: &str, host: &Host, operation: Operation) -> Value {
    json!({
        "username": username,
        "desktop_id": host.id,
        "hostname": host.hostname,
        "operation": operation_name(operation),
    })
}

/// The service's verdict `{"result": "...", "detail": "..."}` (`detail` optional, empty when
/// absent).
pub fn parse_result(body: &[u8]) -> Result<(String, String), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not valid JSON: {e}"))?;
    let result = value
        .get("result")
        .and_then(Value::as_str)
        .ok_or("the answer has no \"result\" string")?;
    let detail = match value.get("detail") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(detail)) => detail.clone(),
        Some(_) => return Err("the answer's \"detail\" is not a string".to_owned()),
    };
    Ok((result.to_owned(), detail))
}

/// A desktop id derived from the host name alone, so it survives reordering of the list:
/// the lower-cased host name when it is short and plain, otherwise a readable prefix plus a
/// 64-bit FNV-1a hash of the whole host name.
pub fn desktop_id(hostname: &str) -> String {
    let lower = hostname.to_ascii_lowercase();
    let plain = lower
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if plain && !lower.is_empty() && lower.len() <= MAX_ID_BYTES {
        return lower;
    }
    let slug: String = lower
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(MAX_ID_BYTES - 17)
        .collect();
    format!("{slug}~{:016x}", fnv1a(lower.as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_matches_rfc_7617() {
        // The RFC's own example.
        assert_eq!(
            basic_authorization("Aladdin", "open sesame").unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(
            basic_authorization("test", "123£").unwrap(),
            "Basic dGVzdDoxMjPCow=="
        );
        assert!(basic_authorization("a:b", "pw").is_err());
        assert_eq!(basic_authorization("a", "p:w").unwrap(), "Basic YTpwOnc=");
    }

    #[test]
    fn finds_the_named_cookie_only() {
        let headers = vec![
            b"other=1; Path=/".to_vec(),
            b"session=abc123; Path=/; HttpOnly; session=evil".to_vec(),
        ];
        assert_eq!(find_cookie(&headers, "session").as_deref(), Some("abc123"));
        assert_eq!(find_cookie(&headers, "other").as_deref(), Some("1"));
        assert_eq!(find_cookie(&headers, "Path"), None);
        assert_eq!(find_cookie(&headers, "sess"), None);
        assert_eq!(
            find_cookie(&[b"session=; Max-Age=0".to_vec()], "session"),
            None
        );
        assert_eq!(
            find_cookie(&[b"session=\"quoted\"".to_vec()], "session").as_deref(),
            Some("\"quoted\"")
        );
        assert_eq!(find_cookie(&[vec![0xff, b'=', b'1']], "session"), None);
    }

    #[test]
    fn parses_the_ils_host_list() {
        let body = br#"{"hosts":[
            {"name":"Bilbo Baggins","hostname":"JRR.tolkien.com","extra":true},
            {"name":"Winston Smith","hostname":"orwell.mil"},
            {"name":"Duplicate","hostname":"jrr.tolkien.com"}
        ]}"#;
        let hosts = parse_hosts(body).unwrap();
        assert_eq!(
            hosts,
            [
                Host {
                    id: "jrr.tolkien.com".into(),
                    name: "Bilbo Baggins".into(),
                    hostname: "JRR.tolkien.com".into(),
                    operations: Vec::new(),
                },
                Host {
                    id: "orwell.mil".into(),
                    name: "Winston Smith".into(),
                    hostname: "orwell.mil".into(),
                    operations: Vec::new(),
                },
            ]
        );
        assert_eq!(parse_hosts(br#"{"hosts":[]}"#).unwrap(), []);
    }

    #[test]
    fn malformed_host_lists_are_named_errors() {
        assert!(
            parse_hosts(b"<html>")
                .unwrap_err()
                .starts_with("the host list is not valid JSON")
        );
        assert_eq!(
            parse_hosts(b"{}").unwrap_err(),
            "the host list has no \"hosts\" key"
        );
        assert_eq!(
            parse_hosts(br#"{"hosts":{}}"#).unwrap_err(),
            "the host list's \"hosts\" is not a list"
        );
        assert_eq!(
            parse_hosts(br#"{"hosts":[{"name":"a"}]}"#).unwrap_err(),
            "hosts[0].hostname: missing"
        );
        assert_eq!(
            parse_hosts(br#"{"hosts":[{"name":"a","hostname":"h"},{"name":1,"hostname":"h2"}]}"#)
                .unwrap_err(),
            "hosts[1].name: expected a string"
        );
        assert!(parse_hosts(br#"{"hosts":[{"name":"","hostname":"h"}]}"#).is_err());
        let many = format!(
            r#"{{"hosts":[{}]}}"#,
            vec![r#"{"name":"a","hostname":"h"}"#; MAX_HOSTS + 1].join(",")
        );
        assert!(
            parse_hosts(many.as_bytes())
                .unwrap_err()
                .contains("at most 512")
        );
    }

    #[test]
    fn hosts_may_offer_operations() {
        let hosts = parse_hosts(
            br#"{"hosts":[{"name":"a","hostname":"a","operations":["restart","power-up","restart"]},
                          {"name":"b","hostname":"b","operations":null}]}"#,
        )
        .unwrap();
        assert_eq!(
            hosts[0].operations,
            [Operation::Restart, Operation::PowerUp]
        );
        assert!(hosts[1].operations.is_empty());
        assert_eq!(
            parse_hosts(br#"{"hosts":[{"name":"a","hostname":"a","operations":"restart"}]}"#)
                .unwrap_err(),
            "hosts[0].operations: expected a list"
        );
        assert_eq!(
            parse_hosts(br#"{"hosts":[{"name":"a","hostname":"a","operations":["reboot"]}]}"#)
                .unwrap_err(),
            "hosts[0].operations[0]: expected \"restart\", \"power-down\" or \"power-up\""
        );
    }

    #[test]
    fn bodies_and_results() {
        let body = change_password_body("o'brien", "EXAMPLE", "old", "new");
        assert_eq!(
            body,
            json!({"username": "o'brien", "domain": "EXAMPLE", "old_password": "old", "new_password": "new"})
        );
        let host = Host {
            id: "ws-1".into(),
            name: "WS 1".into(),
            hostname: "WS-1".into(),
            operations: Vec::new(),
        };
        assert_eq!(
            operate_body("bob", &host, Operation::PowerDown),
            json!({"username": "bob", "desktop_id": "ws-1", "hostname": "WS-1", "operation": "power-down"})
        );
        assert_eq!(
            parse_result(br#"{"result":"done","detail":"ok"}"#).unwrap(),
            ("done".to_owned(), "ok".to_owned())
        );
        assert_eq!(
            parse_result(br#"{"result":"changed"}"#).unwrap(),
            ("changed".to_owned(), String::new())
        );
        assert!(parse_result(b"{}").is_err());
        assert!(parse_result(br#"{"result":"done","detail":7}"#).is_err());
        assert!(parse_result(b"<html>").is_err());
    }

    #[test]
    fn desktop_ids_are_stable_and_bounded() {
        assert_eq!(desktop_id("WS-Art-1.example.com"), "ws-art-1.example.com");
        assert_eq!(desktop_id("10.0.0.7"), "10.0.0.7");
        let odd = desktop_id("fe80::1%eth0");
        assert!(odd.starts_with("fe80--1-eth0~"), "{odd}");
        assert_eq!(odd, desktop_id("FE80::1%ETH0"));
        assert_ne!(odd, desktop_id("fe80::1%eth1"));
        let long = "a".repeat(200);
        let id = desktop_id(&long);
        assert!(id.len() <= MAX_ID_BYTES, "{}", id.len());
        assert_ne!(id, desktop_id(&"a".repeat(201)));
    }
}
