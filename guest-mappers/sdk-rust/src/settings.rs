//! Typed settings: the `configure(settings-json)` text deserialised into the mapper's own
//! `serde::Deserialize` type, with an error that names the key.
//!
//! A `configure` error at start-up is all the operator sees, so the message starts with the
//! path of the offending key (`users[1].groups: invalid type: ...`), found with
//! `serde_path_to_error`. Add `#[serde(deny_unknown_fields)]` to reject misspelt keys.

use serde::de::DeserializeOwned;

/// The name used for the whole settings object in messages.
const ROOT: &str = "settings";

/// Deserialises `settings_json` into `T`.
///
/// # Errors
/// `"<path>: <what serde expected>"`, where the path names the key (`groups.g[0].hostname`,
/// or `settings` for the whole object), or `"settings: not valid JSON: ..."` for text that is
/// not JSON. Neither repeats the offending value's position in the text.
pub fn from_json<T: DeserializeOwned>(settings_json: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(settings_json);
    let settings: T =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| describe(&err))?;
    deserializer
        .end()
        .map_err(|err| format!("{ROOT}: not valid JSON: {err}"))?;
    Ok(settings)
}

fn describe(err: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let inner = err.inner();
    if inner.is_syntax() || inner.is_eof() || inner.is_io() {
        return format!("{ROOT}: not valid JSON: {inner}");
    }
    let path = err.path().to_string();
    let at = if path == "." { ROOT } else { path.as_str() };
    let message = inner.to_string();
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    let message = message.strip_suffix(&position).unwrap_or(&message);
    format!("{at}: {message}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    #![allow(missing_docs, reason = "test fixtures")]

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        users: Vec<User>,
        #[serde(default)]
        domains: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct User {
        username: String,
        #[serde(default)]
        mfa: bool,
    }

    fn error(json: &str) -> String {
        from_json::<Settings>(json).unwrap_err()
    }

    #[test]
    fn well_formed_settings_parse() {
        let settings: Settings =
            from_json(r#"{"users": [{"username": "bob"}], "domains": ["EXAMPLE"]}"#).unwrap();
        assert_eq!(
            settings,
            Settings {
                users: vec![User {
                    username: "bob".to_owned(),
                    mfa: false
                }],
                domains: vec!["EXAMPLE".to_owned()],
            }
        );
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            error(r#"{"users": [{"username": "bob"}, {"username": "eve", "mfa": "yes"}]}"#),
            "users[1].mfa: invalid type: string \"yes\", expected a boolean"
        );
        assert_eq!(
            error(r#"{"users": [{"username": "bob", "colour": 1}]}"#),
            "users[0].colour: unknown field `colour`, expected `username` or `mfa`"
        );
        assert_eq!(
            error(r#"{"domains": []}"#),
            "settings: missing field `users`"
        );
        assert_eq!(
            error("7"),
            "settings: invalid type: integer `7`, expected struct Settings"
        );
    }

    #[test]
    fn text_that_is_not_json_says_so() {
        assert!(error("{").starts_with("settings: not valid JSON: EOF while parsing"));
        assert!(error(r#"{"users": []} x"#).starts_with("settings: not valid JSON: trailing"));
        assert!(error(r#"{"users": [}"#).starts_with("settings: not valid JSON: "));
    }
}
