//! The requests a PCoIP client sends, shaped like the 19.11 client's captures: bodies without the
//! root element, which [`wrap`] adds. Who the client says it is comes from a [`ClientIdentity`],
//! so that the probe, the bench and the tests send the same messages with their own names.

use interstate_protocol::Root;

/// What a simulated client says about itself in `hello` and `allocate-resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIdentity<'a> {
    /// `client-info/hostname` and `device-name`.
    pub hostname: &'a str,
    /// `client-info/platform` of the real hello.
    pub platform: &'a str,
    /// The `cap` elements of the real hello.
    pub caps: &'a [&'a str],
    /// `server-address` (IP address, host name) as the client typed it, if sent.
    pub server_address: Option<(&'a str, &'a str)>,
    /// `client-info/time-zone-windows` of `allocate-resource`, if sent.
    pub time_zone: Option<&'a str>,
    /// `client-info/ip-address` of `allocate-resource`.
    pub ip_address: &'a str,
    /// `client-info/mac-address` of `allocate-resource`.
    pub mac_address: &'a str,
}

/// How `interstate probe` and `interstate bench` present themselves: password logins only.
pub const TOOL_CLIENT: ClientIdentity<'static> = ClientIdentity {
    hostname: "interstate-probe",
    platform: "Interstate probe linux x86_64",
    caps: &[
        "CAP_DISCLAIMER_AUTHENTICATION",
        "CAP_NO_AUTHENTICATION",
        "CAP_ALTERNATE_PROVISIONING",
    ],
    server_address: None,
    time_zone: None,
    ip_address: "127.0.0.1",
    mac_address: "00:00:00:00:00:00",
};

/// Escapes XML text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Wraps `message` in the XML declaration and `root`, as clients do.
pub fn wrap(root: Root, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{r} version=\"2.1\">{message}</{r}>",
        r = root.as_str()
    )
}

/// The `QueryBrokerClient` hello a client sends to learn whether it talks to a broker.
pub fn probe_hello(client: &ClientIdentity<'_>) -> String {
    let host = escape(client.hostname);
    format!(
        "<hello><client-info><product-name>QueryBrokerClient</product-name><product-version>1.0</product-version>\
         <platform>PCoIP</platform><locale>en_US</locale><hostname>{host}</hostname>\
         <serial-number>00:00:00:00:00:00</serial-number><device-name>{host}</device-name>\
         <pcoip-unique-id>00:00:00:00:00:00</pcoip-unique-id></client-info><caps></caps></hello>"
    )
}

/// The real hello that starts a session.
pub fn hello(client: &ClientIdentity<'_>) -> String {
    let host = escape(client.hostname);
    let caps: String = client
        .caps
        .iter()
        .map(|cap| format!("<cap>{}</cap>", escape(cap)))
        .collect();
    let server_address = client
        .server_address
        .map(|(ip, name)| {
            format!(
                "<server-address><ip-address>{}</ip-address><hostname>{}</hostname></server-address>",
                escape(ip),
                escape(name)
            )
        })
        .unwrap_or_default();
    format!(
        "<hello><client-info><product-name>Teradici PCoIP Desktop Client</product-name>\
         <product-version>19.11.0</product-version><platform>{}</platform>\
         <locale>en_US</locale><hostname>{host}</hostname><serial-number>00:00:00:00:00:00</serial-number>\
         <device-name>{host}</device-name><pcoip-unique-id>00:00:00:00:00:00</pcoip-unique-id></client-info>\
         <caps>{caps}</caps>{server_address}</hello>",
        escape(client.platform)
    )
}

/// `authenticate method="password"`. ILS answers HTTP 500 without a domain element, so tools send
/// one (empty when there is no domain); `None` leaves it out.
pub fn authenticate(username: &str, password: &str, domain: Option<&str>) -> String {
    let domain = domain
        .map(|d| format!("<domain>{}</domain>", escape(d)))
        .unwrap_or_default();
    format!(
        "<authenticate method=\"password\"><username>{}</username><password>{}</password>{domain}</authenticate>",
        escape(username),
        escape(password)
    )
}

/// `authenticate method="dialog"` answering field `id`.
pub fn dialog(id: &str, text: &str) -> String {
    format!(
        "<authenticate method=\"dialog\"><fields><field><id>{}</id><text do-not-log=\"true\">{}</text></field></fields></authenticate>",
        escape(id),
        escape(text)
    )
}

/// `authenticate method="dialog"` as the 24.07 client sends it (reference §11 \[R\]): every field
/// with `do-not-log`, and the `button-id` the user pressed.
pub fn dialog_answer(fields: &[(&str, &str)], button_id: &str) -> String {
    let fields: String = fields
        .iter()
        .map(|(id, text)| {
            format!(
                "<field><id>{}</id><text do-not-log=\"true\">{}</text></field>",
                escape(id),
                escape(text)
            )
        })
        .collect();
    format!(
        "<authenticate method=\"dialog\"><fields>{fields}</fields><button-id>{}</button-id></authenticate>",
        escape(button_id)
    )
}

/// `authenticate method="disclaimer"`: `DISCLAIMER_ACCEPTED` or `DISCLAIMER_REJECTED`
/// (reference §11 \[R\]).
pub fn disclaimer(accept: bool) -> String {
    let token = if accept {
        "DISCLAIMER_ACCEPTED"
    } else {
        "DISCLAIMER_REJECTED"
    };
    format!("<authenticate method=\"disclaimer\"><accept>{token}</accept></authenticate>")
}

/// `perform-operation` (reference §11.1 \[R\]): `operation` is `CMD_OS_RESTART`,
/// `CMD_PWR_DOWN`, `CMD_PWR_UP`, `CMD_PWR_SLEEP` or `CMD_PWR_RESUME`.
pub fn perform_operation(resource_id: &str, operation: &str) -> String {
    format!(
        "<perform-operation><resource-id>{}</resource-id><operation>{}</operation></perform-operation>",
        escape(resource_id),
        escape(operation)
    )
}

/// `update-password` after `AUTH_FAILED_EXPIRED_PASSWORD` (reference §11.1 \[R\]).
pub fn update_password(username: &str, old: &str, new: &str, domain: &str) -> String {
    format!(
        "<update-password><username>{}</username><old-password>{}</old-password>\
         <new-password>{}</new-password><domain>{}</domain></update-password>",
        escape(username),
        escape(old),
        escape(new),
        escape(domain)
    )
}

/// `get-resource-list` as clients send it.
pub fn list() -> String {
    "<get-resource-list><protocols><protocol>PCOIP</protocol></protocols>\
     <resource-types><resource-type>DESKTOP</resource-type></resource-types></get-resource-list>"
        .into()
}

/// `allocate-resource` for resource `id`.
pub fn allocate(id: &str, client: &ClientIdentity<'_>) -> String {
    let time_zone = client
        .time_zone
        .map(|zone| format!("<time-zone-windows>{}</time-zone-windows>", escape(zone)))
        .unwrap_or_default();
    format!(
        "<allocate-resource><resource-id>{}</resource-id><protocol>PCOIP</protocol><client-info>\
         {time_zone}<ip-address>{}</ip-address><mac-address>{}</mac-address></client-info></allocate-resource>",
        escape(id),
        escape(client.ip_address),
        escape(client.mac_address)
    )
}

/// `bye`.
pub fn bye() -> String {
    "<bye></bye>".into()
}

/// A random `Client-Log-Id` in the client's UUID format (never the all-zero id).
pub fn new_log_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let h = hex::encode(bytes);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_escape_and_decode() {
        let body = wrap(Root::PcoipClient, &authenticate("a<b", "p&'\"", Some("D")));
        let request = interstate_protocol::decode_request(body.as_bytes()).unwrap();
        assert_eq!(request.root, Root::PcoipClient);
        let client = ClientIdentity {
            server_address: Some(("127.0.0.1", "broker.example.com")),
            time_zone: Some("Pacific Standard Time"),
            ..TOOL_CLIENT
        };
        for identity in [TOOL_CLIENT, client] {
            for message in [
                probe_hello(&identity),
                hello(&identity),
                list(),
                bye(),
                dialog("otp", "1&2"),
                dialog_answer(&[("code", "1&2")], "ok"),
                disclaimer(true),
                disclaimer(false),
                perform_operation("x&y", "CMD_OS_RESTART"),
                update_password("u", "o&", "n<", "D"),
                authenticate("u", "p", None),
                allocate("x&y", &identity),
            ] {
                interstate_protocol::decode_request(wrap(Root::PcoipBroker, &message).as_bytes())
                    .unwrap();
            }
        }
    }

    #[test]
    fn the_0_2_messages_decode_as_the_broker_reads_them() {
        use interstate_protocol::{Authenticate, ClientRequest, RequestedOperation};
        let decode = |message: &str| {
            interstate_protocol::decode_request(wrap(Root::PcoipClient, message).as_bytes())
                .unwrap()
                .message
        };
        let ClientRequest::UpdatePassword(change) =
            decode(&update_password("u", " o&", "n< ", "D"))
        else {
            panic!("not update-password");
        };
        assert_eq!(
            (change.old_password.expose(), change.new_password.expose()),
            (" o&", "n< ")
        );
        let ClientRequest::PerformOperation(op) = decode(&perform_operation("ws", "CMD_PWR_SLEEP"))
        else {
            panic!("not perform-operation");
        };
        assert_eq!(
            op.operation,
            RequestedOperation::Unknown("CMD_PWR_SLEEP".into())
        );
        assert_eq!(
            decode(&disclaimer(false)),
            ClientRequest::Authenticate(Authenticate::Disclaimer { accepted: false })
        );
        let ClientRequest::Authenticate(Authenticate::Dialog { answers, button_id }) =
            decode(&dialog_answer(&[("code", "1"), ("pin", "2")], "cancel"))
        else {
            panic!("not a dialog answer");
        };
        assert_eq!((answers.len(), button_id.as_deref()), (2, Some("cancel")));
    }

    #[test]
    fn log_ids_look_like_uuids() {
        let id = new_log_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id.replace(['0', '-'], ""), "");
    }
}
