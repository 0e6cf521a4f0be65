//! The REST API's request bodies (study §3.1–§3.9), parsed into typed requests by
//! [`crate::schema::Fields`].

use serde_json::{Map, Value};

use crate::channel::ChannelConfigPatch;
use crate::clock::Timestamp;
use crate::ids::Uuid;
use crate::schema::{self, Errors, Fields, InfoResolution};

/// `POST /connect`.
#[derive(Debug)]
pub(crate) struct Connect {
    pub username: String,
    pub conn_id: Option<Uuid>,
    pub channels: Vec<String>,
    pub state_public_keys: Vec<String>,
    pub fresh_user_state: Map<String, Value>,
    pub user_state: Map<String, Value>,
    pub channel_configs: Vec<(String, ChannelConfigPatch)>,
    pub info: InfoResolution,
}

pub(crate) fn connect(body: &Value, max_state_keys: usize) -> Result<Connect, Errors> {
    let mut fields = Fields::of(body)?;
    let username = fields.string("username", true, 512);
    let conn_id = fields.uuid("conn_id");
    let channels = fields.strings("channels", 256, 0);
    let state_public_keys = fields.strings("state_public_keys", 256, 0);
    let fresh_user_state = fields.state("fresh_user_state", max_state_keys);
    let user_state = fields.state("user_state", max_state_keys);
    let channel_configs = fields.channel_configs("channel_configs");
    let info = fields.nested("info", schema::info_resolution);
    fields.finish(true)?;
    match (
        username,
        conn_id,
        channels,
        state_public_keys,
        fresh_user_state,
        user_state,
        channel_configs,
        info,
    ) {
        (
            Some(username),
            Some(conn_id),
            Some(channels),
            Some(state_public_keys),
            Some(fresh_user_state),
            Some(user_state),
            Some(channel_configs),
            Some(info),
        ) => Ok(Connect {
            username,
            conn_id,
            channels: channels.unwrap_or_default(),
            state_public_keys: state_public_keys.unwrap_or_default(),
            fresh_user_state: fresh_user_state.unwrap_or_default(),
            user_state: user_state.unwrap_or_default(),
            channel_configs,
            info: info.unwrap_or_else(InfoResolution::everything),
        }),
        _ => Err(schema::error("_schema", schema::INVALID_TYPE)),
    }
}

/// `POST /subscribe` and `POST /unsubscribe`.
#[derive(Debug)]
pub(crate) struct Membership {
    pub conn_id: Uuid,
    pub channels: Vec<String>,
    pub channel_configs: Vec<(String, ChannelConfigPatch)>,
    pub info: InfoResolution,
}

/// Reads a (un)subscribe body; `conn_id` falls back to the query's, as in channelstream.
pub(crate) fn membership(
    body: &Value,
    query_conn: Option<&str>,
    subscribe: bool,
) -> Result<Membership, Errors> {
    let mut fields = Fields::of(body)?;
    let conn_id = conn_id_field(&mut fields, query_conn);
    let channels = fields.strings("channels", 256, 1);
    let channel_configs = if subscribe {
        fields.channel_configs("channel_configs")
    } else {
        Some(Vec::new())
    };
    let info = fields.nested("info", schema::info_resolution);
    if matches!(channels, Some(None)) {
        fields.reject("channels", schema::MISSING);
    }
    fields.finish(true)?;
    match (conn_id, channels, channel_configs, info) {
        (Some(conn_id), Some(Some(channels)), Some(channel_configs), Some(info)) => {
            Ok(Membership {
                conn_id,
                channels,
                channel_configs,
                info: info.unwrap_or_else(InfoResolution::everything),
            })
        }
        _ => Err(schema::error("_schema", schema::INVALID_TYPE)),
    }
}

/// `conn_id` from the body or, failing that, the query string.
fn conn_id_field(fields: &mut Fields<'_>, query_conn: Option<&str>) -> Option<Uuid> {
    match fields.uuid("conn_id") {
        Some(Some(id)) => Some(id),
        Some(None) => match query_conn.map(Uuid::parse) {
            Some(Some(id)) => Some(id),
            Some(None) => {
                fields.reject("conn_id", "Not a valid UUID.");
                None
            }
            None => {
                fields.reject("conn_id", schema::NULL);
                None
            }
        },
        None => None,
    }
}

/// `/disconnect`: a conn_id from the body or the query; other body keys are ignored.
pub(crate) fn disconnect(body: &Value, query_conn: Option<&str>) -> Result<Uuid, Errors> {
    let empty = Value::Object(Map::new());
    let body = if body.is_null() { &empty } else { body };
    let mut fields = Fields::of(body)?;
    let conn_id = conn_id_field(&mut fields, query_conn);
    fields.finish(false)?;
    conn_id.ok_or_else(|| schema::error("conn_id", schema::NULL))
}

/// `POST /user_state`.
#[derive(Debug)]
pub(crate) struct UserState {
    pub user: String,
    pub user_state: Map<String, Value>,
    pub state_public_keys: Option<Vec<String>>,
}

pub(crate) fn user_state(body: &Value, max_state_keys: usize) -> Result<UserState, Errors> {
    let mut fields = Fields::of(body)?;
    let user = fields.string("user", true, 512);
    let user_state = fields.state("user_state", max_state_keys);
    let state_public_keys = fields.strings("state_public_keys", 256, 0);
    fields.finish(true)?;
    match (user, user_state, state_public_keys) {
        (Some(user), Some(user_state), Some(state_public_keys)) => Ok(UserState {
            user,
            user_state: user_state.unwrap_or_default(),
            state_public_keys,
        }),
        _ => Err(schema::error("_schema", schema::INVALID_TYPE)),
    }
}

/// One element of `POST /message`.
#[derive(Debug)]
pub(crate) struct Message {
    pub user: String,
    pub message: Option<Map<String, Value>>,
    pub channel: Option<String>,
    pub pm_users: Vec<String>,
    pub exclude_users: Vec<String>,
    pub no_history: bool,
    pub uuid: Option<Uuid>,
    pub timestamp: Option<Timestamp>,
    /// Unknown keys: kept and delivered, as channelstream does.
    pub extra: Map<String, Value>,
}

/// Keys a publisher may not set through the extra-keys pass-through: they are the feed's.
const RESERVED: &[&str] = &["seq", "node", "type", "catchup", "edited"];

pub(crate) fn messages(body: &Value, max_messages: usize) -> Result<Vec<Message>, Errors> {
    each(body, max_messages, message)
}

fn message(item: &Value) -> Result<Message, Errors> {
    let mut fields = Fields::of(item)?;
    let user = fields.string("user", true, 512);
    let message = fields.object("message");
    let channel = fields.nullable_string("channel", 256);
    let pm_users = fields.strings("pm_users", 512, 0);
    let exclude_users = fields.strings("exclude_users", 512, 0);
    let no_history = fields.boolean("no_history");
    let uuid = fields.uuid("uuid");
    let timestamp = fields.timestamp("timestamp");
    let extra: Map<String, Value> = fields
        .unknown_keys()
        .into_iter()
        .filter_map(|key| item.get(key).map(|value| (key.clone(), value.clone())))
        .collect();
    for key in RESERVED {
        if extra.contains_key(*key) {
            fields.reject(key, "Reserved field.");
        }
    }
    fields.finish(false)?;
    match (
        user,
        message,
        channel,
        pm_users,
        exclude_users,
        no_history,
        uuid,
        timestamp,
    ) {
        (
            Some(user),
            Some(message),
            Some(channel),
            Some(pm_users),
            Some(exclude_users),
            Some(no_history),
            Some(uuid),
            Some(timestamp),
        ) => Ok(Message {
            user,
            message,
            channel,
            pm_users: pm_users.unwrap_or_default(),
            exclude_users: exclude_users.unwrap_or_default(),
            no_history: no_history.unwrap_or(false),
            uuid,
            timestamp,
            extra,
        }),
        _ => Err(schema::error("_schema", schema::INVALID_TYPE)),
    }
}

/// `/info`: an empty body means everything; otherwise `{"info": {...}}`.
pub(crate) fn info(body: &Value) -> Result<InfoResolution, Errors> {
    if body.is_null() {
        return Ok(InfoResolution::everything());
    }
    let mut fields = Fields::of(body)?;
    let info = fields.nested("info", schema::info_resolution);
    if matches!(info, Some(None)) {
        fields.reject("info", schema::MISSING);
    }
    fields.finish(true)?;
    match info {
        Some(Some(info)) => Ok(info),
        _ => Err(schema::error("_schema", schema::INVALID_TYPE)),
    }
}

/// `POST /channel_config`: channel name → patch.
pub(crate) fn channel_configs(body: &Value) -> Result<Vec<(String, ChannelConfigPatch)>, Errors> {
    let Value::Object(map) = body else {
        return Err(schema::error("_schema", schema::INVALID_TYPE));
    };
    let mut out = Vec::with_capacity(map.len());
    let mut errors = Map::new();
    for (name, value) in map {
        if name.is_empty() || name.chars().count() > 256 {
            errors.insert(
                name.clone(),
                Value::from(vec!["Length must be between 1 and 256."]),
            );
            continue;
        }
        match schema::channel_config(value) {
            Ok(patch) => out.push((name.clone(), patch)),
            Err(inner) => {
                errors.insert(name.clone(), Value::Object(inner));
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// One element of `PATCH /message` (study §3.5): the message `uuid` and what changes, plus
/// where the `message:edit` goes.
#[derive(Debug)]
pub(crate) struct Edit {
    pub uuid: Uuid,
    pub channel: Option<String>,
    pub pm_users: Vec<String>,
    pub exclude_users: Vec<String>,
    pub no_history: bool,
    pub timestamp: Option<Timestamp>,
    pub user: Option<String>,
    pub message: Option<Map<String, Value>>,
    /// When the edit was made; now when absent.
    pub edited: Option<Timestamp>,
    /// Unknown keys: kept and delivered with the edit, as channelstream does.
    pub extra: Map<String, Value>,
}

/// `PATCH /message`: an array of edits.
pub(crate) fn edits(body: &Value, max_messages: usize) -> Result<Vec<Edit>, Errors> {
    each(body, max_messages, edit)
}

fn edit(item: &Value) -> Result<Edit, Errors> {
    let mut fields = Fields::of(item)?;
    let uuid = required_uuid(&mut fields);
    let channel = fields.nullable_string("channel", 256);
    let pm_users = fields.strings("pm_users", 512, 0);
    let exclude_users = fields.strings("exclude_users", 512, 0);
    let no_history = fields.boolean("no_history");
    let timestamp = fields.timestamp("timestamp");
    let user = fields.nullable_string("user", 512);
    let message = fields.object("message");
    let edited = fields.timestamp("edited");
    let extra: Map<String, Value> = fields
        .unknown_keys()
        .into_iter()
        .filter_map(|key| item.get(key).map(|value| (key.clone(), value.clone())))
        .collect();
    for key in ["seq", "node", "type", "catchup"] {
        if extra.contains_key(key) {
            fields.reject(key, "Reserved field.");
        }
    }
    fields.finish(false)?;
    match (
        uuid,
        channel,
        pm_users,
        exclude_users,
        no_history,
        timestamp,
        user,
        message,
        edited,
    ) {
        (
            Some(uuid),
            Some(channel),
            Some(pm_users),
            Some(exclude_users),
            Some(no_history),
            Some(timestamp),
            Some(user),
            Some(message),
            Some(edited),
        ) => Ok(Edit {
            uuid,
            channel,
            pm_users: pm_users.unwrap_or_default(),
            exclude_users: exclude_users.unwrap_or_default(),
            no_history: no_history.unwrap_or(false),
            timestamp,
            user,
            message,
            edited,
            extra,
        }),
        _ => Err(schema::error("_schema", schema::INVALID_TYPE)),
    }
}

/// One element of `DELETE /message` (study §3.6).
#[derive(Debug)]
pub(crate) struct Deletion {
    pub uuid: Uuid,
    pub channel: Option<String>,
    pub pm_users: Vec<String>,
    pub exclude_users: Vec<String>,
    pub no_history: bool,
}

/// `DELETE /message`: an array of deletions; unknown keys are refused.
pub(crate) fn deletions(body: &Value, max_messages: usize) -> Result<Vec<Deletion>, Errors> {
    each(body, max_messages, deletion)
}

fn deletion(item: &Value) -> Result<Deletion, Errors> {
    let mut fields = Fields::of(item)?;
    let uuid = required_uuid(&mut fields);
    let channel = fields.nullable_string("channel", 256);
    let pm_users = fields.strings("pm_users", 512, 0);
    let exclude_users = fields.strings("exclude_users", 512, 0);
    let no_history = fields.boolean("no_history");
    fields.finish(true)?;
    match (uuid, channel, pm_users, exclude_users, no_history) {
        (Some(uuid), Some(channel), Some(pm_users), Some(exclude_users), Some(no_history)) => {
            Ok(Deletion {
                uuid,
                channel,
                pm_users: pm_users.unwrap_or_default(),
                exclude_users: exclude_users.unwrap_or_default(),
                no_history: no_history.unwrap_or(false),
            })
        }
        _ => Err(schema::error("_schema", schema::INVALID_TYPE)),
    }
}

/// A required `uuid`.
fn required_uuid(fields: &mut Fields<'_>) -> Option<Uuid> {
    match fields.uuid("uuid") {
        Some(Some(id)) => Some(id),
        Some(None) => {
            fields.reject("uuid", schema::MISSING);
            None
        }
        None => None,
    }
}

/// An array body read element by element, errors keyed by index (study §3.12).
fn each<T>(
    body: &Value,
    max_items: usize,
    read: fn(&Value) -> Result<T, Errors>,
) -> Result<Vec<T>, Errors> {
    let Value::Array(items) = body else {
        return Err(schema::error("_schema", schema::INVALID_TYPE));
    };
    if items.len() > max_items {
        return Err(schema::error(
            "_schema",
            &format!("At most {max_items} messages per call."),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut errors = Map::new();
    for (index, item) in items.iter().enumerate() {
        match read(item) {
            Ok(parsed) => out.push(parsed),
            Err(inner) => {
                errors.insert(index.to_string(), Value::Object(inner));
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
