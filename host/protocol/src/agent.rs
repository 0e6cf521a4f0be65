//! The broker → agent protocol (reference §4): `launch-session` and `launch-session-resp` in
//! `<pcoip-agent version="1.0">`.
//!
//! The broker encodes the request and decodes the response; the test fake agent does the
//! reverse, so both directions exist. Decoding follows the same no-DTD, bounded rules as the
//! client protocol; the agent's result ids are kept as strings and compared case-insensitively
//! by the session.

use crate::message::DecodeError;
use crate::policy::Secret;
use crate::result_id::ErrorId;
use crate::xml::tree::{self, Element};
use crate::xml::writer::XmlWriter;

/// The agent protocol root element.
pub const AGENT_ROOT: &str = "pcoip-agent";

/// The agent protocol version the broker sends.
pub const AGENT_PROTOCOL_VERSION: &str = "1.0";

/// The logon method the broker uses (Linux agents accept it too).
pub const LOGON_METHOD: &str = "windows-password";

/// The PCoIP port, used when an agent's `session-info` has none.
pub const DEFAULT_PCOIP_PORT: u16 = 4172;

/// `launch-session`: asks the agent to prepare a session for a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchSession {
    /// `session-type` (`UNSPECIFIED`).
    pub session_type: String,
    /// `ip-address`: the agent's address.
    pub ip_address: String,
    /// `hostname`: the desktop's host name.
    pub hostname: String,
    /// `logon/username`.
    pub username: String,
    /// `logon/password`, sent verbatim.
    pub password: Secret,
    /// `logon/domain` (may be empty).
    pub domain: String,
    /// `client-mac`.
    pub client_mac: String,
    /// `client-ip`.
    pub client_ip: String,
    /// `client-name`: the client's host name.
    pub client_name: String,
    /// `license-path` (`port@host` or a URL), when configured.
    pub license_path: Option<String>,
    /// `session-log-id`: the client's log id, for correlating logs.
    pub session_log_id: String,
    /// `time-zone-windows`: the client's time zone, as the allocate request gave it (the agent
    /// sets the session's zone from it); `None` to leave it out.
    pub time_zone_windows: Option<String>,
}

/// `launch-session-resp/session-info`: where the client connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// `ip-address`.
    pub ip_address: String,
    /// `sni`.
    pub sni: String,
    /// `port` (4172 when absent).
    pub port: u16,
    /// `session-id`.
    pub session_id: String,
    /// `session-tag`: becomes the client's connect tag.
    pub session_tag: Secret,
}

/// `launch-session-resp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchSessionResp {
    /// `result-id` as the agent sent it (`SUCCESSFUL`, `FAILED_USER_AUTH`, ...).
    pub result_id: String,
    /// `session-info`, on success.
    pub session_info: Option<SessionInfo>,
    /// `fail-reason`, on failure.
    pub fail_reason: Option<String>,
}

/// Encodes a `launch-session` request.
pub fn encode_launch_session(launch: &LaunchSession) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.open(AGENT_ROOT, &[("version", AGENT_PROTOCOL_VERSION)]);
    w.open("launch-session", &[]);
    w.leaf("session-type", &launch.session_type);
    w.leaf("ip-address", &launch.ip_address);
    w.leaf("hostname", &launch.hostname);
    w.open("logon", &[("method", LOGON_METHOD)]);
    w.leaf("username", &launch.username);
    w.leaf("password", launch.password.expose());
    w.leaf("domain", &launch.domain);
    w.close("logon");
    w.leaf("client-mac", &launch.client_mac);
    w.leaf("client-ip", &launch.client_ip);
    w.leaf("client-name", &launch.client_name);
    if let Some(path) = &launch.license_path {
        w.leaf("license-path", path);
    }
    w.leaf("session-log-id", &launch.session_log_id);
    if let Some(zone) = &launch.time_zone_windows {
        w.leaf("time-zone-windows", zone);
    }
    w.close("launch-session");
    w.close(AGENT_ROOT);
    w.finish()
}

/// Decodes a `launch-session` request (what the test fake agent receives).
///
/// # Errors
///
/// A [`DecodeError`] (with no root) when the body is not a well-formed `launch-session`.
pub fn decode_launch_session(body: &[u8]) -> Result<LaunchSession, DecodeError> {
    let message = agent_message(body, "launch-session")?;
    let launch = (|| -> Result<LaunchSession, String> {
        let logon = message
            .child("logon")?
            .ok_or_else(|| "<launch-session> has no <logon>".to_owned())?;
        let password = logon
            .child("password")?
            .ok_or_else(|| "<logon> has no <password>".to_owned())?;
        Ok(LaunchSession {
            session_type: message.text_or_empty("session-type")?,
            ip_address: message.text_or_empty("ip-address")?,
            hostname: message.text_or_empty("hostname")?,
            username: logon.required_text("username")?,
            password: Secret::new(password.text.as_str()),
            domain: logon.text_or_empty("domain")?,
            client_mac: message.text_or_empty("client-mac")?,
            client_ip: message.text_or_empty("client-ip")?,
            client_name: message.text_or_empty("client-name")?,
            license_path: message.child_text("license-path")?,
            session_log_id: message.text_or_empty("session-log-id")?,
            time_zone_windows: message.child_text("time-zone-windows")?,
        })
    })();
    launch.map_err(invalid_content)
}

/// Encodes a `launch-session-resp` (what the test fake agent answers).
pub fn encode_launch_session_resp(resp: &LaunchSessionResp) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.open(AGENT_ROOT, &[("version", AGENT_PROTOCOL_VERSION)]);
    w.open("launch-session-resp", &[]);
    w.leaf("result-id", &resp.result_id);
    if let Some(info) = &resp.session_info {
        w.open("session-info", &[]);
        w.leaf("ip-address", &info.ip_address);
        w.leaf("sni", &info.sni);
        w.leaf("port", &info.port.to_string());
        w.leaf("session-id", &info.session_id);
        w.leaf("session-tag", info.session_tag.expose());
        w.close("session-info");
    }
    if let Some(reason) = &resp.fail_reason {
        w.leaf("fail-reason", reason);
    }
    w.close("launch-session-resp");
    w.close(AGENT_ROOT);
    w.finish()
}

/// Decodes an agent's `launch-session-resp`.
///
/// # Errors
///
/// A [`DecodeError`] (with no root) when the body is not a well-formed `launch-session-resp`
/// or its `port` is not a number.
pub fn decode_launch_session_resp(body: &[u8]) -> Result<LaunchSessionResp, DecodeError> {
    let message = agent_message(body, "launch-session-resp")?;
    let resp = (|| -> Result<LaunchSessionResp, String> {
        let session_info = match message.child("session-info")? {
            Some(info) => {
                let port = match info.child_text("port")? {
                    Some(port) if !port.is_empty() => port
                        .parse::<u16>()
                        .map_err(|_| "<session-info><port> is not a port number".to_owned())?,
                    _ => DEFAULT_PCOIP_PORT,
                };
                Some(SessionInfo {
                    ip_address: info.text_or_empty("ip-address")?,
                    sni: info.text_or_empty("sni")?,
                    port,
                    session_id: info.text_or_empty("session-id")?,
                    session_tag: Secret::new(info.text_or_empty("session-tag")?),
                })
            }
            None => None,
        };
        Ok(LaunchSessionResp {
            result_id: message.required_text("result-id")?,
            session_info,
            fail_reason: message.child_text("fail-reason")?,
        })
    })();
    resp.map_err(invalid_content)
}

/// Reads `body`, checks the `pcoip-agent` envelope and returns its only message, which must be
/// named `expected`.
fn agent_message(body: &[u8], expected: &str) -> Result<Element, DecodeError> {
    let mut root = tree::parse(body)
        .map_err(|error| DecodeError::new(None, ErrorId::InvalidMsgFormat, error.detail))?;
    if root.name != AGENT_ROOT {
        return Err(DecodeError::new(
            None,
            ErrorId::InvalidMsgEnvelope,
            "the root element is not <pcoip-agent>",
        ));
    }
    let mut children = std::mem::take(&mut root.children).into_iter();
    let (Some(message), None) = (children.next(), children.next()) else {
        return Err(DecodeError::new(
            None,
            ErrorId::InvalidMissingMsgContent,
            "<pcoip-agent> must hold exactly one message",
        ));
    };
    if message.name != expected {
        return Err(DecodeError::new(
            None,
            ErrorId::UnsupportedRequest,
            format!("expected <{expected}> in <pcoip-agent>"),
        ));
    }
    Ok(message)
}

fn invalid_content(detail: String) -> DecodeError {
    DecodeError::new(None, ErrorId::InvalidInvalidMsgContent, detail)
}
