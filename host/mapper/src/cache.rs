//! The on-disk cache of compiled components.
//!
//! Compiling a JS or Python guest takes seconds; loading its precompiled artifact takes tens of
//! milliseconds. Entries are keyed by the SHA-256 of the component and a hash of everything
//! that makes compiled code compatible with this engine (wasmtime version, target, settings),
//! so a stale or foreign entry is never even looked at.
//!
//! Entries are native code, so whoever can write the directory can run code in the broker. A
//! directory that is a symlink, is not owned by the broker's user, or that group or others may
//! write is refused (the broker does not start until it is fixed), and an entry that is not a
//! regular file owned by the broker's user and writable only by it is never loaded.

use std::fs::{self, DirBuilder, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A `Hasher` that feeds SHA-256, so the engine key is the same in every build of the host.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The first 16 hex digits of a hash of the engine's compatibility settings.
pub(crate) fn engine_key(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

/// A compiled-component cache in one private directory.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    /// Opens (and creates, mode 0700) the cache directory, refusing one that someone else
    /// could write ([`check_private`]).
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        check_private(dir, true)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_key: engine_key(engine),
        })
    }

    /// The entry of the component with this SHA-256.
    pub(crate) fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The cached component, or `None` when there is no usable entry. A corrupt or
    /// incompatible entry is logged, removed and treated as a miss.
    pub(crate) fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        if let Err(err) = check_private(&path, false) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::error!(
                    target: "interstate::mapper",
                    path = %path.display(),
                    "refusing a compile-cache entry: {err}"
                );
            }
            return None;
        }
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
            Err(err) => {
                tracing::warn!(
                    target: "interstate::mapper",
                    path = %path.display(),
                    "cannot read a compile-cache entry: {err}"
                );
                return None;
            }
        };
        // The bytes are read into memory rather than mapped with `deserialize_file`: a mapped
        // file that is truncated or rewritten later (a cache cleanup, an operator) would
        // crash the process with SIGBUS, and the copy costs a few milliseconds.
        #[allow(
            unsafe_code,
            reason = "the one unsafe call of the crate: loading compiled code"
        )]
        // SAFETY: `deserialize` loads these bytes as executable code, so they must have been
        // produced by `Component::serialize` of a compatible engine. The file is ours: it
        // lives in a directory and is a regular file that `check_private` found owned by our
        // user and writable by no one else (so only this host writes it), it is written by `store` below
        // with a temp file and an atomic rename, and its name carries the SHA-256 of the
        // component and the engine's compatibility hash. wasmtime also checks the artifact's
        // header against the engine and refuses a mismatch or garbage, which we treat as a miss.
        let loaded = unsafe { Component::deserialize(engine, &bytes) };
        match loaded {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(
                    target: "interstate::mapper",
                    path = %path.display(),
                    "ignoring an unusable compile-cache entry: {err:#}"
                );
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled component atomically. Failures are logged: the cache is an
    /// optimisation, never a reason to refuse a mapper.
    pub(crate) fn store(&self, sha256: &str, component: &Component) {
        if let Err(err) = self.try_store(sha256, component) {
            tracing::warn!(
                target: "interstate::mapper",
                dir = %self.dir.display(),
                "could not write the compile cache: {err}"
            );
        }
    }

    fn try_store(&self, sha256: &str, component: &Component) -> std::io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let bytes = component
            .serialize()
            .map_err(|err| std::io::Error::other(format!("{err:#}")))?;
        let final_path = self.path(sha256);
        let temp_path = self.dir.join(format!(
            ".{sha256}.{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp_path)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&temp_path, &final_path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp_path);
        }
        written
    }
}

/// Checks that `path` is not a symlink, is a directory (`dir`) or a regular file, is owned by
/// the process's effective user, and that neither group nor others may write it.
pub(crate) fn check_private(path: &Path, dir: bool) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    let refuse = |why: String| {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{}: {why}", path.display()),
        ))
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return refuse("is a symbolic link; name the real directory".into());
    }
    if dir && !kind.is_dir() {
        return refuse("is not a directory".into());
    }
    if !dir && !kind.is_file() {
        return refuse("is not a regular file".into());
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return refuse(format!(
            "is owned by user {}, not by the broker's user {me}",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(format!(
            "is writable by group or others (mode {:o}); chmod go-w it",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}
