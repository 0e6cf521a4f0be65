//! Password changes: the Password Modify extended operation (RFC 3062) as the user on LDAP
//! servers, and on Active Directory a modify of `unicodePwd` that deletes the old value and adds
//! the new one (a user change, which AD checks against the old password and the policy), over
//! TLS only.

use std::collections::HashSet;

use interstate_config::DirectoryKind;
use interstate_protocol::capability::{DirectoryFailure, DirectoryFailureKind as Kind};
use interstate_protocol::policy::Secret;
use ldap3::exop::PasswordModify;
use ldap3::{Ldap, LdapResult, Mod};
use zeroize::Zeroizing;

use crate::diagnostic::{PolicyResponse, ad_change_code, policy_request, rc};
use crate::search::failure;

/// `"password"` as UTF-16LE with the quotes, as AD wants `unicodePwd` values.
pub fn unicode_pwd(password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(2 * password.len() + 4));
    for unit in format!("\"{password}\"").encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

/// Changes the password of `dn` on `ldap`, a connection bound as the user (LDAP), or as the
/// user or the service account (AD: the old password is checked by the server either way).
pub async fn change(
    ldap: &mut Ldap,
    kind: DirectoryKind,
    timeout: std::time::Duration,
    dn: &str,
    old: &Secret,
    new: &Secret,
) -> Result<(), DirectoryFailure> {
    let result = match kind {
        DirectoryKind::Ldap => ldap
            .with_controls(policy_request())
            .with_timeout(timeout)
            .extended(PasswordModify {
                user_id: None,
                old_pass: Some(old.expose()),
                new_pass: Some(new.expose()),
            })
            .await
            .map(|r| r.1),
        DirectoryKind::Ad => {
            let old = unicode_pwd(old.expose());
            let new = unicode_pwd(new.expose());
            let attribute = b"unicodePwd".to_vec();
            ldap.with_timeout(timeout)
                .modify(
                    dn,
                    vec![
                        Mod::Delete(attribute.clone(), HashSet::from([old.to_vec()])),
                        Mod::Add(attribute, HashSet::from([new.to_vec()])),
                    ],
                )
                .await
        }
    }
    .map_err(|e| {
        failure(
            Kind::Unreachable,
            format!("password change for {dn:?}: {e}"),
        )
    })?;
    outcome(kind, dn, &result)
}

/// What a password change's result means.
fn outcome(kind: DirectoryKind, dn: &str, result: &LdapResult) -> Result<(), DirectoryFailure> {
    if result.rc == rc::SUCCESS {
        return Ok(());
    }
    let policy = PolicyResponse::from_controls(&result.ctrls).and_then(|p| p.error);
    let refused = match (kind, result.rc) {
        _ if policy.is_some_and(|e| e.is_weak_password()) => Kind::WeakPassword,
        (DirectoryKind::Ad, rc::CONSTRAINT_VIOLATION) => ad_change_code(&result.text),
        (DirectoryKind::Ldap, rc::CONSTRAINT_VIOLATION) => Kind::WeakPassword,
        (_, rc::INVALID_CREDENTIALS) => Kind::WrongPassword,
        // AD refuses a change over plain LDAP (and on a policy it will not explain) this way.
        (DirectoryKind::Ad, rc::UNWILLING_TO_PERFORM) => ad_change_code(&result.text),
        _ => Kind::Unreachable,
    };
    Err(failure(
        refused,
        format!(
            "password change for {dn:?} refused: rc {} {:?}{}",
            result.rc,
            result.text,
            policy
                .map(|e| format!(", password policy: {e:?}"))
                .unwrap_or_default()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        assert_eq!(
            unicode_pwd("Ab1é").as_slice(),
            &[0x22, 0, b'A', 0, b'b', 0, b'1', 0, 0xe9, 0, 0x22, 0]
        );
    }

    fn result(rc: u32, text: &str) -> LdapResult {
        LdapResult {
            rc,
            matched: String::new(),
            text: text.to_owned(),
            refs: Vec::new(),
            ctrls: Vec::new(),
        }
    }

    #[test]
    fn ad_change_refusals() {
        let weak = result(
            19,
            "0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be equal or longer than 7 characters!",
        );
        let wrong = result(
            19,
            "00000056: Constraint violation - The old password specified doesn't match!",
        );
        assert_eq!(
            outcome(DirectoryKind::Ad, "cn=a", &weak).unwrap_err().kind,
            Kind::WeakPassword
        );
        assert_eq!(
            outcome(DirectoryKind::Ad, "cn=a", &wrong).unwrap_err().kind,
            Kind::WrongPassword
        );
        assert!(outcome(DirectoryKind::Ad, "cn=a", &result(0, "")).is_ok());
        assert_eq!(
            outcome(DirectoryKind::Ldap, "cn=a", &result(50, "no write access"))
                .unwrap_err()
                .kind,
            Kind::Unreachable
        );
    }
}
