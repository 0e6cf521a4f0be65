//! HTTP: routing under the mount prefixes, body limits, authentication, and the REST handlers
//! (study §3). Every answer, errors included, is JSON.
//!
//! | method | endpoint | answer |
//! |---|---|---|
//! | POST | `/connect` | connection, state and channel info (+ `last_seq`) |
//! | POST | `/subscribe`, `/unsubscribe` | channels, info, `subscribed_to` / `unsubscribed_from` |
//! | POST | `/user_state` | `user_state`, `changed_state`, `public_keys` |
//! | POST | `/message` | the accepted messages with defaults filled in |
//! | PATCH, DELETE | `/message` | edits / deletes stored messages (`message:edit` / `message:delete`) |
//! | POST | `/channel_config` | the channels' info |
//! | GET, POST | `/info` | snapshot |
//! | GET, POST, DELETE | `/disconnect` | `true` / `false` — signed, unlike channelstream |
//! | GET | `/ws?conn_id=…[&since=<seq>]` | the websocket ([`crate::ws`]) |
//!
//! Errors: 401 `{"request":"Bad Signature"}`, 403 `{"request":"Forbidden"}` without a token,
//! 400 for a `secret` query parameter or a body that is not JSON, 404/405 for unknown routes and
//! methods, 404 `{"<index>": {"uuid": ["Unknown message."]}}` for an edit or delete of a message
//! this node does not store, 413 for a body over the limit, 422 for field errors, 503 at a
//! configured bound. Only messages published through `POST /message` can be edited or deleted,
//! never the broker's own events. Not carried over: long-polling, JSONP and CORS wildcards.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Body;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::auth::{AuthError, AuthMode, RequestBinding};
use crate::event::{Envelope, new_uuid};
use crate::feed::Feed;
use crate::requests;
use crate::state::ApiError;

/// The header carrying the token, as channelstream names it.
pub const SECRET_HEADER: &str = "x-channelstream-secret";

/// The response body type of [`Feed::handle`].
pub type FeedBody = Full<Bytes>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Connect,
    Subscribe,
    Unsubscribe,
    UserState,
    Message,
    ChannelConfig,
    Info,
    Disconnect,
    Socket,
}

impl Route {
    fn find(endpoint: &str) -> Option<Self> {
        Some(match endpoint {
            "/connect" => Self::Connect,
            "/subscribe" => Self::Subscribe,
            "/unsubscribe" => Self::Unsubscribe,
            "/user_state" => Self::UserState,
            "/message" => Self::Message,
            "/channel_config" => Self::ChannelConfig,
            "/info" => Self::Info,
            "/disconnect" => Self::Disconnect,
            "/ws" => Self::Socket,
            _ => return None,
        })
    }

    fn allows(self, method: &Method) -> bool {
        match self {
            Self::Info => matches!(*method, Method::GET | Method::POST),
            Self::Disconnect => matches!(*method, Method::GET | Method::POST | Method::DELETE),
            Self::Socket => *method == Method::GET,
            Self::Message => matches!(*method, Method::POST | Method::PATCH | Method::DELETE),
            _ => *method == Method::POST,
        }
    }
}

impl Feed {
    /// Serves one request to any feed route, under whichever configured mount it falls.
    ///
    /// The websocket route answers `101 Switching Protocols` and continues on a spawned task, so
    /// the connection must be served with upgrades enabled
    /// (`hyper::server::conn::http1::Builder::serve_connection(..).with_upgrades()`).
    pub async fn handle<B>(self: &Arc<Self>, request: Request<B>) -> Response<FeedBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = request.uri().path().to_owned();
        let Some((prefix_len, mode)) = self.mount_of(&path) else {
            return json_response(StatusCode::NOT_FOUND, &json!({"request": "Not Found"}));
        };
        let endpoint = if path.len() == prefix_len {
            "/".to_owned()
        } else {
            path[prefix_len..].to_owned()
        };
        let Some(route) = Route::find(&endpoint) else {
            return json_response(StatusCode::NOT_FOUND, &json!({"request": "Not Found"}));
        };
        if !route.allows(request.method()) {
            return json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"request": "Method Not Allowed"}),
            );
        }
        if query_param(request.uri().query(), "secret").is_some() {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"secret": ["Secrets are not accepted in the query string; use the X-Channelstream-Secret header."]}),
            );
        }
        if route == Route::Socket {
            return crate::ws::upgrade(self, request);
        }
        self.handle_rest(request, route, &path, &endpoint, mode)
            .await
    }

    async fn handle_rest<B>(
        &self,
        request: Request<B>,
        route: Route,
        path: &str,
        endpoint: &str,
        mode: AuthMode,
    ) -> Response<FeedBody>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let too_large = || {
            json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"request": "Request body too large"}),
            )
        };
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.limits.max_body_bytes as u64) {
            return too_large();
        }
        let body = match Limited::new(body, self.limits.max_body_bytes)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                if error.is::<http_body_util::LengthLimitError>() {
                    return too_large();
                }
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"request": "Could not read the request body"}),
                );
            }
        };
        let token = parts
            .headers
            .get(SECRET_HEADER)
            .and_then(|value| value.to_str().ok());
        let target = parts
            .uri
            .path_and_query()
            .map_or(path, |target| target.as_str());
        let binding = RequestBinding {
            method: parts.method.as_str(),
            target,
            path,
            endpoint,
            body: &body,
        };
        if let Err(error) = self.auth.verify(token, mode, &binding, self.now()) {
            tracing::debug!(%error, endpoint, "feed request refused");
            return match error {
                AuthError::Missing => {
                    json_response(StatusCode::FORBIDDEN, &json!({"request": "Forbidden"}))
                }
                AuthError::Saturated => json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"request": "Too many requests"}),
                ),
                _ => json_response(
                    StatusCode::UNAUTHORIZED,
                    &json!({"request": "Bad Signature"}),
                ),
            };
        }
        let value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice::<Value>(&body) {
                Ok(value) => value,
                Err(_) => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        &json!({"_schema": ["Invalid JSON."]}),
                    );
                }
            }
        };
        let query_conn = query_param(parts.uri.query(), "conn_id");
        let result = self.dispatch(route, &parts.method, &value, query_conn.as_deref());
        match result {
            Ok(answer) => json_response(StatusCode::OK, &answer),
            Err(ApiError::Invalid(errors)) => {
                json_response(StatusCode::UNPROCESSABLE_ENTITY, &Value::Object(errors))
            }
            Err(ApiError::Limit(what)) => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"request": format!("Limit reached: {what}")}),
            ),
            Err(ApiError::NotFound(errors)) => {
                json_response(StatusCode::NOT_FOUND, &Value::Object(errors))
            }
        }
    }

    fn dispatch(
        &self,
        route: Route,
        method: &Method,
        body: &Value,
        query_conn: Option<&str>,
    ) -> Result<Value, ApiError> {
        let now = self.now();
        let max_state_keys = self.limits.max_state_keys;
        match route {
            Route::Connect => {
                let request = requests::connect(body, max_state_keys)?;
                self.lock().connect(request, now)
            }
            Route::Subscribe => {
                let request = requests::membership(body, query_conn, true)?;
                self.lock().subscribe(request, now)
            }
            Route::Unsubscribe => {
                let request = requests::membership(body, query_conn, false)?;
                self.lock().unsubscribe(request, now)
            }
            Route::UserState => {
                let request = requests::user_state(body, max_state_keys)?;
                self.lock().user_state(request, now)
            }
            Route::Message if *method == Method::PATCH => self.edit_messages(body),
            Route::Message if *method == Method::DELETE => self.delete_messages(body),
            Route::Message => self.post_messages(body),
            Route::ChannelConfig => {
                let patches = requests::channel_configs(body)?;
                self.lock().configure(patches, now)
            }
            Route::Info => {
                let resolution = requests::info(body)?;
                Ok(self.lock().info(&resolution))
            }
            Route::Disconnect => {
                let conn_id = requests::disconnect(body, query_conn)?;
                Ok(Value::Bool(self.lock().disconnect(conn_id, now)))
            }
            Route::Socket => Err(ApiError::Invalid(crate::schema::error(
                "request",
                "Not a websocket handshake",
            ))),
        }
    }

    /// `POST /message` (study §3.4): each message goes through the bus; a message with neither
    /// `channel` nor `pm_users` is dropped from the answer too, as in channelstream.
    fn post_messages(&self, body: &Value) -> Result<Value, ApiError> {
        let messages = requests::messages(body, self.limits.max_messages_per_call)?;
        let now = self.now();
        let mut accepted = Vec::with_capacity(messages.len());
        for message in messages {
            if message.channel.is_none() && message.pm_users.is_empty() {
                continue;
            }
            let uuid = message.uuid.map_or_else(new_uuid, |id| id.to_string());
            let timestamp = message.timestamp.unwrap_or(now).to_string();
            let mut fields = message.extra;
            if let Some(payload) = message.message {
                fields.insert("message".into(), Value::Object(payload));
            }
            fields.insert("edited".into(), Value::Null);
            let mut echo: Map<String, Value> = fields.clone();
            echo.insert("uuid".into(), Value::from(uuid.clone()));
            echo.insert("timestamp".into(), Value::from(timestamp.clone()));
            echo.insert("user".into(), Value::from(message.user.clone()));
            echo.insert(
                "channel".into(),
                message.channel.clone().map_or(Value::Null, Value::from),
            );
            echo.insert("pm_users".into(), json!(message.pm_users));
            echo.insert("exclude_users".into(), json!(message.exclude_users));
            echo.insert("no_history".into(), Value::Bool(message.no_history));
            let envelope = Envelope {
                node: self.node.clone(),
                uuid,
                kind: "message".into(),
                channel: message.channel,
                user: Some(message.user),
                timestamp,
                pm_users: message.pm_users,
                exclude_users: message.exclude_users,
                no_history: message.no_history,
                fields,
            };
            if let Err(error) = self.bus.publish(envelope) {
                tracing::warn!(%error, "feed bus refused a message");
                return Err(ApiError::Limit("bus unavailable"));
            }
            accepted.push(Value::Object(echo));
        }
        Ok(Value::Array(accepted))
    }

    /// `PATCH /message` (study §3.5): each edit goes through the bus, so every node updates its
    /// stored copy and delivers a `message:edit` frame routed like the message. A uuid this node
    /// does not store (never published, or already out of every ring) refuses the whole call
    /// with 404 and `{"<index>": {"uuid": ["Unknown message."]}}`; nothing is changed then.
    fn edit_messages(&self, body: &Value) -> Result<Value, ApiError> {
        let edits = requests::edits(body, self.limits.max_messages_per_call)?;
        self.known_messages(edits.iter().map(|edit| edit.uuid))?;
        let now = self.now();
        let mut answer = Vec::with_capacity(edits.len());
        for edit in edits {
            let uuid = edit.uuid.to_string();
            let mut fields = edit.extra;
            if let Some(payload) = edit.message {
                fields.insert("message".into(), Value::Object(payload));
            }
            if let Some(user) = edit.user {
                fields.insert("user".into(), Value::from(user));
            }
            if let Some(timestamp) = edit.timestamp {
                fields.insert("timestamp".into(), Value::from(timestamp.to_string()));
            }
            let edited = edit.edited.unwrap_or(now).to_string();
            fields.insert("edited".into(), Value::from(edited));
            let mut echo = fields.clone();
            echo.insert("uuid".into(), Value::from(uuid.clone()));
            echo.insert(
                "channel".into(),
                edit.channel.clone().map_or(Value::Null, Value::from),
            );
            echo.insert("pm_users".into(), json!(edit.pm_users));
            echo.insert("exclude_users".into(), json!(edit.exclude_users));
            echo.insert("no_history".into(), Value::Bool(edit.no_history));
            self.amend(Envelope {
                node: self.node.clone(),
                uuid,
                kind: crate::state::EDIT.into(),
                channel: edit.channel,
                user: None,
                timestamp: now.to_string(),
                pm_users: edit.pm_users,
                exclude_users: edit.exclude_users,
                no_history: true,
                fields,
            })?;
            answer.push(Value::Object(echo));
        }
        Ok(Value::Array(answer))
    }

    /// `DELETE /message` (study §3.6): the message leaves every ring of every node, and a
    /// `message:delete` frame `{uuid, channel, type}` is delivered like the message. An unknown
    /// uuid answers 404 as for [`Self::edit_messages`].
    fn delete_messages(&self, body: &Value) -> Result<Value, ApiError> {
        let deletions = requests::deletions(body, self.limits.max_messages_per_call)?;
        self.known_messages(deletions.iter().map(|deletion| deletion.uuid))?;
        let now = self.now();
        let mut answer = Vec::with_capacity(deletions.len());
        for deletion in deletions {
            let uuid = deletion.uuid.to_string();
            answer.push(json!({
                "uuid": uuid,
                "channel": deletion.channel,
                "pm_users": deletion.pm_users,
                "exclude_users": deletion.exclude_users,
                "no_history": deletion.no_history,
            }));
            self.amend(Envelope {
                node: self.node.clone(),
                uuid,
                kind: crate::state::DELETE.into(),
                channel: deletion.channel,
                user: None,
                timestamp: now.to_string(),
                pm_users: deletion.pm_users,
                exclude_users: deletion.exclude_users,
                no_history: true,
                fields: Map::new(),
            })?;
        }
        Ok(Value::Array(answer))
    }

    /// 404 unless every uuid names a message this node stores.
    fn known_messages(
        &self,
        uuids: impl Iterator<Item = crate::ids::Uuid>,
    ) -> Result<(), ApiError> {
        let state = self.lock();
        let mut unknown = Map::new();
        for (index, uuid) in uuids.enumerate() {
            if !state.has_message(&uuid.to_string()) {
                unknown.insert(
                    index.to_string(),
                    Value::Object(crate::schema::error("uuid", "Unknown message.")),
                );
            }
        }
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(ApiError::NotFound(unknown))
        }
    }

    fn amend(&self, envelope: Envelope) -> Result<(), ApiError> {
        self.bus.publish(envelope).map(|_| ()).map_err(|error| {
            tracing::warn!(%error, "feed bus refused a message amendment");
            ApiError::Limit("bus unavailable")
        })
    }

    /// The mount a path falls under: (prefix length, auth mode).
    fn mount_of(&self, path: &str) -> Option<(usize, AuthMode)> {
        self.mounts.iter().find_map(|(prefix, mode)| {
            let rest = path.strip_prefix(prefix.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((prefix.len(), *mode))
        })
    }
}

/// A JSON response with `status`.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<FeedBody> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The first value of query parameter `name`, percent-decoded.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_value(query?, name)
}

/// The first value of `name` in `application/x-www-form-urlencoded` text (a query string or a
/// form body): `+` is a space, `%XX` a byte; `None` when absent or not UTF-8 once decoded.
pub fn form_value(encoded: &str, name: &str) -> Option<String> {
    encoded.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key)? == name).then(|| percent_decode(value))?
    })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = text.get(index + 1..index + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                index += 3;
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            query_param(Some("a=1&secret=x"), "secret").as_deref(),
            Some("x")
        );
        assert_eq!(
            query_param(Some("%73ecret=x"), "secret").as_deref(),
            Some("x")
        );
        assert_eq!(
            query_param(Some("conn_id=a%2Db"), "conn_id").as_deref(),
            Some("a-b")
        );
        assert_eq!(query_param(Some("secretive=1"), "secret"), None);
        assert_eq!(query_param(None, "secret"), None);
        assert_eq!(query_param(Some("secret"), "secret").as_deref(), Some(""));
    }
}
