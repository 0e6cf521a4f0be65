//! A 0.2 component (`guest-mappers/capabilities`, driven by the user name): every 0.2
//! conversion and bound, and the host capabilities (`hash-password`, `verify-totp`, `store`,
//! `directory`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use interstate_mapper::testing::{key_value_contract, totp_code};
use interstate_mapper::{MapperRuntime, MapperSource, MemoryKv, StoreSettings, WasmMapper};
use interstate_protocol::capability::{
    Directory, DirectoryFailure, DirectoryFailureKind, DirectoryGroup, DirectoryUser, KeyValue,
    KvError, KvLimits,
};
use interstate_protocol::policy::{
    Attribute, AuthOutcome, BoxFuture, Capabilities, ClientContext, FieldAnswer, Identity, Mapper,
    MapperError, Operation, OperationOutcome, PasswordChange, PasswordChangeOutcome, PasswordLogin,
    PasswordRejectionKind, RejectionKind, Secret, StepAnswer,
};

use crate::support::{guest, login, runtime, settings};

async fn caps_in(rt: &MapperRuntime, store: StoreSettings) -> WasmMapper {
    let mut settings = settings(serde_json::json!({}));
    settings.store = store;
    rt.load(
        MapperSource::File(guest("interstate-capabilities-mapper")),
        settings,
    )
    .await
    .unwrap()
}

async fn caps(rt: &MapperRuntime) -> WasmMapper {
    caps_in(rt, StoreSettings::default()).await
}

fn attribute(outcome: &AuthOutcome, key: &str) -> String {
    let AuthOutcome::Accepted(identity) = outcome else {
        panic!("not accepted: {outcome:?}");
    };
    identity
        .attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.value.clone())
        .unwrap_or_else(|| panic!("no attribute {key} in {identity:?}"))
}

fn rejection_reason(outcome: &AuthOutcome) -> &str {
    match outcome {
        AuthOutcome::Rejected(rejection) => &rejection.reason,
        other => panic!("not rejected: {other:?}"),
    }
}

fn invalid(result: Result<impl std::fmt::Debug, MapperError>, what: &str) {
    match result {
        Err(MapperError::InvalidOutput(message)) => {
            assert!(message.contains(what), "{what}: {message}");
        }
        other => panic!("expected an invalid output about {what}, got {other:?}"),
    }
}

fn with(username: &str, password: &str, domain: &str) -> PasswordLogin {
    PasswordLogin {
        domain: domain.to_owned(),
        ..login(username, password)
    }
}

#[tokio::test]
async fn a_0_2_component_can_operate_and_change_passwords() {
    let rt = runtime();
    let mapper = caps(&rt).await;
    assert_eq!(mapper.info().world_version, "0.2.0");
    assert_eq!(
        mapper.capabilities(),
        Capabilities {
            operate: true,
            change_password: true,
        }
    );
    let desktops = mapper
        .list_desktops(&Identity::default(), &ClientContext::default())
        .await
        .unwrap();
    assert_eq!(
        desktops[0].operations,
        vec![Operation::Restart, Operation::PowerDown, Operation::PowerUp]
    );
}

#[tokio::test]
async fn disclaimers_cross_within_their_bounds() {
    let rt = runtime();
    let mapper = caps(&rt).await;
    let AuthOutcome::Disclaimer(disclaimer) = mapper
        .authenticate(&login("disclaimer:4096:16384", ""))
        .await
        .unwrap()
    else {
        panic!("not a disclaimer");
    };
    assert_eq!(disclaimer.text.len(), 4096);
    assert_eq!(disclaimer.state.expose().len(), 16384);
    assert_eq!(format!("{:?}", disclaimer.state), "Secret(***)");
    invalid(
        mapper.authenticate(&login("disclaimer:4097:1", "")).await,
        "disclaimer text",
    );
    invalid(
        mapper.authenticate(&login("disclaimer:1:16385", "")).await,
        "disclaimer state",
    );
}

#[tokio::test]
async fn dialog_buttons_cross_within_their_bounds() {
    let rt = runtime();
    let mapper = caps(&rt).await;
    let AuthOutcome::Challenge(dialog) = mapper.authenticate(&login("dialog", "")).await.unwrap()
    else {
        panic!("not a dialog");
    };
    let buttons: Vec<_> = dialog
        .buttons
        .iter()
        .map(|b| (b.id.as_str(), b.label.as_str(), b.is_default))
        .collect();
    assert_eq!(
        buttons,
        vec![("ok", "Verify", true), ("cancel", "Cancel", false)]
    );
    assert_eq!(dialog.fields[0].id, "code");

    let AuthOutcome::Challenge(full) = mapper
        .authenticate(&login("buttons:8:128:256", ""))
        .await
        .unwrap()
    else {
        panic!("not a dialog");
    };
    assert_eq!(full.buttons.len(), 8);
    assert!(full.buttons.iter().all(|b| b.id.len() == 128));
    invalid(
        mapper.authenticate(&login("buttons:9:1:1", "")).await,
        "dialog buttons",
    );
    invalid(
        mapper.authenticate(&login("buttons:1:129:1", "")).await,
        "button id",
    );
    invalid(
        mapper.authenticate(&login("buttons:1:1:257", "")).await,
        "button label",
    );
}

#[tokio::test]
async fn step_answers_reach_the_mapper() {
    let rt = runtime();
    let mapper = caps(&rt).await;
    let client = ClientContext::default();
    let outcome = mapper
        .continue_authentication(
            &Secret::new("after-disclaimer"),
            &StepAnswer::DisclaimerAccepted,
            &client,
        )
        .await
        .unwrap();
    assert_eq!(attribute(&outcome, "answer"), "disclaimer-accepted");
    let AuthOutcome::Accepted(identity) = &outcome else {
        unreachable!()
    };
    assert_eq!(identity.username, "after-disclaimer", "the state came back");

    let answer = StepAnswer::Dialog {
        fields: vec![FieldAnswer {
            id: "code".to_owned(),
            value: Secret::new("123456"),
        }],
        button_id: "cancel".to_owned(),
    };
    let outcome = mapper
        .continue_authentication(&Secret::new("u"), &answer, &client)
        .await
        .unwrap();
    assert_eq!(attribute(&outcome, "answer"), "dialog:cancel:code=123456");
}

#[tokio::test]
async fn operate_answers_every_outcome_within_bounds() {
    let rt = runtime();
    let mapper = caps(&rt).await;
    let user = Identity {
        username: "u".to_owned(),
        ..Identity::default()
    };
    let client = ClientContext::default();
    let operate = |desktop: &'static str, op| mapper.operate(&user, desktop, op, &client);
    assert_eq!(
        operate("done", Operation::Restart).await.unwrap(),
        OperationOutcome::Done("Restart".to_owned())
    );
    assert_eq!(
        operate("try-again", Operation::PowerUp).await.unwrap(),
        OperationOutcome::TryAgain("PowerUp".to_owned())
    );
    assert_eq!(
        operate("refused", Operation::PowerDown).await.unwrap(),
        OperationOutcome::Refused("PowerDown".to_owned())
    );
    assert_eq!(
        operate("other", Operation::Restart).await.unwrap(),
        OperationOutcome::Unsupported
    );
    invalid(
        operate("long", Operation::Restart).await,
        "operation outcome",
    );
    assert_eq!(
        operate("err", Operation::PowerUp).await.unwrap_err(),
        MapperError::Guest("operate PowerUp failed on purpose".to_owned())
    );
}

#[tokio::test]
async fn change_password_answers_every_outcome_within_bounds() {
    let rt = runtime();
    let mapper = caps(&rt).await;
    let change = |username: &str, old: &str, new: &str| PasswordChange {
        username: username.to_owned(),
        domain: String::new(),
        old_password: Secret::new(old),
        new_password: Secret::new(new),
        client: ClientContext::default(),
    };
    let changed = mapper
        .change_password(&change("ok", "old", "new"))
        .await
        .unwrap();
    assert!(
        matches!(&changed, PasswordChangeOutcome::Changed(AuthOutcome::Accepted(i)) if i.username == "ok"),
        "{changed:?}"
    );
    let PasswordChangeOutcome::Rejected(wrong) = mapper
        .change_password(&change("ok", "new", "old"))
        .await
        .unwrap()
    else {
        panic!("swapped passwords are refused");
    };
    assert_eq!(wrong.kind, PasswordRejectionKind::WrongPassword);
    assert!(matches!(
        mapper
            .change_password(&change("mfa", "a", "b"))
            .await
            .unwrap(),
        PasswordChangeOutcome::Changed(AuthOutcome::Challenge(_))
    ));
    let PasswordChangeOutcome::Rejected(weak) = mapper
        .change_password(&change("weak", "a", "b"))
        .await
        .unwrap()
    else {
        panic!("weak is refused");
    };
    assert_eq!(weak.kind, PasswordRejectionKind::WeakPassword);
    assert_eq!(
        mapper
            .change_password(&change("nobody", "a", "b"))
            .await
            .unwrap(),
        PasswordChangeOutcome::Unsupported
    );
    invalid(
        mapper.change_password(&change("long", "a", "b")).await,
        "password rejection reason",
    );
    assert!(matches!(
        mapper.change_password(&change("err", "a", "b")).await,
        Err(MapperError::Guest(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_password_makes_what_verify_password_accepts() {
    let rt = runtime();
    let mapper = caps(&rt).await;
    let outcome = mapper
        .authenticate(&login("hash", "s3cret ✓"))
        .await
        .unwrap();
    let hash = attribute(&outcome, "hash");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_eq!(attribute(&outcome, "verified"), "true");
    assert_eq!(attribute(&outcome, "wrong-verified"), "false");
    assert!(interstate_mapper::password::verify("s3cret ✓", &hash));
}

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn totp_login(secret: &str, code: &str) -> PasswordLogin {
    login(&format!("totp:{secret}:{code}"), "")
}

#[tokio::test]
async fn verify_totp_accepts_a_code_once() {
    let rt = runtime();
    let mapper = caps(&rt).await;
    let code = totp_code(SECRET, now()).unwrap();
    let first = mapper
        .authenticate(&totp_login(SECRET, &code))
        .await
        .unwrap();
    assert!(matches!(first, AuthOutcome::Accepted(_)), "{first:?}");
    let again = mapper
        .authenticate(&totp_login(SECRET, &code))
        .await
        .unwrap();
    assert_eq!(rejection_reason(&again), "totp replayed");
    // Another spelling of the same secret shares the record.
    let spelled = SECRET.to_lowercase().replace("3dp", "3dp ") + "==";
    let respelled = mapper
        .authenticate(&totp_login(&spelled, &code))
        .await
        .unwrap();
    assert_eq!(rejection_reason(&respelled), "totp replayed");
    // Another mapper of the same runtime shares the store.
    let other = caps_in(
        &rt,
        StoreSettings {
            namespace: Some("elsewhere".to_owned()),
            ..StoreSettings::default()
        },
    )
    .await;
    let elsewhere = other
        .authenticate(&totp_login(SECRET, &code))
        .await
        .unwrap();
    assert_eq!(rejection_reason(&elsewhere), "totp replayed");

    // A wrong code, a malformed one, and a secret that is not base32.
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    for (secret, code) in [
        (SECRET, wrong.as_str()),
        (SECRET, "12345"),
        (SECRET, "abcdef"),
        ("not base32!", code.as_str()),
    ] {
        let outcome = mapper
            .authenticate(&totp_login(secret, code))
            .await
            .unwrap();
        assert_eq!(
            rejection_reason(&outcome),
            "totp rejected",
            "{secret} {code}"
        );
    }
}

/// A store that is always down.
struct DownKv;

impl KeyValue for DownKv {
    fn get<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, KvError>> {
        Box::pin(async { Err(KvError::Unavailable("down".to_owned())) })
    }
    fn set<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: Vec<u8>,
        _: u64,
        _: &'a KvLimits,
    ) -> BoxFuture<'a, Result<(), KvError>> {
        Box::pin(async { Err(KvError::Unavailable("down".to_owned())) })
    }
    fn delete<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<bool, KvError>> {
        Box::pin(async { Err(KvError::Unavailable("down".to_owned())) })
    }
    fn compare_and_swap<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: Option<Vec<u8>>,
        _: Option<Vec<u8>>,
        _: u64,
        _: &'a KvLimits,
    ) -> BoxFuture<'a, Result<bool, KvError>> {
        Box::pin(async { Err(KvError::Unavailable("down".to_owned())) })
    }
    fn claim_once<'a>(&'a self, _: &'a str, _: u64) -> BoxFuture<'a, Result<bool, KvError>> {
        Box::pin(async { Err(KvError::Unavailable("down".to_owned())) })
    }
}

#[tokio::test]
async fn a_store_that_is_down_fails_totp_closed_and_store_calls_unavailable() {
    let rt = runtime().with_key_value(Arc::new(DownKv));
    let mapper = caps(&rt).await;
    let code = totp_code(SECRET, now()).unwrap();
    let outcome = mapper
        .authenticate(&totp_login(SECRET, &code))
        .await
        .unwrap();
    assert_eq!(rejection_reason(&outcome), "totp rejected");
    let outcome = mapper.authenticate(&login("kv:get:k", "")).await.unwrap();
    assert_eq!(attribute(&outcome, "kv"), "err:unavailable:down");
}

async fn kv(mapper: &WasmMapper, user: &str, password: &str, ttl: &str) -> String {
    let outcome = mapper
        .authenticate(&with(user, password, ttl))
        .await
        .unwrap();
    attribute(&outcome, "kv")
}

#[tokio::test]
async fn the_store_through_a_mapper() {
    let rt = runtime();
    let limits = KvLimits {
        max_key_bytes: 8,
        max_value_bytes: 4,
        max_keys: 2,
        max_ttl_ms: 2_000,
    };
    let store = |namespace: &str| StoreSettings {
        namespace: Some(namespace.to_owned()),
        limits,
    };
    let mapper = caps_in(&rt, store("one")).await;
    let twin = caps_in(&rt, store("one")).await;
    let stranger = caps_in(&rt, store("two")).await;

    assert_eq!(kv(&mapper, "kv:get:a", "", "").await, "none");
    assert_eq!(kv(&mapper, "kv:set:a", "1234", "").await, "ok");
    assert_eq!(kv(&mapper, "kv:get:a", "", "").await, "some:1234");
    assert_eq!(
        kv(&twin, "kv:get:a", "", "").await,
        "some:1234",
        "same namespace"
    );
    assert_eq!(
        kv(&stranger, "kv:get:a", "", "").await,
        "none",
        "namespaces apart"
    );

    // Host-side bounds, before the backend.
    let too_large = kv(&mapper, "kv:set:a", "12345", "").await;
    assert!(
        too_large.starts_with("err:too-large:the value is 5 bytes"),
        "{too_large}"
    );
    let long_key = kv(&mapper, "kv:set:123456789", "1", "").await;
    assert!(
        long_key.starts_with("err:too-large:the key is 9 bytes"),
        "{long_key}"
    );
    let empty = kv(&mapper, "kv:get:", "", "").await;
    assert_eq!(empty, "err:too-large:the key is empty");

    // Compare-and-swap and delete.
    assert_eq!(kv(&mapper, "kv:cas:a", "1234|5", "").await, "true");
    assert_eq!(kv(&mapper, "kv:cas:a", "1234|6", "").await, "false");
    assert_eq!(kv(&mapper, "kv:get:a", "", "").await, "some:5");
    assert_eq!(kv(&mapper, "kv:cas:b", "-|7", "").await, "true");
    assert_eq!(kv(&mapper, "kv:cas:b", "-|8", "").await, "false");

    // Full: two live keys.
    assert_eq!(kv(&mapper, "kv:set:c", "1", "").await, "err:full");
    assert_eq!(kv(&mapper, "kv:delete:b", "", "").await, "true");
    assert_eq!(kv(&mapper, "kv:delete:b", "", "").await, "false");
    assert_eq!(kv(&mapper, "kv:set:c", "1", "50").await, "ok");

    // TTLs: a short one expires; none (and more than the maximum) is the maximum.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(kv(&mapper, "kv:get:c", "", "").await, "none");
    assert_eq!(kv(&mapper, "kv:set:d", "1", "999999").await, "ok");
    assert_eq!(kv(&mapper, "kv:get:d", "", "").await, "some:1");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(kv(&mapper, "kv:get:a", "", "").await, "none", "2 s at most");
    assert_eq!(
        kv(&mapper, "kv:get:d", "", "").await,
        "none",
        "clamped to 2 s"
    );
}

#[tokio::test]
async fn memory_kv_keeps_the_key_value_contract() {
    key_value_contract(&MemoryKv::new(), "memory").await;
}

/// A directory with one profile, `corp`, and the passwords it was given.
#[derive(Default)]
struct FakeDirectory {
    seen_passwords: Mutex<Vec<String>>,
}

fn directory_failure(kind: DirectoryFailureKind, detail: &str) -> DirectoryFailure {
    DirectoryFailure {
        kind,
        detail: detail.to_owned(),
    }
}

fn alice(extra: Vec<Attribute>) -> DirectoryUser {
    let mut attributes = vec![Attribute {
        key: "mail".to_owned(),
        value: "alice@example.com".to_owned(),
    }];
    attributes.extend(extra);
    DirectoryUser {
        dn: "cn=alice,dc=example,dc=com".to_owned(),
        login: "alice".to_owned(),
        attributes,
    }
}

impl FakeDirectory {
    fn profile(profile: &str) -> Result<(), DirectoryFailure> {
        if profile == "corp" {
            Ok(())
        } else {
            Err(directory_failure(
                DirectoryFailureKind::UnknownProfile,
                "no such profile",
            ))
        }
    }
}

impl Directory for FakeDirectory {
    fn authenticate<'a>(
        &'a self,
        profile: &'a str,
        username: &'a str,
        password: &'a Secret,
    ) -> BoxFuture<'a, Result<DirectoryUser, DirectoryFailure>> {
        Box::pin(async move {
            Self::profile(profile)?;
            self.seen_passwords
                .lock()
                .unwrap()
                .push(password.expose().to_owned());
            match (username, password.expose()) {
                ("alice", "pw") => Ok(alice(Vec::new())),
                ("huge", _) => Ok(alice(vec![Attribute {
                    key: "photo".to_owned(),
                    value: "x".repeat(4097),
                }])),
                ("expired", _) => Err(directory_failure(
                    DirectoryFailureKind::PasswordExpired,
                    "AD 532",
                )),
                _ => Err(directory_failure(
                    DirectoryFailureKind::WrongPassword,
                    "AD 52e",
                )),
            }
        })
    }

    fn lookup<'a>(
        &'a self,
        profile: &'a str,
        username: &'a str,
        attributes: &'a [String],
    ) -> BoxFuture<'a, Result<Option<DirectoryUser>, DirectoryFailure>> {
        Box::pin(async move {
            Self::profile(profile)?;
            Ok((username == "alice").then(|| {
                alice(
                    attributes
                        .iter()
                        .map(|name| Attribute {
                            key: name.clone(),
                            value: "asked".to_owned(),
                        })
                        .collect(),
                )
            }))
        })
    }

    fn groups<'a>(
        &'a self,
        profile: &'a str,
        _username: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DirectoryGroup>, DirectoryFailure>> {
        Box::pin(async move {
            Self::profile(profile)?;
            Ok(vec![
                DirectoryGroup {
                    dn: "cn=artists,dc=example,dc=com".to_owned(),
                    name: "artists".to_owned(),
                },
                DirectoryGroup {
                    dn: "cn=staff,dc=example,dc=com".to_owned(),
                    name: "staff".to_owned(),
                },
            ])
        })
    }

    fn change_password<'a>(
        &'a self,
        profile: &'a str,
        _username: &'a str,
        old_password: &'a Secret,
        new_password: &'a Secret,
    ) -> BoxFuture<'a, Result<(), DirectoryFailure>> {
        Box::pin(async move {
            Self::profile(profile)?;
            if new_password.expose().len() < 4 {
                return Err(directory_failure(
                    DirectoryFailureKind::WeakPassword,
                    "too short",
                ));
            }
            if old_password.expose() == "pw" {
                Ok(())
            } else {
                Err(directory_failure(
                    DirectoryFailureKind::WrongPassword,
                    "AD 52e",
                ))
            }
        })
    }
}

async fn dir(mapper: &WasmMapper, user: &str, password: &str, domain: &str) -> String {
    let outcome = mapper
        .authenticate(&with(user, password, domain))
        .await
        .unwrap();
    attribute(&outcome, "dir")
}

#[tokio::test]
async fn the_directory_through_a_mapper() {
    let directory = Arc::new(FakeDirectory::default());
    let rt = runtime().with_directory(Some(directory.clone()));
    let mapper = caps(&rt).await;

    assert_eq!(
        dir(&mapper, "dir:authenticate:corp:alice", "pw", "").await,
        "ok:cn=alice,dc=example,dc=com|alice|mail=alice@example.com"
    );
    assert_eq!(
        dir(&mapper, "dir:authenticate:corp:alice", "nope", "").await,
        "err:WrongPassword:AD 52e"
    );
    assert_eq!(
        dir(&mapper, "dir:authenticate:corp:expired", "pw", "").await,
        "err:PasswordExpired:AD 532"
    );
    assert_eq!(
        directory.seen_passwords.lock().unwrap().as_slice(),
        ["pw", "nope", "pw"],
        "the passwords reached the directory"
    );
    assert_eq!(
        dir(&mapper, "dir:authenticate:other:alice", "pw", "").await,
        "err:UnknownProfile:no such profile"
    );
    let huge = dir(&mapper, "dir:authenticate:corp:huge", "pw", "").await;
    assert!(
        huge.starts_with("err:Unreachable:the directory answered an attribute value of 4097 bytes"),
        "{huge}"
    );
    assert_eq!(
        dir(&mapper, "dir:lookup:corp:alice", "", "title").await,
        "ok:cn=alice,dc=example,dc=com|alice|mail=alice@example.com,title=asked"
    );
    assert_eq!(
        dir(&mapper, "dir:lookup:corp:bob", "", "title").await,
        "ok:none"
    );
    assert_eq!(
        dir(&mapper, "dir:groups:corp:alice", "", "").await,
        "ok:artists=cn=artists,dc=example,dc=com;staff=cn=staff,dc=example,dc=com"
    );
    assert_eq!(
        dir(
            &mapper,
            "dir:change-password:corp:alice",
            "pw|long enough",
            ""
        )
        .await,
        "ok:changed"
    );
    assert_eq!(
        dir(&mapper, "dir:change-password:corp:alice", "pw|x", "").await,
        "err:WeakPassword:too short"
    );
    assert_eq!(
        dir(
            &mapper,
            "dir:change-password:corp:alice",
            "bad|long enough",
            ""
        )
        .await,
        "err:WrongPassword:AD 52e"
    );
}

#[tokio::test]
async fn without_a_directory_every_call_is_an_unknown_profile() {
    let rt = runtime();
    let mapper = caps(&rt).await;
    for user in [
        "dir:authenticate:corp:alice",
        "dir:lookup:corp:alice",
        "dir:groups:corp:alice",
        "dir:change-password:corp:alice",
    ] {
        assert_eq!(
            dir(&mapper, user, "pw|new", "").await,
            "err:UnknownProfile:no directory profiles are configured",
            "{user}"
        );
    }
    let rejected = mapper.authenticate(&login("reject", "")).await.unwrap();
    assert!(
        matches!(&rejected, AuthOutcome::Rejected(r) if r.kind == RejectionKind::AccessDenied),
        "{rejected:?}"
    );
}
