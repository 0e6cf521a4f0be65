//! Request bodies: checked field by field into typed requests, with marshmallow-shaped error maps
//! (study §3.12) so clients that read channelstream's 422 bodies keep working.
//!
//! # Format of errors
//!
//! `{"field": ["message"]}`, nested objects nest, list items are keyed by index
//! (`{"channels": {"0": [...]}}`), dict values by key then `value`
//! (`{"user_state": {"k": {"value": [...]}}}`), and a body of the wrong type is
//! `{"_schema": ["Invalid input type."]}`. Unknown keys are `Unknown field.` except in messages.
//! One deliberate difference: `/channel_config` errors are nested under the channel name, which
//! channelstream drops.

use serde_json::{Map, Value};

use crate::channel::ChannelConfigPatch;
use crate::clock::Timestamp;
use crate::ids::Uuid;

pub(crate) const MISSING: &str = "Missing data for required field.";
pub(crate) const NULL: &str = "Field may not be null.";
const UNKNOWN: &str = "Unknown field.";
const NOT_UUID: &str = "Not a valid UUID.";
const NOT_BOOL: &str = "Not a valid boolean.";
const NOT_INT: &str = "Not a valid integer.";
const NOT_LIST: &str = "Not a valid list.";
const NOT_STRING: &str = "Not a valid string.";
const NOT_MAPPING: &str = "Not a valid mapping type.";
const NOT_DATETIME: &str = "Not a valid datetime.";
const NOT_SCALAR: &str = "Value is not type of string, integer, boolean or float.";
const TOO_SHORT: &str = "Shorter than minimum length 1.";
const NEGATIVE: &str = "Must be greater than or equal to 0.";
pub(crate) const INVALID_TYPE: &str = "Invalid input type.";

/// A marshmallow-shaped error map.
pub(crate) type Errors = Map<String, Value>;

/// One error message under `key`.
pub(crate) fn error(key: &str, message: &str) -> Errors {
    let mut errors = Map::new();
    errors.insert(key.into(), Value::from(vec![message]));
    errors
}

/// Reads the fields of one JSON object, collecting errors instead of stopping at the first.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    known: Vec<&'static str>,
    errors: Errors,
}

impl<'a> Fields<'a> {
    /// Fields of `value`, which must be an object.
    pub fn of(value: &'a Value) -> Result<Self, Errors> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                known: Vec::new(),
                errors: Map::new(),
            }),
            _ => Err(error("_schema", INVALID_TYPE)),
        }
    }

    fn take(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.map.get(key)
    }

    fn fail(&mut self, key: &str, message: &str) {
        self.errors.insert(key.into(), Value::from(vec![message]));
    }

    fn fail_with(&mut self, key: &str, errors: Value) {
        self.errors.insert(key.into(), errors);
    }

    /// A string of 1..=`max` characters; `None` when absent (and not required) or invalid.
    pub fn string(&mut self, key: &'static str, required: bool, max: usize) -> Option<String> {
        match self.take(key) {
            None if required => {
                self.fail(key, MISSING);
                None
            }
            None => None,
            Some(Value::Null) => {
                self.fail(key, NULL);
                None
            }
            Some(value) => match check_string(value, max) {
                Ok(text) => Some(text),
                Err(message) => {
                    self.fail(key, &message);
                    None
                }
            },
        }
    }

    /// A string or `null`; `Some(None)` for null or absent.
    pub fn nullable_string(&mut self, key: &'static str, max: usize) -> Option<Option<String>> {
        match self.take(key) {
            None | Some(Value::Null) => Some(None),
            Some(value) => match check_string(value, max) {
                Ok(text) => Some(Some(text)),
                Err(message) => {
                    self.fail(key, &message);
                    None
                }
            },
        }
    }

    /// A UUID; `Some(None)` when absent.
    pub fn uuid(&mut self, key: &'static str) -> Option<Option<Uuid>> {
        match self.take(key) {
            None => Some(None),
            Some(Value::Null) => {
                self.fail(key, NULL);
                None
            }
            Some(Value::String(text)) => match Uuid::parse(text) {
                Some(id) => Some(Some(id)),
                None => {
                    self.fail(key, NOT_UUID);
                    None
                }
            },
            Some(_) => {
                self.fail(key, NOT_UUID);
                None
            }
        }
    }

    /// A list of strings of 1..=`max` characters; `Some(None)` when absent.
    pub fn strings(
        &mut self,
        key: &'static str,
        max: usize,
        min_items: usize,
    ) -> Option<Option<Vec<String>>> {
        let value = match self.take(key) {
            None => return Some(None),
            Some(Value::Null) => {
                self.fail(key, NULL);
                return None;
            }
            Some(value) => value,
        };
        let Value::Array(items) = value else {
            self.fail(key, NOT_LIST);
            return None;
        };
        if items.len() < min_items {
            self.fail(key, TOO_SHORT);
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut item_errors = Map::new();
        for (index, item) in items.iter().enumerate() {
            match check_string(item, max) {
                Ok(text) => out.push(text),
                Err(message) => {
                    item_errors.insert(index.to_string(), Value::from(vec![message]));
                }
            }
        }
        if item_errors.is_empty() {
            Some(Some(out))
        } else {
            self.fail_with(key, Value::Object(item_errors));
            None
        }
    }

    /// A boolean; `Some(None)` when absent.
    pub fn boolean(&mut self, key: &'static str) -> Option<Option<bool>> {
        match self.take(key) {
            None => Some(None),
            Some(Value::Bool(flag)) => Some(Some(*flag)),
            Some(Value::Null) => {
                self.fail(key, NULL);
                None
            }
            Some(_) => {
                self.fail(key, NOT_BOOL);
                None
            }
        }
    }

    /// A non-negative integer; `Some(None)` when absent.
    pub fn count(&mut self, key: &'static str, max: usize) -> Option<Option<usize>> {
        match self.take(key) {
            None => Some(None),
            Some(Value::Number(number)) => match number.as_i64() {
                Some(value) if value < 0 => {
                    self.fail(key, NEGATIVE);
                    None
                }
                Some(value) => match usize::try_from(value) {
                    Ok(value) if value <= max => Some(Some(value)),
                    _ => {
                        self.fail(key, &format!("Must be less than or equal to {max}."));
                        None
                    }
                },
                None => {
                    self.fail(key, NOT_INT);
                    None
                }
            },
            Some(Value::Null) => {
                self.fail(key, NULL);
                None
            }
            Some(_) => {
                self.fail(key, NOT_INT);
                None
            }
        }
    }

    /// An object of scalar-or-null values (user state); `Some(None)` when absent.
    pub fn state(
        &mut self,
        key: &'static str,
        max_keys: usize,
    ) -> Option<Option<Map<String, Value>>> {
        let map = match self.take(key) {
            None => return Some(None),
            Some(Value::Object(map)) => map,
            Some(Value::Null) => {
                self.fail(key, NULL);
                return None;
            }
            Some(_) => {
                self.fail(key, NOT_MAPPING);
                return None;
            }
        };
        let mut value_errors = Map::new();
        for (name, value) in map {
            if matches!(value, Value::Object(_) | Value::Array(_)) {
                let mut inner = Map::new();
                inner.insert("value".into(), Value::from(vec![NOT_SCALAR]));
                value_errors.insert(name.clone(), Value::Object(inner));
            } else if name.is_empty() || name.chars().count() > 256 {
                let mut inner = Map::new();
                inner.insert(
                    "key".into(),
                    Value::from(vec!["Length must be between 1 and 256."]),
                );
                value_errors.insert(name.clone(), Value::Object(inner));
            }
        }
        if !value_errors.is_empty() {
            self.fail_with(key, Value::Object(value_errors));
            return None;
        }
        if map.len() > max_keys {
            self.fail(key, &format!("At most {max_keys} keys."));
            return None;
        }
        Some(Some(map.clone()))
    }

    /// An ISO-8601 datetime; `Some(None)` when absent.
    pub fn timestamp(&mut self, key: &'static str) -> Option<Option<Timestamp>> {
        match self.take(key) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(text)) => match Timestamp::parse_iso(text) {
                Some(stamp) => Some(Some(stamp)),
                None => {
                    self.fail(key, NOT_DATETIME);
                    None
                }
            },
            Some(_) => {
                self.fail(key, NOT_DATETIME);
                None
            }
        }
    }

    /// An object (message payload), kept as is; `None` when absent or invalid.
    pub fn object(&mut self, key: &'static str) -> Option<Option<Map<String, Value>>> {
        match self.take(key) {
            None => Some(None),
            Some(Value::Object(map)) => Some(Some(map.clone())),
            Some(_) => {
                self.fail(key, NOT_MAPPING);
                None
            }
        }
    }

    /// A nested object read by `read`; `Some(None)` when absent.
    pub fn nested<T>(
        &mut self,
        key: &'static str,
        read: impl FnOnce(&Value) -> Result<T, Errors>,
    ) -> Option<Option<T>> {
        let Some(value) = self.take(key) else {
            return Some(None);
        };
        match read(value) {
            Ok(parsed) => Some(Some(parsed)),
            Err(errors) => {
                self.fail_with(key, Value::Object(errors));
                None
            }
        }
    }

    /// `channel_configs`: channel name → config patch.
    pub fn channel_configs(
        &mut self,
        key: &'static str,
    ) -> Option<Vec<(String, ChannelConfigPatch)>> {
        let map = match self.take(key) {
            None => return Some(Vec::new()),
            Some(Value::Object(map)) => map,
            Some(_) => {
                self.fail(key, NOT_MAPPING);
                return None;
            }
        };
        let mut out = Vec::with_capacity(map.len());
        let mut errors = Map::new();
        for (name, value) in map {
            match channel_config(value) {
                Ok(patch) => out.push((name.clone(), patch)),
                Err(inner) => {
                    let mut wrapped = Map::new();
                    wrapped.insert("value".into(), Value::Object(inner));
                    errors.insert(name.clone(), Value::Object(wrapped));
                }
            }
        }
        if errors.is_empty() {
            Some(out)
        } else {
            self.fail_with(key, Value::Object(errors));
            None
        }
    }

    /// Records `message` against `key` (for checks made by the caller).
    pub fn reject(&mut self, key: &str, message: &str) {
        self.fail(key, message);
    }

    /// Keys of the object that no reader asked for.
    pub fn unknown_keys(&self) -> Vec<&'a String> {
        self.map
            .keys()
            .filter(|key| !self.known.contains(&key.as_str()))
            .collect()
    }

    /// The collected errors, with `Unknown field.` for keys no reader asked for when `strict`.
    pub fn finish(mut self, strict: bool) -> Result<(), Errors> {
        if strict {
            for key in self.unknown_keys() {
                self.errors.insert(key.clone(), Value::from(vec![UNKNOWN]));
            }
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

fn check_string(value: &Value, max: usize) -> Result<String, String> {
    let Value::String(text) = value else {
        return Err(NOT_STRING.into());
    };
    let length = text.chars().count();
    if length == 0 || length > max {
        return Err(format!("Length must be between 1 and {max}."));
    }
    Ok(text.clone())
}

/// One channel's settings patch.
pub(crate) fn channel_config(value: &Value) -> Result<ChannelConfigPatch, Errors> {
    let mut fields = Fields::of(value)?;
    let patch = ChannelConfigPatch {
        notify_presence: fields.boolean("notify_presence").flatten(),
        broadcast_presence_with_user_lists: fields
            .boolean("broadcast_presence_with_user_lists")
            .flatten(),
        notify_state: fields.boolean("notify_state").flatten(),
        store_history: fields.boolean("store_history").flatten(),
        history_size: fields.count("history_size", 10_000).flatten(),
        store_frames: fields.boolean("store_frames").flatten(),
    };
    fields.finish(true)?;
    Ok(patch)
}

/// What `/info` (and `info` of connect/subscribe) should include (study §3.8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InfoResolution {
    pub channels: Option<Vec<String>>,
    pub exclude_channels: Vec<String>,
    pub include_history: bool,
    pub include_users: bool,
    pub return_public_state: bool,
}

impl InfoResolution {
    pub fn everything() -> Self {
        Self {
            channels: None,
            exclude_channels: Vec::new(),
            include_history: true,
            include_users: true,
            return_public_state: false,
        }
    }
}

pub(crate) fn info_resolution(value: &Value) -> Result<InfoResolution, Errors> {
    let mut fields = Fields::of(value)?;
    let channels = fields.strings("channels", 256, 0).flatten();
    let exclude_channels = fields.strings("exclude_channels", 256, 0).flatten();
    let include_history = fields.boolean("include_history").flatten();
    let include_users = fields.boolean("include_users").flatten();
    let return_public_state = fields.boolean("return_public_state").flatten();
    let _ = fields.boolean("include_connections");
    fields.finish(true)?;
    Ok(InfoResolution {
        channels,
        exclude_channels: exclude_channels.unwrap_or_default(),
        include_history: include_history.unwrap_or(true),
        include_users: include_users.unwrap_or(true),
        return_public_state: return_public_state.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use serde_json::json;

    use super::*;

    #[test]
    fn collects_marshmallow_shaped_errors() {
        let body = json!({
            "name": "",
            "list": ["ok", 5],
            "state": {"k": {"nested": 1}, "fine": 1.5},
            "flag": "yes",
            "bogus": 1
        });
        let mut fields = Fields::of(&body).unwrap();
        assert_eq!(fields.string("name", true, 512), None);
        assert_eq!(fields.strings("list", 256, 0), None);
        assert_eq!(fields.state("state", 64), None);
        assert_eq!(fields.boolean("flag"), None);
        assert_eq!(fields.string("missing", true, 5), None);
        let errors = Value::Object(fields.finish(true).unwrap_err());
        assert_eq!(
            errors,
            json!({
                "name": ["Length must be between 1 and 512."],
                "list": {"1": ["Not a valid string."]},
                "state": {"k": {"value": ["Value is not type of string, integer, boolean or float."]}},
                "flag": ["Not a valid boolean."],
                "missing": ["Missing data for required field."],
                "bogus": ["Unknown field."]
            })
        );
    }

    #[test]
    fn channel_config_errors_nest_under_value() {
        let body = json!({"channel_configs": {"c": {"history_size": -1, "notify_presence": 3}}});
        let mut fields = Fields::of(&body).unwrap();
        assert_eq!(fields.channel_configs("channel_configs"), None);
        assert_eq!(
            Value::Object(fields.finish(true).unwrap_err()),
            json!({"channel_configs": {"c": {"value": {
                "history_size": ["Must be greater than or equal to 0."],
                "notify_presence": ["Not a valid boolean."]
            }}}})
        );
    }

    #[test]
    fn non_objects_are_an_invalid_input_type() {
        assert_eq!(
            Value::Object(Fields::of(&json!([1])).err().unwrap()),
            json!({"_schema": ["Invalid input type."]})
        );
        assert_eq!(
            Value::Object(info_resolution(&json!({"foo": 1})).unwrap_err()),
            json!({"foo": ["Unknown field."]})
        );
    }
}
