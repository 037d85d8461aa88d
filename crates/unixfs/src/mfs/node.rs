//! The node layer MFS works on: dag-pb nodes and UnixFS `Data` read and written back with every
//! field as it was (boxo re-marshals what it decoded, so a field's presence is kept: an empty
//! `Data` stays an empty `Data`), CID prefixes, and [`Tx`], the blocks of one operation.

use std::collections::HashMap;

use bytes::Bytes;
use cid::{Cid, Version};

use super::MfsError;
use crate::exporter::{DAG_PB, RAW, load};
use crate::importer::Mtime;
use crate::importer::pb::{DataType, PbLink, UnixfsData, encode_node, put_varint};
use crate::{Block, BlockSink, BlockSource, UnixfsError};

/// SHA2-256's multihash code (Kubo's default hash, the only one CIDv0 can carry).
pub(crate) const SHA2_256: u64 = 0x12;

/// A CID prefix (Go's `cid.Prefix` less the codec): how new blocks of a node are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefix {
    /// CID version of dag-pb blocks (raw blocks are always CIDv1, as boxo's `NewRawNodeWPrefix`).
    pub version: Version,
    /// Multihash code.
    pub code: u64,
    /// Digest length in bytes.
    pub len: usize,
}

impl Prefix {
    /// CIDv0 (sha2-256): boxo's default `v0CidPrefix`, what `NodeWithData` nodes get.
    pub const V0: Prefix = Prefix {
        version: Version::V0,
        code: SHA2_256,
        len: 32,
    };

    /// The prefix of an existing CID.
    pub fn of(cid: &Cid) -> Prefix {
        Prefix {
            version: cid.version(),
            code: cid.hash().code(),
            len: usize::from(cid.hash().size()),
        }
    }

    /// The prefix Kubo's `getPrefix` builds from `--cid-version` and `--hash` (`None` when
    /// neither is given). A hash without a version means CIDv1, as in Kubo.
    pub fn from_options(
        version: Option<u8>,
        hash: Option<&str>,
    ) -> Result<Option<Prefix>, MfsError> {
        if version.is_none() && hash.is_none() {
            return Ok(None);
        }
        let mut v = version.unwrap_or(0);
        if hash.is_some() && v == 0 {
            v = 1;
        }
        let version = match v {
            0 => Version::V0,
            1 => Version::V1,
            other => {
                return Err(MfsError::InvalidArgument(format!(
                    "unknown CID version: {other}"
                )));
            }
        };
        let (code, len) = match hash {
            None => (SHA2_256, 32),
            Some(name) => {
                let lower = name.to_ascii_lowercase();
                let code = crate::importer::hash_code_from_name(&lower).map_err(|_| {
                    MfsError::InvalidArgument(format!("unrecognized hash function: {lower}"))
                })?;
                let code_t = multihash_codetable::Code::try_from(code).map_err(|_| {
                    MfsError::InvalidArgument(format!("unrecognized hash function: {lower}"))
                })?;
                use multihash_codetable::MultihashDigest;
                (code, usize::from(code_t.digest(&[]).size()))
            }
        };
        Ok(Some(Prefix { version, code, len }))
    }

    /// A dag-pb block of `data` under this prefix.
    pub fn pb_block(&self, data: Vec<u8>) -> Result<Block, MfsError> {
        let version = if self.code == SHA2_256 && self.len == 32 {
            self.version
        } else {
            Version::V1
        };
        Block::from_prefix(version, DAG_PB, self.code, self.len, data)
            .map_err(|e| MfsError::Unixfs(UnixfsError::Block(e)))
    }

    /// A raw block of `data` under this prefix (always CIDv1).
    pub fn raw_block(&self, data: Vec<u8>) -> Result<Block, MfsError> {
        let len = if self.code == 0 { data.len() } else { self.len };
        Block::from_prefix(Version::V1, RAW, self.code, len, data)
            .map_err(|e| MfsError::Unixfs(UnixfsError::Block(e)))
    }
}

/// One dag-pb link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// The child.
    pub cid: Cid,
    /// The name (empty in file nodes).
    pub name: String,
    /// The child's cumulative size as this node records it (Go's `Link.Size`).
    pub tsize: u64,
}

/// A decoded dag-pb node.
#[derive(Debug, Clone)]
pub(crate) struct PbNode {
    /// Links, in stored order.
    pub links: Vec<Link>,
    /// The `Data` field (empty when absent).
    pub data: Vec<u8>,
}

impl PbNode {
    /// Decodes a dag-pb block.
    pub fn decode(cid: &Cid, block: &[u8]) -> Result<PbNode, MfsError> {
        let node = ipld_dagpb::PbNode::from_bytes(Bytes::copy_from_slice(block))
            .map_err(|e| MfsError::Invalid(format!("invalid dag-pb node {cid}: {e}")))?;
        Ok(PbNode {
            links: node
                .links
                .into_iter()
                .map(|l| Link {
                    cid: l.cid,
                    name: l.name.unwrap_or_default(),
                    tsize: l.size.unwrap_or(0),
                })
                .collect(),
            data: node.data.map(|d| d.to_vec()).unwrap_or_default(),
        })
    }

    /// Encodes as boxo's `ProtoNode` does (every link with `Name` and `Tsize`, then `Data`).
    pub fn encode(&self) -> Vec<u8> {
        // boxo's ProtoNode sorts its links by name (stable) before encoding.
        let mut sorted: Vec<&Link> = self.links.iter().collect();
        sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let links: Vec<PbLink> = sorted
            .into_iter()
            .map(|l| PbLink {
                cid: l.cid,
                name: l.name.clone(),
                tsize: l.tsize,
            })
            .collect();
        encode_node(&links, &self.data)
    }

    /// The node as a block under `prefix`, with Go's `ProtoNode.Size()`: the block's length
    /// plus every link's `Tsize`.
    pub fn build(&self, prefix: &Prefix) -> Result<Built, MfsError> {
        let block = prefix.pb_block(self.encode())?;
        let size = self
            .links
            .iter()
            .fold(block.len() as u64, |a, l| a.saturating_add(l.tsize));
        Ok(Built { block, size })
    }
}

/// A block just made, with its Go `Size()` (what a parent link records as `Tsize`).
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// The block.
    pub block: Block,
    /// Go's `Node.Size()`: raw blocks their length, dag-pb nodes their length plus their links'
    /// `Tsize`s.
    pub size: u64,
}

impl Built {
    /// The block's CID.
    pub fn cid(&self) -> Cid {
        *self.block.cid()
    }
}

/// UnixFS `Data` with every field's presence, as boxo's gogo-protobuf `FSNode` keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FsData {
    /// Field 1 `Type` (0 Raw, 1 Directory, 2 File, 3 Metadata, 4 Symlink, 5 HAMTShard).
    pub kind: u64,
    /// Field 2 `Data`; `Some(empty)` is written as an empty field.
    pub data: Option<Vec<u8>>,
    /// Field 3 `filesize`.
    pub filesize: Option<u64>,
    /// Field 4 `blocksizes`.
    pub blocksizes: Vec<u64>,
    /// Field 5 `hashType`.
    pub hash_type: Option<u64>,
    /// Field 6 `fanout`.
    pub fanout: Option<u64>,
    /// Field 7 `mode`.
    pub mode: Option<u32>,
    /// Field 8 `mtime`.
    pub mtime: Option<Mtime>,
}

/// UnixFS type numbers.
pub(crate) const T_RAW: u64 = 0;
/// Directory.
pub(crate) const T_DIRECTORY: u64 = 1;
/// File.
pub(crate) const T_FILE: u64 = 2;
/// Metadata (never supported by boxo's MFS).
pub(crate) const T_METADATA: u64 = 3;
/// Symlink.
pub(crate) const T_SYMLINK: u64 = 4;
/// HAMT shard.
pub(crate) const T_HAMT: u64 = 5;

fn varint(buf: &[u8]) -> Result<(u64, &[u8]), MfsError> {
    unsigned_varint::decode::u64(buf)
        .map_err(|e| MfsError::Invalid(format!("UnixFS protobuf: {e}")))
}

impl FsData {
    /// `NewFSNode(kind)`: the type and `filesize` 0.
    pub fn new(kind: u64) -> FsData {
        FsData {
            kind,
            filesize: Some(0),
            ..FsData::default()
        }
    }

    /// Decodes UnixFS `Data` bytes (with the exporter's reader); a missing `Type` is an error
    /// (gogo checks required fields).
    pub fn decode(buf: &[u8]) -> Result<FsData, MfsError> {
        let d = crate::exporter::unixfs_pb::parse_data(buf).map_err(MfsError::Invalid)?;
        Ok(FsData {
            kind: d
                .kind
                .ok_or_else(|| MfsError::Invalid("UnixFS Data has no Type".into()))?,
            data: d.data,
            filesize: d.filesize,
            blocksizes: d.blocksizes,
            hash_type: d.hash_type,
            fanout: d.fanout,
            mode: d.mode,
            mtime: d.mtime.as_deref().map(decode_mtime).transpose()?,
        })
    }

    /// Encodes as gogo-protobuf marshals boxo's `pb.Data` (fields in number order, set ones only).
    pub fn encode(&self) -> Result<Vec<u8>, MfsError> {
        let kind = match self.kind {
            T_RAW => DataType::Raw,
            T_DIRECTORY => DataType::Directory,
            T_FILE => DataType::File,
            T_SYMLINK => DataType::Symlink,
            T_HAMT => DataType::HamtShard,
            other => {
                return Err(MfsError::Invalid(format!(
                    "cannot write UnixFS type {other}"
                )));
            }
        };
        let mut d = UnixfsData::new(kind);
        d.data = self.data.as_deref();
        d.filesize = self.filesize;
        d.blocksizes = &self.blocksizes;
        d.hash_type = self.hash_type;
        d.fanout = self.fanout;
        d.mode = self.mode;
        d.mtime = self.mtime;
        Ok(d.encode())
    }

    /// Go's `FSNode.FileSize()` for files: the stored `filesize` (0 when absent).
    pub fn file_size(&self) -> u64 {
        self.filesize.unwrap_or(0)
    }

    /// `UpdateFilesize(diff)`, wrapping as Go's uint64 arithmetic does.
    pub fn add_filesize(&mut self, diff: i128) {
        let v = i128::from(self.file_size()) + diff;
        self.filesize = Some(v as u64);
    }
}

/// Decodes a UnixFS 1.5 `UnixTime` message.
fn decode_mtime(mut buf: &[u8]) -> Result<Mtime, MfsError> {
    let mut t = Mtime::default();
    while !buf.is_empty() {
        let (key, rest) = varint(buf)?;
        buf = rest;
        match (key >> 3, key & 7) {
            (1, 0) => {
                let (v, rest) = varint(buf)?;
                t.seconds = v as i64;
                buf = rest;
            }
            (2, 5) if buf.len() >= 4 => {
                t.nanos = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
                buf = &buf[4..];
            }
            (_, 0) => buf = varint(buf)?.1,
            (_, 5) if buf.len() >= 4 => buf = &buf[4..],
            (_, 1) if buf.len() >= 8 => buf = &buf[8..],
            _ => return Err(MfsError::Invalid("bad UnixFS mtime".into())),
        }
    }
    Ok(t)
}

/// The empty directory's `Data` (boxo `FolderPBData`: only `Type` = Directory).
pub(crate) fn empty_dir_data() -> Vec<u8> {
    let mut out = vec![0x08];
    put_varint(&mut out, T_DIRECTORY);
    out
}

/// The blocks of one MFS operation: new blocks are kept here (and readable) until the
/// operation is committed with [`Tx::commit`], so a failed operation stores nothing and the
/// root is only replaced after its blocks were stored.
pub(crate) struct Tx<'a, S: ?Sized> {
    /// Where existing blocks are read and new ones stored.
    pub store: &'a S,
    /// Blocks made by this operation, by CID.
    pub new: HashMap<Cid, Bytes>,
    /// The same blocks in the order they were made (children before parents).
    pub order: Vec<Block>,
}

impl<'a, S: BlockSource + BlockSink + ?Sized> Tx<'a, S> {
    /// A transaction over `store`.
    pub fn new(store: &'a S) -> Self {
        Tx {
            store,
            new: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// A block, from this transaction or the store.
    pub async fn get(&self, cid: &Cid) -> Result<Bytes, MfsError> {
        if let Some(b) = self.new.get(cid) {
            return Ok(b.clone());
        }
        Ok(load(self.store, cid).await?)
    }

    /// Records a new block.
    pub fn put(&mut self, block: Block) {
        if block.cid().hash().code() == 0 || self.new.contains_key(block.cid()) {
            return;
        }
        self.new.insert(*block.cid(), block.data().clone());
        self.order.push(block);
    }

    /// Adds a built node's block (as [`Tx::put`]) and returns its CID.
    pub fn keep(&mut self, built: Built) -> Cid {
        let cid = built.cid();
        self.put(built.block);
        cid
    }

    /// Stores every new block (children before parents) in one `put_many`.
    pub async fn commit(self) -> Result<(), MfsError> {
        if self.order.is_empty() {
            return Ok(());
        }
        self.store
            .put_many(self.order)
            .await
            .map_err(|e| MfsError::Unixfs(UnixfsError::Store(e)))
    }
}
