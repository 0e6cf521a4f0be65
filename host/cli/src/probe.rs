//! `interstate probe URL`: a whole PCoIP client flow against any broker, every client quirk
//! checked (the flow itself is `interstate_tools::probe`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use interstate_tools::probe::ProbeOptions;
use interstate_tools::target::Target;

use crate::tool_args::{PasswordArgs, RootArg, TlsArgs};

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
pub fn run(args: ProbeArgs) -> Result<ExitCode> {
    let target = Target::parse(&args.url)?;
    let verify = args.tls.verify()?.context(
        "say how to check the broker's certificate: --ca FILE (the CA that signed it), \
         --pin SHA256 (its fingerprint, as `interstate serve` prints it) or --insecure \
         (accept any certificate, like PCoIP client security mode 0)",
    )?;
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
        .block_on(interstate_tools::probe::run(&options))?;
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
