//! Websocket delivery, presence, catch-up, lifecycle and back-pressure: cases 19, 24–39.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use hyper::StatusCode;
use interstate_feed::{Event, Limits, Timing};
use serde_json::json;
use tokio::net::TcpSocket;

use crate::support::{
    Socket, assert_next_is_marker, close_of, config, next_event, start, start_with,
};

#[tokio::test]
async fn case_24_19_bound_sockets_receive_routed_events() {
    let harness = start().await;
    let (_, mut alice) = harness.subscriber("alice", &["pub"]).await;
    let (_, mut bob) = harness.subscriber("bob", &["pub"]).await;
    let (_, mut carol) = harness.subscriber("carol", &[]).await;
    harness.say("pub", "all").await;
    for socket in [&mut alice, &mut bob] {
        let event = next_event(socket).await.unwrap();
        assert_eq!(event["type"], "message");
        assert_eq!(event["channel"], "pub");
        assert_eq!(event["user"], "system");
        assert_eq!(event["catchup"], false);
        assert_eq!(event["edited"], json!(null));
        assert_eq!(event["node"], "test-node");
        assert!(event.get("pm_users").is_none());
    }
    let messages = json!([
        {"user": "s", "channel": "pub", "message": {"text": "to bob"}, "pm_users": ["bob"]},
        {"user": "s", "channel": "pub", "message": {"text": "not bob"}, "pm_users": ["alice", "bob"], "exclude_users": ["bob"]},
        {"user": "s", "channel": null, "message": {"text": "global pm"}, "pm_users": ["carol"]},
        {"user": "s", "channel": "nowhere", "message": {"text": "dropped"}}
    ]);
    let (status, _) = harness.call("/message", &messages).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        next_event(&mut bob).await.unwrap()["message"]["text"],
        "to bob"
    );
    assert_eq!(
        next_event(&mut alice).await.unwrap()["message"]["text"],
        "not bob"
    );
    let pm = next_event(&mut carol).await.unwrap();
    assert_eq!(
        (pm["message"]["text"].clone(), pm["channel"].clone()),
        (json!("global pm"), json!(null))
    );
    assert_next_is_marker(&harness, &mut bob, "pub").await;
    assert_next_is_marker(&harness, &mut alice, "pub").await;
}

#[tokio::test]
async fn case_25_26_40_unknown_malformed_and_rebound_ids() {
    let harness = start().await;
    let mut socket = harness
        .socket("conn_id=11111111-2222-4333-8444-555555555555")
        .await;
    assert_eq!(
        close_of(&mut socket).await,
        (1000, "unknown connection".into())
    );
    for query in [
        "",
        "conn_id=nope",
        "conn_id=11111111-2222-4333-8444-555555555555&since=x",
    ] {
        let url = format!("ws://{}/feed/ws?{query}", harness.addr);
        let error = tokio_tungstenite::connect_async(url).await.unwrap_err();
        let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
            panic!("expected an HTTP refusal for {query:?}, got {error}");
        };
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    let (conn, _socket) = harness.subscriber("a", &["c"]).await;
    let url = format!("ws://{}/feed/ws?conn_id={conn}", harness.addr);
    let error = tokio_tungstenite::connect_async(url).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
        panic!("expected 409, got {error}");
    };
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn case_27_heartbeat_regardless_of_bind_delay() {
    let (mut config, clock) = config();
    config.timing = Timing {
        heartbeat: Duration::from_millis(100),
        ..Timing::default()
    };
    let harness = start_with(config, clock).await;
    let conn = harness.mint("late", &["c"]).await;
    // Bound long after minting (on the feed's clock); the heartbeat starts at binding anyway.
    harness.clock.advance_secs(20);
    let mut socket = harness.socket(&format!("conn_id={conn}")).await;
    let mut saw_heartbeat = false;
    let mut saw_ping = false;
    while !(saw_heartbeat && saw_ping) {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match message {
            tokio_tungstenite::tungstenite::Message::Text(text) => {
                assert_eq!(text.as_str(), "[]");
                saw_heartbeat = true;
            }
            tokio_tungstenite::tungstenite::Message::Ping(_) => saw_ping = true,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn case_29_catchup_between_mint_and_bind_is_exactly_once_in_order() {
    let harness = start().await;
    let conn = harness.mint("late", &["c"]).await;
    for index in 0..3 {
        harness.say("c", &format!("early{index}")).await;
    }
    let mut socket = harness.socket(&format!("conn_id={conn}")).await;
    let mut seqs = Vec::new();
    for index in 0..3 {
        let event = next_event(&mut socket).await.unwrap();
        assert_eq!(event["catchup"], true);
        assert_eq!(event["message"]["text"], format!("early{index}"));
        seqs.push(event["seq"].as_u64().unwrap());
    }
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]));
    harness.say("c", "live").await;
    let live = next_event(&mut socket).await.unwrap();
    assert_eq!(
        (live["message"]["text"].clone(), live["catchup"].clone()),
        (json!("live"), json!(false))
    );
}

#[tokio::test]
async fn case_30_catchup_by_seq_and_gap_signal() {
    let (mut config, clock) = config();
    config.limits = Limits {
        catchup_frames: 5,
        ..Limits::default()
    };
    let harness = start_with(config, clock).await;
    let (_, mut first) = harness.subscriber("op", &["c"]).await;
    harness.say("c", "one").await;
    let seen = next_event(&mut first).await.unwrap()["seq"]
        .as_u64()
        .unwrap();
    drop(first);
    harness.say("c", "two").await;
    harness.say("c", "three").await;
    let conn = harness.mint("op", &["c"]).await;
    let mut again = harness
        .socket(&format!("conn_id={conn}&since={seen}"))
        .await;
    let texts = [
        next_event(&mut again).await.unwrap()["message"]["text"].clone(),
        next_event(&mut again).await.unwrap()["message"]["text"].clone(),
    ];
    assert_eq!(texts, [json!("two"), json!("three")]);
    assert_next_is_marker(&harness, &mut again, "c").await;

    for index in 0..10 {
        harness.say("c", &format!("flood{index}")).await;
    }
    let conn = harness.mint("op2", &["c"]).await;
    let mut gapped = harness
        .socket(&format!("conn_id={conn}&since={seen}"))
        .await;
    let gap = next_event(&mut gapped).await.unwrap();
    assert_eq!(gap["type"], "catchup_gap");
    assert_eq!(gap["since"], seen);
    let first = next_event(&mut gapped).await.unwrap();
    assert_eq!(first["catchup"], true);
}

#[tokio::test]
async fn case_31_32_33_presence_joined_and_parted() {
    let harness = start().await;
    let configs =
        json!({"room": {"notify_presence": true, "broadcast_presence_with_user_lists": true}});
    let (_, body) = harness
        .call(
            "/connect",
            &json!({"username": "a", "channels": ["room"], "channel_configs": configs}),
        )
        .await;
    let mut a = harness
        .socket(&format!("conn_id={}", body["conn_id"].as_str().unwrap()))
        .await;
    let (_, body) = harness
        .call("/connect", &json!({"username": "b", "channels": ["room"], "user_state": {"s": "away", "p": 1}, "state_public_keys": ["s"]}))
        .await;
    let b_conn = body["conn_id"].as_str().unwrap().to_owned();
    let mut b = harness.socket(&format!("conn_id={b_conn}")).await;
    let joined = next_event(&mut a).await.unwrap();
    assert_eq!(joined["type"], "presence");
    assert_eq!(joined["user"], "b");
    assert_eq!(joined["message"], json!({"action": "joined"}));
    assert_eq!(joined["state"], json!({"s": "away"}));
    assert_eq!(
        joined["users"],
        json!([{"user": "a", "state": {}}, {"user": "b", "state": {"s": "away"}}])
    );
    // A second connection of b emits nothing; b never hears about itself.
    let (_, mut b2) = harness.subscriber("b", &["room"]).await;
    harness.say("room", "marker").await;
    for socket in [&mut a, &mut b, &mut b2] {
        assert_eq!(
            next_event(socket).await.unwrap()["message"]["text"],
            "marker"
        );
    }
    // b's first socket closes: b still has a connection, so no parted yet.
    b.close(None).await.unwrap();
    drop(b);
    assert_next_is_marker(&harness, &mut a, "room").await;
    let (status, body) = harness.call("/disconnect", &json!({})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"conn_id": ["Field may not be null."]})
        )
    );
    // b's last connection goes: parted, state null, user list without b.
    let b2_conn = harness.feed.snapshot()["channels"]["room"]["users"].clone();
    assert_eq!(b2_conn, json!(["a", "b"]));
    b2.close(None).await.unwrap();
    let parted = next_event(&mut a).await.unwrap();
    assert_eq!(parted["message"], json!({"action": "parted"}));
    assert_eq!(parted["user"], "b");
    assert_eq!(parted["state"], json!(null));
    assert_eq!(parted["users"], json!([{"user": "a", "state": {}}]));
}

#[tokio::test]
async fn case_34_35_no_spurious_parted_and_state_changes() {
    let harness = start().await;
    harness
        .call("/channel_config", &json!({"room": {"notify_presence": true, "notify_state": true}, "other": {"notify_presence": true}}))
        .await;
    let (_, mut watcher) = harness.subscriber("w", &["room", "other"]).await;
    let (_, body) = harness
        .call("/connect", &json!({"username": "u", "channels": ["room"], "user_state": {"pub": 1, "priv": 1}, "state_public_keys": ["pub"]}))
        .await;
    let conn = body["conn_id"].as_str().unwrap().to_owned();
    assert_eq!(
        next_event(&mut watcher).await.unwrap()["message"]["action"],
        "joined"
    );
    let (_, body) = harness
        .call(
            "/unsubscribe",
            &json!({"conn_id": conn, "channels": ["other"]}),
        )
        .await;
    assert_eq!(body["unsubscribed_from"], json!([]));
    harness
        .call(
            "/user_state",
            &json!({"user": "u", "user_state": {"priv": 2}}),
        )
        .await;
    harness
        .call(
            "/user_state",
            &json!({"user": "u", "user_state": {"pub": 2, "priv": 3}}),
        )
        .await;
    let change = next_event(&mut watcher).await.unwrap();
    assert_eq!(change["type"], "user_state_change");
    assert_eq!(change["user"], "u");
    assert_eq!(
        change["message"],
        json!({"state": {"pub": 2}, "changed": [{"key": "pub", "value": 2}]})
    );
    assert_next_is_marker(&harness, &mut watcher, "room").await;
}

#[tokio::test]
async fn case_36_37_disconnect_is_signed_and_closes_with_1000() {
    let harness = start().await;
    harness
        .call(
            "/channel_config",
            &json!({"room": {"notify_presence": true}}),
        )
        .await;
    let (_, mut watcher) = harness.subscriber("w", &["room"]).await;
    let (conn, mut socket) = harness.subscriber("gone", &["room"]).await;
    assert_eq!(
        next_event(&mut watcher).await.unwrap()["message"]["action"],
        "joined"
    );
    let (status, _) = harness
        .raw(
            hyper::Method::GET,
            &format!("/feed/disconnect?conn_id={conn}"),
            "",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = harness
        .raw(
            hyper::Method::GET,
            &format!("/feed/disconnect?conn_id={conn}"),
            "",
            Some(&harness.token("/disconnect")),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!(true)));
    assert_eq!(close_of(&mut socket).await, (1000, "disconnected".into()));
    assert_eq!(
        next_event(&mut watcher).await.unwrap()["message"]["action"],
        "parted"
    );
    let (_, body) = harness.call("/disconnect", &json!({"conn_id": conn})).await;
    assert_eq!(body, json!(false));
}

#[tokio::test]
async fn case_38_39_garbage_collection_of_silent_connections() {
    let harness = start().await;
    harness
        .call(
            "/channel_config",
            &json!({"room": {"notify_presence": true}}),
        )
        .await;
    let minted = harness.mint("never", &["room"]).await;
    let _lonely = harness.mint("nochannels", &[]).await;
    harness.clock.advance_secs(20);
    let (_, mut watcher) = harness.subscriber("w", &["room"]).await;
    assert_eq!(harness.feed.stats().connections, 3);
    harness.clock.advance_secs(11);
    assert_eq!(
        harness.feed.collect_garbage(),
        2,
        "the minted and the channel-less connection"
    );
    let parted = next_event(&mut watcher).await.unwrap();
    assert_eq!(
        (parted["user"].clone(), parted["message"]["action"].clone()),
        (json!("never"), json!("parted"))
    );
    assert_eq!(harness.feed.stats().connections, 1);
    let (_, body) = harness
        .call("/disconnect", &json!({"conn_id": minted}))
        .await;
    assert_eq!(body, json!(false));

    harness.clock.advance_secs(31);
    assert_eq!(harness.feed.collect_garbage(), 1);
    assert_eq!(close_of(&mut watcher).await, (1000, "timed out".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_closed_and_slows_nobody() {
    const EVENTS: usize = 20_000;
    const BATCH: usize = 100;
    let (mut config, clock) = config();
    config.limits = Limits {
        subscriber_queue: 256,
        ..Limits::default()
    };
    let harness = start_with(config, clock).await;
    // The slow client has a tiny receive buffer and never reads until publishing is over.
    let conn = harness.mint("slow", &["firehose"]).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(harness.addr).await.unwrap();
    let url = format!("ws://{}/feed/ws?conn_id={conn}", harness.addr);
    let (mut slow, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();

    let (_, fast) = harness.subscriber("fast", &["firehose"]).await;
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0_usize);
    let reader = tokio::spawn(read_all(fast, EVENTS, count_tx));

    let padding = "x".repeat(1_000);
    let mut slowest_publish = Duration::ZERO;
    let started = Instant::now();
    for batch in 0..EVENTS / BATCH {
        for index in 0..BATCH {
            let event = Event::new("load", json!({"n": batch * BATCH + index, "pad": padding}));
            let before = Instant::now();
            harness.feed.publish("firehose", event).unwrap();
            slowest_publish = slowest_publish.max(before.elapsed());
        }
        // The fast subscriber keeps up batch by batch; the slow one is never waited for.
        let target = (batch + 1) * BATCH;
        tokio::time::timeout(
            Duration::from_secs(10),
            count_rx.wait_for(|count| *count >= target),
        )
        .await
        .expect("the fast subscriber fell behind")
        .unwrap();
    }
    let elapsed = started.elapsed();
    let received = reader.await.unwrap();
    assert_eq!(
        received,
        (0..EVENTS).collect::<Vec<_>>(),
        "fast subscriber got everything in order"
    );
    assert!(
        slowest_publish < Duration::from_millis(500),
        "a publish call blocked for {slowest_publish:?}"
    );
    assert!(elapsed < Duration::from_secs(60));
    assert_eq!(harness.feed.stats().slow_consumers, 1);
    assert_eq!(close_of(&mut slow).await, (1008, "slow consumer".into()));
}

async fn read_all(
    mut socket: Socket,
    events: usize,
    count: tokio::sync::watch::Sender<usize>,
) -> Vec<usize> {
    let mut seen = Vec::with_capacity(events);
    while seen.len() < events {
        let event = next_event(&mut socket)
            .await
            .expect("fast subscriber closed");
        assert_eq!(event["type"], "load", "{event}");
        seen.push(usize::try_from(event["message"]["n"].as_u64().unwrap()).unwrap());
        count.send_replace(seen.len());
    }
    seen
}
