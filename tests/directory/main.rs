//! The directory capability (`interstate-directory`) against a real `slapd` started by each test
//! on free loopback ports: authentication outcomes from the ppolicy overlay, lookups and filter
//! injection, nested groups, password changes, LDAPS and StartTLS with a test CA or a pin,
//! failover, and the service-account pool. Profiles are built from settings JSON, through
//! `interstate-config`, as the broker builds them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: failing loudly is the point"
)]

mod bench;
mod samba;

use std::path::Path;

use interstate_config::Settings;
use interstate_directory::LdapDirectory;
use interstate_protocol::capability::{Directory, DirectoryFailureKind as Kind};
use interstate_protocol::policy::Secret;
use interstate_tests::slapd::{
    BASE_DN, GROUPS_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd, make_certificates, password_of,
    user_dn,
};
use serde_json::{Value, json};

/// A profile for `slapd`: LDAPS with its CA, the service account from a password file, groups
/// by `member`, no pool unless `overrides` sets one. `overrides` replaces top-level keys.
pub fn profile(slapd: &Slapd, overrides: Value) -> Value {
    let password_file = slapd.dir().join("service.pw");
    std::fs::write(&password_file, format!("{SERVICE_PASSWORD}\n")).unwrap();
    let mut profile = json!({
        "kind": "ldap",
        "servers": [slapd.ldaps_url()],
        "base_dn": BASE_DN,
        "bind_dn": SERVICE_DN,
        "password_file": password_file,
        "attributes": ["mail", "displayName"],
        "groups": {"base_dn": GROUPS_DN},
        "tls": {"ca_file": slapd.ca_file},
        "timeout_ms": 3000,
        "pool_size": 2,
    });
    for (key, value) in overrides.as_object().unwrap() {
        profile[key] = value.clone();
    }
    profile
}

/// The directory of one profile named `corp`, built from settings as the broker builds it.
pub fn directory(slapd: &Slapd, profile: Value) -> LdapDirectory {
    let text = json!({"directory": {"profiles": {"corp": profile}}}).to_string();
    let settings = Settings::parse(&text, &slapd.dir().join("settings.json")).unwrap();
    LdapDirectory::from_settings(&settings.directory).unwrap()
}

fn secret(s: &str) -> Secret {
    Secret::new(s)
}

async fn auth(dir: &LdapDirectory, uid: &str, password: &str) -> Result<String, Kind> {
    dir.authenticate("corp", uid, &secret(password))
        .await
        .map(|u| u.login)
        .map_err(|f| f.kind)
}

#[tokio::test]
async fn authentication_outcomes_follow_the_password_policy() {
    let slapd = Slapd::start().await;
    let dir = directory(&slapd, profile(&slapd, json!({})));

    let alice = dir
        .authenticate("corp", "alice", &secret(&password_of("alice")))
        .await
        .unwrap();
    assert_eq!(alice.dn, user_dn("alice"));
    assert_eq!(alice.login, "alice");
    let value = |key: &str| {
        alice
            .attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.clone())
    };
    assert_eq!(value("mail").as_deref(), Some("alice@example.org"));
    assert_eq!(value("displayName").as_deref(), Some("Alice Liddell"));

    assert_eq!(
        auth(&dir, "alice", "wrong-password").await,
        Err(Kind::WrongPassword)
    );
    assert_eq!(
        auth(&dir, "nobody", "whatever-1").await,
        Err(Kind::WrongPassword)
    );
    assert_eq!(
        auth(&dir, "eve", &password_of("eve")).await,
        Err(Kind::PasswordExpired)
    );
    assert_eq!(
        auth(&dir, "grace", &password_of("grace")).await,
        Err(Kind::PasswordExpired)
    );
    assert_eq!(
        auth(&dir, "lock", &password_of("lock")).await,
        Err(Kind::LockedOut)
    );
    assert_eq!(
        auth(&dir, "reset", &password_of("reset")).await,
        Err(Kind::MustChangePassword)
    );
    // OpenLDAP's ppolicy says "locked" whatever the password: the kind is the server's.
    assert_eq!(
        auth(&dir, "lock", "wrong-password").await,
        Err(Kind::LockedOut)
    );

    // An empty password never reaches the server (it would be an unauthenticated bind).
    let before = dir.stats("corp").unwrap();
    assert_eq!(auth(&dir, "alice", "").await, Err(Kind::WrongPassword));
    assert_eq!(dir.stats("corp").unwrap().user_binds, before.user_binds);

    let unknown = dir.authenticate("other", "alice", &secret("x")).await;
    assert_eq!(unknown.unwrap_err().kind, Kind::UnknownProfile);
}

#[tokio::test]
async fn lookups_escape_every_value() {
    let slapd = Slapd::start().await;
    let dir = directory(&slapd, profile(&slapd, json!({})));

    let alice = dir
        .lookup("corp", "alice", &["sn".to_owned(), "uid)(x".to_owned()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.dn, user_dn("alice"));
    assert!(
        alice
            .attributes
            .iter()
            .any(|a| a.key == "sn" && a.value == "alice")
    );
    assert!(alice.attributes.iter().all(|a| a.key != "userPassword"));

    for injection in [
        "*)(uid=*",
        "*",
        "alice)(|(uid=*",
        "pat*",
        "*)(objectClass=*",
    ] {
        assert_eq!(
            dir.lookup("corp", injection, &[]).await.unwrap(),
            None,
            "{injection}"
        );
        assert_eq!(
            auth(&dir, injection, "alice-pw-1").await,
            Err(Kind::WrongPassword),
            "{injection}"
        );
        assert_eq!(
            dir.groups("corp", injection).await.unwrap(),
            [],
            "{injection}"
        );
    }
    // A name made of filter metacharacters matches itself, literally.
    let pat = dir.lookup("corp", "pat(1)*", &[]).await.unwrap().unwrap();
    assert_eq!(pat.login, "pat(1)*");
    assert_eq!(
        auth(&dir, "pat(1)*", &password_of("pat(1)*"))
            .await
            .as_deref(),
        Ok("pat(1)*")
    );

    // Several login attributes: any of them matches.
    let dir = directory(
        &slapd,
        profile(&slapd, json!({"login_attributes": ["uid", "mail"]})),
    );
    let by_mail = dir
        .lookup("corp", "alice@example.org", &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_mail.login, "alice");
    assert_eq!(
        auth(&dir, "alice@example.org", &password_of("alice"))
            .await
            .as_deref(),
        Ok("alice")
    );

    // An extra user filter narrows the users.
    let dir = directory(&slapd, profile(&slapd, json!({"user_filter": "(sn=bob)"})));
    assert!(dir.lookup("corp", "bob", &[]).await.unwrap().is_some());
    assert!(dir.lookup("corp", "alice", &[]).await.unwrap().is_none());
}

fn names(groups: &[interstate_protocol::capability::DirectoryGroup]) -> Vec<String> {
    let mut names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn nested_groups_by_member_and_by_member_of() {
    let slapd = Slapd::start().await;
    for mode in ["member", "memberOf"] {
        let dir = directory(
            &slapd,
            profile(
                &slapd,
                json!({"groups": {"mode": mode, "base_dn": GROUPS_DN}}),
            ),
        );
        let alice = dir.groups("corp", "alice").await.unwrap();
        assert_eq!(names(&alice), ["artists", "staff"], "{mode}");
        assert!(
            alice
                .iter()
                .any(|g| g.dn == format!("cn=staff,{GROUPS_DN}")),
            "{mode}"
        );
        // bob is in the cycle loop-a ∈ loop-b ∈ loop-a: each group once, and the walk ends.
        assert_eq!(
            names(&dir.groups("corp", "bob").await.unwrap()),
            ["loop-a", "loop-b", "staff"],
            "{mode}"
        );
        assert_eq!(dir.groups("corp", "carol").await.unwrap(), [], "{mode}");
        assert_eq!(dir.groups("corp", "nobody").await.unwrap(), [], "{mode}");
    }
}

async fn change(dir: &LdapDirectory, uid: &str, old: &str, new: &str) -> Result<(), Kind> {
    dir.change_password("corp", uid, &secret(old), &secret(new))
        .await
        .map_err(|f| f.kind)
}

#[tokio::test]
async fn password_changes_follow_the_policy() {
    let slapd = Slapd::start().await;
    let dir = directory(&slapd, profile(&slapd, json!({})));
    let old = password_of("carol");

    assert_eq!(
        change(&dir, "carol", &old, "short").await,
        Err(Kind::WeakPassword)
    );
    assert_eq!(
        change(&dir, "carol", "not-the-password", "long-enough-2").await,
        Err(Kind::WrongPassword)
    );
    assert_eq!(
        change(&dir, "carol", "", "long-enough-2").await,
        Err(Kind::WrongPassword)
    );
    assert_eq!(
        change(&dir, "carol", &old, "").await,
        Err(Kind::WeakPassword)
    );
    assert_eq!(
        change(&dir, "nobody", &old, "long-enough-2").await,
        Err(Kind::WrongPassword)
    );
    assert_eq!(auth(&dir, "carol", &old).await.as_deref(), Ok("carol"));

    change(&dir, "carol", &old, "long-enough-2").await.unwrap();
    assert_eq!(
        auth(&dir, "carol", "long-enough-2").await.as_deref(),
        Ok("carol")
    );
    assert_eq!(auth(&dir, "carol", &old).await, Err(Kind::WrongPassword));

    // Must change after a reset: the restricted bind may change the password, then log in.
    change(&dir, "reset", &password_of("reset"), "reset-new-pw-2")
        .await
        .unwrap();
    assert_eq!(
        auth(&dir, "reset", "reset-new-pw-2").await.as_deref(),
        Ok("reset")
    );

    // Expired with grace logins left: a grace bind changes it.
    change(&dir, "grace", &password_of("grace"), "grace-new-pw-2")
        .await
        .unwrap();
    assert_eq!(
        auth(&dir, "grace", "grace-new-pw-2").await.as_deref(),
        Ok("grace")
    );

    // Expired without grace logins: OpenLDAP refuses the user's bind, so the user cannot.
    assert_eq!(
        change(&dir, "eve", &password_of("eve"), "eve-new-pw-2").await,
        Err(Kind::PasswordExpired)
    );
    assert_eq!(
        change(&dir, "lock", &password_of("lock"), "lock-new-pw-2").await,
        Err(Kind::LockedOut)
    );
}

#[tokio::test]
async fn ldaps_and_starttls_with_a_ca_or_a_pin_and_refused_without() {
    let slapd = Slapd::start().await;
    let alice = password_of("alice");
    let pin = hex::encode(slapd.cert_sha256);
    let other = tempfile::tempdir().unwrap();
    let (other_ca, ..) = make_certificates(other.path(), "other");
    let good = [
        json!({"servers": [slapd.ldaps_url()], "tls": {"ca_file": slapd.ca_file}}),
        json!({"servers": [slapd.ldap_url()], "tls": {"starttls": true, "ca_file": slapd.ca_file}}),
        json!({"servers": [slapd.ldaps_url()], "tls": {"pinned_sha256": pin}}),
        json!({"servers": [slapd.ldap_url()], "tls": {"starttls": true, "pinned_sha256": [pin]}}),
        json!({"servers": [slapd.ldap_url()], "tls": {"insecure_plaintext": true}}),
    ];
    for overrides in good {
        let dir = directory(&slapd, profile(&slapd, overrides.clone()));
        assert_eq!(
            auth(&dir, "alice", &alice).await.as_deref(),
            Ok("alice"),
            "{overrides}"
        );
    }
    let refused = [
        json!({"servers": [slapd.ldaps_url()], "tls": {"ca_file": other_ca}}),
        json!({"servers": [slapd.ldap_url()], "tls": {"starttls": true, "ca_file": other_ca}}),
        json!({"servers": [slapd.ldaps_url()], "tls": {"pinned_sha256": "00".repeat(32)}}),
    ];
    for overrides in refused {
        let dir = directory(&slapd, profile(&slapd, overrides.clone()));
        let err = dir
            .authenticate("corp", "alice", &secret(&alice))
            .await
            .unwrap_err();
        assert_eq!(err.kind, Kind::Unreachable, "{overrides}");
        assert!(!err.detail.contains(&alice), "{}", err.detail);
        assert_eq!(dir.stats("corp").unwrap().user_binds, 0, "{overrides}");
    }
}

#[tokio::test]
async fn failover_skips_a_dead_server_and_backs_off() {
    let mut slapd = Slapd::start().await;
    let closed = format!("ldaps://127.0.0.1:{}", interstate_tests::redis::free_port());
    let dir = directory(
        &slapd,
        profile(
            &slapd,
            json!({"servers": [closed, slapd.ldaps_url()], "pool_size": 0}),
        ),
    );
    assert!(dir.lookup("corp", "alice", &[]).await.unwrap().is_some());
    assert_eq!(dir.stats("corp").unwrap().connect_failures, 1);
    // The dead server is skipped during its back-off: no second failed attempt.
    for _ in 0..3 {
        assert_eq!(
            auth(&dir, "alice", &password_of("alice")).await.as_deref(),
            Ok("alice")
        );
    }
    let stats = dir.stats("corp").unwrap();
    assert_eq!(stats.connect_failures, 1);
    assert_eq!(stats.connections, 7, "{stats:?}");

    // Every server down: unreachable, with each server named.
    slapd.stop();
    let err = dir.lookup("corp", "alice", &[]).await.unwrap_err();
    assert_eq!(err.kind, Kind::Unreachable);
    assert!(err.detail.contains(&slapd.ldaps_url()), "{}", err.detail);
    slapd.restart().await;
    assert!(dir.lookup("corp", "alice", &[]).await.unwrap().is_some());
}

#[tokio::test]
async fn the_pool_reuses_service_connections_and_never_holds_a_user_bind() {
    let mut slapd = Slapd::start().await;
    let dir = directory(&slapd, profile(&slapd, json!({"pool_size": 2})));
    for _ in 0..20 {
        assert!(dir.lookup("corp", "alice", &[]).await.unwrap().is_some());
    }
    let stats = dir.stats("corp").unwrap();
    assert_eq!(
        (stats.connections, stats.service_binds, stats.pool_reuses),
        (1, 1, 19)
    );

    // Each login binds as the user on a connection of its own, closed afterwards.
    for _ in 0..3 {
        assert_eq!(
            auth(&dir, "alice", &password_of("alice")).await.as_deref(),
            Ok("alice")
        );
        assert_eq!(dir.groups("corp", "alice").await.unwrap().len(), 2);
    }
    let stats = dir.stats("corp").unwrap();
    assert_eq!(
        (stats.connections, stats.service_binds, stats.user_binds),
        (4, 1, 3)
    );
    assert_eq!(dir.idle_connections("corp"), Some(1));

    // Concurrent calls: at most pool_size service connections.
    let calls = (0..16).map(|_| dir.lookup("corp", "bob", &[]));
    for found in futures_util::future::join_all(calls).await {
        assert!(found.unwrap().is_some());
    }
    let stats = dir.stats("corp").unwrap();
    assert!(stats.service_binds <= 2, "{stats:?}");
    assert!(dir.idle_connections("corp").unwrap() <= 2);

    // A server restart breaks the pooled connections; the next call retries on a new one.
    slapd.restart().await;
    assert!(dir.lookup("corp", "alice", &[]).await.unwrap().is_some());

    // Without a pool, every call opens, binds and closes its own connection.
    let dir = directory(&slapd, profile(&slapd, json!({"pool_size": 0})));
    for _ in 0..5 {
        assert!(dir.lookup("corp", "alice", &[]).await.unwrap().is_some());
    }
    let stats = dir.stats("corp").unwrap();
    assert_eq!(
        (stats.connections, stats.service_binds, stats.pool_reuses),
        (5, 5, 0)
    );
    assert_eq!(dir.idle_connections("corp"), Some(0));
}

#[tokio::test]
async fn a_refused_service_account_is_unreachable_and_its_password_never_shows() {
    let slapd = Slapd::start().await;
    let file = slapd.dir().join("wrong.pw");
    std::fs::write(&file, "not-the-service-password\n").unwrap();
    let dir = directory(&slapd, profile(&slapd, json!({"password_file": file})));
    let err = dir.lookup("corp", "alice", &[]).await.unwrap_err();
    assert_eq!(err.kind, Kind::Unreachable);
    assert!(err.detail.contains(SERVICE_DN), "{}", err.detail);
    assert!(!err.detail.contains("not-the-service-password"));
    let debug = format!("{dir:?}");
    assert!(!debug.contains("not-the-service-password"), "{debug}");
    assert!(!debug.contains(SERVICE_PASSWORD), "{debug}");

    // A password_env that is not set is named when the directory is built.
    let var = "INTERSTATE_TEST_LDAP_SERVICE_PASSWORD";
    let settings_dir = slapd.dir().join("settings.json");
    let text = json!({"directory": {"profiles": {"corp": profile(&slapd, json!({}))}}})
        .to_string()
        .replace("\"password_file\"", "\"password_env\"");
    let text = text.replace(
        &serde_json::to_string(&slapd.dir().join("service.pw")).unwrap(),
        &format!("\"{var}\""),
    );
    let settings = Settings::parse(&text, Path::new(&settings_dir)).unwrap();
    let missing = LdapDirectory::from_settings(&settings.directory).unwrap_err();
    assert!(missing.to_string().contains(var), "{missing}");
}

#[tokio::test]
async fn a_bind_pattern_binds_directly_with_the_name_escaped() {
    let slapd = Slapd::start().await;
    let mut p = profile(
        &slapd,
        json!({"bind_pattern": format!("uid={{username}},{}", interstate_tests::slapd::PEOPLE_DN)}),
    );
    // No service account: lookups are anonymous, and this tree shows anonymous nothing.
    let p_object = p.as_object_mut().unwrap();
    p_object.remove("bind_dn");
    p_object.remove("password_file");
    let dir = directory(&slapd, p);

    let alice = dir
        .authenticate("corp", "alice", &secret(&password_of("alice")))
        .await
        .unwrap();
    assert_eq!(alice.dn, user_dn("alice"));
    assert!(alice.attributes.iter().any(|a| a.key == "mail"));
    assert_eq!(
        auth(&dir, "alice", "wrong-password").await,
        Err(Kind::WrongPassword)
    );
    assert_eq!(
        auth(&dir, "eve", &password_of("eve")).await,
        Err(Kind::PasswordExpired)
    );
    assert_eq!(
        auth(&dir, "reset", &password_of("reset")).await,
        Err(Kind::MustChangePassword)
    );
    // The name is one DN value: a comma or an equals sign cannot reach another entry.
    assert_eq!(
        auth(&dir, "interstate,ou=services", SERVICE_PASSWORD).await,
        Err(Kind::WrongPassword)
    );
    assert_eq!(auth(&dir, "alice", "").await, Err(Kind::WrongPassword));
    assert_eq!(dir.lookup("corp", "alice", &[]).await.unwrap(), None);
    let stats = dir.stats("corp").unwrap();
    assert_eq!(stats.service_binds, 0, "{stats:?}");
}
