//! The embedded SimpleMapper, ILS's settings and hashes.

use interstate_mapper::{CheckLogin, MapperSource, check};
use interstate_protocol::policy::{
    Allocation, AuthOutcome, ClientContext, DesktopState, Identity, Mapper, RefusalKind,
    RejectionKind, Secret, SessionKind, StepAnswer,
};
use serde_json::json;

use crate::support::{ILS_HASH, PASSWORD, login, runtime, settings};

fn alice_settings() -> serde_json::Value {
    json!({
        "username": "alice",
        "password_hash": ILS_HASH,
        "resources": [
            {"name": "Workstation", "hostname": "ws-alice.example.com"},
            {"name": "Build box", "hostname": "10.0.4.20"}
        ],
        "domains": ["EXAMPLE", "LAB"]
    })
}

fn alice() -> Identity {
    Identity {
        username: "alice".to_owned(),
        ..Identity::default()
    }
}

#[tokio::test]
async fn logs_in_with_an_ils_hash_and_refuses_the_rest() {
    let rt = runtime();
    let mapper = rt
        .load(MapperSource::Simple, settings(alice_settings()))
        .await
        .unwrap();
    assert_eq!(mapper.domains(), vec!["EXAMPLE", "LAB"]);
    assert_eq!(mapper.info().world_version, "0.2.0");

    let mut ok = login("alice", PASSWORD);
    ok.domain = "LAB".to_owned();
    match mapper.authenticate(&ok).await.unwrap() {
        AuthOutcome::Accepted(identity) => {
            assert_eq!(identity.username, "alice");
            assert_eq!(identity.domain, "LAB");
        }
        other => panic!("expected accepted, got {other:?}"),
    }
    for (user, password, why) in [
        ("alice", "wrong", "wrong password"),
        ("bob", PASSWORD, "unknown user"),
        ("Alice", PASSWORD, "unknown user"),
        ("alice", "", "wrong password"),
    ] {
        match mapper.authenticate(&login(user, password)).await.unwrap() {
            AuthOutcome::Rejected(rejection) => {
                assert_eq!(rejection.kind, RejectionKind::BadCredentials);
                assert_eq!(rejection.reason, why);
            }
            other => panic!("{user}/{password}: expected rejected, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn lists_stable_ids_and_allocates_by_id() {
    let rt = runtime();
    let mapper = rt
        .load(MapperSource::Simple, settings(alice_settings()))
        .await
        .unwrap();
    let client = ClientContext::default();
    let desktops = mapper.list_desktops(&alice(), &client).await.unwrap();
    assert_eq!(desktops.len(), 2);
    for desktop in &desktops {
        assert_eq!(desktop.id.len(), 16, "{desktop:?}");
        assert!(desktop.id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(desktop.session_kind, SessionKind::Vdi);
        assert_eq!(desktop.state, DesktopState::Unknown);
    }
    assert_eq!(desktops[0].name, "Workstation");
    assert_ne!(desktops[0].id, desktops[1].id);

    // Reordering the resources keeps every id.
    let mut reordered = alice_settings();
    reordered["resources"].as_array_mut().unwrap().reverse();
    let other = rt
        .load(MapperSource::Simple, settings(reordered))
        .await
        .unwrap();
    let again = other.list_desktops(&alice(), &client).await.unwrap();
    assert_eq!(again[1].id, desktops[0].id);
    assert_eq!(again[0].id, desktops[1].id);

    match mapper
        .allocate(&alice(), &desktops[1].id, &client)
        .await
        .unwrap()
    {
        Allocation::Launch(launch) => {
            assert_eq!(launch.hostname, "10.0.4.20");
            assert_eq!(launch.agent_port, None);
            assert_eq!(launch.username, None);
        }
        other => panic!("expected launch, got {other:?}"),
    }
    match mapper.allocate(&alice(), "0", &client).await.unwrap() {
        Allocation::Refused(kind, _) => assert_eq!(kind, RefusalKind::UnknownDesktop),
        other => panic!("expected refused, got {other:?}"),
    }
}

#[tokio::test]
async fn no_resources_is_no_resources_as_in_ils() {
    let rt = runtime();
    let mapper = rt
        .load(
            MapperSource::Simple,
            settings(json!({"username": "alice", "password_hash": ILS_HASH})),
        )
        .await
        .unwrap();
    match mapper
        .authenticate(&login("alice", PASSWORD))
        .await
        .unwrap()
    {
        AuthOutcome::Rejected(rejection) => assert_eq!(rejection.kind, RejectionKind::NoResources),
        other => panic!("expected no-resources, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_settings_fail_the_load_with_the_mappers_message() {
    let rt = runtime();
    let cases = [
        (
            json!({"username": "a", "pasword_hash": "x"}),
            "unknown key \"pasword_hash\"",
        ),
        (
            json!({"resources": [{"name": "n"}]}),
            "mapper.settings.resources[0].hostname is missing",
        ),
        (
            json!({"resources": "ws1"}),
            "mapper.settings.resources must be a list",
        ),
        (
            json!({"domains": [1]}),
            "mapper.settings.domains[0] must be a string, not a number",
        ),
        (json!([1, 2]), "mapper.settings must be an object"),
    ];
    for (bad, expected) in cases {
        let err = rt
            .load(MapperSource::Simple, settings(bad.clone()))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, interstate_mapper::LoadError::Configure { .. }),
            "{bad}: {message}"
        );
        assert!(message.contains(expected), "{bad}: {message}");
    }
}

#[tokio::test]
async fn loads_the_built_component_from_a_file() {
    let rt = runtime();
    let path = interstate_mapper::testing::simple_mapper_path();
    let from_file = rt
        .load(MapperSource::File(path.clone()), settings(alice_settings()))
        .await
        .unwrap();
    let embedded = rt
        .load(MapperSource::Simple, settings(alice_settings()))
        .await
        .unwrap();
    assert_eq!(from_file.info().sha256, embedded.info().sha256);
    assert_eq!(from_file.info().name, "simple");
    assert!(
        from_file
            .info()
            .exports
            .contains(&"interstate:mapper/policy@0.2.0".to_owned())
    );
    assert!(
        from_file
            .info()
            .imports
            .iter()
            .any(|i| i.starts_with("interstate:mapper/host@0.2.0"))
    );
    let outcome = from_file
        .authenticate(&login("alice", PASSWORD))
        .await
        .unwrap();
    assert!(matches!(outcome, AuthOutcome::Accepted(_)));
}

#[tokio::test]
async fn check_reports_version_configure_login_and_desktops() {
    let rt = runtime();
    let report = check(
        &rt,
        MapperSource::Simple,
        settings(alice_settings()),
        Some(CheckLogin {
            username: "alice".to_owned(),
            password: Secret::new(PASSWORD),
            domain: String::new(),
        }),
    )
    .await
    .unwrap();
    let text = report.to_string();
    for expected in [
        "interstate:mapper/policy@0.2.0",
        "configure   ok",
        "EXAMPLE, LAB",
        "accepted as \"alice\"",
        "desktops    2",
        "ws-alice.example.com",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains(PASSWORD));
}

#[tokio::test]
async fn never_challenges_so_continuing_is_rejected() {
    let rt = runtime();
    let mapper = rt
        .load(MapperSource::Simple, settings(alice_settings()))
        .await
        .unwrap();
    let outcome = mapper
        .continue_authentication(
            &Secret::new("forged"),
            &StepAnswer::Dialog {
                fields: Vec::new(),
                button_id: "ok".into(),
            },
            &ClientContext::default(),
        )
        .await
        .unwrap();
    match outcome {
        AuthOutcome::Rejected(rejection) => {
            assert_eq!(rejection.kind, RejectionKind::BadCredentials);
        }
        other => panic!("expected rejected, got {other:?}"),
    }
}
