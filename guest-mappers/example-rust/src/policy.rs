//! The example policy, given the host's services through [`Host`], so that the same code runs
//! in the component (wired to the WIT imports by `lib.rs`) and under `cargo test`.
//!
//! Every text here (reasons, prompts, labels, state JSON) is part of the example's spec, shared
//! with the Go, JavaScript and Python builds; the conformance test compares them.

use std::time::Duration;

use interstate_mapper_sdk::host::{Level, TotpVerdict};
use interstate_mapper_sdk::types::{
    Allocation, Attribute, AuthOutcome, Desktop, DesktopState, Dialog, DialogButton, DialogField,
    Disclaimer, FieldKind, Identity, Launch, Operation, OperationOutcome, PasswordChange,
    PasswordChangeOutcome, PasswordRejection, PasswordRejectionKind, RefusalKind, Rejection,
    RejectionKind, SessionKind, StepAnswer,
};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::power;
use crate::settings::{DesktopEntry, Settings, User};

/// Wrong codes allowed before the login is refused.
pub const MAX_CODE_ATTEMPTS: u64 = 3;

/// The prompt of the one-time-code dialog.
pub const CODE_PROMPT: &str = "Enter the 6-digit code from your authenticator app";

/// The dialog error after a wrong code.
pub const WRONG_CODE_TEXT: &str = "Wrong code, try again";

/// The dialog error after a right code that was already used.
pub const REPLAYED_CODE_TEXT: &str = "That code was already used, wait for the next one";

/// The error for a step answer that is not the step the state is waiting for.
pub const STEP_MISMATCH: &str = "step answer does not match the pending step";

/// How long the last launched desktop is remembered.
pub const LAST_DESKTOP_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A well-formed ILS hash of a throw-away password, checked for unknown users so that a login
/// with an unknown name costs the same host time as one with a wrong password.
const DECOY_HASH: &str = "9f70564e7357585cee52b79fa889026721f9eef260bca0ac64a5a549039e919b";

/// The store key of a user's changed password hash.
pub fn password_key(username: &str) -> String {
    format!("password-hash:{username}")
}

/// The store key of the desktop a user launched last.
pub fn last_desktop_key(username: &str) -> String {
    format!("last-desktop:{username}")
}

/// An HTTP answer, as the policy needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// An HTTP method the power API is called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET`: a machine's state.
    Get,
    /// `POST` with an empty body: an action.
    Post,
}

/// The services the broker offers the policy.
pub trait Host {
    /// One line in the broker's log. Never pass a password or a code.
    fn log(&self, level: Level, message: &str);
    /// The host's constant-time password check.
    fn verify_password(&self, password: &str, hash: &str) -> bool;
    /// The host's password hash (argon2id), for a changed password.
    fn hash_password(&self, password: &str) -> String;
    /// The host's TOTP check, with replay protection across nodes.
    fn verify_totp(&self, secret: &str, code: &str) -> TotpVerdict;
    /// The text under `key` in the mapper's store.
    ///
    /// # Errors
    /// The store failed (the message is for the log).
    fn store_get(&self, key: &str) -> Result<Option<String>, String>;
    /// Sets `key` to `value` for `ttl` (`None`: the store's maximum).
    ///
    /// # Errors
    /// The store failed (the message is for the log).
    fn store_set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<(), String>;
    /// One HTTP request over `wasi:http` (empty body).
    ///
    /// # Errors
    /// The request could not be made or answered (the message is for the log).
    fn http(&self, method: HttpMethod, url: &str) -> Result<HttpAnswer, String>;
}

/// The step a challenge or disclaimer state is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// The disclaimer was shown to `user`.
    Disclaimer { user: String },
    /// The code dialog was shown to `user` after `attempts` wrong codes.
    Code { user: String, attempts: u64 },
}

/// The example policy over validated settings.
#[derive(Debug, Clone)]
pub struct ExamplePolicy {
    settings: Settings,
}

impl ExamplePolicy {
    /// A policy over `settings`.
    pub fn new(settings: Settings) -> Self {
        Self { settings }
    }

    /// The logon domains to offer.
    pub fn domains(&self) -> Vec<String> {
        self.settings.domains.clone()
    }

    /// Checks a password login.
    ///
    /// # Errors
    /// The store could not be read: without it a changed password cannot be told from the old
    /// one, so the request fails rather than guess.
    pub fn authenticate(
        &self,
        host: &dyn Host,
        username: &str,
        password: &str,
    ) -> Result<AuthOutcome, String> {
        let Some(user) = self.settings.users.get(username) else {
            host.verify_password(password, DECOY_HASH);
            return Ok(decide(
                host,
                reject(RejectionKind::BadCredentials, "unknown user"),
                username,
            ));
        };
        let stored = stored_hash(host, &user.username)?;
        let hash = stored.as_deref().unwrap_or(&user.password_hash);
        let outcome = if !host.verify_password(password, hash) {
            reject(RejectionKind::BadCredentials, "wrong password")
        } else if let Some(refusal) = self.refusal(user) {
            refusal
        } else if user.password_expired && stored.is_none() {
            reject(RejectionKind::ExpiredPassword, "password expired")
        } else {
            self.after_password(user)
        };
        Ok(decide(host, outcome, username))
    }

    /// Continues a login that showed the disclaimer or the code dialog. An `Err` means `state`
    /// is not one this mapper wrote, or the answer is not for the step it waits for.
    pub fn continue_authentication(
        &self,
        host: &dyn Host,
        state: &str,
        answer: &StepAnswer,
    ) -> Result<AuthOutcome, String> {
        let pending = parse_state(state)?;
        let pending_user = match (&pending, answer) {
            (Pending::Disclaimer { user }, StepAnswer::DisclaimerAccepted)
            | (Pending::Code { user, .. }, StepAnswer::Dialog(_)) => user.clone(),
            _ => return Err(STEP_MISMATCH.to_owned()),
        };
        let user = match self.settings.users.get(&pending_user) {
            Some(user) if !user.disabled => user,
            _ => {
                let outcome = reject(
                    RejectionKind::AccessDenied,
                    "user no longer allowed to log in",
                );
                return Ok(decide(host, outcome, &pending_user));
            }
        };
        let (attempts, dialog_answer) = match (pending, answer) {
            (Pending::Disclaimer { .. }, _) => {
                return Ok(decide(host, self.after_disclaimer(user), &user.username));
            }
            (Pending::Code { attempts, .. }, StepAnswer::Dialog(dialog)) => (attempts, dialog),
            (Pending::Code { .. }, StepAnswer::DisclaimerAccepted) => {
                return Err(STEP_MISMATCH.to_owned());
            }
        };
        let Some(secret) = user.totp_secret.as_deref().filter(|_| user.mfa) else {
            let outcome = reject(
                RejectionKind::AccessDenied,
                "user no longer allowed to log in",
            );
            return Ok(decide(host, outcome, &user.username));
        };
        if dialog_answer.button_id == "cancel" {
            let outcome = reject(RejectionKind::AccessDenied, "code dialog cancelled");
            return Ok(decide(host, outcome, &user.username));
        }
        let code = dialog_answer
            .fields
            .iter()
            .find(|field| field.id == "code")
            .map_or("", |field| field.value.as_str());
        let error_text = match host.verify_totp(secret, code) {
            TotpVerdict::Accepted => return Ok(decide(host, self.accept(user), &user.username)),
            TotpVerdict::Rejected => WRONG_CODE_TEXT,
            TotpVerdict::Replayed => REPLAYED_CODE_TEXT,
        };
        let attempts = attempts.saturating_add(1);
        if attempts >= MAX_CODE_ATTEMPTS {
            let outcome = reject(
                RejectionKind::BadCredentials,
                &format!("{attempts} wrong codes"),
            );
            return Ok(decide(host, outcome, &user.username));
        }
        let what = if error_text == REPLAYED_CODE_TEXT {
            "replayed code"
        } else {
            "wrong code"
        };
        host.log(
            Level::Info,
            &format!(
                "user {}: {what} (attempt {attempts} of {MAX_CODE_ATTEMPTS})",
                quoted(&user.username)
            ),
        );
        Ok(code_dialog(&user.username, attempts, error_text))
    }

    /// The desktops of a user, looked up again in the settings (the identity's attributes are
    /// not trusted: the settings may have changed since login), the one launched last first.
    pub fn list_desktops(&self, host: &dyn Host, identity: &Identity) -> Vec<Desktop> {
        let mut desktops = self.desktops_of(&identity.username);
        match host.store_get(&last_desktop_key(&identity.username)) {
            Ok(Some(last)) => {
                if let Some(index) = desktops.iter().position(|d| d.id == last) {
                    let desktop = desktops.remove(index);
                    desktops.insert(0, desktop);
                }
            }
            Ok(None) => {}
            Err(err) => host.log(
                Level::Warn,
                &format!(
                    "user {}: last desktop not read: {err}",
                    quoted(&identity.username)
                ),
            ),
        }
        host.log(
            Level::Info,
            &format!(
                "user {}: {} desktop(s)",
                quoted(&identity.username),
                desktops.len()
            ),
        );
        let operations = if self.settings.power_api.is_some() {
            vec![Operation::Restart, Operation::PowerDown, Operation::PowerUp]
        } else {
            Vec::new()
        };
        desktops
            .into_iter()
            .map(|d| Desktop {
                id: d.id.clone(),
                name: d.name.clone(),
                hostname: d.hostname.clone(),
                agent_port: d.agent_port,
                session_kind: SessionKind::Vdi,
                state: DesktopState::Unknown,
                operations: operations.clone(),
            })
            .collect()
    }

    /// Launches the user's desktop with that id, or refuses; a launch is remembered.
    pub fn allocate(&self, host: &dyn Host, identity: &Identity, desktop_id: &str) -> Allocation {
        let desktops = self.desktops_of(&identity.username);
        let Some(desktop) = desktops.into_iter().find(|d| d.id == desktop_id) else {
            host.log(
                Level::Info,
                &format!(
                    "user {}: refused desktop {}",
                    quoted(&identity.username),
                    quoted(desktop_id)
                ),
            );
            return Allocation::Refused((
                RefusalKind::UnknownDesktop,
                format!("{} is not one of the user's desktops", quoted(desktop_id)),
            ));
        };
        if let Err(err) = host.store_set(
            &last_desktop_key(&identity.username),
            &desktop.id,
            Some(LAST_DESKTOP_TTL),
        ) {
            host.log(
                Level::Warn,
                &format!(
                    "user {}: last desktop not kept: {err}",
                    quoted(&identity.username)
                ),
            );
        }
        host.log(
            Level::Info,
            &format!(
                "user {}: launch on {}",
                quoted(&identity.username),
                desktop.hostname
            ),
        );
        Allocation::Launch(Launch {
            hostname: desktop.hostname.clone(),
            agent_port: desktop.agent_port,
            username: None,
            domain: None,
        })
    }

    /// Restarts, powers down or powers up one of the user's desktops through the power API.
    pub fn operate(
        &self,
        host: &dyn Host,
        identity: &Identity,
        desktop_id: &str,
        op: Operation,
    ) -> OperationOutcome {
        let who = quoted(&identity.username);
        let name = power::operation_name(op);
        let Some(api) = &self.settings.power_api else {
            host.log(
                Level::Info,
                &format!("user {who}: {name} {}: unsupported", quoted(desktop_id)),
            );
            return OperationOutcome::Unsupported;
        };
        let desktops = self.desktops_of(&identity.username);
        let Some(desktop) = desktops.into_iter().find(|d| d.id == desktop_id) else {
            host.log(
                Level::Info,
                &format!("user {who}: {name} {}: unknown desktop", quoted(desktop_id)),
            );
            return OperationOutcome::Refused("unknown desktop".to_owned());
        };
        let outcome = power::operate(host, api, &desktop.hostname, op);
        let verdict = match &outcome {
            OperationOutcome::Done(detail) => format!("done ({detail})"),
            OperationOutcome::TryAgain(detail) => format!("try again ({detail})"),
            OperationOutcome::Refused(reason) => format!("refused ({reason})"),
            OperationOutcome::Unsupported => "unsupported".to_owned(),
        };
        host.log(
            Level::Info,
            &format!("user {who}: {name} on {}: {verdict}", desktop.hostname),
        );
        outcome
    }

    /// Changes a password: the old one is checked as a login checks it, the new one must be
    /// long enough and different, and its host hash goes in the store.
    pub fn change_password(
        &self,
        host: &dyn Host,
        change: &PasswordChange,
    ) -> PasswordChangeOutcome {
        let outcome = self.change(host, change);
        let verdict = match &outcome {
            PasswordChangeOutcome::Changed(next) => {
                format!("password changed, then {}", verdict(next))
            }
            PasswordChangeOutcome::Rejected(rejection) => format!(
                "password change rejected ({}: {})",
                password_rejection_kind(rejection.kind),
                rejection.reason
            ),
            PasswordChangeOutcome::Unsupported => "password change unsupported".to_owned(),
        };
        host.log(
            Level::Info,
            &format!("user {}: {verdict}", quoted(&change.username)),
        );
        outcome
    }

    fn change(&self, host: &dyn Host, change: &PasswordChange) -> PasswordChangeOutcome {
        let Some(user) = self.settings.users.get(&change.username) else {
            host.verify_password(&change.old_password, DECOY_HASH);
            return refuse_change(PasswordRejectionKind::WrongPassword, "unknown user");
        };
        let stored = match stored_hash(host, &user.username) {
            Ok(stored) => stored,
            Err(err) => return refuse_change(PasswordRejectionKind::DirectoryError, &err),
        };
        let hash = stored.as_deref().unwrap_or(&user.password_hash);
        if !host.verify_password(&change.old_password, hash) {
            return refuse_change(PasswordRejectionKind::WrongPassword, "wrong password");
        }
        let min = self.settings.min_password_length;
        if change.new_password.chars().count() < min {
            return refuse_change(
                PasswordRejectionKind::WeakPassword,
                &format!("the new password is shorter than {min} characters"),
            );
        }
        let same: bool = change
            .new_password
            .as_bytes()
            .ct_eq(change.old_password.as_bytes())
            .into();
        if same {
            return refuse_change(
                PasswordRejectionKind::WeakPassword,
                "the new password is the old one",
            );
        }
        let new_hash = host.hash_password(&change.new_password);
        if let Err(err) = host.store_set(&password_key(&user.username), &new_hash, None) {
            return refuse_change(PasswordRejectionKind::DirectoryError, &err);
        }
        // What a login answers after a right password (a disabled user or one without desktops
        // is still refused, as the login would).
        let next = self
            .refusal(user)
            .unwrap_or_else(|| self.after_password(user));
        PasswordChangeOutcome::Changed(next)
    }

    /// Step 3 of a login: a disabled user or one without desktops is refused.
    fn refusal(&self, user: &User) -> Option<AuthOutcome> {
        if user.disabled {
            Some(reject(RejectionKind::AccessDenied, "account disabled"))
        } else if self.settings.desktops_of(user).is_empty() {
            Some(reject(
                RejectionKind::NoResources,
                "no desktops in the user's groups",
            ))
        } else {
            None
        }
    }

    /// Step 5: the disclaimer if configured, else what follows it.
    fn after_password(&self, user: &User) -> AuthOutcome {
        match &self.settings.disclaimer {
            Some(text) => AuthOutcome::Disclaimer(Disclaimer {
                text: text.clone(),
                state: json!({"user": user.username, "stage": "disclaimer"}).to_string(),
            }),
            None => self.after_disclaimer(user),
        }
    }

    /// The code dialog for users with `mfa`, else accepted.
    fn after_disclaimer(&self, user: &User) -> AuthOutcome {
        if user.mfa {
            code_dialog(&user.username, 0, "")
        } else {
            self.accept(user)
        }
    }

    fn desktops_of(&self, username: &str) -> Vec<&DesktopEntry> {
        match self.settings.users.get(username) {
            Some(user) if !user.disabled => self.settings.desktops_of(user),
            _ => Vec::new(),
        }
    }

    fn accept(&self, user: &User) -> AuthOutcome {
        AuthOutcome::Accepted(Identity {
            username: user.username.clone(),
            domain: self.settings.logon_domain.clone(),
            attributes: vec![Attribute {
                key: "groups".to_owned(),
                value: user.groups.join(","),
            }],
        })
    }
}

/// The changed password hash of `username`, if one is stored.
fn stored_hash(host: &dyn Host, username: &str) -> Result<Option<String>, String> {
    host.store_get(&password_key(username))
        .map_err(|err| format!("store: {err}"))
}

fn reject(kind: RejectionKind, reason: &str) -> AuthOutcome {
    AuthOutcome::Rejected(Rejection {
        kind,
        reason: reason.to_owned(),
    })
}

fn refuse_change(kind: PasswordRejectionKind, reason: &str) -> PasswordChangeOutcome {
    PasswordChangeOutcome::Rejected(PasswordRejection {
        kind,
        reason: reason.to_owned(),
    })
}

/// The one-time-code dialog.
fn code_dialog(username: &str, attempts: u64, error_text: &str) -> AuthOutcome {
    let state = json!({"user": username, "stage": "code", "attempts": attempts}).to_string();
    AuthOutcome::Challenge(Dialog {
        prompt: CODE_PROMPT.to_owned(),
        error_text: error_text.to_owned(),
        fields: vec![DialogField {
            id: "code".to_owned(),
            label: "Code".to_owned(),
            kind: FieldKind::Secret,
        }],
        buttons: vec![
            DialogButton {
                id: "ok".to_owned(),
                label: "Verify".to_owned(),
                is_default: true,
            },
            DialogButton {
                id: "cancel".to_owned(),
                label: "Cancel".to_owned(),
                is_default: false,
            },
        ],
        state,
    })
}

/// An outcome in the words of the log.
fn verdict(outcome: &AuthOutcome) -> String {
    match outcome {
        AuthOutcome::Accepted(_) => "accepted".to_owned(),
        AuthOutcome::Challenge(_) => "challenge".to_owned(),
        AuthOutcome::Disclaimer(_) => "disclaimer".to_owned(),
        AuthOutcome::Rejected(rejection) => {
            let kind = match rejection.kind {
                RejectionKind::BadCredentials => "bad-credentials",
                RejectionKind::ExpiredPassword => "expired-password",
                RejectionKind::AccessDenied => "access-denied",
                RejectionKind::NoResources => "no-resources",
            };
            format!("rejected ({kind}: {})", rejection.reason)
        }
    }
}

fn password_rejection_kind(kind: PasswordRejectionKind) -> &'static str {
    match kind {
        PasswordRejectionKind::WrongPassword => "wrong-password",
        PasswordRejectionKind::WeakPassword => "weak-password",
        PasswordRejectionKind::TooManyAttempts => "too-many-attempts",
        PasswordRejectionKind::DirectoryError => "directory-error",
    }
}

/// Logs one decision line and returns the outcome.
fn decide(host: &dyn Host, outcome: AuthOutcome, username: &str) -> AuthOutcome {
    host.log(
        Level::Info,
        &format!("user {}: {}", quoted(username), verdict(&outcome)),
    );
    outcome
}

/// A string as a JSON literal, for unambiguous log lines.
pub(crate) fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// The pending step, from a state this mapper wrote.
fn parse_state(state: &str) -> Result<Pending, String> {
    let parsed: Value =
        serde_json::from_str(state).map_err(|_| "challenge state is not valid JSON".to_owned())?;
    let malformed = || "challenge state is malformed".to_owned();
    let user = parsed
        .get("user")
        .and_then(Value::as_str)
        .ok_or_else(malformed)?
        .to_owned();
    match parsed.get("stage").and_then(Value::as_str) {
        Some("disclaimer") => Ok(Pending::Disclaimer { user }),
        Some("code") => {
            let attempts = parsed
                .get("attempts")
                .and_then(Value::as_u64)
                .ok_or_else(malformed)?;
            Ok(Pending::Code { user, attempts })
        }
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests;
