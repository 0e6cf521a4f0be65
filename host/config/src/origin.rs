//! The settings file as validation sees it: the name every error starts with, and the folder
//! relative paths start from.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::error::SettingsError;

/// The settings file: named in every error, and the folder relative paths start from.
pub(crate) struct Origin<'a> {
    path: &'a Path,
    base: &'a Path,
}

impl<'a> Origin<'a> {
    /// The file at `path`.
    pub(crate) fn new(path: &'a Path) -> Self {
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self { path, base }
    }

    /// An error at `key` saying what was expected.
    pub(crate) fn bad(&self, key: impl Display, message: impl Into<String>) -> SettingsError {
        SettingsError::Invalid {
            path: self.path.to_owned(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// `value` must lie in `range`; `expected` says so in words.
    pub(crate) fn within<T: PartialOrd>(
        &self,
        key: &str,
        value: T,
        range: RangeInclusive<T>,
        expected: &str,
    ) -> Result<(), SettingsError> {
        if range.contains(&value) {
            Ok(())
        } else {
            Err(self.bad(key, expected))
        }
    }

    /// `path` against the settings file's folder, unless it is absolute.
    pub(crate) fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base.join(path)
        }
    }
}
