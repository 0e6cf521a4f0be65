//! `interstate session-key`: the key file under which the shared (Redis) store seals sessions
//! and passwords (`session.key_file`). Every node of a broker needs the same file.
//!
//! - `new FILE` writes a file with one fresh key (mode 0600) and refuses to overwrite one.
//! - `rotate FILE` puts a fresh key first, keeps the previous ones after it (they still open
//!   what they sealed), and drops keys past `--keep`. Copy the file to every node, then reload
//!   each (`interstate reload` or SIGHUP): a node seals with the new key once it has reloaded,
//!   and every node opens both meanwhile. Rotate again only after sessions sealed under the
//!   oldest kept key have expired (`session.absolute_timeout_s`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use interstate::store::SealKeys;
use zeroize::Zeroizing;

/// `interstate session-key`.
#[derive(Debug, Subcommand)]
pub enum SessionKeyCommand {
    /// Write a new key file with one fresh key (refuses to overwrite a file).
    New {
        /// The file to write.
        file: PathBuf,
    },
    /// Put a fresh key first in an existing key file, keeping previous keys to open old blobs.
    Rotate {
        /// The key file.
        file: PathBuf,
        /// Keys kept in all, the new one included.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..=16))]
        keep: u16,
    },
}

/// Runs a `session-key` subcommand.
pub fn run(command: SessionKeyCommand) -> Result<ExitCode> {
    match command {
        SessionKeyCommand::New { file } => {
            if file.exists() {
                bail!(
                    "{} exists; use `interstate session-key rotate {}` to add a key to it",
                    file.display(),
                    file.display()
                );
            }
            let text = Zeroizing::new(format!(
                "# Interstate session keys (session.key_file): the first seals, every one opens.\n{}\n",
                SealKeys::new_key_line().as_str()
            ));
            write_private(&file, &text)?;
            let keys = SealKeys::load(&file)?;
            println!(
                "interstate: wrote {} (key {})",
                file.display(),
                keys.key_ids().join(", ")
            );
        }
        SessionKeyCommand::Rotate { file, keep } => {
            let old = SealKeys::load(&file)
                .with_context(|| format!("cannot use {} as a key file", file.display()))?;
            let text = Zeroizing::new(
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?,
            );
            let previous: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .take(usize::from(keep) - 1)
                .collect();
            let new_line = SealKeys::new_key_line();
            let mut out = Zeroizing::new(String::from(
                "# Interstate session keys (session.key_file): the first seals, every one opens.\n",
            ));
            out.push_str(&new_line);
            out.push('\n');
            for line in previous {
                out.push_str(line);
                out.push('\n');
            }
            write_private(&file, &out)?;
            let keys = SealKeys::load(&file)?;
            println!(
                "interstate: {} now seals with key {} (was {}); keys kept: {}. Copy it to every node, then reload each.",
                file.display(),
                keys.key_ids()[0],
                old.key_ids()[0],
                keys.key_ids().join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to `file` readable by its owner only, through a temporary file and a rename.
fn write_private(file: &Path, text: &str) -> Result<()> {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        file.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("session.key")
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = std::fs::remove_file(&tmp);
    let mut out = options
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("cannot replace {}", file.display()))?;
    Ok(())
}
