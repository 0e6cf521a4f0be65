//! The broker session: one per real `hello`, pure, with time passed in as unix milliseconds.
//!
//! The session never calls anything. [`Session::on_request`] returns a [`Step`]: a reply, or
//! work for the caller (a mapper call) as a *pending* value that owns what the step took out of
//! the session. The caller runs the call and hands its result to the pending value's `finish`,
//! which consumes it, puts the session in its next state and returns the reply. So a result can
//! only be fed to the step that asked for it, and only once: an out-of-order call does not
//! compile. Allocation may need one more round trip, to the desktop's agent
//! ([`AllocStep::Launch`] → [`PendingLaunch::finish`]).
//!
//! ```text
//!  password ───────▶ [PendingLogin] ─────────┬─ rejected ──▶ Anonymous
//!  update-password ▶ [PendingPasswordChange] ┤  (changed: with the new password)
//!  dialog answer ──▶ [PendingDialog] ────────┤─ challenge ─▶ Challenged ─ dialog answer ─┐
//!  disclaimer ok ──▶ [PendingDialog] ────────┤─ disclaimer ▶ Disclaimed ─ accepted ──────┤
//!                      │ wrong code:          └─ accepted ──▶ Authenticated               │
//!                      └─▶ Challenged, the same dialog                                    │
//!                                                            (▲ each answer goes back up ─┘)
//!  Authenticated ─ allocate ─▶ [PendingAllocation] ─ launch ─▶ [PendingLaunch] ─▶ Allocated
//!  Authenticated or Allocated ─ list ─▶ [PendingListing] │ perform-operation ─▶ [PendingOperation]
//!  (both leave the session where it is);  bye or a new password step ─▶ Anonymous
//! ```
//!
//! The typed password is kept (as a [`Secret`], wiped on drop) from the password step until
//! the allocation succeeds, because the agent logon replays it; then it is dropped. After a
//! password change, the new password is the one kept.
//!
//! What the mapper can do ([`Capabilities`]) is passed with each request
//! ([`Session::on_request_with`]): without `operate`, listings carry no operations and
//! `perform-operation` is answered without a mapper call; without `change_password`,
//! `update-password` is answered `PSWD_UPDATE_FAILED_NOT_SUPPORTED`.
//!
//! - this module: [`Session`], its states and [`Session::on_request_with`];
//! - [`auth`]: the password, dialog and disclaimer steps;
//! - [`password`]: the `update-password` step;
//! - [`operation`]: the `perform-operation` step;
//! - [`alloc`]: listing, allocation and the agent's answer;
//! - `reply` (private): the replies the steps send.

use serde::{Deserialize, Serialize};

use crate::client::{AllocateResource, Authenticate, ClientRequest, Hello};
use crate::policy::{
    Capabilities, ClientContext, DEFAULT_BUTTON_ID, Desktop, Dialog, FieldAnswer, Identity,
    PasswordLogin, Secret, StepAnswer,
};
use crate::reply::{BrokerInfo, BrokerReply, HelloResp};
use crate::result_id::{AllocResult, AuthResult, ErrorId, ListResult};

pub mod alloc;
pub mod auth;
pub mod operation;
pub mod password;
mod record;
mod reply;

pub use alloc::{
    AgentFailure, AllocStep, LaunchRequest, PendingAllocation, PendingLaunch, PendingListing,
};
pub use auth::{PendingDialog, PendingLogin};
pub use operation::{OPERATION_TRY_AGAIN_TEXT, PendingOperation};
pub use password::PendingPasswordChange;
pub use record::{RecordError, SessionRecord};

use reply::{alloc_failure, auth_reply, list_reply, printable};

/// The `session-type` the broker sends to agents.
pub const SESSION_TYPE_UNSPECIFIED: &str = "UNSPECIFIED";

/// The protocol named in replies when the client named none.
pub const PROTOCOL_PCOIP: &str = "PCOIP";

/// Session lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A session unused for this long has expired.
    pub idle_ms: u64,
    /// A session nobody is logged in to, unused for this long, has expired (at most `idle_ms`).
    pub unauthenticated_ms: u64,
    /// A session this old has expired, however busy.
    pub absolute_ms: u64,
}

/// The `error-resp` for a message the broker does not handle.
pub fn unsupported(name: &str) -> BrokerReply {
    BrokerReply::error(
        ErrorId::UnsupportedRequest,
        Some(format!("the broker does not support <{}>", printable(name))),
    )
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle_ms: 600_000,
            unauthenticated_ms: 120_000,
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
    /// After `hello`; no user yet (or a failed attempt, or a dialog or disclaimer pending).
    Created,
    /// A user is authenticated.
    Authenticated,
    /// A desktop was allocated; the password is gone.
    Allocated,
}

/// What the caller does next for a request.
///
/// A step's result goes to that step, once. This compiles:
///
/// ```
/// use interstate_protocol::{AgentFailure, PendingLaunch, Session};
/// fn answer(session: &mut Session, launch: Box<PendingLaunch>) {
///     let _reply = launch.finish(session, Err(AgentFailure::Unreachable(String::new())), 0);
/// }
/// ```
///
/// feeding the same step a second answer does not:
///
/// ```compile_fail
/// use interstate_protocol::{AgentFailure, PendingLaunch, Session};
/// fn answer_twice(session: &mut Session, launch: Box<PendingLaunch>) {
///     let _first = launch.finish(session, Err(AgentFailure::Unreachable(String::new())), 0);
///     let _second = launch.finish(session, Err(AgentFailure::Unreachable(String::new())), 0);
/// }
/// ```
///
/// and nothing outside this crate can make a step the session did not hand out:
///
/// ```compile_fail
/// use interstate_protocol::PendingLaunch;
/// fn forge() -> PendingLaunch {
///     PendingLaunch { request: todo!(), taken: todo!() }
/// }
/// ```
///
/// The same holds for the 0.2 steps. A password change is answered once:
///
/// ```compile_fail
/// use interstate_protocol::policy::PasswordChangeOutcome;
/// use interstate_protocol::{PendingPasswordChange, Session};
/// fn answer_twice(session: &mut Session, change: PendingPasswordChange) {
///     let _first = change.finish(session, Ok(PasswordChangeOutcome::Unsupported), 0);
///     let _second = change.finish(session, Ok(PasswordChangeOutcome::Unsupported), 0);
/// }
/// ```
///
/// an operation the session did not check cannot be made up:
///
/// ```compile_fail
/// use interstate_protocol::PendingOperation;
/// use interstate_protocol::policy::{Identity, Operation};
/// fn forge() -> PendingOperation {
///     PendingOperation { user: Identity::default(), desktop_id: "any".into(), operation: Operation::PowerDown }
/// }
/// ```
///
/// and a dialog answer the failure limits refused is not also sent to the mapper:
///
/// ```compile_fail
/// use interstate_protocol::{PendingDialog, Session};
/// fn refuse_then_ask(session: &mut Session, answer: PendingDialog) {
///     let _refused = answer.refuse(session, 0);
///     let _asked = answer.finish(session, Err(todo!()), 0);
/// }
/// ```
#[derive(Debug)]
pub enum Step {
    /// Send this reply.
    Reply(BrokerReply),
    /// Run `Mapper::authenticate` with [`PendingLogin::login`], then [`PendingLogin::finish`].
    Authenticate(PendingLogin),
    /// Run `Mapper::continue_authentication` (a dialog answer or an accepted disclaimer), then
    /// [`PendingDialog::finish`].
    ContinueAuthentication(PendingDialog),
    /// Run `Mapper::change_password` with [`PendingPasswordChange::change`], then
    /// [`PendingPasswordChange::finish`].
    ChangePassword(PendingPasswordChange),
    /// Run `Mapper::operate`, then [`PendingOperation::finish`].
    Operate(PendingOperation),
    /// Run `Mapper::list_desktops`, then [`PendingListing::finish`].
    ListDesktops(PendingListing),
    /// Run `Mapper::allocate`, then [`PendingAllocation::finish`].
    Allocate(PendingAllocation),
    /// `bye`: delete the session and send this reply.
    End(BrokerReply),
}

impl Step {
    /// True while the step carries the user's password (it travels with the step until the
    /// step is finished, then returns to the session or is dropped).
    pub fn holds_password(&self) -> bool {
        matches!(
            self,
            Step::Authenticate(_)
                | Step::ContinueAuthentication(_)
                | Step::ChangePassword(_)
                | Step::Allocate(_)
        )
    }
}

/// The credentials typed at the password step (or set by a password change).
#[derive(Debug)]
pub(crate) struct Login {
    /// The user name as typed: the failure limits and the events name the user by it until
    /// the mapper accepts an identity.
    pub(crate) username: String,
    pub(crate) password: Secret,
    pub(crate) domain: String,
}

/// What a dialog that was shown accepts as its answer: the ids of its fields and buttons.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DialogShape {
    /// The field ids shown; `None` for a dialog recorded before the shape was kept, whose
    /// answers all pass.
    #[serde(default)]
    pub(crate) fields: Option<Vec<String>>,
    /// The button ids shown; empty for the default `ok` alone.
    #[serde(default)]
    pub(crate) buttons: Vec<String>,
}

impl DialogShape {
    /// The shape of `dialog`.
    pub(crate) fn of(dialog: &Dialog) -> Self {
        Self {
            fields: Some(dialog.fields.iter().map(|f| f.id.clone()).collect()),
            buttons: dialog.buttons.iter().map(|b| b.id.clone()).collect(),
        }
    }

    /// True when `button` is one the dialog showed.
    pub(crate) fn has_button(&self, button: &str) -> bool {
        if self.buttons.is_empty() {
            button == DEFAULT_BUTTON_ID
        } else {
            self.buttons.iter().any(|b| b == button)
        }
    }

    /// The answers for fields the dialog showed; the others are dropped.
    pub(crate) fn keep(&self, answers: Vec<FieldAnswer>) -> Vec<FieldAnswer> {
        match &self.fields {
            None => answers,
            Some(fields) => answers
                .into_iter()
                .filter(|answer| fields.contains(&answer.id))
                .collect(),
        }
    }
}

/// Where the session is, with exactly what each place needs.
#[derive(Debug, Default)]
pub(crate) enum State {
    /// After `hello`, a failed login or a `bye`: no user. Also while a step that started here
    /// (or took its state from here) is pending.
    #[default]
    Anonymous,
    /// The password passed; the mapper asked for a dialog, whose state it gave.
    Challenged {
        /// What was typed, kept for the agent logon.
        login: Login,
        /// The mapper's dialog state (never sent to the client).
        challenge: Secret,
        /// The fields and buttons the dialog showed.
        shape: DialogShape,
    },
    /// The mapper asked the user to accept a disclaimer first.
    Disclaimed {
        /// What was typed, kept for the agent logon.
        login: Login,
        /// The mapper's disclaimer state (never sent to the client).
        disclaimer: Secret,
    },
    /// A user is in.
    Authenticated {
        /// What was typed, kept for the agent logon.
        login: Login,
        /// Who.
        identity: Identity,
        /// The last listing: allocation takes one of these.
        listing: Vec<Desktop>,
    },
    /// A desktop was allocated; the password is gone.
    Allocated {
        /// Who.
        identity: Identity,
        /// The last listing.
        listing: Vec<Desktop>,
        /// The name of the desktop allocated last (for operators).
        desktop: String,
    },
}

/// One broker session.
#[derive(Debug)]
pub struct Session {
    created_at: u64,
    last_seen: u64,
    client: ClientContext,
    caps: Vec<String>,
    state: State,
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
            state: State::Anonymous,
        }
    }

    /// Where the session is.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Anonymous | State::Challenged { .. } | State::Disclaimed { .. } => {
                Phase::Created
            }
            State::Authenticated { .. } => Phase::Authenticated,
            State::Allocated { .. } => Phase::Allocated,
        }
    }

    /// True once the session has been idle for its idle limit (`limits.unauthenticated_ms`
    /// while nobody is logged in, else `limits.idle_ms`) or has lived for `limits.absolute_ms`.
    pub fn is_expired(&self, now: u64, limits: &Limits) -> bool {
        now >= self.expires_at(limits)
    }

    /// When the session expires if it is not used again (unix ms).
    pub fn expires_at(&self, limits: &Limits) -> u64 {
        let idle = if self.identity().is_some() {
            limits.idle_ms
        } else {
            limits.unauthenticated_ms.min(limits.idle_ms)
        };
        self.last_seen
            .saturating_add(idle)
            .min(self.created_at.saturating_add(limits.absolute_ms))
    }

    /// True while nobody is logged in to the session (a flood of hellos makes only these).
    pub fn is_unauthenticated(&self) -> bool {
        self.identity().is_none()
    }

    /// True while the session itself keeps the user's password (see also
    /// [`Step::holds_password`]).
    pub fn holds_password(&self) -> bool {
        matches!(
            self.state,
            State::Challenged { .. } | State::Disclaimed { .. } | State::Authenticated { .. }
        )
    }

    /// The user name typed at the password step (or the password change) while the session
    /// keeps that login: a dialog or disclaimer pending, or a user in who has not allocated.
    pub fn typed_username(&self) -> Option<&str> {
        match &self.state {
            State::Challenged { login, .. }
            | State::Disclaimed { login, .. }
            | State::Authenticated { login, .. } => Some(&login.username),
            State::Anonymous | State::Allocated { .. } => None,
        }
    }

    /// The client.
    pub fn client(&self) -> &ClientContext {
        &self.client
    }

    /// The authenticated user, if any.
    pub fn identity(&self) -> Option<&Identity> {
        match &self.state {
            State::Authenticated { identity, .. } | State::Allocated { identity, .. } => {
                Some(identity)
            }
            State::Anonymous | State::Challenged { .. } | State::Disclaimed { .. } => None,
        }
    }

    /// The name of the desktop allocated last, once one was.
    pub fn desktop(&self) -> Option<&str> {
        match &self.state {
            State::Allocated { desktop, .. } => Some(desktop),
            _ => None,
        }
    }

    /// When the session was created (unix ms).
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// When the session was last used (unix ms).
    pub fn last_seen(&self) -> u64 {
        self.last_seen
    }

    /// Handles a request of this session for a mapper with no capabilities beyond the 0.1
    /// contract (see [`Session::on_request_with`]).
    pub fn on_request(&mut self, request: ClientRequest, now: u64) -> Step {
        self.on_request_with(request, Capabilities::default(), now)
    }

    /// Handles a request of this session; `capabilities` are those of the mapper that will
    /// answer it.
    pub fn on_request_with(
        &mut self,
        request: ClientRequest,
        capabilities: Capabilities,
        now: u64,
    ) -> Step {
        self.last_seen = now;
        match request {
            ClientRequest::Hello(_) => Step::Reply(BrokerReply::error(
                ErrorId::UnsupportedRequest,
                Some("hello is only valid at the start of a session".into()),
            )),
            ClientRequest::Unsupported { name } => Step::Reply(unsupported(&name)),
            ClientRequest::Bye => {
                self.state = State::Anonymous;
                Step::End(BrokerReply::Bye)
            }
            ClientRequest::Authenticate(Authenticate::Password {
                username,
                password,
                domain,
            }) => {
                // A new password step starts over, whatever was before.
                self.state = State::Anonymous;
                Step::Authenticate(PendingLogin::new(
                    PasswordLogin {
                        username: username.clone(),
                        password: password.clone(),
                        domain: domain.clone(),
                        client: self.client.clone(),
                    },
                    Login {
                        username,
                        password,
                        domain,
                    },
                ))
            }
            ClientRequest::Authenticate(Authenticate::Dialog { answers, button_id }) => {
                self.dialog_answer(answers, button_id)
            }
            ClientRequest::Authenticate(Authenticate::Disclaimer { accepted }) => {
                self.disclaimer_answer(accepted, now)
            }
            ClientRequest::Authenticate(Authenticate::Other { .. }) => {
                Step::Reply(auth_reply(None, AuthResult::FailedUnexpectedMethod))
            }
            ClientRequest::GetResourceList(_) => match self.identity() {
                Some(identity) => {
                    Step::ListDesktops(PendingListing::new(identity.clone(), capabilities.operate))
                }
                None => Step::Reply(list_reply(ListResult::FailedNoUser, Vec::new())),
            },
            ClientRequest::AllocateResource(request) => self.allocate(request),
            ClientRequest::PerformOperation(request) => {
                operation::on_request(self, request, capabilities)
            }
            ClientRequest::UpdatePassword(request) => {
                password::on_request(self, request, capabilities)
            }
        }
    }

    /// An answer to a dialog: only while one is open, naming one of its buttons.
    fn dialog_answer(&mut self, answers: Vec<FieldAnswer>, button_id: Option<String>) -> Step {
        match std::mem::take(&mut self.state) {
            State::Challenged {
                login,
                challenge,
                shape,
            } => {
                let button_id = button_id.unwrap_or_else(|| DEFAULT_BUTTON_ID.to_owned());
                if !shape.has_button(&button_id) {
                    // The dialog stays open, and the mapper is not asked.
                    self.state = State::Challenged {
                        login,
                        challenge,
                        shape,
                    };
                    return Step::Reply(auth_reply(None, AuthResult::FailedInvalidFieldButtonId));
                }
                let answer = StepAnswer::Dialog {
                    fields: shape.keep(answers),
                    button_id,
                };
                Step::ContinueAuthentication(PendingDialog::dialog(login, challenge, shape, answer))
            }
            other => {
                self.state = other;
                Step::Reply(auth_reply(None, AuthResult::FailedUnexpectedMethod))
            }
        }
    }

    /// An answer to a disclaimer: only while one is shown. Declining ends the attempt without
    /// asking the mapper.
    fn disclaimer_answer(&mut self, accepted: bool, now: u64) -> Step {
        match std::mem::take(&mut self.state) {
            State::Disclaimed { login, disclaimer } if accepted => {
                Step::ContinueAuthentication(PendingDialog::disclaimer(login, disclaimer))
            }
            State::Disclaimed { .. } => {
                self.enter(State::Anonymous, now);
                Step::Reply(auth_reply(None, AuthResult::FailedDisclaimerRejected))
            }
            other => {
                self.state = other;
                Step::Reply(auth_reply(None, AuthResult::FailedUnexpectedMethod))
            }
        }
    }

    fn allocate(&mut self, request: AllocateResource) -> Step {
        let (id, text) = match std::mem::take(&mut self.state) {
            State::Authenticated {
                login,
                identity,
                listing,
            } => {
                let chosen = listing
                    .iter()
                    .find(|d| d.id == request.resource_id)
                    .cloned();
                if let Some(desktop) = chosen {
                    return Step::Allocate(PendingAllocation::new(
                        login, identity, listing, desktop, request,
                    ));
                }
                self.state = State::Authenticated {
                    login,
                    identity,
                    listing,
                };
                (AllocResult::FailedInvalidParameter, None)
            }
            other @ State::Allocated { .. } => {
                self.state = other;
                (
                    AllocResult::FailedNoUser,
                    Some("A desktop was already allocated in this session. Please log in again."),
                )
            }
            other => {
                self.state = other;
                (AllocResult::FailedNoUser, None)
            }
        };
        Step::Reply(alloc_failure(Some(&request), id, text))
    }

    /// Records that the session moved on; `finish` methods call it.
    pub(crate) fn enter(&mut self, state: State, now: u64) {
        self.state = state;
        self.last_seen = now;
    }

    /// Whether the client advertised `cap`.
    fn has_cap(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c == cap)
    }

    /// Whether the client can show a dialog.
    pub(crate) fn can_show_dialogs(&self) -> bool {
        self.has_cap(crate::client::CAP_DIALOG_AUTHENTICATION)
    }

    /// Whether the client can show a disclaimer.
    pub(crate) fn can_show_disclaimers(&self) -> bool {
        self.has_cap(crate::client::CAP_DISCLAIMER_AUTHENTICATION)
    }

    /// The listing of the current user's state, to update after a listing.
    pub(crate) fn listing_mut(&mut self) -> Option<&mut Vec<Desktop>> {
        match &mut self.state {
            State::Authenticated { listing, .. } | State::Allocated { listing, .. } => {
                Some(listing)
            }
            State::Anonymous | State::Challenged { .. } | State::Disclaimed { .. } => None,
        }
    }

    /// The user and the last listing, while a user is in.
    pub(crate) fn user_and_listing(&self) -> Option<(&Identity, &[Desktop])> {
        match &self.state {
            State::Authenticated {
                identity, listing, ..
            }
            | State::Allocated {
                identity, listing, ..
            } => Some((identity, listing)),
            State::Anonymous | State::Challenged { .. } | State::Disclaimed { .. } => None,
        }
    }
}
