//! Errors of the bootstrap crate.

/// A bad bootstrap entry or swarm key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// A bootstrap list entry that is not a dialable `/p2p/` multiaddr.
    #[error("invalid bootstrap entry {entry:?}: {reason}")]
    InvalidEntry {
        /// The entry as given.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `swarm.key` that cannot be used.
    #[error("invalid swarm key: {0}")]
    InvalidSwarmKey(String),
}
