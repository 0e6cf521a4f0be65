//! Why the directory could not be built from the settings.

use std::path::PathBuf;

/// A profile that cannot be used: its secret or its TLS configuration is missing or broken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The service password's file could not be read.
    #[error("directory profile {profile:?}: cannot read password_file {}: {source}", path.display())]
    PasswordFile {
        /// The profile.
        profile: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The service password's environment variable is not set (or not UTF-8).
    #[error(
        "directory profile {profile:?}: the environment variable {var} (password_env) is not set"
    )]
    PasswordEnv {
        /// The profile.
        profile: String,
        /// The variable.
        var: String,
    },
    /// The service password is empty: that would be an unauthenticated bind.
    #[error("directory profile {profile:?}: the service account's password is empty")]
    EmptyPassword {
        /// The profile.
        profile: String,
    },
    /// The TLS configuration could not be built (CA file unreadable, ...).
    #[error("directory profile {profile:?}: {source}")]
    Tls {
        /// The profile.
        profile: String,
        /// Why.
        #[source]
        source: interstate_tls::ClientConfigError,
    },
}
