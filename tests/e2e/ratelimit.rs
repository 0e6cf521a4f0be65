//! Password spraying meets the failure limits: uniform answers, no mapper call past the cap.

use std::sync::atomic::Ordering;

use interstate_tests::broker::simple_settings;
use interstate_tests::pcoip::result_id;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spraying_from_one_address_is_capped() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    settings["security"] = serde_json::json!({"auth_failures_per_user": 5, "auth_failures_per_address": 20, "auth_window_s": 300});
    let broker = TestBroker::start(settings).await;
    let stats = broker.running.broker.stats();

    // A sprayer tries one common password against many user names, a new session each time.
    let mut client = TestClient::connect(broker.addr).await;
    for i in 0..60 {
        client.cookie = None;
        client.send(&msg::hello()).await;
        let auth = client
            .send(&msg::authenticate(
                &format!("user{i}"),
                "Summer2026!",
                Some("EXAMPLE"),
            ))
            .await;
        assert_eq!(
            result_id(&auth),
            "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
            "uniform answers"
        );
        assert!(auth.text().contains("<result-str>"), "{}", auth.text());
    }
    assert_eq!(
        stats.mapper_logins.load(Ordering::Relaxed),
        20,
        "the mapper saw only the first 20"
    );
    assert_eq!(stats.rate_limited.load(Ordering::Relaxed), 40);

    // Past the cap even the right password is refused from that address, the same way.
    client.cookie = None;
    client.send(&msg::hello()).await;
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, Some("EXAMPLE")))
        .await;
    assert_eq!(result_id(&auth), "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD");
    assert_eq!(stats.mapper_logins.load(Ordering::Relaxed), 20);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_one_user_is_capped_and_success_resets() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    settings["security"] = serde_json::json!({"auth_failures_per_user": 3, "auth_failures_per_address": 1000, "auth_window_s": 300});
    let broker = TestBroker::start(settings).await;
    let stats = broker.running.broker.stats();
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;

    // Two failures, then a success clears the count.
    for _ in 0..2 {
        let auth = client
            .send(&msg::authenticate("kolmogorov", "guess", None))
            .await;
        assert_eq!(result_id(&auth), "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD");
    }
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, None))
        .await;
    assert_eq!(result_id(&auth), "AUTH_SUCCESSFUL_AND_COMPLETE");

    // Three failures (the user name's case does not matter) lock the user out, uniformly.
    for user in ["kolmogorov", "KOLMOGOROV", "Kolmogorov"] {
        let auth = client.send(&msg::authenticate(user, "guess", None)).await;
        assert_eq!(result_id(&auth), "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD");
    }
    let before = stats.mapper_logins.load(Ordering::Relaxed);
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, None))
        .await;
    assert_eq!(result_id(&auth), "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD");
    assert_eq!(
        stats.mapper_logins.load(Ordering::Relaxed),
        before,
        "no mapper call past the cap"
    );
    broker.stop().await;
}

/// Issue #13 item 3: a rate-limited refusal costs what a wrong password costs (a dummy hash on
/// the same pool), so its timing does not reveal the lock-out. Medians of a few tries, and a
/// coarse bound (half), so that a busy machine does not make it flaky: without the dummy hash
/// the refusal is tens of times faster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_refusal_takes_as_long_as_a_wrong_password() {
    const TRIES: usize = 5;
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    settings["security"] = serde_json::json!({"auth_failures_per_user": TRIES, "auth_failures_per_address": 1000, "auth_window_s": 300});
    let broker = TestBroker::start(settings).await;
    let stats = broker.running.broker.stats();
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;

    let mut wrong = Vec::new();
    for _ in 0..TRIES {
        wrong.push(timed_wrong_password(&mut client).await);
    }
    let mut limited = Vec::new();
    for _ in 0..TRIES {
        limited.push(timed_wrong_password(&mut client).await);
    }
    assert_eq!(stats.rate_limited.load(Ordering::Relaxed), TRIES as u64);
    wrong.sort();
    limited.sort();
    let (wrong, limited) = (wrong[TRIES / 2], limited[TRIES / 2]);
    assert!(
        limited * 2 >= wrong,
        "a rate-limited refusal ({limited:?}) must take about as long as a wrong password ({wrong:?})"
    );
    broker.stop().await;
}

/// How long one refused login takes, end to end.
async fn timed_wrong_password(client: &mut TestClient) -> std::time::Duration {
    let started = std::time::Instant::now();
    let auth = client
        .send(&msg::authenticate("kolmogorov", "guess", None))
        .await;
    assert_eq!(result_id(&auth), "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD");
    started.elapsed()
}
