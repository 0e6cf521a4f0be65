//! The broker session: one per real `hello`, pure, with time passed in as unix milliseconds.
//!
//! The session never calls anything. [`Session::on_request`] returns a [`Step`]: either a reply,
//! or work for the caller (a mapper call), whose result the caller feeds back through the
//! matching `on_*` method, which returns the reply. Allocation may need one more round trip,
//! to the desktop's agent ([`AllocStep::Launch`] → [`Session::on_launch`]).
//!
//! ```text
//!  Created --password/dialog accepted--> Authenticated --allocation succeeded--> Allocated
//!     ^                                       |                                      |
//!     +------- rejected / new password -------+--------------------------------------+
//! ```
//!
//! The typed password is kept (as a [`Secret`], wiped on drop) from the password step until
//! the allocation succeeds, because the agent logon replays it; then it is dropped.

use crate::agent::{LaunchSession, LaunchSessionResp};
use crate::client::{
    AllocateResource, Authenticate, CAP_DIALOG_AUTHENTICATION, ClientRequest, Hello,
};
use crate::policy::{
    Allocation, AuthOutcome, ClientContext, Desktop, FieldAnswer, Identity, LaunchTarget,
    MapperError, PasswordLogin, RefusalKind, RejectionKind, Secret,
};
use crate::reply::{
    AllocateResp, AuthenticateResp, BrokerInfo, BrokerReply, DialogParameters, HelloResp,
    NextAuthentication, ResourceListResp,
};
use crate::result_id::{AllocResult, AuthResult, ErrorId, ListResult};

/// The `session-type` the broker sends to agents.
pub const SESSION_TYPE_UNSPECIFIED: &str = "UNSPECIFIED";

/// The protocol named in replies when the client named none.
pub const PROTOCOL_PCOIP: &str = "PCOIP";

/// Session lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A session unused for this long has expired.
    pub idle_ms: u64,
    /// A session this old has expired, however busy.
    pub absolute_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle_ms: 600_000,
            absolute_ms: 3_600_000,
        }
    }
}

/// The `hello-resp` for a probe or a real hello.
pub fn hello_reply(info: &BrokerInfo, domains: Vec<String>) -> BrokerReply {
    BrokerReply::Hello(HelloResp {
        broker_info: info.clone(),
        domains,
    })
}

/// Where a session is, as reported for tests and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// After `hello`; no user yet (or a failed attempt, or a dialog pending).
    Created,
    /// A user is authenticated.
    Authenticated,
    /// A desktop was allocated; the password is gone.
    Allocated,
}

/// What the caller does next for a request.
#[derive(Debug)]
pub enum Step {
    /// Send this reply.
    Reply(BrokerReply),
    /// Run `Mapper::authenticate`, then call [`Session::on_auth_outcome`].
    Authenticate(PasswordLogin),
    /// Run `Mapper::continue_authentication`, then call [`Session::on_auth_outcome`].
    ContinueAuthentication {
        /// The dialog state the mapper returned with its challenge.
        state: Secret,
        /// The user's answers.
        answers: Vec<FieldAnswer>,
    },
    /// Run `Mapper::list_desktops`, then call [`Session::on_desktops`].
    ListDesktops(Identity),
    /// Run `Mapper::allocate`, then call [`Session::on_allocation`].
    Allocate {
        /// The authenticated user.
        user: Identity,
        /// The desktop the client chose (one of the last listing).
        desktop_id: String,
    },
    /// `bye`: delete the session and send this reply.
    End(BrokerReply),
}

/// What the caller does after an allocation decision.
#[derive(Debug)]
pub enum AllocStep {
    /// Send this reply.
    Reply(BrokerReply),
    /// Send `launch-session` to the agent, then call [`Session::on_launch`].
    Launch(LaunchRequest),
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
}

/// The credentials typed at the password step.
#[derive(Debug)]
struct Login {
    password: Secret,
    domain: String,
}

/// Which step an authentication outcome answers; it decides the reply's `method` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthStep {
    Password,
    Dialog,
}

/// An allocation between `allocate-resource` and its reply.
#[derive(Debug)]
struct PendingAllocation {
    desktop: Desktop,
    request: AllocateResource,
    agent_host: Option<String>,
}

/// One broker session.
#[derive(Debug)]
pub struct Session {
    created_at: u64,
    last_seen: u64,
    client: ClientContext,
    caps: Vec<String>,
    phase: Phase,
    login: Option<Login>,
    awaiting: Option<AuthStep>,
    challenge: Option<Secret>,
    identity: Option<Identity>,
    listing: Vec<Desktop>,
    allocation: Option<PendingAllocation>,
}

impl Session {
    /// A session for a real (non-probe) `hello`. Empty fields of `client` are filled from the
    /// hello's `client-info`.
    pub fn new(hello: &Hello, client: ClientContext, now: u64) -> Session {
        let info = &hello.client_info;
        let fill = |value: String, from: &str| {
            if value.is_empty() {
                from.to_owned()
            } else {
                value
            }
        };
        let client = ClientContext {
            address: client.address,
            hostname: fill(client.hostname, &info.hostname),
            product_name: fill(client.product_name, &info.product_name),
            product_version: fill(client.product_version, &info.product_version),
            platform: fill(client.platform, &info.platform),
            locale: fill(client.locale, &info.locale),
            log_id: client.log_id,
        };
        Session {
            created_at: now,
            last_seen: now,
            client,
            caps: hello.caps.clone(),
            phase: Phase::Created,
            login: None,
            awaiting: None,
            challenge: None,
            identity: None,
            listing: Vec::new(),
            allocation: None,
        }
    }

    /// Where the session is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True once the session has been idle for `limits.idle_ms` or has lived for
    /// `limits.absolute_ms`.
    pub fn is_expired(&self, now: u64, limits: &Limits) -> bool {
        now.saturating_sub(self.last_seen) >= limits.idle_ms
            || now.saturating_sub(self.created_at) >= limits.absolute_ms
    }

    /// True while the session keeps the user's password.
    pub fn holds_password(&self) -> bool {
        self.login.is_some()
    }

    /// The client.
    pub fn client(&self) -> &ClientContext {
        &self.client
    }

    /// The authenticated user, if any.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// When the session was created (unix ms).
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// When the session was last used (unix ms).
    pub fn last_seen(&self) -> u64 {
        self.last_seen
    }

    /// Handles a request of this session.
    pub fn on_request(&mut self, request: ClientRequest, now: u64) -> Step {
        self.last_seen = now;
        match request {
            ClientRequest::Hello(_) => Step::Reply(BrokerReply::error(
                ErrorId::UnsupportedRequest,
                Some("hello is only valid at the start of a session".into()),
            )),
            ClientRequest::Unsupported { name } => Step::Reply(BrokerReply::error(
                ErrorId::UnsupportedRequest,
                Some(format!(
                    "the broker does not support <{}>",
                    printable(&name)
                )),
            )),
            ClientRequest::Bye => {
                self.forget_user();
                Step::End(BrokerReply::Bye)
            }
            ClientRequest::Authenticate(Authenticate::Password {
                username,
                password,
                domain,
            }) => {
                self.forget_user();
                self.login = Some(Login {
                    password: password.clone(),
                    domain: domain.clone(),
                });
                self.awaiting = Some(AuthStep::Password);
                Step::Authenticate(PasswordLogin {
                    username,
                    password,
                    domain,
                    client: self.client.clone(),
                })
            }
            ClientRequest::Authenticate(Authenticate::Dialog { answers, .. }) => {
                match (&self.challenge, &self.login) {
                    (Some(state), Some(_)) => {
                        self.awaiting = Some(AuthStep::Dialog);
                        Step::ContinueAuthentication {
                            state: state.clone(),
                            answers,
                        }
                    }
                    _ => Step::Reply(auth_reply(None, AuthResult::FailedUnexpectedMethod)),
                }
            }
            ClientRequest::Authenticate(Authenticate::Other { .. }) => {
                Step::Reply(auth_reply(None, AuthResult::FailedUnexpectedMethod))
            }
            ClientRequest::GetResourceList(_) => match (&self.phase, &self.identity) {
                (Phase::Authenticated | Phase::Allocated, Some(identity)) => {
                    Step::ListDesktops(identity.clone())
                }
                _ => Step::Reply(list_reply(ListResult::FailedNoUser, Vec::new())),
            },
            ClientRequest::AllocateResource(request) => self.allocate(request),
        }
    }

    /// Answers the authentication step started by [`Step::Authenticate`] or
    /// [`Step::ContinueAuthentication`].
    pub fn on_auth_outcome(
        &mut self,
        outcome: Result<AuthOutcome, MapperError>,
        now: u64,
    ) -> BrokerReply {
        self.last_seen = now;
        let step = self.awaiting.take();
        let method = match step {
            Some(AuthStep::Password) => Some("password".to_owned()),
            Some(AuthStep::Dialog) | None => None,
        };
        match outcome {
            Err(_) => BrokerReply::error(ErrorId::BrokerSysFailed, None),
            Ok(AuthOutcome::Accepted(identity)) => {
                self.challenge = None;
                self.identity = Some(identity);
                self.listing.clear();
                self.phase = Phase::Authenticated;
                auth_reply(method, AuthResult::SuccessfulAndComplete)
            }
            Ok(AuthOutcome::Rejected(rejection)) => {
                self.forget_user();
                let id = match rejection.kind {
                    // A wrong answer to a dialog (a one-time code): the client says "Wrong code".
                    // A mapper re-prompts with another challenge while attempts remain.
                    RejectionKind::BadCredentials if step == Some(AuthStep::Dialog) => {
                        AuthResult::FailedDialogInvalidUserEntry
                    }
                    RejectionKind::BadCredentials => AuthResult::FailedUnknownUsernameOrPassword,
                    RejectionKind::ExpiredPassword => AuthResult::FailedExpiredPassword,
                    RejectionKind::AccessDenied => AuthResult::FailedAccessDenied,
                    RejectionKind::NoResources => AuthResult::FailedUserHasNoResource,
                };
                auth_reply(method, id)
            }
            Ok(AuthOutcome::Challenge(dialog)) => {
                if !self.caps.iter().any(|cap| cap == CAP_DIALOG_AUTHENTICATION) {
                    self.forget_user();
                    return BrokerReply::Authenticate(AuthenticateResp {
                        method,
                        result_id: AuthResult::FailedAccessDenied,
                        result_str: "A second authentication step is required, but this PCoIP \
                                     client cannot show it. Please use a newer PCoIP client."
                            .into(),
                        next: None,
                    });
                }
                self.challenge = Some(dialog.state);
                BrokerReply::Authenticate(AuthenticateResp {
                    method,
                    result_id: AuthResult::SuccessfulAndIncomplete,
                    result_str: AuthResult::SuccessfulAndIncomplete.default_text().into(),
                    next: Some(NextAuthentication::Dialog(DialogParameters {
                        prompt: dialog.prompt,
                        error_text: dialog.error_text,
                        fields: dialog.fields,
                        buttons: Vec::new(),
                    })),
                })
            }
        }
    }

    /// Answers [`Step::ListDesktops`] and remembers the listing for `allocate-resource`.
    pub fn on_desktops(
        &mut self,
        desktops: Result<Vec<Desktop>, MapperError>,
        now: u64,
    ) -> BrokerReply {
        self.last_seen = now;
        match desktops {
            Err(_) => BrokerReply::error(ErrorId::BrokerSysFailed, None),
            Ok(desktops) if desktops.is_empty() => {
                self.listing.clear();
                list_reply(ListResult::FailedNoEntitlement, Vec::new())
            }
            Ok(mut desktops) => {
                // The broker answers `perform-operation` with ERR_UNSUPPORTED_REQUEST until the
                // mapper contract can carry an operation (WIT 0.2): offering one would give the
                // user a button that always fails.
                for desktop in &mut desktops {
                    desktop.operations.clear();
                }
                self.listing = desktops.clone();
                list_reply(ListResult::Successful, desktops)
            }
        }
    }

    /// Answers [`Step::Allocate`]: a reply, or a launch on the agent.
    pub fn on_allocation(
        &mut self,
        allocation: Result<Allocation, MapperError>,
        now: u64,
    ) -> AllocStep {
        self.last_seen = now;
        let Some(pending) = self.allocation.take() else {
            return AllocStep::Reply(alloc_failure(
                None,
                AllocResult::FailedToAllocateBroker,
                None,
            ));
        };
        let reply = |id: AllocResult, text: Option<&str>| {
            AllocStep::Reply(alloc_failure(Some(&pending.request), id, text))
        };
        match allocation {
            Err(_) => reply(AllocResult::FailedToAllocateBroker, None),
            Ok(Allocation::TryAgain(_)) => reply(AllocResult::PendingTryAgain, None),
            Ok(Allocation::Refused(kind, _)) => reply(
                match kind {
                    RefusalKind::UnknownDesktop => AllocResult::FailedInvalidParameter,
                    RefusalKind::NoLicense => AllocResult::FailedNoLicense,
                    RefusalKind::Unavailable => AllocResult::FailedToAllocateAgent,
                },
                None,
            ),
            Ok(Allocation::Direct(target)) => {
                if target.connect_tag.is_empty() {
                    return reply(
                        AllocResult::FailedToAllocateAgent,
                        Some("The broker could not prepare a session on the remote workstation."),
                    );
                }
                AllocStep::Reply(self.allocated(&pending.request, target))
            }
            Ok(Allocation::Launch(launch)) => {
                let (Some(identity), Some(login)) = (&self.identity, &self.login) else {
                    return reply(
                        AllocResult::FailedNoUser,
                        Some("Your login has expired. Please log in again."),
                    );
                };
                let agent_host = if launch.hostname.is_empty() {
                    pending.desktop.hostname.clone()
                } else {
                    launch.hostname
                };
                let domain = match launch.domain {
                    Some(domain) => domain,
                    None if !identity.domain.is_empty() => identity.domain.clone(),
                    None => login.domain.clone(),
                };
                let hostname = if pending.desktop.hostname.is_empty() {
                    agent_host.clone()
                } else {
                    pending.desktop.hostname.clone()
                };
                let request = LaunchRequest {
                    agent_port: launch.agent_port.or(pending.desktop.agent_port),
                    launch: LaunchSession {
                        session_type: SESSION_TYPE_UNSPECIFIED.into(),
                        ip_address: agent_host.clone(),
                        hostname,
                        username: launch.username.unwrap_or_else(|| identity.username.clone()),
                        password: login.password.clone(),
                        domain,
                        client_mac: pending.request.client_mac.clone(),
                        client_ip: pending.request.client_ip.clone(),
                        client_name: self.client.hostname.clone(),
                        license_path: None,
                        session_log_id: self.client.log_id.clone(),
                        time_zone_windows: Some(pending.request.time_zone_windows.clone())
                            .filter(|zone| !zone.is_empty()),
                    },
                    agent_host: agent_host.clone(),
                };
                self.allocation = Some(PendingAllocation {
                    agent_host: Some(agent_host),
                    ..pending
                });
                AllocStep::Launch(request)
            }
        }
    }

    /// Answers [`AllocStep::Launch`] with the agent's answer.
    pub fn on_launch(
        &mut self,
        launched: Result<LaunchSessionResp, AgentFailure>,
        now: u64,
    ) -> BrokerReply {
        self.last_seen = now;
        let Some(pending) = self.allocation.take() else {
            return alloc_failure(None, AllocResult::FailedToAllocateBroker, None);
        };
        let request = &pending.request;
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
                };
                return alloc_failure(
                    Some(request),
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
                return alloc_failure(
                    Some(request),
                    AllocResult::FailedToAllocateAgent,
                    Some("The desktop's PCoIP agent prepared no session."),
                );
            };
            let agent_host = pending.agent_host.clone().unwrap_or_default();
            let target = LaunchTarget {
                ip_address: if info.ip_address.is_empty() {
                    agent_host.clone()
                } else {
                    info.ip_address
                },
                hostname: if pending.desktop.hostname.is_empty() {
                    agent_host
                } else {
                    pending.desktop.hostname.clone()
                },
                sni: info.sni,
                port: info.port,
                session_id: info.session_id,
                connect_tag: info.session_tag,
            };
            return self.allocated(request, target);
        }
        let licence = resp.fail_reason.as_deref().is_some_and(|reason| {
            let reason = reason.to_ascii_lowercase();
            reason.contains("licence") || reason.contains("license")
        });
        if id.eq_ignore_ascii_case("FAILED_USER_AUTH") {
            alloc_failure(
                Some(request),
                AllocResult::FailedUnknownUsernameOrPassword,
                None,
            )
        } else if id.eq_ignore_ascii_case("FAILED_ANOTHER_SESSION_STARTED")
            || id.eq_ignore_ascii_case("FAILED_ANOTHER_SESION_STARTED")
        {
            alloc_failure(
                Some(request),
                AllocResult::FailedToAllocateAgent,
                Some("Another user is already logged in on this desktop."),
            )
        } else if licence {
            alloc_failure(Some(request), AllocResult::FailedNoLicense, None)
        } else {
            let text = format!(
                "The desktop's PCoIP agent refused to start a session ({}).",
                printable(id)
            );
            alloc_failure(
                Some(request),
                AllocResult::FailedToAllocateAgent,
                Some(&text),
            )
        }
    }

    fn allocate(&mut self, request: AllocateResource) -> Step {
        match self.phase {
            Phase::Created => {
                return Step::Reply(alloc_failure(
                    Some(&request),
                    AllocResult::FailedNoUser,
                    None,
                ));
            }
            Phase::Allocated => {
                return Step::Reply(alloc_failure(
                    Some(&request),
                    AllocResult::FailedNoUser,
                    Some("A desktop was already allocated in this session. Please log in again."),
                ));
            }
            Phase::Authenticated => {}
        }
        let Some(identity) = self.identity.clone() else {
            return Step::Reply(alloc_failure(
                Some(&request),
                AllocResult::FailedNoUser,
                None,
            ));
        };
        let Some(desktop) = self.listing.iter().find(|d| d.id == request.resource_id) else {
            return Step::Reply(alloc_failure(
                Some(&request),
                AllocResult::FailedInvalidParameter,
                None,
            ));
        };
        let desktop_id = request.resource_id.clone();
        self.allocation = Some(PendingAllocation {
            desktop: desktop.clone(),
            request,
            agent_host: None,
        });
        Step::Allocate {
            user: identity,
            desktop_id,
        }
    }

    /// Records a successful allocation: the password is dropped (and wiped).
    fn allocated(&mut self, request: &AllocateResource, target: LaunchTarget) -> BrokerReply {
        self.phase = Phase::Allocated;
        self.login = None;
        self.challenge = None;
        self.allocation = None;
        BrokerReply::Allocate(AllocateResp {
            result_id: AllocResult::Successful,
            result_str: AllocResult::Successful.default_text().into(),
            target: Some(target),
            resource_id: request.resource_id.clone(),
            protocol: reply_protocol(request),
        })
    }

    /// Back to `Created` with nothing of the user kept.
    fn forget_user(&mut self) {
        self.phase = Phase::Created;
        self.login = None;
        self.awaiting = None;
        self.challenge = None;
        self.identity = None;
        self.listing.clear();
        self.allocation = None;
    }
}

fn auth_reply(method: Option<String>, id: AuthResult) -> BrokerReply {
    BrokerReply::Authenticate(AuthenticateResp {
        method,
        result_id: id,
        result_str: id.default_text().into(),
        next: None,
    })
}

fn list_reply(id: ListResult, resources: Vec<Desktop>) -> BrokerReply {
    BrokerReply::ResourceList(ResourceListResp {
        result_id: id,
        result_str: id.default_text().into(),
        resources,
    })
}

fn alloc_failure(
    request: Option<&AllocateResource>,
    id: AllocResult,
    text: Option<&str>,
) -> BrokerReply {
    BrokerReply::Allocate(AllocateResp {
        result_id: id,
        result_str: text.unwrap_or(id.default_text()).into(),
        target: None,
        resource_id: request.map(|r| r.resource_id.clone()).unwrap_or_default(),
        protocol: request.map(reply_protocol).unwrap_or_default(),
    })
}

fn reply_protocol(request: &AllocateResource) -> String {
    if request.protocol.is_empty() {
        PROTOCOL_PCOIP.into()
    } else {
        request.protocol.clone()
    }
}

/// `10 s`, `2.5 s`.
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    }
}

/// A network-supplied token made safe to show: at most 64 characters of `[A-Za-z0-9_.:-]`.
fn printable(token: &str) -> String {
    token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        .take(64)
        .collect()
}
