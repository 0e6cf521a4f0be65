//! How the broker checks agent certificates: off (the default), a private CA, or pinned
//! fingerprints. A refused certificate fails the allocation cleanly.

use interstate_tests::broker::simple_settings;
use interstate_tests::pcoip::flow;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// A private CA and an agent certificate it signed for 127.0.0.2.
struct Pki {
    ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Studio agents CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.2".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key: PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

async fn allocate(settings: serde_json::Value) -> Result<String, String> {
    let broker = TestBroker::start(settings).await;
    let result = flow(broker.addr, "kolmogorov", PASSWORD).await;
    broker.stop().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_required_when_configured() {
    let pki = pki();
    let agent = FakeAgent::start_with(
        AgentBehaviour::Succeed,
        vec![pki.leaf.clone()],
        pki.leaf_key.clone_key(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("agents-ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();

    let mut settings = simple_settings(agent.addr);
    settings["agent"]["tls"] =
        serde_json::json!({"verify": "ca", "ca_file": ca_file.display().to_string()});
    allocate(settings.clone())
        .await
        .expect("an agent certificate from the CA is accepted");

    // A self-signed agent is refused under the same settings.
    let stranger = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(stranger.addr);
    settings["agent"]["tls"] =
        serde_json::json!({"verify": "ca", "ca_file": ca_file.display().to_string()});
    let err = allocate(settings).await.unwrap_err();
    assert!(err.contains("ALLOC_FAILED_TO_ALLOCATE_AGENT"), "{err}");
    assert!(
        stranger.last().is_none(),
        "no credentials were sent to an unverified agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_fingerprints_accept_only_the_pinned_agent() {
    let pki = pki();
    let agent = FakeAgent::start_with(
        AgentBehaviour::Succeed,
        vec![pki.leaf.clone()],
        pki.leaf_key.clone_key(),
    )
    .await;
    let pin = Sha256::digest(pki.leaf.as_ref());
    let pin_with_colons = pin
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");

    let mut settings = simple_settings(agent.addr);
    settings["agent"]["tls"] =
        serde_json::json!({"verify": "pinned", "fingerprints": [pin_with_colons]});
    allocate(settings)
        .await
        .expect("the pinned agent is accepted");

    let mut settings = simple_settings(agent.addr);
    settings["agent"]["tls"] =
        serde_json::json!({"verify": "pinned", "fingerprints": ["00".repeat(32)]});
    let before = agent.received.lock().unwrap().len();
    let err = allocate(settings).await.unwrap_err();
    assert!(err.contains("ALLOC_FAILED_TO_ALLOCATE_AGENT"), "{err}");
    assert_eq!(
        agent.received.lock().unwrap().len(),
        before,
        "no credentials were sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_off_accepts_a_self_signed_agent() {
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let mut settings = simple_settings(agent.addr);
    settings["agent"]["tls"] = serde_json::json!({"verify": "off"});
    allocate(settings)
        .await
        .expect("agents ship self-signed certificates");
}
