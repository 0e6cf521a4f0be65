//! `interstate agent forget|trust|show`: the operator's word on agent certificate pins (trust on
//! first use, `agent.tls.verify: "tofu"`), through the admin listener.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use crate::reload::admin_post;
use crate::runtime;

/// `interstate agent`.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Forget an agent's pinned certificate: the next launch pins the one it then presents.
    Forget(ForgetArgs),
    /// Pin an agent's certificate to a given SHA-256 fingerprint now.
    Trust(TrustArgs),
}

/// Where the broker's admin listener is.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The admin listener, such as http://127.0.0.1:9443.
    #[arg(long)]
    pub admin: String,
    /// The admin token (or INTERSTATE_ADMIN_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
}

/// `interstate agent forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The agent, HOST[:PORT] (PORT defaults to the broker's agent.port; IPv6 as [v6]:PORT).
    pub agent: String,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `interstate agent trust`.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// The agent, HOST[:PORT] (PORT defaults to the broker's agent.port; IPv6 as [v6]:PORT).
    pub agent: String,
    /// SHA-256 of the agent's certificate, 64 hex digits (colons allowed).
    #[arg(long)]
    pub fingerprint: String,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Runs `interstate agent ...`.
pub fn run(command: AgentCommand) -> Result<ExitCode> {
    let (admin, path) = match &command {
        AgentCommand::Forget(args) => (
            &args.admin,
            format!("/agents/forget?agent={}", encode(&args.agent)),
        ),
        AgentCommand::Trust(args) => (
            &args.admin,
            format!(
                "/agents/trust?agent={}&fingerprint={}",
                encode(&args.agent),
                encode(&args.fingerprint)
            ),
        ),
    };
    let token = admin
        .token
        .clone()
        .or_else(|| std::env::var("INTERSTATE_ADMIN_TOKEN").ok());
    let (status, body) = runtime()?.block_on(admin_post(&admin.admin, &path, token.as_deref()))?;
    print!("{body}");
    if status != 200 {
        bail!("the broker refused (HTTP {status})");
    }
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes everything but unreserved characters, for a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ipv6_agents_are_encoded() {
        assert_eq!(super::encode("[::1]:4172"), "%5B%3A%3A1%5D%3A4172");
        assert_eq!(super::encode("ws1.example.com"), "ws1.example.com");
    }
}
