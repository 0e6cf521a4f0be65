//! The one error type of settings. Every message names the file, then the key, then what was
//! expected.

use std::path::PathBuf;

/// A settings error, naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The file could not be read.
    #[error("{path}: cannot read the settings file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The JSON is malformed or does not fit the schema.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file (`<defaults>` or `<inline>` when there is none).
        path: PathBuf,
        /// The key path, such as `session.idle_timeout_s`, or `(line 3, column 5)`.
        key: String,
        /// What was expected.
        message: String,
    },
}
