//! Connect, subscribe, state, messages, info and channel config over REST: cases 9–23, 40–42.

use hyper::StatusCode;
use serde_json::json;

use crate::support::start;

#[tokio::test]
async fn case_9_connect_validation_errors() {
    let harness = start().await;
    let (status, body) = harness.call("/connect", &json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({"username": ["Missing data for required field."]})
    );
    let (_, body) = harness
        .call("/connect", &json!({"username": "a", "bogus": 1}))
        .await;
    assert_eq!(body, json!({"bogus": ["Unknown field."]}));
    let (_, body) = harness
        .call("/connect", &json!({"username": "a", "conn_id": "nope"}))
        .await;
    assert_eq!(body, json!({"conn_id": ["Not a valid UUID."]}));
    let (status, body) = harness
        .raw(
            hyper::Method::POST,
            "/feed/connect",
            "{not json",
            Some(&harness.token("/connect")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"_schema": ["Invalid JSON."]}));
}

#[tokio::test]
async fn case_10_minimal_connect_shape() {
    let harness = start().await;
    let (status, body) = harness
        .call(
            "/connect",
            &json!({"username": "alice", "channels": ["b", "a"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["conn_id"].as_str().unwrap().len() == 36);
    assert_eq!(body["username"], "alice");
    assert_eq!(body["state"], json!({}));
    assert_eq!(body["public_state"], json!({}));
    assert_eq!(body["channels"], json!(["a", "b"]));
    assert!(body["last_seq"].is_u64());
    let info = &body["channels_info"]["channels"]["a"];
    assert_eq!(info["name"], "a");
    assert!(info["uuid"].is_string());
    assert_eq!(info["long_name"], json!(null));
    assert_eq!(
        info["settings"],
        json!({"notify_presence": false, "broadcast_presence_with_user_lists": false,
               "notify_state": false, "store_history": false, "history_size": 10,
               "store_frames": true})
    );
    assert_eq!(info["history"], json!([]));
    assert!(info["last_active"].is_string());
    assert_eq!(info["total_connections"], 1);
    assert_eq!(info["total_users"], 1);
    assert_eq!(info["users"], json!(["alice"]));
    assert_eq!(
        body["channels_info"]["users"],
        json!([{"user": "alice", "state": {}}])
    );
}

#[tokio::test]
async fn case_11_channel_configs_apply_only_on_creation() {
    let harness = start().await;
    let configs = json!({"c": {"notify_presence": true, "history_size": 3}});
    let (_, body) = harness
        .call(
            "/connect",
            &json!({"username": "a", "channels": ["c"], "channel_configs": configs}),
        )
        .await;
    assert_eq!(
        body["channels_info"]["channels"]["c"]["settings"]["history_size"],
        3
    );
    let configs = json!({"c": {"notify_presence": false, "history_size": 7}});
    let (_, body) = harness
        .call(
            "/connect",
            &json!({"username": "b", "channels": ["c"], "channel_configs": configs}),
        )
        .await;
    let settings = &body["channels_info"]["channels"]["c"]["settings"];
    assert_eq!(
        (
            settings["history_size"].clone(),
            settings["notify_presence"].clone()
        ),
        (json!(3), json!(true))
    );
}

#[tokio::test]
async fn case_12_13_user_state_merging_and_validation() {
    let harness = start().await;
    let first = json!({"username": "u", "fresh_user_state": {"avatar": "x", "n": 1},
                       "user_state": {"status": "online"}, "state_public_keys": ["status"]});
    let (_, body) = harness.call("/connect", &first).await;
    assert_eq!(
        body["state"],
        json!({"avatar": "x", "n": 1, "status": "online"})
    );
    assert_eq!(body["public_state"], json!({"status": "online"}));
    let second = json!({"username": "u", "fresh_user_state": {"avatar": "y"},
                        "user_state": {"n": 2}, "state_public_keys": ["avatar"]});
    let (_, body) = harness.call("/connect", &second).await;
    assert_eq!(
        body["state"],
        json!({"avatar": "x", "n": 2, "status": "online"})
    );
    assert_eq!(body["public_state"], json!({"avatar": "x"}));
    let (status, body) = harness
        .call(
            "/connect",
            &json!({"username": "u", "user_state": {"k": {"a": 1}, "l": [1]}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = json!({"value": ["Value is not type of string, integer, boolean or float."]});
    assert_eq!(body, json!({"user_state": {"k": message, "l": message}}));
}

#[tokio::test]
async fn case_14_15_subscribe_and_unsubscribe() {
    let harness = start().await;
    let unknown = "11111111-2222-4333-8444-555555555555";
    let (status, body) = harness
        .call(
            "/subscribe",
            &json!({"conn_id": unknown, "channels": ["x"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body, json!({"conn_id": ["Unknown connection"]}));
    let conn = harness.mint("u", &["a"]).await;
    let (_, body) = harness
        .call("/subscribe", &json!({"conn_id": conn, "channels": []}))
        .await;
    assert_eq!(
        body,
        json!({"channels": ["Shorter than minimum length 1."]})
    );
    let (status, body) = harness
        .call(
            "/subscribe",
            &json!({"conn_id": conn, "channels": ["c", "a", "b"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["channels"], json!(["a", "b", "c"]));
    assert_eq!(body["subscribed_to"], json!(["b", "c"]));
    assert!(body["channels_info"]["channels"]["c"].is_object());
    let (_, body) = harness
        .call(
            "/unsubscribe",
            &json!({"conn_id": conn, "channels": ["a", "zzz"]}),
        )
        .await;
    assert_eq!(body["channels"], json!(["b", "c"]));
    assert_eq!(body["unsubscribed_from"], json!(["a"]));
}

#[tokio::test]
async fn case_16_user_state_endpoint() {
    let harness = start().await;
    let (_, body) = harness.call("/user_state", &json!({"user": "ghost"})).await;
    assert_eq!(body, json!({"user": ["Unknown user"]}));
    harness
        .call(
            "/connect",
            &json!({"username": "u", "user_state": {"a": 1, "b": 2}, "state_public_keys": ["a"]}),
        )
        .await;
    let (status, body) = harness
        .call(
            "/user_state",
            &json!({"user": "u", "user_state": {"a": 1, "b": 3, "c": null}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user_state"], json!({"a": 1, "b": 3, "c": null}));
    assert_eq!(
        body["changed_state"],
        json!([{"key": "b", "value": 3}, {"key": "c", "value": null}])
    );
    assert_eq!(body["public_keys"], json!(["a"]));
    let (_, body) = harness
        .call(
            "/user_state",
            &json!({"user": "u", "state_public_keys": []}),
        )
        .await;
    assert_eq!(body["public_keys"], json!([]));
}

#[tokio::test]
async fn case_17_18_message_validation_and_defaults() {
    let harness = start().await;
    let (status, body) = harness.call("/message", &json!({"user": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body, json!({"_schema": ["Invalid input type."]}));
    let (_, body) = harness.call("/message", &json!([{}])).await;
    assert_eq!(
        body,
        json!({"0": {"user": ["Missing data for required field."]}})
    );
    let (_, body) = harness
        .call(
            "/message",
            &json!([{"user": "x", "channel": "c", "message": "text"}]),
        )
        .await;
    assert_eq!(
        body,
        json!({"0": {"message": ["Not a valid mapping type."]}})
    );
    let (status, body) = harness
        .call(
            "/message",
            &json!([{"user": "sys", "channel": "x", "message": {"t": 1}, "extra_key": 5,
                     "timestamp": "2020-01-01T10:00:00"},
                    {"user": "sys", "message": {"dropped": true}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let accepted = body.as_array().unwrap();
    assert_eq!(
        accepted.len(),
        1,
        "a message with no channel and no pm_users is dropped"
    );
    let message = &accepted[0];
    assert_eq!(message["pm_users"], json!([]));
    assert_eq!(message["exclude_users"], json!([]));
    assert_eq!(message["no_history"], false);
    assert_eq!(message["edited"], json!(null));
    assert_eq!(message["extra_key"], 5);
    assert_eq!(message["timestamp"], "2020-01-01T10:00:00");
    assert_eq!(message["uuid"].as_str().unwrap().len(), 36);
}

#[tokio::test]
async fn case_20_21_22_history_ring_and_privacy() {
    let harness = start().await;
    let configs = json!({"h": {"store_history": true, "history_size": 3}, "z": {"store_history": true, "history_size": 0}});
    harness
        .call(
            "/connect",
            &json!({"username": "a", "channels": ["h", "z"], "channel_configs": configs}),
        )
        .await;
    for index in 0..5 {
        harness.say("h", &format!("m{index}")).await;
        harness.say("z", "nothing kept").await;
    }
    harness
        .call("/message", &json!([{"user": "s", "channel": "h", "message": {"text": "quiet"}, "no_history": true},
                                  {"user": "s", "channel": "h", "message": {"text": "secret"}, "pm_users": ["a"]}]))
        .await;
    let (_, info) = harness
        .call("/info", &json!({"info": {"channels": ["h", "z"]}}))
        .await;
    let history = info["channels"]["h"]["history"].as_array().unwrap();
    let texts: Vec<_> = history
        .iter()
        .map(|entry| entry["message"]["text"].clone())
        .collect();
    assert_eq!(texts, [json!("m2"), json!("m3"), json!("m4")]);
    for entry in history {
        assert!(entry.get("pm_users").is_none() && entry.get("exclude_users").is_none());
        assert!(entry.get("no_history").is_none());
        assert_eq!(entry["node"], "test-node");
        assert!(entry["seq"].is_u64());
    }
    assert_eq!(info["channels"]["z"]["history"], json!([]));
}

#[tokio::test]
async fn case_40_conn_ids_are_single_use() {
    let harness = start().await;
    let conn = harness.mint("a", &[]).await;
    let (status, body) = harness
        .call("/connect", &json!({"username": "b", "conn_id": conn}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body, json!({"conn_id": ["Connection id already in use."]}));
}

#[tokio::test]
async fn case_41_info_resolutions() {
    let harness = start().await;
    harness
        .call("/connect", &json!({"username": "u", "channels": ["a", "b", "broadcast"],
                                  "user_state": {"pub": 1, "priv": 2}, "state_public_keys": ["pub"]}))
        .await;
    let (status, all) = harness
        .raw(
            hyper::Method::GET,
            "/feed/info",
            "",
            Some(&harness.token("/info")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut names: Vec<_> = all["channels"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "broadcast"]);
    assert_eq!(
        all["users"],
        json!([{"user": "u", "state": {"pub": 1, "priv": 2}}])
    );
    let (_, some) = harness
        .call(
            "/info",
            &json!({"info": {"channels": ["a", "broadcast"], "exclude_channels": ["broadcast"],
                                         "include_history": false, "return_public_state": true}}),
        )
        .await;
    assert_eq!(some["channels"].as_object().unwrap().len(), 1);
    assert_eq!(some["users"], json!([{"user": "u", "state": {"pub": 1}}]));
    let (status, body) = harness.call("/info", &json!({"foo": 1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["foo"], json!(["Unknown field."]));
}

#[tokio::test]
async fn case_42_channel_config_creates_and_patches_only_given_keys() {
    let harness = start().await;
    let (status, body) = harness
        .call(
            "/channel_config",
            &json!({"c": {"notify_presence": true, "store_history": true, "history_size": 5}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let settings = &body["channels"]["c"]["settings"];
    assert_eq!(settings["notify_presence"], true);
    assert_eq!(settings["history_size"], 5);
    assert_eq!(settings["notify_state"], false);
    let (_, body) = harness
        .call("/channel_config", &json!({"c": {"notify_state": true}}))
        .await;
    let settings = &body["channels"]["c"]["settings"];
    assert_eq!(
        (
            settings["notify_presence"].clone(),
            settings["store_history"].clone(),
            settings["notify_state"].clone()
        ),
        (json!(true), json!(true), json!(true))
    );
    let (status, body) = harness
        .call("/channel_config", &json!({"c": {"history_size": "x"}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({"c": {"history_size": ["Not a valid integer."]}})
    );
}

/// A compat-signed `method` call to `/feed/message`.
async fn amend(
    harness: &crate::support::Harness,
    method: hyper::Method,
    body: &serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    harness
        .raw(
            method,
            "/feed/message",
            &body.to_string(),
            Some(&harness.token("/message")),
        )
        .await
}

#[tokio::test]
async fn case_23_edit_and_delete_messages() {
    use crate::support::next_event;
    use hyper::Method;
    let harness = start().await;
    let configs = json!({"pub": {"store_history": true, "history_size": 10}});
    harness
        .call(
            "/connect",
            &json!({"username": "keeper", "channels": ["pub"], "channel_configs": configs}),
        )
        .await;
    let (_, mut socket) = harness.subscriber("watcher", &["pub"]).await;
    let (status, posted) = harness
        .call(
            "/message",
            &json!([{"user": "sys", "channel": "pub", "message": {"text": "first"}},
                    {"user": "sys", "channel": "pub", "message": {"text": "second"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    let first = posted[0]["uuid"].as_str().unwrap().to_owned();
    let second = posted[1]["uuid"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        next_event(&mut socket).await.unwrap();
    }

    // Edit: the answer is the loaded edit, a `message:edit` frame goes out, and the stored
    // entry changes only in the editable keys.
    let (status, answer) = amend(
        &harness,
        Method::PATCH,
        &json!([{"uuid": first, "channel": "pub", "message": {"text": "edited"},
                 "edited": "2026-11-22T01:56:12.022317"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!([{"uuid": first, "channel": "pub", "message": {"text": "edited"},
                "edited": "2026-11-22T01:56:12.022317", "pm_users": [], "exclude_users": [],
                "no_history": false}])
    );
    let frame = next_event(&mut socket).await.unwrap();
    assert_eq!(frame["type"], "message:edit", "{frame}");
    assert_eq!(frame["uuid"], first.as_str());
    assert_eq!(frame["channel"], "pub");
    assert_eq!(frame["message"], json!({"text": "edited"}));
    assert_eq!(frame["edited"], "2026-11-22T01:56:12.022317");
    assert!(frame.get("user").is_none(), "only the keys sent: {frame}");
    let (_, info) = harness
        .call("/info", &json!({"info": {"channels": ["pub"]}}))
        .await;
    let history = info["channels"]["pub"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "an edit is not a new history entry");
    let stored = history
        .iter()
        .find(|e| e["uuid"] == first.as_str())
        .unwrap();
    assert_eq!(stored["message"], json!({"text": "edited"}));
    assert_eq!(stored["edited"], "2026-11-22T01:56:12.022317");
    assert_eq!(stored["user"], "sys", "a key the edit did not send is kept");
    assert_eq!(stored["type"], "message");
    // Only the editable keys are written into the stored entry.
    let (status, _) = amend(
        &harness,
        Method::PATCH,
        &json!([{"uuid": first, "channel": "pub", "user": "editor", "extra": 1}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let frame = next_event(&mut socket).await.unwrap();
    assert_eq!(
        frame["extra"], 1,
        "extra keys travel with the edit: {frame}"
    );
    assert!(frame["edited"].is_string(), "edited defaults to now");
    let (_, info) = harness
        .call("/info", &json!({"info": {"channels": ["pub"]}}))
        .await;
    let stored = info["channels"]["pub"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uuid"] == first.as_str())
        .unwrap()
        .clone();
    assert_eq!(stored["user"], "editor");
    assert!(stored.get("extra").is_none(), "{stored}");

    // Delete: a `message:delete` frame, and the entry is gone from the history and catch-up.
    let (status, answer) = amend(
        &harness,
        Method::DELETE,
        &json!([{"uuid": second, "channel": "pub"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!([{"uuid": second, "channel": "pub", "pm_users": [], "exclude_users": [],
                "no_history": false}])
    );
    let frame = next_event(&mut socket).await.unwrap();
    assert_eq!(frame["type"], "message:delete");
    assert_eq!(frame["uuid"], second.as_str());
    assert_eq!(frame["channel"], "pub");
    let (_, info) = harness
        .call("/info", &json!({"info": {"channels": ["pub"]}}))
        .await;
    let uuids: Vec<_> = info["channels"]["pub"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uuid"].clone())
        .collect();
    assert_eq!(uuids, [json!(first)]);
    let late = harness.mint("late", &["pub"]).await;
    let mut late = harness.socket(&format!("conn_id={late}&since=0")).await;
    let mut replayed = Vec::new();
    while let Some(event) = next_event(&mut late).await {
        let done = event["type"] == "message:delete";
        replayed.push(event);
        if done {
            break;
        }
    }
    assert!(
        !replayed
            .iter()
            .any(|e| e["type"] == "message" && e["uuid"] == second.as_str()),
        "the deleted message is not replayed: {replayed:?}"
    );
    let edited: Vec<_> = replayed
        .iter()
        .filter(|e| e["type"] == "message" && e["uuid"] == first.as_str())
        .collect();
    assert_eq!(edited.len(), 1);
    assert_eq!(
        edited[0]["user"], "editor",
        "catch-up replays the edited copy"
    );

    // Errors: channelstream's 422 shapes, and 404 for a message this feed does not hold (a
    // deleted one, or a broker event, which is never editable).
    let (status, body) = amend(&harness, Method::PATCH, &json!({"uuid": first})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body, json!({"_schema": ["Invalid input type."]}));
    let (status, body) = amend(&harness, Method::PATCH, &json!([{"channel": "pub"}])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({"0": {"uuid": ["Missing data for required field."]}})
    );
    let (status, body) = amend(
        &harness,
        Method::DELETE,
        &json!([{"uuid": first, "message": {}}]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body, json!({"0": {"message": ["Unknown field."]}}));
    let (status, body) = amend(&harness, Method::DELETE, &json!([{"uuid": "nope"}])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body, json!({"0": {"uuid": ["Not a valid UUID."]}}));
    let (status, body) = amend(
        &harness,
        Method::DELETE,
        &json!([{"uuid": first, "channel": "pub"}, {"uuid": second, "channel": "pub"}]),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"1": {"uuid": ["Unknown message."]}}));
    let (_, info) = harness
        .call("/info", &json!({"info": {"channels": ["pub"]}}))
        .await;
    assert_eq!(
        info["channels"]["pub"]["history"].as_array().unwrap().len(),
        1,
        "a refused call changes nothing"
    );
    harness
        .feed
        .publish(
            "pub",
            interstate_feed::Event::new("session.created", json!({"session_id": "s"})),
        )
        .unwrap();
    let event = next_event(&mut socket).await.unwrap();
    let (status, _) = amend(
        &harness,
        Method::PATCH,
        &json!([{"uuid": event["uuid"], "channel": "pub", "message": {}}]),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "broker events are not editable"
    );
    let (status, body) = amend(&harness, Method::DELETE, &json!([])).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn case_43_admin_json_counters() {
    let harness = start().await;
    let (_, _socket) = harness.subscriber("alice", &["pub"]).await;
    harness.mint("alice", &["pub"]).await;
    harness.say("pub", "hello").await;
    let snapshot = harness.feed.admin_json();
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
    assert_eq!(snapshot["remembered_user_count"], 1);
    assert_eq!(snapshot["unique_user_count"], 1);
    assert_eq!(snapshot["total_connections"], 2);
    assert_eq!(snapshot["total_channels"], 1);
    assert_eq!(snapshot["total_unique_messages"], 1);
    assert_eq!(
        snapshot["total_messages"], 1,
        "one frame to the bound socket"
    );
    assert_eq!(
        snapshot["uptime"], "0:00:00",
        "a manual clock that has not moved"
    );
    assert_eq!(snapshot["users"][0]["user"], "alice");
    assert_eq!(
        snapshot["users"][0]["connections"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(snapshot["users"][0]["uuid"].is_string());
    assert_eq!(snapshot["channels"]["pub"]["total_connections"], 2);
}
