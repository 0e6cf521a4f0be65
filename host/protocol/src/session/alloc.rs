//! Listing, allocation, and the agent's answer to `launch-session`.

use super::reply::{alloc_failure, list_reply, printable, seconds};
use super::{Login, SESSION_TYPE_UNSPECIFIED, Session, State};
use crate::agent::{LaunchSession, LaunchSessionResp};
use crate::client::AllocateResource;
use crate::policy::{Allocation, Desktop, Identity, LaunchTarget, MapperError, RefusalKind};
use crate::reply::{AllocateResp, BrokerReply};
use crate::result_id::{AllocResult, ErrorId, ListResult};

/// A listing waiting for the mapper's `list_desktops`.
#[derive(Debug)]
pub struct PendingListing {
    user: Identity,
    keep_operations: bool,
}

impl PendingListing {
    /// `keep_operations`: the mapper can operate, so the desktops keep their operations.
    pub(super) fn new(user: Identity, keep_operations: bool) -> Self {
        Self {
            user,
            keep_operations,
        }
    }

    /// Whose desktops.
    pub fn user(&self) -> &Identity {
        &self.user
    }

    /// The mapper's answer: the listing is remembered for `allocate-resource`.
    pub fn finish(
        self,
        session: &mut Session,
        desktops: Result<Vec<Desktop>, MapperError>,
        now: u64,
    ) -> BrokerReply {
        session.last_seen = now;
        let mut desktops = match desktops {
            Err(_) => return BrokerReply::error(ErrorId::BrokerSysFailed, None),
            Ok(desktops) => desktops,
        };
        // A mapper that cannot operate (a 0.1 component) offers no operation: a button that
        // always fails helps nobody.
        if !self.keep_operations {
            for desktop in &mut desktops {
                desktop.operations.clear();
            }
        }
        if let Some(listing) = session.listing_mut() {
            listing.clone_from(&desktops);
        }
        if desktops.is_empty() {
            list_reply(ListResult::FailedNoEntitlement, Vec::new())
        } else {
            list_reply(ListResult::Successful, desktops)
        }
    }
}

/// What an allocation took out of the authenticated session; it goes back unless the
/// allocation succeeds.
#[derive(Debug)]
struct Taken {
    login: Login,
    identity: Identity,
    listing: Vec<Desktop>,
    desktop: Desktop,
    request: AllocateResource,
}

impl Taken {
    /// Back to `Authenticated` with `reply`.
    fn restore(self, session: &mut Session, reply: BrokerReply, now: u64) -> BrokerReply {
        session.enter(
            State::Authenticated {
                login: self.login,
                identity: self.identity,
                listing: self.listing,
            },
            now,
        );
        reply
    }

    /// A failure reply for this allocation, back to `Authenticated`.
    fn fail(
        self,
        session: &mut Session,
        id: AllocResult,
        text: Option<&str>,
        now: u64,
    ) -> BrokerReply {
        let reply = alloc_failure(Some(&self.request), id, text);
        self.restore(session, reply, now)
    }

    /// Success: the password is dropped (and wiped), and the client gets `target`.
    fn allocated(self, session: &mut Session, target: LaunchTarget, now: u64) -> BrokerReply {
        let reply = BrokerReply::Allocate(AllocateResp {
            result_id: AllocResult::Successful,
            result_str: AllocResult::Successful.default_text().into(),
            target: Some(target),
            resource_id: self.request.resource_id.clone(),
            protocol: super::reply::reply_protocol(&self.request),
        });
        session.enter(
            State::Allocated {
                identity: self.identity,
                listing: self.listing,
                desktop: self.desktop.name,
            },
            now,
        );
        reply
    }
}

/// An allocation waiting for the mapper's `allocate`.
#[derive(Debug)]
pub struct PendingAllocation {
    taken: Taken,
}

/// What the caller does after an allocation decision.
#[derive(Debug)]
pub enum AllocStep {
    /// Send this reply.
    Reply(BrokerReply),
    /// Send `launch-session` to the agent, then [`PendingLaunch::finish`].
    Launch(Box<PendingLaunch>),
}

impl PendingAllocation {
    /// `desktop` is the one of `listing` that `request` names.
    pub(super) fn new(
        login: Login,
        identity: Identity,
        listing: Vec<Desktop>,
        desktop: Desktop,
        request: AllocateResource,
    ) -> Self {
        Self {
            taken: Taken {
                login,
                identity,
                listing,
                desktop,
                request,
            },
        }
    }

    /// Who.
    pub fn user(&self) -> &Identity {
        &self.taken.identity
    }

    /// The desktop the client chose (one of the last listing).
    pub fn desktop_id(&self) -> &str {
        &self.taken.request.resource_id
    }

    /// The mapper's decision: a reply, or a launch on the agent.
    pub fn finish(
        self,
        session: &mut Session,
        allocation: Result<Allocation, MapperError>,
        now: u64,
    ) -> AllocStep {
        let taken = self.taken;
        let failed = |taken: Taken, session: &mut Session, id, text| {
            AllocStep::Reply(taken.fail(session, id, text, now))
        };
        match allocation {
            Err(_) => failed(taken, session, AllocResult::FailedToAllocateBroker, None),
            Ok(Allocation::TryAgain(_)) => {
                failed(taken, session, AllocResult::PendingTryAgain, None)
            }
            Ok(Allocation::Refused(kind, _)) => {
                let id = match kind {
                    RefusalKind::UnknownDesktop => AllocResult::FailedInvalidParameter,
                    RefusalKind::NoLicense => AllocResult::FailedNoLicense,
                    RefusalKind::Unavailable => AllocResult::FailedToAllocateAgent,
                };
                failed(taken, session, id, None)
            }
            Ok(Allocation::Direct(target)) if target.connect_tag.is_empty() => failed(
                taken,
                session,
                AllocResult::FailedToAllocateAgent,
                Some("The broker could not prepare a session on the remote workstation."),
            ),
            Ok(Allocation::Direct(target)) => {
                AllocStep::Reply(taken.allocated(session, target, now))
            }
            Ok(Allocation::Launch(launch)) => {
                session.last_seen = now;
                let desktop = &taken.desktop;
                let agent_host = if launch.hostname.is_empty() {
                    desktop.hostname.clone()
                } else {
                    launch.hostname
                };
                let domain = match launch.domain {
                    Some(domain) => domain,
                    None if !taken.identity.domain.is_empty() => taken.identity.domain.clone(),
                    None => taken.login.domain.clone(),
                };
                let hostname = if desktop.hostname.is_empty() {
                    agent_host.clone()
                } else {
                    desktop.hostname.clone()
                };
                let client = session.client();
                let request = LaunchRequest {
                    agent_port: launch.agent_port.or(desktop.agent_port),
                    launch: LaunchSession {
                        session_type: SESSION_TYPE_UNSPECIFIED.into(),
                        ip_address: agent_host.clone(),
                        hostname,
                        username: launch
                            .username
                            .unwrap_or_else(|| taken.identity.username.clone()),
                        password: taken.login.password.clone(),
                        domain,
                        client_mac: taken.request.client_mac.clone(),
                        client_ip: taken.request.client_ip.clone(),
                        client_name: client.hostname.clone(),
                        license_path: None,
                        session_log_id: client.log_id.clone(),
                        time_zone_windows: Some(taken.request.time_zone_windows.clone())
                            .filter(|zone| !zone.is_empty()),
                    },
                    agent_host,
                };
                AllocStep::Launch(Box::new(PendingLaunch { request, taken }))
            }
        }
    }
}

/// A `launch-session` to send to an agent.
#[derive(Debug)]
pub struct LaunchRequest {
    /// The agent's host.
    pub agent_host: String,
    /// The agent's port; `None` means the caller's default (60443).
    pub agent_port: Option<u16>,
    /// The request; the caller may set `license_path`.
    pub launch: LaunchSession,
}

/// Why the agent call produced no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentFailure {
    /// No answer within the deadline.
    Timeout {
        /// The deadline that passed.
        after_ms: u64,
    },
    /// No connection (DNS, TCP, TLS); the text is for the log.
    Unreachable(String),
    /// An answer that was not a `launch-session-resp`; the text is for the log.
    BadResponse(String),
    /// Never called: the host is not a valid host name, or outside `agent.allowed_hosts`;
    /// the text is for the log.
    Refused(String),
    /// The agent presented a certificate other than the one pinned for its address (trust on
    /// first use): the connection was closed before `launch-session`, so before the password,
    /// was written; the text is for the log.
    CertificateChanged(String),
}

/// A launch waiting for the agent's answer.
#[derive(Debug)]
pub struct PendingLaunch {
    request: LaunchRequest,
    taken: Taken,
}

impl PendingLaunch {
    /// What to send to the agent.
    pub fn request(&self) -> &LaunchRequest {
        &self.request
    }

    /// What to send, to complete (a licence path).
    pub fn request_mut(&mut self) -> &mut LaunchRequest {
        &mut self.request
    }

    /// The agent's answer, mapped onto ids the client knows (the agent's own ids never reach
    /// the client). Success drops the password.
    pub fn finish(
        self: Box<Self>,
        session: &mut Session,
        launched: Result<LaunchSessionResp, AgentFailure>,
        now: u64,
    ) -> BrokerReply {
        let Self { request, taken } = *self;
        let agent_host = request.agent_host;
        let fail = |taken: Taken, session: &mut Session, id, text: Option<&str>| {
            taken.fail(session, id, text, now)
        };
        let resp = match launched {
            Ok(resp) => resp,
            Err(failure) => {
                let text = match failure {
                    AgentFailure::Timeout { after_ms } => format!(
                        "The desktop's PCoIP agent did not answer within {}.",
                        seconds(after_ms)
                    ),
                    AgentFailure::Unreachable(_) => {
                        "The broker could not reach the desktop's PCoIP agent.".to_owned()
                    }
                    AgentFailure::BadResponse(_) => {
                        "The desktop's PCoIP agent sent an answer the broker could not read."
                            .to_owned()
                    }
                    AgentFailure::Refused(_) => {
                        "The broker does not start sessions on this desktop.".to_owned()
                    }
                    AgentFailure::CertificateChanged(_) => {
                        "The desktop's PCoIP agent presented a different certificate than before; the broker did not send your password. Ask your administrator."
                            .to_owned()
                    }
                };
                return fail(
                    taken,
                    session,
                    AllocResult::FailedToAllocateAgent,
                    Some(&text),
                );
            }
        };
        let id = resp.result_id.trim();
        if id.eq_ignore_ascii_case("SUCCESSFUL") {
            let Some(info) = resp
                .session_info
                .filter(|info| !info.session_tag.is_empty())
            else {
                return fail(
                    taken,
                    session,
                    AllocResult::FailedToAllocateAgent,
                    Some("The desktop's PCoIP agent prepared no session."),
                );
            };
            let target = LaunchTarget {
                ip_address: if info.ip_address.is_empty() {
                    agent_host.clone()
                } else {
                    info.ip_address
                },
                hostname: if taken.desktop.hostname.is_empty() {
                    agent_host
                } else {
                    taken.desktop.hostname.clone()
                },
                sni: info.sni,
                port: info.port,
                session_id: info.session_id,
                connect_tag: info.session_tag,
            };
            return taken.allocated(session, target, now);
        }
        let licence = resp.fail_reason.as_deref().is_some_and(|reason| {
            let reason = reason.to_ascii_lowercase();
            reason.contains("licence") || reason.contains("license")
        });
        if id.eq_ignore_ascii_case("FAILED_USER_AUTH") {
            fail(
                taken,
                session,
                AllocResult::FailedUnknownUsernameOrPassword,
                None,
            )
        } else if id.eq_ignore_ascii_case("FAILED_ANOTHER_SESSION_STARTED")
            || id.eq_ignore_ascii_case("FAILED_ANOTHER_SESION_STARTED")
        {
            fail(
                taken,
                session,
                AllocResult::FailedToAllocateAgent,
                Some("Another user is already logged in on this desktop."),
            )
        } else if licence {
            fail(taken, session, AllocResult::FailedNoLicense, None)
        } else {
            let text = format!(
                "The desktop's PCoIP agent refused to start a session ({}).",
                printable(id)
            );
            fail(
                taken,
                session,
                AllocResult::FailedToAllocateAgent,
                Some(&text),
            )
        }
    }
}
