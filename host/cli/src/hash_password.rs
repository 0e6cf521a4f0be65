//! `interstate hash-password`: a password hash for SimpleMapper's `password_hash` (the ILS
//! format by default, argon2id on request).

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

/// `interstate hash-password`.
#[derive(Debug, Args)]
pub struct HashPasswordArgs {
    /// Hash with argon2id (a PHC string) instead of the ILS PBKDF2 format.
    #[arg(long)]
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
    let hash = if args.argon2 {
        interstate_mapper::password::hash_argon2id(&password)
    } else {
        interstate_mapper::password::hash_ils(&password)
    };
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}
