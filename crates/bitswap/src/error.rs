//! The errors of the Bitswap crate.

use cid::Cid;

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The message exceeds the 4 MiB limit.
    #[error("bitswap message of {0} bytes exceeds the 4 MiB limit")]
    TooLarge(usize),
    /// The protobuf is malformed.
    #[error("malformed bitswap message: {0}")]
    Protobuf(String),
    /// A want or presence names an invalid CID.
    #[error("invalid CID in bitswap message: {0}")]
    Cid(String),
}

/// Why a fetch or a Bitswap call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BitswapError {
    /// The Bitswap tasks have stopped (the node shut down).
    #[error("bitswap has stopped")]
    Stopped,
    /// The block store failed.
    #[error("blockstore: {0}")]
    Store(String),
    /// No peer delivered the block before the caller's deadline.
    #[error("block {0} was not found before the timeout")]
    Timeout(Cid),
    /// A block of the DAG could not be parsed for its links.
    #[error("block {cid}: {reason}")]
    Links {
        /// The block.
        cid: Cid,
        /// What was wrong.
        reason: String,
    },
}
