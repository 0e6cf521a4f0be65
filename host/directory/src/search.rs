//! Searches: the user entry for a login name, and the shape of the answers.

use std::collections::BTreeMap;

use interstate_protocol::capability::{DirectoryFailure, DirectoryFailureKind, DirectoryUser};
use interstate_protocol::policy::Attribute;
use ldap3::{Ldap, Scope, SearchEntry, SearchOptions};

use crate::diagnostic::rc;
use crate::escape::filter_value;
use crate::profile::Profile;

/// Longest login name looked up; longer ones match nobody.
pub const MAX_LOGIN_BYTES: usize = 256;
/// Most attributes a call may add to the profile's list.
pub const MAX_EXTRA_ATTRIBUTES: usize = 32;

/// The filter that finds `login` among the profile's users: any login attribute equal to it
/// (escaped), and the profile's extra filter.
pub fn user_filter(profile: &Profile, login: &str) -> String {
    let value = filter_value(login);
    let mut any: String = profile
        .login_attributes
        .iter()
        .map(|attribute| format!("({attribute}={value})"))
        .collect();
    if profile.login_attributes.len() > 1 {
        any = format!("(|{any})");
    }
    match &profile.user_filter {
        Some(extra) => format!("(&{any}{extra})"),
        None => any,
    }
}

/// A search on `ldap` with the profile's deadline: the entries (at most `limit`; a server that
/// stops at the limit is not an error), none when the base does not exist.
pub async fn search(
    ldap: &mut Ldap,
    profile: &Profile,
    base: &str,
    scope: Scope,
    filter: &str,
    attributes: &[String],
    limit: i32,
) -> Result<Vec<SearchEntry>, DirectoryFailure> {
    let attributes: Vec<&str> = if attributes.is_empty() {
        vec!["1.1"]
    } else {
        attributes.iter().map(String::as_str).collect()
    };
    let result = ldap
        .with_search_options(SearchOptions::new().sizelimit(limit))
        .with_timeout(profile.timeout)
        .search(base, scope, filter, attributes)
        .await
        .map_err(|e| failure(DirectoryFailureKind::Unreachable, format!("search: {e}")))?;
    match result.1.rc {
        rc::SUCCESS | rc::SIZE_LIMIT_EXCEEDED => {}
        rc::NO_SUCH_OBJECT => return Ok(Vec::new()),
        code => {
            return Err(failure(
                DirectoryFailureKind::Unreachable,
                format!("search under {base:?}: rc {code} {}", result.1.text),
            ));
        }
    }
    Ok(result.0.into_iter().map(SearchEntry::construct).collect())
}

/// The entry of `login`, with `attributes`; none when no entry or more than one matches (an
/// ambiguous login is nobody's).
pub async fn find_user(
    ldap: &mut Ldap,
    profile: &Profile,
    login: &str,
    attributes: &[String],
) -> Result<Option<SearchEntry>, DirectoryFailure> {
    if login.is_empty() || login.len() > MAX_LOGIN_BYTES {
        return Ok(None);
    }
    let filter = user_filter(profile, login);
    let mut entries = search(
        ldap,
        profile,
        &profile.base_dn,
        Scope::Subtree,
        &filter,
        attributes,
        2,
    )
    .await?;
    if entries.len() > 1 {
        tracing::warn!(profile = %profile.name, "{} entries match one login; refusing it", entries.len());
        return Ok(None);
    }
    Ok(entries.pop())
}

/// The attributes to ask for: the login attributes, the profile's, then the call's (bounded,
/// valid names only), each once.
pub fn requested_attributes(profile: &Profile, extra: &[String], also: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let valid = |name: &str| {
        !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-;.".contains(&b))
    };
    let candidates = profile
        .login_attributes
        .iter()
        .chain(&profile.attributes)
        .map(String::as_str)
        .chain(extra.iter().take(MAX_EXTRA_ATTRIBUTES).map(String::as_str))
        .chain(also.iter().copied());
    for name in candidates {
        if valid(name) && !out.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            out.push(name.to_owned());
        }
    }
    out
}

/// The user record of an entry: its DN, the login as spelled by the first login attribute it
/// has, and every text value of the attributes asked for (sorted by name, then value order).
pub fn to_user(profile: &Profile, entry: &SearchEntry, requested: &[String]) -> DirectoryUser {
    let value_of = |name: &str| {
        entry
            .attrs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, values)| values.first().cloned())
    };
    let login = profile
        .login_attributes
        .iter()
        .find_map(|a| value_of(a))
        .unwrap_or_default();
    let sorted: BTreeMap<&String, &Vec<String>> = entry
        .attrs
        .iter()
        .filter(|(key, _)| requested.iter().any(|r| r.eq_ignore_ascii_case(key)))
        .collect();
    let attributes = sorted
        .into_iter()
        .flat_map(|(key, values)| {
            values.iter().map(move |value| Attribute {
                key: key.clone(),
                value: value.clone(),
            })
        })
        .collect();
    DirectoryUser {
        dn: entry.dn.clone(),
        login,
        attributes,
    }
}

/// A failure with its detail.
pub fn failure(kind: DirectoryFailureKind, detail: impl Into<String>) -> DirectoryFailure {
    DirectoryFailure {
        kind,
        detail: detail.into(),
    }
}
