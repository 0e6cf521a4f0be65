//! `interstate settings`: the default settings as JSON, a starting `settings.json`.

use std::process::ExitCode;

use anyhow::Result;
use interstate::settings::RawSettings;

/// Prints the defaults.
pub fn run() -> Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(&RawSettings::default())?);
    Ok(ExitCode::SUCCESS)
}
