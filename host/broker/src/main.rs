//! `interstate`: the command line.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use interstate::settings::{RawSettings, Settings};
use tracing_subscriber::EnvFilter;

/// Interstate: a PCoIP connection broker with WebAssembly-sandboxed mappers.
///
/// With no subcommand, `interstate [FLAGS]` runs `serve` (so interstate_love_song command lines
/// keep working).
#[derive(Debug, Parser)]
#[command(name = "interstate", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker (the default).
    Serve(ServeArgs),
    /// Print the default settings as JSON (a starting settings.json).
    Settings,
    /// Print a password hash for SimpleMapper's `password_hash` (the ILS format by default).
    HashPassword(HashPasswordArgs),
    /// Work with mapper components.
    #[command(subcommand)]
    Mapper(MapperCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on [default: settings `server.host`, else 0.0.0.0].
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on [default: settings `server.port`, else 60443].
    #[arg(short, long)]
    port: Option<u16>,
    /// The settings file (interstate_love_song's settings.json works unchanged).
    #[arg(long, short = 'c', env = "INTERSTATE_CONFIG")]
    config: Option<PathBuf>,
    /// PEM certificate chain; without it a self-signed certificate is generated.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Track sessions by the Client-Log-Id header when the client drops the cookie.
    #[arg(long = "fallback-sessions", alias = "fallback_sessions")]
    fallback_sessions: bool,
    /// Accepted for interstate_love_song compatibility and ignored (Interstate is its own server).
    #[arg(short = 's', long = "server", hide = true)]
    ils_server: Option<String>,
    /// Accepted for interstate_love_song compatibility and ignored.
    #[arg(long = "gunicorn-worker-class", hide = true)]
    ils_worker_class: Option<String>,
    /// Accepted for interstate_love_song compatibility and ignored.
    #[arg(long = "gunicorn-workers", hide = true)]
    ils_workers: Option<u32>,
    /// Accepted for interstate_love_song compatibility and ignored.
    #[arg(long = "no-splash", hide = true)]
    ils_no_splash: bool,
}

#[derive(Debug, Args)]
struct HashPasswordArgs {
    /// Hash with argon2id (a PHC string) instead of the ILS PBKDF2 format.
    #[arg(long)]
    argon2: bool,
    /// The password. Prefer leaving it out: it is then read from a prompt or standard input, and
    /// stays out of the shell history and the process list.
    password: Option<String>,
}

#[derive(Debug, Subcommand)]
enum MapperCommand {
    /// Load a component, report its version and exports, run configure, and optionally a login
    /// and a listing.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The component (`.wasm`), or `SimpleMapper` for the embedded one.
    file: String,
    /// The mapper settings: inline JSON, or `@file.json`.
    #[arg(long, default_value = "{}")]
    settings: String,
    /// Try a login as this user.
    #[arg(long, requires = "password")]
    user: Option<String>,
    /// The password for --user (or set INTERSTATE_PASSWORD and pass `--password -`).
    #[arg(long, requires = "user")]
    password: Option<String>,
    /// The domain for --user.
    #[arg(long, default_value = "")]
    domain: String,
    /// Hosts the mapper may call over HTTP.
    #[arg(long = "allow-host")]
    allowed_hosts: Vec<String>,
    /// Call deadline in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("interstate: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Settings) => {
            println!("{}", serde_json::to_string_pretty(&RawSettings::default())?);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::HashPassword(args)) => hash_password(args),
        Some(Command::Mapper(MapperCommand::Check(args))) => mapper_check(args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

fn load_settings(args: &ServeArgs) -> Result<Settings> {
    let mut raw = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the settings file {}", path.display()))?;
            RawSettings::parse(&text, path)?
        }
        None => RawSettings::default(),
    };
    if let Some(host) = &args.host {
        raw.server.host.clone_from(host);
    }
    if let Some(port) = args.port {
        raw.server.port = port;
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        raw.server.cert = Some(cert.display().to_string());
        raw.server.key = Some(key.display().to_string());
    }
    if args.fallback_sessions {
        raw.server.fallback_sessions = true;
    }
    let origin = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("<defaults>"));
    Ok(Settings::from_raw(raw, &origin)?)
}

fn init_logging(settings: &Settings) {
    let filter = EnvFilter::try_from_env("INTERSTATE_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{},wasmtime=warn,cranelift=warn",
            settings.log_level.as_filter()
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    if args.ils_server.is_some() || args.ils_workers.is_some() || args.ils_worker_class.is_some() {
        eprintln!(
            "interstate: note: --server and --gunicorn-* are interstate_love_song options; ignored"
        );
    }
    let settings = load_settings(&args)?;
    init_logging(&settings);
    runtime()?.block_on(async move {
        let listener = interstate::app::bind(&settings).await?;
        let config = args.config.clone();
        let running = interstate::app::start(settings, listener, shutdown_signal()).await?;
        let kind = if running.self_signed {
            "self-signed certificate"
        } else {
            "certificate"
        };
        println!(
            "interstate: serving PCoIP clients on https://{}/pcoip-broker/xml",
            running.local_addr
        );
        println!(
            "interstate: {kind} SHA-256 fingerprint {}",
            running.fingerprint
        );
        let _ = std::io::stdout().flush();
        let running = std::sync::Arc::new(running);
        let reloader = tokio::spawn(reload_on_sighup(running.clone(), config));
        running.stopped().await;
        reloader.abort();
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn reload_on_sighup(
    running: std::sync::Arc<interstate::app::Running>,
    config: Option<PathBuf>,
) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        let Some(path) = &config else {
            tracing::warn!("SIGHUP: no --config file to reload");
            continue;
        };
        match Settings::load(path) {
            Ok(settings) => {
                if let Err(e) = running.reload(settings).await {
                    tracing::error!(error = %e, "reload refused; the previous configuration keeps serving");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reload refused; the previous configuration keeps serving")
            }
        }
    }
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}

fn read_secret(prompt: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        let second = rpassword::prompt_password("Again: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

fn hash_password(args: HashPasswordArgs) -> Result<ExitCode> {
    let password = match args.password {
        Some(p) => p,
        None => read_secret("Password: ")?,
    };
    let hash = if args.argon2 {
        interstate_mapper::password::hash_argon2id(&password)
    } else {
        interstate_mapper::password::hash_ils(&password)
    };
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}

fn mapper_check(args: CheckArgs) -> Result<ExitCode> {
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
    let source = if args.file == "SimpleMapper" {
        MapperSource::Simple
    } else {
        MapperSource::File(PathBuf::from(&args.file))
    };
    let settings = MapperSettings {
        settings_json,
        timeout: std::time::Duration::from_millis(args.timeout_ms),
        allowed_hosts: args.allowed_hosts,
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
        let runtime = MapperRuntime::new(RuntimeConfig::default())?;
        interstate_mapper::check(&runtime, source, settings, login).await
    });
    let report = report.with_context(|| format!("{} did not load", args.file))?;
    print!("{report}");
    let logged_in = matches!(report.login, Some((_, Ok(AuthOutcome::Accepted(_)))))
        && matches!(report.desktops, Some(Ok(_)));
    if wants_login && !logged_in {
        bail!("the login did not succeed (see above)");
    }
    Ok(ExitCode::SUCCESS)
}
