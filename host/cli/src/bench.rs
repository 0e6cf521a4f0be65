//! `interstate bench URL`: simulated clients against a broker (the load itself is
//! `interstate_tools::bench`), and `--fake-agent`, the PCoIP agent benchmark setups call.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use interstate_tools::agent::FakeAgent;
use interstate_tools::bench::{BenchOptions, Mode};
use interstate_tools::target::Target;
use interstate_tools::wire::Verify;

use crate::tool_args::{PasswordArgs, RootArg, TlsArgs};

/// What each client loops over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Whole flows: probe, hello, authenticate, list, allocate, bye.
    Flow,
    /// One real hello per iteration on a kept-alive connection.
    Hello,
    /// One `QueryBrokerClient` hello per iteration.
    Probe,
    /// One hello per iteration without sending the cookie back: each leaves an idle session.
    Sessions,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Flow => Mode::Flow,
            ModeArg::Hello => Mode::Hello,
            ModeArg::Probe => Mode::Probe,
            ModeArg::Sessions => Mode::Sessions,
        }
    }
}

/// `interstate bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The broker, such as https://127.0.0.1:60443.
    #[arg(required_unless_present = "fake_agent")]
    pub url: Option<String>,
    /// What each client loops over.
    #[arg(long, value_enum, default_value = "hello")]
    pub mode: ModeArg,
    /// Simulated clients.
    #[arg(long, short = 'c', default_value_t = 8)]
    pub concurrency: usize,
    /// No flow starts after this many seconds.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// No more than this many flows start.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    pub flows: u64,
    /// Open a new TLS connection for every flow, as a client launch does.
    #[arg(long)]
    pub new_connection_per_flow: bool,
    /// The user (flow mode).
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Where the password comes from.
    #[command(flatten)]
    pub password: PasswordArgs,
    /// The domain sent with the password.
    #[arg(long, default_value = "")]
    pub domain: String,
    /// The resource to allocate, by id or name [default: the first listed].
    #[arg(long)]
    pub resource: Option<String>,
    /// The root element of requests.
    #[arg(long, value_enum, default_value = "pcoip-client")]
    pub root: RootArg,
    /// Do not send the cookie back; rely on Client-Log-Id sessions.
    #[arg(long = "fallback-sessions", alias = "fallback_sessions")]
    pub fallback_sessions: bool,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Deadline of each request, in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout_s: u64,
    /// Server process ids to report CPU time and memory for (repeat for gunicorn workers).
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// A name for the broker in the report.
    #[arg(long)]
    pub label: Option<String>,
    /// Print only the JSON line.
    #[arg(long)]
    pub json_only: bool,
    /// How the broker's certificate is checked.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Serve a fake PCoIP agent (HTTPS, always SUCCESSFUL) on this address until interrupted,
    /// for benchmark setups.
    #[arg(long, value_name = "ADDR", hide = true)]
    pub fake_agent: Option<SocketAddr>,
}

/// Runs `interstate bench`: success unless no flow succeeded.
pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(addr) = args.fake_agent {
        return runtime.block_on(fake_agent(addr));
    }
    let url = args.url.as_deref().context("the broker URL is missing")?;
    let mut options = BenchOptions::new(Target::parse(url)?);
    // A load test measures the broker, not its certificate: any certificate is accepted unless
    // the caller asks for a check.
    options.verify = args.tls.verify()?.unwrap_or(Verify::Insecure);
    options.mode = args.mode.into();
    options.concurrency = args.concurrency;
    if !(args.duration.is_finite() && args.duration > 0.0) {
        bail!("--duration must be a positive number of seconds");
    }
    options.duration = Duration::from_secs_f64(args.duration);
    options.max_flows = args.flows;
    options.new_connection_per_flow = args.new_connection_per_flow;
    if options.mode == Mode::Flow {
        options.username = args.user.clone().context(
            "--mode flow logs in: give --user (the password comes from the environment or a prompt)",
        )?;
        options.password = args.password.read()?;
    }
    options.domain = args.domain;
    options.resource = args.resource;
    options.root = args.root.into();
    options.fallback_sessions = args.fallback_sessions;
    options.allow_remote = args.allow_remote;
    options.timeout = Duration::from_secs(args.timeout_s.max(1));
    options.progress = !args.json_only && std::io::stderr().is_terminal();
    options.server_pids = args.pids;
    options.label = args.label;
    let report = runtime.block_on(interstate_tools::bench::run(&options))?;
    if !args.json_only {
        print!("{}", report.to_text());
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(if report.flows_ok > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn fake_agent(addr: SocketAddr) -> Result<ExitCode> {
    let agent = FakeAgent::start_fast(addr).await?;
    println!(
        "fake agent listening on https://{}/pcoip-agent/xml",
        agent.addr
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}
