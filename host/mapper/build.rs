//! Builds the SimpleMapper component (`guest-mappers/simple`) so that the library can embed it.

#[path = "src/guest_build.rs"]
mod guest_build;

use std::env;
use std::path::PathBuf;
use std::process::ExitCode;

use guest_build::{GuestBuilder, guests_dir};

fn main() -> ExitCode {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let guests = guests_dir(&manifest_dir);
    let wit = manifest_dir.join("..").join("..").join("wit");

    for path in [
        guests.join("Cargo.toml"),
        guests.join("Cargo.lock"),
        guests.join("simple"),
        guests.join("sdk-rust"),
        wit,
        manifest_dir.join("src").join("guest_build.rs"),
    ] {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");

    let target_dir = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("guests"),
        _ => out_dir.join("guests"),
    };
    let builder = GuestBuilder {
        cargo: PathBuf::from(env::var_os("CARGO").unwrap_or_else(|| "cargo".into())),
        guests_dir: guests.clone(),
        target_dir: target_dir.clone(),
    };
    println!(
        "cargo::rustc-env=INTERSTATE_GUEST_CARGO={}",
        builder.cargo.display()
    );
    println!(
        "cargo::rustc-env=INTERSTATE_GUESTS_DIR={}",
        guests.display()
    );
    println!(
        "cargo::rustc-env=INTERSTATE_GUEST_TARGET_DIR={}",
        target_dir.display()
    );

    let built = match builder.build("interstate-simple-mapper") {
        Ok(path) => path,
        Err(err) => {
            eprintln!(
                "error: interstate-mapper embeds the SimpleMapper component and could not build it.\n{err}"
            );
            return ExitCode::FAILURE;
        }
    };
    let embedded = out_dir.join("simple.wasm");
    if let Err(err) = std::fs::copy(&built, &embedded) {
        eprintln!(
            "error: could not copy {} to {}: {err}",
            built.display(),
            embedded.display()
        );
        return ExitCode::FAILURE;
    }
    println!(
        "cargo::rustc-env=INTERSTATE_SIMPLE_WASM={}",
        embedded.display()
    );
    ExitCode::SUCCESS
}
