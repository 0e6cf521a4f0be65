//! What a server's answer means: Active Directory's bind sub-codes and password-change codes, and
//! the password-policy response control (draft-behera-ldap-password-policy) that OpenLDAP's
//! `ppolicy` overlay sends.

use interstate_protocol::capability::DirectoryFailureKind as Kind;

/// The password-policy request/response control.
pub const PPOLICY_OID: &str = "1.3.6.1.4.1.42.2.27.8.5.1";

/// LDAP result codes this crate looks at (RFC 4511 Appendix A).
pub mod rc {
    /// success.
    pub const SUCCESS: u32 = 0;
    /// sizeLimitExceeded.
    pub const SIZE_LIMIT_EXCEEDED: u32 = 4;
    /// constraintViolation.
    pub const CONSTRAINT_VIOLATION: u32 = 19;
    /// noSuchObject.
    pub const NO_SUCH_OBJECT: u32 = 32;
    /// invalidCredentials.
    pub const INVALID_CREDENTIALS: u32 = 49;
    /// insufficientAccessRights.
    pub const INSUFFICIENT_ACCESS: u32 = 50;
    /// unwillingToPerform.
    pub const UNWILLING_TO_PERFORM: u32 = 53;
}

/// The `error` of a password-policy response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// passwordExpired (0).
    PasswordExpired,
    /// accountLocked (1).
    AccountLocked,
    /// changeAfterReset (2).
    ChangeAfterReset,
    /// passwordModNotAllowed (3).
    PasswordModNotAllowed,
    /// mustSupplyOldPassword (4).
    MustSupplyOldPassword,
    /// insufficientPasswordQuality (5).
    InsufficientPasswordQuality,
    /// passwordTooShort (6).
    PasswordTooShort,
    /// passwordTooYoung (7).
    PasswordTooYoung,
    /// passwordInHistory (8).
    PasswordInHistory,
    /// passwordTooLong (9), or a value this crate does not know.
    Other(u8),
}

impl PolicyError {
    fn from_code(code: u8) -> Self {
        match code {
            0 => Self::PasswordExpired,
            1 => Self::AccountLocked,
            2 => Self::ChangeAfterReset,
            3 => Self::PasswordModNotAllowed,
            4 => Self::MustSupplyOldPassword,
            5 => Self::InsufficientPasswordQuality,
            6 => Self::PasswordTooShort,
            7 => Self::PasswordTooYoung,
            8 => Self::PasswordInHistory,
            other => Self::Other(other),
        }
    }

    /// True for the errors that refuse a new password for its quality or age.
    pub fn is_weak_password(self) -> bool {
        matches!(
            self,
            Self::InsufficientPasswordQuality
                | Self::PasswordTooShort
                | Self::PasswordTooYoung
                | Self::PasswordInHistory
                | Self::Other(9)
        )
    }
}

/// A decoded password-policy response control.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyResponse {
    /// Seconds until the password expires (`timeBeforeExpiration`).
    pub time_before_expiration: Option<u64>,
    /// Grace binds left after this one (`graceAuthNsRemaining`): the password has expired.
    pub grace_logins_remaining: Option<u64>,
    /// The error, if any.
    pub error: Option<PolicyError>,
}

/// Reads one BER TLV: (tag, contents, rest). Definite lengths only, at most 4 length bytes.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// An unsigned BER INTEGER's contents (up to 8 bytes).
fn uint(contents: &[u8]) -> Option<u64> {
    if contents.is_empty() || contents.len() > 9 {
        return None;
    }
    contents.iter().try_fold(0u64, |acc, b| {
        acc.checked_mul(256).map(|v| v | u64::from(*b))
    })
}

impl PolicyResponse {
    /// Decodes the control's value; `None` when it is not well formed.
    ///
    /// ```text
    /// PasswordPolicyResponseValue ::= SEQUENCE {
    ///    warning [0] CHOICE { timeBeforeExpiration [0] INTEGER, graceAuthNsRemaining [1] INTEGER } OPTIONAL,
    ///    error   [1] ENUMERATED { ... } OPTIONAL }
    /// ```
    pub fn parse(value: &[u8]) -> Option<Self> {
        let (tag, mut body, _) = tlv(value)?;
        if tag != 0x30 {
            return None;
        }
        let mut out = Self::default();
        while !body.is_empty() {
            let (tag, contents, rest) = tlv(body)?;
            body = rest;
            match tag {
                // warning: a constructed [0] holding the chosen [0] or [1] INTEGER.
                0xa0 => {
                    let (inner, number, _) = tlv(contents)?;
                    match inner {
                        0x80 => out.time_before_expiration = Some(uint(number)?),
                        0x81 => out.grace_logins_remaining = Some(uint(number)?),
                        _ => return None,
                    }
                }
                // error: [1] ENUMERATED, implicit.
                0x81 => {
                    let code = u8::try_from(uint(contents)?).ok()?;
                    out.error = Some(PolicyError::from_code(code));
                }
                _ => {}
            }
        }
        Some(out)
    }

    /// The policy response among a result's controls, if the server sent one that parses.
    pub fn from_controls(controls: &[ldap3::controls::Control]) -> Option<Self> {
        controls
            .iter()
            .find(|c| c.1.ctype == PPOLICY_OID)
            .and_then(|c| c.1.val.as_deref())
            .and_then(Self::parse)
    }
}

/// The request control (no value): asks the server to say why a bind or a change failed.
pub fn policy_request() -> ldap3::controls::RawControl {
    ldap3::controls::RawControl {
        ctype: PPOLICY_OID.to_owned(),
        crit: false,
        val: None,
    }
}

/// Active Directory's sub-code in a bind's diagnostic message (`..., data 52e, v4563`).
pub fn ad_bind_code(text: &str) -> Option<Kind> {
    let at = text.find("data ")?;
    let code: String = text[at + 5..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    Some(match code.to_ascii_lowercase().as_str() {
        "52e" | "525" => Kind::WrongPassword,
        "532" => Kind::PasswordExpired,
        "773" => Kind::MustChangePassword,
        "533" => Kind::AccountDisabled,
        "701" => Kind::AccountExpired,
        "775" => Kind::LockedOut,
        "530" | "531" => Kind::OutsideLogonHours,
        _ => return None,
    })
}

/// The Win32 error that leads Active Directory's (and Samba's) diagnostic message of a failed
/// `unicodePwd` change (`0000052D: Constraint violation - ...`), as a failure kind.
pub fn ad_change_code(text: &str) -> Kind {
    let code: String = text.chars().take_while(char::is_ascii_hexdigit).collect();
    match u32::from_str_radix(&code, 16) {
        // ERROR_INVALID_PASSWORD: the old password is wrong.
        Ok(0x56) => Kind::WrongPassword,
        // ERROR_PASSWORD_RESTRICTION (complexity, length, history, minimum age).
        Ok(0x52d) => Kind::WeakPassword,
        // ERROR_ACCOUNT_LOCKED_OUT.
        Ok(0x775) => Kind::LockedOut,
        _ => Kind::WeakPassword,
    }
}

/// Why a user's bind was refused, from its result code, diagnostic text and controls.
/// `Ok(None)`: the bind succeeded and the user may go on; `Ok(Some(kind))`: the bind succeeded
/// but the password must be changed first (the connection is restricted to that);
/// `Err(kind)`: refused.
pub fn classify_bind(
    rc: u32,
    text: &str,
    policy: Option<PolicyResponse>,
) -> Result<Option<Kind>, Kind> {
    let policy_error = policy.and_then(|p| p.error);
    if rc == rc::SUCCESS {
        return Ok(match policy_error {
            Some(PolicyError::ChangeAfterReset) => Some(Kind::MustChangePassword),
            Some(PolicyError::PasswordExpired) => Some(Kind::PasswordExpired),
            _ if policy.is_some_and(|p| p.grace_logins_remaining.is_some()) => {
                Some(Kind::PasswordExpired)
            }
            _ => None,
        });
    }
    if rc == rc::INVALID_CREDENTIALS {
        if let Some(kind) = ad_bind_code(text) {
            return Err(kind);
        }
        return Err(match policy_error {
            Some(PolicyError::PasswordExpired) => Kind::PasswordExpired,
            Some(PolicyError::AccountLocked) => Kind::LockedOut,
            Some(PolicyError::ChangeAfterReset) => Kind::MustChangePassword,
            _ => Kind::WrongPassword,
        });
    }
    Err(match policy_error {
        Some(PolicyError::AccountLocked) => Kind::LockedOut,
        _ => Kind::Unreachable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Diagnostic strings as Windows Server (2012 R2 to 2022) and Samba 4 send them.
    #[test]
    fn ad_bind_sub_codes() {
        let cases = [
            (
                "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563",
                Kind::WrongPassword,
            ),
            (
                "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 532, v1db1",
                Kind::PasswordExpired,
            ),
            (
                "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 773, v3839",
                Kind::MustChangePassword,
            ),
            (
                "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 533, v1db1",
                Kind::AccountDisabled,
            ),
            (
                "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 701, v4563",
                Kind::AccountExpired,
            ),
            (
                "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563",
                Kind::LockedOut,
            ),
            (
                "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 530, v1db1",
                Kind::OutsideLogonHours,
            ),
            (
                "80090308: LdapErr: DSID-0C090447, comment: AcceptSecurityContext error, data 525, v3839",
                Kind::WrongPassword,
            ),
        ];
        for (text, kind) in cases {
            assert_eq!(ad_bind_code(text), Some(kind), "{text}");
            assert_eq!(classify_bind(49, text, None), Err(kind), "{text}");
        }
        assert_eq!(ad_bind_code("Invalid credentials"), None);
        assert_eq!(ad_bind_code("data ffff"), None);
        assert_eq!(classify_bind(49, "", None), Err(Kind::WrongPassword));
    }

    #[test]
    fn ad_password_change_codes() {
        assert_eq!(
            ad_change_code(
                "0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be equal or longer than 7 characters!"
            ),
            Kind::WeakPassword
        );
        assert_eq!(
            ad_change_code(
                "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0"
            ),
            Kind::WeakPassword
        );
        assert_eq!(
            ad_change_code(
                "00000056: AtrErr: DSID-03190F80, #1:\n\t0: 00000056: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)"
            ),
            Kind::WrongPassword
        );
        assert_eq!(
            ad_change_code(
                "00000056: Constraint violation - The old password specified doesn't match!"
            ),
            Kind::WrongPassword
        );
    }

    /// Encodings as OpenLDAP 2.5's ppolicy overlay writes them.
    #[test]
    fn policy_responses() {
        // error: passwordExpired
        let expired = PolicyResponse::parse(&[0x30, 0x03, 0x81, 0x01, 0x00]).unwrap();
        assert_eq!(expired.error, Some(PolicyError::PasswordExpired));
        let locked = PolicyResponse::parse(&[0x30, 0x03, 0x81, 0x01, 0x01]).unwrap();
        assert_eq!(locked.error, Some(PolicyError::AccountLocked));
        // warning: graceAuthNsRemaining 2
        let grace = PolicyResponse::parse(&[0x30, 0x05, 0xa0, 0x03, 0x81, 0x01, 0x02]).unwrap();
        assert_eq!(grace.grace_logins_remaining, Some(2));
        assert_eq!(grace.error, None);
        // warning: timeBeforeExpiration 86400, and error changeAfterReset
        let both = PolicyResponse::parse(&[
            0x30, 0x0a, 0xa0, 0x05, 0x80, 0x03, 0x01, 0x51, 0x80, 0x81, 0x01, 0x02,
        ])
        .unwrap();
        assert_eq!(both.time_before_expiration, Some(86400));
        assert_eq!(both.error, Some(PolicyError::ChangeAfterReset));
        assert_eq!(
            PolicyResponse::parse(&[0x30, 0x00]),
            Some(PolicyResponse::default())
        );
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x81],
            &[0x04, 0x00],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert_eq!(PolicyResponse::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn binds_classified_with_the_policy_control() {
        let error = |e| {
            Some(PolicyResponse {
                error: Some(e),
                ..Default::default()
            })
        };
        assert_eq!(classify_bind(0, "", None), Ok(None));
        assert_eq!(
            classify_bind(0, "", error(PolicyError::ChangeAfterReset)),
            Ok(Some(Kind::MustChangePassword))
        );
        assert_eq!(
            classify_bind(
                0,
                "",
                Some(PolicyResponse {
                    grace_logins_remaining: Some(1),
                    ..Default::default()
                })
            ),
            Ok(Some(Kind::PasswordExpired))
        );
        assert_eq!(
            classify_bind(49, "", error(PolicyError::PasswordExpired)),
            Err(Kind::PasswordExpired)
        );
        assert_eq!(
            classify_bind(49, "", error(PolicyError::AccountLocked)),
            Err(Kind::LockedOut)
        );
        assert_eq!(classify_bind(53, "", None), Err(Kind::Unreachable));
        assert!(PolicyError::PasswordTooShort.is_weak_password());
        assert!(!PolicyError::AccountLocked.is_weak_password());
    }
}
