//! The replies the session's steps send.

use super::PROTOCOL_PCOIP;
use crate::client::AllocateResource;
use crate::policy::Desktop;
use crate::reply::{AllocateResp, AuthenticateResp, BrokerReply, ResourceListResp};
use crate::result_id::{AllocResult, AuthResult, ListResult};

pub(super) fn auth_reply(method: Option<String>, id: AuthResult) -> BrokerReply {
    BrokerReply::Authenticate(AuthenticateResp {
        method,
        result_id: id,
        result_str: id.default_text().into(),
        next: None,
    })
}

pub(super) fn list_reply(id: ListResult, resources: Vec<Desktop>) -> BrokerReply {
    BrokerReply::ResourceList(ResourceListResp {
        result_id: id,
        result_str: id.default_text().into(),
        resources,
    })
}

pub(super) fn alloc_failure(
    request: Option<&AllocateResource>,
    id: AllocResult,
    text: Option<&str>,
) -> BrokerReply {
    BrokerReply::Allocate(AllocateResp {
        result_id: id,
        result_str: text.unwrap_or(id.default_text()).into(),
        target: None,
        resource_id: request.map(|r| r.resource_id.clone()).unwrap_or_default(),
        protocol: request.map(reply_protocol).unwrap_or_default(),
    })
}

/// The protocol the reply names: the request's, or PCoIP.
pub(super) fn reply_protocol(request: &AllocateResource) -> String {
    if request.protocol.is_empty() {
        PROTOCOL_PCOIP.into()
    } else {
        request.protocol.clone()
    }
}

/// `10 s`, `2.5 s`.
pub(super) fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    }
}

/// A network-supplied token made safe to show: at most 64 characters of `[A-Za-z0-9_.:-]`.
pub(super) fn printable(token: &str) -> String {
    token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        .take(64)
        .collect()
}
