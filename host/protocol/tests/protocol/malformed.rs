//! Hostile and broken request bodies: each gives the right error id, quickly, without a panic.

use std::time::{Duration, Instant};

use interstate_protocol::{BrokerReply, ErrorId, Root, decode_request, encode_reply};

use crate::fixtures::read;

const V: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

fn client(inner: &str) -> String {
    format!(r#"{V}<pcoip-client version="2.1">{inner}</pcoip-client>"#)
}

fn cases() -> Vec<(&'static str, Vec<u8>, ErrorId, Option<Root>)> {
    let deep = format!(
        "{}{}{}",
        "<hello>",
        "<x>".repeat(40),
        "</x>".repeat(40) + "</hello>"
    );
    let many = format!("<hello>{}</hello>", "<unknown-thing/>".repeat(10_000));
    let laughs = format!(
        r#"{V}<!DOCTYPE lolz [
<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<pcoip-client version="2.1"><authenticate method="password"><username>&lol4;</username><password>x</password></authenticate></pcoip-client>"#
    );
    let external = format!(
        r#"{V}<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<pcoip-client version="2.1"><authenticate method="password"><username>&xxe;</username><password>x</password></authenticate></pcoip-client>"#
    );
    let mut invalid_utf8 = client("<authenticate method=\"password\"><username>").into_bytes();
    let tail = invalid_utf8.split_off(invalid_utf8.len() - "</pcoip-client>".len());
    invalid_utf8.extend_from_slice(b"al\xffce</username><password>x</password></authenticate>");
    invalid_utf8.extend_from_slice(&tail);
    let truncated = client("<authenticate method=\"password\"><username>al");
    let truncated = truncated[..truncated.len() - "</pcoip-client>".len()].to_owned();

    use ErrorId::*;
    let c = Some(Root::PcoipClient);
    vec![
        ("empty body", vec![], InvalidMsgFormat, None),
        ("not xml", b"hello there".to_vec(), InvalidMsgFormat, None),
        ("json", br#"{"hello": 1}"#.to_vec(), InvalidMsgFormat, None),
        ("truncated", truncated.into_bytes(), InvalidMsgFormat, c),
        (
            "seed: unclosed client-info",
            read("malformed/seed-unclosed-client-info.xml"),
            InvalidMsgFormat,
            Some(Root::PcoipBroker),
        ),
        (
            "dtd",
            format!("{V}<!DOCTYPE pcoip-client><pcoip-client version=\"2.1\"><bye/></pcoip-client>")
                .into_bytes(),
            InvalidMsgFormat,
            None,
        ),
        (
            "dtd inside the root",
            client("<!DOCTYPE x><bye/>").into_bytes(),
            InvalidMsgFormat,
            c,
        ),
        ("external entity", external.into_bytes(), InvalidMsgFormat, None),
        ("billion laughs", laughs.into_bytes(), InvalidMsgFormat, None),
        (
            "undefined entity",
            client("<authenticate method=\"password\"><username>&nbsp;</username><password>x</password></authenticate>").into_bytes(),
            InvalidMsgFormat,
            c,
        ),
        (
            "undefined entity in an attribute",
            client("<authenticate method=\"&pw;\"><username>a</username><password>x</password></authenticate>").into_bytes(),
            InvalidMsgFormat,
            c,
        ),
        (
            "wrong root",
            format!("{V}<broker version=\"2.0\"><get-desktops/></broker>").into_bytes(),
            InvalidMsgEnvelope,
            None,
        ),
        (
            "agent root",
            format!("{V}<pcoip-agent version=\"1.0\"><launch-session/></pcoip-agent>").into_bytes(),
            InvalidMsgEnvelope,
            None,
        ),
        (
            "wrong version",
            format!("{V}<pcoip-client version=\"2.0\"><bye/></pcoip-client>").into_bytes(),
            UnsupportedVersion,
            c,
        ),
        (
            "missing version",
            format!("{V}<pcoip-broker><bye/></pcoip-broker>").into_bytes(),
            UnsupportedVersion,
            Some(Root::PcoipBroker),
        ),
        ("two messages", client("<bye/><bye/>").into_bytes(), InvalidInvalidMsgContent, c),
        ("empty root", client("").into_bytes(), InvalidMissingMsgContent, c),
        ("whitespace root", client("\n  <!-- nothing -->\n").into_bytes(), InvalidMissingMsgContent, c),
        ("invalid utf-8", invalid_utf8, InvalidMsgFormat, c),
        (
            "missing username",
            client("<authenticate method=\"password\"><password>x</password></authenticate>").into_bytes(),
            InvalidInvalidMsgContent,
            c,
        ),
        (
            "missing password",
            client("<authenticate method=\"password\"><username>a</username></authenticate>").into_bytes(),
            InvalidInvalidMsgContent,
            c,
        ),
        (
            "duplicated username",
            client("<authenticate method=\"password\"><username>a</username><username>b</username><password>x</password></authenticate>").into_bytes(),
            InvalidInvalidMsgContent,
            c,
        ),
        (
            "missing resource-id",
            client("<allocate-resource><protocol>PCOIP</protocol></allocate-resource>").into_bytes(),
            InvalidInvalidMsgContent,
            c,
        ),
        (
            "authenticate without a method",
            client("<authenticate><username>a</username><password>x</password></authenticate>").into_bytes(),
            InvalidInvalidMsgContent,
            c,
        ),
        ("deep nesting", client(&deep).into_bytes(), InvalidMsgFormat, c),
        ("10k unknown elements", client(&many).into_bytes(), InvalidMsgFormat, c),
        (
            "second root",
            format!("{V}<pcoip-client version=\"2.1\"><bye/></pcoip-client><pcoip-client version=\"2.1\"><bye/></pcoip-client>").into_bytes(),
            InvalidMsgFormat,
            c,
        ),
        (
            "text after the root",
            format!("{V}<pcoip-client version=\"2.1\"><bye/></pcoip-client>junk").into_bytes(),
            InvalidMsgFormat,
            c,
        ),
        (
            "control character",
            client("<authenticate method=\"password\"><username>a&#27;</username><password>x</password></authenticate>").into_bytes(),
            InvalidMsgFormat,
            c,
        ),
        (
            "duplicate attribute",
            format!("{V}<pcoip-client version=\"2.1\" version=\"2.1\"><bye/></pcoip-client>").into_bytes(),
            InvalidMsgFormat,
            c,
        ),
    ]
}

#[test]
fn every_malformed_body_gets_its_error_id() {
    for (name, body, id, root) in cases() {
        let started = Instant::now();
        let error = decode_request(&body).expect_err(name);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{name} took {:?}",
            started.elapsed()
        );
        assert_eq!(error.result_id, id, "{name}: {error}");
        assert_eq!(error.root, root, "{name}: {error}");
        assert!(!error.detail.is_empty(), "{name}");
        // The error-resp for it encodes and names the id.
        let reply = encode_reply(error.reply_root(), &error.reply());
        let reply = String::from_utf8(reply).unwrap();
        assert!(reply.contains(id.as_str()), "{name}: {reply}");
    }
}

#[test]
fn the_seed_error_names_the_unclosed_element() {
    let error = decode_request(&read("malformed/seed-unclosed-client-info.xml")).unwrap_err();
    assert!(error.detail.contains("<client-info>"), "{}", error.detail);
    let BrokerReply::Error(resp) = error.reply() else {
        panic!("not an error-resp");
    };
    assert_eq!(resp.detail.as_deref(), Some(error.detail.as_str()));
}

#[test]
fn details_never_contain_the_password() {
    let secret = "Hunter2SuperSecret";
    let bodies = [
        client(&format!(
            "<authenticate method=\"password\"><username>a</username><password>{secret}</password><password>{secret}</password></authenticate>"
        )),
        client(&format!(
            "<authenticate method=\"password\"><username>a</username><password>{secret}<{secret}></password></authenticate>"
        )),
        client(&format!(
            "<authenticate method=\"password\"><username>a</username><password>{secret}&{secret};</password></authenticate>"
        )),
        client(&format!(
            "<authenticate method=\"password\"><password>{secret}</password></authenticate>"
        )),
        format!(
            "{V}<pcoip-client version=\"2.1\"><authenticate method=\"password\"><username>a</username><password>{secret}"
        ),
        client(&format!(
            "<authenticate method=\"password\"><username>a</username><password>{secret}</{secret}></password></authenticate>"
        )),
    ];
    for body in bodies {
        let error = decode_request(body.as_bytes()).unwrap_err();
        assert!(!error.detail.contains(secret), "{}", error.detail);
        assert!(!error.detail.contains("Hunter"), "{}", error.detail);
        assert!(!format!("{error:?}").contains("Hunter"));
    }
}

#[test]
fn unknown_elements_are_ignored() {
    let body = client(
        "<hello><future-thing a='1'><deeper><deepest/></deeper></future-thing>\
         <client-info><product-name>X</product-name><organization-id>o</organization-id></client-info>\
         <client-to-broker-variables><variable><name>n</name><value>v</value></variable></client-to-broker-variables>\
         </hello>",
    );
    let request = decode_request(body.as_bytes()).unwrap();
    let interstate_protocol::ClientRequest::Hello(hello) = request.message else {
        panic!("not a hello");
    };
    assert_eq!(hello.client_info.product_name, "X");
    // A thousand unknown siblings are within the limits.
    let body = client(&format!(
        "<get-resource-list>{}</get-resource-list>",
        "<x/>".repeat(1000)
    ));
    assert!(decode_request(body.as_bytes()).is_ok());
}

#[test]
fn a_utf8_byte_order_mark_is_accepted() {
    let mut body = b"\xef\xbb\xbf".to_vec();
    body.extend_from_slice(client("<bye/>").as_bytes());
    let request = decode_request(&body).unwrap();
    assert_eq!(request.message, interstate_protocol::ClientRequest::Bye);
}
