//! The messages a client sends (reference §3.1, §3.3, §3.5–3.9, §11.1).
//!
//! Unknown elements are ignored, so newer clients keep working; known ones may appear once.
//! Text is trimmed, except a password, which is taken verbatim.

use crate::policy::{FieldAnswer, Operation, Secret};
use crate::xml::tree::Element;

/// Most `<cap>`, `<field>`, `<protocol>` or `<resource-type>` entries read from one list;
/// further ones are ignored.
pub const MAX_LIST_ITEMS: usize = 64;

/// The `hello` product name of the client's broker probe.
pub const PROBE_PRODUCT_NAME: &str = "QueryBrokerClient";

/// The capability a client advertises when it can show an authentication dialog.
pub const CAP_DIALOG_AUTHENTICATION: &str = "CAP_DIALOG_AUTHENTICATION";

/// The capability a client advertises when it can show a disclaimer.
pub const CAP_DISCLAIMER_AUTHENTICATION: &str = "CAP_DISCLAIMER_AUTHENTICATION";

/// The `accept` token of a disclaimer the user accepted.
pub const DISCLAIMER_ACCEPTED: &str = "DISCLAIMER_ACCEPTED";

/// The `accept` token of a disclaimer the user declined.
pub const DISCLAIMER_REJECTED: &str = "DISCLAIMER_REJECTED";

/// A message from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRequest {
    /// `hello`: opens a session (or probes for a broker).
    Hello(Hello),
    /// `authenticate`: one authentication step.
    Authenticate(Authenticate),
    /// `get-resource-list`: the user's desktops.
    GetResourceList(GetResourceList),
    /// `allocate-resource`: connect to one desktop.
    AllocateResource(AllocateResource),
    /// `perform-operation`: restart or power a desktop.
    PerformOperation(PerformOperation),
    /// `update-password`: change an expired password.
    UpdatePassword(UpdatePassword),
    /// `bye`: end the broker session.
    Bye,
    /// Any other message element, answered `ERR_UNSUPPORTED_REQUEST`.
    Unsupported {
        /// The element name.
        name: String,
    },
}

impl ClientRequest {
    /// The message element name, for logs and metrics.
    pub fn name(&self) -> &str {
        match self {
            ClientRequest::Hello(_) => "hello",
            ClientRequest::Authenticate(_) => "authenticate",
            ClientRequest::GetResourceList(_) => "get-resource-list",
            ClientRequest::AllocateResource(_) => "allocate-resource",
            ClientRequest::PerformOperation(_) => "perform-operation",
            ClientRequest::UpdatePassword(_) => "update-password",
            ClientRequest::Bye => "bye",
            ClientRequest::Unsupported { name } => name,
        }
    }
}

/// `hello/client-info`. Every field is empty when absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelloClientInfo {
    /// `product-name` (`QueryBrokerClient` for the probe).
    pub product_name: String,
    /// `product-version`.
    pub product_version: String,
    /// `platform`.
    pub platform: String,
    /// `locale`.
    pub locale: String,
    /// `hostname`.
    pub hostname: String,
    /// `serial-number`.
    pub serial_number: String,
    /// `device-name`.
    pub device_name: String,
    /// `pcoip-unique-id`.
    pub pcoip_unique_id: String,
}

/// `hello/server-address`: the broker address as the client knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerAddress {
    /// `ip-address`.
    pub ip_address: String,
    /// `hostname`.
    pub hostname: String,
}

/// `hello`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hello {
    /// `client-info`.
    pub client_info: HelloClientInfo,
    /// `caps/cap`, in order.
    pub caps: Vec<String>,
    /// `server-address`, when sent.
    pub server_address: Option<ServerAddress>,
}

impl Hello {
    /// True for the client's broker probe, which must not create a session.
    pub fn is_probe(&self) -> bool {
        self.client_info.product_name == PROBE_PRODUCT_NAME
    }

    /// True when the client advertised `cap`.
    pub fn has_cap(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c == cap)
    }
}

/// `authenticate`, by method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authenticate {
    /// `method="password"`.
    Password {
        /// `username`, trimmed.
        username: String,
        /// `password`, verbatim.
        password: Secret,
        /// `domain`; empty when the element is absent.
        domain: String,
    },
    /// `method="dialog"`: answers to a dialog.
    Dialog {
        /// `fields/field/{id,text}`.
        answers: Vec<FieldAnswer>,
        /// `button-id`, when sent.
        button_id: Option<String>,
    },
    /// `method="disclaimer"`: the user's answer to a disclaimer.
    Disclaimer {
        /// True for `DISCLAIMER_ACCEPTED`, false for `DISCLAIMER_REJECTED`.
        accepted: bool,
    },
    /// Any other method (token, smart-card, ...).
    Other {
        /// The `method` attribute.
        method: String,
    },
}

/// `get-resource-list`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetResourceList {
    /// `protocols/protocol` (may be empty).
    pub protocols: Vec<String>,
    /// `resource-types/resource-type` (may be empty).
    pub resource_types: Vec<String>,
}

/// `allocate-resource`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocateResource {
    /// `resource-id` (required).
    pub resource_id: String,
    /// `protocol`; empty when absent.
    pub protocol: String,
    /// `client-info/ip-address`; empty when absent.
    pub client_ip: String,
    /// `client-info/mac-address`; empty when absent.
    pub client_mac: String,
    /// `client-info/time-zone-windows`; empty when absent.
    pub time_zone_windows: String,
}

/// The operation a `perform-operation` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestedOperation {
    /// One of the operations a mapper can perform.
    Known(Operation),
    /// Anything else (`CMD_PWR_SLEEP`, `CMD_PWR_RESUME`, an unknown token), answered
    /// `OP_FAILED_OPERATION_NOT_SUPPORTED`. The token is kept for the log.
    Unknown(String),
}

impl RequestedOperation {
    /// Reads an `operation` token: `CMD_OS_RESTART`, `CMD_PWR_DOWN` or `CMD_PWR_UP` are known.
    pub fn from_token(token: &str) -> Self {
        match token {
            "CMD_OS_RESTART" => Self::Known(Operation::Restart),
            "CMD_PWR_DOWN" => Self::Known(Operation::PowerDown),
            "CMD_PWR_UP" => Self::Known(Operation::PowerUp),
            other => Self::Unknown(other.to_owned()),
        }
    }
}

/// `perform-operation` (reference §11.1 \[R\]): `resource-id` and `operation`, both required.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerformOperation {
    /// `resource-id`: one of the last listing's ids.
    pub resource_id: String,
    /// `operation`.
    pub operation: RequestedOperation,
}

/// `update-password` (reference §11.1 \[R\]): `username`, `old-password`, `new-password`,
/// `domain`. The passwords are required and taken verbatim; the user name and domain are empty
/// when absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdatePassword {
    /// `username`, trimmed.
    pub username: String,
    /// `old-password`, verbatim.
    pub old_password: Secret,
    /// `new-password`, verbatim.
    pub new_password: Secret,
    /// `domain`, trimmed.
    pub domain: String,
}

/// Maps a message element onto a request. An error is an `ERR_INVALID_INVALID_MSG_CONTENT`
/// detail.
pub(crate) fn from_element(message: &Element) -> Result<ClientRequest, String> {
    Ok(match message.name.as_str() {
        "hello" => ClientRequest::Hello(hello(message)?),
        "authenticate" => ClientRequest::Authenticate(authenticate(message)?),
        "get-resource-list" => ClientRequest::GetResourceList(GetResourceList {
            protocols: list(message, "protocols", "protocol")?,
            resource_types: list(message, "resource-types", "resource-type")?,
        }),
        "allocate-resource" => ClientRequest::AllocateResource(allocate(message)?),
        "perform-operation" => ClientRequest::PerformOperation(PerformOperation {
            resource_id: message.required_text("resource-id")?,
            operation: RequestedOperation::from_token(&message.required_text("operation")?),
        }),
        "update-password" => ClientRequest::UpdatePassword(update_password(message)?),
        "bye" => ClientRequest::Bye,
        other => ClientRequest::Unsupported {
            name: other.to_owned(),
        },
    })
}

fn hello(message: &Element) -> Result<Hello, String> {
    let client_info = match message.child("client-info")? {
        Some(info) => HelloClientInfo {
            product_name: info.text_or_empty("product-name")?,
            product_version: info.text_or_empty("product-version")?,
            platform: info.text_or_empty("platform")?,
            locale: info.text_or_empty("locale")?,
            hostname: info.text_or_empty("hostname")?,
            serial_number: info.text_or_empty("serial-number")?,
            device_name: info.text_or_empty("device-name")?,
            pcoip_unique_id: info.text_or_empty("pcoip-unique-id")?,
        },
        None => HelloClientInfo::default(),
    };
    let server_address = match message.child("server-address")? {
        Some(address) => Some(ServerAddress {
            ip_address: address.text_or_empty("ip-address")?,
            hostname: address.text_or_empty("hostname")?,
        }),
        None => None,
    };
    Ok(Hello {
        client_info,
        caps: list(message, "caps", "cap")?,
        server_address,
    })
}

fn authenticate(message: &Element) -> Result<Authenticate, String> {
    // An answer to a dialog is read as one even without its `method` attribute: what a client
    // sends there has only ever been seen with `method="dialog"` (reference §11), and a missing
    // attribute with `<fields>` can mean nothing else.
    let method = match message.attribute("method") {
        Some(method) => method.trim(),
        None if message.child("fields")?.is_some() => "dialog",
        None => return Err("<authenticate> has no method attribute".to_owned()),
    };
    if method.eq_ignore_ascii_case("password") {
        let password = message
            .child("password")?
            .ok_or_else(|| "<authenticate> has no <password>".to_owned())?;
        Ok(Authenticate::Password {
            username: message.required_text("username")?,
            password: Secret::new(password.text.as_str()),
            domain: message.text_or_empty("domain")?,
        })
    } else if method.eq_ignore_ascii_case("dialog") {
        let mut answers = Vec::new();
        if let Some(fields) = message.child("fields")? {
            for field in fields.children_named("field").take(MAX_LIST_ITEMS) {
                answers.push(FieldAnswer {
                    id: field.required_text("id")?,
                    value: Secret::new(field.text_or_empty("text")?),
                });
            }
        }
        Ok(Authenticate::Dialog {
            answers,
            button_id: message.child_text("button-id")?,
        })
    } else if method.eq_ignore_ascii_case("disclaimer") {
        let accept = message.required_text("accept")?;
        let accepted = if accept == DISCLAIMER_ACCEPTED {
            true
        } else if accept == DISCLAIMER_REJECTED {
            false
        } else {
            return Err(
                "<accept> is neither DISCLAIMER_ACCEPTED nor DISCLAIMER_REJECTED".to_owned(),
            );
        };
        Ok(Authenticate::Disclaimer { accepted })
    } else {
        Ok(Authenticate::Other {
            method: method.to_owned(),
        })
    }
}

fn update_password(message: &Element) -> Result<UpdatePassword, String> {
    let verbatim = |name: &str| -> Result<Secret, String> {
        message
            .child(name)?
            .map(|element| Secret::new(element.text.as_str()))
            .ok_or_else(|| format!("<update-password> has no <{name}>"))
    };
    Ok(UpdatePassword {
        username: message.text_or_empty("username")?,
        old_password: verbatim("old-password")?,
        new_password: verbatim("new-password")?,
        domain: message.text_or_empty("domain")?,
    })
}

fn allocate(message: &Element) -> Result<AllocateResource, String> {
    let (client_ip, client_mac, time_zone_windows) = match message.child("client-info")? {
        Some(info) => (
            info.text_or_empty("ip-address")?,
            info.text_or_empty("mac-address")?,
            info.text_or_empty("time-zone-windows")?,
        ),
        None => Default::default(),
    };
    Ok(AllocateResource {
        resource_id: message.required_text("resource-id")?,
        protocol: message.text_or_empty("protocol")?,
        client_ip,
        client_mac,
        time_zone_windows,
    })
}

/// The trimmed texts of `parent/list/item`, at most [`MAX_LIST_ITEMS`].
fn list(parent: &Element, list: &str, item: &str) -> Result<Vec<String>, String> {
    let Some(list) = parent.child(list)? else {
        return Ok(Vec::new());
    };
    Ok(list
        .children_named(item)
        .take(MAX_LIST_ITEMS)
        .map(|element| element.text.trim().to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tree;

    fn decode(xml: &str) -> Result<ClientRequest, String> {
        from_element(&tree::parse(xml.as_bytes()).unwrap())
    }

    #[test]
    fn dialog_answers_are_read() {
        let request = decode(
            "<authenticate method='dialog'><fields><field><id>otp</id><text do-not-log='true'> 123456 </text></field></fields><button-id>ok</button-id></authenticate>",
        )
        .unwrap();
        let ClientRequest::Authenticate(Authenticate::Dialog { answers, button_id }) = request
        else {
            panic!("not a dialog answer");
        };
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].id, "otp");
        assert_eq!(answers[0].value.expose(), "123456");
        assert_eq!(button_id.as_deref(), Some("ok"));
    }

    #[test]
    fn other_methods_and_unknown_messages() {
        assert_eq!(
            decode("<authenticate method='disclaimer'><accept>DISCLAIMER_ACCEPTED</accept></authenticate>")
                .unwrap(),
            ClientRequest::Authenticate(Authenticate::Disclaimer { accepted: true })
        );
        assert_eq!(
            decode("<authenticate method='disclaimer'><accept> DISCLAIMER_REJECTED </accept></authenticate>")
                .unwrap(),
            ClientRequest::Authenticate(Authenticate::Disclaimer { accepted: false })
        );
        assert!(
            decode("<authenticate method='disclaimer'><accept>YES</accept></authenticate>")
                .is_err()
        );
        assert!(decode("<authenticate method='disclaimer'></authenticate>").is_err());
        assert_eq!(
            decode("<authenticate method='token'><auth-token>x</auth-token></authenticate>")
                .unwrap(),
            ClientRequest::Authenticate(Authenticate::Other {
                method: "token".into()
            })
        );
        assert_eq!(
            decode("<get-authentication-method/>").unwrap(),
            ClientRequest::Unsupported {
                name: "get-authentication-method".into()
            }
        );
        assert!(decode("<perform-operation/>").is_err());
        assert!(decode("<authenticate><username>a</username></authenticate>").is_err());
    }

    #[test]
    fn a_dialog_answer_without_method_is_a_dialog_answer() {
        let request = decode(
            "<authenticate><fields><field><id>otp</id><text>1</text></field></fields></authenticate>",
        )
        .unwrap();
        assert!(matches!(
            request,
            ClientRequest::Authenticate(Authenticate::Dialog { .. })
        ));
    }

    #[test]
    fn missing_and_duplicated_fields_name_the_element_only() {
        let error = decode("<authenticate method='password'><username>a</username></authenticate>")
            .unwrap_err();
        assert!(error.contains("<password>"), "{error}");
        let error = decode(
            "<authenticate method='password'><username>a</username><password>p1</password><password>p2</password></authenticate>",
        )
        .unwrap_err();
        assert!(!error.contains("p1") && !error.contains("p2"), "{error}");
        assert!(
            decode("<allocate-resource><protocol>PCOIP</protocol></allocate-resource>").is_err()
        );
    }
}
