//! A session as a store outside this process keeps it: a [`SessionRecord`] (serde) for the
//! state, and the typed password apart from it.
//!
//! The password is split off so that a store can keep it under its own key with its own expiry
//! and delete it the moment the agent has it (issue: secrets at rest). The record still holds
//! the mapper's dialog state and the user's identity, so a store that writes it outside the
//! process seals it first (the broker's Redis store does).

use serde::{Deserialize, Serialize};

use super::{DialogShape, Login, Session, State};
use crate::policy::{ClientContext, Desktop, Identity, Secret};

/// Everything of a [`Session`] but the typed password.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionRecord {
    created_at: u64,
    last_seen: u64,
    client: ClientContext,
    caps: Vec<String>,
    state: StateRecord,
}

/// [`State`] without the password. Fields added after the first release default when a record
/// written before them is read (a broker upgraded while sessions live in Redis).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
enum StateRecord {
    Anonymous,
    Challenged {
        #[serde(default)]
        username: String,
        domain: String,
        challenge: Secret,
        /// Absent in older records: every field answer passes, and only `ok` is a button.
        #[serde(default)]
        shape: DialogShape,
    },
    Disclaimed {
        username: String,
        domain: String,
        disclaimer: Secret,
    },
    Authenticated {
        /// Absent in older records: the identity's user name stands in.
        #[serde(default)]
        username: String,
        domain: String,
        identity: Identity,
        listing: Vec<Desktop>,
    },
    Allocated {
        identity: Identity,
        listing: Vec<Desktop>,
        #[serde(default)]
        desktop: String,
    },
}

/// Why a record and a password do not make a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The session holds a login, but its password is gone (it expired on its own).
    #[error("the session's password is gone")]
    PasswordMissing,
}

impl SessionRecord {
    /// The client the session was made for.
    pub fn client(&self) -> &ClientContext {
        &self.client
    }

    /// Where the session is.
    pub fn phase(&self) -> super::Phase {
        match self.state {
            StateRecord::Anonymous
            | StateRecord::Challenged { .. }
            | StateRecord::Disclaimed { .. } => super::Phase::Created,
            StateRecord::Authenticated { .. } => super::Phase::Authenticated,
            StateRecord::Allocated { .. } => super::Phase::Allocated,
        }
    }

    /// The authenticated user, if any.
    pub fn identity(&self) -> Option<&Identity> {
        match &self.state {
            StateRecord::Authenticated { identity, .. }
            | StateRecord::Allocated { identity, .. } => Some(identity),
            StateRecord::Anonymous
            | StateRecord::Challenged { .. }
            | StateRecord::Disclaimed { .. } => None,
        }
    }

    /// The name of the desktop allocated last, once one was.
    pub fn desktop(&self) -> Option<&str> {
        match &self.state {
            StateRecord::Allocated { desktop, .. } => Some(desktop),
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
}

impl Session {
    /// The session's record, and the password it leaves out (while the session keeps one).
    pub fn to_record(&self) -> (SessionRecord, Option<Secret>) {
        let (state, password) = match &self.state {
            State::Anonymous => (StateRecord::Anonymous, None),
            State::Challenged {
                login,
                challenge,
                shape,
            } => (
                StateRecord::Challenged {
                    username: login.username.clone(),
                    domain: login.domain.clone(),
                    challenge: challenge.clone(),
                    shape: shape.clone(),
                },
                Some(login.password.clone()),
            ),
            State::Disclaimed { login, disclaimer } => (
                StateRecord::Disclaimed {
                    username: login.username.clone(),
                    domain: login.domain.clone(),
                    disclaimer: disclaimer.clone(),
                },
                Some(login.password.clone()),
            ),
            State::Authenticated {
                login,
                identity,
                listing,
            } => (
                StateRecord::Authenticated {
                    username: login.username.clone(),
                    domain: login.domain.clone(),
                    identity: identity.clone(),
                    listing: listing.clone(),
                },
                Some(login.password.clone()),
            ),
            State::Allocated {
                identity,
                listing,
                desktop,
            } => (
                StateRecord::Allocated {
                    identity: identity.clone(),
                    listing: listing.clone(),
                    desktop: desktop.clone(),
                },
                None,
            ),
        };
        let record = SessionRecord {
            created_at: self.created_at,
            last_seen: self.last_seen,
            client: self.client.clone(),
            caps: self.caps.clone(),
            state,
        };
        (record, password)
    }

    /// The session a record and its password (when it keeps one) make.
    pub fn from_record(
        record: SessionRecord,
        password: Option<Secret>,
    ) -> Result<Session, RecordError> {
        let login = |username: String, domain: String| match password {
            Some(password) => Ok(Login {
                username,
                password,
                domain,
            }),
            None => Err(RecordError::PasswordMissing),
        };
        let state = match record.state {
            StateRecord::Anonymous => State::Anonymous,
            StateRecord::Challenged {
                username,
                domain,
                challenge,
                shape,
            } => State::Challenged {
                login: login(username, domain)?,
                challenge,
                shape,
            },
            StateRecord::Disclaimed {
                username,
                domain,
                disclaimer,
            } => State::Disclaimed {
                login: login(username, domain)?,
                disclaimer,
            },
            StateRecord::Authenticated {
                username,
                domain,
                identity,
                listing,
            } => {
                let username = if username.is_empty() {
                    identity.username.clone()
                } else {
                    username
                };
                State::Authenticated {
                    login: login(username, domain)?,
                    identity,
                    listing,
                }
            }
            StateRecord::Allocated {
                identity,
                listing,
                desktop,
            } => State::Allocated {
                identity,
                listing,
                desktop,
            },
        };
        Ok(Session {
            created_at: record.created_at,
            last_seen: record.last_seen,
            client: record.client,
            caps: record.caps,
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Phase;

    fn authenticated() -> Session {
        Session {
            created_at: 5,
            last_seen: 9,
            client: ClientContext {
                address: "192.0.2.7".into(),
                ..ClientContext::default()
            },
            caps: vec!["CAP_DIALOG_AUTHENTICATION".into()],
            state: State::Authenticated {
                login: Login {
                    username: "Ada".into(),
                    password: Secret::new("hunter2"),
                    domain: "STUDIO".into(),
                },
                identity: Identity {
                    username: "ada".into(),
                    domain: "STUDIO".into(),
                    attributes: Vec::new(),
                },
                listing: Vec::new(),
            },
        }
    }

    #[test]
    fn a_record_round_trips_and_leaves_the_password_out() {
        let session = authenticated();
        let (record, password) = session.to_record();
        let json = serde_json::to_string(&record).unwrap_or_default();
        assert!(!json.contains("hunter2"), "{json}");
        assert!(json.contains("\"phase\":\"authenticated\""), "{json}");
        let back: SessionRecord = serde_json::from_str(&json).expect("parses");
        let again = Session::from_record(back, password).expect("whole");
        assert_eq!(again.phase(), Phase::Authenticated);
        assert_eq!(again.created_at(), 5);
        assert_eq!(again.last_seen(), 9);
        assert_eq!(again.identity().map(|i| i.username.as_str()), Some("ada"));
        assert!(again.holds_password());
    }

    #[test]
    fn an_allocated_record_keeps_the_desktop_and_no_password() {
        let session = Session {
            state: State::Allocated {
                identity: Identity::default(),
                listing: Vec::new(),
                desktop: "Render 7".into(),
            },
            ..authenticated()
        };
        let (record, password) = session.to_record();
        assert!(password.is_none());
        assert_eq!(record.desktop(), Some("Render 7"));
        assert_eq!(record.phase(), Phase::Allocated);
        let again = Session::from_record(record, None).expect("no password needed");
        assert_eq!(again.desktop(), Some("Render 7"));
    }

    #[test]
    fn records_written_before_the_0_2_states_still_load() {
        let challenged = r#"{"created_at":1,"last_seen":2,"client":{"address":"192.0.2.7","hostname":"","product_name":"","product_version":"","platform":"","locale":"","log_id":""},"caps":["CAP_DIALOG_AUTHENTICATION"],"state":{"phase":"challenged","domain":"D","challenge":"mapper-state"}}"#;
        let record: SessionRecord = serde_json::from_str(challenged).expect("an old dialog");
        let session = Session::from_record(record, Some(Secret::new("pw"))).expect("whole");
        assert_eq!(session.phase(), Phase::Created);
        assert_eq!(session.typed_username(), Some(""));
        let State::Challenged { shape, .. } = &session.state else {
            panic!("not challenged: {session:?}");
        };
        assert!(shape.has_button("ok") && !shape.has_button("cancel"));
        assert_eq!(shape.fields, None, "every answer passes");

        let authenticated = r#"{"created_at":1,"last_seen":2,"client":{"address":"","hostname":"","product_name":"","product_version":"","platform":"","locale":"","log_id":""},"caps":[],"state":{"phase":"authenticated","domain":"D","identity":{"username":"ada","domain":"D","attributes":[]},"listing":[]}}"#;
        let record: SessionRecord = serde_json::from_str(authenticated).expect("an old login");
        let session = Session::from_record(record, Some(Secret::new("pw"))).expect("whole");
        assert_eq!(session.phase(), Phase::Authenticated);
        assert_eq!(session.typed_username(), Some("ada"));
    }

    #[test]
    fn a_disclaimer_and_a_dialog_shape_round_trip() {
        let session = Session {
            state: State::Disclaimed {
                login: Login {
                    username: "Ada".into(),
                    password: Secret::new("hunter2"),
                    domain: "STUDIO".into(),
                },
                disclaimer: Secret::new("disclaimer-state"),
            },
            ..authenticated()
        };
        let (record, password) = session.to_record();
        let json = serde_json::to_string(&record).unwrap_or_default();
        assert!(json.contains("\"phase\":\"disclaimed\""), "{json}");
        let back: SessionRecord = serde_json::from_str(&json).expect("parses");
        let again = Session::from_record(back, password).expect("whole");
        assert_eq!(again.typed_username(), Some("Ada"));
        assert!(matches!(again.state, State::Disclaimed { .. }));

        let shape = DialogShape {
            fields: Some(vec!["code".into()]),
            buttons: vec!["ok".into(), "cancel".into()],
        };
        let session = Session {
            state: State::Challenged {
                login: Login {
                    username: "Ada".into(),
                    password: Secret::new("hunter2"),
                    domain: String::new(),
                },
                challenge: Secret::new("s"),
                shape: shape.clone(),
            },
            ..authenticated()
        };
        let (record, password) = session.to_record();
        let json = serde_json::to_string(&record).unwrap_or_default();
        let back: SessionRecord = serde_json::from_str(&json).expect("parses");
        let again = Session::from_record(back, password).expect("whole");
        let State::Challenged { shape: kept, .. } = &again.state else {
            panic!("not challenged");
        };
        assert_eq!(kept, &shape);
    }

    #[test]
    fn a_login_without_its_password_is_refused() {
        let (record, _) = authenticated().to_record();
        assert_eq!(
            Session::from_record(record, None).err(),
            Some(RecordError::PasswordMissing)
        );
    }
}
