//! Parsing and validation of the example mapper's settings.
//!
//! The operator's `mapper.settings` object arrives as JSON text. Every mistake is reported
//! with the path of the offending key, because a `configure` error at start-up is all the
//! operator sees. The schema and the messages are those of the JavaScript, Python and Go
//! examples.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

/// The longest desktop id the contract allows, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// The longest disclaimer the contract allows, in bytes.
pub const MAX_DISCLAIMER_BYTES: usize = 4096;

/// `min_password_length` when the settings name none.
pub const DEFAULT_MIN_PASSWORD_LENGTH: usize = 12;

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
    /// The TOTP secret as written (base32), checked by the host's `verify-totp`.
    pub totp_secret: Option<String>,
    /// A disabled user is refused after a correct password.
    pub disabled: bool,
    /// The password is right but must be changed (until a changed one is stored).
    pub password_expired: bool,
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
    /// The notice every successful password step shows first, if any.
    pub disclaimer: Option<String>,
    /// The power API's base URL (no trailing slash); when set, desktops offer operations.
    pub power_api: Option<String>,
    /// The shortest new password `change-password` accepts, in characters.
    pub min_password_length: usize,
}

impl Settings {
    /// Parses and validates the settings JSON; the error names the first offending key.
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let raw: Value = match serde_json::from_str(text) {
            Ok(raw) => raw,
            Err(err) => return fail("settings", format!("not valid JSON ({err})")),
        };
        let top = object(&raw, "settings")?;
        allow_keys(
            top,
            "",
            &[
                "users",
                "groups",
                "domains",
                "logon_domain",
                "disclaimer",
                "power_api",
                "min_password_length",
            ],
        )?;

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
        let disclaimer = match top.get("disclaimer") {
            None => None,
            Some(Value::String(text)) if !text.is_empty() && text.len() <= MAX_DISCLAIMER_BYTES => {
                Some(text.clone())
            }
            Some(_) => {
                return fail(
                    "disclaimer",
                    format!("expected a non-empty string of at most {MAX_DISCLAIMER_BYTES} bytes"),
                );
            }
        };
        let power_api = match top.get("power_api") {
            None => None,
            Some(Value::String(url)) if is_base_url(url) => Some(url.clone()),
            Some(_) => {
                return fail(
                    "power_api",
                    "expected an http:// or https:// URL without a trailing slash",
                );
            }
        };
        let min_password_length = match top.get("min_password_length") {
            None => DEFAULT_MIN_PASSWORD_LENGTH,
            Some(value) => match whole_number(value, 8, 128) {
                Some(length) => usize::from(length),
                None => {
                    return fail(
                        "min_password_length",
                        "expected a whole number between 8 and 128",
                    );
                }
            },
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
            disclaimer,
            power_api,
            min_password_length,
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
        Some(port) => Some(whole_number(port, 1, 65535).ok_or_else(|| SettingsError {
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

/// A JSON number that is a whole number in `min..=max`; `60443.0` counts, as it does in
/// JavaScript.
fn whole_number(value: &Value, min: u16, max: u16) -> Option<u16> {
    let number = value.as_number()?;
    let whole = match number.as_u64() {
        Some(whole) => whole,
        None => {
            let float = number.as_f64()?;
            if float.fract() != 0.0 || !(f64::from(min)..=f64::from(max)).contains(&float) {
                return None;
            }
            float as u64
        }
    };
    u16::try_from(whole)
        .ok()
        .filter(|n| (min..=max).contains(n))
}

/// An `http://` or `https://` URL with a host, without a trailing slash, a query, a fragment,
/// user info, spaces or control characters: a base that `/machines/...` is appended to.
fn is_base_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    !authority.is_empty()
        && !authority.contains('@')
        && !url.ends_with('/')
        && !url
            .bytes()
            .any(|b| b.is_ascii_control() || matches!(b, b' ' | b'?' | b'#'))
}

/// A TOTP secret as `otpauth://` URIs carry it: base32 letters and digits (either case), with
/// spaces and `=` padding ignored, as the host's `verify-totp` reads it.
fn is_base32_secret(secret: &str) -> bool {
    let mut letters = 0;
    for c in secret.chars() {
        match c {
            'A'..='Z' | 'a'..='z' | '2'..='7' => letters += 1,
            ' ' | '=' => {}
            _ => return false,
        }
    }
    letters > 0
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
            "password_expired",
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
    let password_expired = boolean(
        user.get("password_expired"),
        &format!("{path}.password_expired"),
    )?;
    let totp_secret = match user.get("totp_secret") {
        None => None,
        Some(secret) => {
            let secret_path = format!("{path}.totp_secret");
            let secret = non_empty_string(Some(secret), &secret_path)?;
            if !is_base32_secret(&secret) {
                return fail(secret_path, "expected a base32 secret");
            }
            Some(secret)
        }
    };
    if mfa && totp_secret.is_none() {
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
        totp_secret,
        disabled,
        password_expired,
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
        assert_eq!(s.users.len(), 4);
        assert_eq!(s.domains, ["EXAMPLE"]);
        assert_eq!(s.logon_domain, "EXAMPLE");
        assert_eq!(
            s.disclaimer.as_deref(),
            Some("This workstation is for authorised studio work only. Sessions may be monitored.")
        );
        assert_eq!(s.power_api, None);
        assert_eq!(s.min_password_length, 12);
        let alice = &s.users["alice"];
        assert!(alice.mfa && !alice.disabled && !alice.password_expired);
        assert_eq!(alice.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
        assert!(s.users["carol"].disabled);
        let dave = &s.users["dave"];
        assert!(dave.password_expired && !dave.mfa);
        assert_eq!(dave.groups, ["artists"]);
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
                "extra: unknown key (expected one of: users, groups, domains, logon_domain, disclaimer, power_api, min_password_length)",
            ),
            (
                r#"{"users": [], "disclaimer": 1}"#,
                "disclaimer: expected a non-empty string of at most 4096 bytes",
            ),
            (
                r#"{"users": [], "disclaimer": ""}"#,
                "disclaimer: expected a non-empty string of at most 4096 bytes",
            ),
            (
                r#"{"users": [], "power_api": "http://power.example.com/"}"#,
                "power_api: expected an http:// or https:// URL without a trailing slash",
            ),
            (
                r#"{"users": [], "power_api": "ftp://power.example.com"}"#,
                "power_api: expected an http:// or https:// URL without a trailing slash",
            ),
            (
                r#"{"users": [], "min_password_length": 7}"#,
                "min_password_length: expected a whole number between 8 and 128",
            ),
            (
                r#"{"users": [], "min_password_length": 129}"#,
                "min_password_length: expected a whole number between 8 and 128",
            ),
            (
                r#"{"users": [], "min_password_length": "12"}"#,
                "min_password_length: expected a whole number between 8 and 128",
            ),
            (
                r#"{"users": [{"username": "u", "password_hash": "h", "password_expired": 1}]}"#,
                "users[0].password_expired: expected true or false",
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
        let port = |value| whole_number(&value, 1, 65535);
        assert_eq!(port(serde_json::json!(60443)), Some(60443));
        assert_eq!(port(serde_json::json!(60443.0)), Some(60443));
        assert_eq!(port(serde_json::json!(1.5)), None);
        assert_eq!(port(serde_json::json!(65536)), None);
        assert_eq!(port(serde_json::json!(0)), None);
        assert_eq!(port(serde_json::json!(-1)), None);
        assert_eq!(port(serde_json::json!(true)), None);
    }

    #[test]
    fn the_new_keys_parse() {
        let s = Settings::parse(
            r#"{"users": [], "power_api": "https://power.example.com:8443/v1", "min_password_length": 16.0}"#,
        )
        .unwrap();
        assert_eq!(
            s.power_api.as_deref(),
            Some("https://power.example.com:8443/v1")
        );
        assert_eq!(s.min_password_length, 16);
        assert_eq!(s.disclaimer, None);
        let long = format!(r#"{{"users": [], "disclaimer": "{}"}}"#, "x".repeat(4097));
        assert!(Settings::parse(&long).is_err());
        assert!(is_base32_secret("jbsw y3dp ehpk 3pxp===="));
        assert!(!is_base32_secret("===="));
    }
}
