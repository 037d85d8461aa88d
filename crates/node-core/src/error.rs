//! Errors of the node, its repo and its config.

use std::path::PathBuf;

use cairn_blockstore::BlockstoreError;

/// Everything a [`crate::Node`] call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node has shut down (or its task ended); the handle can no longer do anything.
    #[error("the node has stopped")]
    NodeStopped,
    /// The block is not stored locally and the fetch was offline (Kubo's wording).
    #[error("block was not found locally (offline): ipld: could not find {0}")]
    BlockNotFound(cid::Cid),
    /// Fetching over Bitswap failed.
    #[error("bitswap: {0}")]
    Bitswap(String),
    /// Text that is not a multiaddr.
    #[error("invalid multiaddr {input:?}: {reason}")]
    InvalidMultiaddr {
        /// The input.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Text that is not a peer id.
    #[error("invalid peer id {input:?}: {reason}")]
    InvalidPeerId {
        /// The input.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A dial failed.
    #[error("failed to dial {target}: {reason}")]
    Dial {
        /// What was dialed (an address or a peer id).
        target: String,
        /// Why it failed.
        reason: String,
    },
    /// A listen address could not be bound.
    #[error("failed to listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why it failed.
        reason: String,
    },
    /// The transport or behaviours could not be built.
    #[error("failed to build the libp2p swarm: {0}")]
    Swarm(String),
    /// Pubsub is off (Kubo's `Pubsub.Enabled`).
    #[error("pubsub is not enabled: set Pubsub.Enabled to true in the config")]
    PubsubDisabled,
    /// A pubsub operation failed.
    #[error("pubsub: {0}")]
    Pubsub(String),
    /// A DHT operation failed.
    #[error("routing: {0}")]
    Routing(String),
    /// No connection to the peer.
    #[error("not connected to {0}")]
    NotConnected(libp2p::PeerId),
    /// The peer was not found.
    #[error("peer {0} not found")]
    PeerNotFound(String),
    /// An operation did not finish in time.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// A bad bootstrap entry or swarm key.
    #[error(transparent)]
    Bootstrap(#[from] cairn_bootstrap::BootstrapError),
    /// The private-network settings are inconsistent.
    #[error("private network: {0}")]
    PrivateNetwork(String),
    /// The blockstore failed.
    #[error(transparent)]
    Blockstore(#[from] BlockstoreError),
    /// A UnixFS or IPLD operation failed: a bad path, a missing link, a malformed block or CAR.
    #[error(transparent)]
    Unixfs(cairn_unixfs::UnixfsError),
    /// The repo failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A keystore operation failed (Kubo's texts).
    #[error(transparent)]
    Keystore(#[from] crate::keystore::KeystoreError),
    /// A DHT value record that does not validate.
    #[error(transparent)]
    InvalidRecord(#[from] crate::dht_records::RecordError),
    /// An IPNS name or record problem (a bad name, a record that does not validate, a name that
    /// resolves to nothing).
    #[error("{0}")]
    Ipns(String),
    /// An MFS (`files`) command failed; the text is Kubo's where Kubo has one.
    #[error(transparent)]
    Mfs(cairn_unixfs::mfs::MfsError),
}

/// Errors reading, writing or locking a repo.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// `init` on a repo that already has a config.
    #[error("repo at {0} is already initialized (its config file exists)")]
    AlreadyInitialized(PathBuf),
    /// `open` on a directory without a config.
    #[error("no cairn repo at {0}: run `cairn init` first")]
    NotInitialized(PathBuf),
    /// Another live process holds `repo.lock`.
    #[error("repo at {path} is locked by {holder}: is another cairn daemon running?")]
    Locked {
        /// The repo.
        path: PathBuf,
        /// Who holds it ("process 1234", or "another process").
        holder: String,
    },
    /// The config could not be parsed; `key` names where.
    #[error("malformed config {path} at key {key}: {reason}")]
    MalformedConfig {
        /// The config file.
        path: PathBuf,
        /// The dotted key path, e.g. `Swarm.ConnMgr.LowWater` (`.` for the top level).
        key: String,
        /// The parser's message.
        reason: String,
    },
    /// A config value is well-formed JSON but not usable.
    #[error("invalid config value {key}: {reason}")]
    InvalidValue {
        /// The dotted key.
        key: String,
        /// Why.
        reason: String,
    },
    /// An unknown profile name.
    #[error("unknown profile {0:?} (known: lan, test, server and the rest of Kubo's profiles)")]
    UnknownProfile(String),
    /// `--algorithm` names a key type `init` cannot generate (Kubo's `ipfs init -a` takes the same
    /// two names).
    #[error("unknown key algorithm {0:?} (known: ed25519, rsa)")]
    UnknownAlgorithm(String),
    /// An RSA size outside what go-libp2p accepts (2048..=8192 bits): Kubo refuses such keys, and
    /// peers would refuse to handshake with them.
    #[error("RSA keys must be between {min} and {max} bits, got {bits}")]
    RsaKeySize {
        /// The size asked for, in bits.
        bits: usize,
        /// The smallest size allowed, in bits.
        min: usize,
        /// The largest size allowed, in bits.
        max: usize,
    },
    /// Generating or encoding a new key failed (the OS random source, or the encoder).
    #[error("generating the identity key: {0}")]
    KeyGeneration(String),
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The blockstore could not be opened.
    #[error(transparent)]
    Blockstore(#[from] BlockstoreError),
}

impl RepoError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| RepoError::Io { op, path, source }
    }
}
