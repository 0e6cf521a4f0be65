//! The `interstate probe` command line, and the options it shares with `interstate bench`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use interstate_protocol::Root;
use zeroize::Zeroizing;

use crate::client::Verify;
use crate::probe::target::{Target, TargetError};
use crate::probe::{ProbeError, ProbeOptions, tls};

/// Why a probe or bench command could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The URL.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The probe's own setup.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The bench's own setup.
    #[error(transparent)]
    Bench(#[from] crate::bench::BenchError),
    /// Options missing or contradictory.
    #[error("{0}")]
    Usage(String),
    /// The runtime or the terminal.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The JSON output.
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The root element requests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RootArg {
    /// `<pcoip-client>`, what real clients send.
    PcoipClient,
    /// `<pcoip-broker>`, what the published protocol page shows.
    PcoipBroker,
}

impl From<RootArg> for Root {
    fn from(root: RootArg) -> Self {
        match root {
            RootArg::PcoipClient => Root::PcoipClient,
            RootArg::PcoipBroker => Root::PcoipBroker,
        }
    }
}

/// How the broker's certificate is checked.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Accept any certificate (PCoIP client security mode 0; the handshake is still checked).
    #[arg(long, conflicts_with_all = ["ca", "pin"])]
    pub insecure: bool,
    /// Accept certificates signed by this CA (PEM) for the URL's host name.
    #[arg(long, value_name = "FILE", conflicts_with = "pin")]
    pub ca: Option<PathBuf>,
    /// Accept only the certificate with this SHA-256 fingerprint (hex, colons allowed), as
    /// `interstate serve` prints it.
    #[arg(long, value_name = "SHA256")]
    pub pin: Option<String>,
}

impl TlsArgs {
    /// The verification asked for; `None` when no flag was given.
    pub fn verify(&self) -> Result<Option<Verify>, CommandError> {
        if self.insecure {
            return Ok(Some(Verify::Insecure));
        }
        if let Some(path) = &self.ca {
            return Ok(Some(Verify::Ca(path.clone())));
        }
        if let Some(pin) = &self.pin {
            let pin = tls::parse_pin(pin).ok_or_else(|| {
                CommandError::Usage(format!(
                    "--pin {pin:?}: expected a SHA-256 fingerprint (64 hex digits, colons allowed)"
                ))
            })?;
            return Ok(Some(Verify::Pin(pin)));
        }
        Ok(None)
    }
}

/// Where the password comes from. Never from the command line unless explicitly asked: argv is
/// visible to every user of the machine and lands in shell history.
#[derive(Debug, Clone, Args)]
pub struct PasswordArgs {
    /// Read the password from this environment variable when it is set; otherwise prompt.
    #[arg(long, value_name = "VAR", default_value = "INTERSTATE_PASSWORD")]
    pub password_env: String,
    /// The password itself, on the command line (visible in the process list; for throwaway
    /// test accounts only).
    #[arg(long, value_name = "PASSWORD")]
    pub password_argv: Option<String>,
}

impl PasswordArgs {
    /// The password: `--password-argv` (with a warning), the environment variable, or a prompt.
    pub fn read(&self) -> Result<Zeroizing<String>, CommandError> {
        if let Some(password) = &self.password_argv {
            eprintln!(
                "interstate: warning: --password-argv puts the password in the process list and shell history"
            );
            return Ok(Zeroizing::new(password.clone()));
        }
        if let Ok(password) = std::env::var(&self.password_env) {
            return Ok(Zeroizing::new(password));
        }
        if std::io::stdin().is_terminal() {
            return Ok(Zeroizing::new(rpassword::prompt_password("Password: ")?));
        }
        Err(CommandError::Usage(format!(
            "no password: set {} or run from a terminal to be prompted",
            self.password_env
        )))
    }
}

/// `interstate probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The broker, such as https://broker.example.com or https://127.0.0.1:60443/pcoip-broker/xml.
    pub url: String,
    /// The user to log in as.
    #[arg(long, short = 'u')]
    pub user: String,
    /// Where the password comes from.
    #[command(flatten)]
    pub password: PasswordArgs,
    /// The domain [default: the first one the broker offers].
    #[arg(long)]
    pub domain: Option<String>,
    /// Do not send the cookie back; rely on the broker tracking the session by Client-Log-Id.
    #[arg(long = "fallback-sessions", alias = "fallback_sessions")]
    pub fallback_sessions: bool,
    /// The root element of requests.
    #[arg(long, value_enum, default_value = "pcoip-client")]
    pub root: RootArg,
    /// The resource to allocate, by id or name [default: the first listed].
    #[arg(long)]
    pub resource: Option<String>,
    /// Stop after the list: allocation starts a session on the desktop's agent.
    #[arg(long)]
    pub no_allocate: bool,
    /// How the broker's certificate is checked.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Deadline of each request, in seconds.
    #[arg(long, default_value_t = 20)]
    pub timeout_s: u64,
    /// Print one JSON document with every step and check instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `interstate probe`: success when every check passed.
pub fn run(args: ProbeArgs) -> Result<ExitCode, CommandError> {
    let target = Target::parse(&args.url)?;
    let verify = args.tls.verify()?.ok_or_else(|| {
        CommandError::Usage(
            "say how to check the broker's certificate: --ca FILE (the CA that signed it), \
             --pin SHA256 (its fingerprint, as `interstate serve` prints it) or --insecure \
             (accept any certificate, like PCoIP client security mode 0)"
                .into(),
        )
    })?;
    let password = args.password.read()?;
    let mut options = ProbeOptions::new(target, verify, &args.user, "");
    options.password = password;
    options.domain = args.domain;
    options.fallback_sessions = args.fallback_sessions;
    options.root = args.root.into();
    options.resource = args.resource;
    options.allocate = !args.no_allocate;
    options.timeout = Duration::from_secs(args.timeout_s.max(1));
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(crate::probe::run(&options))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(match &report.failure {
        None => ExitCode::SUCCESS,
        Some(reason) => {
            if args.json {
                eprintln!("interstate: probe failed: {reason}");
            }
            ExitCode::FAILURE
        }
    })
}
