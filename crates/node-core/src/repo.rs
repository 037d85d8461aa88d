//! The repo directory, laid out like Kubo's: `config`, the sled `datastore/`, `repo.lock`, and the
//! `api` file that holds the RPC address while a daemon runs.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use cairn_blockstore::{Blockstore, BlockstoreConfig};
use libp2p::identity::Keypair;

use crate::config::{Config, Identity, Profile};
use crate::error::RepoError;

/// The environment variable naming the repo directory.
pub const REPO_ENV: &str = "CAIRN_PATH";

/// `$CAIRN_PATH`, else `~/.cairn`.
pub fn default_repo_path() -> PathBuf {
    if let Some(p) = std::env::var_os(REPO_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cairn")
}

/// The key algorithm of a new identity, as Kubo's `ipfs init --algorithm/-a` (and `--bits/-b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Ed25519: Kubo's default since 0.13, peer ids `12D3KooW...`.
    Ed25519,
    /// RSA with a modulus of `bits` bits (Kubo's default 2048); peer ids `Qm...`, as older Kubo
    /// repos and most of Kubo's bootstrap list have.
    Rsa {
        /// The modulus size in bits, within [`RSA_MIN_BITS`]..=[`RSA_MAX_BITS`].
        bits: usize,
    },
}

/// Kubo's default RSA size for `ipfs init -a rsa` (`-b` default), in bits.
pub const RSA_DEFAULT_BITS: usize = 2048;
/// go-libp2p's `MinRsaKeyBits`: smaller RSA keys are refused in handshakes.
pub const RSA_MIN_BITS: usize = 2048;
/// go-libp2p's `maxRsaKeyBits`: larger RSA keys are refused in handshakes.
pub const RSA_MAX_BITS: usize = 8192;

impl KeyAlgorithm {
    /// The algorithm named as Kubo's `--algorithm` names it (`ed25519`, `rsa`), with `bits` for RSA
    /// ([`RSA_DEFAULT_BITS`] when `None`). `bits` with Ed25519 is ignored, as Kubo ignores it.
    pub fn from_name(name: &str, bits: Option<usize>) -> Result<Self, RepoError> {
        match name.to_ascii_lowercase().as_str() {
            "ed25519" => Ok(KeyAlgorithm::Ed25519),
            "rsa" => {
                let bits = bits.unwrap_or(RSA_DEFAULT_BITS);
                if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                    return Err(RepoError::RsaKeySize {
                        bits,
                        min: RSA_MIN_BITS,
                        max: RSA_MAX_BITS,
                    });
                }
                Ok(KeyAlgorithm::Rsa { bits })
            }
            _ => Err(RepoError::UnknownAlgorithm(name.to_string())),
        }
    }
}

/// A new Ed25519 identity in Kubo's config encoding.
pub fn new_identity() -> (Keypair, Identity) {
    let keypair = Keypair::generate_ed25519();
    let identity = identity_of(&keypair).expect("ed25519 keys encode");
    (keypair, identity)
}

/// A new identity of the given algorithm in Kubo's config encoding. RSA generation takes about a
/// second for 2048 bits (longer for larger keys: it searches for primes).
pub fn generate_identity(algorithm: KeyAlgorithm) -> Result<(Keypair, Identity), RepoError> {
    match algorithm {
        KeyAlgorithm::Ed25519 => Ok(new_identity()),
        KeyAlgorithm::Rsa { bits } => {
            use rsa::pkcs1::EncodeRsaPrivateKey as _;
            let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits)
                .map_err(|e| RepoError::KeyGeneration(e.to_string()))?;
            let der = key
                .to_pkcs1_der()
                .map_err(|e| RepoError::KeyGeneration(e.to_string()))?;
            let encoded = rsa_private_key_protobuf(der.as_bytes());
            // Decoding our own encoding is what a later open does, so the repo is known to load.
            let keypair = Keypair::from_protobuf_encoding(&encoded)
                .map_err(|e| RepoError::KeyGeneration(e.to_string()))?;
            let identity = Identity {
                peer_id: keypair.public().to_peer_id().to_base58(),
                priv_key: base64::engine::general_purpose::STANDARD.encode(&encoded),
                extra: Default::default(),
            };
            Ok((keypair, identity))
        }
    }
}

/// libp2p's `PrivateKey` protobuf (`Type = RSA (0)`, `Data` = PKCS#1 DER), which is what Kubo
/// stores base64-encoded in `Identity.PrivKey` for RSA keys. libp2p-identity decodes this form but
/// will not encode RSA keys, so it is written by hand: field 1 varint, field 2 length-delimited.
fn rsa_private_key_protobuf(pkcs1_der: &[u8]) -> Vec<u8> {
    let mut out = vec![0x08, 0x00, 0x12];
    let mut len = pkcs1_der.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(pkcs1_der);
    out
}

/// The `Identity` config section of a key pair. RSA key pairs cannot be re-encoded
/// (libp2p-identity keeps no encodable form of them): [`RepoError::KeyGeneration`]; make RSA
/// identities with [`generate_identity`].
pub fn identity_of(keypair: &Keypair) -> Result<Identity, RepoError> {
    let encoded = keypair
        .to_protobuf_encoding()
        .map_err(|e| RepoError::KeyGeneration(e.to_string()))?;
    Ok(Identity {
        peer_id: keypair.public().to_peer_id().to_base58(),
        priv_key: base64::engine::general_purpose::STANDARD.encode(encoded),
        extra: Default::default(),
    })
}

/// The key pair stored in a config's `Identity.PrivKey`, checked against `Identity.PeerID`.
/// Every key type Kubo writes loads: Ed25519, RSA (PKCS#1 DER inside the protobuf, as go-libp2p
/// marshals it), secp256k1 and ECDSA.
pub fn keypair_of(identity: &Identity) -> Result<Keypair, RepoError> {
    let invalid = |reason: String| RepoError::InvalidValue {
        key: "Identity.PrivKey".into(),
        reason,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(identity.priv_key.trim())
        .map_err(|e| invalid(format!("not base64: {e}")))?;
    let keypair = Keypair::from_protobuf_encoding(&bytes).map_err(|e| invalid(e.to_string()))?;
    let peer_id = keypair.public().to_peer_id().to_base58();
    if !identity.peer_id.is_empty() && identity.peer_id != peer_id {
        return Err(RepoError::InvalidValue {
            key: "Identity.PeerID".into(),
            reason: format!(
                "{} does not match the private key ({peer_id})",
                identity.peer_id
            ),
        });
    }
    Ok(keypair)
}

/// An open repo. Holds `repo.lock` until it is dropped.
#[derive(Debug)]
pub struct Repo {
    path: PathBuf,
    config: Config,
    _lock: RepoLock,
}

impl Repo {
    /// Whether `path` holds an initialised repo.
    pub fn is_initialized(path: &Path) -> bool {
        path.join("config").is_file()
    }

    /// Creates a repo: a new identity and a config with Kubo's defaults and the given profiles.
    /// A repo that already has a config is [`RepoError::AlreadyInitialized`].
    pub fn init(path: &Path, profiles: &[Profile]) -> Result<Config, RepoError> {
        Self::init_with(path, profiles, KeyAlgorithm::Ed25519)
    }

    /// [`Repo::init`] with an identity of the given algorithm (`cairn init --algorithm`).
    pub fn init_with(
        path: &Path,
        profiles: &[Profile],
        algorithm: KeyAlgorithm,
    ) -> Result<Config, RepoError> {
        if Self::is_initialized(path) {
            return Err(RepoError::AlreadyInitialized(path.to_path_buf()));
        }
        let (_, identity) = generate_identity(algorithm)?;
        fs::create_dir_all(path).map_err(RepoError::io("create", path))?;
        let mut config = Config::with_identity(identity);
        for p in profiles {
            p.apply(&mut config);
        }
        write_config(path, &config)?;
        Ok(config)
    }

    /// Opens a repo: takes `repo.lock` (taking over a stale one with a warning) and reads the config.
    pub fn open(path: &Path) -> Result<Self, RepoError> {
        if !Self::is_initialized(path) {
            return Err(RepoError::NotInitialized(path.to_path_buf()));
        }
        let lock = RepoLock::acquire(path)?;
        let config = read_config(path)?;
        Ok(Repo {
            path: path.to_path_buf(),
            config,
            _lock: lock,
        })
    }

    /// The repo directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The config as read at open (or last saved).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the config on disk (atomically: written to a temporary file, then renamed).
    pub fn save_config(&mut self, config: Config) -> Result<(), RepoError> {
        write_config(&self.path, &config)?;
        self.config = config;
        Ok(())
    }

    /// The node's key pair from the config.
    pub fn keypair(&self) -> Result<Keypair, RepoError> {
        keypair_of(&self.config.identity)
    }

    /// Opens the repo's blockstore: the sled index, pins and small blocks in `datastore/`, large
    /// block bodies in `blocks/` (Kubo's flatfs layout). `Datastore.Sync: false` in the config
    /// turns durable writes into buffered ones (see [`cairn_blockstore::Durability`]).
    pub fn open_blockstore(&self, config: BlockstoreConfig) -> Result<Blockstore, RepoError> {
        let mut config = config;
        if config.blocks_dir.is_none() {
            config = config.with_blocks_dir(self.path.join("blocks"));
        }
        if self.config.datastore.sync == Some(false) {
            config = config.with_durability(cairn_blockstore::Durability::Buffered);
        }
        Ok(Blockstore::open_with(self.path.join("datastore"), config)?)
    }

    /// Writes the `api` file (the RPC multiaddr, no newline, as Kubo writes it).
    pub fn write_api_file(&self, multiaddr: &str) -> Result<(), RepoError> {
        let path = self.path.join("api");
        fs::write(&path, multiaddr).map_err(RepoError::io("write", path))
    }

    /// Removes the `api` file, if present.
    pub fn remove_api_file(&self) -> Result<(), RepoError> {
        let path = self.path.join("api");
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RepoError::io("remove", path)(e))
            }
            _ => Ok(()),
        }
    }

    /// Backup bootstrap peers saved by an earlier run (`temp_bootstrap_peers`, named after Kubo's
    /// datastore key); unreadable entries are skipped.
    pub fn read_backup_peers(&self) -> Vec<String> {
        std::fs::read(self.path.join("temp_bootstrap_peers"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Saves backup bootstrap peers.
    pub fn write_backup_peers(&self, addrs: &[String]) -> Result<(), RepoError> {
        let path = self.path.join("temp_bootstrap_peers");
        let json = serde_json::to_vec(addrs).expect("strings serialise");
        fs::write(&path, json).map_err(RepoError::io("write", path))
    }

    /// Reads `swarm.key` if the repo has one (a private network).
    pub fn swarm_key(&self) -> Result<Option<libp2p::pnet::PreSharedKey>, RepoError> {
        let path = self.swarm_key_path();
        match fs::read(&path) {
            Ok(bytes) => cairn_bootstrap::parse_swarm_key(&bytes)
                .map(Some)
                .map_err(|e| RepoError::InvalidValue {
                    key: path.display().to_string(),
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RepoError::io("read", path)(e)),
        }
    }

    /// The path of the optional private-network key.
    pub fn swarm_key_path(&self) -> PathBuf {
        self.path.join("swarm.key")
    }
}

/// Reads and parses `<repo>/config`.
pub fn read_config(repo: &Path) -> Result<Config, RepoError> {
    let path = repo.join("config");
    let text = fs::read_to_string(&path).map_err(RepoError::io("read", &path))?;
    Config::from_json(&text, &path)
}

/// Writes `<repo>/config` atomically.
pub fn write_config(repo: &Path, config: &Config) -> Result<(), RepoError> {
    let path = repo.join("config");
    let tmp = repo.join("config.tmp");
    let mut file = File::create(&tmp).map_err(RepoError::io("create", &tmp))?;
    file.write_all(config.to_json().as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(RepoError::io("write", &tmp))?;
    fs::rename(&tmp, &path).map_err(RepoError::io("rename", &path))
}

/// `repo.lock`: an advisory file lock (released by the kernel when the process dies) plus the
/// holder's PID, so a lock left by a crashed process is recognised and taken over with a warning.
///
/// [`Repo::open`] takes it for a daemon; the CLI takes it alone (with [`RepoLock::acquire`]) while
/// it edits the repo without a daemon, as Kubo's offline commands do, and to decide that an `api`
/// file nobody answers at is stale. Released when dropped.
#[derive(Debug)]
pub struct RepoLock {
    file: File,
}

impl Drop for RepoLock {
    /// A clean release empties the file, so the next start does not mistake it for a crash's.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

impl RepoLock {
    /// Takes `<repo>/repo.lock` without waiting (creating the file if needed).
    ///
    /// # Errors
    /// [`RepoError::Locked`] if another live process holds it (the message names its PID when the
    /// file records one); [`RepoError::Io`] if the file cannot be opened or written.
    pub fn acquire(repo: &Path) -> Result<Self, RepoError> {
        let path = repo.join("repo.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(RepoError::io("open", &path))?;
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        let previous_pid: Option<u32> = previous.trim().parse().ok();
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(RepoError::Locked {
                    path: repo.to_path_buf(),
                    holder: previous_pid
                        .map(|p| format!("process {p}"))
                        .unwrap_or_else(|| "another process".into()),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(RepoError::io("lock", &path)(e)),
        }
        if let Some(pid) = previous_pid.filter(|p| *p != std::process::id()) {
            if process_alive(pid) {
                tracing::warn!(
                    pid,
                    "repo.lock names a running process that does not hold the lock; taking it over"
                );
            } else {
                tracing::warn!(
                    pid,
                    "taking over a stale repo.lock left by process {pid}, which no longer exists"
                );
            }
        }
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| write!(file, "{}", std::process::id()))
            .and_then(|_| file.sync_all())
            .map_err(RepoError::io("write", &path))?;
        Ok(RepoLock { file })
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_twice_is_an_error_and_identity_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let config = Repo::init(dir.path(), &[Profile::Test]).unwrap();
        let err = Repo::init(dir.path(), &[]).unwrap_err();
        assert!(matches!(err, RepoError::AlreadyInitialized(_)));
        assert!(err.to_string().contains("already initialized"));
        let repo = Repo::open(dir.path()).unwrap();
        let key = repo.keypair().unwrap();
        assert_eq!(
            key.public().to_peer_id().to_base58(),
            config.identity.peer_id
        );
        assert!(config.identity.peer_id.starts_with("12D3KooW"));
    }

    #[test]
    fn a_live_lock_is_refused_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        Repo::init(dir.path(), &[Profile::Test]).unwrap();
        let repo = Repo::open(dir.path()).unwrap();
        let err = Repo::open(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("locked by process {}", std::process::id())),
            "{msg}"
        );
        drop(repo);
        Repo::open(dir.path()).unwrap();
    }

    #[test]
    fn a_stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        Repo::init(dir.path(), &[Profile::Test]).unwrap();
        // A PID that cannot exist: past the kernel's pid_max.
        fs::write(dir.path().join("repo.lock"), "4999999").unwrap();
        let repo = Repo::open(dir.path()).unwrap();
        let pid = fs::read_to_string(dir.path().join("repo.lock")).unwrap();
        assert_eq!(pid, std::process::id().to_string());
        drop(repo);
        assert_eq!(
            fs::read_to_string(dir.path().join("repo.lock")).unwrap(),
            "",
            "a clean release empties it"
        );
    }

    #[test]
    fn bad_private_key_names_the_key() {
        let mut id = new_identity().1;
        id.priv_key = "%%%".into();
        let err = keypair_of(&id).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid config value Identity.PrivKey"),
            "{err}"
        );
    }

    /// An RSA identity exactly as Kubo 0.22 wrote it into a repo's config (kubo-peer `--rsa`; a
    /// throwaway key made for this test).
    const KUBO_RSA_IDENTITY: &str = include_str!("../testdata/kubo-rsa-identity.json");

    #[test]
    fn kubos_rsa_identity_loads_with_its_qm_peer_id() {
        let json: serde_json::Value = serde_json::from_str(KUBO_RSA_IDENTITY).unwrap();
        let identity = Identity {
            peer_id: json["PeerID"].as_str().unwrap().into(),
            priv_key: json["PrivKey"].as_str().unwrap().into(),
            extra: Default::default(),
        };
        let key = keypair_of(&identity).expect("Kubo's RSA PrivKey loads");
        assert_eq!(key.key_type(), libp2p::identity::KeyType::RSA);
        let peer_id = key.public().to_peer_id().to_base58();
        assert!(peer_id.starts_with("Qm"), "{peer_id}");
        assert_eq!(peer_id, identity.peer_id);
        // It signs, and the signature verifies with the public key peers derive from the peer id.
        let sig = key.sign(b"cairn").unwrap();
        assert!(key.public().verify(b"cairn", &sig));
    }

    #[test]
    fn an_rsa_repo_initialises_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let config = Repo::init_with(
            dir.path(),
            &[Profile::Test],
            KeyAlgorithm::from_name("rsa", None).unwrap(),
        )
        .unwrap();
        assert!(config.identity.peer_id.starts_with("Qm"));
        let repo = Repo::open(dir.path()).unwrap();
        let key = repo.keypair().unwrap();
        assert_eq!(key.key_type(), libp2p::identity::KeyType::RSA);
        assert_eq!(
            key.public().to_peer_id().to_base58(),
            config.identity.peer_id
        );
        // Kubo's form: protobuf Type = RSA (0), then the PKCS#1 DER (a SEQUENCE).
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&config.identity.priv_key)
            .unwrap();
        assert_eq!(&raw[..3], &[0x08, 0x00, 0x12]);
        assert_eq!(raw[5], 0x30, "PKCS#1 DER starts with a SEQUENCE");
    }

    #[test]
    fn algorithm_names_and_rsa_sizes_follow_kubo() {
        assert_eq!(
            KeyAlgorithm::from_name("ED25519", Some(4096)).unwrap(),
            KeyAlgorithm::Ed25519
        );
        assert_eq!(
            KeyAlgorithm::from_name("rsa", None).unwrap(),
            KeyAlgorithm::Rsa { bits: 2048 }
        );
        let err = KeyAlgorithm::from_name("rsa", Some(1024)).unwrap_err();
        assert!(
            matches!(err, RepoError::RsaKeySize { bits: 1024, .. }),
            "{err}"
        );
        assert!(KeyAlgorithm::from_name("rsa", Some(16384)).is_err());
        let err = KeyAlgorithm::from_name("dsa", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key algorithm \"dsa\" (known: ed25519, rsa)"
        );
    }

    #[test]
    fn rsa_protobuf_length_is_a_varint() {
        let long = vec![0x30; 300];
        let pb = rsa_private_key_protobuf(&long);
        // 300 = 0b10_0101100: 0xac 0x02.
        assert_eq!(&pb[..5], &[0x08, 0x00, 0x12, 0xac, 0x02]);
        assert_eq!(pb.len(), 5 + 300);
    }
}
