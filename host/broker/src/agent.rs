//! The call to a desktop's PCoIP agent: `POST https://<host>:60443/pcoip-agent/xml` with
//! `launch-session`.
//!
//! Agents ship self-signed certificates, so by default the broker trusts on first use
//! (`agent.tls.verify: "tofu"`): the first certificate an agent (`host:port`) presents is pinned
//! in the session store's [`PinStore`], and a different one later is refused after the
//! handshake, before the request (which carries the user's password) is written. Operators can
//! instead require a private CA, pin fingerprints in the settings, or turn checks off. One
//! connection per call: launches are rare and go to many different hosts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use interstate_protocol::{
    AgentFailure, LaunchRequest, LaunchSessionResp, decode_launch_session_resp,
    encode_launch_session,
};
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::settings::{AgentConfig, AgentFence, AgentVerify, is_host_name};
use crate::store::{PinStore, pin_key};
use crate::verify::{ClientConfigError, Verification, client_config};

/// Asks a desktop's PCoIP agent to prepare a session: the broker's one outgoing call. The
/// HTTPS [`AgentClient`] is the implementation the broker serves with.
pub trait Agent: Send + Sync + std::fmt::Debug {
    /// Sends `launch-session` and returns the agent's answer, or why there is none.
    fn launch<'a>(
        &'a self,
        request: &'a LaunchRequest,
    ) -> BoxFuture<'a, Result<LaunchSessionResp, AgentFailure>>;
}

/// Largest agent answer read.
const MAX_AGENT_RESPONSE: usize = 64 * 1024;

/// Why the agent client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentSetupError {
    /// The CA file could not be read or holds no certificate.
    #[error("agent.tls.ca_file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("agent TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Calls agents. Cheap to clone.
#[derive(Clone)]
pub struct AgentClient {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
    default_port: u16,
    /// `agent.allowed_hosts`; `None`, anywhere.
    fence: Option<AgentFence>,
    /// Trust on first use: where the pins are. `None` in the other modes.
    tofu: Option<Arc<dyn PinStore>>,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("timeout", &self.timeout)
            .field("default_port", &self.default_port)
            .field("fence", &self.fence)
            .field("tofu", &self.tofu.is_some())
            .finish_non_exhaustive()
    }
}

impl AgentClient {
    /// Builds the client from the `agent` settings; with trust on first use, pins are kept in
    /// `pins` (the session store, the same object across reloads).
    pub fn new(config: &AgentConfig, pins: Arc<dyn PinStore>) -> Result<Self, AgentSetupError> {
        let verification = match &config.verify {
            // Any certificate during the handshake (its signature is still checked); the leaf is
            // compared with the pin after the handshake, before anything is written.
            AgentVerify::Tofu | AgentVerify::Off => Verification::DangerAcceptAny,
            AgentVerify::Pinned(pins) => Verification::Pinned(pins.clone()),
            AgentVerify::Ca(path) => Verification::CaFile(path.clone()),
        };
        let tls = client_config(&verification).map_err(|e| match e {
            ClientConfigError::CaFile { path, source } => AgentSetupError::CaFile {
                path: path.display().to_string(),
                message: source.to_string(),
            },
            ClientConfigError::Rustls(e) => AgentSetupError::Rustls(e),
            other => AgentSetupError::Rustls(rustls::Error::General(other.to_string())),
        })?;
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            timeout: config.timeout,
            default_port: config.port,
            fence: config.allowed_hosts.clone(),
            tofu: matches!(config.verify, AgentVerify::Tofu).then_some(pins),
        })
    }

    /// Sends `launch-session` and decodes the answer, within the deadline.
    pub async fn launch(&self, request: &LaunchRequest) -> Result<LaunchSessionResp, AgentFailure> {
        let started = Instant::now();
        match tokio::time::timeout(self.timeout, self.launch_inner(request)).await {
            Ok(result) => result,
            Err(_) => Err(AgentFailure::Timeout {
                after_ms: elapsed_ms(started),
            }),
        }
    }

    async fn launch_inner(
        &self,
        request: &LaunchRequest,
    ) -> Result<LaunchSessionResp, AgentFailure> {
        let host = request
            .agent_host
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = request.agent_port.unwrap_or(self.default_port);
        let addrs = self.checked_addresses(host, port).await?;
        let tcp = TcpStream::connect(addrs.as_slice()).await.map_err(|e| {
            AgentFailure::Unreachable(format!("cannot connect to {host}:{port}: {e}"))
        })?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| AgentFailure::Unreachable(format!("{host:?} is not a valid host name")))?;
        let tls = self.tls.connect(name, tcp).await.map_err(|e| {
            AgentFailure::Unreachable(format!("TLS handshake with {host}:{port} failed: {e}"))
        })?;
        if let Some(pins) = &self.tofu {
            let leaf = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| -> [u8; 32] { Sha256::digest(cert.as_ref()).into() });
            if let Err(failure) = check_pin(pins.as_ref(), &pin_key(host, port), leaf).await {
                // Dropping the stream closes the connection: nothing was written.
                drop(tls);
                return Err(failure);
            }
        }
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| AgentFailure::Unreachable(format!("HTTP to {host}:{port} failed: {e}")))?;
        let driver = tokio::spawn(connection);

        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        // The body carries the user's password: its buffer is wiped when hyper lets go of it.
        let body = Bytes::from_owner(Zeroizing::new(encode_launch_session(&request.launch)));
        let http_request = http::Request::post("/pcoip-agent/xml")
            .header(http::header::HOST, authority)
            .header(http::header::CONTENT_TYPE, "application/xml; charset=UTF-8")
            .header(
                http::header::USER_AGENT,
                concat!("Interstate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|e| AgentFailure::BadResponse(format!("cannot build the request: {e}")))?;
        let response = sender.send_request(http_request).await.map_err(|e| {
            AgentFailure::BadResponse(format!("no HTTP answer from {host}:{port}: {e}"))
        })?;
        let status = response.status();
        let collected = Limited::new(response.into_body(), MAX_AGENT_RESPONSE)
            .collect()
            .await
            .map_err(|e| {
                AgentFailure::BadResponse(format!("reading the answer of {host}:{port}: {e}"))
            })?;
        driver.abort();
        if status != http::StatusCode::OK {
            return Err(AgentFailure::BadResponse(format!(
                "{host}:{port} answered HTTP {status}"
            )));
        }
        decode_launch_session_resp(&collected.to_bytes()).map_err(|e| {
            AgentFailure::BadResponse(format!(
                "{host}:{port} sent an unreadable launch-session-resp: {e}"
            ))
        })
    }
}

impl AgentClient {
    /// The addresses to connect to for `host`, once its syntax is checked and, with
    /// `agent.allowed_hosts`, once it is inside the fence: an address literal must be in a
    /// block; a name must match a name entry, or every address it resolves to must be in a
    /// block. The connection then goes to these addresses, never to a second resolution.
    async fn checked_addresses(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, AgentFailure> {
        let refuse = |why: String| {
            tracing::warn!(agent = %host, port, reason = %why, "agent launch refused, nothing sent");
            AgentFailure::Refused(why)
        };
        let literal = host.parse::<IpAddr>().ok();
        if literal.is_none() && !is_host_name(host) {
            return Err(refuse(format!(
                "{host:?} is neither an IP address nor a valid host name"
            )));
        }
        let addrs: Vec<SocketAddr> = match literal {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| AgentFailure::Unreachable(format!("cannot resolve {host}: {e}")))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(AgentFailure::Unreachable(format!(
                "{host} resolves to no address"
            )));
        }
        if let Some(fence) = &self.fence {
            let allowed = match literal {
                Some(ip) => fence.allows_ip(ip),
                None => {
                    fence.allows_name(host) || addrs.iter().all(|addr| fence.allows_ip(addr.ip()))
                }
            };
            if !allowed {
                return Err(refuse(format!("{host} is outside agent.allowed_hosts")));
            }
        }
        Ok(addrs)
    }
}

/// Trust on first use: `leaf` (the SHA-256 of the certificate `agent` just presented) against
/// its pin. No pin yet: `leaf` becomes the pin. The same: go on. Another: refused, with a
/// warning naming both fingerprints.
pub async fn check_pin(
    pins: &dyn PinStore,
    agent: &str,
    leaf: Option<[u8; 32]>,
) -> Result<(), AgentFailure> {
    let Some(leaf) = leaf else {
        return Err(AgentFailure::Unreachable(format!(
            "{agent} presented no certificate"
        )));
    };
    let pinned = pins.pin_if_absent(agent, leaf).await.map_err(|e| {
        // Fail closed: without the pin, nothing is sent to whoever answers.
        AgentFailure::Unreachable(format!("the pin of {agent} could not be read: {e}"))
    })?;
    match pinned {
        None => {
            tracing::info!(%agent, fingerprint = %hex::encode(leaf), "agent certificate pinned on first use");
            Ok(())
        }
        Some(pinned) if pinned == leaf => Ok(()),
        Some(pinned) => {
            let (old, new) = (hex::encode(pinned), hex::encode(leaf));
            tracing::warn!(
                %agent,
                pinned = %old,
                presented = %new,
                "agent certificate differs from its pin; launch refused, nothing sent (if the agent was legitimately re-keyed: interstate agent trust)"
            );
            Err(AgentFailure::CertificateChanged(format!(
                "{agent} presented certificate {new}, pinned {old}"
            )))
        }
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Agent for AgentClient {
    fn launch<'a>(
        &'a self,
        request: &'a LaunchRequest,
    ) -> BoxFuture<'a, Result<LaunchSessionResp, AgentFailure>> {
        Box::pin(AgentClient::launch(self, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, StoreLimits};
    use interstate_protocol::Limits;

    #[tokio::test]
    async fn the_first_certificate_is_pinned_and_another_is_refused() {
        let store = MemoryStore::new(StoreLimits {
            max_sessions: 1,
            max_unauthenticated_per_address: 1,
            lifetimes: Limits {
                idle_ms: 1,
                unauthenticated_ms: 1,
                absolute_ms: 1,
            },
            hold_ms: 30_000,
        });
        check_pin(&store, "ws1:60443", Some([1; 32])).await.unwrap();
        check_pin(&store, "ws1:60443", Some([1; 32])).await.unwrap();
        let refused = check_pin(&store, "ws1:60443", Some([2; 32])).await;
        match refused {
            Err(AgentFailure::CertificateChanged(text)) => {
                assert!(text.contains(&hex::encode([2u8; 32])), "{text}");
                assert!(text.contains(&hex::encode([1u8; 32])), "{text}");
            }
            other => panic!("{other:?}"),
        }
        // The refused certificate did not replace the pin.
        assert_eq!(store.pin("ws1:60443").await.ok().flatten(), Some([1; 32]));
        // Another address pins on its own.
        check_pin(&store, "ws2:60443", Some([2; 32])).await.unwrap();
        assert!(matches!(
            check_pin(&store, "ws3:60443", None).await,
            Err(AgentFailure::Unreachable(_))
        ));
        // The operator forgets the pin: the next certificate is pinned.
        store.set_pin("ws1:60443", None).await.ok();
        check_pin(&store, "ws1:60443", Some([2; 32])).await.unwrap();
    }
}
