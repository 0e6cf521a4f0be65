//! A user's groups, nested ones included: one `LDAP_MATCHING_RULE_IN_CHAIN` search on Active
//! Directory, elsewhere a breadth-first walk (depth at most [`MAX_DEPTH`], at most
//! [`MAX_GROUPS`] groups) over `member` or `memberOf`.

use std::collections::HashSet;

use interstate_config::GroupMode;
use interstate_protocol::capability::{DirectoryFailure, DirectoryGroup};
use ldap3::{Ldap, Scope, SearchEntry};

use crate::escape::filter_value;
use crate::profile::Profile;
use crate::search::search;

/// Nesting levels walked below the user.
pub const MAX_DEPTH: usize = 8;
/// Most groups returned.
pub const MAX_GROUPS: usize = 1000;
/// DNs per search of the `member` walk.
const CHUNK: usize = 50;
/// Active Directory's transitive-membership matching rule.
pub const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// The groups of the entry `user` (its DN, and its `memberOf` values for that mode).
pub async fn groups(
    ldap: &mut Ldap,
    profile: &Profile,
    user: &SearchEntry,
) -> Result<Vec<DirectoryGroup>, DirectoryFailure> {
    match profile.group_mode {
        GroupMode::Ad => in_chain(ldap, profile, &user.dn).await,
        GroupMode::Member => member_walk(ldap, profile, &user.dn).await,
        GroupMode::MemberOf => member_of_walk(ldap, profile, member_of(user)).await,
    }
}

fn cn_attributes() -> Vec<String> {
    vec!["cn".to_owned()]
}

async fn in_chain(
    ldap: &mut Ldap,
    profile: &Profile,
    dn: &str,
) -> Result<Vec<DirectoryGroup>, DirectoryFailure> {
    let filter = format!("(member:{IN_CHAIN}:={})", filter_value(dn));
    let entries = search(
        ldap,
        profile,
        &profile.group_base_dn,
        Scope::Subtree,
        &filter,
        &cn_attributes(),
        limit(),
    )
    .await?;
    Ok(entries.iter().map(group).collect())
}

async fn member_walk(
    ldap: &mut Ldap,
    profile: &Profile,
    dn: &str,
) -> Result<Vec<DirectoryGroup>, DirectoryFailure> {
    let mut seen: HashSet<String> = HashSet::from([dn.to_ascii_lowercase()]);
    let mut found = Vec::new();
    let mut frontier = vec![dn.to_owned()];
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for chunk in frontier.chunks(CHUNK) {
            let any: String = chunk
                .iter()
                .map(|dn| {
                    let v = filter_value(dn);
                    format!("(member={v})(uniqueMember={v})")
                })
                .collect();
            let filter = format!("(|{any})");
            let entries = search(
                ldap,
                profile,
                &profile.group_base_dn,
                Scope::Subtree,
                &filter,
                &cn_attributes(),
                limit(),
            )
            .await?;
            for entry in &entries {
                if seen.insert(entry.dn.to_ascii_lowercase()) {
                    found.push(group(entry));
                    next.push(entry.dn.clone());
                    if found.len() >= MAX_GROUPS {
                        return Ok(truncated(profile, found));
                    }
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(found)
}

async fn member_of_walk(
    ldap: &mut Ldap,
    profile: &Profile,
    direct: Vec<String>,
) -> Result<Vec<DirectoryGroup>, DirectoryFailure> {
    let attributes = vec!["cn".to_owned(), "memberOf".to_owned()];
    let mut seen: HashSet<String> = HashSet::new();
    let mut found = Vec::new();
    let mut frontier = direct;
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for dn in &frontier {
            if !seen.insert(dn.to_ascii_lowercase()) {
                continue;
            }
            let entries = search(
                ldap,
                profile,
                dn,
                Scope::Base,
                "(objectClass=*)",
                &attributes,
                1,
            )
            .await?;
            let Some(entry) = entries.first() else {
                continue;
            };
            found.push(group(entry));
            if found.len() >= MAX_GROUPS {
                return Ok(truncated(profile, found));
            }
            next.extend(member_of(entry));
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(found)
}

/// An entry's `memberOf` values.
fn member_of(entry: &SearchEntry) -> Vec<String> {
    entry
        .attrs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("memberOf"))
        .map(|(_, values)| values.clone())
        .unwrap_or_default()
}

/// A group from its entry: the DN and its `cn` (or the value of the DN's first RDN).
fn group(entry: &SearchEntry) -> DirectoryGroup {
    let cn = entry
        .attrs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("cn"))
        .and_then(|(_, values)| values.first().cloned());
    let name = cn.unwrap_or_else(|| {
        entry
            .dn
            .split(',')
            .next()
            .and_then(|rdn| rdn.split_once('='))
            .map(|(_, value)| value.to_owned())
            .unwrap_or_default()
    });
    DirectoryGroup {
        dn: entry.dn.clone(),
        name,
    }
}

fn limit() -> i32 {
    i32::try_from(MAX_GROUPS).unwrap_or(i32::MAX)
}

fn truncated(profile: &Profile, found: Vec<DirectoryGroup>) -> Vec<DirectoryGroup> {
    tracing::warn!(profile = %profile.name, "a user is in more than {MAX_GROUPS} groups; the rest are left out");
    found
}
