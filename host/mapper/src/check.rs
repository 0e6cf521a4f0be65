//! `interstate mapper check`: load a component, show what it is, and optionally try a login.

use std::fmt;

use interstate_protocol::policy::{
    AuthOutcome, ClientContext, Desktop, Identity, Mapper, MapperError, PasswordLogin, Secret,
};

use crate::config::{MapperSettings, MapperSource};
use crate::error::LoadError;
use crate::mapper::{MapperInfo, WasmMapper};
use crate::runtime::MapperRuntime;

/// A login to try after loading.
#[derive(Debug, Clone)]
pub struct CheckLogin {
    /// The user name.
    pub username: String,
    /// The password (never printed).
    pub password: Secret,
    /// The domain; empty for none.
    pub domain: String,
}

/// What `check` found. `Display` prints the report for the operator.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// What the host learned at load time (configure ran and succeeded).
    pub info: MapperInfo,
    /// The login tried, if any, and its outcome.
    pub login: Option<(String, Result<AuthOutcome, MapperError>)>,
    /// The desktops listed for an accepted login.
    pub desktops: Option<Result<Vec<Desktop>, MapperError>>,
}

/// Reads a `--settings` argument: inline JSON, or `@path` for a file.
pub fn settings_argument(value: &str) -> std::io::Result<String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path),
        None => Ok(value.to_owned()),
    }
}

/// Loads `source` with `settings` (which runs `configure` and `domains`), then, with a
/// `login`, tries `authenticate` and, if accepted, `list-desktops`.
pub async fn check(
    runtime: &MapperRuntime,
    source: MapperSource,
    settings: MapperSettings,
    login: Option<CheckLogin>,
) -> Result<CheckReport, LoadError> {
    let mapper: WasmMapper = runtime.load(source, settings).await?;
    let mut report = CheckReport {
        info: mapper.info().clone(),
        login: None,
        desktops: None,
    };
    if let Some(login) = login {
        let client = ClientContext {
            address: "127.0.0.1".to_owned(),
            product_name: "interstate mapper check".to_owned(),
            ..ClientContext::default()
        };
        let attempt = PasswordLogin {
            username: login.username.clone(),
            password: login.password,
            domain: login.domain,
            client: client.clone(),
        };
        let outcome = mapper.authenticate(&attempt).await;
        if let Ok(AuthOutcome::Accepted(identity)) = &outcome {
            report.desktops = Some(list(&mapper, identity, &client).await);
        }
        report.login = Some((login.username, outcome));
    }
    Ok(report)
}

async fn list(
    mapper: &WasmMapper,
    identity: &Identity,
    client: &ClientContext,
) -> Result<Vec<Desktop>, MapperError> {
    mapper.list_desktops(identity, client).await
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = &self.info;
        writeln!(f, "mapper      {}", info.name)?;
        writeln!(
            f,
            "contract    interstate:mapper/policy@{}",
            info.world_version
        )?;
        writeln!(f, "sha256      {}", info.sha256)?;
        writeln!(f, "size        {} bytes", info.size_bytes)?;
        writeln!(
            f,
            "compiled    {:.1} ms{}",
            info.compile_time.as_secs_f64() * 1e3,
            if info.from_cache { " (from cache)" } else { "" }
        )?;
        writeln!(
            f,
            "loaded      {:.1} ms",
            info.load_time.as_secs_f64() * 1e3
        )?;
        writeln!(f, "exports     {}", info.exports.join(", "))?;
        writeln!(f, "imports")?;
        for import in &info.imports {
            writeln!(f, "  {import}")?;
        }
        writeln!(f, "configure   ok")?;
        if info.domains.is_empty() {
            writeln!(f, "domains     (none)")?;
        } else {
            writeln!(f, "domains     {}", info.domains.join(", "))?;
        }
        if let Some((username, outcome)) = &self.login {
            match outcome {
                Ok(AuthOutcome::Accepted(identity)) => writeln!(
                    f,
                    "login       {username:?}: accepted as {:?} (domain {:?}, {} attributes)",
                    identity.username,
                    identity.domain,
                    identity.attributes.len()
                )?,
                Ok(AuthOutcome::Rejected(rejection)) => writeln!(
                    f,
                    "login       {username:?}: rejected ({:?}): {}",
                    rejection.kind, rejection.reason
                )?,
                Ok(AuthOutcome::Challenge(dialog)) => writeln!(
                    f,
                    "login       {username:?}: challenge {:?} with {} fields",
                    dialog.prompt,
                    dialog.fields.len()
                )?,
                Ok(AuthOutcome::Disclaimer(disclaimer)) => writeln!(
                    f,
                    "login       {username:?}: disclaimer of {} bytes to accept",
                    disclaimer.text.len()
                )?,
                Err(err) => writeln!(f, "login       {username:?}: failed: {err}")?,
            }
        }
        match &self.desktops {
            None => {}
            Some(Err(err)) => writeln!(f, "desktops    failed: {err}")?,
            Some(Ok(desktops)) => {
                writeln!(f, "desktops    {}", desktops.len())?;
                for desktop in desktops {
                    writeln!(
                        f,
                        "  {}  {:?} on {}{} ({:?}, {:?})",
                        desktop.id,
                        desktop.name,
                        desktop.hostname,
                        desktop
                            .agent_port
                            .map(|port| format!(":{port}"))
                            .unwrap_or_default(),
                        desktop.session_kind,
                        desktop.state
                    )?;
                }
            }
        }
        Ok(())
    }
}
