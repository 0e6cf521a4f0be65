//! `interstate`: the command line.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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
    /// Ask a running broker to reload its settings, mapper and certificate.
    Reload(ReloadArgs),
    /// Play a whole PCoIP client flow against a broker and check every client quirk.
    Probe(interstate::probe::cli::ProbeArgs),
    /// Load a broker with simulated clients; report throughput, latency and server usage.
    Bench(interstate::bench::cli::BenchArgs),
}

#[derive(Debug, Args)]
struct ReloadArgs {
    /// The pid file the broker was started with (`serve --pid-file`); sends it SIGHUP.
    #[arg(long, conflicts_with = "admin")]
    pid_file: Option<PathBuf>,
    /// The admin listener, such as http://127.0.0.1:9443; waits for the outcome.
    #[arg(long)]
    admin: Option<String>,
    /// The admin token (or INTERSTATE_ADMIN_TOKEN).
    #[arg(long, requires = "admin")]
    token: Option<String>,
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
    /// Write the process id here (for `interstate reload --pid-file`).
    #[arg(long)]
    pid_file: Option<PathBuf>,
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
        Some(Command::Reload(args)) => reload(args),
        Some(Command::Probe(args)) => Ok(interstate::probe::cli::run(args)?),
        Some(Command::Bench(args)) => Ok(interstate::bench::cli::run(args)?),
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
    let pid_file = args.pid_file.clone();
    runtime()?.block_on(async move {
        // Installed before anything else so that an early SIGHUP cannot kill the process.
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot install the SIGHUP handler")?;
        let listener = interstate::app::bind(&settings).await?;
        let admin = match settings.admin_listen {
            Some(addr) => Some((
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on admin.listen {addr}"))?,
                settings.admin_token.clone(),
            )),
            None => None,
        };
        let (stop_admin, admin_stopped) = tokio::sync::watch::channel(false);
        let running =
            Arc::new(interstate::app::start(settings, listener, shutdown_signal()).await?);
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
        if args.config.is_none() {
            println!(
                "interstate: no --config: the built-in SimpleMapper accepts nobody until settings name a user \
                 (start from `interstate settings`; make a hash with `interstate hash-password`)"
            );
        }
        if let Some(path) = &pid_file {
            std::fs::write(path, format!("{}\n", std::process::id()))
                .with_context(|| format!("cannot write the pid file {}", path.display()))?;
        }
        let source: Arc<interstate::app::SettingsSource> =
            Arc::new(move || load_settings(&args).map_err(|e| format!("{e:#}")));
        let reloader = interstate::app::Reloader::new(source);
        if let Some((listener, token)) = admin {
            let addr = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            println!(
                "interstate: admin listener on http://{addr} (/healthz, /metrics, POST /reload)"
            );
            let mut stopped = admin_stopped.clone();
            tokio::spawn(interstate::admin::run(
                listener,
                running.clone(),
                reloader.clone(),
                token,
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            ));
        }
        let _ = std::io::stdout().flush();
        let hup_task = tokio::spawn(reload_on_sighup(hup, running.clone(), reloader));
        running.stopped().await;
        hup_task.abort();
        let _ = stop_admin.send(true);
        if let Some(path) = &pid_file {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    running: Arc<interstate::app::Running>,
    reloader: interstate::app::Reloader,
) {
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading");
        let _ = reloader.reload(&running).await;
    }
}

fn reload(args: ReloadArgs) -> Result<ExitCode> {
    if let Some(url) = &args.admin {
        let token = args
            .token
            .clone()
            .or_else(|| std::env::var("INTERSTATE_ADMIN_TOKEN").ok());
        let (status, body) = runtime()?.block_on(admin_post(url, "/reload", token.as_deref()))?;
        print!("{body}");
        if status != 200 {
            bail!("the broker refused the reload (HTTP {status})");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let pid_file = args
        .pid_file
        .as_deref()
        .context("give --pid-file PATH (as passed to serve) or --admin URL")?;
    let text = std::fs::read_to_string(pid_file).with_context(|| {
        format!(
            "cannot read {}; is the broker running with --pid-file?",
            pid_file.display()
        )
    })?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("{} does not hold a process id", pid_file.display()))?;
    let pid =
        rustix::process::Pid::from_raw(pid).context("the pid file holds an invalid process id")?;
    rustix::process::kill_process(pid, rustix::process::Signal::HUP)
        .with_context(|| format!("cannot signal process {}", pid.as_raw_nonzero()))?;
    println!(
        "interstate: asked process {} to reload (SIGHUP); its log says whether the new settings were taken",
        pid.as_raw_nonzero()
    );
    Ok(ExitCode::SUCCESS)
}

/// A POST to the admin listener over plain HTTP/1.1.
async fn admin_post(url: &str, path: &str, token: Option<&str>) -> Result<(u16, String)> {
    use http_body_util::{BodyExt, Empty};
    let authority = url
        .strip_prefix("http://")
        .context("the admin URL must start with http:// (the admin listener speaks plain HTTP on a private address)")?
        .trim_end_matches('/');
    let tcp = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to the admin listener at {authority}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    let mut request = http::Request::post(path).header(http::header::HOST, authority);
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = sender
        .send_request(request.body(Empty::<bytes::Bytes>::new())?)
        .await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
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
