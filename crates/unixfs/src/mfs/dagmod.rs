//! boxo 0.11's `ipld/unixfs/mod` `DagModifier` and `importer/trickle` `Append`, as Kubo 0.22's
//! `ipfs files write` drives them, so file CIDs depend on the write history exactly as Kubo's do.
//!
//! What a `files write` does, in Kubo's order:
//! 1. `--truncate`: `Truncate(0)`: the tree is cut at the first leaf (which becomes an empty
//!    leaf, kept as the root's only child: boxo's `dagTruncate`), unless the file is empty.
//! 2. `Seek(offset)`: past the end, the gap is appended as zero leaves of 4096 bytes
//!    (`expandSparse`) through the trickle `Append`.
//! 3. The data is buffered; whenever the buffer passes 2 MiB it is synced. A sync overwrites
//!    the leaves the buffer overlaps in place (same lengths, so the tree keeps its shape and the
//!    parents' link `Tsize`s are kept as they were, as boxo does: `modifyDag`), then appends what
//!    is left past the end as 256 KiB leaves through the trickle `Append`.
//!
//! Quirks kept on purpose because they decide CIDs: a truncated dag-pb leaf is re-created with
//! boxo's default CIDv0 prefix (`NodeWithData`) and keeps an empty `Data` field; `Append` skips
//! the depth-1 layer when the root's leaf layer fills up during the same call (its depth
//! arithmetic, not the importer's `Layout`); a file whose root is a raw block cannot grow
//! (`expected protobuf dag node`, boxo 0.11).
//!
//! How Kubo cuts the data into `Write` calls (the HTTP multipart reader's reads) is not
//! deterministic; cairn assumes calls of [`WRITE_CALL_SIZE`] bytes, which only matters for writes
//! over [`WRITE_BUFFER_SIZE`].

use cid::{Cid, Version};

use super::MfsError;
use super::node::{Built, FsData, Link, PbNode, Prefix, T_FILE, T_RAW, Tx};
use crate::exporter::{DAG_PB, RAW};
use crate::{BlockSink, BlockSource, BoxFuture};

/// boxo's `writebufferSize`: a write buffer over this many bytes is synced into the DAG.
pub const WRITE_BUFFER_SIZE: usize = 1 << 21;

/// The size of the `Write` calls cairn assumes Kubo's `io.Copy` makes (its multipart reader
/// hands out at most 4096 bytes per read).
pub const WRITE_CALL_SIZE: usize = 4096;

/// Leaf size of appended data (boxo's `chunker.DefaultSplitter`, 256 KiB).
pub const LEAF_SIZE: usize = 256 * 1024;

/// Leaf size of the zeros that fill a gap (boxo's `expandSparse`).
pub const SPARSE_LEAF_SIZE: usize = 4096;

/// The largest gap one write may zero-fill (cairn's bound; Kubo has none).
pub const MAX_SPARSE_GROWTH: u64 = 1 << 30;

/// boxo's `help.DefaultLinksPerBlock`.
const MAX_LINKS: usize = 174;

/// boxo trickle's `depthRepeat`.
const DEPTH_REPEAT: i64 = 4;

/// The deepest file tree the modifier walks (a real trickle tree of 1 TiB is ~20 deep).
const MAX_TREE_DEPTH: usize = 128;

/// The chunks an `Append` consumes: the data's 256 KiB pieces, or zeros.
enum Chunks<'d> {
    /// Data cut into `size`-byte pieces.
    Data { data: &'d [u8], size: usize },
    /// This many zero bytes in `SPARSE_LEAF_SIZE` pieces.
    Zeros(u64),
}

impl Chunks<'_> {
    /// boxo's `DagBuilderHelper.Done`.
    fn done(&self) -> bool {
        match self {
            Chunks::Data { data, .. } => data.is_empty(),
            Chunks::Zeros(n) => *n == 0,
        }
    }

    /// The next chunk (empty when done).
    fn next_chunk(&mut self) -> Vec<u8> {
        match self {
            Chunks::Data { data, size } => {
                let n = (*size).min(data.len());
                let (head, rest) = data.split_at(n);
                *data = rest;
                head.to_vec()
            }
            Chunks::Zeros(n) => {
                let k = (*n).min(SPARSE_LEAF_SIZE as u64);
                *n -= k;
                vec![0; k as usize]
            }
        }
    }
}

/// boxo's `FSNodeOverDag`: a file node being built or extended.
///
/// `fs.blocksizes` and `links` run in parallel (boxo counts children by `blocksizes`); `fs`
/// keeps every field it was decoded with, so a node that is only extended keeps its `Data`,
/// mode and mtime as they were.
struct FsNode {
    /// The UnixFS `Data` being edited.
    fs: FsData,
    /// The node's links, one per `blocksizes` entry.
    links: Vec<Link>,
    /// The node's own CID prefix: a loaded node keeps its CID's, a new one gets the
    /// modifier's (`db.NewFSNodeOverDag` uses the builder's `CidBuilder`).
    prefix: Prefix,
}

impl FsNode {
    /// `NewFSNodeOverDag(TFile)`.
    fn new_file(prefix: Prefix) -> FsNode {
        FsNode {
            fs: FsData::new(T_FILE),
            links: Vec::new(),
            prefix,
        }
    }

    /// `NewFSNFromDag` of a stored node (dag-pb only: `dag.ErrNotProtobuf` otherwise).
    fn load(cid: &Cid, block: &[u8]) -> Result<FsNode, MfsError> {
        if cid.codec() != DAG_PB {
            return Err(MfsError::NotProtobuf);
        }
        let node = PbNode::decode(cid, block)?;
        Ok(FsNode {
            fs: FsData::decode(&node.data)?,
            links: node.links,
            prefix: Prefix::of(cid),
        })
    }

    /// `NumChildren`: the number of `blocksizes` entries.
    fn num_children(&self) -> usize {
        self.fs.blocksizes.len()
    }

    /// `AddChild`: a link with the child's `Size()`, its file size in `blocksizes`; the child is
    /// stored.
    fn add_child<S>(&mut self, child: Built, file_size: u64, tx: &mut Tx<'_, S>)
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        self.links.push(Link {
            cid: child.cid(),
            name: String::new(),
            tsize: child.size,
        });
        self.fs.blocksizes.push(file_size);
        self.fs.add_filesize(i128::from(file_size));
        tx.put(child.block);
    }

    /// `RemoveChild`.
    fn remove_child(&mut self, i: usize) {
        if i < self.fs.blocksizes.len() {
            let bs = self.fs.blocksizes.remove(i);
            self.fs.add_filesize(-i128::from(bs));
        }
        if i < self.links.len() {
            self.links.remove(i);
        }
    }

    /// `Commit`: the node as a block.
    fn commit(&self) -> Result<Built, MfsError> {
        PbNode {
            links: self.links.clone(),
            data: self.fs.encode()?,
        }
        .build(&self.prefix)
    }
}

/// boxo's trickle `trickleDepthInfo`: from a node's child count, the depth of the subtrees it
/// was being given and how many of that depth it already has (`(0, 0)` while the leaf layer is
/// not full). Rounds as boxo does: a root with exactly 174 children reports depth 1, repeat 0,
/// which is why `Append` then starts at depth 2.
fn trickle_depth_info(n: usize) -> (i64, i64) {
    if n < MAX_LINKS {
        return (0, 0);
    }
    let non_leaf = (n - MAX_LINKS) as i64;
    (non_leaf / DEPTH_REPEAT + 1, non_leaf % DEPTH_REPEAT)
}

/// A file's size as boxo's `fileSize` reads it: a raw block's length, a dag-pb node's
/// `filesize`.
pub(crate) fn file_size(cid: &Cid, block: &[u8]) -> Result<u64, MfsError> {
    match cid.codec() {
        RAW => Ok(block.len() as u64),
        DAG_PB => Ok(FsData::decode(&PbNode::decode(cid, block)?.data)?.file_size()),
        _ => Err(not_unixfs()),
    }
}

/// Go's `Node.Size()` of a stored block.
pub(crate) fn node_size(cid: &Cid, block: &[u8]) -> Result<u64, MfsError> {
    match cid.codec() {
        DAG_PB => {
            let n = PbNode::decode(cid, block)?;
            Ok(n.links
                .iter()
                .fold(block.len() as u64, |a, l| a.saturating_add(l.tsize)))
        }
        _ => Ok(block.len() as u64),
    }
}

/// boxo's `ErrNotUnixfs`.
fn not_unixfs() -> MfsError {
    MfsError::Invalid("dagmodifier only supports unixfs nodes (proto or raw)".into())
}

/// Where boxo would panic slicing a leaf's data past its end (a DAG whose sizes lie); cairn
/// reports it instead.
fn out_of_range() -> MfsError {
    MfsError::Invalid("write offset is outside the node's data".into())
}

/// One `DagModifier`: the prefix and leaf kind of the blocks it makes.
struct DagMod {
    /// `dm.Prefix`: the file root's prefix (codec dag-pb).
    prefix: Prefix,
    /// `dm.RawLeaves`.
    raw_leaves: bool,
}

impl DagMod {
    /// `NewLeafDataNode(TRaw)`: a raw block (CIDv1 whatever the prefix's version), or a dag-pb
    /// UnixFS `Raw` node carrying the bytes with `filesize` set, under the modifier's prefix.
    fn new_leaf(&self, data: Vec<u8>) -> Result<Built, MfsError> {
        if self.raw_leaves {
            let block = self.prefix.raw_block(data)?;
            let size = block.len() as u64;
            return Ok(Built { block, size });
        }
        let mut fs = FsData::new(T_RAW);
        fs.add_filesize(data.len() as i128);
        fs.data = Some(data);
        PbNode {
            links: Vec::new(),
            data: fs.encode()?,
        }
        .build(&self.prefix)
    }

    /// `FillNodeLayer`: leaves from `chunks` until the node has 174 children or the chunks end.
    fn fill_node_layer<S>(
        &self,
        node: &mut FsNode,
        chunks: &mut Chunks<'_>,
        tx: &mut Tx<'_, S>,
    ) -> Result<(), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        while node.num_children() < MAX_LINKS && !chunks.done() {
            let data = chunks.next_chunk();
            let len = data.len() as u64;
            let leaf = self.new_leaf(data)?;
            node.add_child(leaf, len, tx);
        }
        Ok(())
    }

    /// `fillTrickleRec`: a subtree of at most `max_depth` (`-1`: unbounded): its leaf layer,
    /// then four subtrees of each depth from 1 up to `max_depth - 1`, while chunks remain.
    /// Returns the committed node and its file size. Recursion depth grows with the log of the
    /// chunk count, so it stays small.
    fn fill_trickle_rec<S>(
        &self,
        mut node: FsNode,
        max_depth: i64,
        chunks: &mut Chunks<'_>,
        tx: &mut Tx<'_, S>,
    ) -> Result<(Built, u64), MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        self.fill_node_layer(&mut node, chunks, tx)?;
        let mut depth = 1;
        while max_depth == -1 || depth < max_depth {
            if chunks.done() {
                break;
            }
            let mut r = 0;
            while r < DEPTH_REPEAT && !chunks.done() {
                let (child, size) =
                    self.fill_trickle_rec(FsNode::new_file(self.prefix), depth, chunks, tx)?;
                node.add_child(child, size, tx);
                r += 1;
            }
            depth += 1;
        }
        Ok((node.commit()?, node.fs.file_size()))
    }

    /// trickle `Append`: fills the root's leaf layer, completes its last subtree
    /// (`appendFillLastChild`), then adds subtrees of growing depth while chunks remain.
    async fn append<S>(
        &self,
        tx: &mut Tx<'_, S>,
        mut base: FsNode,
        chunks: &mut Chunks<'_>,
    ) -> Result<Built, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let (mut depth, repeat) = trickle_depth_info(base.num_children());
        if depth == 0 {
            self.fill_node_layer(&mut base, chunks, tx)?;
            if chunks.done() {
                return base.commit();
            }
            depth += 1;
        }
        self.append_fill_last_child(tx, &mut base, depth - 1, repeat, chunks, 0)
            .await?;
        if !chunks.done() {
            depth += 1;
        }
        let mut i = depth;
        while !chunks.done() {
            let mut j = 0;
            while j < DEPTH_REPEAT && !chunks.done() {
                let (child, size) =
                    self.fill_trickle_rec(FsNode::new_file(self.prefix), i, chunks, tx)?;
                base.add_child(child, size, tx);
                j += 1;
            }
            i += 1;
        }
        base.commit()
    }

    /// trickle `appendFillLastChild`: when `fsn` has subtrees, loads the last one, lets
    /// [`DagMod::append_rec`] fill it, replaces it (a new link at the end), then finishes the
    /// current repeat group at `depth`. `level` bounds the recursion on malicious DAGs.
    fn append_fill_last_child<'b, 't, 'd, S>(
        &'b self,
        tx: &'b mut Tx<'t, S>,
        fsn: &'b mut FsNode,
        depth: i64,
        repeat: i64,
        chunks: &'b mut Chunks<'d>,
        level: usize,
    ) -> BoxFuture<'b, Result<(), MfsError>>
    where
        S: BlockSource + BlockSink + ?Sized,
        't: 'b,
        'd: 'b,
    {
        Box::pin(async move {
            if fsn.num_children() <= MAX_LINKS {
                return Ok(());
            }
            if level >= MAX_TREE_DEPTH {
                return Err(MfsError::Invalid("file tree is too deep".into()));
            }
            let last = fsn.num_children() - 1;
            let link = fsn.links.get(last).cloned().ok_or_else(|| {
                MfsError::Invalid("file node has fewer links than blocksizes".into())
            })?;
            let block = tx.get(&link.cid).await?;
            let last_child = FsNode::load(&link.cid, &block)?;
            let (new_child, size) = self
                .append_rec(tx, last_child, depth - 1, chunks, level + 1)
                .await?;
            fsn.remove_child(last);
            let built = new_child.commit()?;
            fsn.add_child(built, size, tx);
            if repeat != 0 {
                let mut r = repeat;
                while r < DEPTH_REPEAT && !chunks.done() {
                    let (child, size) =
                        self.fill_trickle_rec(FsNode::new_file(self.prefix), depth, chunks, tx)?;
                    fsn.add_child(child, size, tx);
                    r += 1;
                }
            }
            Ok(())
        })
    }

    /// trickle `appendRec`: fills a loaded subtree up to `max_depth` (`-1` from the root's
    /// first layer, which then only fills leaves, as in boxo); returns it uncommitted with its
    /// file size.
    fn append_rec<'b, 't, 'd, S>(
        &'b self,
        tx: &'b mut Tx<'t, S>,
        mut fsn: FsNode,
        max_depth: i64,
        chunks: &'b mut Chunks<'d>,
        level: usize,
    ) -> BoxFuture<'b, Result<(FsNode, u64), MfsError>>
    where
        S: BlockSource + BlockSink + ?Sized,
        't: 'b,
        'd: 'b,
    {
        Box::pin(async move {
            if max_depth == 0 || chunks.done() {
                let size = fsn.fs.file_size();
                return Ok((fsn, size));
            }
            let (mut depth, repeat) = trickle_depth_info(fsn.num_children());
            if depth == 0 {
                self.fill_node_layer(&mut fsn, chunks, tx)?;
                depth += 1;
            }
            if depth == max_depth {
                let size = fsn.fs.file_size();
                return Ok((fsn, size));
            }
            self.append_fill_last_child(tx, &mut fsn, depth, repeat, chunks, level)
                .await?;
            if !chunks.done() {
                depth += 1;
            }
            let mut i = depth;
            while i < max_depth && !chunks.done() {
                let mut j = 0;
                while j < DEPTH_REPEAT && !chunks.done() {
                    let (child, size) =
                        self.fill_trickle_rec(FsNode::new_file(self.prefix), i, chunks, tx)?;
                    fsn.add_child(child, size, tx);
                    j += 1;
                }
                i += 1;
            }
            let size = fsn.fs.file_size();
            Ok((fsn, size))
        })
    }

    /// `appendData`: the file `cur` with `chunks` appended (dag-pb roots only, as boxo 0.11).
    async fn append_data<S>(
        &self,
        tx: &mut Tx<'_, S>,
        cur: &Cid,
        chunks: &mut Chunks<'_>,
    ) -> Result<Cid, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let block = tx.get(cur).await?;
        let base = FsNode::load(cur, &block)?;
        let built = self.append(tx, base, chunks).await?;
        let cid = tx.keep(built);
        Ok(cid)
    }

    /// `expandSparse`: `size` zero bytes appended in 4096-byte leaves.
    async fn expand_sparse<S>(
        &self,
        tx: &mut Tx<'_, S>,
        cur: &Cid,
        size: u64,
    ) -> Result<Cid, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        if size > MAX_SPARSE_GROWTH {
            return Err(MfsError::InvalidArgument(format!(
                "cannot grow a file by {size} bytes of zeros (limit {MAX_SPARSE_GROWTH})"
            )));
        }
        self.append_data(tx, cur, &mut Chunks::Zeros(size)).await
    }

    /// `Sync`: `buf` written at `write_start` over `cur`: a gap is zero-filled first (only
    /// reached if the seek did not fill it), the overlap with existing leaves is overwritten in
    /// place, the rest is appended as 256 KiB leaves. Returns the new root.
    async fn sync<S>(
        &self,
        tx: &mut Tx<'_, S>,
        mut cur: Cid,
        write_start: u64,
        buf: &[u8],
    ) -> Result<Cid, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let fs = file_size(&cur, &tx.get(&cur).await?)?;
        if fs < write_start {
            cur = self.expand_sparse(tx, &cur, write_start - fs).await?;
        }
        let mut wr = buf;
        cur = modify_dag(tx, cur, write_start, &mut wr, 0).await?;
        if !wr.is_empty() {
            let mut chunks = Chunks::Data {
                data: wr,
                size: LEAF_SIZE,
            };
            cur = self.append_data(tx, &cur, &mut chunks).await?;
        }
        Ok(cur)
    }

    /// `Truncate(size)`: nothing at the current size, zeros appended above it, else
    /// `dagTruncate` (see [`dag_truncate`]).
    async fn truncate<S>(&self, tx: &mut Tx<'_, S>, cur: Cid, size: u64) -> Result<Cid, MfsError>
    where
        S: BlockSource + BlockSink + ?Sized,
    {
        let real = file_size(&cur, &tx.get(&cur).await?)?;
        if size == real {
            return Ok(cur);
        }
        if size > real {
            return self.expand_sparse(tx, &cur, size - real).await;
        }
        let built = dag_truncate(tx, cur, size, 0).await?;
        let cid = tx.keep(built);
        Ok(cid)
    }
}

/// `modifyDag`: overwrites the data under `cid` from `offset` with the front of `wr` (consumed
/// as written), never past the node's existing data; the new CID.
fn modify_dag<'b, 't, S>(
    tx: &'b mut Tx<'t, S>,
    cid: Cid,
    offset: u64,
    wr: &'b mut &[u8],
    level: usize,
) -> BoxFuture<'b, Result<Cid, MfsError>>
where
    S: BlockSource + BlockSink + ?Sized,
    't: 'b,
{
    Box::pin(async move {
        if level >= MAX_TREE_DEPTH {
            return Err(MfsError::Invalid("file tree is too deep".into()));
        }
        let block = tx.get(&cid).await?;
        if cid.codec() == RAW {
            let mut data = block.to_vec();
            let off = usize::try_from(offset)
                .ok()
                .filter(|&o| o <= data.len())
                .ok_or_else(out_of_range)?;
            let n = wr.len().min(data.len() - off);
            data[off..off + n].copy_from_slice(&wr[..n]);
            *wr = &wr[n..];
            let b = Prefix::of(&cid).raw_block(data)?;
            let new = *b.cid();
            tx.put(b);
            return Ok(new);
        }
        if cid.codec() != DAG_PB {
            return Err(not_unixfs());
        }
        let mut node = PbNode::decode(&cid, &block)?;
        let fs = FsData::decode(&node.data)?;
        if node.links.is_empty() {
            let mut fs = fs;
            match fs.data.as_mut() {
                Some(data) => {
                    let off = usize::try_from(offset)
                        .ok()
                        .filter(|&o| o <= data.len())
                        .ok_or_else(out_of_range)?;
                    let n = wr.len().min(data.len() - off);
                    data[off..off + n].copy_from_slice(&wr[..n]);
                    *wr = &wr[n..];
                }
                None if offset > 0 => return Err(out_of_range()),
                None => {}
            }
            let built = PbNode {
                links: Vec::new(),
                data: fs.encode()?,
            }
            .build(&Prefix::of(&cid))?;
            let new = tx.keep(built);
            return Ok(new);
        }
        let mut offset = offset;
        let mut cur: u64 = 0;
        for (i, &bs) in fs.blocksizes.iter().enumerate() {
            if cur.saturating_add(bs) > offset {
                let child = node.links.get(i).map(|l| l.cid).ok_or_else(|| {
                    MfsError::Invalid("file node has fewer links than blocksizes".into())
                })?;
                let k = modify_dag(tx, child, offset - cur, wr, level + 1).await?;
                node.links[i].cid = k;
                if wr.is_empty() {
                    break;
                }
                offset = cur.saturating_add(bs);
            }
            cur = cur.saturating_add(bs);
        }
        let built = node.build(&Prefix::of(&cid))?;
        let new = tx.keep(built);
        Ok(new)
    })
}

/// `dagTruncate`: the node `cid` cut to `size` bytes of file content.
fn dag_truncate<'b, 't, S>(
    tx: &'b mut Tx<'t, S>,
    cid: Cid,
    size: u64,
    level: usize,
) -> BoxFuture<'b, Result<Built, MfsError>>
where
    S: BlockSource + BlockSink + ?Sized,
    't: 'b,
{
    Box::pin(async move {
        if level >= MAX_TREE_DEPTH {
            return Err(MfsError::Invalid("file tree is too deep".into()));
        }
        let block = tx.get(&cid).await?;
        if cid.codec() == RAW {
            let n = usize::try_from(size)
                .ok()
                .filter(|&n| n <= block.len())
                .ok_or_else(out_of_range)?;
            let b = Prefix::of(&cid).raw_block(block[..n].to_vec())?;
            let size = b.len() as u64;
            return Ok(Built { block: b, size });
        }
        if cid.codec() != DAG_PB {
            return Err(not_unixfs());
        }
        let mut node = PbNode::decode(&cid, &block)?;
        let mut fs = FsData::decode(&node.data)?;
        if node.links.is_empty() {
            match fs.data.take() {
                Some(mut data) => {
                    let n = usize::try_from(size)
                        .ok()
                        .filter(|&n| n <= data.len())
                        .ok_or_else(out_of_range)?;
                    fs.add_filesize(n as i128 - data.len() as i128);
                    data.truncate(n);
                    fs.data = Some(data);
                }
                None if size > 0 => return Err(out_of_range()),
                None => {}
            }
            // boxo: `mdag.NodeWithData(data)`, i.e. the default CIDv0 prefix.
            return PbNode {
                links: Vec::new(),
                data: fs.encode()?,
            }
            .build(&Prefix::V0);
        }
        fs.blocksizes.clear();
        fs.filesize = Some(fs.data.as_ref().map_or(0, |d| d.len() as u64));
        let mut cur: u64 = 0;
        let mut modified = None;
        for (i, link) in node.links.iter().enumerate() {
            let child = tx.get(&link.cid).await?;
            let child_size = file_size(&link.cid, &child)?;
            if size < cur.saturating_add(child_size) {
                let n = dag_truncate(tx, link.cid, size - cur, level + 1).await?;
                fs.blocksizes.push(size - cur);
                fs.add_filesize(i128::from(size - cur));
                modified = Some((i, n));
                break;
            }
            cur = cur.saturating_add(child_size);
            fs.blocksizes.push(child_size);
            fs.add_filesize(i128::from(child_size));
        }
        let (end, m) = modified
            .ok_or_else(|| MfsError::Invalid("truncate size is past the file's links".into()))?;
        node.links.truncate(end);
        node.links.push(Link {
            cid: m.cid(),
            name: String::new(),
            tsize: m.size,
        });
        tx.put(m.block);
        node.data = fs.encode()?;
        node.build(&Prefix::of(&cid))
    })
}

/// What a write does to a file, as `ipfs files write` options give it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteSpec {
    /// Byte offset to write at (past the end: zero-filled).
    pub offset: u64,
    /// Truncate to 0 first.
    pub truncate: bool,
    /// `--raw-leaves` when given (else: raw leaves iff the file's CID is not v0).
    pub raw_leaves: Option<bool>,
}

/// One `ipfs files write` on the file `file`: the new file root's CID and `Size()`.
///
/// Runs Kubo's sequence (truncate, seek, writes in [`WRITE_CALL_SIZE`] pieces with a sync each
/// time the buffer passes [`WRITE_BUFFER_SIZE`], the final sync at close). The modifier's
/// prefix is the file root's; raw leaves follow `spec.raw_leaves`, else the root's CID version
/// (boxo's `File.RawLeaves`). Blocks go to `tx`; nothing is stored here.
pub(crate) async fn write_file<S>(
    tx: &mut Tx<'_, S>,
    file: Cid,
    data: &[u8],
    spec: WriteSpec,
) -> Result<(Cid, u64), MfsError>
where
    S: BlockSource + BlockSink + ?Sized,
{
    let dm = DagMod {
        prefix: Prefix::of(&file),
        raw_leaves: spec.raw_leaves.unwrap_or(file.version() != Version::V0),
    };
    let mut cur = file;
    if spec.truncate {
        cur = dm.truncate(tx, cur, 0).await?;
    }
    let size = file_size(&cur, &tx.get(&cur).await?)?;
    if spec.offset > size {
        cur = dm.expand_sparse(tx, &cur, spec.offset - size).await?;
    }
    let mut start = spec.offset;
    let mut buf_start = 0;
    let mut pos = 0;
    while pos < data.len() {
        pos += WRITE_CALL_SIZE.min(data.len() - pos);
        if pos - buf_start > WRITE_BUFFER_SIZE {
            cur = dm.sync(tx, cur, start, &data[buf_start..pos]).await?;
            start += (pos - buf_start) as u64;
            buf_start = pos;
        }
    }
    if buf_start < data.len() {
        cur = dm.sync(tx, cur, start, &data[buf_start..]).await?;
    }
    let size = node_size(&cur, &tx.get(&cur).await?)?;
    Ok((cur, size))
}
