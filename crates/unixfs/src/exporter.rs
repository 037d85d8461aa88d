//! Reading UnixFS DAGs back: file contents as a stream of [`Bytes`] (`cat`, with Kubo's `offset`
//! and `length`), directory listings (`ls`, plain and HAMT-sharded) and path resolution
//! (`resolve`, `dag/resolve`, the path part of every command that takes `/ipfs/CID/a/b`).
//!
//! The file walk is `rust-unixfs`'s [`IdleFileVisit`]/[`FileVisit`], which reads balanced and
//! trickle DAGs alike (it follows the links in order, using each node's `blocksizes`), and skips
//! whole subtrees that lie outside the wanted byte range by their blocksizes, without fetching
//! them. Directory lookups use [`rust_unixfs::resolve`], which also walks HAMT shards by the
//! murmur3 hash of the name, fetching only the shard nodes on the way.
//!
//! # Memory bound
//!
//! A file stream holds one block at a time (the bytes it yields are slices of that block, not
//! copies) plus `rust-unixfs`'s queue of pending links: at most `fan-out × depth` entries of
//! (CID, byte range), about 100 bytes each, so ~35 KiB for a 1 TB file of Kubo's 174-link
//! nodes. A directory listing holds one directory node (or, for a HAMT, the path of shard nodes
//! from the root to the current one, each with its link list); the listing itself is streamed.

use std::ops::Range;

use bytes::Bytes;
use futures::Stream;
use futures::stream::{self, TryStreamExt};
use ipld_core::ipld::Ipld;
use rust_unixfs::dir::{DirLink, NodeDescription};
use rust_unixfs::file::visit::{FileVisit, IdleFileVisit};
use rust_unixfs::{MaybeResolved, ResolveError};

use crate::{BlockSource, Cid, UnixfsError};

/// The `raw` codec (0x55): a block whose bytes are file content.
pub const RAW: u64 = 0x55;
/// The `dag-pb` codec (0x70): UnixFS nodes.
pub const DAG_PB: u64 = 0x70;
/// The `dag-cbor` codec (0x71).
pub const DAG_CBOR: u64 = 0x71;
/// The `dag-json` codec (0x0129).
pub const DAG_JSON: u64 = 0x0129;
/// The `identity` multihash code: the "hash" is the data itself (Kubo's inline CIDs).
pub const IDENTITY: u64 = 0x00;

/// Reads one block: an identity CID's bytes come from the CID itself (Kubo never stores them),
/// any other from `src`.
///
/// # Errors
/// [`UnixfsError::BlockNotFound`] if `src` does not have it, [`UnixfsError::Store`] if `src`
/// fails.
pub async fn load<S: BlockSource + ?Sized>(src: &S, cid: &Cid) -> Result<Bytes, UnixfsError> {
    if cid.hash().code() == IDENTITY {
        return Ok(Bytes::copy_from_slice(cid.hash().digest()));
    }
    src.get(cid)
        .await
        .map_err(UnixfsError::Store)?
        .ok_or(UnixfsError::BlockNotFound(*cid))
}

fn invalid(cid: &Cid, reason: impl std::fmt::Display) -> UnixfsError {
    UnixfsError::InvalidBlock {
        cid: *cid,
        reason: reason.to_string(),
    }
}

/// What a node is, as far as the exporter cares.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeKind {
    /// A file: a UnixFS `File`/`Raw` node, or a `raw` block. `size` is the file size in bytes.
    File {
        /// The file size in bytes (UnixFS `filesize`, or the raw block's length).
        size: u64,
    },
    /// A plain UnixFS directory.
    Directory,
    /// A HAMT-sharded UnixFS directory.
    HamtShard,
    /// A UnixFS symlink with its target (the node's `Data`, as UTF-8 lossily).
    Symlink {
        /// Where the link points, as stored (never followed by cairn).
        target: String,
    },
    /// Anything else: dag-cbor, dag-json, non-UnixFS dag-pb, UnixFS `Metadata`.
    Other,
}

impl NodeKind {
    /// The UnixFS type number Kubo's `ls` prints in `Type` (`unixfs.pb` `DataType`): 2 for
    /// files (raw leaves too, as Kubo's core API reports them), 1 for directories (sharded
    /// too), 4 for symlinks, 0 otherwise.
    pub fn kubo_type(&self) -> i32 {
        match self {
            NodeKind::File { .. } => 2,
            NodeKind::Directory | NodeKind::HamtShard => 1,
            NodeKind::Symlink { .. } => 4,
            NodeKind::Other => 0,
        }
    }

    /// Whether this is a directory, plain or sharded.
    pub fn is_dir(&self) -> bool {
        matches!(self, NodeKind::Directory | NodeKind::HamtShard)
    }
}

/// Classifies a block by its CID's codec and (for dag-pb) its UnixFS type.
///
/// Never fails: a block that does not parse as UnixFS is [`NodeKind::Other`].
pub fn node_kind(cid: &Cid, block: &[u8]) -> NodeKind {
    match cid.codec() {
        RAW => NodeKind::File {
            size: block.len() as u64,
        },
        DAG_PB => match rust_unixfs::dir::describe(block) {
            NodeDescription::File { size } => NodeKind::File { size },
            NodeDescription::Directory { .. } => NodeKind::Directory,
            NodeDescription::HamtShard { .. } => NodeKind::HamtShard,
            NodeDescription::Symlink => NodeKind::Symlink {
                target: String::from_utf8_lossy(
                    &unixfs_pb::parse(block)
                        .ok()
                        .and_then(|d| d.data)
                        .unwrap_or_default(),
                )
                .into_owned(),
            },
            _ => NodeKind::Other,
        },
        _ => NodeKind::Other,
    }
}

/// Kubo's `cat` range: bytes `[offset, offset + length)` of the file, `length: None` meaning to
/// the end.
///
/// # Errors
/// [`UnixfsError::InvalidArgument`] with Kubo's text when `offset` is past the end of the file
/// (`offset was past the end of file (O > SIZE)`); `offset == size` gives an empty stream.
fn target_range(offset: u64, length: Option<u64>, size: u64) -> Result<Range<u64>, UnixfsError> {
    if offset > size {
        return Err(UnixfsError::InvalidArgument(format!(
            "offset was past the end of file ({offset} > {size})"
        )));
    }
    let end = match length {
        Some(len) => offset.saturating_add(len).min(size),
        None => size,
    };
    Ok(offset..end)
}

/// State of a [`cat`] stream between blocks.
enum CatState {
    /// The first chunk (from the root block) and the walk that follows it.
    Start(Bytes, Option<FileVisit>),
    /// The walk, with the next link to load.
    Walk(FileVisit),
    Done,
}

/// A file's contents as a stream of chunks, as Kubo's `cat` (and `get` for one file) sends them.
///
/// `offset` and `length` select bytes `[offset, offset + length)` (clamped to the file);
/// subtrees outside the range are never fetched. Chunks are slices of the blocks (zero-copy);
/// empty chunks are not yielded. The root is read and checked before this returns, so a missing
/// root or a directory is an error here rather than in the stream.
///
/// # Errors
/// Before streaming: [`UnixfsError::BlockNotFound`] for the root; [`UnixfsError::NotAFile`]
/// (Kubo's `this dag node is a directory` for directories); `offset` past the end (see
/// [`UnixfsError::InvalidArgument`]). In the stream: a missing or invalid block below the root.
pub async fn cat<'a, S: BlockSource + ?Sized>(
    src: &'a S,
    root: &Cid,
    offset: u64,
    length: Option<u64>,
) -> Result<
    (
        u64,
        impl Stream<Item = Result<Bytes, UnixfsError>> + Send + 'a,
    ),
    UnixfsError,
> {
    let block = load(src, root).await?;
    let (size, first, visit) = match root.codec() {
        RAW => {
            let range = target_range(offset, length, block.len() as u64)?;
            let size = block.len() as u64;
            let (content, _, _, _) = IdleFileVisit::default()
                .with_target_range(range)
                .start_from_raw(&block);
            (size, block.slice_ref(content), None)
        }
        DAG_PB => {
            let size = match node_kind(root, &block) {
                NodeKind::File { size } => size,
                NodeKind::Directory | NodeKind::HamtShard => {
                    return Err(UnixfsError::NotAFile(
                        "this dag node is a directory".to_string(),
                    ));
                }
                _ => {
                    return Err(UnixfsError::NotAFile(format!(
                        "{root} is not a UnixFS file"
                    )));
                }
            };
            let range = target_range(offset, length, size)?;
            let (content, _, _, visit) = IdleFileVisit::default()
                .with_target_range(range)
                .start(&block)
                .map_err(|e| invalid(root, e))?;
            (size, block.slice_ref(content), visit)
        }
        _ => {
            return Err(UnixfsError::NotAFile(format!(
                "{root} is not a UnixFS file"
            )));
        }
    };
    let state = CatState::Start(first, visit);
    let stream = stream::try_unfold(state, move |mut state| async move {
        loop {
            match state {
                CatState::Done => return Ok(None),
                CatState::Start(first, visit) => {
                    state = visit.map_or(CatState::Done, CatState::Walk);
                    if !first.is_empty() {
                        return Ok(Some((first, state)));
                    }
                }
                CatState::Walk(visit) => {
                    let next = *visit.pending_links().0;
                    let block = load(src, &next).await?;
                    let (content, visit) = visit
                        .continue_walk(&block, &mut None)
                        .map_err(|e| invalid(&next, e))?;
                    let chunk = block.slice_ref(content);
                    state = visit.map_or(CatState::Done, CatState::Walk);
                    if !chunk.is_empty() {
                        return Ok(Some((chunk, state)));
                    }
                }
            }
        }
    });
    Ok((size, stream))
}

/// One entry of a directory listing, with the fields Kubo's `ls` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (for a HAMT, without the bucket prefix).
    pub name: String,
    /// The entry's CID.
    pub cid: Cid,
    /// The link's `Tsize`: the cumulative size of the entry's DAG, as recorded by the parent.
    pub tsize: u64,
    /// What the entry is; `None` when the listing was asked not to read the entries' blocks
    /// (Kubo's `--resolve-type=false --size=false`).
    pub kind: Option<NodeKind>,
}

impl DirEntry {
    /// The size Kubo's `ls` prints in `Size`: the file size for files, 0 otherwise (and when
    /// the kind was not read).
    pub fn size(&self) -> u64 {
        match self.kind {
            Some(NodeKind::File { size }) => size,
            _ => 0,
        }
    }
}

/// Decodes a dag-pb block's UnixFS directory links, or tells it is not a directory.
fn dir_links(cid: &Cid, block: &[u8]) -> Result<Option<(bool, Vec<DirLink>)>, UnixfsError> {
    if cid.codec() != DAG_PB {
        return Ok(None);
    }
    // `describe` swallows decode errors; a block that is not dag-pb at all must be reported.
    ipld_dagpb::PbNode::from_bytes(Bytes::copy_from_slice(block)).map_err(|e| invalid(cid, e))?;
    Ok(match rust_unixfs::dir::describe(block) {
        NodeDescription::Directory { links } => Some((false, links)),
        NodeDescription::HamtShard { links } => Some((true, links)),
        _ => None,
    })
}

/// The length of a HAMT shard's link-name prefix: the fan-out's hex digit count (2 for Kubo's
/// 256).
fn hamt_prefix_len(cid: &Cid, block: &[u8]) -> Result<usize, UnixfsError> {
    let data = unixfs_pb::parse(block).map_err(|e| invalid(cid, e))?;
    let fanout = data.fanout.unwrap_or(256);
    if fanout < 2 || fanout > 1 << 16 || !fanout.is_power_of_two() {
        return Err(invalid(cid, format!("invalid HAMT fanout {fanout}")));
    }
    Ok(format!("{:X}", fanout - 1).len())
}

/// A frame of a directory listing walk: one (shard) node's links and the next to visit.
struct ListFrame {
    links: std::vec::IntoIter<DirLink>,
    /// HAMT prefix length, `None` for a plain directory.
    prefix: Option<usize>,
}

/// A directory's entries in Kubo's `ls` order: a plain directory's links in order; a HAMT's
/// entries depth first through its shards (the order Kubo's HAMT walk yields them).
///
/// With `resolve_kind`, each entry's root block is read to tell its [`NodeKind`] and file size
/// (Kubo's default `--resolve-type --size`); otherwise only the parent's links are read. A
/// non-directory yields no entries (Kubo's `ls` of a file lists nothing under it).
///
/// # Errors
/// The root is read before returning ([`UnixfsError::BlockNotFound`]); shard nodes and entry
/// blocks are read in the stream. A malformed HAMT link name is [`UnixfsError::InvalidBlock`].
pub async fn ls<'a, S: BlockSource + ?Sized>(
    src: &'a S,
    root: &Cid,
    resolve_kind: bool,
) -> Result<impl Stream<Item = Result<DirEntry, UnixfsError>> + Send + 'a, UnixfsError> {
    let block = load(src, root).await?;
    let mut stack = Vec::new();
    if let Some((hamt, links)) = dir_links(root, &block)? {
        let prefix = if hamt {
            Some(hamt_prefix_len(root, &block)?)
        } else {
            None
        };
        stack.push(ListFrame {
            links: links.into_iter(),
            prefix,
        });
    }
    Ok(stream::try_unfold(stack, move |mut stack| async move {
        loop {
            let Some(frame) = stack.last_mut() else {
                return Ok(None);
            };
            let Some(link) = frame.links.next() else {
                stack.pop();
                continue;
            };
            let name = match frame.prefix {
                None => link.name,
                Some(p) if link.name.len() == p => {
                    // A bucket that is itself a shard: descend into it.
                    let block = load(src, &link.target).await?;
                    match dir_links(&link.target, &block)? {
                        Some((true, links)) => {
                            let prefix = hamt_prefix_len(&link.target, &block)?;
                            stack.push(ListFrame {
                                links: links.into_iter(),
                                prefix: Some(prefix),
                            });
                            continue;
                        }
                        _ => return Err(invalid(&link.target, "HAMT bucket is not a shard")),
                    }
                }
                Some(p) => match link.name.get(p..) {
                    Some(n) if link.name.len() > p => n.to_string(),
                    _ => return Err(invalid(&link.target, "malformed HAMT link name")),
                },
            };
            let kind = if resolve_kind {
                let block = load(src, &link.target).await?;
                Some(node_kind(&link.target, &block))
            } else {
                None
            };
            let entry = DirEntry {
                name,
                cid: link.target,
                tsize: link.tsize,
                kind,
            };
            return Ok(Some((entry, stack)));
        }
    }))
}

/// The result of resolving a path: the last CID reached and the path left inside its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The CID the path leads to (the block holding the value, for a path into dag-cbor).
    pub cid: Cid,
    /// The segments not consumed by links: a path into the block's own data (dag-cbor), as
    /// Kubo's `dag resolve` reports in `RemPath`. Empty when the path ends on a block.
    pub remainder: Vec<String>,
}

impl Resolved {
    /// `remainder` joined with `/`, as Kubo prints `RemPath`.
    pub fn rem_path(&self) -> String {
        self.remainder.join("/")
    }
}

/// Splits `/ipfs/CID/a/b`, `/ipld/CID/a`, `CID/a/b` or `CID` into the root CID and segments
/// (empty segments dropped, as Kubo's path parsing does).
///
/// # Errors
/// [`UnixfsError::InvalidArgument`] for an unknown namespace or a bad CID.
pub fn parse_path(path: &str) -> Result<(Cid, Vec<String>), UnixfsError> {
    let rest = if let Some(r) = path.strip_prefix("/ipfs/") {
        r
    } else if let Some(r) = path.strip_prefix("/ipld/") {
        r
    } else if path.starts_with('/') {
        return Err(UnixfsError::InvalidArgument(format!(
            "invalid path {path:?}: unsupported namespace"
        )));
    } else {
        path
    };
    let mut segs = rest.split('/').filter(|s| !s.is_empty());
    let first = segs
        .next()
        .ok_or_else(|| UnixfsError::InvalidArgument(format!("invalid path {path:?}")))?;
    let cid = Cid::try_from(first)
        .map_err(|e| UnixfsError::InvalidArgument(format!("invalid path {path:?}: {e}")))?;
    Ok((cid, segs.map(str::to_string).collect()))
}

/// Walks `segments` from `root`: dag-pb by link name (UnixFS directories, HAMT shards by
/// hashed lookup, and plain dag-pb nodes by link name, as Kubo's resolver does); dag-cbor and
/// dag-json by map key and list index, following links. A path that ends inside a dag-cbor
/// block's data stops there, with the rest in [`Resolved::remainder`] (Kubo's `dag resolve`).
///
/// # Errors
/// [`UnixfsError::NoSuchLink`] (`no link named "x" under CID`, Kubo's text) when a dag-pb
/// node or a dag-cbor map has no such name; [`UnixfsError::NotADirectory`] when a path goes
/// below a UnixFS file or a raw block; missing and invalid blocks.
pub async fn resolve<S: BlockSource + ?Sized>(
    src: &S,
    root: &Cid,
    segments: &[String],
) -> Result<Resolved, UnixfsError> {
    let mut cid = *root;
    let mut i = 0;
    while i < segments.len() {
        let block = load(src, &cid).await?;
        match cid.codec() {
            DAG_PB => {
                cid = resolve_pb(src, &cid, &block, &segments[i]).await?;
                i += 1;
            }
            DAG_CBOR | DAG_JSON => {
                let node = crate::codec::decode(cid.codec(), &block).map_err(|e| match e {
                    UnixfsError::InvalidArgument(r) => invalid(&cid, r),
                    other => other,
                })?;
                let (value, used) = walk_ipld(&cid, &node, &segments[i..])?;
                match value {
                    Some(Ipld::Link(next)) => {
                        cid = *next;
                        i += used;
                    }
                    _ => {
                        return Ok(Resolved {
                            cid,
                            remainder: segments[i..].to_vec(),
                        });
                    }
                }
            }
            _ => {
                return Err(UnixfsError::NotADirectory(format!(
                    "cannot resolve {:?} under {cid}: not a directory or IPLD node",
                    segments[i]
                )));
            }
        }
    }
    Ok(Resolved {
        cid,
        remainder: Vec::new(),
    })
}

/// Follows `segments` inside one decoded IPLD node: the value reached (a link stops the walk,
/// as the next block must be loaded) and how many segments it consumed. `None` with fewer than
/// all consumed never happens: a missing key is an error.
pub(crate) fn walk_ipld<'n>(
    cid: &Cid,
    node: &'n Ipld,
    segments: &[String],
) -> Result<(Option<&'n Ipld>, usize), UnixfsError> {
    let mut cur = node;
    for (n, seg) in segments.iter().enumerate() {
        if let Ipld::Link(_) = cur {
            return Ok((Some(cur), n));
        }
        let next = match cur {
            Ipld::Map(m) => m.get(seg),
            Ipld::List(l) => seg.parse::<usize>().ok().and_then(|i| l.get(i)),
            _ => None,
        };
        cur = next.ok_or_else(|| UnixfsError::NoSuchLink {
            cid: *cid,
            name: seg.clone(),
        })?;
    }
    Ok((Some(cur), segments.len()))
}

/// One dag-pb step: a UnixFS directory or HAMT lookup by name, or a plain dag-pb link name.
async fn resolve_pb<S: BlockSource + ?Sized>(
    src: &S,
    cid: &Cid,
    block: &[u8],
    name: &str,
) -> Result<Cid, UnixfsError> {
    let not_found = || UnixfsError::NoSuchLink {
        cid: *cid,
        name: name.to_string(),
    };
    let mut step = match rust_unixfs::resolve(block, name, &mut None) {
        Ok(step) => step,
        Err(ResolveError::UnexpectedType(_)) => {
            return Err(UnixfsError::NotADirectory(format!(
                "cannot resolve {name:?} under {cid}: not a directory"
            )));
        }
        Err(e) => return Err(invalid(cid, e)),
    };
    loop {
        match step {
            MaybeResolved::Found(found) => return Ok(found),
            MaybeResolved::NotFound => return Err(not_found()),
            MaybeResolved::NeedToLoadMore(lookup) => {
                let next = *lookup.pending_links().0;
                let shard = load(src, &next).await?;
                step = match lookup.continue_walk(&shard, &mut None) {
                    Ok(s) => s,
                    Err(e) => return Err(invalid(&next, e)),
                };
            }
        }
    }
}

/// Reads a whole small file into memory: a test and tooling helper, not for serving (use
/// [`cat`]). Fails with [`UnixfsError::TooLarge`] past `limit` bytes.
pub async fn read_to_vec<S: BlockSource + ?Sized>(
    src: &S,
    root: &Cid,
    limit: u64,
) -> Result<Vec<u8>, UnixfsError> {
    let (size, stream) = cat(src, root, 0, None).await?;
    if size > limit {
        return Err(UnixfsError::TooLarge(format!(
            "file of {size} bytes is over the {limit} byte limit"
        )));
    }
    let chunks: Vec<Bytes> = stream.try_collect().await?;
    Ok(chunks.concat())
}

/// Kubo's `ls` entries of a directory collected, for tests and small directories.
pub async fn ls_all<S: BlockSource + ?Sized>(
    src: &S,
    root: &Cid,
    resolve_kind: bool,
) -> Result<Vec<DirEntry>, UnixfsError> {
    ls(src, root, resolve_kind).await?.try_collect().await
}

/// A minimal reader of the UnixFS `Data` protobuf inside a dag-pb node, for the two fields
/// `rust-unixfs` does not expose: a symlink's target (`Data`) and a HAMT's `fanout`.
pub(crate) mod unixfs_pb {
    use bytes::Bytes;

    /// The fields of UnixFS `Data` cairn reads itself.
    #[derive(Debug, Default)]
    pub(crate) struct Data {
        /// Field 2: the node's inline data (file bytes, or a symlink's target).
        pub(crate) data: Option<Vec<u8>>,
        /// Field 6: a HAMT's fan-out.
        pub(crate) fanout: Option<u64>,
    }

    /// Parses a dag-pb block and its UnixFS `Data`. Errors are descriptions for
    /// [`crate::UnixfsError::InvalidBlock`].
    pub(crate) fn parse(block: &[u8]) -> Result<Data, String> {
        let node = ipld_dagpb::PbNode::from_bytes(Bytes::copy_from_slice(block))
            .map_err(|e| e.to_string())?;
        let mut buf: &[u8] = node.data.as_deref().unwrap_or_default();
        let mut out = Data::default();
        while !buf.is_empty() {
            let (key, rest) = unsigned_varint::decode::u64(buf).map_err(|e| e.to_string())?;
            buf = rest;
            let (field, wire) = (key >> 3, key & 7);
            match wire {
                0 => {
                    let (v, rest) = unsigned_varint::decode::u64(buf).map_err(|e| e.to_string())?;
                    buf = rest;
                    if field == 6 {
                        out.fanout = Some(v);
                    }
                }
                2 => {
                    let (len, rest) =
                        unsigned_varint::decode::usize(buf).map_err(|e| e.to_string())?;
                    if len > rest.len() {
                        return Err("truncated UnixFS field".into());
                    }
                    if field == 2 {
                        out.data = Some(rest[..len].to_vec());
                    }
                    buf = &rest[len..];
                }
                5 if buf.len() >= 4 => buf = &buf[4..],
                1 if buf.len() >= 8 => buf = &buf[8..],
                _ => return Err(format!("bad UnixFS protobuf wire type {wire}")),
            }
        }
        Ok(out)
    }
}
