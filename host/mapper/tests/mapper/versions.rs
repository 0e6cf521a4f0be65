//! Both contract versions load: a 0.1 component behaves as it always did, and `mapper check`
//! names the version it found.

use interstate_mapper::{MapperSource, check};
use interstate_protocol::policy::{
    Allocation, AuthOutcome, Capabilities, ClientContext, FieldAnswer, Identity, Mapper,
    MapperError, Operation, OperationOutcome, PasswordChange, PasswordChangeOutcome, Secret,
    StepAnswer,
};

use crate::support::{guest, login, runtime, settings};

#[tokio::test]
async fn a_0_1_component_logs_in_lists_and_allocates_as_before() {
    let rt = runtime();
    let mapper = rt
        .load(
            MapperSource::File(guest("interstate-hostile-mapper")),
            settings(serde_json::json!({"mode": "ok", "agent": "ws1.example.com"})),
        )
        .await
        .unwrap();
    assert_eq!(mapper.info().world_version, "0.1.0");
    assert_eq!(mapper.capabilities(), Capabilities::default());

    let AuthOutcome::Accepted(identity) = mapper.authenticate(&login("good", "pw")).await.unwrap()
    else {
        panic!("good/pw is accepted");
    };
    assert_eq!(identity.username, "good");
    let AuthOutcome::Rejected(rejection) =
        mapper.authenticate(&login("good", "bad")).await.unwrap()
    else {
        panic!("good/bad is rejected");
    };
    assert_eq!(rejection.reason, "not good/pw");

    let client = ClientContext::default();
    let desktops = mapper.list_desktops(&identity, &client).await.unwrap();
    assert_eq!(desktops.len(), 1);
    assert_eq!(desktops[0].id, "hostile-ok");
    assert_eq!(desktops[0].name, "Hostile OK");
    assert!(desktops[0].operations.is_empty());

    let Allocation::Launch(launch) = mapper
        .allocate(&identity, "hostile-ok", &client)
        .await
        .unwrap()
    else {
        panic!("the desktop is launched");
    };
    assert_eq!(launch.hostname, "ws1.example.com");
    assert!(matches!(
        mapper.allocate(&identity, "other", &client).await.unwrap(),
        Allocation::Refused(..)
    ));

    // A dialog answer reaches the 0.1 export as its field values (this fixture has none).
    let answer = StepAnswer::Dialog {
        fields: vec![FieldAnswer {
            id: "code".to_owned(),
            value: Secret::new("123456"),
        }],
        button_id: "ok".to_owned(),
    };
    let state = Secret::new("s");
    assert_eq!(
        mapper
            .continue_authentication(&state, &answer, &client)
            .await
            .unwrap_err(),
        MapperError::Guest("no challenges here".to_owned())
    );
    // A 0.1 mapper cannot have asked for a disclaimer.
    let err = mapper
        .continue_authentication(&state, &StepAnswer::DisclaimerAccepted, &client)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MapperError::InvalidOutput(m) if m.contains("0.1")),
        "{err}"
    );
    // Neither operations nor password changes exist in 0.1.
    let user = Identity {
        username: "good".to_owned(),
        ..Identity::default()
    };
    assert_eq!(
        mapper
            .operate(&user, "hostile-ok", Operation::Restart, &client)
            .await
            .unwrap(),
        OperationOutcome::Unsupported
    );
    let change = PasswordChange {
        username: "good".to_owned(),
        domain: String::new(),
        old_password: Secret::new("pw"),
        new_password: Secret::new("new-pw"),
        client,
    };
    assert_eq!(
        mapper.change_password(&change).await.unwrap(),
        PasswordChangeOutcome::Unsupported
    );
}

#[tokio::test]
async fn check_reports_the_contract_version() {
    let rt = runtime();
    let old = check(
        &rt,
        MapperSource::File(guest("interstate-hostile-mapper")),
        settings(serde_json::json!({"mode": "ok"})),
        Some(interstate_mapper::CheckLogin {
            username: "good".to_owned(),
            password: Secret::new("pw"),
            domain: String::new(),
        }),
    )
    .await
    .unwrap();
    let text = old.to_string();
    assert!(
        text.contains("contract    interstate:mapper/policy@0.1.0"),
        "{text}"
    );
    assert!(text.contains("accepted as \"good\""), "{text}");

    let new = check(
        &rt,
        MapperSource::File(guest("interstate-capabilities-mapper")),
        settings(serde_json::json!({})),
        None,
    )
    .await
    .unwrap();
    let text = new.to_string();
    assert!(
        text.contains("contract    interstate:mapper/policy@0.2.0"),
        "{text}"
    );
    assert!(text.contains("interstate:mapper/store@0.2.0"), "{text}");
    assert_eq!(new.info.domains, vec!["CAPS"]);
}
