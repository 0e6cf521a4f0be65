//! The options `interstate probe` and `interstate bench` share: the request root, how the
//! broker's certificate is checked, where the password comes from.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use interstate_protocol::Root;
use interstate_tools::probe::tls;
use interstate_tools::wire::Verify;
use zeroize::Zeroizing;

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
    pub fn verify(&self) -> Result<Option<Verify>> {
        if self.insecure {
            return Ok(Some(Verify::Insecure));
        }
        if let Some(path) = &self.ca {
            return Ok(Some(Verify::Ca(path.clone())));
        }
        if let Some(pin) = &self.pin {
            let Some(pin) = tls::parse_pin(pin) else {
                bail!(
                    "--pin {pin:?}: expected a SHA-256 fingerprint (64 hex digits, colons allowed)"
                );
            };
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
    pub fn read(&self) -> Result<Zeroizing<String>> {
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
        bail!(
            "no password: set {} or run from a terminal to be prompted",
            self.password_env
        )
    }
}
