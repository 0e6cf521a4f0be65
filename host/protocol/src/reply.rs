//! The broker's replies (reference §3.2, §3.4–3.10) and their encoding.
//!
//! Every shape the HP Anyware 24.07.3 client library parses is written as reference §11 shows
//! it was seen to work with that library \[R\]; where §11 and an older section disagree, §11 wins:
//!
//! - `hello-resp` always has `<domains>` with at least one `<domain>`: without one the library
//!   stops a password login ("Could not find domains tag"), so an empty list is sent as one
//!   empty `<domain></domain>`.
//! - A dialog is `next-authentication/dialog-parameters` with `prompt` (always present),
//!   `error-text`, `fields/field` and `buttons/button`. A field is
//!   `<field type="text|read-only-text"><id/><label/><text hidden=".." do-not-log=".."
//!   text-type=".."/></field>`: `type` is an attribute of `<field>`, the input flags are
//!   attributes of `<text>`, and flags are exactly `true`/`false`. Fields or buttons outside
//!   their wrapper parse as zero items, silently. Every dialog has at least one button (an
//!   `OK` default when the mapper names none).
//! - A disclaimer is `next-authentication/disclaimer`.
//! - `error-resp` keeps its `<result>` wrapper and `<detected-by>`; `err-detail` is optional.
//! - A resource may carry `health-state` and `supported-operations`, after `protocols`.
//! - `perform-operation-resp` and `update-password-resp` are a `<result>` (§11.1); the latter
//!   carries a `next-authentication` (a dialog, a disclaimer or the password) with
//!   `PSWD_UPDATE_SUCCESSFUL_AUTH_INCOMPLETE`. A password `next-authentication` there is written
//!   like `hello-resp`'s, with its `<domains>` \[I\]: the library accepted a password next step
//!   after `update-password` (§11.1), but only `hello-resp`'s shape is known in detail.

use crate::message::DecodeError;
pub use crate::policy::{DEFAULT_BUTTON_ID, DialogButton};
use crate::policy::{
    Desktop, DesktopState, DialogField, FieldKind, HealthState, LaunchTarget, Operation,
    SessionKind,
};
use crate::result_id::{
    AllocResult, AuthResult, ErrorId, ListResult, OperationResult, PasswordResult,
};
use crate::root::{PROTOCOL_VERSION, Root};
use crate::xml::writer::XmlWriter;

/// The authentication method token the broker offers.
pub const AUTHENTICATE_VIA_PASSWORD: &str = "AUTHENTICATE_VIA_PASSWORD";

/// The method token of a dialog step.
pub const AUTHENTICATE_VIA_DIALOG: &str = "AUTHENTICATE_VIA_DIALOG";

/// The method token of a disclaimer step.
pub const AUTHENTICATE_VIA_DISCLAIMER: &str = "AUTHENTICATE_VIA_DISCLAIMER";

/// A reply to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerReply {
    /// `hello-resp`.
    Hello(HelloResp),
    /// `authenticate-resp`.
    Authenticate(AuthenticateResp),
    /// `get-resource-list-resp`.
    ResourceList(ResourceListResp),
    /// `allocate-resource-resp`.
    Allocate(AllocateResp),
    /// `perform-operation-resp`.
    Operation(OperationResp),
    /// `update-password-resp`.
    UpdatePassword(UpdatePasswordResp),
    /// `bye-resp`.
    Bye,
    /// `error-resp`.
    Error(ErrorResp),
}

impl BrokerReply {
    /// An `error-resp` with `id`'s default text.
    pub fn error(id: ErrorId, detail: Option<String>) -> Self {
        BrokerReply::Error(ErrorResp {
            result_id: id,
            result_str: id.default_text().to_owned(),
            detail,
        })
    }

    /// The reply element name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            BrokerReply::Hello(_) => "hello-resp",
            BrokerReply::Authenticate(_) => "authenticate-resp",
            BrokerReply::ResourceList(_) => "get-resource-list-resp",
            BrokerReply::Allocate(_) => "allocate-resource-resp",
            BrokerReply::Operation(_) => "perform-operation-resp",
            BrokerReply::UpdatePassword(_) => "update-password-resp",
            BrokerReply::Bye => "bye-resp",
            BrokerReply::Error(_) => "error-resp",
        }
    }

    /// The `result-id` token, when the reply has one.
    pub fn result_id(&self) -> Option<&'static str> {
        match self {
            BrokerReply::Hello(_) | BrokerReply::Bye => None,
            BrokerReply::Authenticate(resp) => Some(resp.result_id.as_str()),
            BrokerReply::ResourceList(resp) => Some(resp.result_id.as_str()),
            BrokerReply::Allocate(resp) => Some(resp.result_id.as_str()),
            BrokerReply::Operation(resp) => Some(resp.result_id.as_str()),
            BrokerReply::UpdatePassword(resp) => Some(resp.result_id.as_str()),
            BrokerReply::Error(resp) => Some(resp.result_id.as_str()),
        }
    }
}

/// The broker's identity in `hello-resp`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerInfo {
    /// `product-name`.
    pub product_name: String,
    /// `product-version`.
    pub product_version: String,
    /// `platform`.
    pub platform: String,
    /// `locale`.
    pub locale: String,
    /// `ip-address`.
    pub ip_address: String,
    /// `hostname`.
    pub hostname: String,
}

/// `hello-resp`: the broker and the password method, with the logon domains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelloResp {
    /// `brokers-info/broker-info`.
    pub broker_info: BrokerInfo,
    /// `next-authentication/domains/domain`; an empty list is sent as one empty `<domain>`,
    /// because the client library needs at least one (reference §11).
    pub domains: Vec<String>,
}

/// The dialog of an `AUTH_SUCCESSFUL_AND_INCOMPLETE` reply (no mapper state: that never leaves
/// the broker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialogParameters {
    /// `prompt`.
    pub prompt: String,
    /// `error-text` (empty for none).
    pub error_text: String,
    /// `fields/field`.
    pub fields: Vec<DialogField>,
    /// `buttons/button`; when empty, one default `OK` button ([`DEFAULT_BUTTON_ID`]) is sent.
    pub buttons: Vec<DialogButton>,
}

/// What an `authenticate-resp` asks for next, in `next-authentication`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextAuthentication {
    /// `AUTHENTICATE_VIA_DIALOG` with its `dialog-parameters`.
    Dialog(DialogParameters),
    /// `AUTHENTICATE_VIA_DISCLAIMER` with the disclaimer text.
    Disclaimer(String),
    /// `AUTHENTICATE_VIA_PASSWORD` with the logon domains (sent as one empty `<domain>` when
    /// empty, as in `hello-resp`).
    Password(Vec<String>),
}

/// `authenticate-resp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticateResp {
    /// The `method` attribute: `Some("password")` for a password step, `None` for a dialog.
    pub method: Option<String>,
    /// `result/result-id`.
    pub result_id: AuthResult,
    /// `result/result-str`, shown to the user.
    pub result_str: String,
    /// The next step, with `AUTH_SUCCESSFUL_AND_INCOMPLETE`.
    pub next: Option<NextAuthentication>,
}

/// `get-resource-list-resp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceListResp {
    /// `result/result-id`.
    pub result_id: ListResult,
    /// `result/result-str`.
    pub result_str: String,
    /// One `resource` each.
    pub resources: Vec<Desktop>,
}

/// `allocate-resource-resp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocateResp {
    /// `result/result-id`.
    pub result_id: AllocResult,
    /// `result/result-str`.
    pub result_str: String,
    /// `target`, on success only.
    pub target: Option<LaunchTarget>,
    /// `resource-id`, echoed from the request (omitted when empty).
    pub resource_id: String,
    /// `protocol` (omitted when empty).
    pub protocol: String,
}

/// `perform-operation-resp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationResp {
    /// `result/result-id`.
    pub result_id: OperationResult,
    /// `result/result-str`, shown to the user.
    pub result_str: String,
}

/// `update-password-resp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdatePasswordResp {
    /// `result/result-id`.
    pub result_id: PasswordResult,
    /// `result/result-str`, shown to the user.
    pub result_str: String,
    /// The next step, with `PSWD_UPDATE_SUCCESSFUL_AUTH_INCOMPLETE`.
    pub next: Option<NextAuthentication>,
}

/// `error-resp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResp {
    /// `result/result-id`.
    pub result_id: ErrorId,
    /// `result/result-str`.
    pub result_str: String,
    /// `err-detail`, when there is one worth showing.
    pub detail: Option<String>,
}

impl DecodeError {
    /// The `error-resp` to send back for a request that could not be decoded.
    pub fn reply(&self) -> BrokerReply {
        BrokerReply::Error(ErrorResp {
            result_id: self.result_id,
            result_str: self.result_id.default_text().to_owned(),
            detail: Some(self.detail.clone()),
        })
    }
}

/// Encodes `reply` in `root`: the XML declaration, then `<ROOT version="2.1">...</ROOT>`.
pub fn encode_reply(root: Root, reply: &BrokerReply) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.open(root.as_str(), &[("version", PROTOCOL_VERSION)]);
    match reply {
        BrokerReply::Hello(resp) => hello(&mut w, resp),
        BrokerReply::Authenticate(resp) => authenticate(&mut w, resp),
        BrokerReply::ResourceList(resp) => resource_list(&mut w, resp),
        BrokerReply::Allocate(resp) => allocate(&mut w, resp),
        BrokerReply::Operation(resp) => {
            w.open("perform-operation-resp", &[]);
            result(&mut w, resp.result_id.as_str(), &resp.result_str);
            w.close("perform-operation-resp");
        }
        BrokerReply::UpdatePassword(resp) => {
            w.open("update-password-resp", &[]);
            result(&mut w, resp.result_id.as_str(), &resp.result_str);
            if let Some(next) = &resp.next {
                next_authentication(&mut w, next);
            }
            w.close("update-password-resp");
        }
        BrokerReply::Bye => w.leaf("bye-resp", ""),
        BrokerReply::Error(resp) => {
            w.open("error-resp", &[]);
            result(&mut w, resp.result_id.as_str(), &resp.result_str);
            w.leaf("detected-by", "BROKER");
            if let Some(detail) = &resp.detail {
                w.leaf("err-detail", detail);
            }
            w.close("error-resp");
        }
    }
    w.close(root.as_str());
    w.finish()
}

fn result(w: &mut XmlWriter, id: &str, text: &str) {
    w.open("result", &[]);
    w.leaf("result-id", id);
    w.leaf("result-str", text);
    w.close("result");
}

fn hello(w: &mut XmlWriter, resp: &HelloResp) {
    let info = &resp.broker_info;
    w.open("hello-resp", &[]);
    w.open("brokers-info", &[]);
    w.open("broker-info", &[]);
    w.leaf("product-name", &info.product_name);
    w.leaf("product-version", &info.product_version);
    w.leaf("platform", &info.platform);
    w.leaf("locale", &info.locale);
    w.leaf("ip-address", &info.ip_address);
    w.leaf("hostname", &info.hostname);
    w.close("broker-info");
    w.close("brokers-info");
    next_authentication(w, &NextAuthentication::Password(resp.domains.clone()));
    w.close("hello-resp");
}

/// `domains/domain`, with at least one `<domain>` (reference §11).
fn domains(w: &mut XmlWriter, domains: &[String]) {
    w.open("domains", &[]);
    if domains.is_empty() {
        w.leaf("domain", "");
    }
    for domain in domains {
        w.leaf("domain", domain);
    }
    w.close("domains");
}

fn authenticate(w: &mut XmlWriter, resp: &AuthenticateResp) {
    match &resp.method {
        Some(method) => w.open("authenticate-resp", &[("method", method)]),
        None => w.open("authenticate-resp", &[]),
    }
    result(w, resp.result_id.as_str(), &resp.result_str);
    if let Some(next) = &resp.next {
        next_authentication(w, next);
    }
    w.close("authenticate-resp");
}

/// `next-authentication` with its one method and what that method needs.
fn next_authentication(w: &mut XmlWriter, next: &NextAuthentication) {
    match next {
        NextAuthentication::Dialog(dialog) => {
            next_method(w, AUTHENTICATE_VIA_DIALOG);
            dialog_parameters(w, dialog);
        }
        NextAuthentication::Disclaimer(text) => {
            next_method(w, AUTHENTICATE_VIA_DISCLAIMER);
            w.leaf("disclaimer", text);
        }
        NextAuthentication::Password(list) => {
            next_method(w, AUTHENTICATE_VIA_PASSWORD);
            domains(w, list);
        }
    }
    w.close("next-authentication");
}

/// Opens `next-authentication` with its one method.
fn next_method(w: &mut XmlWriter, method: &str) {
    w.open("next-authentication", &[]);
    w.open("authentication-methods", &[]);
    w.leaf("method", method);
    w.close("authentication-methods");
}

fn dialog_parameters(w: &mut XmlWriter, dialog: &DialogParameters) {
    w.open("dialog-parameters", &[]);
    w.leaf("prompt", &dialog.prompt);
    w.leaf("error-text", &dialog.error_text);
    w.open("fields", &[]);
    for field in &dialog.fields {
        dialog_field(w, field);
    }
    w.close("fields");
    w.open("buttons", &[]);
    if dialog.buttons.is_empty() {
        dialog_button(w, &DialogButton::ok());
    }
    for button in &dialog.buttons {
        dialog_button(w, button);
    }
    w.close("buttons");
    w.close("dialog-parameters");
}

fn dialog_field(w: &mut XmlWriter, field: &DialogField) {
    let kind = match field.kind {
        FieldKind::ReadOnly => "read-only-text",
        FieldKind::Text | FieldKind::Secret | FieldKind::Number => "text",
    };
    w.open("field", &[("type", kind)]);
    w.leaf("id", &field.id);
    w.leaf("label", &field.label);
    if field.kind != FieldKind::ReadOnly {
        let secret = flag(field.kind == FieldKind::Secret);
        let mut attributes = vec![("hidden", secret), ("do-not-log", secret)];
        if field.kind == FieldKind::Number {
            attributes.push(("text-type", "number"));
        }
        w.leaf_with("text", &attributes, "");
    }
    w.close("field");
}

fn dialog_button(w: &mut XmlWriter, button: &DialogButton) {
    w.open("button", &[("is-default", flag(button.is_default))]);
    w.leaf("id", &button.id);
    w.leaf("label", &button.label);
    w.close("button");
}

/// A flag as the client library reads it: exactly `true` or `false`.
fn flag(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

fn resource_list(w: &mut XmlWriter, resp: &ResourceListResp) {
    w.open("get-resource-list-resp", &[]);
    result(w, resp.result_id.as_str(), &resp.result_str);
    for desktop in &resp.resources {
        w.open("resource", &[]);
        w.leaf("resource-name", &desktop.name);
        w.leaf("resource-id", &desktop.id);
        w.leaf_with(
            "resource-type",
            &[("session-type", session_type(desktop.session_kind))],
            "DESKTOP",
        );
        w.leaf("resource-state", resource_state(desktop.state));
        w.open("protocols", &[]);
        w.leaf_with("protocol", &[("is-default", "true")], "PCOIP");
        w.close("protocols");
        if let Some(health) = desktop.health {
            w.leaf("health-state", health_state(health));
        }
        if !desktop.operations.is_empty() {
            w.open("supported-operations", &[]);
            for operation in &desktop.operations {
                w.leaf("supported-operation", operation_token(*operation));
            }
            w.close("supported-operations");
        }
        w.close("resource");
    }
    w.close("get-resource-list-resp");
}

fn allocate(w: &mut XmlWriter, resp: &AllocateResp) {
    w.open("allocate-resource-resp", &[]);
    result(w, resp.result_id.as_str(), &resp.result_str);
    if let Some(target) = &resp.target {
        w.open("target", &[]);
        w.leaf("ip-address", &target.ip_address);
        w.leaf("hostname", &target.hostname);
        w.leaf("sni", &target.sni);
        w.leaf("port", &target.port.to_string());
        w.leaf("session-id", &target.session_id);
        w.leaf("connect-tag", target.connect_tag.expose());
        w.close("target");
    }
    if !resp.resource_id.is_empty() {
        w.leaf("resource-id", &resp.resource_id);
    }
    if !resp.protocol.is_empty() {
        w.leaf("protocol", &resp.protocol);
    }
    w.close("allocate-resource-resp");
}

/// The `session-type` attribute token.
pub fn session_type(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Vdi => "VDI",
        SessionKind::Rds => "RDS",
    }
}

/// The `resource-state` token.
pub fn resource_state(state: DesktopState) -> &'static str {
    match state {
        DesktopState::Unknown => "UNKNOWN",
        DesktopState::Running => "RUNNING",
        DesktopState::Stopped => "STOPPED",
        DesktopState::Starting => "STARTING",
    }
}

/// The `health-state` token.
pub fn health_state(health: HealthState) -> &'static str {
    match health {
        HealthState::Healthy => "HEALTHY",
        HealthState::Unhealthy => "UNHEALTHY",
    }
}

/// The `supported-operation` token.
pub fn operation_token(operation: Operation) -> &'static str {
    match operation {
        Operation::Restart => "CMD_OS_RESTART",
        Operation::PowerDown => "CMD_PWR_DOWN",
        Operation::PowerUp => "CMD_PWR_UP",
    }
}
