//! The operator's `mapper.settings` object: ILS's `SimpleWebserviceMapper` keys plus
//! `timeout_ms`, parsed into typed values with errors that name the key.

use serde_json::{Map, Value};

use crate::url::Url;

/// Default per-request timeout. It stays under the host's default 5 s call deadline, so that a
/// slow service surfaces as this mapper's precise error rather than as a host timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 4000;

/// The longest accepted `timeout_ms`.
pub const MAX_TIMEOUT_MS: u32 = 60_000;

/// Validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The listing endpoint's base, without a trailing `/`.
    pub base_url: Url,
    /// The login endpoint that takes HTTP Basic credentials and sets the cookie.
    pub cookie_auth_url: Url,
    /// The name of the session cookie the login endpoint sets.
    pub cookie_name: String,
    /// Appended to the user name in the Basic credentials only (e.g. `@example.com`).
    pub auth_username_suffix: String,
    /// The logon domains offered to clients.
    pub domains: Vec<String>,
    /// Connect, first-byte and between-bytes timeout of each request.
    pub timeout_ms: u32,
}

const KEYS: &[&str] = &[
    "base_url",
    "cookie_auth_url",
    "cookie_name",
    "auth_username_suffix",
    "domains",
    "timeout_ms",
];

impl Settings {
    /// Parses and validates the settings JSON.
    pub fn parse(json: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("settings: invalid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("settings: expected an object".to_owned());
        };
        if let Some(unknown) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "{unknown}: unknown key (expected one of: {})",
                KEYS.join(", ")
            ));
        }

        let base_url = required_url(&map, "base_url")?;
        if base_url.has_query() {
            return Err("base_url: must not contain a query string".to_owned());
        }
        let base_url = base_url.without_trailing_slash();
        let cookie_auth_url = required_url(&map, "cookie_auth_url")?;

        let cookie_name = required_string(&map, "cookie_name")?;
        if cookie_name.is_empty() || !cookie_name.bytes().all(is_cookie_name_byte) {
            return Err("cookie_name: expected a non-empty cookie name (letters, digits and !#$%&'*+-.^_`|~)".to_owned());
        }

        let auth_username_suffix = match map.get("auth_username_suffix") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) if !s.contains(':') => s.clone(),
            Some(Value::String(_)) => {
                return Err(
                    "auth_username_suffix: must not contain ':' (HTTP Basic forbids it in user names)"
                        .to_owned(),
                );
            }
            Some(_) => return Err("auth_username_suffix: expected a string".to_owned()),
        };

        let domains = match map.get("domains") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) if !s.is_empty() => Ok(s.clone()),
                    _ => Err(format!("domains[{i}]: expected a non-empty string")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("domains: expected a list of strings".to_owned()),
        };

        let timeout_ms = match map.get("timeout_ms") {
            None | Some(Value::Null) => DEFAULT_TIMEOUT_MS,
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=MAX_TIMEOUT_MS).contains(n))
                .ok_or_else(|| {
                    format!("timeout_ms: expected an integer from 1 to {MAX_TIMEOUT_MS}")
                })?,
            Some(_) => {
                return Err(format!(
                    "timeout_ms: expected an integer from 1 to {MAX_TIMEOUT_MS}"
                ));
            }
        };

        Ok(Self {
            base_url,
            cookie_auth_url,
            cookie_name,
            auth_username_suffix,
            domains,
            timeout_ms,
        })
    }
}

fn required_string(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None => Err(format!("{key}: missing (a string is required)")),
        Some(_) => Err(format!("{key}: expected a string")),
    }
}

fn required_url(map: &Map<String, Value>, key: &str) -> Result<Url, String> {
    let text = required_string(map, key)?;
    Url::parse(&text).map_err(|e| format!("{key}: {e}"))
}

/// RFC 6265 cookie-name = token (RFC 7230 tchar).
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../example.settings.json");

    #[test]
    fn the_example_settings_parse() {
        let s = Settings::parse(EXAMPLE).unwrap();
        assert_eq!(s.base_url.to_string(), "https://hosts.example.com/api");
        assert_eq!(s.cookie_auth_url.authority(), "hosts.example.com");
        assert_eq!(s.cookie_name, "session");
        assert_eq!(s.auth_username_suffix, "@example.com");
        assert_eq!(s.domains, ["EXAMPLE"]);
        assert_eq!(s.timeout_ms, 3000);
    }

    #[test]
    fn optional_keys_have_defaults() {
        let s = Settings::parse(
            r#"{"base_url":"http://127.0.0.1:8080/","cookie_auth_url":"http://127.0.0.1:8080/login","cookie_name":"c"}"#,
        )
        .unwrap();
        assert_eq!(s.base_url.to_string(), "http://127.0.0.1:8080");
        assert_eq!(s.auth_username_suffix, "");
        assert!(s.domains.is_empty());
        assert_eq!(s.timeout_ms, DEFAULT_TIMEOUT_MS);
    }

    fn error_of(json: &str) -> String {
        Settings::parse(json).unwrap_err()
    }

    #[test]
    fn errors_name_the_key() {
        let base = r#""base_url":"http://h/","cookie_auth_url":"http://h/login","cookie_name":"c""#;
        assert!(error_of(&format!(r#"{{{base},"colour":1}}"#)).starts_with("colour: unknown key"));
        assert_eq!(
            error_of(&format!(r#"{{{base},"domains":["A",3]}}"#)),
            "domains[1]: expected a non-empty string"
        );
        assert_eq!(
            error_of(&format!(r#"{{{base},"domains":"A"}}"#)),
            "domains: expected a list of strings"
        );
        assert!(error_of(&format!(r#"{{{base},"timeout_ms":0}}"#)).starts_with("timeout_ms:"));
        assert!(error_of(&format!(r#"{{{base},"timeout_ms":"5"}}"#)).starts_with("timeout_ms:"));
        assert!(
            error_of(&format!(r#"{{{base},"auth_username_suffix":"a:b"}}"#))
                .starts_with("auth_username_suffix:")
        );
        assert_eq!(
            error_of(r#"{"cookie_auth_url":"http://h/login","cookie_name":"c"}"#),
            "base_url: missing (a string is required)"
        );
        assert!(
            error_of(
                r#"{"base_url":"ftp://h","cookie_auth_url":"http://h/login","cookie_name":"c"}"#
            )
            .starts_with("base_url: ")
        );
        assert!(
            error_of(r#"{"base_url":"http://h?x=1","cookie_auth_url":"http://h/login","cookie_name":"c"}"#)
                .starts_with("base_url: must not contain a query")
        );
        assert!(
            error_of(
                r#"{"base_url":"http://h","cookie_auth_url":"http://h/login","cookie_name":"a b"}"#
            )
            .starts_with("cookie_name: ")
        );
        assert_eq!(error_of("[]"), "settings: expected an object");
        assert!(error_of("{").starts_with("settings: invalid JSON"));
    }
}
