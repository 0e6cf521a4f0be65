//! `interstate hash-password`: a password hash for SimpleMapper's `password_hash`: argon2id
//! (a PHC string) by default, the ILS format on request (`--ils`, for a file ILS must still
//! read). ILS's format has a fixed salt, so equal passwords give equal hashes and one
//! precomputed table cracks every file; argon2id is salted and memory-hard.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

/// `interstate hash-password`.
#[derive(Debug, Args)]
pub struct HashPasswordArgs {
    /// Print the ILS format (PBKDF2-HMAC-SHA256, fixed salt) instead of argon2id, for a
    /// settings file that interstate_love_song must also read.
    #[arg(long, conflicts_with = "argon2")]
    ils: bool,
    /// argon2id, the default; accepted so that older scripts keep working.
    #[arg(long, hide = true)]
    argon2: bool,
    /// The password. Prefer leaving it out: it is then read from a prompt or standard input, and
    /// stays out of the shell history and the process list.
    pub password: Option<String>,
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

/// Prints the hash of the password given, prompted for or read from standard input.
pub fn run(args: HashPasswordArgs) -> Result<ExitCode> {
    let password = match args.password {
        Some(p) => p,
        None => read_secret("Password: ")?,
    };
    let hash = if args.ils {
        interstate_mapper::password::hash_ils(&password)
    } else {
        interstate_mapper::password::hash_argon2id(&password)
    };
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}
