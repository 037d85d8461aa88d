//! UnixFS and IPLD for cairn, over two small block traits so it can be used and tested without a
//! node: [`BlockSource`] reads blocks (from a local store, or from the network through Bitswap),
//! [`BlockSink`] stores them.
//!
//! - [`importer`]: files and directories to a UnixFS DAG, with Kubo's options and CIDs;
//!   [`chunker`]: Kubo's `--chunker` strings and streaming splitters (size, rabin, buzhash).
//! - [`exporter`]: files (with offset and length), directories (plain and HAMT), path
//!   resolution; [`tar`]: the tar (or gzip) stream of `get`.
//! - [`refs`], [`codec`], [`car`]: DAG walks, dag-pb/raw/dag-cbor/dag-json conversions,
//!   CARv1 export and CARv1/v2 import; [`scope`]: CARs of a path and part of a DAG (the
//!   trustless gateway's `dag-scope` and `entity-bytes`).
//!
//! The UnixFS format is the one in <https://specs.ipfs.tech/unixfs/>; where the spec leaves room,
//! cairn does what Kubo (boxo's importer and exporter) does, so CIDs match Kubo's byte for byte.

use std::future::Future;
use std::pin::Pin;

pub use cairn_blockstore::Block;
pub use cid::Cid;

pub mod car;
pub mod chunker;
pub mod codec;
mod error;
pub mod exporter;
pub mod importer;
pub mod mfs;
pub mod refs;
pub mod scope;
pub mod tar;

pub use error::UnixfsError;
pub use importer::{DirectoryBuilder, FileImporter, FileResult, ImportOptions};

/// An error from a block source or sink, boxed so any storage or network error fits.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A boxed future, as the traits below return (they must stay object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the exporter and DAG walks read blocks from.
///
/// A node implements it over its blockstore and Bitswap, so a read may wait on the network; a
/// test implements it over a `HashMap`.
pub trait BlockSource: Send + Sync {
    /// The block's bytes, already checked against `cid`'s hash. `Ok(None)` means the block is
    /// not available (not stored, and not found in time when fetching is allowed).
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Option<bytes::Bytes>, BoxError>>;
}

/// Where the importer and `dag put`/CAR import write blocks to.
pub trait BlockSink: Send + Sync {
    /// Stores blocks whose bytes already match their CIDs. Called with batches in DAG order
    /// (children before parents); the last block of an import is its root.
    fn put_many(&self, blocks: Vec<Block>) -> BoxFuture<'_, Result<(), BoxError>>;
}
