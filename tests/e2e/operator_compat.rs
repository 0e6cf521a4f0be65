//! channelstream compatibility cases of the admin listener (reference §6.2): 4 (the IP
//! allowlist of the signed API), 23 (editing and deleting messages), 43 (`admin.json`), 44 (the
//! admin sign-in) and 45 (`enforce_https`, CORS), over real TLS or plain HTTP on loopback as the
//! case needs.

use std::time::{Duration, Instant};

use interstate_feed::signer::SigningKey;
use interstate_tests::{AgentBehaviour, FakeAgent, TestBroker};
use serde_json::{Value, json};

use crate::operator::{Admin, TOKEN, audit_records, operator_settings};

/// The admin password of these tests (only its hash goes into the settings).
const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A compat-mode token (VALUE is the endpoint), signed with [`TOKEN`] `back` seconds ago: calls
/// with the same body use backdates far apart, so that they never share a token (a replay).
fn compat_token(endpoint: &str, back: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SigningKey::derive(TOKEN.as_bytes()).sign(endpoint, now - back)
}

/// A header's value in a response head, lower-cased name.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// A broker with the operator settings plus `admin` keys merged in.
async fn broker_with(admin: Value, tls: bool) -> (TestBroker, tempfile::TempDir, FakeAgent) {
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = operator_settings(agent.addr, &dir.path().join("audit.jsonl"), tls);
    if let Value::Object(extra) = admin {
        for (key, value) in extra {
            settings["admin"][key] = value;
        }
    }
    (TestBroker::start(settings).await, dir, agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_4_an_address_outside_the_allowlist_gets_403_even_signed() {
    let (outside, _dir, _agent) = broker_with(
        json!({"allow_posting_from": ["10.9.9.0/24", "fd00::/8"]}),
        true,
    )
    .await;
    let admin = Admin::start(&outside, Some(TOKEN)).await;
    let body = json!({"username": "w", "channels": ["sessions"]}).to_string();
    let (status, answer) = admin.signed("POST", "/feed/connect", body.as_bytes()).await;
    assert_eq!(status, 403, "a valid strict token from 127.0.0.1: {answer}");
    let (status, _, answer) = admin
        .request(
            "POST",
            "/channelstream/connect",
            &[("X-Channelstream-Secret", &compat_token("/connect", 0))],
            body.as_bytes(),
        )
        .await;
    assert_eq!(status, 403, "a valid compat token: {answer}");
    let (status, answer) = admin.signed("GET", "/admin/api/sessions", b"").await;
    assert_eq!(status, 403, "a signed admin call: {answer}");
    let (status, answer) = admin.signed("GET", "/admin/admin.json", b"").await;
    assert_eq!(status, 403, "admin.json signed: {answer}");
    // The allowlist is about the signed API: the operator's bearer token still works.
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, _) = admin
        .request(
            "GET",
            "/admin/api/sessions",
            &[("Authorization", &bearer)],
            b"",
        )
        .await;
    assert_eq!(status, 200);

    let (inside, _dir, _agent) =
        broker_with(json!({"allow_posting_from": ["127.0.0.0/8"]}), true).await;
    let admin = Admin::start(&inside, Some(TOKEN)).await;
    let (status, answer) = admin.signed("POST", "/feed/connect", body.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = admin.signed("GET", "/admin/api/sessions", b"").await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_23_edit_and_delete_through_the_compat_mount() {
    let (broker, _dir, _agent) = broker_with(json!({}), true).await;
    let admin = Admin::start(&broker, Some(TOKEN)).await;
    let configs = json!({"pub": {"store_history": true, "history_size": 10}});
    let body = json!({"username": "keeper", "channels": ["pub"], "channel_configs": configs});
    let (status, answer) = admin
        .signed("POST", "/feed/connect", body.to_string().as_bytes())
        .await;
    assert_eq!(status, 200, "{answer}");
    let mut watcher = admin.subscribe("watcher", &["pub"]).await;
    let compat = |method: &'static str, body: Value, back: u64| {
        let admin = &admin;
        async move {
            let token = compat_token("/message", back);
            let (status, _, answer) = admin
                .request(
                    method,
                    "/channelstream/message",
                    &[
                        ("X-Channelstream-Secret", &token),
                        ("Content-Type", "application/json"),
                    ],
                    body.to_string().as_bytes(),
                )
                .await;
            (
                status,
                serde_json::from_str::<Value>(&answer).unwrap_or(Value::Null),
            )
        }
    };
    let (status, posted) = compat(
        "POST",
        json!([{"user": "app", "channel": "pub", "message": {"text": "hello"}}]),
        0,
    )
    .await;
    assert_eq!(status, 200, "{posted}");
    let uuid = posted[0]["uuid"].as_str().unwrap().to_owned();

    let (status, answer) = compat(
        "PATCH",
        json!([{"uuid": uuid, "channel": "pub", "message": {"text": "edited"}}]),
        10,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["message"]["text"], "edited");
    assert!(answer[0]["edited"].is_string());
    let (events, raw) = watcher
        .until(Duration::from_secs(10), |e| e["type"] == "message:edit")
        .await;
    let edit = events
        .iter()
        .find(|e| e["type"] == "message:edit")
        .expect(&raw);
    assert_eq!(edit["uuid"], uuid.as_str());
    assert_eq!(edit["message"]["text"], "edited");
    let (status, info) = admin
        .signed("POST", "/feed/info", br#"{"info": {"channels": ["pub"]}}"#)
        .await;
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&info).unwrap();
    let stored = &info["channels"]["pub"]["history"][0];
    assert_eq!(stored["uuid"], uuid.as_str());
    assert_eq!(stored["message"]["text"], "edited");
    assert_eq!(stored["user"], "app");

    let (status, answer) = compat("DELETE", json!([{"uuid": uuid, "channel": "pub"}]), 20).await;
    assert_eq!(status, 200, "{answer}");
    let (events, raw) = watcher
        .until(Duration::from_secs(10), |e| e["type"] == "message:delete")
        .await;
    let deleted = events
        .iter()
        .find(|e| e["type"] == "message:delete")
        .expect(&raw);
    assert_eq!(deleted["uuid"], uuid.as_str());
    assert_eq!(deleted["channel"], "pub");
    let (_, info) = admin
        .signed(
            "POST",
            "/feed/info",
            br#"{"info": {"channels": ["pub"], "include_users": false}}"#,
        )
        .await;
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["channels"]["pub"]["history"], json!([]));

    let (status, answer) = compat("DELETE", json!([{"uuid": uuid, "channel": "pub"}]), 30).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer, json!({"0": {"uuid": ["Unknown message."]}}));
    let (status, answer) = compat("PATCH", json!([{"channel": "pub"}]), 40).await;
    assert_eq!(status, 422);
    assert_eq!(
        answer,
        json!({"0": {"uuid": ["Missing data for required field."]}})
    );
    // Signed like /message: a token for another endpoint is refused.
    let (status, _, answer) = admin
        .request(
            "PATCH",
            "/channelstream/message",
            &[("X-Channelstream-Secret", &compat_token("/connect", 50))],
            b"[]",
        )
        .await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer, r#"{"request":"Bad Signature"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_43_44_admin_json_and_the_admin_sign_in() {
    let hash = interstate_mapper::password::hash_argon2id(ADMIN_PASSWORD);
    let (broker, dir, _agent) = broker_with(
        json!({"password_hash": hash, "cookie_secret": "a cookie secret for the tests"}),
        true,
    )
    .await;
    let admin = Admin::start(&broker, Some(TOKEN)).await;

    // Unauthenticated: to the sign-in page, at the root and under the compat mount.
    for (path, sign_in) in [
        ("/admin/admin.json", "/admin/sign_in"),
        (
            "/channelstream/admin/admin.json",
            "/channelstream/admin/sign_in",
        ),
    ] {
        let (status, head, _) = admin.request("GET", path, &[], b"").await;
        assert_eq!(status, 302, "{path}: {head}");
        assert_eq!(header(&head, "location"), Some(sign_in), "{head}");
    }
    // Signed (strict at the root, compat under /channelstream): the counters of §3.11.
    let (status, answer) = admin.signed("GET", "/admin/admin.json", b"").await;
    assert_eq!(status, 200, "{answer}");
    let snapshot: Value = serde_json::from_str(&answer).unwrap();
    for key in [
        "remembered_user_count",
        "unique_user_count",
        "total_connections",
        "total_channels",
        "total_messages",
        "total_unique_messages",
        "uptime",
        "version",
        "channels",
        "users",
    ] {
        assert!(snapshot.get(key).is_some(), "{key} in {snapshot}");
    }
    let (status, _, answer) = admin
        .request(
            "GET",
            "/channelstream/admin/admin.json",
            &[(
                "X-Channelstream-Secret",
                &compat_token("/admin/admin.json", 0),
            )],
            b"",
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, answer) = admin
        .request(
            "GET",
            "/admin/admin.json",
            &[("X-Channelstream-Secret", "garbage")],
            b"",
        )
        .await;
    assert_eq!(status, 401, "{answer}");

    // The form, then a wrong password: 200, no cookie, after at least 0.5 s.
    let (status, head, page) = admin.request("GET", "/admin/sign_in", &[], b"").await;
    assert_eq!(status, 200, "{head}");
    assert!(
        page.contains("<form") && page.contains("name=\"password\""),
        "{page}"
    );
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let started = Instant::now();
    let (status, head, page) = admin
        .request(
            "POST",
            "/admin/sign_in",
            &form,
            b"username=admin&password=wrong",
        )
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, 200, "{head}");
    assert!(header(&head, "set-cookie").is_none(), "{head}");
    assert!(page.contains("<form"), "{page}");

    // The right one: 302 and an auth_tkt cookie, which opens admin.json.
    let body = format!(
        "username=admin&password={}",
        ADMIN_PASSWORD.replace(' ', "+")
    );
    let (status, head, _) = admin
        .request("POST", "/admin/sign_in", &form, body.as_bytes())
        .await;
    assert_eq!(status, 302, "{head}");
    let set_cookie = header(&head, "set-cookie").expect("a cookie").to_owned();
    assert!(set_cookie.starts_with("auth_tkt="), "{set_cookie}");
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Max-Age=",
        "Path=/",
    ] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let (status, _, answer) = admin
        .request("GET", "/admin/admin.json", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(serde_json::from_str::<Value>(&answer).unwrap()["total_channels"].is_u64());
    // A forged cookie does not.
    let forged = format!("auth_tkt=00{}", &cookie["auth_tkt=".len() + 2..]);
    let (status, _, _) = admin
        .request("GET", "/admin/admin.json", &[("Cookie", &forged)], b"")
        .await;
    assert_eq!(status, 302);

    // Sign-out clears the cookie and it no longer opens anything.
    let (status, head, _) = admin
        .request("GET", "/admin/sign_out", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(status, 302, "{head}");
    assert_eq!(header(&head, "location"), Some("/admin/sign_in"));
    let cleared = header(&head, "set-cookie").unwrap();
    assert!(
        cleared.starts_with("auth_tkt=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, _, _) = admin
        .request("GET", "/admin/admin.json", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(status, 302, "a signed-out cookie");

    let records = audit_records(&dir.path().join("audit.jsonl"));
    let admin_logins: Vec<&Value> = records.iter().filter(|r| r["realm"] == "admin").collect();
    assert!(
        admin_logins
            .iter()
            .any(|r| r["event"] == "authn_login_fail")
    );
    assert!(
        admin_logins
            .iter()
            .any(|r| r["event"] == "authn_login_success")
    );
    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(
        !text.contains(ADMIN_PASSWORD) && !text.contains("wrong"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_44_the_sign_in_cannot_be_sprayed() {
    let hash = interstate_mapper::password::hash_argon2id(ADMIN_PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = operator_settings(agent.addr, &dir.path().join("audit.jsonl"), true);
    settings["admin"]["password_hash"] = json!(hash);
    settings["admin"]["cookie_secret"] = json!("a cookie secret for the tests");
    settings["security"] = json!({"auth_failures_per_address": 3, "auth_failures_per_user": 100});
    let broker = TestBroker::start(settings).await;
    let admin = Admin::start(&broker, Some(TOKEN)).await;
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    for attempt in 0..3 {
        let (status, _, _) = admin
            .request(
                "POST",
                "/admin/sign_in",
                &form,
                format!("username=admin&password=guess{attempt}").as_bytes(),
            )
            .await;
        assert_eq!(status, 200);
    }
    let body = format!(
        "username=admin&password={}",
        ADMIN_PASSWORD.replace(' ', "+")
    );
    let (status, head, _) = admin
        .request("POST", "/admin/sign_in", &form, body.as_bytes())
        .await;
    assert_eq!(
        status, 429,
        "locked out, even with the right password: {head}"
    );
    assert!(header(&head, "set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_45_enforce_https_and_cors() {
    // Plain HTTP (a loopback listener without admin.tls) with enforce_https: 406.
    let (plain, _dir, _agent) = broker_with(json!({"enforce_https": true}), false).await;
    let admin = Admin::start(&plain, Some(TOKEN)).await;
    assert!(!admin.tls);
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = admin
        .request("GET", "/healthz", &[("Authorization", &bearer)], b"")
        .await;
    assert_eq!(status, 406, "{body}");
    assert_eq!(body, r#"{"request":"SSL is required"}"#);
    let (status, _) = admin.signed("POST", "/feed/info", b"").await;
    assert_eq!(status, 406);

    // Over TLS the same settings serve normally.
    let (secure, _dir, _agent) = broker_with(
        json!({"enforce_https": true, "allow_cors": ["https://app.example"]}),
        true,
    )
    .await;
    let admin = Admin::start(&secure, Some(TOKEN)).await;
    let (status, _, _) = admin
        .request("GET", "/healthz", &[("Authorization", &bearer)], b"")
        .await;
    assert_eq!(status, 200);

    // A preflight: 200, empty, channelstream's allow headers; the listed origin is named.
    let preflight = [
        ("Origin", "https://app.example"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "x-channelstream-secret"),
    ];
    let (status, head, body) = admin
        .request("OPTIONS", "/feed/connect", &preflight, b"")
        .await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, "");
    let allow_headers = header(&head, "access-control-allow-headers").expect(&head);
    assert!(
        allow_headers
            .to_ascii_lowercase()
            .contains("x-channelstream-secret"),
        "{allow_headers}"
    );
    assert!(
        header(&head, "access-control-allow-methods")
            .unwrap()
            .contains("PATCH")
    );
    assert_eq!(header(&head, "access-control-max-age"), Some("86400"));
    assert_eq!(
        header(&head, "access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(header(&head, "access-control-allow-credentials").is_none());
    // The listed origin's requests carry its name; another origin is neither named nor served.
    let (status, head, _) = admin
        .request(
            "GET",
            "/healthz",
            &[
                ("Authorization", &bearer),
                ("Origin", "https://app.example"),
            ],
            b"",
        )
        .await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header(&head, "access-control-allow-origin"),
        Some("https://app.example")
    );
    let (status, head, _) = admin
        .request(
            "OPTIONS",
            "/feed/connect",
            &[("Origin", "https://evil.example")],
            b"",
        )
        .await;
    assert_eq!(status, 200, "{head}");
    assert!(
        header(&head, "access-control-allow-origin").is_none(),
        "{head}"
    );
    let (status, _, _) = admin
        .request(
            "GET",
            "/healthz",
            &[
                ("Authorization", &bearer),
                ("Origin", "https://evil.example"),
            ],
            b"",
        )
        .await;
    assert_eq!(status, 403);

    // The default: no origin is listed.
    let (default, _dir, _agent) = broker_with(json!({}), true).await;
    let admin = Admin::start(&default, Some(TOKEN)).await;
    let (status, head, _) = admin
        .request("OPTIONS", "/feed/connect", &preflight, b"")
        .await;
    assert_eq!(status, 200);
    assert!(
        header(&head, "access-control-allow-origin").is_none(),
        "{head}"
    );
    assert!(
        header(&head, "access-control-allow-headers").is_some(),
        "{head}"
    );
}
