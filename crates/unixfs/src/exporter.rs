//! Reading UnixFS DAGs back: file contents as a stream of [`Bytes`] (`cat`, with Kubo's `offset`
//! and `length`), directory listings (`ls`, plain and HAMT-sharded) and path resolution
//! (`resolve`, `dag/resolve`, the path part of every command that takes `/ipfs/CID/a/b`).
//!
//! The file walk reads balanced and trickle DAGs alike: it follows each node's links in
//! order, placing each child in the file by the node's `blocksizes`, and skips whole subtrees
//! that lie outside the wanted byte range without fetching them. (It is cairn's own, ~100
//! lines: `rust-unixfs`'s file visitor also fetches subtrees that only touch the range, and
//! keeps every pending link of the file in one queue.) Directory lookups use [`rust_unixfs::resolve`], which also walks HAMT shards by the
//! murmur3 hash of the name, fetching only the shard nodes on the way.
//!
//! # Memory bound
//!
//! A file stream holds one block at a time (the bytes it yields are slices of that block, not
//! copies) plus the pending in-range links of each level: at most `fan-out × depth` entries of
//! (CID, byte range), about 100 bytes each, so under 100 KiB for a 1 TB file of Kubo's
//! 174-link nodes; depth is capped at [`MAX_FILE_DEPTH`]. A directory listing holds one directory node (or, for a HAMT, the path of shard nodes
//! from the root to the current one, each with its link list); the listing itself is streamed.

use std::ops::Range;

use bytes::Bytes;
use futures::Stream;
use futures::stream::{self, TryStreamExt};
use ipld_core::ipld::Ipld;
use rust_unixfs::dir::{DirLink, NodeDescription};
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

/// Whether `block` decodes as strict dag-pb (`ipld-dagpb`) whose UnixFS `Data`, if any, is
/// well-formed protobuf down to its nested `mtime` message ([`unixfs_pb::check`]).
/// `rust-unixfs`'s protobuf reader (quick-protobuf 0.8) can read past the end of a nested
/// message and overflow (a panic with overflow checks on) on malformed input the fuzzer found
/// (an outer node, then a 1-byte `mtime` of `0x00`), so it is only handed blocks that pass.
fn is_dag_pb(block: &[u8]) -> bool {
    unixfs_pb::parse(block).is_ok_and(|d| unixfs_pb::check(&d).is_ok())
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
        DAG_PB if !is_dag_pb(block) => NodeKind::Other,
        DAG_PB => match rust_unixfs::dir::describe(block) {
            NodeDescription::File { size } => NodeKind::File {
                size: file_size(block).unwrap_or(size),
            },
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

/// A file node's size: `filesize`, or (when absent, as in some old DAGs) its data plus
/// blocksizes.
fn file_size(block: &[u8]) -> Option<u64> {
    let d = unixfs_pb::parse(block).ok()?;
    d.filesize.or_else(|| {
        d.blocksizes
            .iter()
            .try_fold(d.data.as_ref().map_or(0, |x| x.len() as u64), |a, b| {
                a.checked_add(*b)
            })
    })
}

/// Kubo's `cat` range: bytes `[offset, offset + length)` of the file clamped to it,
/// `length: None` meaning to the end. An offset at or past the end is an empty range, not an
/// error: Kubo's `cat` carries such an offset over to the next path (`offset - size`), which
/// the caller does with the size [`cat`] returns.
fn target_range(offset: u64, length: Option<u64>, size: u64) -> Range<u64> {
    let start = offset.min(size);
    let end = match length {
        Some(len) => offset.saturating_add(len).min(size),
        None => size,
    };
    start..end.max(start)
}

/// The deepest file tree [`cat`] follows. Kubo's balanced trees are ~5 levels deep for any real
/// file and trickle trees grow logarithmically; deeper is a malicious DAG.
pub const MAX_FILE_DEPTH: usize = 256;

/// The pieces of one file node in file order: its inline data, then its children with the
/// byte range each covers (from `blocksizes`).
struct FileNode {
    data: Bytes,
    children: Vec<(Cid, Range<u64>)>,
}

/// Decodes a UnixFS `File`/`Raw` node (or a raw block) whose content covers `range` of the file.
///
/// # Errors
/// [`UnixfsError::InvalidBlock`] if it is not a file node, its links and `blocksizes` differ in
/// number, or its sizes do not add up to `range`'s length (so a DAG cannot make the stream
/// longer or shorter than the sizes its parents promised).
fn file_node(cid: &Cid, block: &Bytes, range: &Range<u64>) -> Result<FileNode, UnixfsError> {
    let want = range.end - range.start;
    if cid.codec() == RAW {
        if block.len() as u64 != want {
            return Err(invalid(
                cid,
                format!(
                    "raw leaf of {} bytes where {want} were expected",
                    block.len()
                ),
            ));
        }
        return Ok(FileNode {
            data: block.clone(),
            children: Vec::new(),
        });
    }
    if cid.codec() != DAG_PB {
        return Err(invalid(cid, "not a UnixFS file node"));
    }
    let node = ipld_dagpb::PbNode::from_bytes(block.clone()).map_err(|e| invalid(cid, e))?;
    let fs = unixfs_pb::parse_data(node.data.as_deref().unwrap_or_default())
        .map_err(|e| invalid(cid, e))?;
    if fs.kind != Some(2) && fs.kind != Some(0) {
        return Err(invalid(cid, "not a UnixFS file node"));
    }
    if node.links.len() != fs.blocksizes.len() {
        return Err(invalid(
            cid,
            "different number of links and blocksizes: cannot determine subtree ranges",
        ));
    }
    let data = fs.data.map(Bytes::from).unwrap_or_default();
    let mut at = range.start.checked_add(data.len() as u64);
    let mut children = Vec::with_capacity(node.links.len());
    for (link, size) in node.links.iter().zip(&fs.blocksizes) {
        let start = at.ok_or_else(|| invalid(cid, "file size overflows"))?;
        let end = start
            .checked_add(*size)
            .ok_or_else(|| invalid(cid, "file size overflows"))?;
        children.push((link.cid, start..end));
        at = Some(end);
    }
    if at != Some(range.end) {
        return Err(invalid(
            cid,
            format!("node content does not add up to the {want} bytes its parent promised"),
        ));
    }
    Ok(FileNode { data, children })
}

/// The slice of `data` (which covers `covers` of the file) inside `want`.
fn clip(data: &Bytes, covers: u64, want: &Range<u64>) -> Bytes {
    let start = want.start.max(covers);
    let end = want.end.min(covers + data.len() as u64);
    if start >= end {
        return Bytes::new();
    }
    data.slice((start - covers) as usize..(end - covers) as usize)
}

/// A file walk in progress: per level, the children still to visit that overlap the range.
struct FileWalk<'a, S: ?Sized> {
    src: &'a S,
    want: Range<u64>,
    stack: Vec<std::vec::IntoIter<(Cid, Range<u64>)>>,
    first: Option<Bytes>,
}

impl<S: BlockSource + ?Sized> FileWalk<'_, S> {
    /// Pushes a node's in-range children; returns its in-range inline data.
    fn enter(&mut self, node: FileNode, covers: u64) -> Result<Bytes, UnixfsError> {
        let want = self.want.clone();
        let kids: Vec<_> = node
            .children
            .into_iter()
            // Half-open overlap: a subtree that only touches the range is not read, and an
            // empty range reads nothing below the root.
            .filter(|(_, r)| r.start < want.end && want.start < r.end && want.start < want.end)
            .collect();
        if !kids.is_empty() {
            if self.stack.len() >= MAX_FILE_DEPTH {
                return Err(UnixfsError::TooLarge(format!(
                    "file tree deeper than {MAX_FILE_DEPTH} levels"
                )));
            }
            self.stack.push(kids.into_iter());
        }
        Ok(clip(&node.data, covers, &want))
    }

    async fn next(&mut self) -> Result<Option<Bytes>, UnixfsError> {
        if let Some(first) = self.first.take()
            && !first.is_empty()
        {
            return Ok(Some(first));
        }
        loop {
            let Some(level) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some((cid, range)) = level.next() else {
                self.stack.pop();
                continue;
            };
            let block = load(self.src, &cid).await?;
            let node = file_node(&cid, &block, &range)?;
            let chunk = self.enter(node, range.start)?;
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
        }
    }
}

/// A file's contents as a stream of chunks, as Kubo's `cat` (and `get` for one file) sends them.
///
/// `offset` and `length` select bytes `[offset, offset + length)` (clamped to the file);
/// subtrees outside the range are never fetched (nor those that only touch it). Chunks are
/// slices of the blocks (zero-copy); empty chunks are not yielded. The root is read and checked
/// before this returns, so a missing root or a directory is an error here rather than in the
/// stream. Returns the file size with the stream.
///
/// # Errors
/// Before streaming: [`UnixfsError::BlockNotFound`] for the root; [`UnixfsError::NotAFile`]
/// (Kubo's `this dag node is a directory` for directories). In the stream: a missing or invalid block below the root,
/// including sizes that do not add up.
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
    let want = target_range(offset, length, size);
    let mut walk = FileWalk {
        src,
        want,
        stack: Vec::new(),
        first: None,
    };
    let node = file_node(root, &block, &(0..size))?;
    walk.first = Some(walk.enter(node, 0)?);
    let stream = stream::try_unfold(walk, |mut walk| async move {
        Ok(walk.next().await?.map(|chunk| (chunk, walk)))
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
    // `describe` swallows decode errors; a block that is not dag-pb at all must be reported
    // (and one rust-unixfs cannot read safely must not reach it: see `is_dag_pb`). `parse`
    // decodes the node with ipld-dagpb and reports its error as it is.
    unixfs_pb::parse(block)
        .and_then(|d| unixfs_pb::check(&d))
        .map_err(|e| invalid(cid, e))?;
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
    if !(2..=1 << 16).contains(&fanout) || !fanout.is_power_of_two() {
        return Err(invalid(cid, format!("invalid HAMT fanout {fanout}")));
    }
    Ok(format!("{:X}", fanout - 1).len())
}

/// The deepest HAMT [`ls`] follows: a 64-bit hash gives at most 64 levels even at fan-out 2.
pub const MAX_HAMT_DEPTH: usize = 64;

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
                            // A HAMT's depth is bounded by its hash's bits (64 for murmur3,
                            // 8 levels at fan-out 256); deeper is a malicious DAG.
                            if stack.len() >= MAX_HAMT_DEPTH {
                                return Err(invalid(&link.target, "HAMT nested too deep"));
                            }
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
    let cid = Cid::try_from(first).map_err(|e| {
        UnixfsError::InvalidArgument(format!("invalid path {path:?}: {}", cid_error(first, e)))
    })?;
    Ok((cid, segs.map(str::to_string).collect()))
}

/// Why `text` is not a CID, worded as go-cid words it (`invalid cid: <reason>`), with
/// go-multibase's `selected encoding not supported` for an unknown multibase prefix (aioipfs
/// matches that ending).
fn cid_error(text: &str, e: cid::Error) -> String {
    let v0 = text.len() == 46 && text.starts_with("Qm");
    let known_base = text
        .chars()
        .next()
        .is_some_and(|c| cid::multibase::Base::from_code(c).is_ok());
    if !v0 && !known_base {
        return "invalid cid: selected encoding not supported".into();
    }
    format!("invalid cid: {e}")
}

/// Walks `segments` from `root`: dag-pb by link name (UnixFS directories, HAMT shards by
/// hashed lookup, and plain dag-pb nodes by link name, as Kubo's resolver does); dag-cbor and
/// dag-json by map key and list index, following links. A path that ends inside a dag-cbor
/// block's data stops there, with the rest in [`Resolved::remainder`] (Kubo's `dag resolve`).
///
/// # Errors
/// [`UnixfsError::NoSuchLink`] (`no link named "x" under CID`, Kubo's text) when a dag-pb
/// node or a dag-cbor map has no such name, and below a UnixFS file or a raw block (Kubo's
/// resolver gives the same text there); [`UnixfsError::NotADirectory`] below a block of a
/// codec the resolver does not read; missing and invalid blocks.
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
            RAW => {
                return Err(UnixfsError::NoSuchLink {
                    cid,
                    name: segments[i].clone(),
                });
            }
            other => {
                return Err(UnixfsError::NotADirectory(format!(
                    "cannot resolve {:?} under {cid}: codec 0x{other:x} is not supported",
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
    if !is_dag_pb(block) {
        return Err(invalid(cid, "not a valid dag-pb node"));
    }
    let mut step = match rust_unixfs::resolve(block, name, &mut None) {
        Ok(step) => step,
        // A file (or symlink) has no named children: Kubo's resolver says so in the same words
        // as for a missing name.
        Err(ResolveError::UnexpectedType(_)) => return Err(not_found()),
        Err(e) => return Err(invalid(cid, e)),
    };
    loop {
        match step {
            MaybeResolved::Found(found) => return Ok(found),
            MaybeResolved::NotFound => return Err(not_found()),
            MaybeResolved::NeedToLoadMore(lookup) => {
                let next = *lookup.pending_links().0;
                let shard = load(src, &next).await?;
                if !is_dag_pb(&shard) {
                    return Err(invalid(&next, "not a valid dag-pb node"));
                }
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

/// A reader of the UnixFS `Data` protobuf inside a dag-pb node, for the fields cairn reads
/// itself (`rust-unixfs` keeps its protobuf types private): every field of UnixFS 1.5, for the
/// exporter and MFS alike. Unknown fields are skipped; malformed input is an error, never a panic.
pub(crate) mod unixfs_pb {
    use bytes::Bytes;

    /// The fields of UnixFS `Data` cairn reads itself.
    #[derive(Debug, Default)]
    pub(crate) struct Data {
        /// Field 1: the UnixFS type (0 Raw, 1 Directory, 2 File, 3 Metadata, 4 Symlink, 5 HAMT).
        pub(crate) kind: Option<u64>,
        /// Field 2: the node's inline data (file bytes, or a symlink's target).
        pub(crate) data: Option<Vec<u8>>,
        /// Field 3: the size of the file content under this node.
        pub(crate) filesize: Option<u64>,
        /// Field 4: the content size under each link, in link order.
        pub(crate) blocksizes: Vec<u64>,
        /// Field 5: a HAMT's hash function (multicodec; murmur3-x64-64 is 0x22).
        pub(crate) hash_type: Option<u64>,
        /// Field 6: a HAMT's fan-out.
        pub(crate) fanout: Option<u64>,
        /// Field 7: UnixFS 1.5 POSIX mode bits.
        pub(crate) mode: Option<u32>,
        /// Field 8: UnixFS 1.5 mtime, the still-encoded `UnixTime` message.
        pub(crate) mtime: Option<Vec<u8>>,
    }

    /// At most this many `blocksizes`: far more links than a 2 MiB block can hold.
    const MAX_BLOCKSIZES: usize = 1 << 20;

    fn varint(buf: &[u8]) -> Result<(u64, &[u8]), String> {
        unsigned_varint::decode::u64(buf).map_err(|e| format!("UnixFS protobuf: {e}"))
    }

    /// Parses UnixFS `Data` bytes (the dag-pb node's `Data` field).
    pub(crate) fn parse_data(mut buf: &[u8]) -> Result<Data, String> {
        let mut out = Data::default();
        while !buf.is_empty() {
            let (key, rest) = varint(buf)?;
            buf = rest;
            let (field, wire) = (key >> 3, key & 7);
            match wire {
                0 => {
                    let (v, rest) = varint(buf)?;
                    buf = rest;
                    match field {
                        1 => out.kind = Some(v),
                        3 => out.filesize = Some(v),
                        4 if out.blocksizes.len() < MAX_BLOCKSIZES => out.blocksizes.push(v),
                        4 => return Err("too many blocksizes".into()),
                        5 => out.hash_type = Some(v),
                        6 => out.fanout = Some(v),
                        // Go's uint32 field: a wider varint keeps its low 32 bits.
                        7 => out.mode = Some(v as u32),
                        _ => {}
                    }
                }
                2 => {
                    let (len, rest) = varint(buf)?;
                    let len = usize::try_from(len).map_err(|_| "field too long".to_string())?;
                    if len > rest.len() {
                        return Err("truncated UnixFS field".into());
                    }
                    let (body, rest) = rest.split_at(len);
                    buf = rest;
                    match field {
                        2 => out.data = Some(body.to_vec()),
                        4 => {
                            // Packed blocksizes (proto3 style), accepted like Go's decoder.
                            let mut p = body;
                            while !p.is_empty() {
                                if out.blocksizes.len() >= MAX_BLOCKSIZES {
                                    return Err("too many blocksizes".into());
                                }
                                let (v, rest) = varint(p)?;
                                out.blocksizes.push(v);
                                p = rest;
                            }
                        }
                        8 => out.mtime = Some(body.to_vec()),
                        _ => {}
                    }
                }
                5 if buf.len() >= 4 => buf = &buf[4..],
                1 if buf.len() >= 8 => buf = &buf[8..],
                _ => return Err(format!("bad UnixFS protobuf wire type {wire}")),
            }
        }
        Ok(out)
    }

    /// Checks what [`parse_data`] keeps undecoded: the `mtime` message must be well-formed
    /// protobuf (every field complete within it), the reading rust-unixfs can do safely.
    pub(crate) fn check(data: &Data) -> Result<(), String> {
        let Some(mut buf) = data.mtime.as_deref() else {
            return Ok(());
        };
        while !buf.is_empty() {
            let (key, rest) = varint(buf)?;
            buf = match key & 7 {
                0 => varint(rest)?.1,
                1 if rest.len() >= 8 => &rest[8..],
                5 if rest.len() >= 4 => &rest[4..],
                2 => {
                    let (len, rest) = varint(rest)?;
                    let len = usize::try_from(len)
                        .ok()
                        .filter(|&l| l <= rest.len())
                        .ok_or_else(|| "truncated UnixFS mtime field".to_string())?;
                    &rest[len..]
                }
                wire => return Err(format!("bad UnixFS mtime wire type {wire}")),
            };
        }
        Ok(())
    }

    /// Parses a dag-pb block and its UnixFS `Data`.
    pub(crate) fn parse(block: &[u8]) -> Result<Data, String> {
        let node = ipld_dagpb::PbNode::from_bytes(Bytes::copy_from_slice(block))
            .map_err(|e| e.to_string())?;
        parse_data(node.data.as_deref().unwrap_or_default())
    }
}

/// Decodes `data` as the exporter's file-reading path does (dag-pb, UnixFS `Data`, a file
/// node's links and sizes), for fuzzing: any input must give `Ok` or `Err`, never a panic.
#[doc(hidden)]
pub fn fuzz_decode(codec: u64, data: &[u8]) {
    let block = Bytes::copy_from_slice(data);
    let cid = Cid::new_v1(codec, multihash::Multihash::<64>::default());
    let _ = unixfs_pb::parse_data(data);
    let kind = node_kind(&cid, &block);
    if let NodeKind::File { size } = kind {
        let _ = file_node(&cid, &block, &(0..size));
    }
    let _ = dir_links(&cid, &block);
    let _ = hamt_prefix_len(&cid, &block);
}
