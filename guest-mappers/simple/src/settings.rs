//! The ILS `SimpleMapper` settings, checked key by key so that an error names what is wrong.

use serde_json::{Map, Value};

/// The keys ILS's `SimpleMapperSettings` knows.
const KNOWN_KEYS: [&str; 4] = ["username", "password_hash", "resources", "domains"];
/// The keys of one resource.
const RESOURCE_KEYS: [&str; 2] = ["name", "hostname"];
/// The contract's bounds (see `wit/mapper.wit`).
const MAX_NAME: usize = 256;
const MAX_HOSTNAME: usize = 255;
const MAX_RESOURCES: usize = 512;

/// One desktop: ILS's `Resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The name shown to the user.
    pub name: String,
    /// The PCoIP agent's host.
    pub hostname: String,
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The one user name accepted (exact match).
    pub username: String,
    /// The stored hash, checked by the host's `verify-password`.
    pub password_hash: String,
    /// The desktops of that user.
    pub resources: Vec<Resource>,
    /// The domains offered to the client.
    pub domains: Vec<String>,
}

impl Settings {
    /// Parses and validates the `mapper.settings` object. Missing keys take ILS's defaults.
    pub fn parse(json: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(json)
            .map_err(|err| format!("mapper.settings is not valid JSON: {err}"))?;
        let Value::Object(map) = value else {
            return Err(format!(
                "mapper.settings must be an object with the keys {}, not {}",
                KNOWN_KEYS.join(", "),
                kind(&value)
            ));
        };
        reject_unknown_keys(&map, &KNOWN_KEYS, "mapper.settings")?;

        let username = optional_string(&map, "username")?.unwrap_or_else(|| "test".to_owned());
        let password_hash =
            optional_string(&map, "password_hash")?.unwrap_or_else(|| "change_me".to_owned());
        let resources = match map.get("resources") {
            None => Vec::new(),
            Some(value) => parse_resources(value)?,
        };
        let domains = match map.get("domains") {
            None => Vec::new(),
            Some(value) => parse_domains(value)?,
        };
        Ok(Self {
            username,
            password_hash,
            resources,
            domains,
        })
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn reject_unknown_keys(map: &Map<String, Value>, known: &[&str], at: &str) -> Result<(), String> {
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|key| !known.contains(key))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{at}: unknown key{} {} (expected {})",
        if unknown.len() == 1 { "" } else { "s" },
        unknown
            .iter()
            .map(|key| format!("{key:?}"))
            .collect::<Vec<_>>()
            .join(", "),
        known.join(", ")
    ))
}

fn optional_string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!(
            "mapper.settings.{key} must be a string, not {}",
            kind(other)
        )),
    }
}

fn parse_resources(value: &Value) -> Result<Vec<Resource>, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "mapper.settings.resources must be a list of {{\"name\", \"hostname\"}} objects, not {}",
            kind(value)
        ));
    };
    if items.len() > MAX_RESOURCES {
        return Err(format!(
            "mapper.settings.resources lists {} resources; at most {MAX_RESOURCES} are allowed",
            items.len()
        ));
    }
    let mut resources: Vec<Resource> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = format!("mapper.settings.resources[{index}]");
        let Value::Object(map) = item else {
            return Err(format!(
                "{at} must be an object with \"name\" and \"hostname\", not {}",
                kind(item)
            ));
        };
        reject_unknown_keys(map, &RESOURCE_KEYS, &at)?;
        let name = required_text(map, "name", &at, MAX_NAME)?;
        let hostname = required_text(map, "hostname", &at, MAX_HOSTNAME)?;
        let resource = Resource { name, hostname };
        if let Some(first) = resources.iter().position(|seen| *seen == resource) {
            return Err(format!(
                "{at} repeats mapper.settings.resources[{first}] (same name and hostname)"
            ));
        }
        resources.push(resource);
    }
    Ok(resources)
}

fn required_text(
    map: &Map<String, Value>,
    key: &str,
    at: &str,
    max: usize,
) -> Result<String, String> {
    match map.get(key) {
        None => Err(format!("{at}.{key} is missing")),
        Some(Value::String(text)) if text.trim().is_empty() => {
            Err(format!("{at}.{key} must not be empty"))
        }
        Some(Value::String(text)) if text.len() > max => Err(format!(
            "{at}.{key} is {} bytes long; at most {max} are allowed",
            text.len()
        )),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(format!("{at}.{key} must be a string, not {}", kind(other))),
    }
}

fn parse_domains(value: &Value) -> Result<Vec<String>, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "mapper.settings.domains must be a list of strings, not {}",
            kind(value)
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(text) if text.len() > MAX_NAME => Err(format!(
                "mapper.settings.domains[{index}] is {} bytes long; at most {MAX_NAME} are allowed",
                text.len()
            )),
            Value::String(text) => Ok(text.clone()),
            other => Err(format!(
                "mapper.settings.domains[{index}] must be a string, not {}",
                kind(other)
            )),
        })
        .collect()
}
