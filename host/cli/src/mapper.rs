//! `interstate mapper check`: load a component, report its version and exports, run
//! `configure`, and optionally a login and a listing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use interstate::settings::{RawPlugin, Settings, defaults};

use crate::runtime;

/// `interstate mapper ...`.
#[derive(Debug, Subcommand)]
pub enum MapperCommand {
    /// Load a component, report its version and exports, run configure, and optionally a login
    /// and a listing.
    Check(CheckArgs),
}

/// `interstate mapper check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The component (`.wasm`), or `SimpleMapper` / `SimpleWebserviceMapper` / `DirectoryMapper` for an embedded
    /// one.
    pub file: String,
    /// The mapper settings: inline JSON, or `@file.json`.
    #[arg(long, default_value = "{}")]
    pub settings: String,
    /// Try a login as this user.
    #[arg(long, requires = "password")]
    pub user: Option<String>,
    /// The password for --user (or set INTERSTATE_PASSWORD and pass `--password -`).
    #[arg(long, requires = "user")]
    pub password: Option<String>,
    /// The domain for --user.
    #[arg(long, default_value = "")]
    pub domain: String,
    /// Origins the mapper may call over HTTP: `host` (https on 443), `host:port` (https on that
    /// port) or `http://host:port` (plain HTTP must say so).
    /// None given: the broker's default for this mapper (for SimpleWebserviceMapper, the
    /// origins of its `base_url` and `cookie_auth_url`).
    #[arg(long = "allow-host")]
    pub allowed_hosts: Vec<String>,
    /// Call deadline in milliseconds.
    #[arg(long, default_value_t = interstate::settings::defaults::MAPPER_TIMEOUT_MS)]
    pub timeout_ms: u64,
}

/// Runs `interstate mapper check`: success when the component loaded and, if asked, the login
/// and the listing succeeded.
pub fn check(args: CheckArgs) -> Result<ExitCode> {
    use interstate_mapper::{
        CheckLogin, MapperRuntime, MapperSettings, MapperSource, RuntimeConfig,
    };
    use interstate_protocol::policy::AuthOutcome;

    let settings_json = interstate_mapper::check::settings_argument(&args.settings)
        .with_context(|| format!("cannot read --settings {}", args.settings))?;
    let password = match args.password.as_deref() {
        Some("-") => Some(
            std::env::var("INTERSTATE_PASSWORD")
                .context("--password - reads INTERSTATE_PASSWORD, which is not set")?,
        ),
        other => other.map(str::to_owned),
    };
    let (source, plugin) = match args.file.as_str() {
        "SimpleMapper" => (MapperSource::Simple, RawPlugin::SimpleMapper),
        "SimpleWebserviceMapper" => (MapperSource::Webservice, RawPlugin::SimpleWebserviceMapper),
        "DirectoryMapper" => (MapperSource::Directory, RawPlugin::DirectoryMapper),
        file => (
            MapperSource::File(PathBuf::from(file)),
            RawPlugin::Wasm(file.to_owned()),
        ),
    };
    let allowed_hosts = if args.allowed_hosts.is_empty() {
        // Unparsable settings allow nothing; `configure` reports them.
        let settings = serde_json::from_str(&settings_json).unwrap_or_default();
        defaults::mapper_allowed_hosts(&plugin, &settings)
    } else {
        args.allowed_hosts
    };
    let settings = MapperSettings {
        settings_json,
        timeout: std::time::Duration::from_millis(args.timeout_ms),
        allowed_hosts,
        ..MapperSettings::default()
    };
    let login = args
        .user
        .zip(password)
        .map(|(username, password)| CheckLogin {
            username,
            password: password.into(),
            domain: args.domain.clone(),
        });
    let wants_login = login.is_some();
    let report = runtime()?.block_on(async {
        // The broker's own compile cache, so that checking and then serving compiles once.
        let runtime = MapperRuntime::new(RuntimeConfig {
            cache_dir: Settings::defaults().mapper.cache_dir,
            ..RuntimeConfig::default()
        })?;
        interstate_mapper::check(&runtime, source, settings, login).await
    });
    let report = report.with_context(|| format!("{} did not load", args.file))?;
    print!("{report}");
    let logged_in = matches!(report.login, Some((_, Ok(AuthOutcome::Accepted(_)))))
        && matches!(report.desktops, Some(Ok(_)));
    if wants_login && !logged_in {
        if matches!(report.login, Some((_, Ok(AuthOutcome::Challenge(_))))) {
            bail!(
                "the password was accepted, but the mapper asks for a second step that `mapper check` cannot answer"
            );
        }
        bail!("the login did not succeed (see above)");
    }
    Ok(ExitCode::SUCCESS)
}
