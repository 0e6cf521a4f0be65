//! Conversions between the generated bindings and `interstate_protocol::policy`, enforcing the
//! contract's bounds on everything the mapper answers.

use interstate_protocol::policy::{
    Allocation, Attribute, AuthOutcome, ClientContext, Desktop, DesktopState, Dialog, DialogField,
    FieldAnswer, FieldKind, Identity, Launch, LaunchTarget, MapperError, Operation, PasswordLogin,
    RefusalKind, Rejection, RejectionKind, Secret, SessionKind,
};

use crate::bindings::wit;

/// Bounds on what a mapper may answer (see `wit/mapper.wit`).
pub(crate) mod limits {
    /// User names, domains, desktop names, attribute keys, labels.
    pub const NAME: usize = 256;
    /// Desktop ids, dialog field ids, session ids.
    pub const ID: usize = 128;
    /// Host names and addresses.
    pub const HOSTNAME: usize = 255;
    /// Attribute values, reasons, prompts and other free text.
    pub const TEXT: usize = 4096;
    /// Attributes per identity.
    pub const ATTRIBUTES: usize = 64;
    /// Desktops per listing.
    pub const DESKTOPS: usize = 512;
    /// Dialog state kept by the host.
    pub const DIALOG_STATE: usize = 16 * 1024;
    /// Fields per dialog.
    pub const DIALOG_FIELDS: usize = 16;
    /// Domains offered in `hello-resp`.
    pub const DOMAINS: usize = 64;
    /// Operations per desktop (there are three kinds).
    pub const OPERATIONS: usize = 8;
}

type Checked<T> = Result<T, MapperError>;

fn bounded(what: &str, value: String, max: usize) -> Checked<String> {
    if value.len() > max {
        return Err(MapperError::InvalidOutput(format!(
            "{what} is {} bytes long; at most {max} are allowed",
            value.len()
        )));
    }
    Ok(value)
}

fn count<T>(what: &str, items: Vec<T>, max: usize) -> Checked<Vec<T>> {
    if items.len() > max {
        return Err(MapperError::InvalidOutput(format!(
            "{} {what}; at most {max} are allowed",
            items.len()
        )));
    }
    Ok(items)
}

/// A mapper's own error message, cut to a sane length for logs.
pub(crate) fn guest_message(message: String) -> String {
    if message.len() <= limits::TEXT {
        return message;
    }
    let mut end = limits::TEXT;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes cut]", &message[..end], message.len() - end)
}

// ---- host → guest -------------------------------------------------------------------------

pub(crate) fn client_to_wit(client: &ClientContext) -> wit::ClientInfo {
    wit::ClientInfo {
        address: client.address.clone(),
        hostname: client.hostname.clone(),
        product_name: client.product_name.clone(),
        product_version: client.product_version.clone(),
        platform: client.platform.clone(),
        locale: client.locale.clone(),
        log_id: client.log_id.clone(),
    }
}

pub(crate) fn login_to_wit(login: &PasswordLogin) -> wit::PasswordLogin {
    wit::PasswordLogin {
        username: login.username.clone(),
        password: login.password.expose().to_owned(),
        domain: login.domain.clone(),
        client: client_to_wit(&login.client),
    }
}

pub(crate) fn identity_to_wit(identity: &Identity) -> wit::Identity {
    wit::Identity {
        username: identity.username.clone(),
        domain: identity.domain.clone(),
        attributes: identity
            .attributes
            .iter()
            .map(|a| wit::Attribute {
                key: a.key.clone(),
                value: a.value.clone(),
            })
            .collect(),
    }
}

pub(crate) fn answers_to_wit(answers: &[FieldAnswer]) -> Vec<wit::FieldAnswer> {
    answers
        .iter()
        .map(|a| wit::FieldAnswer {
            id: a.id.clone(),
            value: a.value.expose().to_owned(),
        })
        .collect()
}

// ---- guest → host -------------------------------------------------------------------------

pub(crate) fn auth_outcome(outcome: wit::AuthOutcome) -> Checked<AuthOutcome> {
    Ok(match outcome {
        wit::AuthOutcome::Accepted(identity) => AuthOutcome::Accepted(self::identity(identity)?),
        wit::AuthOutcome::Rejected(rejection) => AuthOutcome::Rejected(Rejection {
            kind: match rejection.kind {
                wit::RejectionKind::BadCredentials => RejectionKind::BadCredentials,
                wit::RejectionKind::ExpiredPassword => RejectionKind::ExpiredPassword,
                wit::RejectionKind::AccessDenied => RejectionKind::AccessDenied,
                wit::RejectionKind::NoResources => RejectionKind::NoResources,
            },
            reason: bounded("the rejection reason", rejection.reason, limits::TEXT)?,
        }),
        wit::AuthOutcome::Challenge(dialog) => AuthOutcome::Challenge(self::dialog(dialog)?),
    })
}

fn identity(identity: wit::Identity) -> Checked<Identity> {
    let username = bounded("the user name", identity.username, limits::NAME)?;
    if username.is_empty() {
        return Err(MapperError::InvalidOutput(
            "an accepted identity has an empty user name".to_owned(),
        ));
    }
    Ok(Identity {
        username,
        domain: bounded("the domain", identity.domain, limits::NAME)?,
        attributes: count("attributes", identity.attributes, limits::ATTRIBUTES)?
            .into_iter()
            .map(|a| {
                Ok(Attribute {
                    key: bounded("an attribute key", a.key, limits::NAME)?,
                    value: bounded("an attribute value", a.value, limits::TEXT)?,
                })
            })
            .collect::<Checked<_>>()?,
    })
}

fn dialog(dialog: wit::Dialog) -> Checked<Dialog> {
    Ok(Dialog {
        prompt: bounded("the dialog prompt", dialog.prompt, limits::TEXT)?,
        error_text: bounded("the dialog error text", dialog.error_text, limits::TEXT)?,
        fields: count("dialog fields", dialog.fields, limits::DIALOG_FIELDS)?
            .into_iter()
            .map(|f| {
                Ok(DialogField {
                    id: bounded("a dialog field id", f.id, limits::ID)?,
                    label: bounded("a dialog field label", f.label, limits::NAME)?,
                    kind: match f.kind {
                        wit::FieldKind::Text => FieldKind::Text,
                        wit::FieldKind::Secret => FieldKind::Secret,
                        wit::FieldKind::Number => FieldKind::Number,
                        wit::FieldKind::ReadOnly => FieldKind::ReadOnly,
                    },
                })
            })
            .collect::<Checked<_>>()?,
        buttons: Vec::new(),
        state: Secret::new(bounded(
            "the dialog state",
            dialog.state,
            limits::DIALOG_STATE,
        )?),
    })
}

pub(crate) fn desktops(desktops: Vec<wit::Desktop>) -> Checked<Vec<Desktop>> {
    count("desktops", desktops, limits::DESKTOPS)?
        .into_iter()
        .map(desktop)
        .collect()
}

fn desktop(desktop: wit::Desktop) -> Checked<Desktop> {
    let id = bounded("a desktop id", desktop.id, limits::ID)?;
    if id.is_empty() {
        return Err(MapperError::InvalidOutput(
            "a desktop has an empty id".to_owned(),
        ));
    }
    Ok(Desktop {
        id,
        name: bounded("a desktop name", desktop.name, limits::NAME)?,
        hostname: bounded("a desktop hostname", desktop.hostname, limits::HOSTNAME)?,
        agent_port: desktop.agent_port,
        session_kind: match desktop.session_kind {
            wit::SessionKind::Vdi => SessionKind::Vdi,
            wit::SessionKind::Rds => SessionKind::Rds,
        },
        state: match desktop.state {
            wit::DesktopState::Unknown => DesktopState::Unknown,
            wit::DesktopState::Running => DesktopState::Running,
            wit::DesktopState::Stopped => DesktopState::Stopped,
            wit::DesktopState::Starting => DesktopState::Starting,
        },
        // WIT 0.1 has no health; the client shows none.
        health: None,
        operations: count("operations", desktop.operations, limits::OPERATIONS)?
            .into_iter()
            .map(|op| match op {
                wit::Operation::Restart => Operation::Restart,
                wit::Operation::PowerDown => Operation::PowerDown,
                wit::Operation::PowerUp => Operation::PowerUp,
            })
            .collect(),
    })
}

pub(crate) fn allocation(allocation: wit::Allocation) -> Checked<Allocation> {
    Ok(match allocation {
        wit::Allocation::Launch(launch) => Allocation::Launch(Launch {
            hostname: bounded("the launch hostname", launch.hostname, limits::HOSTNAME)?,
            agent_port: launch.agent_port,
            username: launch
                .username
                .map(|u| bounded("the launch user name", u, limits::NAME))
                .transpose()?,
            domain: launch
                .domain
                .map(|d| bounded("the launch domain", d, limits::NAME))
                .transpose()?,
        }),
        wit::Allocation::Direct(target) => {
            if target.connect_tag.is_empty() {
                return Err(MapperError::InvalidOutput(
                    "a direct launch target has an empty connect tag".to_owned(),
                ));
            }
            Allocation::Direct(LaunchTarget {
                ip_address: bounded("the target address", target.ip_address, limits::HOSTNAME)?,
                hostname: bounded("the target hostname", target.hostname, limits::HOSTNAME)?,
                sni: bounded("the target SNI", target.sni, limits::HOSTNAME)?,
                port: target.port,
                session_id: bounded("the session id", target.session_id, limits::ID)?,
                connect_tag: Secret::new(bounded(
                    "the connect tag",
                    target.connect_tag,
                    limits::TEXT,
                )?),
            })
        }
        wit::Allocation::TryAgain(reason) => {
            Allocation::TryAgain(bounded("the try-again reason", reason, limits::TEXT)?)
        }
        wit::Allocation::Refused((kind, reason)) => Allocation::Refused(
            match kind {
                wit::RefusalKind::UnknownDesktop => RefusalKind::UnknownDesktop,
                wit::RefusalKind::NoLicense => RefusalKind::NoLicense,
                wit::RefusalKind::Unavailable => RefusalKind::Unavailable,
            },
            bounded("the refusal reason", reason, limits::TEXT)?,
        ),
    })
}

pub(crate) fn domains(domains: Vec<String>) -> Checked<Vec<String>> {
    count("domains", domains, limits::DOMAINS)?
        .into_iter()
        .map(|d| bounded("a domain", d, limits::NAME))
        .collect()
}

#[cfg(test)]
mod tests {
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
