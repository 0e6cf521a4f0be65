//! `interstate serve` (and `interstate [FLAGS]` without a subcommand, as interstate_love_song
//! command lines have it): run the broker until SIGTERM or Ctrl-C; SIGHUP reloads.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use interstate::settings::{RawSettings, Settings};
use tracing_subscriber::EnvFilter;

use crate::runtime;

/// `interstate serve`, and the flags of `interstate` without a subcommand.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: settings `server.host`, else 0.0.0.0].
    #[arg(long)]
    pub host: Option<String>,
    /// Port to listen on [default: settings `server.port`, else 60443].
    #[arg(short, long)]
    pub port: Option<u16>,
    /// The settings file (interstate_love_song's settings.json works unchanged).
    #[arg(long, short = 'c', env = "INTERSTATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// PEM certificate chain; without it a self-signed certificate is generated.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Write the process id here (for `interstate reload --pid-file`).
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Track sessions by the Client-Log-Id header when the client drops the cookie.
    #[arg(long = "fallback-sessions", alias = "fallback_sessions")]
    pub fallback_sessions: bool,
    /// Accepted for interstate_love_song compatibility and ignored (Interstate is its own server).
    #[arg(short = 's', long = "server", hide = true)]
    pub ils_server: Option<String>,
    /// Accepted for interstate_love_song compatibility and ignored.
    #[arg(long = "gunicorn-worker-class", hide = true)]
    pub ils_worker_class: Option<String>,
    /// Accepted for interstate_love_song compatibility and ignored.
    #[arg(long = "gunicorn-workers", hide = true)]
    pub ils_workers: Option<u32>,
    /// Accepted for interstate_love_song compatibility and ignored.
    #[arg(long = "no-splash", hide = true)]
    pub ils_no_splash: bool,
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
            // Audit records have their own writer (logging.audit_file or standard error); their
            // `tracing` copies are off unless INTERSTATE_LOG asks for `interstate::audit`.
            "{},wasmtime=warn,cranelift=warn,interstate::audit=off",
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

/// Runs the broker until it is asked to stop.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
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
        let admin_scheme = match settings.admin_listen {
            Some(addr) if settings.admin_tls || !addr.ip().is_loopback() => "https",
            _ => "http",
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
                "interstate: admin listener on {admin_scheme}://{addr} (/dashboard, /feed, /admin/api, /healthz, /metrics, POST /reload, /agents/…)"
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
        let _ = reloader.reload_by(&running, "SIGHUP").await;
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
