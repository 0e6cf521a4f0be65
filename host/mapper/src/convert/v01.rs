//! Conversions for `interstate:mapper@0.1.x` components.

use interstate_protocol::policy::AuthOutcome;

use crate::bindings::v01::wit;

crate::convert::shared_records!();

/// A 0.1 outcome: no disclaimer, and a dialog without buttons (the client shows one `OK`).
pub(crate) fn auth_outcome(outcome: wit::AuthOutcome) -> Checked<AuthOutcome> {
    Ok(match outcome {
        wit::AuthOutcome::Accepted(identity) => AuthOutcome::Accepted(self::identity(identity)?),
        wit::AuthOutcome::Rejected(rejection) => AuthOutcome::Rejected(self::rejection(rejection)?),
        wit::AuthOutcome::Challenge(dialog) => AuthOutcome::Challenge(crate::convert::dialog(
            dialog.prompt,
            dialog.error_text,
            dialog_fields(dialog.fields)?,
            Vec::new(),
            dialog.state,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use interstate_protocol::policy::MapperError;

    use super::*;

    fn wit_desktop(id: &str) -> wit::Desktop {
        wit::Desktop {
            id: id.to_owned(),
            name: "n".to_owned(),
            hostname: "h".to_owned(),
            agent_port: Some(60443),
            session_kind: wit::SessionKind::Rds,
            state: wit::DesktopState::Running,
            operations: vec![wit::Operation::Restart],
        }
    }

    #[test]
    fn desktops_are_bounded() {
        let ok = desktops(vec![wit_desktop("a")]).unwrap();
        assert_eq!(ok[0].session_kind, SessionKind::Rds);
        assert_eq!(ok[0].operations, vec![Operation::Restart]);
        let many = (0..513).map(|i| wit_desktop(&i.to_string())).collect();
        assert!(matches!(desktops(many), Err(MapperError::InvalidOutput(_))));
        let long_id = wit_desktop(&"x".repeat(129));
        assert!(matches!(
            desktops(vec![long_id]),
            Err(MapperError::InvalidOutput(_))
        ));
        assert!(matches!(
            desktops(vec![wit_desktop("")]),
            Err(MapperError::InvalidOutput(_))
        ));
    }

    #[test]
    fn empty_connect_tag_is_refused() {
        let target = wit::LaunchTarget {
            ip_address: "10.0.0.1".to_owned(),
            hostname: "h".to_owned(),
            sni: "h".to_owned(),
            port: 4172,
            session_id: "s".to_owned(),
            connect_tag: String::new(),
        };
        let err = allocation(wit::Allocation::Direct(target)).unwrap_err();
        assert!(err.to_string().contains("connect tag"), "{err}");
    }

    #[test]
    fn identities_are_bounded() {
        let mut accepted = wit::Identity {
            username: "u".to_owned(),
            domain: String::new(),
            attributes: (0..65)
                .map(|i| wit::Attribute {
                    key: i.to_string(),
                    value: String::new(),
                })
                .collect(),
        };
        assert!(auth_outcome(wit::AuthOutcome::Accepted(accepted.clone())).is_err());
        accepted.attributes.truncate(64);
        assert!(auth_outcome(wit::AuthOutcome::Accepted(accepted.clone())).is_ok());
        accepted.username = "u".repeat(257);
        assert!(auth_outcome(wit::AuthOutcome::Accepted(accepted)).is_err());
    }

    #[test]
    fn dialog_state_is_bounded_and_secret() {
        let dialog = wit::Dialog {
            prompt: "code?".to_owned(),
            error_text: String::new(),
            fields: vec![wit::DialogField {
                id: "otp".to_owned(),
                label: "Code".to_owned(),
                kind: wit::FieldKind::Secret,
            }],
            state: "s".repeat(16 * 1024),
        };
        let AuthOutcome::Challenge(ok) =
            auth_outcome(wit::AuthOutcome::Challenge(dialog.clone())).unwrap()
        else {
            panic!("not a challenge");
        };
        assert_eq!(format!("{:?}", ok.state), "Secret(***)");
        let mut big = dialog;
        big.state.push('s');
        assert!(auth_outcome(wit::AuthOutcome::Challenge(big)).is_err());
    }
}
