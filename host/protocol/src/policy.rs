//! The seam between the broker and site policy.
//!
//! These types mirror the records of `wit/mapper.wit` in plain Rust, so that the session state
//! machine and the broker service never see wasmtime. `interstate-mapper` implements [`Mapper`]
//! for WebAssembly components and converts its generated bindings to and from these types at the
//! edge; tests may implement it directly.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use zeroize::Zeroizing;

/// A boxed, sendable future: what [`Mapper`] methods return, so that the trait stays
/// object-safe (`Arc<dyn Mapper>` is swapped atomically on reload).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A secret string (a password, a one-time code): wiped from memory when dropped and never
/// printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret itself. Call sites should be few and obvious.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Serialized as the plain string: only for a session record that is sealed before it leaves the
/// process (the broker's session store).
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// What the broker knows about the connecting client (WIT `client-info`). Every field comes
/// from the network; empty when unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientContext {
    /// The client's address as the broker saw it (after trusted `X-Forwarded-For`).
    pub address: String,
    /// The client's host name from `hello`.
    pub hostname: String,
    /// The client product name from `hello`.
    pub product_name: String,
    /// The client product version from `hello`.
    pub product_version: String,
    /// The client platform from `hello`.
    pub platform: String,
    /// The client locale from `hello`.
    pub locale: String,
    /// The `Client-Log-Id` header, for log correlation.
    pub log_id: String,
}

/// A password login as the client sent it (WIT `password-login`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordLogin {
    /// The user name as typed.
    pub username: String,
    /// The password as typed.
    pub password: Secret,
    /// The domain the user chose; empty when none was sent.
    pub domain: String,
    /// The client.
    pub client: ClientContext,
}

/// One opaque attribute a mapper attaches to an identity.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attribute {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// A user the mapper accepted (WIT `identity`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// The user name for the agent's logon.
    pub username: String,
    /// The logon domain (may be empty).
    pub domain: String,
    /// Opaque attributes handed back on later calls.
    pub attributes: Vec<Attribute>,
}

/// Why authentication was refused (WIT `rejection-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionKind {
    /// Unknown user or wrong password.
    BadCredentials,
    /// The password has expired.
    ExpiredPassword,
    /// The user may not log in.
    AccessDenied,
    /// The user has no desktops.
    NoResources,
}

/// A refusal with a reason for the log (WIT `rejection`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The kind, which picks the result id.
    pub kind: RejectionKind,
    /// Why, for the log only.
    pub reason: String,
}

/// How the client renders a dialog field (WIT `field-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Plain text.
    Text,
    /// Hidden input (one-time code, PIN).
    Secret,
    /// Digits only.
    Number,
    /// Text that cannot be edited.
    ReadOnly,
}

/// One dialog field (WIT `dialog-field`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialogField {
    /// The id the answer comes back with.
    pub id: String,
    /// The label.
    pub label: String,
    /// The kind.
    pub kind: FieldKind,
}

/// The id of the one `OK` button a dialog shows when its mapper names none.
pub const DEFAULT_BUTTON_ID: &str = "ok";

/// One dialog button (WIT `dialog-button`): `<button is-default=".."><id/><label/></button>`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DialogButton {
    /// The id the client answers with in `button-id`.
    pub id: String,
    /// The label.
    pub label: String,
    /// The button Enter presses.
    pub is_default: bool,
}

impl DialogButton {
    /// The `OK` button a dialog shows when its mapper names none.
    pub fn ok() -> Self {
        Self {
            id: DEFAULT_BUTTON_ID.to_owned(),
            label: "OK".to_owned(),
            is_default: true,
        }
    }
}

/// A further authentication step (WIT `dialog`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    /// The prompt.
    pub prompt: String,
    /// An error from the previous attempt (empty for none).
    pub error_text: String,
    /// The fields in display order.
    pub fields: Vec<DialogField>,
    /// The buttons in display order; empty for one default `OK` ([`DialogButton::ok`]).
    pub buttons: Vec<DialogButton>,
    /// Opaque mapper state kept by the host and passed back to `continue_authentication`. It
    /// may hold secrets, so it is never sent to the client nor logged.
    pub state: Secret,
}

/// A notice the user must accept first (WIT `disclaimer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disclaimer {
    /// The text shown.
    pub text: String,
    /// Opaque mapper state passed back to `continue_authentication` on acceptance; never sent
    /// to the client nor logged.
    pub state: Secret,
}

/// The outcome of an authentication step (WIT `auth-outcome`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The user is in.
    Accepted(Identity),
    /// The user is refused.
    Rejected(Rejection),
    /// Another step first.
    Challenge(Dialog),
    /// A disclaimer to accept first (0.2 mappers only).
    Disclaimer(Disclaimer),
}

/// The value given for one dialog field (WIT `field-answer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldAnswer {
    /// The field id.
    pub id: String,
    /// The value; may be a one-time code.
    pub value: Secret,
}

/// What the user did with the step a mapper asked for (WIT `step-answer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepAnswer {
    /// Answered a dialog.
    Dialog {
        /// The field values (only ids the dialog showed).
        fields: Vec<FieldAnswer>,
        /// The button pressed ([`DEFAULT_BUTTON_ID`] when the dialog listed none).
        button_id: String,
    },
    /// Accepted a disclaimer.
    DisclaimerAccepted,
}

/// How a desktop is delivered (WIT `session-kind`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SessionKind {
    /// A whole machine (`VDI`).
    #[default]
    Vdi,
    /// A session on a shared host (`RDS`).
    Rds,
}

/// The machine state shown to the client (WIT `desktop-state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DesktopState {
    /// Not known (what ILS always sent).
    #[default]
    Unknown,
    /// Running.
    Running,
    /// Stopped.
    Stopped,
    /// Starting.
    Starting,
}

/// A desktop's health as the client shows it (`health-state`). `HEALTHY` was seen with the real
/// client library (reference §11 \[R\]); `UNHEALTHY` is inferred from it \[I\].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HealthState {
    /// `HEALTHY`.
    Healthy,
    /// `UNHEALTHY`.
    Unhealthy,
}

/// An operation the client may offer (WIT `operation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Operation {
    /// `CMD_OS_RESTART`.
    Restart,
    /// `CMD_PWR_DOWN`.
    PowerDown,
    /// `CMD_PWR_UP`.
    PowerUp,
}

/// The outcome of `operate` (WIT `operation-outcome`). Texts are for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperationOutcome {
    /// Done or accepted (`OP_SUCCESSFUL`).
    Done(String),
    /// Started, not finished: the user retries.
    TryAgain(String),
    /// Refused or failed (`OP_FAILED_TO_EXECUTE`).
    Refused(String),
    /// Not possible for this mapper or desktop (`OP_FAILED_OPERATION_NOT_SUPPORTED`).
    Unsupported,
}

/// A password change (WIT `password-change`; the client's `update-password`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordChange {
    /// The user name as sent.
    pub username: String,
    /// The domain as sent; empty when none.
    pub domain: String,
    /// The current password.
    pub old_password: Secret,
    /// The new password.
    pub new_password: Secret,
    /// The client.
    pub client: ClientContext,
}

/// Why a password change was refused (WIT `password-rejection-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordRejectionKind {
    /// Unknown user or wrong current password.
    WrongPassword,
    /// The new password breaks the policy.
    WeakPassword,
    /// Too many attempts.
    TooManyAttempts,
    /// The directory failed.
    DirectoryError,
}

/// A refused password change (WIT `password-rejection`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordRejection {
    /// The kind, which picks the result id.
    pub kind: PasswordRejectionKind,
    /// Why, for the log only.
    pub reason: String,
}

/// The outcome of `change_password` (WIT `password-change-outcome`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordChangeOutcome {
    /// Changed; the login goes on as the outcome says.
    Changed(AuthOutcome),
    /// Not changed.
    Rejected(PasswordRejection),
    /// The mapper cannot change passwords.
    Unsupported,
}

/// What a loaded mapper can do beyond the 0.1 contract.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// It exports `operate`: listings keep their operations. Without it the broker sends no
    /// `supported-operations` and answers `OP_FAILED_OPERATION_NOT_SUPPORTED`.
    pub operate: bool,
    /// It exports `change-password`. Without it `update-password` is answered
    /// `PSWD_UPDATE_FAILED_NOT_SUPPORTED`.
    pub change_password: bool,
}

/// A desktop a user may connect to (WIT `desktop`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Desktop {
    /// Stable id, unique for the user.
    pub id: String,
    /// The name shown to the user.
    pub name: String,
    /// Host name or address of the PCoIP agent.
    pub hostname: String,
    /// The agent port; `None` for the broker default.
    pub agent_port: Option<u16>,
    /// `VDI` or `RDS`.
    pub session_kind: SessionKind,
    /// The state shown to the client.
    pub state: DesktopState,
    /// `health-state`, when the mapper knows it (`None` sends no element).
    pub health: Option<HealthState>,
    /// Operations offered.
    pub operations: Vec<Operation>,
}

/// Where the client connects (WIT `launch-target`; the agent's `session-info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchTarget {
    /// Address the client opens 4172 to.
    pub ip_address: String,
    /// Host name of the desktop.
    pub hostname: String,
    /// TLS server name of the agent.
    pub sni: String,
    /// PCoIP port (4172).
    pub port: u16,
    /// The agent's session id.
    pub session_id: String,
    /// The connect tag; never empty in a successful allocation.
    pub connect_tag: Secret,
}

/// How to launch on the agent (WIT `launch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// The agent host.
    pub hostname: String,
    /// The agent port; `None` for the default.
    pub agent_port: Option<u16>,
    /// Logon user; `None` for the identity's.
    pub username: Option<String>,
    /// Logon domain; `None` for the identity's, else the typed one.
    pub domain: Option<String>,
}

/// Why allocation was refused (WIT `refusal-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// Unknown or foreign desktop id.
    UnknownDesktop,
    /// No licence.
    NoLicense,
    /// The desktop cannot be used now.
    Unavailable,
}

/// The mapper's allocation decision (WIT `allocation`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Launch on the agent.
    Launch(Launch),
    /// Connect here directly.
    Direct(LaunchTarget),
    /// Not ready; the client should retry. The text is for the log.
    TryAgain(String),
    /// Refused. The text is for the log.
    Refused(RefusalKind, String),
}

/// Why a mapper call failed. Every variant fails the one request that made the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapperError {
    /// The guest returned `err(message)`: a bug or an upstream failure it reported itself.
    #[error("mapper reported an error: {0}")]
    Guest(String),
    /// The guest trapped (unreachable, a panic, a stack overflow).
    #[error("mapper trapped: {0}")]
    Trap(String),
    /// The call ran past its deadline.
    #[error("mapper call timed out after {0} ms")]
    Timeout(u64),
    /// The guest tried to grow its memory past the limit.
    #[error("mapper ran out of memory (limit {0} MiB)")]
    OutOfMemory(u64),
    /// The guest returned something outside the contract's bounds (too long, too many, empty
    /// connect tag, ...).
    #[error("mapper answer refused: {0}")]
    InvalidOutput(String),
    /// No call could be made (too many concurrent calls, instantiation failed).
    #[error("mapper unavailable: {0}")]
    Unavailable(String),
}

/// Site policy, as the broker sees it. Implemented by `interstate-mapper` for wasm components.
///
/// Every call stands alone: implementations must not keep per-user state between calls (the
/// broker keeps it in the session and passes it back).
pub trait Mapper: Send + Sync + 'static {
    /// The logon domains offered in `hello-resp`. Cheap: computed once at load.
    fn domains(&self) -> Vec<String>;

    /// Checks a password login.
    fn authenticate<'a>(
        &'a self,
        login: &'a PasswordLogin,
    ) -> BoxFuture<'a, Result<AuthOutcome, MapperError>>;

    /// What the mapper can do beyond the 0.1 contract. Cheap: known at load.
    fn capabilities(&self) -> Capabilities;

    /// Continues a challenged authentication (a dialog or a disclaimer) with the step's
    /// `state` and what the user did.
    fn continue_authentication<'a>(
        &'a self,
        state: &'a Secret,
        answer: &'a StepAnswer,
        client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<AuthOutcome, MapperError>>;

    /// Lists the desktops of an accepted user.
    fn list_desktops<'a>(
        &'a self,
        user: &'a Identity,
        client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<Vec<Desktop>, MapperError>>;

    /// Decides how to connect `user` to `desktop_id`.
    fn allocate<'a>(
        &'a self,
        user: &'a Identity,
        desktop_id: &'a str,
        client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<Allocation, MapperError>>;

    /// Performs `op` on `desktop_id`, one the user listed with `op` among its operations.
    /// Only called when [`Capabilities::operate`].
    fn operate<'a>(
        &'a self,
        user: &'a Identity,
        desktop_id: &'a str,
        op: Operation,
        client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<OperationOutcome, MapperError>>;

    /// Changes a password. Only called when [`Capabilities::change_password`].
    fn change_password<'a>(
        &'a self,
        change: &'a PasswordChange,
    ) -> BoxFuture<'a, Result<PasswordChangeOutcome, MapperError>>;

    /// Spends what checking one wrong password costs, without checking anything: the broker
    /// refuses a rate-limited login without a mapper call, and this makes that refusal take
    /// as long as a wrong password, so timing does not reveal the lock-out.
    fn spend_like_a_password_check(&self) -> BoxFuture<'_, ()>;
}
