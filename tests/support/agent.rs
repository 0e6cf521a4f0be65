//! The fake PCoIP agent of `interstate-tools`, started on 127.0.0.2 the way tests want it: a
//! failure to start is a panic.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use interstate_protocol::LaunchSession;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use interstate_tools::agent::{AgentBehaviour, CONNECT_TAG};

/// Where the fake agent listens: not the broker's 127.0.0.1, so that a test can tell them apart.
const AGENT_ADDR: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2)),
    0,
);

/// A running fake agent, every request recorded; it stops when dropped.
#[derive(Debug)]
pub struct FakeAgent {
    /// Where it listens (127.0.0.2).
    pub addr: SocketAddr,
    /// Every `launch-session` received.
    pub received: Arc<Mutex<Vec<LaunchSession>>>,
    agent: interstate_tools::agent::FakeAgent,
}

impl FakeAgent {
    /// Starts an agent on 127.0.0.2 with a fresh self-signed certificate, as agents ship.
    pub async fn start(behaviour: AgentBehaviour) -> Self {
        let agent = interstate_tools::agent::FakeAgent::start(AGENT_ADDR, behaviour).await;
        Self::from(agent.expect("start the fake agent on 127.0.0.2"))
    }

    /// Starts an agent at `addr` (another agent's address, once that one is dropped: a spoofer)
    /// with a fresh self-signed certificate.
    /// The dropped agent's listener closes once its task is cancelled, so the bind is retried
    /// for a moment.
    pub async fn start_at(addr: SocketAddr, behaviour: AgentBehaviour) -> Self {
        let mut tries = 0;
        loop {
            match interstate_tools::agent::FakeAgent::start(addr, behaviour.clone()).await {
                Ok(agent) => return Self::from(agent),
                Err(e) if tries >= 100 => panic!("start the fake agent on {addr}: {e}"),
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Starts an agent on 127.0.0.2 presenting `chain` (leaf first) with `key`.
    pub async fn start_with(
        behaviour: AgentBehaviour,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        let agent =
            interstate_tools::agent::FakeAgent::start_with(AGENT_ADDR, behaviour, chain, key).await;
        Self::from(agent.expect("start the fake agent on 127.0.0.2"))
    }

    /// Changes how later calls are answered.
    pub fn set(&self, behaviour: AgentBehaviour) {
        self.agent.set(behaviour);
    }

    /// The last `launch-session` received.
    pub fn last(&self) -> Option<LaunchSession> {
        self.agent.last()
    }
}

impl From<interstate_tools::agent::FakeAgent> for FakeAgent {
    fn from(agent: interstate_tools::agent::FakeAgent) -> Self {
        Self {
            addr: agent.addr,
            received: agent.received.clone(),
            agent,
        }
    }
}
