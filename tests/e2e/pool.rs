//! The floating pool (`guest-mappers/pool-rust`) behind the real broker: machines claimed with
//! the host's `store` (`compare-and-swap`), held per user, and a clear refusal when the pool is
//! full. Both machines are the fake agent on 127.0.0.2, named two ways (`127.0.0.2` and
//! `::ffff:127.0.0.2`), so each launch says which machine it went to.

use std::net::SocketAddr;

use interstate_tests::guests::{self, Guest};
use interstate_tests::pcoip::result_id;
use interstate_tests::{AgentBehaviour, FakeAgent, TestBroker, TestClient, msg};
use interstate_tools::xml::element_text;
use serde_json::{Value, json};

/// `hashlib.pbkdf2_hmac('sha256', b'<user>-pw', b'IGNORED', 100000).hex()` for alice, bob and
/// carol (the example mappers' users), dan, erin and frank.
const USERS: [(&str, &str); 6] = [
    (
        "alice",
        "7f63efb0ab5a0592b47baebc069aaaee864e59d1461e3c85629c040160b26b96",
    ),
    (
        "bob",
        "8ff41da5ef01bf7ddb6aef29749422ebad97fb879df33126aed850aeb22325e8",
    ),
    (
        "carol",
        "684d234d891e694c6545dc91afdf411da0f8e938be04d4f562c39397d9194f55",
    ),
    (
        "dan",
        "b3cb88cd695169866136044b88e853c4aa493d79fd60324f944981d8eb4eef7a",
    ),
    (
        "erin",
        "8c4f9420434b46f1ec9dac067c8b8769dc8ea39620cca269a01ee86f8b84042c",
    ),
    (
        "frank",
        "23f37a9b34238011d9ac3d1f723a056c5516f2390ae566945f8ee7649624676d",
    ),
];

fn settings(agent: SocketAddr) -> Value {
    let users: Vec<Value> = USERS
        .iter()
        .map(|(name, hash)| json!({"username": name, "password_hash": hash}))
        .collect();
    json!({
        "mapper": {
            "plugin": guests::build(Guest::PoolRust).path.display().to_string(),
            "settings": {
                "users": users,
                "machines": [
                    {"hostname": agent.ip().to_string()},
                    {"hostname": format!("::ffff:{}", agent.ip()), "agent_port": agent.port()}
                ],
                "hold_minutes": 30,
                "domains": ["EXAMPLE"],
                "logon_domain": "EXAMPLE"
            }
        },
        "agent": {"port": agent.port(), "timeout_ms": 5000}
    })
}

/// Every `<tag>` text of an answer, in order.
fn all_elements(text: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    text.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(value, _)| value.to_owned()))
        .collect()
}

/// Logs `user` in on a new connection; the listed resource ids and the client.
async fn log_in(broker: &TestBroker, user: &str) -> (TestClient, Vec<String>) {
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    let auth = client
        .send(&msg::authenticate(
            user,
            &format!("{user}-pw"),
            Some("EXAMPLE"),
        ))
        .await;
    assert_eq!(
        result_id(&auth),
        "AUTH_SUCCESSFUL_AND_COMPLETE",
        "{user}: {}",
        auth.text()
    );
    let list = client.send(&msg::list()).await;
    let text = list.text();
    assert_eq!(result_id(&list), "LIST_SUCCESSFUL", "{user}: {text}");
    let names = all_elements(&text, "resource-name");
    assert_eq!(names[0], "Pool desktop", "{text}");
    (client, all_elements(&text, "resource-id"))
}

/// Allocates `id`; the machine the agent was asked to prepare, or the refusal's result id.
async fn allocate(client: &mut TestClient, agent: &FakeAgent, id: &str) -> Result<String, String> {
    let before = agent.received.lock().unwrap().len();
    let alloc = client.send(&msg::allocate(id)).await;
    let text = alloc.text();
    if result_id(&alloc) != "ALLOC_SUCCESSFUL" {
        assert_eq!(
            agent.received.lock().unwrap().len(),
            before,
            "a refusal never reaches the agent"
        );
        return Err(result_id(&alloc));
    }
    let launch = agent.last().expect("the agent was called");
    assert_eq!(
        element_text(&text, "hostname").as_deref(),
        Some(launch.hostname.as_str()),
        "{text}"
    );
    Ok(launch.hostname)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_fill_the_pool_a_third_is_refused_and_a_user_keeps_their_machine() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(settings(agent.addr)).await;
    let first = agent.addr.ip().to_string();
    let second = format!("::ffff:{}", agent.addr.ip());

    let (mut alice, ids) = log_in(&broker, "alice").await;
    assert_eq!(ids, ["pool"], "nothing held yet");
    assert_eq!(
        allocate(&mut alice, &agent, "pool").await,
        Ok(first.clone())
    );
    assert_eq!(agent.last().unwrap().username, "alice");

    let (mut bob, _) = log_in(&broker, "bob").await;
    assert_eq!(allocate(&mut bob, &agent, "pool").await, Ok(second.clone()));

    let (mut carol, ids) = log_in(&broker, "carol").await;
    assert_eq!(ids, ["pool"]);
    assert_eq!(
        allocate(&mut carol, &agent, "pool").await,
        Err("ALLOC_FAILED_TO_ALLOCATE_AGENT".to_owned()),
        "the pool is full"
    );

    // alice's second login: her machine is listed, and the pool entry gives it to her again.
    let (mut alice, ids) = log_in(&broker, "alice").await;
    assert_eq!(ids, ["pool", "machine-127-0-0-2"]);
    assert_eq!(
        allocate(&mut alice, &agent, "pool").await,
        Ok(first.clone())
    );
    let (mut alice, _) = log_in(&broker, "alice").await;
    assert_eq!(
        allocate(&mut alice, &agent, "machine-127-0-0-2").await,
        Ok(first)
    );
    // Nobody else can name it.
    let (mut carol, _) = log_in(&broker, "carol").await;
    assert_eq!(
        allocate(&mut carol, &agent, "machine-127-0-0-2").await,
        Err("ALLOC_FAILED_INVALID_PARAMETER".to_owned())
    );
    let (mut bob, ids) = log_in(&broker, "bob").await;
    assert_eq!(ids, ["pool", "machine---ffff-127-0-0-2"]);
    assert_eq!(allocate(&mut bob, &agent, "pool").await, Ok(second));
    broker.stop().await;
}

/// Six users ask for the two machines at the same moment: `compare-and-swap` gives each machine
/// to exactly one of them, and the other four are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_share_a_machine() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(settings(agent.addr)).await;
    let mut clients = Vec::new();
    for (user, _) in USERS {
        let (client, ids) = log_in(&broker, user).await;
        assert_eq!(ids, ["pool"]);
        clients.push((user, client));
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(clients.len()));
    let mut tasks = Vec::new();
    for (user, mut client) in clients {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let alloc = client.send(&msg::allocate("pool")).await;
            (user, result_id(&alloc))
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (user, id) = task.await.unwrap();
        match id.as_str() {
            "ALLOC_SUCCESSFUL" => winners.push(user),
            "ALLOC_FAILED_TO_ALLOCATE_AGENT" => {}
            other => panic!("{user}: {other}"),
        }
    }
    assert_eq!(winners.len(), 2, "one user per machine: {winners:?}");
    let launches = agent.received.lock().unwrap().clone();
    assert_eq!(launches.len(), 2);
    assert_ne!(
        launches[0].hostname, launches[1].hostname,
        "two machines, two users"
    );
    // Each winner's next login lists the machine it got.
    for user in winners {
        let (_, ids) = log_in(&broker, user).await;
        assert_eq!(ids.len(), 2, "{user}: {ids:?}");
    }
    broker.stop().await;
}
