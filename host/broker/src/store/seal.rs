//! Sealing what a shared store keeps outside the process: AES-256-GCM under keys every node
//! shares (`session.key_file`).
//!
//! A sealed blob is `0x01 ‖ key id (4) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`. The key id is the
//! first four bytes of the key's SHA-256, so a blob names the key that opens it and a key file
//! can list a new key first (it seals from then on) and the previous ones after it (they still
//! open what they sealed): rotation without a flag day. Nonces are random; a node seals at most
//! a few blobs per request, far below the 2³² messages per key that random 96-bit nonces allow.
//!
//! The caller's associated data binds a blob to where it belongs (the store binds it to the
//! session id, the part and the version), so a blob copied to another key or an older blob
//! written back does not open.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The format byte of a sealed blob.
const FORMAT: u8 = 1;
/// Bytes of the key id.
const KEY_ID_LEN: usize = 4;
/// Bytes of the tag.
const TAG_LEN: usize = 16;

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a key.
    #[error(
        "{path}, line {line}: expected a key of 64 hex digits (make one with `interstate session-key new`)"
    )]
    BadKey {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
    },
    /// No key at all.
    #[error("{path}: no key (make one with `interstate session-key new {path}`)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Anyone on the machine may read the keys.
    #[error("{path}: readable by every user of this machine; run `chmod 600 {path}`")]
    WorldReadable {
        /// The file.
        path: PathBuf,
    },
}

/// Why a blob did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Not a sealed blob of this format.
    #[error("not a sealed blob")]
    Malformed,
    /// Sealed under a key this node does not have (rotated out, or another broker's).
    #[error("sealed under an unknown key")]
    UnknownKey,
    /// The blob or its associated data was changed (or it belongs somewhere else).
    #[error("the blob does not open (changed, moved or rolled back)")]
    Forged,
}

struct Key {
    id: [u8; KEY_ID_LEN],
    key: LessSafeKey,
}

/// The sealing keys: the first seals, every one opens.
pub struct SealKeys {
    keys: Vec<Key>,
}

impl fmt::Debug for SealKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|k| hex::encode(k.id)).collect();
        f.debug_struct("SealKeys").field("key_ids", &ids).finish()
    }
}

impl SealKeys {
    /// Reads a key file: one key per line (64 hex digits), the sealing key first; blank lines
    /// and lines starting with `#` are skipped. A file every user may read is refused.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let read = |source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(read)?);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(read)?.permissions().mode();
            if mode & 0o004 != 0 {
                return Err(KeyFileError::WorldReadable {
                    path: path.to_owned(),
                });
            }
        }
        Self::parse(&text, path)
    }

    /// Parses key-file text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, KeyFileError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || KeyFileError::BadKey {
                path: path.to_owned(),
                line: n + 1,
            };
            let bytes = Zeroizing::new(hex::decode(line).map_err(|_| bad())?);
            if bytes.len() != 32 {
                return Err(bad());
            }
            keys.push(Key::new(&bytes).ok_or_else(bad)?);
        }
        if keys.is_empty() {
            return Err(KeyFileError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Self { keys })
    }

    /// A new random key as a key-file line.
    pub fn new_key_line() -> Zeroizing<String> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        Zeroizing::new(hex::encode(bytes.as_ref()))
    }

    /// The ids of the keys, the sealing key's first (for logs: never the keys).
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| hex::encode(k.id)).collect()
    }

    /// Seals `plaintext`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(start);
        match key.key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        ) {
            Ok(()) => out.extend_from_slice(&body),
            // ring refuses only inputs longer than GCM allows (64 GiB): not a store blob.
            Err(_) => out.clear(),
        }
        out
    }

    /// Opens a blob sealed with the same `aad`.
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let header = 1 + KEY_ID_LEN + NONCE_LEN;
        if blob.len() < header + TAG_LEN || blob[0] != FORMAT {
            return Err(OpenError::Malformed);
        }
        let id = &blob[1..1 + KEY_ID_LEN];
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(OpenError::UnknownKey)?;
        let nonce = Nonce::try_assume_unique_for_key(&blob[1 + KEY_ID_LEN..header])
            .map_err(|_| OpenError::Malformed)?;
        let mut body = Zeroizing::new(blob[header..].to_vec());
        let len = key
            .key
            .open_in_place(nonce, Aad::from(aad), body.as_mut_slice())
            .map_err(|_| OpenError::Forged)?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

impl Key {
    fn new(bytes: &[u8]) -> Option<Self> {
        let digest = Sha256::digest(bytes);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).ok()?);
        Some(Self { id, key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(lines: &[&str]) -> SealKeys {
        SealKeys::parse(&lines.join("\n"), Path::new("k")).expect("keys")
    }

    const A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const B: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn a_blob_opens_with_its_associated_data_only() {
        let k = keys(&[A]);
        let blob = k.seal(b"s1/v3", b"hunter2");
        assert!(!blob.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            k.open(b"s1/v3", &blob).expect("opens").as_slice(),
            b"hunter2"
        );
        assert_eq!(k.open(b"s1/v2", &blob), Err(OpenError::Forged));
        assert_eq!(k.open(b"s2/v3", &blob), Err(OpenError::Forged));
        let mut flipped = blob.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(k.open(b"s1/v3", &flipped), Err(OpenError::Forged));
        assert_eq!(k.open(b"s1/v3", &blob[..10]), Err(OpenError::Malformed));
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_opens_with_any() {
        let old = keys(&[A]);
        let sealed_before = old.seal(b"x", b"state");
        let rotated = keys(&["# new key first", B, A]);
        assert_eq!(
            rotated
                .open(b"x", &sealed_before)
                .expect("old key opens")
                .as_slice(),
            b"state"
        );
        let sealed_after = rotated.seal(b"x", b"state");
        assert_eq!(old.open(b"x", &sealed_after), Err(OpenError::UnknownKey));
        let dropped = keys(&[B]);
        assert_eq!(
            dropped.open(b"x", &sealed_before),
            Err(OpenError::UnknownKey)
        );
    }

    #[test]
    fn bad_key_files_name_the_line() {
        let err = SealKeys::parse("# c\n\nabcd\n", Path::new("/etc/k")).expect_err("short");
        assert!(err.to_string().contains("/etc/k, line 3"), "{err}");
        let err = SealKeys::parse("# nothing\n", Path::new("/etc/k")).expect_err("empty");
        assert!(err.to_string().contains("no key"), "{err}");
        assert_eq!(SealKeys::new_key_line().len(), 64);
    }
}
