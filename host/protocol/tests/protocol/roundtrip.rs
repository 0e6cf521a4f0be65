//! Awkward names and passwords survive encoding and decoding unchanged.

use interstate_protocol::policy::{Desktop, DesktopState, Secret, SessionKind};
use interstate_protocol::{
    Authenticate, BrokerReply, ClientRequest, LaunchSession, ListResult, ResourceListResp, Root,
    decode_launch_session, decode_request, encode_launch_session, encode_reply,
};

use crate::fixtures::canonical;

const AWKWARD: &[&str] = &[
    "<>&'\"",
    "  leading and trailing  ",
    "\ttab\nnewline\r\n",
    "pässwörd-日本語-🔑",
    "&amp; is not an entity here",
    "]]> and <![CDATA[",
    "a\u{a0}b",
];

/// Escapes for text the way a client would.
fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[test]
fn passwords_are_taken_verbatim_and_names_trimmed() {
    for value in AWKWARD {
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><pcoip-client version="2.1"><authenticate method="password"><username>  {u} </username><password>{p}</password><domain> {u}</domain></authenticate></pcoip-client>"#,
            u = escape(value),
            p = escape(value)
        );
        let request = decode_request(body.as_bytes()).unwrap();
        let ClientRequest::Authenticate(Authenticate::Password {
            username,
            password,
            domain,
        }) = request.message
        else {
            panic!("not a password login");
        };
        // quick-xml's escape leaves \r as is; XML readers would normalise it, ours keeps it.
        assert_eq!(password.expose(), *value, "password {value:?}");
        assert_eq!(username, value.trim(), "username {value:?}");
        assert_eq!(domain, value.trim());
    }
}

#[test]
fn numeric_references_and_cdata_decode() {
    let body = r#"<pcoip-client version="2.1"><authenticate method="password"><username>&#x61;&#108;ice</username><password><![CDATA[<p&ss>]]> &#x1F511;</password></authenticate></pcoip-client>"#;
    let request = decode_request(body.as_bytes()).unwrap();
    let ClientRequest::Authenticate(Authenticate::Password {
        username, password, ..
    }) = request.message
    else {
        panic!("not a password login");
    };
    assert_eq!(username, "alice");
    assert_eq!(password.expose(), "<p&ss> 🔑");
}

#[test]
fn launch_session_round_trips_awkward_credentials() {
    for value in AWKWARD {
        let launch = LaunchSession {
            session_type: "UNSPECIFIED".into(),
            ip_address: "10.0.0.1".into(),
            hostname: "ws".into(),
            username: value.trim().to_owned(),
            password: Secret::new(*value),
            domain: value.trim().to_owned(),
            client_mac: String::new(),
            client_ip: String::new(),
            client_name: value.trim().to_owned(),
            license_path: None,
            session_log_id: String::new(),
            time_zone_windows: Some("Pacific Standard Time".into()),
        };
        let encoded = encode_launch_session(&launch);
        assert_eq!(
            decode_launch_session(&encoded).unwrap(),
            launch,
            "{value:?}"
        );
    }
}

#[test]
fn reply_text_round_trips() {
    for value in AWKWARD {
        let reply = BrokerReply::ResourceList(ResourceListResp {
            result_id: ListResult::Successful,
            result_str: (*value).to_owned(),
            resources: vec![Desktop {
                id: (*value).to_owned(),
                name: (*value).to_owned(),
                hostname: String::new(),
                agent_port: None,
                session_kind: SessionKind::Vdi,
                state: DesktopState::Stopped,
                health: None,
                operations: vec![],
            }],
        });
        let encoded = encode_reply(Root::PcoipClient, &reply);
        let tokens = canonical(&encoded);
        let expected = format!("text {}", value.trim());
        assert_eq!(
            tokens.iter().filter(|t| **t == expected).count(),
            3,
            "{value:?} in {tokens:?}"
        );
    }
}
