//! The result ids the broker sends to the client.
//!
//! Only ids that the PCoIP client library recognises are listed (reference §3): an id the
//! client does not know becomes a generic "result id cannot be recognized" error on its side.
//! Each id also carries a default user-facing text, used when the caller has nothing better.

use std::fmt;

/// Declares a result-id enum with its wire token and default user-facing text.
macro_rules! result_ids {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $token:literal, $text:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every id, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The token sent in `<result-id>`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $token, )+
                }
            }

            /// A user-facing `<result-str>` for this id when the caller has no better one.
            pub fn default_text(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

result_ids! {
    /// The outcome of an `authenticate` step (`authenticate-resp`).
    pub enum AuthResult {
        /// The user is in.
        SuccessfulAndComplete => "AUTH_SUCCESSFUL_AND_COMPLETE",
            "Authentication completed successfully.";
        /// This step passed; another (a dialog) follows.
        SuccessfulAndIncomplete => "AUTH_SUCCESSFUL_AND_INCOMPLETE",
            "Additional authentication is required.";
        /// Unknown user or wrong password.
        FailedUnknownUsernameOrPassword => "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
            "User authentication failed. Please re-enter username, password, and/or domain.";
        /// The user had already authenticated.
        DonePreviously => "AUTH_DONE_PREVIOUSLY",
            "The user has already been authenticated.";
        /// The password has expired.
        FailedExpiredPassword => "AUTH_FAILED_EXPIRED_PASSWORD",
            "Your password has expired. Please change it and log in again.";
        /// The user has no desktops.
        FailedUserHasNoResource => "AUTH_FAILED_USER_HAS_NO_RESOURCE",
            "No remote workstations are assigned to this user.";
        /// The method is not the one the broker expects now.
        FailedUnexpectedMethod => "AUTH_FAILED_UNEXPECTED_METHOD",
            "This authentication method is not expected now. Please log in again.";
        /// The user may not log in.
        FailedAccessDenied => "AUTH_FAILED_ACCESS_DENIED",
            "Access denied. Please contact your administrator.";
        /// A dialog answer was not acceptable.
        FailedDialogInvalidUserEntry => "AUTH_FAILED_DIALOG_INVALID_USER_ENTRY",
            "The value entered is not valid. Please try again.";
        /// A dialog answer named a button the dialog did not have.
        FailedInvalidFieldButtonId => "AUTH_FAILED_INVALID_FIELD_BUTTON_ID",
            "The dialog answer does not match the dialog. Please try again.";
        /// The user declined the disclaimer.
        FailedDisclaimerRejected => "AUTH_FAILED_DISCLAIMER_REJECTED",
            "The disclaimer was not accepted, so you cannot log in.";
    }
}

result_ids! {
    /// The outcome of `perform-operation` (`perform-operation-resp`, reference §11.1 \[R\]).
    pub enum OperationResult {
        /// Done, or accepted by the machine's power API.
        Successful => "OP_SUCCESSFUL",
            "The operation was performed.";
        /// The resource id is not one of the last listing.
        FailedInvalidParameter => "OP_FAILED_INVALID_PARAMETER",
            "The remote workstation is not available to this user.";
        /// Nobody is logged in on this session.
        FailedNoUser => "OP_FAILED_NO_USER",
            "No user is logged in. Please log in again.";
        /// The desktop does not offer this operation.
        FailedOperationNotSupported => "OP_FAILED_OPERATION_NOT_SUPPORTED",
            "This operation is not supported for this remote workstation.";
        /// The operation failed or was refused.
        FailedToExecute => "OP_FAILED_TO_EXECUTE",
            "The operation could not be performed.";
    }
}

result_ids! {
    /// The outcome of `update-password` (`update-password-resp`, reference §3.5, §11.1 \[R\]).
    pub enum PasswordResult {
        /// Changed; the user is in and goes straight to the desktop list.
        SuccessfulAuthComplete => "PSWD_UPDATE_SUCCESSFUL_AUTH_COMPLETE",
            "Your password was changed.";
        /// Changed; another step follows (in `next-authentication`).
        SuccessfulAuthIncomplete => "PSWD_UPDATE_SUCCESSFUL_AUTH_INCOMPLETE",
            "Your password was changed. Additional authentication is required.";
        /// Unknown user or wrong current password.
        FailedUnknownUsernameOrPassword => "PSWD_UPDATE_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
            "The user name or current password is not correct.";
        /// The new password breaks the password policy.
        FailedWeakPassword => "PSWD_UPDATE_FAILED_WEAK_PASSWORD",
            "The new password does not meet the password policy.";
        /// Too many attempts.
        FailedMaxRetriesExceeded => "PSWD_UPDATE_FAILED_MAX_RETRIES_EXCEEDED",
            "Too many attempts. Please try again later.";
        /// The session already has a logged-in user.
        FailedAlreadyAuthenticated => "PSWD_UPDATE_FAILED_ALREADY_AUTHENTICATED",
            "You are already logged in.";
        /// The broker cannot change passwords.
        FailedNotSupported => "PSWD_UPDATE_FAILED_NOT_SUPPORTED",
            "Changing the password is not supported here. Please contact your administrator.";
        /// The directory or identity service failed.
        FailedDcError => "PSWD_UPDATE_FAILED_DC_ERROR",
            "The password could not be changed because of a directory error. Please try again later.";
    }
}

result_ids! {
    /// The outcome of `get-resource-list` (`get-resource-list-resp`).
    pub enum ListResult {
        /// The list follows.
        Successful => "LIST_SUCCESSFUL",
            "Successfully retrieved the list of remote workstations.";
        /// The user has no desktops.
        FailedNoEntitlement => "LIST_FAILED_NO_ENTITLEMENT",
            "User has not been assigned any remote workstations.";
        /// Nobody is logged in on this session.
        FailedNoUser => "LIST_FAILED_NO_USER",
            "No user is logged in. Please log in again.";
    }
}

result_ids! {
    /// The outcome of `allocate-resource` (`allocate-resource-resp`).
    pub enum AllocResult {
        /// The target follows.
        Successful => "ALLOC_SUCCESSFUL",
            "Successfully allocated remote workstation.";
        /// Not ready yet; the client retries.
        PendingTryAgain => "ALLOC_PENDING_TRY_AGAIN",
            "The remote workstation is not ready yet. Retrying.";
        /// The agent refused the user's credentials.
        FailedUnknownUsernameOrPassword => "ALLOC_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
            "The remote workstation refused the user name or password.";
        /// The desktop id is unknown or not the user's.
        FailedInvalidParameter => "ALLOC_FAILED_INVALID_PARAMETER",
            "The requested remote workstation is not available to this user.";
        /// Nobody is logged in on this session.
        FailedNoUser => "ALLOC_FAILED_NO_USER",
            "No user is logged in. Please log in again.";
        /// No licence is available.
        FailedNoLicense => "ALLOC_FAILED_NO_LICENSE",
            "PCoIP Agent has no available licenses to launch the remote session.";
        /// The broker failed (a policy error).
        FailedToAllocateBroker => "ALLOC_FAILED_TO_ALLOCATE_BROKER",
            "The broker failed to allocate the remote workstation. Please try again later.";
        /// The agent failed or could not be reached.
        FailedToAllocateAgent => "ALLOC_FAILED_TO_ALLOCATE_AGENT",
            "The remote workstation could not start a session.";
    }
}

result_ids! {
    /// The id of an `error-resp`.
    pub enum ErrorId {
        /// Not XML, bad UTF-8, a DTD or entity, truncated, over a limit.
        InvalidMsgFormat => "ERR_INVALID_MSG_FORMAT",
            "Invalid XML message format.";
        /// The root element is not a broker protocol root.
        InvalidMsgEnvelope => "ERR_INVALID_MSG_ENVELOPE",
            "Invalid message envelope.";
        /// The root element holds no message.
        InvalidMissingMsgContent => "ERR_INVALID_MISSING_MSG_CONTENT",
            "The message has no content.";
        /// A required element is missing, or one is duplicated.
        InvalidInvalidMsgContent => "ERR_INVALID_INVALID_MSG_CONTENT",
            "The message content is invalid.";
        /// The root's `version` is missing or not 2.1.
        UnsupportedVersion => "ERR_UNSUPPORTED_VERSION",
            "Unsupported protocol version.";
        /// The broker does not handle this message.
        UnsupportedRequest => "ERR_UNSUPPORTED_REQUEST",
            "This request is not supported by the broker.";
        /// The request carried no session cookie.
        MissingSession => "ERR_MISSING_SESSION",
            "There is no session. Please log in again.";
        /// The session is unknown or has expired.
        InvalidSession => "ERR_INVALID_SESSION",
            "Your session has expired. Please log in again.";
        /// The broker failed internally.
        BrokerSysFailed => "ERR_BROKER_SYS_FAILED",
            "The broker could not process the request. Please try again later.";
        /// The PCoIP agent failed.
        PcoipAgentFailed => "ERR_PCOIP_AGENT_FAILED",
            "The remote workstation's PCoIP agent failed.";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_upper_snake_case() {
        let mut seen = std::collections::HashSet::new();
        let tokens = AuthResult::ALL
            .iter()
            .map(|id| id.as_str())
            .chain(ListResult::ALL.iter().map(|id| id.as_str()))
            .chain(AllocResult::ALL.iter().map(|id| id.as_str()))
            .chain(OperationResult::ALL.iter().map(|id| id.as_str()))
            .chain(PasswordResult::ALL.iter().map(|id| id.as_str()))
            .chain(ErrorId::ALL.iter().map(|id| id.as_str()));
        for token in tokens {
            assert!(seen.insert(token), "duplicate {token}");
            assert!(
                token.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{token}"
            );
        }
        assert_eq!(seen.len(), 11 + 3 + 8 + 5 + 8 + 10);
    }

    #[test]
    fn display_is_the_token() {
        assert_eq!(ErrorId::InvalidSession.to_string(), "ERR_INVALID_SESSION");
        assert_eq!(
            AllocResult::PendingTryAgain.as_str(),
            "ALLOC_PENDING_TRY_AGAIN"
        );
        assert!(!ListResult::FailedNoUser.default_text().is_empty());
    }
}
