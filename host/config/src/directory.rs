//! `directory`: the studio's LDAP and Active Directory servers, as named profiles that mappers
//! call through the WIT `directory` interface.
//!
//! The raw shape ([`RawDirectory`]) is parsed with the rest of the file; [`directory`] validates
//! it into [`DirectoryConfig`]. The service account's password is never in the file: a profile
//! names a file (`password_file`) or an environment variable (`password_env`) that holds it,
//! read by `interstate-directory` when it builds the profile. The whole section is restart only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::SettingsError;
use crate::origin::Origin;
use crate::validate::parse_fingerprint;

/// `directory.profiles.*.timeout_ms` when unset: the deadline of one connection or operation.
pub const DIRECTORY_TIMEOUT_MS: u64 = 5_000;
/// `directory.profiles.*.pool_size` when unset: service-account connections kept per profile.
pub const DIRECTORY_POOL_SIZE: usize = 4;
/// Most service-account connections a profile may keep.
pub const DIRECTORY_MAX_POOL_SIZE: usize = 64;

/// `directory`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDirectory {
    /// The profiles, by the name mappers use.
    pub profiles: BTreeMap<String, RawDirectoryProfile>,
}

impl RawDirectory {
    /// True when no profile is configured (the section is then left out when printed).
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

/// `directory.profiles.NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDirectoryProfile {
    /// `ad` (Active Directory) or `ldap` (OpenLDAP, FreeIPA, 389 DS, ...).
    pub kind: DirectoryKind,
    /// `ldaps://host:636` or `ldap://host:389` URLs, tried in order (failover).
    pub servers: Vec<String>,
    /// Where users are searched.
    pub base_dn: String,
    /// The service account's DN; unset for anonymous searches.
    pub bind_dn: Option<String>,
    /// A file holding the service account's password (one line).
    pub password_file: Option<String>,
    /// An environment variable holding the service account's password.
    pub password_env: Option<String>,
    /// Bind directly as this name, `{username}` replaced by the login (RFC 4514-escaped), such
    /// as `uid={username},ou=people,dc=example,dc=com`, instead of searching for the user first.
    pub bind_pattern: Option<String>,
    /// Attributes a login name may match (any of them); unset: `sAMAccountName` (ad), `uid`
    /// (ldap).
    pub login_attributes: Option<Vec<String>>,
    /// An extra filter every user must match, such as `(memberOf=cn=vdi,ou=groups,dc=x)`; unset:
    /// `(&(objectCategory=person)(objectClass=user))` (ad), none (ldap).
    pub user_filter: Option<String>,
    /// Attributes returned with a user.
    pub attributes: Vec<String>,
    /// How groups are found.
    pub groups: RawDirectoryGroups,
    /// Transport security.
    pub tls: RawDirectoryTls,
    /// Deadline of one connection or operation, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Service-account connections kept open; 0: a new connection for every call.
    pub pool_size: Option<usize>,
}

/// `directory.profiles.NAME.groups`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDirectoryGroups {
    /// `ad`, `member` or `memberOf`; unset: `ad` for ad profiles, `member` otherwise.
    pub mode: Option<GroupMode>,
    /// Where groups are searched; unset: the profile's `base_dn`.
    pub base_dn: Option<String>,
}

/// `directory.profiles.NAME.tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDirectoryTls {
    /// Upgrade `ldap://` servers with StartTLS.
    pub starttls: bool,
    /// PEM file of the CA that signs the servers' certificates.
    pub ca_file: Option<String>,
    /// SHA-256 fingerprints of accepted server certificates (one string or a list).
    pub pinned_sha256: Option<OneOrMany>,
    /// Allow `ldap://` without StartTLS: passwords cross the network in clear.
    pub insecure_plaintext: bool,
}

/// One string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    fn as_slice(&self) -> &[String] {
        match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        }
    }
}

/// The kind of directory server (`kind`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryKind {
    /// Active Directory (or Samba AD): bind sub-codes, `unicodePwd`, in-chain group search.
    Ad,
    /// Any other LDAP server: ppolicy controls, Password Modify.
    #[default]
    Ldap,
}

/// How a user's groups are found (`groups.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GroupMode {
    /// One search with `LDAP_MATCHING_RULE_IN_CHAIN` (Active Directory).
    #[serde(rename = "ad")]
    Ad,
    /// Groups whose `member` names the user, then groups naming those, breadth first.
    #[serde(rename = "member")]
    Member,
    /// The user's `memberOf`, then each group's `memberOf`, breadth first.
    #[serde(rename = "memberOf")]
    MemberOf,
}

/// Where the service account's password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A file (resolved against the settings file's folder); its first line is the password.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// How a profile's servers are reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryTrust {
    /// Certificates signed by a CA in this PEM file, for the server's name.
    CaFile(PathBuf),
    /// Certificates whose SHA-256 is one of these.
    Pinned(Vec<[u8; 32]>),
    /// No TLS at all (`insecure_plaintext`): only `ldap://` servers without StartTLS.
    Plaintext,
}

/// One validated profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryProfileConfig {
    /// The kind of server.
    pub kind: DirectoryKind,
    /// Server URLs, in failover order.
    pub servers: Vec<String>,
    /// Where users are searched.
    pub base_dn: String,
    /// The service account, with where its password is; `None` for anonymous searches.
    pub service_account: Option<(String, PasswordSource)>,
    /// Attributes a login may match.
    pub login_attributes: Vec<String>,
    /// Extra filter users must match (already parenthesised), if any.
    pub user_filter: Option<String>,
    /// The direct-bind pattern (holds `{username}` once), if any.
    pub bind_pattern: Option<String>,
    /// Attributes returned with a user.
    pub attributes: Vec<String>,
    /// Group lookup mode.
    pub group_mode: GroupMode,
    /// Where groups are searched.
    pub group_base_dn: String,
    /// Upgrade `ldap://` with StartTLS.
    pub starttls: bool,
    /// How certificates are checked (or no TLS).
    pub trust: DirectoryTrust,
    /// Deadline of one connection or operation.
    pub timeout: Duration,
    /// Service-account connections kept; 0 for none.
    pub pool_size: usize,
}

/// The validated `directory` section (restart only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryConfig {
    /// Profiles by name.
    pub profiles: BTreeMap<String, DirectoryProfileConfig>,
}

/// Validates `directory`.
pub(crate) fn directory(
    raw: &RawDirectory,
    origin: &Origin<'_>,
) -> Result<DirectoryConfig, SettingsError> {
    let mut profiles = BTreeMap::new();
    for (name, profile) in &raw.profiles {
        let key = format!("directory.profiles.{name}");
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(origin.bad(
                &key,
                "a profile name is 1 to 64 letters, digits, '-', '_' or '.'",
            ));
        }
        profiles.insert(name.clone(), self::profile(profile, &key, origin)?);
    }
    Ok(DirectoryConfig { profiles })
}

fn profile(
    raw: &RawDirectoryProfile,
    key: &str,
    origin: &Origin<'_>,
) -> Result<DirectoryProfileConfig, SettingsError> {
    let tls = &raw.tls;
    let pins = match &tls.pinned_sha256 {
        None => Vec::new(),
        Some(pins) => pins
            .as_slice()
            .iter()
            .enumerate()
            .map(|(i, text)| {
                parse_fingerprint(text).ok_or_else(|| {
                    origin.bad(
                        format_args!("{key}.tls.pinned_sha256[{i}]"),
                        format!("expected 64 hex digits (colons allowed), got {text:?}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let ca_file = tls.ca_file.as_deref().filter(|f| !f.is_empty());
    let trust = match (ca_file, pins.is_empty(), tls.insecure_plaintext) {
        (Some(_), false, _) => {
            return Err(origin.bad(
                format_args!("{key}.tls"),
                "give either ca_file or pinned_sha256, not both",
            ));
        }
        (Some(file), true, false) => DirectoryTrust::CaFile(origin.resolve(file)),
        (None, false, false) => DirectoryTrust::Pinned(pins),
        (None, true, true) => DirectoryTrust::Plaintext,
        (_, _, true) => {
            return Err(origin.bad(
                format_args!("{key}.tls.insecure_plaintext"),
                "insecure_plaintext means no TLS: remove ca_file and pinned_sha256",
            ));
        }
        (None, true, false) => {
            return Err(origin.bad(
                format_args!("{key}.tls"),
                "expected tls.ca_file (the CA's PEM file) or tls.pinned_sha256; plain ldap:// \
                 needs \"insecure_plaintext\": true",
            ));
        }
    };
    if tls.starttls && trust == DirectoryTrust::Plaintext {
        return Err(origin.bad(
            format_args!("{key}.tls.starttls"),
            "StartTLS needs tls.ca_file or tls.pinned_sha256, not insecure_plaintext",
        ));
    }
    if raw.servers.is_empty() {
        return Err(origin.bad(
            format_args!("{key}.servers"),
            "expected at least one server URL, such as \"ldaps://dc1.example.com\"",
        ));
    }
    for (i, url) in raw.servers.iter().enumerate() {
        server_url(url, tls.starttls, &trust)
            .map_err(|message| origin.bad(format_args!("{key}.servers[{i}]"), message))?;
    }
    if !dn_shape(&raw.base_dn) {
        return Err(origin.bad(
            format_args!("{key}.base_dn"),
            "expected a DN such as \"dc=example,dc=com\"",
        ));
    }
    let service_account = match raw.bind_dn.as_deref().filter(|dn| !dn.is_empty()) {
        None => {
            if raw.password_file.is_some() || raw.password_env.is_some() {
                return Err(origin.bad(
                    format_args!("{key}.bind_dn"),
                    "a password without bind_dn: name the service account",
                ));
            }
            None
        }
        Some(dn) => {
            if !dn_shape(dn) {
                return Err(origin.bad(format_args!("{key}.bind_dn"), "expected a DN"));
            }
            let source = match (
                raw.password_file.as_deref().filter(|f| !f.is_empty()),
                raw.password_env.as_deref().filter(|v| !v.is_empty()),
            ) {
                (Some(file), None) => PasswordSource::File(origin.resolve(file)),
                (None, Some(var)) => PasswordSource::Env(var.to_owned()),
                (Some(_), Some(_)) => {
                    return Err(origin.bad(
                        format_args!("{key}.password_file"),
                        "give either password_file or password_env, not both",
                    ));
                }
                (None, None) => {
                    return Err(origin.bad(
                        format_args!("{key}.password_file"),
                        "the service account needs password_file (a file holding the password) \
                         or password_env (an environment variable)",
                    ));
                }
            };
            Some((dn.to_owned(), source))
        }
    };
    let login_attributes = match &raw.login_attributes {
        None => vec![match raw.kind {
            DirectoryKind::Ad => "sAMAccountName".to_owned(),
            DirectoryKind::Ldap => "uid".to_owned(),
        }],
        Some(list) if list.is_empty() => {
            return Err(origin.bad(
                format_args!("{key}.login_attributes"),
                "expected at least one attribute, such as \"sAMAccountName\"",
            ));
        }
        Some(list) => list.clone(),
    };
    for (name, list) in [
        ("login_attributes", &login_attributes),
        ("attributes", &raw.attributes),
    ] {
        for (i, attribute) in list.iter().enumerate() {
            if !attribute_name(attribute) {
                return Err(origin.bad(
                    format_args!("{key}.{name}[{i}]"),
                    format!("expected an attribute name such as \"mail\", got {attribute:?}"),
                ));
            }
        }
    }
    let user_filter = match raw.user_filter.as_deref() {
        Some("") => None,
        Some(filter) if filter_shape(filter) => Some(filter.to_owned()),
        Some(filter) => {
            return Err(origin.bad(
                format_args!("{key}.user_filter"),
                format!(
                    "expected one parenthesised LDAP filter such as \"(objectClass=person)\", got {filter:?}"
                ),
            ));
        }
        None => match raw.kind {
            DirectoryKind::Ad => Some("(&(objectCategory=person)(objectClass=user))".to_owned()),
            DirectoryKind::Ldap => None,
        },
    };
    let bind_pattern = match raw.bind_pattern.as_deref() {
        None | Some("") => None,
        Some(pattern) if pattern.matches("{username}").count() == 1 => Some(pattern.to_owned()),
        Some(pattern) => {
            return Err(origin.bad(
                format_args!("{key}.bind_pattern"),
                format!(
                    "expected {{username}} exactly once, such as \"uid={{username}},ou=people,dc=example,dc=com\", got {pattern:?}"
                ),
            ));
        }
    };
    let group_base_dn = match raw.groups.base_dn.as_deref() {
        None | Some("") => raw.base_dn.clone(),
        Some(dn) if dn_shape(dn) => dn.to_owned(),
        Some(_) => {
            return Err(origin.bad(format_args!("{key}.groups.base_dn"), "expected a DN"));
        }
    };
    let timeout_ms = raw.timeout_ms.unwrap_or(DIRECTORY_TIMEOUT_MS);
    origin.within(
        &format!("{key}.timeout_ms"),
        timeout_ms,
        100..=120_000,
        "expected 100 to 120000 milliseconds",
    )?;
    let pool_size = raw.pool_size.unwrap_or(DIRECTORY_POOL_SIZE);
    origin.within(
        &format!("{key}.pool_size"),
        pool_size,
        0..=DIRECTORY_MAX_POOL_SIZE,
        "expected 0 (no pool) to 64 connections",
    )?;
    Ok(DirectoryProfileConfig {
        kind: raw.kind,
        servers: raw.servers.clone(),
        base_dn: raw.base_dn.clone(),
        service_account,
        login_attributes,
        user_filter,
        bind_pattern,
        attributes: raw.attributes.clone(),
        group_mode: raw.groups.mode.unwrap_or(match raw.kind {
            DirectoryKind::Ad => GroupMode::Ad,
            DirectoryKind::Ldap => GroupMode::Member,
        }),
        group_base_dn,
        starttls: tls.starttls,
        trust,
        timeout: Duration::from_millis(timeout_ms),
        pool_size,
    })
}

/// Checks one server URL against the profile's TLS settings.
fn server_url(url: &str, starttls: bool, trust: &DirectoryTrust) -> Result<(), String> {
    let rest = if let Some(rest) = url.strip_prefix("ldaps://") {
        if starttls {
            return Err(format!(
                "{url:?} is ldaps:// (TLS from the start): StartTLS applies to ldap:// only"
            ));
        }
        if *trust == DirectoryTrust::Plaintext {
            return Err(format!(
                "{url:?} is ldaps://: it needs tls.ca_file or tls.pinned_sha256"
            ));
        }
        rest
    } else if let Some(rest) = url.strip_prefix("ldap://") {
        if !starttls && *trust != DirectoryTrust::Plaintext {
            return Err(format!(
                "{url:?} is plain ldap://: set tls.starttls, use ldaps://, or set \
                 tls.insecure_plaintext"
            ));
        }
        rest
    } else {
        return Err(format!(
            "expected an ldaps:// or ldap:// URL such as \"ldaps://dc1.example.com:636\", got {url:?}"
        ));
    };
    let host_port = rest.strip_suffix('/').unwrap_or(rest);
    if host_port.is_empty()
        || host_port.contains(['/', '?', '@'])
        || host_port.contains(char::is_whitespace)
    {
        return Err(format!(
            "expected scheme://host or scheme://host:port with no path, got {url:?}"
        ));
    }
    Ok(())
}

/// A plausible DN: not empty, every comma-separated part has an `=`.
fn dn_shape(dn: &str) -> bool {
    !dn.trim().is_empty() && dn.split(',').all(|rdn| rdn.contains('='))
}

/// An attribute description (RFC 4512 `descr` or a numeric OID, with options).
fn attribute_name(name: &str) -> bool {
    let mut parts = name.split(';');
    let Some(base) = parts.next() else {
        return false;
    };
    let descr = base.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && base.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let oid = !base.is_empty()
        && base
            .split('.')
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    (descr || oid)
        && name.len() <= 128
        && parts.all(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// One parenthesised filter with balanced parentheses (escapes are `\XX`, never `\(`).
fn filter_shape(filter: &str) -> bool {
    if !filter.starts_with('(') || !filter.ends_with(')') || filter.len() > 4096 {
        return false;
    }
    let mut depth = 0usize;
    for (i, c) in filter.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                let Some(d) = depth.checked_sub(1) else {
                    return false;
                };
                depth = d;
                if depth == 0 && i + 1 != filter.len() {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Settings;

    use super::*;

    fn parse(text: &str) -> Result<Settings, SettingsError> {
        Settings::parse(text, Path::new("/etc/interstate/settings.json"))
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const CORP: &str = r#"{"directory": {"profiles": {"corp": {
        "kind": "ad",
        "servers": ["ldaps://dc1.corp.example:636", "ldaps://dc2.corp.example"],
        "base_dn": "dc=corp,dc=example",
        "bind_dn": "cn=svc-interstate,ou=service,dc=corp,dc=example",
        "password_file": "secrets/ldap.pw",
        "login_attributes": ["sAMAccountName", "userPrincipalName"],
        "attributes": ["mail", "displayName"],
        "groups": {"base_dn": "ou=groups,dc=corp,dc=example"},
        "tls": {"ca_file": "corp-ca.pem"},
        "timeout_ms": 3000,
        "pool_size": 8
    }}}}"#;

    #[test]
    fn a_complete_ad_profile() {
        let settings = parse(CORP).unwrap();
        let corp = &settings.directory.profiles["corp"];
        assert_eq!(corp.kind, DirectoryKind::Ad);
        assert_eq!(corp.servers.len(), 2);
        assert_eq!(
            corp.service_account,
            Some((
                "cn=svc-interstate,ou=service,dc=corp,dc=example".to_owned(),
                PasswordSource::File(PathBuf::from("/etc/interstate/secrets/ldap.pw"))
            ))
        );
        assert_eq!(
            corp.login_attributes,
            ["sAMAccountName", "userPrincipalName"]
        );
        assert_eq!(corp.group_mode, GroupMode::Ad);
        assert_eq!(corp.group_base_dn, "ou=groups,dc=corp,dc=example");
        assert_eq!(
            corp.user_filter.as_deref(),
            Some("(&(objectCategory=person)(objectClass=user))")
        );
        assert_eq!(
            corp.trust,
            DirectoryTrust::CaFile(PathBuf::from("/etc/interstate/corp-ca.pem"))
        );
        assert_eq!(corp.timeout, Duration::from_millis(3000));
        assert_eq!(corp.pool_size, 8);
    }

    #[test]
    fn ldap_defaults_and_pins() {
        let settings = parse(&format!(
            r#"{{"directory": {{"profiles": {{"lab": {{"servers": ["ldap://ldap.lab:389"],
            "base_dn": "dc=lab", "tls": {{"starttls": true, "pinned_sha256": "{}"}}}}}}}}}}"#,
            "ab".repeat(32)
        ))
        .unwrap();
        let lab = &settings.directory.profiles["lab"];
        assert_eq!(lab.kind, DirectoryKind::Ldap);
        assert_eq!(lab.login_attributes, ["uid"]);
        assert_eq!(lab.group_mode, GroupMode::Member);
        assert_eq!(lab.service_account, None);
        assert_eq!(lab.trust, DirectoryTrust::Pinned(vec![[0xab; 32]]));
        assert_eq!(lab.pool_size, DIRECTORY_POOL_SIZE);
        assert!(parse("{}").unwrap().directory.profiles.is_empty());
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let cases = [
            (
                r#"{"servers": ["ldap://x"], "base_dn": "dc=x", "tls": {"ca_file": "ca.pem"}}"#,
                "directory.profiles.p.servers[0]",
                "plain ldap://",
            ),
            (
                r#"{"servers": ["ldap://x"], "base_dn": "dc=x"}"#,
                "directory.profiles.p.tls",
                "insecure_plaintext",
            ),
            (
                r#"{"servers": ["ldaps://x"], "base_dn": "dc=x", "tls": {"insecure_plaintext": true}}"#,
                "directory.profiles.p.servers[0]",
                "ldaps://",
            ),
            (
                r#"{"servers": ["http://x"], "base_dn": "dc=x", "tls": {"ca_file": "c"}}"#,
                "directory.profiles.p.servers[0]",
                "expected an ldaps://",
            ),
            (
                r#"{"servers": [], "base_dn": "dc=x", "tls": {"ca_file": "c"}}"#,
                "directory.profiles.p.servers",
                "at least one",
            ),
            (
                r#"{"servers": ["ldaps://x"], "base_dn": "x", "tls": {"ca_file": "c"}}"#,
                "directory.profiles.p.base_dn",
                "a DN",
            ),
            (
                r#"{"servers": ["ldaps://x"], "base_dn": "dc=x", "bind_dn": "cn=s,dc=x", "tls": {"ca_file": "c"}}"#,
                "directory.profiles.p.password_file",
                "password_env",
            ),
            (
                r#"{"servers": ["ldaps://x"], "base_dn": "dc=x", "login_attributes": ["uid)(x"], "tls": {"ca_file": "c"}}"#,
                "directory.profiles.p.login_attributes[0]",
                "attribute name",
            ),
            (
                r#"{"servers": ["ldaps://x"], "base_dn": "dc=x", "user_filter": "(a=b))(c=d", "tls": {"ca_file": "c"}}"#,
                "directory.profiles.p.user_filter",
                "parenthesised",
            ),
            (
                r#"{"servers": ["ldaps://x"], "base_dn": "dc=x", "bind_pattern": "uid=x", "tls": {"ca_file": "c"}}"#,
                "directory.profiles.p.bind_pattern",
                "{username} exactly once",
            ),
            (
                r#"{"servers": ["ldaps://x"], "base_dn": "dc=x", "pool_size": 65, "tls": {"ca_file": "c"}}"#,
                "directory.profiles.p.pool_size",
                "64",
            ),
            (
                r#"{"servers": ["ldaps://x"], "base_dn": "dc=x", "tls": {"pinned_sha256": ["zz"]}}"#,
                "directory.profiles.p.tls.pinned_sha256[0]",
                "64 hex digits",
            ),
            (
                r#"{"servers": ["ldaps://x"], "base_dn": "dc=x", "groups": {"mode": "nested"}, "tls": {"ca_file": "c"}}"#,
                "directory.profiles.p.groups.mode",
                "unknown variant",
            ),
            (
                r#"{"servers": ["ldaps://x"], "base_dn": "dc=x", "password": "x", "tls": {"ca_file": "c"}}"#,
                "directory.profiles.p",
                "unknown field",
            ),
        ];
        for (profile, key, message) in cases {
            let err = error(&format!(
                r#"{{"directory": {{"profiles": {{"p": {profile}}}}}}}"#
            ));
            assert!(
                err.starts_with(&format!("/etc/interstate/settings.json: {key}")),
                "{profile}: {err}"
            );
            assert!(err.contains(message), "{profile}: {err}");
        }
    }

    #[test]
    fn the_directory_is_restart_only() {
        let new = parse(CORP).unwrap();
        assert_eq!(Settings::defaults().restart_required(&new), ["directory"]);
    }

    #[test]
    fn filter_and_attribute_shapes() {
        assert!(filter_shape("(objectClass=person)"));
        assert!(filter_shape("(&(a=b)(|(c=d)(e=f)))"));
        assert!(!filter_shape("(a=b)(c=d)"));
        assert!(!filter_shape("a=b"));
        assert!(!filter_shape("((a=b)"));
        assert!(attribute_name("sAMAccountName"));
        assert!(attribute_name("userCertificate;binary"));
        assert!(attribute_name("1.2.840.113556.1.4.221"));
        assert!(!attribute_name("uid=*"));
        assert!(!attribute_name(""));
    }
}
