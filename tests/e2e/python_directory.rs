//! The Python directory example (`guest-mappers/python`, `build.sh --directory`) behind the real
//! TLS broker, against a real `slapd`: the mapper calls the host's `directory` itself
//! (`authenticate`, then `groups` for the desktops). alice is in `staff` only through `artists`,
//! so her desktop comes from a nested group.

use interstate_tests::guests::{self, Guest};
use interstate_tests::pcoip::result_id;
use interstate_tests::slapd::{
    BASE_DN, GROUPS_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd, password_of, user_dn,
};
use interstate_tests::{AgentBehaviour, FakeAgent, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;
use serde_json::{Value, json};

/// The broker's settings: one directory profile `corp` (LDAPS with the test CA, the service
/// account from a file) and the mapper's groups: `staff` and `newcomers` have the fake agent's
/// machine.
fn settings(slapd: &Slapd, agent: &FakeAgent) -> Value {
    let password_file = slapd.dir().join("service.pw");
    std::fs::write(&password_file, format!("{SERVICE_PASSWORD}\n")).unwrap();
    json!({
        "directory": {"profiles": {"corp": {
            "kind": "ldap",
            "servers": [slapd.ldaps_url()],
            "base_dn": BASE_DN,
            "bind_dn": SERVICE_DN,
            "password_file": password_file,
            "groups": {"base_dn": GROUPS_DN},
            "tls": {"ca_file": slapd.ca_file},
            "timeout_ms": 3000,
        }}},
        "mapper": {
            "plugin": guests::build(Guest::PythonDirectory).path.display().to_string(),
            "settings": {
                "profile": "corp",
                "logon_domain": "CORP",
                "domains": ["CORP"],
                "groups": {
                    "staff": [{"name": "Studio", "hostname": agent.addr.ip().to_string()}],
                    "newcomers": [{"name": "Studio", "hostname": agent.addr.ip().to_string()}],
                },
            },
        },
        "agent": {"port": agent.addr.port(), "timeout_ms": 5000},
    })
}

/// Sends hello and a password login on a new connection; the client and the answer's result id.
async fn log_in(broker: &TestBroker, user: &str, password: &str) -> (TestClient, String) {
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    let auth = client
        .send(&msg::authenticate(user, password, Some("CORP")))
        .await;
    let id = result_id(&auth);
    (client, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_group_member_logs_in_lists_and_allocates_and_a_wrong_password_is_refused() {
    let slapd = Slapd::start().await;
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(settings(&slapd, &agent)).await;

    let (mut alice, id) = log_in(&broker, "alice", &password_of("alice")).await;
    assert_eq!(id, "AUTH_SUCCESSFUL_AND_COMPLETE");
    let list = alice.send(&msg::list()).await;
    let text = list.text();
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{text}");
    assert_eq!(
        element_text(&text, "resource-name").as_deref(),
        Some("Studio"),
        "{text}"
    );
    let desktop = element_text(&text, "resource-id").expect("a resource id");
    assert_eq!(desktop, agent.addr.ip().to_string().replace('.', "-"));

    // An id she was not listed (the host refuses it without asking the mapper); asked before the
    // real allocation, after which the session allows no other.
    let other = alice.send(&msg::allocate("ws-not-hers")).await;
    assert_eq!(result_id(&other), "ALLOC_FAILED_INVALID_PARAMETER");
    let alloc = alice.send(&msg::allocate(&desktop)).await;
    assert_eq!(result_id(&alloc), "ALLOC_SUCCESSFUL", "{}", alloc.text());
    let launch = agent.last().expect("the agent was asked for a session");
    assert_eq!(launch.hostname, agent.addr.ip().to_string());
    assert_eq!(
        (launch.username.as_str(), launch.domain.as_str()),
        ("alice", "CORP")
    );

    let (_, id) = log_in(&broker, "alice", "not-her-password").await;
    assert_eq!(id, "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD");
    // eve's password has expired (ppolicy, no grace login): the client is asked for a new one.
    let (_, id) = log_in(&broker, "eve", &password_of("eve")).await;
    assert_eq!(id, "AUTH_FAILED_EXPIRED_PASSWORD");
    // carol is in no group with desktops.
    let (_, id) = log_in(&broker, "carol", &password_of("carol")).await;
    assert_eq!(id, "AUTH_FAILED_USER_HAS_NO_RESOURCE");
    assert_eq!(agent.received.lock().unwrap().len(), 1, "one launch only");
    broker.stop().await;
}

/// `reset` must change the password before the first logon (ppolicy `pwdReset`): the login is
/// refused as expired, the mapper changes the password with `directory.change-password` (a
/// wrong current password and a weak new one are refused) and logs the user in with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_must_change_the_password_changes_it_and_gets_in() {
    let slapd = Slapd::start().await;
    slapd.ldapadd(&format!(
        "dn: cn=newcomers,{GROUPS_DN}\nobjectClass: groupOfNames\ncn: newcomers\nmember: {}\n",
        user_dn("reset")
    ));
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(settings(&slapd, &agent)).await;
    let old = password_of("reset");
    const NEW: &str = "Fresh-Password-42";

    let (mut client, id) = log_in(&broker, "reset", &old).await;
    assert_eq!(id, "AUTH_FAILED_EXPIRED_PASSWORD");
    for (current, new, want) in [
        (
            "not-the-password",
            NEW,
            "PSWD_UPDATE_FAILED_UNKNOWN_USERNAME_OR_PASSWORD",
        ),
        (old.as_str(), "short", "PSWD_UPDATE_FAILED_WEAK_PASSWORD"),
        (old.as_str(), NEW, "PSWD_UPDATE_SUCCESSFUL_AUTH_COMPLETE"),
    ] {
        let answer = client
            .send(&msg::update_password("reset", current, new, "CORP"))
            .await;
        assert_eq!(result_id(&answer), want, "{}", answer.text());
    }
    let list = client.send(&msg::list()).await;
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{}", list.text());
    assert!(
        slapd.whoami(&user_dn("reset"), NEW),
        "the directory has the new password"
    );
    let (_, id) = log_in(&broker, "reset", NEW).await;
    assert_eq!(id, "AUTH_SUCCESSFUL_AND_COMPLETE");
    broker.stop().await;
}
