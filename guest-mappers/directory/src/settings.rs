//! The DirectoryMapper's `mapper.settings`: which directory profile, which groups give which
//! desktops, the logon domain for the agent.
//!
//! ```json
//! {
//!   "profile": "corp",
//!   "domains": ["CORP"],
//!   "logon_domain": "CORP",
//!   "allowed_groups": ["PCoIP Users"],
//!   "groups": {
//!     "VFX Artists": [{"name": "Artist Workstation 1", "hostname": "ws-art-1.corp.example"}],
//!     "Render": [{"name": "Render Node 7", "hostname": "render-7.corp.example", "agent_port": 60443}]
//!   },
//!   "desktop_attribute": "pcoipDesktop",
//!   "password_change": true
//! }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// The contract's bounds (`wit/mapper.wit`).
const MAX_NAME: usize = 256;
/// Most desktops the contract lets a listing hold.
pub const MAX_DESKTOPS: usize = 512;

/// One desktop a group gives.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DesktopEntry {
    /// The name the user sees.
    pub name: String,
    /// The PCoIP agent's host name or address.
    pub hostname: String,
    /// The agent's port; the broker's default when absent.
    #[serde(default)]
    pub agent_port: Option<u16>,
}

/// The validated settings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The broker's `directory.profiles` entry logins are checked against.
    pub profile: String,
    /// Domains offered in the client's login dialog.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The logon domain the agent gets; the domain the user picked when absent.
    #[serde(default)]
    pub logon_domain: Option<String>,
    /// When not empty, a user must belong (directly or through nesting) to one of these groups
    /// (by `cn`, compared without case).
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// Group `cn` → the desktops its members get (compared without case).
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<DesktopEntry>>,
    /// A user attribute whose every value is a desktop host name the user gets (named by the
    /// host name), such as a `pcoipDesktop` attribute the studio maintains.
    #[serde(default)]
    pub desktop_attribute: Option<String>,
    /// Expired passwords and passwords that must be changed lead the client to its
    /// password-change step (default); when false they are refused as access denied.
    #[serde(default = "yes")]
    pub password_change: bool,
}

fn yes() -> bool {
    true
}

impl Settings {
    /// Parses and validates `mapper.settings`.
    ///
    /// # Errors
    /// A message starting with the offending key's path.
    pub fn parse(settings_json: &str) -> Result<Settings, String> {
        let settings: Settings = interstate_mapper_sdk::settings::from_json(settings_json)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), String> {
        if self.profile.trim().is_empty() {
            return Err("profile: must name one of the broker's directory.profiles".into());
        }
        if self.groups.is_empty() && self.desktop_attribute.is_none() {
            return Err(
                "groups: give at least one group's desktops, or set desktop_attribute".into(),
            );
        }
        let mut count = 0;
        for (group, desktops) in &self.groups {
            if group.trim().is_empty() {
                return Err("groups: a group name is empty".into());
            }
            for (i, desktop) in desktops.iter().enumerate() {
                let at = format!("groups.{group}[{i}]");
                if desktop.name.is_empty() || desktop.name.len() > MAX_NAME {
                    return Err(format!("{at}.name: must be 1 to {MAX_NAME} bytes"));
                }
                if desktop.hostname.is_empty() || desktop.hostname.len() > MAX_NAME {
                    return Err(format!("{at}.hostname: must be 1 to {MAX_NAME} bytes"));
                }
                if desktop.agent_port == Some(0) {
                    return Err(format!("{at}.agent_port: must be 1 to 65535"));
                }
                count += 1;
            }
        }
        if count > MAX_DESKTOPS {
            return Err(format!("groups: at most {MAX_DESKTOPS} desktops in all"));
        }
        if let Some(attribute) = &self.desktop_attribute
            && (attribute.is_empty()
                || !attribute
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err("desktop_attribute: must be an LDAP attribute name".into());
        }
        Ok(())
    }
}

/// A desktop id derived from its host name (lowercase; every character that is not a letter, a
/// digit or `-` replaced by `-`), as the example mappers do: stable across logins and list
/// order.
pub fn desktop_id(hostname: &str) -> String {
    hostname
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(128)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn a_complete_example_parses() {
        let settings = Settings::parse(
            r#"{"profile": "corp", "domains": ["CORP"], "logon_domain": "CORP",
                "allowed_groups": ["PCoIP Users"],
                "groups": {"Artists": [{"name": "WS 1", "hostname": "ws-1.corp", "agent_port": 60443}]},
                "desktop_attribute": "pcoipDesktop"}"#,
        )
        .unwrap();
        assert_eq!(settings.profile, "corp");
        assert!(settings.password_change);
        assert_eq!(settings.groups["Artists"][0].agent_port, Some(60443));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (r#"{"groups": {}}"#, "profile"),
            (r#"{"profile": " ", "groups": {"a": []}}"#, "profile:"),
            (r#"{"profile": "corp"}"#, "groups:"),
            (
                r#"{"profile": "corp", "groups": {"a": [{"name": "", "hostname": "h"}]}}"#,
                "groups.a[0].name:",
            ),
            (
                r#"{"profile": "corp", "groups": {"a": [{"name": "n", "hostname": "h", "agent_port": 0}]}}"#,
                "groups.a[0].agent_port:",
            ),
            (
                r#"{"profile": "corp", "groups": {"a": []}, "desktop_attribute": "x)(y"}"#,
                "desktop_attribute:",
            ),
            (
                r#"{"profile": "corp", "groups": {"a": []}, "typo": 1}"#,
                "typo",
            ),
        ];
        for (json, key) in cases {
            let err = Settings::parse(json).unwrap_err();
            assert!(err.contains(key), "{json}: {err}");
        }
    }

    #[test]
    fn ids_come_from_host_names() {
        assert_eq!(desktop_id("WS-Art-1.corp.example"), "ws-art-1-corp-example");
        assert_eq!(desktop_id("::ffff:10.0.0.2"), "--ffff-10-0-0-2");
    }
}
