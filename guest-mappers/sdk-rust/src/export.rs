//! The instance's settings and the dispatch behind [`crate::export_mapper!`].
//!
//! `configure` parses the settings once and keeps them here, owned by the SDK, for the one
//! call that follows in the same instance. A component instance is single-threaded and the
//! host never calls into it re-entrantly, so a thread-local cell is all the state there is.

use std::any::Any;
use std::cell::RefCell;

use crate::Mapper;
use crate::types::{
    Allocation, AuthOutcome, ClientInfo, Desktop, Identity, Operation, OperationOutcome,
    PasswordChange, PasswordChangeOutcome, PasswordLogin, StepAnswer,
};

/// The answer to a call that arrives before a successful `configure`, which the host never
/// does.
const NOT_CONFIGURED: &str = "configure was not called before this call";

thread_local! {
    /// The settings of the last successful `configure` in this instance, as the exported
    /// mapper's `Mapper::Settings` (one mapper per component, so the downcast always matches).
    static SETTINGS: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `call` with the settings `configure` kept.
fn with_settings<M: Mapper, R>(call: impl FnOnce(&M::Settings) -> R) -> Result<R, String> {
    SETTINGS.with_borrow(|kept| {
        let settings = kept
            .as_deref()
            .and_then(<dyn Any>::downcast_ref::<M::Settings>)
            .ok_or_else(|| NOT_CONFIGURED.to_owned())?;
        Ok(call(settings))
    })
}

/// `configure`: parses the settings with [`Mapper::configure`] and keeps them.
pub fn configure<M: Mapper>(settings_json: &str) -> Result<(), String> {
    // A refused configuration leaves nothing behind for a later call to use.
    SETTINGS.set(None);
    let settings = M::configure(settings_json)?;
    SETTINGS.set(Some(Box::new(settings)));
    Ok(())
}

/// `domains`: none before a successful `configure`.
pub fn domains<M: Mapper>() -> Vec<String> {
    with_settings::<M, _>(M::domains).unwrap_or_default()
}

/// `authenticate`.
pub fn authenticate<M: Mapper>(login: PasswordLogin) -> Result<AuthOutcome, String> {
    with_settings::<M, _>(|settings| M::authenticate(settings, login))?
}

/// `continue-authentication`.
pub fn continue_authentication<M: Mapper>(
    state: String,
    answer: StepAnswer,
    client: ClientInfo,
) -> Result<AuthOutcome, String> {
    with_settings::<M, _>(|settings| M::continue_authentication(settings, state, answer, client))?
}

/// `list-desktops`.
pub fn list_desktops<M: Mapper>(
    user: Identity,
    client: ClientInfo,
) -> Result<Vec<Desktop>, String> {
    with_settings::<M, _>(|settings| M::list_desktops(settings, user, client))?
}

/// `allocate`.
pub fn allocate<M: Mapper>(
    user: Identity,
    desktop_id: String,
    client: ClientInfo,
) -> Result<Allocation, String> {
    with_settings::<M, _>(|settings| M::allocate(settings, user, desktop_id, client))?
}

/// `operate`.
pub fn operate<M: Mapper>(
    user: Identity,
    desktop_id: String,
    op: Operation,
    client: ClientInfo,
) -> Result<OperationOutcome, String> {
    with_settings::<M, _>(|settings| M::operate(settings, user, desktop_id, op, client))?
}

/// `change-password`.
pub fn change_password<M: Mapper>(change: PasswordChange) -> Result<PasswordChangeOutcome, String> {
    with_settings::<M, _>(|settings| M::change_password(settings, change))?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;
    use crate::types::{Launch, Rejection, RejectionKind};

    /// A mapper whose settings are a user name.
    struct Fixed;

    impl Mapper for Fixed {
        type Settings = String;

        fn configure(settings_json: &str) -> Result<String, String> {
            crate::settings::from_json(settings_json)
        }

        fn domains(settings: &String) -> Vec<String> {
            vec![settings.to_uppercase()]
        }

        fn authenticate(settings: &String, login: PasswordLogin) -> Result<AuthOutcome, String> {
            Ok(AuthOutcome::Rejected(Rejection {
                kind: RejectionKind::BadCredentials,
                reason: format!("{} is not {settings}", login.username),
            }))
        }

        fn list_desktops(
            _settings: &String,
            _user: Identity,
            _client: ClientInfo,
        ) -> Result<Vec<Desktop>, String> {
            Ok(Vec::new())
        }

        fn allocate(
            settings: &String,
            _user: Identity,
            _desktop_id: String,
            _client: ClientInfo,
        ) -> Result<Allocation, String> {
            Ok(Allocation::Launch(Launch {
                hostname: settings.clone(),
                agent_port: None,
                username: None,
                domain: None,
            }))
        }
    }

    fn client() -> ClientInfo {
        ClientInfo {
            address: String::new(),
            hostname: String::new(),
            product_name: String::new(),
            product_version: String::new(),
            platform: String::new(),
            locale: String::new(),
            log_id: String::new(),
        }
    }

    fn identity() -> Identity {
        Identity {
            username: "bob".to_owned(),
            domain: String::new(),
            attributes: Vec::new(),
        }
    }

    fn login(username: &str) -> PasswordLogin {
        PasswordLogin {
            username: username.to_owned(),
            password: String::new(),
            domain: String::new(),
            client: client(),
        }
    }

    #[test]
    fn each_call_gets_the_settings_configure_parsed() {
        configure::<Fixed>(r#""alice""#).unwrap();
        assert_eq!(domains::<Fixed>(), ["ALICE"]);
        let AuthOutcome::Rejected(rejection) = authenticate::<Fixed>(login("bob")).unwrap() else {
            panic!("Fixed rejects everyone");
        };
        assert_eq!(rejection.reason, "bob is not alice");
        assert!(matches!(
            allocate::<Fixed>(identity(), "d".to_owned(), client()),
            Ok(Allocation::Launch(Launch { hostname, .. })) if hostname == "alice"
        ));
    }

    #[test]
    fn the_default_continue_is_an_error() {
        configure::<Fixed>(r#""alice""#).unwrap();
        let err = continue_authentication::<Fixed>(
            String::new(),
            StepAnswer::DisclaimerAccepted,
            client(),
        );
        assert!(err.unwrap_err().contains("never issues a challenge"));
    }

    #[test]
    fn operate_and_change_password_are_unsupported_by_default() {
        configure::<Fixed>(r#""alice""#).unwrap();
        assert!(matches!(
            operate::<Fixed>(identity(), "d".to_owned(), Operation::Restart, client()),
            Ok(OperationOutcome::Unsupported)
        ));
        let change = PasswordChange {
            username: "bob".to_owned(),
            domain: String::new(),
            old_password: "old".to_owned(),
            new_password: "new".to_owned(),
            client: client(),
        };
        assert!(matches!(
            change_password::<Fixed>(change),
            Ok(PasswordChangeOutcome::Unsupported)
        ));
    }

    #[test]
    fn nothing_runs_without_settings() {
        assert_eq!(
            authenticate::<Fixed>(login("bob")).unwrap_err(),
            NOT_CONFIGURED
        );
        assert!(domains::<Fixed>().is_empty());
        configure::<Fixed>(r#""alice""#).unwrap();
        assert_eq!(
            configure::<Fixed>("7").unwrap_err(),
            "settings: invalid type: integer `7`, expected a string"
        );
        assert_eq!(
            list_desktops::<Fixed>(identity(), client()).unwrap_err(),
            NOT_CONFIGURED,
            "a refused configure forgets the earlier settings"
        );
    }
}
