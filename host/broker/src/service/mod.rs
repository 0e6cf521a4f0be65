//! The broker's HTTP service: one PCoIP request in, one XML answer out.
//!
//! ```text
//! POST /pcoip-broker/xml ─ body limit ─ decode ─┬ hello: probe → hello-resp (no session)
//!                                               │        real  → new session, Set-Cookie
//!                                               └ other: session (cookie | Client-Log-Id)
//!                                                        → Session::on_request → Step
//!                                                        → mapper / agent call → on_* → reply
//! ```
//! Every answer is HTTP 200 with a chunked XML body: protocol failures are `*-resp` failure ids
//! or `<error-resp>`, because a PCoIP client treats any other status as a transport error.
//!
//! - this module: the shared state ([`Broker`], [`Generation`]) and the routing ([`handle`]);
//! - `exchange`: one protocol exchange, driving the session through the mapper and the agent;
//! - `conversation`: the steps after the password (dialog answers, disclaimers), password
//!   changes and desktop operations;
//! - `response`: the HTTP answers (XML, plain text, the health page);
//! - `headers`: what the request's headers say (cookie, client address).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use interstate_protocol::policy::Mapper;
use interstate_protocol::{BrokerInfo, ErrorId, Limits, Root};
use tracing::{Instrument, debug, info_span};
use zeroize::{Zeroize, Zeroizing};

use crate::agent::Agent;
use crate::audit::Audit;
use crate::body::ChunkedBody;
use crate::clock::Clock;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::ratelimit::AuthLimiter;
use crate::settings::Settings;
use crate::store::{SessionStore, StoreLimits};

mod conversation;
mod exchange;
mod headers;
pub(crate) mod report;
mod response;
#[cfg(test)]
mod tests;

use exchange::Exchange;

/// The path PCoIP clients post to.
pub const BROKER_PATH: &str = "/pcoip-broker/xml";

/// What `hello-resp` says for a fact about the machine it does not disclose.
const NOT_SAID: &str = "N/A";

/// One configuration generation: settings, mapper and agent client. A reload builds a new one and
/// swaps it in; requests in flight keep the one they started with.
pub struct Generation {
    /// The settings it was built from.
    pub settings: Settings,
    /// The site policy.
    pub mapper: Arc<dyn Mapper>,
    /// The desktops' agents.
    pub agent: Arc<dyn Agent>,
    /// What `hello-resp` says about the broker.
    pub info: BrokerInfo,
    /// The mapper's domains, fetched once.
    pub domains: Vec<String>,
    /// `hello-resp` encoded once per root (it is the same for every client until a reload):
    /// probes and hellos, most of a broker's traffic, are answered without encoding.
    hello_bodies: [Bytes; 2],
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("origin", &self.settings.origin)
            .finish_non_exhaustive()
    }
}

impl Generation {
    /// Assembles a generation; `domains` come from the mapper.
    ///
    /// `hello-resp` answers anyone, before any login, so it says only what the operator wrote:
    /// the broker name (also as the host name unless `server.hostname` is set), never the
    /// machine's host name or operating system, which would help an attacker aim.
    pub fn new(settings: Settings, mapper: Arc<dyn Mapper>, agent: Arc<dyn Agent>) -> Self {
        let hostname = if settings.server.hostname.is_empty() {
            settings.server.broker_name.clone()
        } else {
            settings.server.hostname.clone()
        };
        let info = BrokerInfo {
            product_name: settings.server.broker_name.clone(),
            product_version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: NOT_SAID.to_owned(),
            locale: "en_US".to_owned(),
            ip_address: NOT_SAID.to_owned(),
            hostname,
        };
        let domains = mapper.domains();
        let hello = interstate_protocol::hello_reply(&info, domains.clone());
        let hello_bodies = [Root::PcoipClient, Root::PcoipBroker]
            .map(|root| Bytes::from(interstate_protocol::encode_reply(root, &hello)));
        Self {
            settings,
            mapper,
            agent,
            info,
            domains,
            hello_bodies,
        }
    }

    /// The encoded `hello-resp` in `root`.
    pub fn hello_body(&self, root: Root) -> Bytes {
        match root {
            Root::PcoipClient => self.hello_bodies[0].clone(),
            Root::PcoipBroker => self.hello_bodies[1].clone(),
        }
    }

    /// The session store's limits under these settings.
    pub fn store_limits(&self) -> StoreLimits {
        store_limits(&self.settings)
    }
}

/// The session store's limits under `settings`.
pub fn store_limits(settings: &Settings) -> StoreLimits {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    StoreLimits {
        max_sessions: settings.session.max_sessions,
        max_unauthenticated_per_address: settings.session.max_unauthenticated_per_address,
        lifetimes: Limits {
            idle_ms: ms(settings.session.idle_timeout),
            unauthenticated_ms: ms(settings.session.unauthenticated_timeout),
            absolute_ms: ms(settings.session.absolute_timeout),
        },
        // One mapper call and one agent call at most, and the store's own round trips.
        hold_ms: ms(settings.mapper.timeout)
            .saturating_add(ms(settings.agent.timeout))
            .saturating_add(5_000),
    }
}

/// State shared by every connection: the current generation, the sessions, the failure limits
/// and the clock.
#[derive(Debug)]
pub struct Broker {
    current: RwLock<Arc<Generation>>,
    store: Arc<dyn SessionStore>,
    limiter: AuthLimiter,
    clock: Clock,
    stats: Stats,
    audit: Arc<Audit>,
    metrics: Metrics,
    events: Events,
}

/// Counters for operators (and tests): what the broker did since it started.
#[derive(Debug, Default)]
pub struct Stats {
    /// Password logins sent to the mapper.
    pub mapper_logins: AtomicU64,
    /// Logins refused by the failure limits without a mapper call.
    pub rate_limited: AtomicU64,
    /// Sessions created.
    pub sessions_created: AtomicU64,
    /// Successful allocations.
    pub allocations: AtomicU64,
    /// Successful configuration reloads.
    pub reloads: AtomicU64,
    /// Launches refused because the agent's certificate differed from its pin (trust on first
    /// use): a spoofed desktop address, or an agent re-keyed without the operator's word.
    pub agent_certificate_refused: AtomicU64,
}

impl Broker {
    /// A broker serving `generation`, with sessions kept in `store` (whose limits are set from
    /// the generation's settings) and time read from `clock`.
    pub fn new(generation: Generation, store: Arc<dyn SessionStore>, clock: Clock) -> Self {
        Self::with_counter(
            generation,
            store,
            Arc::new(crate::ratelimit::MemoryCounter::default()),
            clock,
        )
    }

    /// A broker whose failure counts live in `counter` (the shared store's, across nodes).
    pub fn with_counter(
        generation: Generation,
        store: Arc<dyn SessionStore>,
        counter: Arc<dyn crate::ratelimit::AttemptCounter>,
        clock: Clock,
    ) -> Self {
        let limiter = AuthLimiter::with_counter(generation.settings.rate_limits, counter);
        // Standard error until `app::start` hands over the writer `logging.audit_file` names.
        let audit = Arc::new(Audit::to_writer(
            &generation.settings.node,
            Box::new(std::io::stderr()),
        ));
        store.set_limits(generation.store_limits());
        Self {
            current: RwLock::new(Arc::new(generation)),
            store,
            limiter,
            clock,
            stats: Stats::default(),
            audit,
            metrics: Metrics::new(),
            events: Events::default(),
        }
    }

    /// The same broker writing its audit records to `audit` (`logging.audit_file`).
    #[must_use]
    pub fn with_audit(mut self, audit: Arc<Audit>) -> Self {
        self.audit = audit;
        self
    }

    /// The audit log.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// The Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The operator feed events.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The authentication failure limiter.
    pub fn limiter(&self) -> &AuthLimiter {
        &self.limiter
    }

    /// The clock requests read their time from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The generation new requests use.
    pub fn current(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Makes `generation` current for new requests and applies its failure limits and session
    /// limits; sessions are kept.
    pub fn swap(&self, generation: Generation) {
        self.limiter.set_limits(generation.settings.rate_limits);
        self.store.set_limits(generation.store_limits());
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(generation);
    }

    /// The session store.
    pub fn store(&self) -> &dyn SessionStore {
        self.store.as_ref()
    }
}

/// The request body in a buffer that is wiped when dropped (an `authenticate` body holds the
/// password), and the received buffer wiped too when nothing else holds it. A buffer hyper still
/// shares (its read buffer) is overwritten by the next request or freed with the connection.
fn take_wiping(body: Bytes) -> Zeroizing<Vec<u8>> {
    match body.try_into_mut() {
        Ok(mut unique) => {
            let copy = Zeroizing::new(unique.to_vec());
            unique.as_mut().zeroize();
            copy
        }
        Err(shared) => Zeroizing::new(shared.to_vec()),
    }
}

/// Handles one HTTP request from a client connected from `peer`.
pub async fn handle<B>(
    broker: Arc<Broker>,
    peer: SocketAddr,
    request: Request<B>,
) -> Result<Response<ChunkedBody>, Infallible>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = request.uri().path();
    if path != BROKER_PATH {
        return Ok(response::plain(StatusCode::NOT_FOUND, "not found\n"));
    }
    match *request.method() {
        Method::POST => {}
        Method::GET | Method::HEAD => return Ok(response::health_page(&broker.current())),
        _ => {
            return Ok(response::plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST PCoIP broker messages here\n",
            ));
        }
    }

    let generation = broker.current();
    let log_id = headers::header_str(request.headers(), "client-log-id")
        .unwrap_or_default()
        .to_owned();
    // With fallback sessions a log id finds a session, so it is a credential: log its hash.
    let logged_id = if generation.settings.server.fallback_sessions {
        headers::log_id_hash(&log_id)
    } else {
        log_id.clone()
    };
    let span = info_span!("request", client_log_id = %logged_id, peer = %peer.ip());
    async move {
        let client_ip = headers::client_address(&generation.settings, peer.ip(), request.headers());
        let cookie = headers::session_cookie(request.headers());
        let limit = generation.settings.server.body_limit_bytes;
        let declared = headers::header_str(request.headers(), "content-length")
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Ok(response::too_large(limit));
        }
        let body = match Limited::new(request.into_body(), limit).collect().await {
            Ok(collected) => take_wiping(collected.to_bytes()),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    return Ok(response::too_large(limit));
                }
                debug!(error = %e, "request body could not be read");
                return Ok(response::xml_error(
                    Root::PcoipClient,
                    ErrorId::InvalidMsgFormat,
                    "the request body could not be read",
                    None,
                    true,
                ));
            }
        };
        let exchange = Exchange {
            broker: &broker,
            generation: &generation,
            client_ip,
            log_id: &log_id,
            cookie,
            now: broker.clock.now_ms(),
        };
        Ok(exchange.run(&body).await)
    }
    .instrument(span)
    .await
}
