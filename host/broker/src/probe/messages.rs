//! The messages a PCoIP client sends, shaped like the 19.11 client's captures (bodies only, without
//! the root element, which [`wrap`] adds).

use interstate_protocol::Root;

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
pub fn probe_hello() -> &'static str {
    "<hello><client-info><product-name>QueryBrokerClient</product-name><product-version>1.0</product-version>\
     <platform>PCoIP</platform><locale>en_US</locale><hostname>interstate-probe</hostname>\
     <serial-number>00:00:00:00:00:00</serial-number><device-name>interstate-probe</device-name>\
     <pcoip-unique-id>00:00:00:00:00:00</pcoip-unique-id></client-info><caps></caps></hello>"
}

/// The real hello that starts a session.
pub fn hello() -> &'static str {
    "<hello><client-info><product-name>Teradici PCoIP Desktop Client</product-name>\
     <product-version>19.11.0</product-version><platform>Interstate probe linux x86_64</platform>\
     <locale>en_US</locale><hostname>interstate-probe</hostname><serial-number>00:00:00:00:00:00</serial-number>\
     <device-name>interstate-probe</device-name><pcoip-unique-id>00:00:00:00:00:00</pcoip-unique-id></client-info>\
     <caps><cap>CAP_DISCLAIMER_AUTHENTICATION</cap><cap>CAP_NO_AUTHENTICATION</cap>\
     <cap>CAP_ALTERNATE_PROVISIONING</cap></caps></hello>"
}

/// `authenticate method="password"`; the domain element is always sent (ILS answers HTTP 500
/// without one), empty when there is no domain.
pub fn authenticate(username: &str, password: &str, domain: &str) -> String {
    format!(
        "<authenticate method=\"password\"><username>{}</username><password>{}</password>\
         <domain>{}</domain></authenticate>",
        escape(username),
        escape(password),
        escape(domain)
    )
}

/// `get-resource-list` as clients send it.
pub fn list() -> &'static str {
    "<get-resource-list><protocols><protocol>PCOIP</protocol></protocols>\
     <resource-types><resource-type>DESKTOP</resource-type></resource-types></get-resource-list>"
}

/// `allocate-resource` for resource `id`.
pub fn allocate(id: &str) -> String {
    format!(
        "<allocate-resource><resource-id>{}</resource-id><protocol>PCOIP</protocol><client-info>\
         <ip-address>127.0.0.1</ip-address><mac-address>00:00:00:00:00:00</mac-address></client-info>\
         </allocate-resource>",
        escape(id)
    )
}

/// `bye`.
pub fn bye() -> &'static str {
    "<bye></bye>"
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
        let body = wrap(Root::PcoipClient, &authenticate("a<b", "p&'\"", "D"));
        let request = interstate_protocol::decode_request(body.as_bytes()).unwrap();
        assert_eq!(request.root, Root::PcoipClient);
        for message in [probe_hello(), hello(), list(), bye()] {
            interstate_protocol::decode_request(wrap(Root::PcoipBroker, message).as_bytes())
                .unwrap();
        }
        interstate_protocol::decode_request(wrap(Root::PcoipClient, &allocate("x&y")).as_bytes())
            .unwrap();
    }

    #[test]
    fn log_ids_look_like_uuids() {
        let id = new_log_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert!(crate::store::usable_log_id(&id));
    }
}
