//! The crate's error type.

use cid::Cid;

/// What can go wrong importing, exporting or walking a DAG.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnixfsError {
    /// A block the operation needs is not available from the [`crate::BlockSource`].
    #[error("block was not found locally (offline): {0}")]
    BlockNotFound(Cid),
    /// A block does not decode as the format its CID names, or as UnixFS where UnixFS is needed.
    #[error("invalid block {cid}: {reason}")]
    InvalidBlock {
        /// The block.
        cid: Cid,
        /// What is wrong with it.
        reason: String,
    },
    /// An option or argument is not valid (a bad chunker string, an unknown codec...).
    #[error("{0}")]
    InvalidArgument(String),
    /// A path segment does not exist under a directory.
    #[error("no link named {name:?} under {cid}")]
    NoSuchLink {
        /// The directory (or node) that was searched.
        cid: Cid,
        /// The missing name.
        name: String,
    },
    /// An operation that reads a file met something else (Kubo's `cat` of a directory:
    /// `this dag node is a directory`). The text is the whole message.
    #[error("{0}")]
    NotAFile(String),
    /// A path went below something that has no named children (a file, a raw block).
    #[error("{0}")]
    NotADirectory(String),
    /// An input or a structure is over a size limit (a CAR section, a file read into memory).
    #[error("{0}")]
    TooLarge(String),
    /// A DAG entry name that must not become a path in a tar stream (`/`, `..`, NUL, empty,
    /// absolute); boxo's tar writer refuses such names too.
    #[error("{0}")]
    UnsafePath(String),
    /// A CAR stream is malformed (bad header, truncated section, hash mismatch...).
    #[error("invalid CAR: {0}")]
    Car(String),
    /// Reading input or writing output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A block could not be built from bytes the importer produced (an unsupported hash, or an
    /// inlined block too large for an identity CID).
    #[error("cannot build block: {0}")]
    Block(#[source] cairn_blockstore::BlockstoreError),
    /// A directory tree given to the importer is not valid (a duplicate or malformed path).
    #[error("invalid directory entry {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The block source or sink failed.
    #[error("block store: {0}")]
    Store(crate::BoxError),
}
