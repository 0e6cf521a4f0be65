//! Builds the SimpleMapper (`guest-mappers/simple`), SimpleWebserviceMapper
//! (`guest-mappers/webservice`) and DirectoryMapper (`guest-mappers/directory`) components so
//! that the library can embed them.

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
        guests.join("webservice"),
        guests.join("directory"),
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

    // Each embedded component: its package and the file name (and the env variable naming its
    // path) under OUT_DIR.
    let embedded = [
        (
            "interstate-simple-mapper",
            "simple.wasm",
            "INTERSTATE_SIMPLE_WASM",
        ),
        (
            "interstate-webservice-mapper",
            "webservice.wasm",
            "INTERSTATE_WEBSERVICE_WASM",
        ),
        (
            "interstate-directory-mapper",
            "directory.wasm",
            "INTERSTATE_DIRECTORY_WASM",
        ),
    ];
    let packages: Vec<&str> = embedded.iter().map(|(package, ..)| *package).collect();
    let built = match builder.build_all(&packages) {
        Ok(paths) => paths,
        Err(err) => {
            eprintln!(
                "error: interstate-mapper embeds the SimpleMapper, SimpleWebserviceMapper and DirectoryMapper components and could not build them.\n{err}"
            );
            return ExitCode::FAILURE;
        }
    };
    for ((_, file, variable), built) in embedded.iter().zip(built) {
        let copy = out_dir.join(file);
        if let Err(err) = std::fs::copy(&built, &copy) {
            eprintln!(
                "error: could not copy {} to {}: {err}",
                built.display(),
                copy.display()
            );
            return ExitCode::FAILURE;
        }
        println!("cargo::rustc-env={variable}={}", copy.display());
    }
    ExitCode::SUCCESS
}
