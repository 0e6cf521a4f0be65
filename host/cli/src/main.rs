//! `interstate`: the command line. The broker is the `interstate` library; the client-side
//! tools (probe, bench, the fake agent) are `interstate-tools`.
//!
//! # Layout
//! One module per subcommand: [`serve`] (also the default, for interstate_love_song command
//! lines), [`settings`], [`hash_password`], [`mapper`] (`mapper check`), [`reload`], [`agent`]
//! (`agent forget|trust`), [`probe`], [`bench`]; [`tool_args`] holds the options probe and bench share.

mod agent;
mod bench;
mod hash_password;
mod mapper;
mod probe;
mod reload;
mod serve;
mod session_key;
mod settings;
mod tool_args;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use hash_password::HashPasswordArgs;
use mapper::MapperCommand;
use reload::ReloadArgs;
use serve::ServeArgs;

/// The broker allocates per request (XML trees, session records, TLS records); mimalloc's
/// thread-local free lists cost measurably less than glibc's malloc under many small
/// allocations on few cores (bench/stores.sh, keep-alive hellos).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Print a password hash for SimpleMapper's `password_hash` (argon2id; `--ils` for ILS's format).
    HashPassword(HashPasswordArgs),
    /// Work with mapper components.
    #[command(subcommand)]
    Mapper(MapperCommand),
    /// Ask a running broker to reload its settings, mapper and certificate.
    Reload(ReloadArgs),
    /// Forget or set an agent's pinned certificate (trust on first use) on a running broker.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Play a whole PCoIP client flow against a broker and check every client quirk.
    Probe(probe::ProbeArgs),
    /// Load a broker with simulated clients; report throughput, latency and server usage.
    Bench(bench::BenchArgs),
    /// Make or rotate the key file that seals what the Redis store keeps (`session.key_file`).
    #[command(subcommand)]
    SessionKey(session_key::SessionKeyCommand),
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
        None => serve::run(cli.serve),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Settings) => settings::run(),
        Some(Command::HashPassword(args)) => hash_password::run(args),
        Some(Command::Mapper(MapperCommand::Check(args))) => mapper::check(args),
        Some(Command::Reload(args)) => reload::run(args),
        Some(Command::Agent(command)) => agent::run(command),
        Some(Command::Probe(args)) => probe::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::SessionKey(command)) => session_key::run(command),
    }
}

/// A multi-threaded tokio runtime for the subcommands that need one.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}
