//! Conversions between the generated bindings and `interstate_protocol::policy`, enforcing the
//! contract's bounds on everything the mapper answers.
//!
//! The records both contract versions share are converted by one macro, [`shared_records!`],
//! expanded once per version ([`v01`], [`v02`]); what differs (dialogs with buttons, the
//! disclaimer, the 0.2-only records) is written out in the version's module.

use interstate_protocol::policy::{
    Dialog, DialogButton, DialogField, Disclaimer, MapperError, Secret,
};

pub(crate) mod v01;
pub(crate) mod v02;

/// Bounds on what a mapper may answer (see `wit/mapper.wit`).
pub(crate) mod limits {
    /// User names, domains, desktop names, attribute keys, labels.
    pub const NAME: usize = 256;
    /// Desktop ids, dialog field and button ids, session ids.
    pub const ID: usize = 128;
    /// Host names and addresses.
    pub const HOSTNAME: usize = 255;
    /// Attribute values, reasons, prompts, disclaimers and other free text.
    pub const TEXT: usize = 4096;
    /// Attributes per identity.
    pub const ATTRIBUTES: usize = 64;
    /// Desktops per listing.
    pub const DESKTOPS: usize = 512;
    /// Dialog and disclaimer state kept by the host.
    pub const DIALOG_STATE: usize = 16 * 1024;
    /// Fields per dialog.
    pub const DIALOG_FIELDS: usize = 16;
    /// Buttons per dialog.
    pub const DIALOG_BUTTONS: usize = 8;
    /// Domains offered in `hello-resp`.
    pub const DOMAINS: usize = 64;
    /// Operations per desktop (there are three kinds).
    pub const OPERATIONS: usize = 8;
}

pub(crate) type Checked<T> = Result<T, MapperError>;

pub(crate) fn bounded(what: &str, value: String, max: usize) -> Checked<String> {
    if value.len() > max {
        return Err(MapperError::InvalidOutput(format!(
            "{what} is {} bytes long; at most {max} are allowed",
            value.len()
        )));
    }
    Ok(value)
}

pub(crate) fn count<T>(what: &str, items: Vec<T>, max: usize) -> Checked<Vec<T>> {
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

/// The parts of a dialog, already converted field by field, bounded into a [`Dialog`].
pub(crate) fn dialog(
    prompt: String,
    error_text: String,
    fields: Vec<DialogField>,
    buttons: Vec<DialogButton>,
    state: String,
) -> Checked<Dialog> {
    Ok(Dialog {
        prompt: bounded("the dialog prompt", prompt, limits::TEXT)?,
        error_text: bounded("the dialog error text", error_text, limits::TEXT)?,
        fields,
        buttons: count("dialog buttons", buttons, limits::DIALOG_BUTTONS)?
            .into_iter()
            .map(|b| {
                Ok(DialogButton {
                    id: bounded("a dialog button id", b.id, limits::ID)?,
                    label: bounded("a dialog button label", b.label, limits::NAME)?,
                    is_default: b.is_default,
                })
            })
            .collect::<Checked<_>>()?,
        state: Secret::new(bounded("the dialog state", state, limits::DIALOG_STATE)?),
    })
}

/// A disclaimer's text and state, bounded (text like free text, state like a dialog state).
pub(crate) fn disclaimer(text: String, state: String) -> Checked<Disclaimer> {
    Ok(Disclaimer {
        text: bounded("the disclaimer text", text, limits::TEXT)?,
        state: Secret::new(bounded(
            "the disclaimer state",
            state,
            limits::DIALOG_STATE,
        )?),
    })
}

/// Conversions of the records that 0.1 and 0.2 share, for the bindings module `wit` in scope
/// where the macro is expanded.
macro_rules! shared_records {
    () => {
        use interstate_protocol::policy::{
            Allocation, Attribute, ClientContext, Desktop, DesktopState, DialogField, FieldAnswer,
            FieldKind, Identity, Launch, LaunchTarget, Operation, PasswordLogin, RefusalKind,
            Rejection, RejectionKind, Secret, SessionKind,
        };

        use $crate::convert::{Checked, bounded, count, limits};

        // ---- host → guest ---------------------------------------------------------------

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

        /// The login with its password copied in: wipe it after the call.
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

        /// The answers with their values copied in: wipe them after the call.
        pub(crate) fn answers_to_wit(answers: &[FieldAnswer]) -> Vec<wit::FieldAnswer> {
            answers
                .iter()
                .map(|a| wit::FieldAnswer {
                    id: a.id.clone(),
                    value: a.value.expose().to_owned(),
                })
                .collect()
        }

        // ---- guest → host ---------------------------------------------------------------

        fn rejection(rejection: wit::Rejection) -> Checked<Rejection> {
            Ok(Rejection {
                kind: match rejection.kind {
                    wit::RejectionKind::BadCredentials => RejectionKind::BadCredentials,
                    wit::RejectionKind::ExpiredPassword => RejectionKind::ExpiredPassword,
                    wit::RejectionKind::AccessDenied => RejectionKind::AccessDenied,
                    wit::RejectionKind::NoResources => RejectionKind::NoResources,
                },
                reason: bounded("the rejection reason", rejection.reason, limits::TEXT)?,
            })
        }

        fn identity(identity: wit::Identity) -> Checked<Identity> {
            let username = bounded("the user name", identity.username, limits::NAME)?;
            if username.is_empty() {
                return Err(interstate_protocol::policy::MapperError::InvalidOutput(
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

        fn dialog_fields(fields: Vec<wit::DialogField>) -> Checked<Vec<DialogField>> {
            count("dialog fields", fields, limits::DIALOG_FIELDS)?
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
                .collect()
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
                return Err(interstate_protocol::policy::MapperError::InvalidOutput(
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
                // The contract has no health; the client shows none.
                health: None,
                operations: count("operations", desktop.operations, limits::OPERATIONS)?
                    .into_iter()
                    .map(operation)
                    .collect(),
            })
        }

        fn operation(op: wit::Operation) -> Operation {
            match op {
                wit::Operation::Restart => Operation::Restart,
                wit::Operation::PowerDown => Operation::PowerDown,
                wit::Operation::PowerUp => Operation::PowerUp,
            }
        }

        #[allow(
            dead_code,
            reason = "0.1 has no operate export to pass an operation to"
        )]
        pub(crate) fn operation_to_wit(op: Operation) -> wit::Operation {
            match op {
                Operation::Restart => wit::Operation::Restart,
                Operation::PowerDown => wit::Operation::PowerDown,
                Operation::PowerUp => wit::Operation::PowerUp,
            }
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
                        return Err(interstate_protocol::policy::MapperError::InvalidOutput(
                            "a direct launch target has an empty connect tag".to_owned(),
                        ));
                    }
                    Allocation::Direct(LaunchTarget {
                        ip_address: bounded(
                            "the target address",
                            target.ip_address,
                            limits::HOSTNAME,
                        )?,
                        hostname: bounded(
                            "the target hostname",
                            target.hostname,
                            limits::HOSTNAME,
                        )?,
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
    };
}
pub(crate) use shared_records;

/// The domains `domains()` answered, bounded (the same in every version).
pub(crate) fn domains(domains: Vec<String>) -> Checked<Vec<String>> {
    count("domains", domains, limits::DOMAINS)?
        .into_iter()
        .map(|d| bounded("a domain", d, limits::NAME))
        .collect()
}
