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
//!
//! How it is checked (tests/): root CIDs equal a real Kubo 0.22's `add` for 0 B–100 MiB files,
//! the fixture folders and a HAMT directory (`import_kubo.rs`); every entry's CID and size equal
//! ipfs-unixfs-importer 17.1.1's over a matrix of options (`import_oracle.rs`); Kubo's sharness
//! CIDs for trickle, chunkers, mode/mtime and symlinks (`import_known.rs`); rabin and buzhash
//! boundaries equal boxo's Go splitters (`chunker_go.rs`); memory stays flat (`import_memory.rs`).

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
    CidBuilder, DEFAULT_HAMT_FANOUT, DEFAULT_HAMT_THRESHOLD, DEFAULT_MAX_FILE_LINKS,
    HamtSizeEstimation, ImportOptions, Layout, MAX_INLINE_LIMIT, ResolvedOptions,
    hash_code_from_name,
};
pub use pb::Mtime;
