//! Builds a Rust guest of `guest-mappers/` with a nested cargo.
//!
//! Shared by `build.rs` (which embeds the SimpleMapper and the SimpleWebserviceMapper) and
//! [`crate::testing`] (which builds the test fixtures), so both build the same way. Each build uses its own target directory,
//! so the nested cargo never waits on the lock of the cargo that runs it; two nested builds of
//! the same directory serialise on cargo's own lock.
#![allow(
    dead_code,
    reason = "build.rs and the library each use part of this module"
)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every guest is built for: it emits a component directly.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// Variables that the outer cargo sets for build scripts and that would break or redirect the
/// nested build (the list follows substrate-wasm-builder): host RUSTFLAGS, clippy's workspace
/// wrapper, the outer target directory and target, and the outer jobserver.
const SCRUBBED_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_LLVM_COV",
    "CARGO_INCREMENTAL",
];

/// Where and with what to build guests.
#[derive(Debug, Clone)]
pub struct GuestBuilder {
    /// The cargo binary (the `CARGO` the outer build ran with).
    pub cargo: PathBuf,
    /// `guest-mappers/`, the guests' cargo workspace.
    pub guests_dir: PathBuf,
    /// The nested build's own target directory.
    pub target_dir: PathBuf,
}

/// A guest could not be built.
#[derive(Debug)]
pub struct GuestBuildError {
    /// What went wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for GuestBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GuestBuildError {}

impl GuestBuilder {
    /// Builds `package` in release mode and returns the path of its `.wasm` component. When the
    /// toolchain lacks the guest target and rustup manages it, the target is added first (a
    /// toolchain installed before the project never gets the `targets` of
    /// `rust-toolchain.toml`, and `RUSTUP_AUTO_INSTALL=0` machines never add them by themselves).
    pub fn build(&self, package: &str) -> Result<PathBuf, GuestBuildError> {
        let mut built = self.build_all(&[package])?;
        built.pop().ok_or_else(|| GuestBuildError {
            message: format!("cargo built nothing for the guest {package}"),
        })
    }

    /// Builds every package of `packages` with one nested cargo (one lock, one dependency
    /// graph) and returns the paths of their components, in the same order.
    pub fn build_all(&self, packages: &[&str]) -> Result<Vec<PathBuf>, GuestBuildError> {
        ensure_target()?;
        let names = packages.join(", ");
        let mut command = Command::new(&self.cargo);
        command
            .current_dir(&self.guests_dir)
            .arg("build")
            .arg("--release")
            .arg("--target")
            .arg(GUEST_TARGET);
        for package in packages {
            command.arg("-p").arg(package);
        }
        command
            .arg("--manifest-path")
            .arg(self.guests_dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&self.target_dir);
        for name in SCRUBBED_ENV {
            command.env_remove(name);
        }
        let output = command.output().map_err(|err| GuestBuildError {
            message: format!(
                "could not run {} to build {names}: {err}",
                self.cargo.display()
            ),
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let hint = if stderr.contains("may not be installed")
                || stderr.contains("can't find crate for `core`")
                || stderr.contains("can't find crate for `std`")
            {
                format!(
                    "\nThe {GUEST_TARGET} target is missing: run `rustup target add {GUEST_TARGET}`."
                )
            } else {
                String::new()
            };
            return Err(GuestBuildError {
                message: format!(
                    "building {names} in {} failed ({}):\n{}{hint}",
                    self.guests_dir.display(),
                    output.status,
                    tail(&stderr, 60)
                ),
            });
        }
        packages
            .iter()
            .map(|package| {
                let artifact = self.artifact(package);
                if !artifact.is_file() {
                    return Err(GuestBuildError {
                        message: format!(
                            "cargo built the guest {package} but {} does not exist",
                            artifact.display()
                        ),
                    });
                }
                Ok(artifact)
            })
            .collect()
    }

    /// Where cargo puts the component of `package`.
    pub fn artifact(&self, package: &str) -> PathBuf {
        self.target_dir
            .join(GUEST_TARGET)
            .join("release")
            .join(format!("{}.wasm", package.replace('-', "_")))
    }
}

/// Adds [`GUEST_TARGET`] to the active toolchain with rustup when its standard library is
/// missing. Does nothing when it is installed, or when there is no rustup (the build then fails
/// with the hint to install the target by other means).
fn ensure_target() -> Result<(), GuestBuildError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(output) = Command::new(&rustc).args(["--print", "sysroot"]).output() else {
        return Ok(());
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !output.status.success() || sysroot.join("lib/rustlib").join(GUEST_TARGET).is_dir() {
        return Ok(());
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", GUEST_TARGET]);
    if let Some(toolchain) = std::env::var_os("RUSTUP_TOOLCHAIN") {
        rustup.arg("--toolchain").arg(toolchain);
    }
    println!(
        "cargo::warning=the {GUEST_TARGET} target is missing from {}: running `rustup target add {GUEST_TARGET}`",
        sysroot.display()
    );
    match rustup.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(GuestBuildError {
            message: format!(
                "the {GUEST_TARGET} target is missing and `rustup target add {GUEST_TARGET}` failed ({}):\n{}",
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), 20)
            ),
        }),
        // No rustup: let cargo fail with its own message and the hint below.
        Err(_) => Ok(()),
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The guests' workspace, `guest-mappers/` at the repository root.
pub fn guests_dir(manifest_dir: &Path) -> PathBuf {
    manifest_dir.join("..").join("..").join("guest-mappers")
}
