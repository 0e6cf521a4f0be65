//! Request bodies no PCoIP client sends: broken, truncated, entity-laden, oversized, mislabelled.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use interstate_tests::pcoip::{check_wire, result_id};
use interstate_tests::{TestClient, msg};
use interstate_tools::wire::ClientError;
use serde_json::json;
use tokio::net::TcpListener;

use super::{answer_kind, assert_still_serves, broker_with, envelope};

/// Sends each body and checks the answer's id; returns the slowest answer.
async fn expect_ids(client: &mut TestClient, cases: &[(&str, Vec<u8>, &str)]) -> Duration {
    let mut slowest = Duration::ZERO;
    for (name, body, expected) in cases {
        let started = Instant::now();
        let response = client.send_body(body).await;
        slowest = slowest.max(started.elapsed());
        let text = response.text();
        assert_eq!(answer_kind(&response), *expected, "{name}: {text}");
        if expected.starts_with("ERR_") {
            assert!(text.contains("<error-resp>"), "{name}: {text}");
            assert!(
                text.contains("<detected-by>BROKER</detected-by>"),
                "{name}: {text}"
            );
        }
    }
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_truncated_hello_at_every_offset() {
    let (_agent, broker) = broker_with(json!({})).await;
    let mut client = TestClient::connect(broker.addr).await;
    let body = envelope(&msg::hello()).into_bytes();
    let started = Instant::now();
    let mut ids = BTreeMap::<String, usize>::new();
    for cut in 0..body.len() {
        let response = client.send_body(&body[..cut]).await;
        let kind = answer_kind(&response);
        assert!(
            kind.starts_with("ERR_"),
            "a hello cut at byte {cut} of {} was accepted: {}",
            body.len(),
            response.text()
        );
        assert!(!response.close, "a bad body does not cost the connection");
        *ids.entry(kind).or_default() += 1;
    }
    let whole = client.send_body(&body).await;
    assert_eq!(answer_kind(&whole), "hello-resp");
    println!(
        "hostile: {} truncated hellos answered on one connection in {} ms: {ids:?}",
        body.len(),
        started.elapsed().as_millis()
    );
    assert_eq!(
        ids.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ERR_INVALID_MSG_FORMAT"],
        "a truncated body is a format error, whatever the cut"
    );
    assert!(
        broker.live_sessions().await == 1,
        "only the whole hello made a session"
    );
    assert_still_serves(&broker).await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_malformed_xml() {
    let (_agent, broker) = broker_with(json!({})).await;
    let mut client = TestClient::connect(broker.addr).await;
    let format = "ERR_INVALID_MSG_FORMAT";
    let deep = format!(
        "<pcoip-client version=\"2.1\">{}{}</pcoip-client>",
        "<a>".repeat(1_000),
        "</a>".repeat(1_000)
    );
    let wide = format!(
        "<pcoip-client version=\"2.1\"><hello>{}</hello></pcoip-client>",
        "<cap/>".repeat(5_000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), format),
        ("whitespace", b" \r\n\t ".to_vec(), format),
        ("a lone <", b"<".to_vec(), format),
        (
            "mismatched end tag",
            envelope("<hello><client-info></hello>").into(),
            format,
        ),
        ("end tag without start", envelope("</hello>").into(), format),
        (
            "unclosed attribute",
            b"<pcoip-client version=\"2.1><bye/></pcoip-client>".to_vec(),
            format,
        ),
        (
            "duplicate attribute",
            b"<pcoip-client version=\"2.1\" version=\"2.1\"><bye/></pcoip-client>".to_vec(),
            format,
        ),
        (
            "two roots",
            format!(
                "{}<pcoip-client version=\"2.1\"><bye/></pcoip-client>",
                envelope("<bye/>")
            )
            .into(),
            format,
        ),
        (
            "text after the root",
            format!("{}trailing", envelope("<bye/>")).into(),
            format,
        ),
        ("unclosed comment", envelope("<!-- <bye/>").into(), format),
        (
            "unclosed CDATA",
            envelope("<bye><![CDATA[x</bye>").into(),
            format,
        ),
        (
            "NUL character reference",
            envelope("<hello><client-info><hostname>&#0;</hostname></client-info></hello>").into(),
            format,
        ),
        (
            "control character",
            envelope("<hello><client-info><hostname>\u{1}</hostname></client-info></hello>").into(),
            format,
        ),
        (
            "huge character reference",
            envelope("<hello><client-info><hostname>&#x110000;</hostname></client-info></hello>")
                .into(),
            format,
        ),
        ("nested 1000 deep", deep.into(), format),
        ("5000 elements", wide.into(), format),
        (
            "no message",
            envelope("").into(),
            "ERR_INVALID_MISSING_MSG_CONTENT",
        ),
        (
            "two messages",
            envelope("<bye/><bye/>").into(),
            "ERR_INVALID_INVALID_MSG_CONTENT",
        ),
        (
            "authenticate without method",
            envelope("<authenticate><username>a</username></authenticate>").into(),
            "ERR_INVALID_INVALID_MSG_CONTENT",
        ),
        (
            "allocate without resource id",
            envelope("<allocate-resource><protocol>PCOIP</protocol></allocate-resource>").into(),
            "ERR_INVALID_INVALID_MSG_CONTENT",
        ),
        (
            // Unsupported whether or not a session comes with it (reference §11.1).
            "unknown message",
            envelope("<get-desktops/>").into(),
            "ERR_UNSUPPORTED_REQUEST",
        ),
    ];
    let slowest = expect_ids(&mut client, &cases).await;
    println!(
        "hostile: {} malformed bodies, slowest answer {} ms",
        cases.len(),
        slowest.as_millis()
    );
    assert_still_serves(&broker).await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dtds_external_entities_and_billion_laughs() {
    let (_agent, broker) = broker_with(json!({})).await;
    // Somewhere for an external entity to point at: it must never be fetched.
    let bait = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bait_url = format!("http://{}/evil.dtd", bait.local_addr().unwrap());
    let mut laughs = String::from("<!ENTITY lol \"lol\">");
    for level in 1..=9 {
        let previous = if level == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", level - 1)
        };
        laughs.push_str(&format!(
            "<!ENTITY lol{level} \"{}\">",
            format!("&{previous};").repeat(10)
        ));
    }
    let in_hostname = |dtd: &str, entity: &str| -> Vec<u8> {
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE pcoip-client [{dtd}]>\n<pcoip-client version=\"2.1\"><hello><client-info>\
             <hostname>{entity}</hostname></client-info></hello></pcoip-client>"
        )
        .into_bytes()
    };
    let format = "ERR_INVALID_MSG_FORMAT";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("internal DTD", in_hostname("<!ENTITY a \"aaaa\">", "&a;"), format),
        ("external entity (file)", in_hostname("<!ENTITY xxe SYSTEM \"file:///etc/passwd\">", "&xxe;"), format),
        ("external entity (http)", in_hostname(&format!("<!ENTITY xxe SYSTEM \"{bait_url}\">"), "&xxe;"), format),
        ("parameter entity", in_hostname(&format!("<!ENTITY % p SYSTEM \"{bait_url}\"> %p;"), "x"), format),
        ("billion laughs", in_hostname(&laughs, "&lol9;"), format),
        (
            "external DTD",
            format!("<!DOCTYPE pcoip-client SYSTEM \"{bait_url}\"><pcoip-client version=\"2.1\"><bye/></pcoip-client>").into(),
            format,
        ),
        ("DTD inside the root", envelope("<!DOCTYPE x><bye/>").into(), format),
        ("undeclared entity", envelope("<hello><client-info><hostname>&xxe;</hostname></client-info></hello>").into(), format),
    ];
    let mut client = TestClient::connect(broker.addr).await;
    for (name, body, expected) in &cases {
        let started = Instant::now();
        let response = client.send_body(body).await;
        let elapsed = started.elapsed();
        let text = response.text();
        assert_eq!(result_id(&response), *expected, "{name}: {text}");
        assert!(
            !text.contains("root:") && !text.contains("lollol"),
            "{name}: the entity was expanded: {text}"
        );
        assert!(
            elapsed < Duration::from_secs(5),
            "{name}: answered in {elapsed:?}"
        );
        println!("hostile: {name}: answered in {} µs", elapsed.as_micros());
    }
    let fetched = tokio::time::timeout(Duration::from_millis(200), bait.accept()).await;
    assert!(fetched.is_err(), "the broker fetched an external entity");
    assert_still_serves(&broker).await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_wrong_roots_and_versions() {
    let (_agent, broker) = broker_with(json!({})).await;
    let mut client = TestClient::connect(broker.addr).await;
    let envelope_error = "ERR_INVALID_MSG_ENVELOPE";
    let version_error = "ERR_UNSUPPORTED_VERSION";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "ILS-era root",
            b"<broker version=\"2.1\"><bye/></broker>".to_vec(),
            envelope_error,
        ),
        (
            "agent root",
            b"<pcoip-agent version=\"1.0\"><bye/></pcoip-agent>".to_vec(),
            envelope_error,
        ),
        (
            "prefixed root",
            b"<x:pcoip-client xmlns:x=\"urn:x\" version=\"2.1\"><bye/></x:pcoip-client>".to_vec(),
            envelope_error,
        ),
        (
            "upper-case root",
            b"<PCOIP-CLIENT version=\"2.1\"><bye/></PCOIP-CLIENT>".to_vec(),
            envelope_error,
        ),
        (
            "version 1.0",
            b"<pcoip-client version=\"1.0\"><bye/></pcoip-client>".to_vec(),
            version_error,
        ),
        (
            "version 2.10",
            b"<pcoip-client version=\"2.10\"><bye/></pcoip-client>".to_vec(),
            version_error,
        ),
        (
            "no version",
            b"<pcoip-client><bye/></pcoip-client>".to_vec(),
            version_error,
        ),
        (
            "empty version",
            b"<pcoip-broker version=\"\"><bye/></pcoip-broker>".to_vec(),
            version_error,
        ),
        (
            "padded version",
            b"<pcoip-client version=\" 2.1 \"><hello/></pcoip-client>".to_vec(),
            "hello-resp",
        ),
    ];
    let slowest = expect_ids(&mut client, &cases).await;
    println!(
        "hostile: {} wrong roots/versions, slowest answer {} µs",
        cases.len(),
        slowest.as_micros()
    );
    // The reply keeps the request's root when it was one of ours.
    let broker_root = client
        .send_body(b"<pcoip-broker version=\"9.9\"><bye/></pcoip-broker>")
        .await;
    assert!(
        broker_root
            .text()
            .contains("<pcoip-broker version=\"2.1\">"),
        "{}",
        broker_root.text()
    );
    assert_still_serves(&broker).await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_at_and_over_the_limit() {
    let (_agent, broker) = broker_with(json!({})).await;
    let limit = 64 * 1024;

    // Exactly at the limit: a real hello padded with trailing whitespace is served.
    let mut at_limit = envelope(&msg::hello()).into_bytes();
    at_limit.resize(limit, b' ');
    let mut client = TestClient::connect(broker.addr).await;
    let response = client.send_body(&at_limit).await;
    assert_eq!(answer_kind(&response), "hello-resp");

    // One byte over, announced by Content-Length: refused before it is read, connection closed.
    // The broker may answer and close while the body is still being written, so a failed write
    // or a reset instead of the answer is a closed connection, which is also a right outcome.
    let mut over = at_limit.clone();
    over.push(b' ');
    let started = Instant::now();
    let connection = client.connection();
    let head = format!(
        "POST /pcoip-broker/xml HTTP/1.1\r\nHost: broker\r\nContent-Length: {}\r\n\r\n",
        over.len()
    );
    let written = connection
        .send_raw(&[head.as_bytes(), &over].concat())
        .await;
    match connection.read_response(Duration::from_secs(20)).await {
        Ok(response) => {
            check_wire(&response);
            assert_eq!(
                result_id(&response),
                "ERR_INVALID_MSG_FORMAT",
                "{}",
                response.text()
            );
            assert!(response.close, "the unread body ends the connection");
        }
        Err(ClientError::Io(e)) => println!(
            "hostile: 64 KiB + 1 closed before the answer was read ({e}; write: {written:?})"
        ),
        Err(e) => panic!("64 KiB + 1 left the connection hanging: {e}"),
    }
    println!(
        "hostile: 64 KiB + 1 (Content-Length) ended in {} ms",
        started.elapsed().as_millis()
    );

    // One byte over, chunked (no Content-Length to refuse early): cut off at the limit.
    let mut client = TestClient::connect(broker.addr).await;
    let mut request =
        b"POST /pcoip-broker/xml HTTP/1.1\r\nHost: broker\r\nContent-Type: text/xml\r\n\
        Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for chunk in over.chunks(8 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let started = Instant::now();
    let connection = client.connection();
    connection.send_raw(&request).await.unwrap();
    let response = connection
        .read_response(Duration::from_secs(20))
        .await
        .unwrap();
    println!(
        "hostile: 64 KiB + 1 (chunked) answered in {} ms",
        started.elapsed().as_millis()
    );
    check_wire(&response);
    assert_eq!(
        result_id(&response),
        "ERR_INVALID_MSG_FORMAT",
        "{}",
        response.text()
    );
    assert!(response.close);

    // A Content-Length of 10 GB with a few bytes behind it: refused at once, nothing waits.
    let mut client = TestClient::connect(broker.addr).await;
    let started = Instant::now();
    let connection = client.connection();
    connection
        .send_raw(b"POST /pcoip-broker/xml HTTP/1.1\r\nHost: b\r\nContent-Length: 10000000000\r\n\r\n<pcoip")
        .await
        .unwrap();
    let response = connection
        .read_response(Duration::from_secs(20))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    check_wire(&response);
    assert_eq!(result_id(&response), "ERR_INVALID_MSG_FORMAT");
    assert!(response.close);

    assert_still_serves(&broker).await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_content_length_that_lies() {
    let header_timeout = Duration::from_millis(1000);
    let (_agent, broker) = broker_with(json!({"header_timeout_ms": 1000})).await;
    let body = envelope(&msg::hello()).into_bytes();
    let head = |length: usize| {
        format!(
            "POST /pcoip-broker/xml HTTP/1.1\r\nHost: broker\r\nContent-Type: text/xml\r\n\
             Content-Length: {length}\r\n\r\n"
        )
        .into_bytes()
    };

    // Larger than sent: the broker must not wait for the missing bytes forever.
    let mut client = TestClient::connect(broker.addr).await;
    let mut request = head(body.len() + 100);
    request.extend_from_slice(&body);
    let started = Instant::now();
    let connection = client.connection();
    connection.send_raw(&request).await.unwrap();
    let outcome = connection.read_response(Duration::from_secs(30)).await;
    let elapsed = started.elapsed();
    println!(
        "hostile: Content-Length 100 bytes larger than the body: ended after {} ms ({})",
        elapsed.as_millis(),
        match &outcome {
            Ok(r) => format!("answered {}", result_id(r)),
            Err(e) => format!("closed: {e}"),
        }
    );
    match outcome {
        Ok(response) => {
            check_wire(&response);
            assert_eq!(
                result_id(&response),
                "ERR_INVALID_MSG_FORMAT",
                "{}",
                response.text()
            );
            assert!(response.close, "the connection cannot be reused");
        }
        Err(ClientError::Io(_)) => {}
        Err(e) => panic!("the broker kept waiting for a body that never comes: {e}"),
    }
    assert!(
        elapsed < header_timeout + Duration::from_secs(4),
        "the missing body was waited for {elapsed:?}"
    );

    // Smaller than sent: the rest of the body is not a new request.
    let mut client = TestClient::connect(broker.addr).await;
    let mut request = head(body.len() / 2);
    request.extend_from_slice(&body);
    let connection = client.connection();
    connection.send_raw(&request).await.unwrap();
    let first = connection
        .read_response(Duration::from_secs(20))
        .await
        .unwrap();
    check_wire(&first);
    assert_eq!(
        result_id(&first),
        "ERR_INVALID_MSG_FORMAT",
        "the first half is a truncated message: {}",
        first.text()
    );
    let started = Instant::now();
    match connection.read_response(Duration::from_secs(20)).await {
        Ok(second) => {
            assert_ne!(
                second.status,
                200,
                "the rest of the body was served as a request: {}",
                second.text()
            );
            assert!(second.close, "after a bad request the connection closes");
            println!(
                "hostile: Content-Length half the body: the rest got {:?} after {} ms",
                second.status_line,
                started.elapsed().as_millis()
            );
            let after = connection.read_response(Duration::from_secs(20)).await;
            assert!(
                matches!(after, Err(ClientError::Io(_))),
                "still open: {after:?}"
            );
        }
        Err(ClientError::Io(_)) => {
            println!("hostile: Content-Length half the body: the rest closed the connection")
        }
        Err(e) => panic!("the rest of the body left the connection hanging: {e}"),
    }

    assert_still_serves(&broker).await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_invalid_utf8() {
    let (_agent, broker) = broker_with(json!({})).await;
    let mut client = TestClient::connect(broker.addr).await;
    let in_hostname = |bytes: &[u8]| {
        let mut body = b"<pcoip-client version=\"2.1\"><hello><client-info><hostname>".to_vec();
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"</hostname></client-info></hello></pcoip-client>");
        body
    };
    let format = "ERR_INVALID_MSG_FORMAT";
    let mut in_password = envelope(&msg::authenticate("kolmogorov", "x", None)).into_bytes();
    let at = in_password
        .windows(b"<password>".len())
        .position(|w| w == b"<password>")
        .unwrap()
        + b"<password>".len();
    in_password.splice(at..at, [0xc3, 0x28]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("0xff 0xfe in text", in_hostname(b"\xff\xfe"), format),
        ("lone continuation byte", in_hostname(b"a\x80b"), format),
        ("overlong NUL", in_hostname(b"\xc0\x80"), format),
        ("UTF-16 surrogate", in_hostname(b"\xed\xa0\x80"), format),
        (
            "truncated sequence at the end",
            b"<pcoip-client version=\"2.1\"><bye/></pcoip-client>\xe2\x82".to_vec(),
            format,
        ),
        (
            "in an element name",
            b"<pcoip-client version=\"2.1\"><by\xffe/></pcoip-client>".to_vec(),
            format,
        ),
        (
            "in an attribute",
            b"<pcoip-client version=\"2.\xff\"><bye/></pcoip-client>".to_vec(),
            format,
        ),
        ("in a password", in_password, format),
        (
            "UTF-16 with a BOM",
            b"\xff\xfe<\0p\0c\0o\0i\0p\0".to_vec(),
            format,
        ),
    ];
    let slowest = expect_ids(&mut client, &cases).await;
    println!(
        "hostile: {} invalid UTF-8 bodies, slowest answer {} µs",
        cases.len(),
        slowest.as_micros()
    );

    // Invalid UTF-8 in headers: ignored like an absent header, never fatal.
    let body = envelope(&msg::hello());
    let connection = client.connection();
    let mut request = format!(
        "POST /pcoip-broker/xml HTTP/1.1\r\nHost: b\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    request
        .extend_from_slice(b"Client-Log-Id: \xff\xfe\xfd\r\nCookie: JSESSIONID=\xc3\x28\r\n\r\n");
    request.extend_from_slice(body.as_bytes());
    connection.send_raw(&request).await.unwrap();
    let response = connection
        .read_response(Duration::from_secs(20))
        .await
        .unwrap();
    check_wire(&response);
    assert_eq!(answer_kind(&response), "hello-resp", "{}", response.text());
    assert_still_serves(&broker).await;
    broker.stop().await;
}
