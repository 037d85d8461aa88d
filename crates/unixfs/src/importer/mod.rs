//! The importer: bytes and directory trees to a UnixFS DAG whose CIDs are Kubo's.
//!
//! - [`FileImporter`]: one file, pushed in pieces, synchronous; balanced or trickle layout over
//!   any [`crate::chunker`].
//! - [`DirectoryBuilder`]: entries by relative path (file results, directories, symlinks) to
//!   plain or HAMT-sharded directories.
//! - [`add_path`]: a local file or directory tree, as `ipfs add -r` reads it.
//! - [`ImportOptions`]: Kubo's `add` options, defaults and rules.
//!
//! What it follows: boxo's `ipld/unixfs/importer` (balanced, trickle, helpers), `ipld/unixfs/io`
//! (directories, the HAMT switch), `ipld/unixfs/hamt`, and Kubo's `core/coreunix/add.go` (which
//! options apply where, and the order of `add`'s output).

mod dir;
mod file;
mod fs;
mod hamt;
mod options;
pub(crate) mod pb;

pub use dir::{DirResult, DirectoryBuilder};
pub use file::{FileImporter, FileResult};
pub use fs::{AddedEntry, add_path};
pub use options::{
    CidBuilder, DEFAULT_HAMT_FANOUT, DEFAULT_HAMT_THRESHOLD, DEFAULT_MAX_FILE_LINKS, ImportOptions,
    Layout, MAX_INLINE_LIMIT, ResolvedOptions, hash_code_from_name,
};
pub use pb::Mtime;
