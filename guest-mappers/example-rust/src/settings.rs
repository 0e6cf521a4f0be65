//! Parsing and validation of the example mapper's settings.
//!
//! The operator's `mapper.settings` object arrives as JSON text. Every mistake is reported
//! with the path of the offending key, because a `configure` error at start-up is all the
//! operator sees. The schema and the messages are those of the JavaScript, Python and Go
//! examples.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::totp::base32_decode;

/// The longest desktop id the contract allows, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// A settings mistake: `path` names the key, `message` says what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The offending key, such as `users[1].groups`.
    pub path: String,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for SettingsError {}

fn fail<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, SettingsError> {
    Err(SettingsError {
        path: path.into(),
        message: message.into(),
    })
}

/// One desktop of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopEntry {
    /// The stable id derived from the host name ([`desktop_id`]).
    pub id: String,
    /// The name shown to the user.
    pub name: String,
    /// The PCoIP agent's host name or address.
    pub hostname: String,
    /// The agent's port; `None` for the broker default.
    pub agent_port: Option<u16>,
}

/// One user of the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name, matched exactly.
    pub username: String,
    /// Checked by the host's `verify-password`, never here.
    pub password_hash: String,
    /// The user's groups, each a key of [`Settings::groups`].
    pub groups: Vec<String>,
    /// Whether a TOTP code is asked after the password.
    pub mfa: bool,
    /// The decoded TOTP secret.
    pub totp_key: Option<Vec<u8>>,
    /// A disabled user is refused after a correct password.
    pub disabled: bool,
}

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The users, by name.
    pub users: HashMap<String, User>,
    /// The groups and their desktops, in the operator's order.
    pub groups: Vec<(String, Vec<DesktopEntry>)>,
    /// The logon domains offered in `hello-resp`.
    pub domains: Vec<String>,
    /// The domain put in accepted identities.
    pub logon_domain: String,
}

impl Settings {
    /// Parses and validates the settings JSON; the error names the first offending key.
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let raw: Value = match serde_json::from_str(text) {
            Ok(raw) => raw,
            Err(err) => return fail("settings", format!("not valid JSON ({err})")),
        };
        let top = object(&raw, "settings")?;
        allow_keys(top, "", &["users", "groups", "domains", "logon_domain"])?;

        let groups = match top.get("groups") {
            None => Vec::new(),
            Some(value) => parse_groups(value)?,
        };
        let domains = match top.get("domains") {
            None => Vec::new(),
            Some(value) => string_list(value, "domains")?,
        };
        let logon_domain = match top.get("logon_domain") {
            None => String::new(),
            Some(Value::String(domain)) => domain.clone(),
            Some(_) => return fail("logon_domain", "expected a string"),
        };

        let entries = match top.get("users") {
            None => return fail("users", "missing (expected a list of users)"),
            Some(Value::Array(entries)) => entries,
            Some(_) => return fail("users", "expected a list of users"),
        };
        let mut users = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let user = parse_user(entry, &format!("users[{index}]"), &groups)?;
            if users.contains_key(&user.username) {
                return fail(
                    format!("users[{index}].username"),
                    format!("duplicate user \"{}\"", user.username),
                );
            }
            users.insert(user.username.clone(), user);
        }
        Ok(Self {
            users,
            groups,
            domains,
            logon_domain,
        })
    }

    /// The desktops of a user: the union of its groups' desktops, in group order, without
    /// duplicates.
    pub fn desktops_of(&self, user: &User) -> Vec<&DesktopEntry> {
        let mut result: Vec<&DesktopEntry> = Vec::new();
        for group in &user.groups {
            let desktops = self
                .groups
                .iter()
                .find(|(name, _)| name == group)
                .map(|(_, desktops)| desktops.as_slice())
                .unwrap_or_default();
            for desktop in desktops {
                if !result.iter().any(|seen| seen.id == desktop.id) {
                    result.push(desktop);
                }
            }
        }
        result
    }
}

/// The stable desktop id: the host name in lower case with every character other than a
/// letter, a digit or `-` replaced by `-` (`ws-art-1.example.com` -> `ws-art-1-example-com`).
/// Zero clients remember desktops by id, so it must not depend on list order.
pub fn desktop_id(hostname: &str) -> String {
    hostname
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn parse_groups(value: &Value) -> Result<Vec<(String, Vec<DesktopEntry>)>, SettingsError> {
    let groups_object = object(value, "groups")?;
    let mut groups = Vec::new();
    // Which desktop claimed each id, so that two different desktops cannot share one.
    let mut owners: HashMap<String, (String, DesktopEntry)> = HashMap::new();
    for (group_name, desktops) in groups_object {
        let group_path = format!("groups.{group_name}");
        let Value::Array(desktops) = desktops else {
            return fail(group_path, "expected a list of desktops");
        };
        let mut entries = Vec::new();
        for (index, item) in desktops.iter().enumerate() {
            let path = format!("{group_path}[{index}]");
            let desktop = parse_desktop(item, &path)?;
            match owners.get(&desktop.id) {
                None => {
                    owners.insert(desktop.id.clone(), (path, desktop.clone()));
                }
                Some((owner_path, owner))
                    if owner.name != desktop.name || owner.agent_port != desktop.agent_port =>
                {
                    return fail(
                        format!("{path}.hostname"),
                        format!(
                            "desktop id \"{}\" is already used by {owner_path} with a different name or agent_port",
                            desktop.id
                        ),
                    );
                }
                Some(_) => {}
            }
            entries.push(desktop);
        }
        groups.push((group_name.clone(), entries));
    }
    Ok(groups)
}

fn parse_desktop(value: &Value, path: &str) -> Result<DesktopEntry, SettingsError> {
    let desktop = object(value, path)?;
    allow_keys(desktop, path, &["name", "hostname", "agent_port"])?;
    let name = non_empty_string(desktop.get("name"), &format!("{path}.name"))?;
    let hostname = non_empty_string(desktop.get("hostname"), &format!("{path}.hostname"))?;
    if !hostname
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return fail(
            format!("{path}.hostname"),
            "expected a host name or an IP address",
        );
    }
    let id = desktop_id(&hostname);
    if id.len() > MAX_ID_BYTES {
        return fail(
            format!("{path}.hostname"),
            format!("longer than {MAX_ID_BYTES} characters"),
        );
    }
    let agent_port = match desktop.get("agent_port") {
        None => None,
        Some(port) => Some(port_number(port).ok_or_else(|| SettingsError {
            path: format!("{path}.agent_port"),
            message: "expected a port number between 1 and 65535".to_owned(),
        })?),
    };
    Ok(DesktopEntry {
        id,
        name,
        hostname,
        agent_port,
    })
}

/// A JSON number that is a whole port number; `60443.0` counts, as it does in JavaScript.
fn port_number(value: &Value) -> Option<u16> {
    let number = value.as_number()?;
    let whole = match number.as_u64() {
        Some(whole) => whole,
        None => {
            let float = number.as_f64()?;
            if float.fract() != 0.0 || !(1.0..=65535.0).contains(&float) {
                return None;
            }
            float as u64
        }
    };
    u16::try_from(whole).ok().filter(|port| *port >= 1)
}

fn parse_user(
    value: &Value,
    path: &str,
    groups: &[(String, Vec<DesktopEntry>)],
) -> Result<User, SettingsError> {
    let user = object(value, path)?;
    allow_keys(
        user,
        path,
        &[
            "username",
            "password_hash",
            "groups",
            "mfa",
            "totp_secret",
            "disabled",
        ],
    )?;
    let username = non_empty_string(user.get("username"), &format!("{path}.username"))?;
    let password_hash =
        non_empty_string(user.get("password_hash"), &format!("{path}.password_hash"))?;
    let user_groups = match user.get("groups") {
        None => Vec::new(),
        Some(value) => string_list(value, &format!("{path}.groups"))?,
    };
    for (index, group) in user_groups.iter().enumerate() {
        if !groups.iter().any(|(name, _)| name == group) {
            return fail(
                format!("{path}.groups[{index}]"),
                format!("unknown group \"{group}\""),
            );
        }
    }
    let mfa = boolean(user.get("mfa"), &format!("{path}.mfa"))?;
    let disabled = boolean(user.get("disabled"), &format!("{path}.disabled"))?;
    let totp_key = match user.get("totp_secret") {
        None => None,
        Some(secret) => {
            let secret_path = format!("{path}.totp_secret");
            let secret = non_empty_string(Some(secret), &secret_path)?;
            match base32_decode(&secret) {
                Some(key) if !key.is_empty() => Some(key),
                _ => return fail(secret_path, "expected a base32 secret"),
            }
        }
    };
    if mfa && totp_key.is_none() {
        return fail(
            format!("{path}.totp_secret"),
            "missing (required when mfa is true)",
        );
    }
    Ok(User {
        username,
        password_hash,
        groups: user_groups,
        mfa,
        totp_key,
        disabled,
    })
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, SettingsError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => fail(path, "expected an object"),
    }
}

fn allow_keys(
    value: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<(), SettingsError> {
    for key in value.keys() {
        if !allowed.contains(&key.as_str()) {
            let key_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            return fail(
                key_path,
                format!("unknown key (expected one of: {})", allowed.join(", ")),
            );
        }
    }
    Ok(())
}

fn non_empty_string(value: Option<&Value>, path: &str) -> Result<String, SettingsError> {
    match value {
        None => fail(path, "missing (expected a non-empty string)"),
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        Some(_) => fail(path, "expected a non-empty string"),
    }
}

/// An optional boolean, false when absent.
fn boolean(value: Option<&Value>, path: &str) -> Result<bool, SettingsError> {
    match value {
        None => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(_) => fail(path, "expected true or false"),
    }
}

fn string_list(value: &Value, path: &str) -> Result<Vec<String>, SettingsError> {
    let invalid = || SettingsError {
        path: path.to_owned(),
        message: "expected a list of strings".to_owned(),
    };
    let Value::Array(items) = value else {
        return Err(invalid());
    };
    items
        .iter()
        .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    const EXAMPLE: &str = include_str!("../example.settings.json");

    fn error(json: &str) -> String {
        Settings::parse(json).unwrap_err().to_string()
    }

    #[test]
    fn the_example_settings_parse() {
        let s = Settings::parse(EXAMPLE).unwrap();
        assert_eq!(s.users.len(), 3);
        assert_eq!(s.domains, ["EXAMPLE"]);
        assert_eq!(s.logon_domain, "EXAMPLE");
        let alice = &s.users["alice"];
        assert!(alice.mfa && !alice.disabled);
        assert_eq!(
            alice.totp_key.as_deref(),
            Some(&b"Hello!\xde\xad\xbe\xef"[..])
        );
        assert!(s.users["carol"].disabled);
        let bob: Vec<(&str, Option<u16>)> = s
            .desktops_of(&s.users["bob"])
            .iter()
            .map(|d| (d.id.as_str(), d.agent_port))
            .collect();
        assert_eq!(
            bob,
            [
                ("ws-art-1-example-com", None),
                ("render-7-example-com", Some(60443))
            ]
        );
    }

    #[test]
    fn desktop_ids_are_derived_from_the_host_name() {
        assert_eq!(desktop_id("WS-Art-1.Example.com"), "ws-art-1-example-com");
        assert_eq!(desktop_id("10.0.0.7"), "10-0-0-7");
        assert_eq!(desktop_id("::ffff:127.0.0.2"), "--ffff-127-0-0-2");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[]", "settings: expected an object"),
            ("{", "settings: not valid JSON"),
            ("{}", "users: missing (expected a list of users)"),
            (r#"{"users": {}}"#, "users: expected a list of users"),
            (
                r#"{"users": [], "extra": 1}"#,
                "extra: unknown key (expected one of: users, groups, domains, logon_domain)",
            ),
            (
                r#"{"users": [], "domains": [1]}"#,
                "domains: expected a list of strings",
            ),
            (
                r#"{"users": [], "logon_domain": null}"#,
                "logon_domain: expected a string",
            ),
            (
                r#"{"users": [], "groups": null}"#,
                "groups: expected an object",
            ),
            (
                r#"{"users": [], "groups": {"g": {}}}"#,
                "groups.g: expected a list of desktops",
            ),
            (
                r#"{"users": [], "groups": {"g": [{"name": "n"}]}}"#,
                "groups.g[0].hostname: missing (expected a non-empty string)",
            ),
            (
                r#"{"users": [], "groups": {"g": [{"name": "n", "hostname": "a b"}]}}"#,
                "groups.g[0].hostname: expected a host name or an IP address",
            ),
            (
                r#"{"users": [], "groups": {"g": [{"name": "n", "hostname": "h", "agent_port": 0}]}}"#,
                "groups.g[0].agent_port: expected a port number between 1 and 65535",
            ),
            (
                r#"{"users": [], "groups": {"g": [{"name": "n", "hostname": "h", "agent_port": null}]}}"#,
                "groups.g[0].agent_port: expected a port number between 1 and 65535",
            ),
            (
                r#"{"users": [], "groups": {"g": [{"name": "n", "hostname": "a.b"}], "h": [{"name": "m", "hostname": "a-b"}]}}"#,
                "groups.h[0].hostname: desktop id \"a-b\" is already used by groups.g[0] with a different name or agent_port",
            ),
            (
                r#"{"users": [{"username": "u", "password_hash": "h", "groups": ["nope"]}]}"#,
                "users[0].groups[0]: unknown group \"nope\"",
            ),
            (
                r#"{"users": [{"username": "u", "password_hash": "h", "groups": "g"}]}"#,
                "users[0].groups: expected a list of strings",
            ),
            (
                r#"{"users": [{"username": "u", "password_hash": "h", "mfa": true}]}"#,
                "users[0].totp_secret: missing (required when mfa is true)",
            ),
            (
                r#"{"users": [{"username": "u", "password_hash": "h", "totp_secret": "0189"}]}"#,
                "users[0].totp_secret: expected a base32 secret",
            ),
            (
                r#"{"users": [{"username": "u", "password_hash": "h", "disabled": "yes"}]}"#,
                "users[0].disabled: expected true or false",
            ),
            (
                r#"{"users": [{"username": "u", "password_hash": ""}]}"#,
                "users[0].password_hash: expected a non-empty string",
            ),
            (
                r#"{"users": [{"username": "u", "password_hash": "h"}, {"username": "u", "password_hash": "h"}]}"#,
                "users[1].username: duplicate user \"u\"",
            ),
            (
                r#"{"users": [{"username": "u", "password_hash": "h", "zzz": 1, "aaa": 2}]}"#,
                "users[0].zzz: unknown key",
            ),
        ];
        for (json, expected) in cases {
            let got = error(json);
            assert!(
                got.starts_with(expected),
                "{json}: got {got:?}, want {expected:?}"
            );
        }
    }

    #[test]
    fn the_same_desktop_may_appear_in_two_groups() {
        let s = Settings::parse(
            r#"{"users": [{"username": "u", "password_hash": "h", "groups": ["g", "h"]}],
                "groups": {"g": [{"name": "n", "hostname": "x"}], "h": [{"name": "n", "hostname": "x"}]}}"#,
        )
        .unwrap();
        assert_eq!(s.desktops_of(&s.users["u"]).len(), 1);
    }

    #[test]
    fn ports_are_whole_numbers_in_range() {
        assert_eq!(port_number(&serde_json::json!(60443)), Some(60443));
        assert_eq!(port_number(&serde_json::json!(60443.0)), Some(60443));
        assert_eq!(port_number(&serde_json::json!(1.5)), None);
        assert_eq!(port_number(&serde_json::json!(65536)), None);
        assert_eq!(port_number(&serde_json::json!(-1)), None);
        assert_eq!(port_number(&serde_json::json!(true)), None);
    }
}
