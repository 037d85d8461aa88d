//! [`MfsError`]: what an MFS operation can fail with, with Kubo 0.22's messages where it has them.

use crate::UnixfsError;

/// An MFS operation's error. The `Display` text is Kubo's (boxo `mfs`, Kubo's
/// `core/commands/files.go`) wherever Kubo has one, so an RPC can return it unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MfsError {
    /// An empty path (Kubo's `checkPath`).
    #[error("paths must not be empty")]
    EmptyPath,
    /// A path that does not start with `/` (Kubo's `checkPath`).
    #[error("paths must start with a leading slash")]
    RelativePath,
    /// A path over [`crate::mfs::MAX_PATH_LEN`] bytes or [`crate::mfs::MAX_PATH_COMPONENTS`]
    /// components, or not UTF-8 (cairn's own limits; Kubo has none).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// An entry that does not exist (Go's `os.ErrNotExist`).
    #[error("file does not exist")]
    NotExist,
    /// `mkdir` of an existing entry without `parents` (Go's `os.ErrExist`).
    #[error("file already exists")]
    Exists,
    /// `mkdir /` without `parents`.
    #[error("cannot create directory '/': Already exists")]
    RootExists,
    /// Adding a name a directory already has (boxo's `ErrDirExists`).
    #[error("directory already has entry by that name")]
    EntryExists,
    /// A path went through, or needed, something that is not a directory. The text is the
    /// whole message (`cannot access a/b: Not a directory`, `/a is not a directory`...).
    #[error("{0}")]
    NotADirectory(String),
    /// A file operation on a directory (`/a was not a file`).
    #[error("{0}")]
    NotAFile(String),
    /// `rm` of a directory without `recursive`.
    #[error("path is a directory, use -r to remove directories")]
    IsDirectory,
    /// `rm /`.
    #[error("cannot delete root")]
    CannotDeleteRoot,
    /// Appending to a file whose root is a raw block (boxo 0.11's `trickle.Append` only takes
    /// dag-pb roots: `dag.ErrNotProtobuf`).
    #[error("expected protobuf dag node")]
    NotProtobuf,
    /// An argument Kubo refuses (`offset was past end of file (5 > 4)`, `unrecognized hash
    /// function: md5`, `can only update directories`...). The text is the whole message.
    #[error("{0}")]
    InvalidArgument(String),
    /// Something cairn's MFS does not do (HAMT-sharded directories).
    #[error("{0}")]
    Unsupported(String),
    /// A block is not what MFS needs (a malformed dag-pb node, a UnixFS type MFS cannot
    /// hold, sizes that do not add up).
    #[error("{0}")]
    Invalid(String),
    /// Reading or storing blocks failed, or the importer/exporter did.
    #[error(transparent)]
    Unixfs(#[from] UnixfsError),
}
