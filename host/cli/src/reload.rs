//! `interstate reload`: ask a running broker to reload its settings, mapper and certificate,
//! by SIGHUP (`--pid-file`) or through the admin listener (`--admin`, with hyper's client).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Empty};

use crate::runtime;

/// `interstate reload`.
#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// The pid file the broker was started with (`serve --pid-file`); sends it SIGHUP.
    #[arg(long, conflicts_with = "admin")]
    pub pid_file: Option<PathBuf>,
    /// The admin listener, such as http://127.0.0.1:9443; waits for the outcome.
    #[arg(long)]
    pub admin: Option<String>,
    /// The admin token (or INTERSTATE_ADMIN_TOKEN).
    #[arg(long, requires = "admin")]
    pub token: Option<String>,
}

/// Runs `interstate reload`.
pub fn run(args: ReloadArgs) -> Result<ExitCode> {
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
pub(crate) async fn admin_post(
    url: &str,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String)> {
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
        .send_request(request.body(Empty::<Bytes>::new())?)
        .await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
