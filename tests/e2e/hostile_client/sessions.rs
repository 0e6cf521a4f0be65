//! Sessions abused: forged, expired and reused cookies, `Client-Log-Id` fallback without a usable
//! id, and every message in every state.

use std::time::{Duration, Instant};

use interstate_tests::{PASSWORD, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;
use serde_json::json;

use super::{answer_kind, assert_still_serves, broker_with};

async fn logged_in(broker: &TestBroker) -> (TestClient, String) {
    let mut client = TestClient::connect(broker.addr).await;
    assert_eq!(answer_kind(&client.send(&msg::hello()).await), "hello-resp");
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, Some("EXAMPLE")))
        .await;
    assert_eq!(answer_kind(&auth), "AUTH_SUCCESSFUL_AND_COMPLETE");
    let list = client.send(&msg::list()).await;
    assert_eq!(answer_kind(&list), "LIST_SUCCESSFUL");
    let id = element_text(&list.text(), "resource-id").unwrap();
    (client, id)
}

fn flip_last(id: &str) -> String {
    let (head, last) = id.split_at(id.len() - 1);
    format!("{head}{}", if last == "0" { '1' } else { '0' })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_forged_expired_and_reused_cookies() {
    let (_agent, broker) = broker_with(json!({})).await;
    let (mut owner, resource) = logged_in(&broker).await;
    let real = owner.cookie.clone().unwrap();

    let forgeries = [
        (
            "random 128-bit id",
            "0123456789abcdef0123456789abcdef".to_owned(),
            "ERR_INVALID_SESSION",
        ),
        (
            "the real id in upper case",
            real.to_ascii_uppercase(),
            "ERR_INVALID_SESSION",
        ),
        (
            "the real id with a byte changed",
            flip_last(&real),
            "ERR_INVALID_SESSION",
        ),
        (
            "path traversal",
            "../../../../etc/passwd".to_owned(),
            "ERR_INVALID_SESSION",
        ),
        ("empty", String::new(), "ERR_INVALID_SESSION"),
        ("1 KiB long", "a".repeat(1024), "ERR_MISSING_SESSION"),
    ];
    let before = broker.live_sessions().await;
    for (name, cookie, expected) in forgeries {
        let mut forger = TestClient::connect(broker.addr).await;
        forger.cookie = Some(cookie);
        for message in [msg::list(), msg::allocate(&resource), msg::bye()] {
            let started = Instant::now();
            let answer = forger.send(&message).await;
            assert_eq!(answer_kind(&answer), expected, "{name}: {}", answer.text());
            assert!(
                answer.header("set-cookie").is_none(),
                "{name}: a forged cookie got a session"
            );
            assert!(started.elapsed() < Duration::from_secs(5));
        }
    }
    assert_eq!(
        broker.live_sessions().await,
        before,
        "forged cookies neither create nor end sessions"
    );
    let still = owner.send(&msg::list()).await;
    assert_eq!(
        answer_kind(&still),
        "LIST_SUCCESSFUL",
        "forgeries left the real session alone"
    );

    // Reused after bye: the session is gone for good.
    let bye = owner.send(&msg::bye()).await;
    assert_eq!(answer_kind(&bye), "bye-resp");
    for message in [
        msg::list(),
        msg::allocate(&resource),
        msg::authenticate("kolmogorov", PASSWORD, None),
        msg::bye(),
    ] {
        let answer = owner.send(&message).await;
        assert_eq!(
            answer_kind(&answer),
            "ERR_INVALID_SESSION",
            "{}",
            answer.text()
        );
    }
    let mut thief = TestClient::connect(broker.addr).await;
    thief.cookie = Some(real);
    let answer = thief.send(&msg::list()).await;
    assert_eq!(answer_kind(&answer), "ERR_INVALID_SESSION");
    assert_still_serves(&broker).await;
    broker.stop().await;

    // Expiry is tested in-process on a paused clock (host/broker/tests/service.rs).
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_log_id_fallback_without_a_usable_id() {
    let (_agent, broker) = broker_with(json!({"fallback_sessions": true})).await;
    let zero = "00000000-0000-0000-0000-000000000000";

    // A victim logs in with the all-zero id (clients use it before they have a session).
    let mut victim = TestClient::connect(broker.addr).await;
    victim.log_id = Some(zero.into());
    victim.send(&msg::hello()).await;
    let auth = victim
        .send(&msg::authenticate("kolmogorov", PASSWORD, None))
        .await;
    assert_eq!(answer_kind(&auth), "AUTH_SUCCESSFUL_AND_COMPLETE");

    let unusable: [(&str, Option<String>); 5] = [
        ("no Client-Log-Id", None),
        ("the all-zero id", Some(zero.into())),
        ("an empty id", Some(String::new())),
        ("a non-hex id", Some("not-a-uuid-at-all".into())),
        ("a 1 KiB id", Some("a".repeat(1024))),
    ];
    for (name, log_id) in unusable {
        // Another cookieless client with the same unusable id finds nobody's session.
        let mut other = TestClient::connect(broker.addr).await;
        other.send_cookie = false;
        other.log_id = log_id.clone();
        for message in [msg::list(), msg::bye()] {
            let answer = other.send(&message).await;
            assert_eq!(
                answer_kind(&answer),
                "ERR_MISSING_SESSION",
                "{name}: {}",
                answer.text()
            );
        }
        // Its own hello makes a session it cannot find again without a cookie.
        other.send(&msg::hello()).await;
        let auth = other
            .send(&msg::authenticate("kolmogorov", PASSWORD, None))
            .await;
        assert_eq!(
            answer_kind(&auth),
            "ERR_MISSING_SESSION",
            "{name}: {}",
            auth.text()
        );
    }
    let list = victim.send(&msg::list()).await;
    assert_eq!(
        answer_kind(&list),
        "LIST_SUCCESSFUL",
        "the all-zero session was not hijacked or ended"
    );

    // A usable id still works without cookies.
    let mut good = TestClient::connect(broker.addr).await;
    good.send_cookie = false;
    good.log_id = Some("ddff1100-72e7-1039-8825-00000000beef".into());
    good.send(&msg::hello()).await;
    let auth = good
        .send(&msg::authenticate("kolmogorov", PASSWORD, None))
        .await;
    assert_eq!(answer_kind(&auth), "AUTH_SUCCESSFUL_AND_COMPLETE");
    assert_still_serves(&broker).await;
    broker.stop().await;
}

/// Where a session is before the message under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    Authenticated,
    Allocated,
    Ended,
}

/// A client whose session is in `state`.
async fn client_in(broker: &TestBroker, state: State, resource: &str) -> TestClient {
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    if state == State::Created {
        return client;
    }
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, None))
        .await;
    assert_eq!(answer_kind(&auth), "AUTH_SUCCESSFUL_AND_COMPLETE");
    match state {
        State::Created => unreachable!("returned above"),
        State::Authenticated => {
            assert_eq!(
                answer_kind(&client.send(&msg::list()).await),
                "LIST_SUCCESSFUL"
            );
        }
        State::Allocated => {
            assert_eq!(
                answer_kind(&client.send(&msg::list()).await),
                "LIST_SUCCESSFUL"
            );
            let alloc = client.send(&msg::allocate(resource)).await;
            assert_eq!(answer_kind(&alloc), "ALLOC_SUCCESSFUL");
        }
        State::Ended => {
            assert_eq!(answer_kind(&client.send(&msg::bye()).await), "bye-resp");
        }
    }
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_every_message_in_every_state() {
    let (_agent, broker) = broker_with(json!({})).await;
    let (_, resource) = logged_in(&broker).await;
    let messages: [(&str, String); 10] = [
        ("hello", msg::hello()),
        (
            "authenticate password",
            msg::authenticate("kolmogorov", PASSWORD, None),
        ),
        ("authenticate dialog", msg::dialog("code", "123456")),
        ("authenticate disclaimer", msg::disclaimer(true)),
        ("list", msg::list()),
        ("allocate", msg::allocate(&resource)),
        (
            "perform-operation",
            msg::perform_operation(&resource, "CMD_OS_RESTART"),
        ),
        (
            "update-password",
            msg::update_password("kolmogorov", PASSWORD, "n3w-password!", ""),
        ),
        ("bye", msg::bye()),
        (
            "unknown",
            "<get-authentication-method></get-authentication-method>".to_owned(),
        ),
    ];
    use State::{Allocated, Authenticated, Created, Ended};
    // Rows follow `messages`. The SimpleMapper is a 0.1 mapper: it offers no operations and
    // cannot change passwords.
    let expected: [(State, [&str; 10]); 4] = [
        (
            Created,
            [
                "hello-resp",
                "AUTH_SUCCESSFUL_AND_COMPLETE",
                "AUTH_FAILED_UNEXPECTED_METHOD",
                "AUTH_FAILED_UNEXPECTED_METHOD",
                "LIST_FAILED_NO_USER",
                "ALLOC_FAILED_NO_USER",
                "OP_FAILED_NO_USER",
                "PSWD_UPDATE_FAILED_NOT_SUPPORTED",
                "bye-resp",
                "ERR_UNSUPPORTED_REQUEST",
            ],
        ),
        (
            Authenticated,
            [
                "hello-resp",
                "AUTH_SUCCESSFUL_AND_COMPLETE",
                "AUTH_FAILED_UNEXPECTED_METHOD",
                "AUTH_FAILED_UNEXPECTED_METHOD",
                "LIST_SUCCESSFUL",
                "ALLOC_SUCCESSFUL",
                "OP_FAILED_OPERATION_NOT_SUPPORTED",
                "PSWD_UPDATE_FAILED_ALREADY_AUTHENTICATED",
                "bye-resp",
                "ERR_UNSUPPORTED_REQUEST",
            ],
        ),
        (
            Allocated,
            [
                "hello-resp",
                "AUTH_SUCCESSFUL_AND_COMPLETE",
                "AUTH_FAILED_UNEXPECTED_METHOD",
                "AUTH_FAILED_UNEXPECTED_METHOD",
                "LIST_SUCCESSFUL",
                "ALLOC_FAILED_NO_USER",
                "OP_FAILED_OPERATION_NOT_SUPPORTED",
                "PSWD_UPDATE_FAILED_ALREADY_AUTHENTICATED",
                "bye-resp",
                "ERR_UNSUPPORTED_REQUEST",
            ],
        ),
        (
            Ended,
            [
                "hello-resp",
                "ERR_INVALID_SESSION",
                "ERR_INVALID_SESSION",
                "ERR_INVALID_SESSION",
                "ERR_INVALID_SESSION",
                "ERR_INVALID_SESSION",
                "ERR_INVALID_SESSION",
                "ERR_INVALID_SESSION",
                "ERR_INVALID_SESSION",
                // An unknown message is unsupported, session or not.
                "ERR_UNSUPPORTED_REQUEST",
            ],
        ),
    ];
    let started = Instant::now();
    let mut cases = 0;
    for (state, row) in expected {
        for ((name, message), want) in messages.iter().zip(row) {
            let mut client = client_in(&broker, state, &resource).await;
            let answer = client.send(message).await;
            let got = answer_kind(&answer);
            assert_eq!(got, want, "{name} in {state:?}: {}", answer.text());
            assert!(
                answer.text().contains("<pcoip-client version=\"2.1\">"),
                "{name} in {state:?}: {}",
                answer.text()
            );
            // Whatever happened, the same connection still gets clear answers.
            let next = client.send(&msg::list()).await;
            answer_kind(&next);
            cases += 1;
        }
    }
    println!(
        "hostile: {cases} message/state cases in {} ms",
        started.elapsed().as_millis()
    );
    assert_still_serves(&broker).await;
    broker.stop().await;
}
