//! The broker's replies (reference §3.2, §3.4, §3.6, §3.8, §3.9, §3.10) and their encoding.
//!
//! Dialog fields (an inference, reference §3.2 vocabulary): every field is
//! `<field><id/><type/><label/></field>`. `type` is `text`, or `read-only-text` for
//! [`FieldKind::ReadOnly`]. A [`FieldKind::Secret`] field is `text` with `hidden="true"` and
//! `do-not-log="true"` on `<field>`, so the client masks it and keeps it out of its logs. A
//! [`FieldKind::Number`] field adds `<text-type>number</text-type>`.

use crate::message::{PROTOCOL_VERSION, Root};
use crate::policy::{
    Desktop, DesktopState, DialogField, FieldKind, LaunchTarget, Operation, SessionKind,
};
use crate::result_id::{AllocResult, AuthResult, ErrorId, ListResult};
use crate::xml::writer::XmlWriter;

/// The authentication method token the broker offers.
pub const AUTHENTICATE_VIA_PASSWORD: &str = "AUTHENTICATE_VIA_PASSWORD";

/// The method token of a dialog step.
pub const AUTHENTICATE_VIA_DIALOG: &str = "AUTHENTICATE_VIA_DIALOG";

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
    /// `next-authentication/domains/domain`; `<domains>` is omitted when empty.
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
    /// The next step (`next-authentication` with `AUTHENTICATE_VIA_DIALOG`).
    pub dialog: Option<DialogParameters>,
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

/// Encodes `reply` in `root`: the XML declaration, then `<ROOT version="2.1">...</ROOT>`.
pub fn encode_reply(root: Root, reply: &BrokerReply) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.open(root.as_str(), &[("version", PROTOCOL_VERSION)]);
    match reply {
        BrokerReply::Hello(resp) => hello(&mut w, resp),
        BrokerReply::Authenticate(resp) => authenticate(&mut w, resp),
        BrokerReply::ResourceList(resp) => resource_list(&mut w, resp),
        BrokerReply::Allocate(resp) => allocate(&mut w, resp),
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
    w.open("next-authentication", &[]);
    w.open("authentication-methods", &[]);
    w.leaf("method", AUTHENTICATE_VIA_PASSWORD);
    w.close("authentication-methods");
    if !resp.domains.is_empty() {
        w.open("domains", &[]);
        for domain in &resp.domains {
            w.leaf("domain", domain);
        }
        w.close("domains");
    }
    w.close("next-authentication");
    w.close("hello-resp");
}

fn authenticate(w: &mut XmlWriter, resp: &AuthenticateResp) {
    match &resp.method {
        Some(method) => w.open("authenticate-resp", &[("method", method)]),
        None => w.open("authenticate-resp", &[]),
    }
    result(w, resp.result_id.as_str(), &resp.result_str);
    if let Some(dialog) = &resp.dialog {
        w.open("next-authentication", &[]);
        w.open("authentication-methods", &[]);
        w.leaf("method", AUTHENTICATE_VIA_DIALOG);
        w.close("authentication-methods");
        w.open("dialog-parameters", &[]);
        w.leaf("prompt", &dialog.prompt);
        w.leaf("error-text", &dialog.error_text);
        w.open("fields", &[]);
        for field in &dialog.fields {
            dialog_field(w, field);
        }
        w.close("fields");
        w.close("dialog-parameters");
        w.close("next-authentication");
    }
    w.close("authenticate-resp");
}

fn dialog_field(w: &mut XmlWriter, field: &DialogField) {
    match field.kind {
        FieldKind::Secret => w.open("field", &[("hidden", "true"), ("do-not-log", "true")]),
        _ => w.open("field", &[]),
    }
    w.leaf("id", &field.id);
    let kind = match field.kind {
        FieldKind::ReadOnly => "read-only-text",
        FieldKind::Text | FieldKind::Secret | FieldKind::Number => "text",
    };
    w.leaf("type", kind);
    w.leaf("label", &field.label);
    if field.kind == FieldKind::Number {
        w.leaf("text-type", "number");
    }
    w.close("field");
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

/// The `supported-operation` token.
pub fn operation_token(operation: Operation) -> &'static str {
    match operation {
        Operation::Restart => "CMD_OS_RESTART",
        Operation::PowerDown => "CMD_PWR_DOWN",
        Operation::PowerUp => "CMD_PWR_UP",
    }
}
