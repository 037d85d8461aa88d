//! The watcher's errors: one enum, [`WatchError`], for its setup, its imports and its state
//! file.

use std::path::PathBuf;

/// What went wrong in the watcher. An import's error is kept on its entry (state `failed`, the
/// error's text as the reason) and never stops the watcher; only a failure of the watcher itself
/// (its notifier, its state file) ends a run, which the daemon's supervisor then restarts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The `Cairn.Watch` section is malformed.
    #[error("{0}")]
    Config(String),
    /// Reading an entry (or walking a folder) failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An entry that is neither a file, a folder nor a symlink (a socket, a FIFO, a device).
    #[error("{}: not a regular file, folder or symlink", .0.display())]
    Unsupported(PathBuf),
    /// Adding, pinning or unpinning through the node failed.
    #[error(transparent)]
    Node(#[from] cairn_node_core::NodeError),
    /// The change notifier could not be set up or failed.
    #[error("change notifications: {0}")]
    Notify(#[from] notify::Error),
    /// The state file could not be read or written.
    #[error("watch state file {}: {source}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The watcher is not running (its task ended).
    #[error("the watcher is not running")]
    NotRunning,
}

impl WatchError {
    /// An [`WatchError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WatchError::Io {
            path: path.into(),
            source,
        }
    }
}
