//! The blockstore's error type: one enum, every variant with a message that names what went wrong.

use cid::Cid;

use crate::pin::PinMode;

/// Everything that can go wrong in the blockstore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockstoreError {
    /// The bytes do not hash to the CID's multihash.
    #[error("block data does not match {cid}: the data hashes to a different multihash")]
    HashMismatch {
        /// The CID the caller claimed for the data.
        cid: Cid,
    },
    /// The CID names a hash function this store cannot verify.
    #[error("unsupported multihash function 0x{code:x} in {cid}")]
    UnsupportedHash {
        /// The CID carrying the hash.
        cid: Cid,
        /// Its multihash code.
        code: u64,
    },
    /// The multihash digest is too short to be trusted (Kubo refuses fewer than 20 bytes).
    #[error("multihash digest of {cid} is {len} bytes; at least {min} are required")]
    DigestTooShort {
        /// The CID carrying the short digest.
        cid: Cid,
        /// Its digest length.
        len: usize,
        /// The minimum accepted.
        min: usize,
    },
    /// A codec code or name that the store does not know.
    #[error("unknown codec {0}")]
    UnknownCodec(String),
    /// A CID whose codec is known but whose links this store cannot read (pinning needs them).
    #[error("cannot read links of {cid}: codec 0x{codec:x} is not supported for DAG traversal")]
    UnsupportedDagCodec {
        /// The CID whose block could not be walked.
        cid: Cid,
        /// Its codec.
        codec: u64,
    },
    /// Text or bytes that are not a valid CID.
    #[error("invalid CID {input:?}: {reason}")]
    InvalidCid {
        /// The input, printable (bytes are hex-encoded).
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The block's data could not be decoded to find its links.
    #[error("cannot decode block {cid}: {reason}")]
    Decode {
        /// The block that failed to decode.
        cid: Cid,
        /// The decoder's message.
        reason: String,
    },
    /// A block larger than the store accepts.
    #[error("block {cid} is {size} bytes, over the {max}-byte limit")]
    BlockTooLarge {
        /// The block.
        cid: Cid,
        /// Its size.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A block that a DAG operation needed is not in the store.
    #[error("cannot pin {root}: block {missing} is not in the local store")]
    PinMissingBlock {
        /// The root being pinned (boxed, like every second CID here, to keep the error small).
        root: Box<Cid>,
        /// The first block found missing.
        missing: Box<Cid>,
    },
    /// Garbage collection found a pinned DAG with a missing block and removed nothing.
    #[error("gc aborted, nothing removed: pinned DAG {root} is missing block {missing}")]
    GcIncompletePin {
        /// The pinned root.
        root: Box<Cid>,
        /// The block that could not be read.
        missing: Box<Cid>,
    },
    /// Unpin of a CID that has no direct or recursive pin.
    #[error("{0} is not pinned or pinned indirectly")]
    NotPinned(Cid),
    /// Direct unpin of a recursive pin.
    #[error("{0} is pinned recursively")]
    PinnedRecursively(Cid),
    /// Direct pin of a CID that already has a recursive pin.
    #[error("{0} already pinned recursively")]
    AlreadyPinnedRecursively(Cid),
    /// Deleting a block that a pin protects.
    #[error("cannot remove {cid}: {why}")]
    Pinned {
        /// The block.
        cid: Cid,
        /// How it is pinned, Kubo's wording: "pinned: recursive", "pinned via <root>".
        why: String,
    },
    /// A stored block is damaged: its bytes no longer hash to its key, or are missing. Reads
    /// answer this instead of the bytes (with `verify_on_read`, the default); a put of the right
    /// bytes replaces the damaged copy.
    #[error("block {0} is damaged on disk: its data no longer matches its hash")]
    Corrupt(Cid),
    /// A block's index record could not be decoded.
    #[error("stored index record for {key} is corrupt")]
    CorruptIndex {
        /// The raw key, hex-encoded.
        key: String,
    },
    /// A write was refused because it would leave less than the configured reserve free on the
    /// file system (`BlockstoreConfig::min_free_bytes`). Nothing was written; reads still work,
    /// and writes work again once space is freed (`repo gc`, or more disk).
    #[error(
        "write {}: no space left on device ({available} bytes free; {needed} needed plus a reserve of {reserve})",
        path.display()
    )]
    NoSpace {
        /// The directory whose file system is full.
        path: std::path::PathBuf,
        /// Bytes available to the store.
        available: u64,
        /// Bytes the write needed.
        needed: u64,
        /// Bytes kept free.
        reserve: u64,
    },
    /// A file of the block file store could not be written, read or removed (Go's wording:
    /// `write <path>: <reason>`, so a full disk reads `no space left on device` as in Kubo).
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done: `write`, `read`, `remove`, `open`, `walk`, `clean`.
        op: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A stored pin record could not be decoded.
    #[error("stored pin record for {key} is corrupt")]
    CorruptPin {
        /// The raw key, hex-encoded.
        key: String,
    },
    /// A node record key ([`crate::Blockstore::get_record`]) that does not start with `/` or is
    /// over 1,024 bytes.
    #[error("invalid record key: it must start with '/' and be at most 1024 bytes")]
    InvalidRecordKey,
    /// The storage engine failed.
    #[error("storage engine: {0}")]
    Engine(#[from] EngineError),
}

impl BlockstoreError {
    /// Wraps an I/O error on `path` (for `map_err`).
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<std::path::PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BlockstoreError::Io { op, path, source }
    }

    /// Whether this is a full disk, refused up front or reported by the file system.
    pub fn is_no_space(&self) -> bool {
        match self {
            BlockstoreError::NoSpace { .. } => true,
            BlockstoreError::Io { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }

    /// How the pin state of a CID is described when it blocks a removal.
    pub(crate) fn pinned(cid: Cid, mode: PinMode, via: Option<Cid>) -> Self {
        let why = match via {
            Some(root) => format!("pinned via {root}"),
            None => format!("pinned: {}", mode.as_str()),
        };
        BlockstoreError::Pinned { cid, why }
    }
}

/// A failure inside a storage engine (I/O, or the engine's own corruption checks).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// sled reported an error.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A sled transaction aborted.
    #[error("sled transaction: {0}")]
    Transaction(String),
    /// Any other engine failure, described.
    #[error("{0}")]
    Other(String),
}

/// The blockstore's result type.
pub type Result<T, E = BlockstoreError> = std::result::Result<T, E>;
