//! Signing and auth: cases 1–8.

use base64::Engine as _;
use hmac::Mac as _;
use hyper::{Method, StatusCode};
use interstate_feed::signer::SigningKey;
use serde_json::json;

use crate::support::{SECRET, start};

const CONNECT: &str = r#"{"username":"alice"}"#;

#[tokio::test]
async fn case_1_reference_vector_connects_at_its_own_time() {
    let harness = start().await;
    // `/connect.ZVPxAA.LGgz2XYmQrtshS37benqptPevTY` is study §2.3's vector for ts 1700000000,
    // the harness clock's start.
    let (status, body) = harness
        .raw(
            Method::POST,
            "/feed/connect",
            CONNECT,
            Some("/connect.ZVPxAA.LGgz2XYmQrtshS37benqptPevTY"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "alice");
}

#[tokio::test]
async fn case_2_js_signer_tokens_are_accepted() {
    let harness = start().await;
    // The JS signer keeps one `=` in TS (and HMACs it) and leaves a standard-alphabet signature.
    let signed_part = "/connect.ZVPxAA=";
    let key = SigningKey::derive(SECRET);
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(signed_part.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let token = format!("{signed_part}.{sig}");
    let (status, body) = harness
        .raw(Method::POST, "/feed/connect", CONNECT, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn case_3_bad_tokens_get_401_bad_signature_and_max_age_is_inclusive() {
    let harness = start().await;
    let now = harness.now_secs();
    let wrong = SigningKey::derive(b"wrong").sign("/connect", now);
    let old = SigningKey::derive(SECRET).sign("/connect", now - 61);
    for token in [wrong.as_str(), "garbage", "abc.def", old.as_str()] {
        let (status, body) = harness
            .raw(Method::POST, "/feed/connect", CONNECT, Some(token))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(body, json!({"request": "Bad Signature"}));
    }
    let edge = SigningKey::derive(SECRET).sign("/connect", now - 60);
    let (status, _) = harness
        .raw(Method::POST, "/feed/connect", CONNECT, Some(&edge))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn case_4_no_token_is_403_json() {
    let harness = start().await;
    let (status, body) = harness
        .raw(Method::POST, "/feed/connect", CONNECT, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"request": "Forbidden"}));
}

#[tokio::test]
async fn case_5_6_future_and_replayed_tokens_are_refused() {
    let harness = start().await;
    let now = harness.now_secs();
    let future = SigningKey::derive(SECRET).sign("/connect", now + 30);
    let (status, _) = harness
        .raw(Method::POST, "/feed/connect", CONNECT, Some(&future))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let token = harness.token("/connect");
    let (first, _) = harness
        .raw(Method::POST, "/feed/connect", CONNECT, Some(&token))
        .await;
    let (second, body) = harness
        .raw(Method::POST, "/feed/connect", CONNECT, Some(&token))
        .await;
    assert_eq!((first, second), (StatusCode::OK, StatusCode::UNAUTHORIZED));
    assert_eq!(body, json!({"request": "Bad Signature"}));
}

#[tokio::test]
async fn case_7_strict_mode_binds_method_path_and_body() {
    let harness = start().await;
    let (status, body) = harness.call_strict(Method::POST, "/connect", CONNECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An endpoint-only (compat) token is refused on the strict mount.
    let token = harness.token("/connect");
    let (status, _) = harness
        .raw(Method::POST, "/admin/api/connect", CONNECT, Some(&token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A token for another body is refused.
    let value = format!(
        "POST /admin/api/connect {}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"{}"))
    );
    let token = SigningKey::derive(SECRET).sign(&value, harness.now_secs());
    let (status, _) = harness
        .raw(Method::POST, "/admin/api/connect", CONNECT, Some(&token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Compat mode still wants the endpoint path, not any value.
    let token = SigningKey::derive(SECRET).sign("channelstream", harness.now_secs());
    let (status, _) = harness
        .raw(Method::POST, "/feed/connect", CONNECT, Some(&token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn case_8_secrets_in_the_query_string_are_refused() {
    let harness = start().await;
    let token = harness.token("/connect");
    let (status, body) = harness
        .raw(
            Method::POST,
            &format!("/feed/connect?secret={token}"),
            CONNECT,
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["secret"].is_array());
}

#[tokio::test]
async fn rotated_keys_all_verify_and_bodies_are_bounded() {
    let harness = start().await;
    let token = SigningKey::derive(b"rotated-in").sign("/connect", harness.now_secs());
    let (status, _) = harness
        .raw(Method::POST, "/feed/connect", CONNECT, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let huge = format!(r#"{{"username":"{}"}}"#, "x".repeat(300 * 1024));
    let token = harness.token("/connect");
    let (status, _) = harness
        .raw(Method::POST, "/feed/connect", &huge, Some(&token))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = harness
        .raw(
            Method::GET,
            "/feed/connect",
            "",
            Some(&harness.token("/connect")),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = harness.raw(Method::GET, "/elsewhere", "", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
