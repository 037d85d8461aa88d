//! The keystore: the node's named private keys besides its identity (`self`), for IPNS names.
//!
//! On disk it is Kubo's `keystore/` directory (`docs/specifications/repository_fs.md`): mode
//! `0700`, one file per key named `key_` + the name in unpadded lower-case base32 (RFC 4648),
//! holding the key as libp2p's `PrivateKey` protobuf, mode `0400`. A Kubo repo's keystore can be
//! copied into a cairn repo and back. A node without a repo keeps its keys in memory.
//!
//! The raw protobuf bytes are what is kept and exported, because libp2p-identity cannot
//! re-encode RSA keys it decoded.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use libp2p::PeerId;
use libp2p::identity::Keypair;
use parking_lot::Mutex;

use crate::repo::{KeyAlgorithm, generate_identity};

/// The reserved name of the node's identity key.
pub const SELF_KEY: &str = "self";
/// The longest key name accepted, in bytes (the file name must fit in 255 bytes: `key_` plus
/// base32, which is 8/5 of the name).
pub const MAX_NAME_LEN: usize = 150;
/// The largest key file read or imported, in bytes (an 8192-bit RSA key is about 4.8 KiB).
pub const MAX_KEY_BYTES: usize = 16 * 1024;
const PREFIX: &str = "key_";

/// Why a keystore operation failed. The texts are Kubo's (its `keystore` package and core API).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// An empty name, one with a `/`, one starting with `.`, or one too long.
    #[error("key has invalid format: {0}")]
    InvalidName(&'static str),
    /// `self` is the identity: it cannot be made, removed, renamed or overwritten here.
    #[error("cannot {0} key with name 'self'")]
    SelfKey(&'static str),
    /// A key of that name exists (and `force` was not given).
    #[error("key with name '{0}' already exists")]
    Exists(String),
    /// No key of that name.
    #[error("no key named {0} was found")]
    NotFound(String),
    /// The key bytes are not a libp2p private key (or are too large).
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    /// The key could not be generated (an unknown type, an RSA size out of range).
    #[error("{0}")]
    Generate(String),
    /// Reading or writing the keystore directory failed.
    #[error("keystore {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// A key in the store: its name and the peer id of its public key (the IPNS name it signs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's name.
    pub name: String,
    /// The peer id of its public key.
    pub id: PeerId,
}

/// The named keys of a node. Cheap to share behind an `Arc`; every method is synchronous and
/// touches at most a few small files.
#[derive(Debug)]
pub struct Keystore {
    dir: Option<PathBuf>,
    /// Keys of an in-memory keystore (unused with a directory).
    memory: Mutex<BTreeMap<String, Vec<u8>>>,
}

/// Kubo's name rules (`keystore.validateName`), plus a length bound.
fn check_name(name: &str) -> Result<(), KeystoreError> {
    if name.is_empty() {
        return Err(KeystoreError::InvalidName(
            "key names must be at least one character",
        ));
    }
    if name.contains('/') {
        return Err(KeystoreError::InvalidName(
            "key names may not contain slashes",
        ));
    }
    if name.starts_with('.') {
        return Err(KeystoreError::InvalidName(
            "key names may not begin with a period",
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(KeystoreError::InvalidName(
            "key names may be at most 150 bytes",
        ));
    }
    Ok(())
}

/// The file name of key `name`: `key_` + unpadded lower-case base32.
fn file_name(name: &str) -> String {
    let b32 = data_encoding::BASE32_NOPAD.encode(name.as_bytes());
    format!("{PREFIX}{}", b32.to_ascii_lowercase())
}

/// The key name a file name encodes, if it is a key file.
fn name_of_file(file: &str) -> Option<String> {
    let b32 = file.strip_prefix(PREFIX)?.to_ascii_uppercase();
    let bytes = data_encoding::BASE32_NOPAD.decode(b32.as_bytes()).ok()?;
    String::from_utf8(bytes).ok()
}

/// Decodes libp2p `PrivateKey` protobuf bytes.
pub fn decode_key(bytes: &[u8]) -> Result<Keypair, KeystoreError> {
    if bytes.len() > MAX_KEY_BYTES {
        return Err(KeystoreError::InvalidKey(format!(
            "{} bytes, over the {MAX_KEY_BYTES}-byte limit",
            bytes.len()
        )));
    }
    Keypair::from_protobuf_encoding(bytes).map_err(|e| KeystoreError::InvalidKey(e.to_string()))
}

/// A new key of `algorithm` (Kubo's `key gen --type`: `ed25519`, the default; `rsa` with
/// `size` bits, 2048 by default; `secp256k1`), as libp2p protobuf bytes.
pub fn generate_key(algorithm: &str, size: Option<usize>) -> Result<Vec<u8>, KeystoreError> {
    let generate = |e: crate::RepoError| KeystoreError::Generate(e.to_string());
    match algorithm {
        "secp256k1" => Keypair::generate_secp256k1()
            .to_protobuf_encoding()
            .map_err(|e| KeystoreError::Generate(e.to_string())),
        "ed25519" | "rsa" => {
            let algorithm = KeyAlgorithm::from_name(algorithm, size).map_err(generate)?;
            let (_, identity) = generate_identity(algorithm).map_err(generate)?;
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(identity.priv_key)
                .map_err(|e| KeystoreError::Generate(e.to_string()))
        }
        other => Err(KeystoreError::Generate(format!(
            "unrecognized key type: {other}"
        ))),
    }
}

impl Keystore {
    /// The keystore in directory `dir` (Kubo's `<repo>/keystore`), created with mode `0700` if
    /// missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, KeystoreError> {
        let dir = dir.into();
        let io = |source| KeystoreError::Io {
            path: dir.clone(),
            source,
        };
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(io)?;
            set_mode(&dir, 0o700).map_err(io)?;
        }
        Ok(Keystore {
            dir: Some(dir),
            memory: Mutex::default(),
        })
    }

    /// A keystore that lives in memory only (a node without a repo).
    pub fn in_memory() -> Self {
        Keystore {
            dir: None,
            memory: Mutex::default(),
        }
    }

    /// The directory, for a keystore on disk.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeystoreError + '_ {
        move |source| KeystoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Every key's name, sorted (files that are not key files are skipped, as Kubo skips them).
    pub fn names(&self) -> Result<Vec<String>, KeystoreError> {
        let Some(dir) = &self.dir else {
            return Ok(self.memory.lock().keys().cloned().collect());
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(Self::io(dir))? {
            let entry = entry.map_err(Self::io(dir))?;
            if let Some(name) = entry.file_name().to_str().and_then(name_of_file)
                && check_name(&name).is_ok()
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The stored bytes of key `name` ([`KeystoreError::NotFound`] if there is none).
    pub fn get_bytes(&self, name: &str) -> Result<Vec<u8>, KeystoreError> {
        check_name(name)?;
        let Some(dir) = &self.dir else {
            return self
                .memory
                .lock()
                .get(name)
                .cloned()
                .ok_or_else(|| KeystoreError::NotFound(name.to_string()));
        };
        let path = dir.join(file_name(name));
        match std::fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(KeystoreError::NotFound(name.to_string()))
            }
            Err(e) => Err(Self::io(&path)(e)),
        }
    }

    /// Key `name`, decoded.
    pub fn get(&self, name: &str) -> Result<Keypair, KeystoreError> {
        decode_key(&self.get_bytes(name)?)
    }

    /// Key `name` and its peer id.
    pub fn info(&self, name: &str) -> Result<KeyInfo, KeystoreError> {
        Ok(KeyInfo {
            name: name.to_string(),
            id: self.get(name)?.public().to_peer_id(),
        })
    }

    /// Stores `bytes` (libp2p protobuf, checked to decode) as key `name`, which must not exist
    /// ([`KeystoreError::Exists`]); `self` is refused. The file is written whole under a temporary
    /// name and renamed into place, so a crash leaves no half key.
    pub fn put(&self, name: &str, bytes: &[u8]) -> Result<KeyInfo, KeystoreError> {
        check_name(name)?;
        if name == SELF_KEY {
            return Err(KeystoreError::SelfKey("create"));
        }
        let id = decode_key(bytes)?.public().to_peer_id();
        let info = KeyInfo {
            name: name.to_string(),
            id,
        };
        let Some(dir) = &self.dir else {
            let mut memory = self.memory.lock();
            if memory.contains_key(name) {
                return Err(KeystoreError::Exists(name.to_string()));
            }
            memory.insert(name.to_string(), bytes.to_vec());
            return Ok(info);
        };
        let path = dir.join(file_name(name));
        if path.exists() {
            return Err(KeystoreError::Exists(name.to_string()));
        }
        let tmp = dir.join(format!(".tmp-{}", file_name(name)));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            set_mode(&tmp, 0o400)?;
            // Hard-linking refuses an existing target, as Kubo's O_EXCL create does.
            std::fs::hard_link(&tmp, &path)?;
            std::fs::remove_file(&tmp)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeystoreError::Exists(name.to_string())
            } else {
                Self::io(&path)(e)
            }
        })?;
        Ok(info)
    }

    /// Generates a key (see [`generate_key`]) and stores it as `name`.
    pub fn generate(
        &self,
        name: &str,
        algorithm: &str,
        size: Option<usize>,
    ) -> Result<KeyInfo, KeystoreError> {
        check_name(name)?;
        if name == SELF_KEY {
            return Err(KeystoreError::SelfKey("create"));
        }
        if self.get_bytes(name).is_ok() {
            return Err(KeystoreError::Exists(name.to_string()));
        }
        self.put(name, &generate_key(algorithm, size)?)
    }

    /// Removes key `name` and returns what it was.
    pub fn remove(&self, name: &str) -> Result<KeyInfo, KeystoreError> {
        if name == SELF_KEY {
            return Err(KeystoreError::SelfKey("remove"));
        }
        let info = self.info(name)?;
        match &self.dir {
            None => {
                self.memory.lock().remove(name);
            }
            Some(dir) => {
                let path = dir.join(file_name(name));
                std::fs::remove_file(&path).map_err(Self::io(&path))?;
            }
        }
        Ok(info)
    }

    /// Renames key `old` to `new`; an existing `new` is replaced only with `force`. Returns the
    /// key and whether one was overwritten.
    pub fn rename(
        &self,
        old: &str,
        new: &str,
        force: bool,
    ) -> Result<(KeyInfo, bool), KeystoreError> {
        if old == SELF_KEY {
            return Err(KeystoreError::SelfKey("rename"));
        }
        if new == SELF_KEY {
            return Err(KeystoreError::SelfKey("overwrite"));
        }
        check_name(new)?;
        let bytes = self.get_bytes(old)?;
        let id = decode_key(&bytes)?.public().to_peer_id();
        if old == new {
            return Ok((
                KeyInfo {
                    name: new.to_string(),
                    id,
                },
                false,
            ));
        }
        let exists = self.get_bytes(new).is_ok();
        if exists && !force {
            return Err(KeystoreError::InvalidName(
                "key by that name already exists, refusing to overwrite",
            ));
        }
        if exists {
            self.remove(new)?;
        }
        self.put(new, &bytes)?;
        self.remove(old)?;
        Ok((
            KeyInfo {
                name: new.to_string(),
                id,
            },
            exists,
        ))
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_kubos() {
        // Kubo's reserved name for `self` (repository_fs.md): key_onswyzq.
        assert_eq!(file_name("self"), "key_onswyzq");
        assert_eq!(name_of_file("key_onswyzq").as_deref(), Some("self"));
        assert_eq!(name_of_file("other"), None);
    }

    #[test]
    fn keys_persist_with_kubos_modes_and_rules() {
        let dir = tempfile::tempdir().unwrap();
        let ks = Keystore::open(dir.path().join("keystore")).unwrap();
        let a = ks.generate("a", "ed25519", None).unwrap();
        let b = ks.generate("b", "secp256k1", None).unwrap();
        assert!(matches!(
            ks.generate("a", "ed25519", None),
            Err(KeystoreError::Exists(_))
        ));
        assert!(matches!(
            ks.generate("self", "ed25519", None),
            Err(KeystoreError::SelfKey(_))
        ));
        for bad in ["", "x/y", ".hidden"] {
            assert!(matches!(
                ks.generate(bad, "ed25519", None),
                Err(KeystoreError::InvalidName(_))
            ));
        }
        assert!(ks.generate("c", "dsa", None).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let meta = std::fs::metadata(ks.dir().unwrap().join(file_name("a"))).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o400);
            let meta = std::fs::metadata(ks.dir().unwrap()).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        }
        let again = Keystore::open(dir.path().join("keystore")).unwrap();
        assert_eq!(again.names().unwrap(), vec!["a", "b"]);
        assert_eq!(again.info("a").unwrap(), a);
        let refused = again.rename("a", "b", false).unwrap_err();
        assert!(refused.to_string().contains("refusing to overwrite"));
        let (renamed, overwrote) = again.rename("a", "b", true).unwrap();
        assert!(overwrote);
        assert_eq!(renamed.id, a.id);
        assert_ne!(renamed.id, b.id);
        assert_eq!(again.names().unwrap(), vec!["b"]);
        assert_eq!(again.remove("b").unwrap().id, a.id);
        assert!(matches!(again.remove("b"), Err(KeystoreError::NotFound(_))));
        assert!(matches!(
            again.remove("self"),
            Err(KeystoreError::SelfKey(_))
        ));
    }

    #[test]
    fn rsa_keys_round_trip_byte_for_byte() {
        let ks = Keystore::in_memory();
        let bytes = generate_key("rsa", Some(2048)).unwrap();
        let info = ks.put("r", &bytes).unwrap();
        assert_eq!(ks.get_bytes("r").unwrap(), bytes);
        assert!(info.id.to_base58().starts_with("Qm"));
        assert!(ks.put("bad", b"not a key").is_err());
    }
}
