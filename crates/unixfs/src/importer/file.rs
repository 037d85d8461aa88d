//! [`FileImporter`]: one file's bytes to UnixFS blocks, pushed in pieces, with boxo's balanced and
//! trickle layouts.
//!
//! Both layouts are written as streaming state machines equivalent to boxo's recursive builders
//! (`importer/balanced/builder.go`, `importer/trickle/trickledag.go`): boxo decides the shape from
//! "is there another chunk?", so a node is closed here when the next chunk arrives and does not
//! fit in it, or at [`FileImporter::finish`]. Blocks come out children first, parents after.
//!
//! Memory: the chunker buffers at most one maximum-size chunk; balanced keeps one list of at most
//! `max_file_links` links per tree level (`ceil(log_174(chunks))` levels: 5 for 10 GiB at 256
//! KiB chunks, ~60 bytes per link); trickle keeps one open node per depth on its current path, each
//! with at most `max_file_links` leaf links plus 4 links per depth. Nothing else grows with the
//! file: for a 10 GiB file the importer holds well under 1 MiB besides the chunk buffer.

use cid::Cid;

use crate::chunker::Splitter;
use crate::importer::options::{CidBuilder, DAG_PB, ImportOptions, Layout, RAW, ResolvedOptions};
use crate::importer::pb::{DataType, Mtime, PbLink, UnixfsData, encode_node};
use crate::{Block, UnixfsError};

/// The outcome of importing one file (or symlink): what Kubo's `add` prints for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileResult {
    /// The root CID.
    pub cid: Cid,
    /// Cumulative DAG size in bytes: every block's size in the DAG (Kubo's `Size` in `add`
    /// output, the `Tsize` a parent link records).
    pub size: u64,
    /// The file's content length in bytes (0 for a symlink).
    pub file_size: u64,
}

/// A link to a finished subtree, with what its parent records about it.
#[derive(Debug, Clone, Copy)]
struct Child {
    cid: Cid,
    /// Cumulative DAG size (the link's Tsize).
    tsize: u64,
    /// File bytes under it (the parent's `blocksizes` entry).
    filesize: u64,
}

/// Shared block-making context of a file import.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// CIDs for every block of the file.
    cids: CidBuilder,
    /// Leaves as raw blocks (else dag-pb UnixFS nodes carrying the bytes).
    raw_leaves: bool,
    /// Permission bits for the root (never stored on inner nodes, as boxo's `SetFileAttributes`
    /// only touches the root).
    mode: Option<u32>,
    /// Modification time for the root.
    mtime: Option<Mtime>,
}

impl Ctx {
    /// A leaf for `data` (boxo `NewLeafNode`): a raw block, or a dag-pb node of `kind` (`File`
    /// in balanced, `Raw` in trickle) carrying the bytes.
    fn leaf(
        &self,
        data: Vec<u8>,
        kind: DataType,
        out: &mut Vec<Block>,
    ) -> Result<Child, UnixfsError> {
        let filesize = data.len() as u64;
        let block = if self.raw_leaves {
            self.cids.block(RAW, data)?
        } else {
            let mut d = UnixfsData::new(kind);
            if !data.is_empty() {
                d.data = Some(&data);
            }
            d.filesize = Some(filesize);
            self.cids.block(DAG_PB, encode_node(&[], &d.encode()))?
        };
        let child = Child {
            cid: *block.cid(),
            tsize: block.len() as u64,
            filesize,
        };
        out.push(block);
        Ok(child)
    }

    /// A `File` node over `children`; the root also carries mode and mtime.
    fn node(
        &self,
        children: &[Child],
        root: bool,
        out: &mut Vec<Block>,
    ) -> Result<Child, UnixfsError> {
        let blocksizes: Vec<u64> = children.iter().map(|c| c.filesize).collect();
        let filesize = blocksizes.iter().sum();
        let mut d = UnixfsData::new(DataType::File);
        d.filesize = Some(filesize);
        d.blocksizes = &blocksizes;
        if root {
            self.set_metadata(&mut d);
        }
        let links: Vec<PbLink> = children
            .iter()
            .map(|c| PbLink {
                cid: c.cid,
                name: String::new(),
                tsize: c.tsize,
            })
            .collect();
        let block = self.cids.block(DAG_PB, encode_node(&links, &d.encode()))?;
        let tsize = block.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>();
        let child = Child {
            cid: *block.cid(),
            tsize,
            filesize,
        };
        out.push(block);
        Ok(child)
    }

    /// Puts the file's mode and mtime into a root node's `Data`.
    fn set_metadata(&self, d: &mut UnixfsData<'_>) {
        d.mode = self.mode;
        d.mtime = self.mtime;
    }
}

/// boxo's balanced layout as a stack of levels.
#[derive(Debug)]
struct Balanced {
    /// `levels[0]` holds leaves, `levels[i]` nodes of depth `i`; each at most `max` long.
    levels: Vec<Vec<Child>>,
    /// The first chunk, held back until a second one shows whether it is the whole file (then,
    /// with metadata, boxo re-encodes it as the root and never stores the plain leaf).
    first: Option<Vec<u8>>,
}

impl Balanced {
    /// Adds `child` to `level`; a full level is first closed into a node one level up, which is
    /// how boxo's `fillNodeRec` closes a node when the next chunk does not fit.
    fn push_at(
        &mut self,
        ctx: &Ctx,
        max: usize,
        level: usize,
        child: Child,
        out: &mut Vec<Block>,
    ) -> Result<(), UnixfsError> {
        if self.levels.len() == level {
            self.levels.push(Vec::with_capacity(max));
        }
        if self.levels[level].len() == max {
            let full = std::mem::take(&mut self.levels[level]);
            let node = ctx.node(&full, false, out)?;
            self.push_at(ctx, max, level + 1, node, out)?;
        }
        self.levels[level].push(child);
        Ok(())
    }

    fn chunk(
        &mut self,
        ctx: &Ctx,
        max: usize,
        data: Vec<u8>,
        out: &mut Vec<Block>,
    ) -> Result<(), UnixfsError> {
        if self.levels.is_empty() && self.first.is_none() {
            self.first = Some(data);
            return Ok(());
        }
        if let Some(first) = self.first.take() {
            let leaf = ctx.leaf(first, DataType::File, out)?;
            self.push_at(ctx, max, 0, leaf, out)?;
        }
        let leaf = ctx.leaf(data, DataType::File, out)?;
        self.push_at(ctx, max, 0, leaf, out)
    }

    fn finish(mut self, ctx: &Ctx, max: usize, out: &mut Vec<Block>) -> Result<Child, UnixfsError> {
        if self.levels.is_empty() {
            // Zero or one chunk: the root is a leaf (boxo `NewLeafNode`), with the metadata in
            // it when it is dag-pb (metadata forces dag-pb leaves, see `ImportOptions::resolve`).
            let data = self.first.take().unwrap_or_default();
            if ctx.raw_leaves {
                return ctx.leaf(data, DataType::File, out);
            }
            let filesize = data.len() as u64;
            let mut d = UnixfsData::new(DataType::File);
            if !data.is_empty() {
                d.data = Some(&data);
            }
            d.filesize = Some(filesize);
            ctx.set_metadata(&mut d);
            let block = ctx.cids.block(DAG_PB, encode_node(&[], &d.encode()))?;
            let child = Child {
                cid: *block.cid(),
                tsize: block.len() as u64,
                filesize,
            };
            out.push(block);
            return Ok(child);
        }
        let mut level = 0;
        while level + 1 < self.levels.len() {
            let items = std::mem::take(&mut self.levels[level]);
            let node = ctx.node(&items, false, out)?;
            self.push_at(ctx, max, level + 1, node, out)?;
            level += 1;
        }
        let top = self.levels.pop().unwrap_or_default();
        ctx.node(&top, true, out)
    }
}

/// boxo's trickle `depthRepeat`.
const DEPTH_REPEAT: usize = 4;

/// One open node of the trickle layout (a `fillTrickleRec` call in progress).
#[derive(Debug)]
struct TrickleFrame {
    children: Vec<Child>,
    /// Still in the leaf layer (`FillNodeLayer`).
    filling_leaves: bool,
    /// Subtrees may have depth `< max_depth`; `None` for the root (unbounded).
    max_depth: Option<usize>,
    /// Depth and repeat index of the next subtree child.
    next_depth: usize,
    next_repeat: usize,
}

impl TrickleFrame {
    fn new(max_depth: Option<usize>) -> Self {
        TrickleFrame {
            children: Vec::new(),
            filling_leaves: true,
            max_depth,
            next_depth: 1,
            next_repeat: 0,
        }
    }
}

/// boxo's trickle layout as a stack of open nodes, root first.
#[derive(Debug)]
struct Trickle {
    stack: Vec<TrickleFrame>,
}

impl Trickle {
    fn chunk(
        &mut self,
        ctx: &Ctx,
        max: usize,
        data: Vec<u8>,
        out: &mut Vec<Block>,
    ) -> Result<(), UnixfsError> {
        let leaf = ctx.leaf(data, DataType::Raw, out)?;
        self.add_leaf(ctx, max, leaf, out)
    }

    /// Places a finished leaf: in the open node's leaf layer, or in a new subtree.
    fn add_leaf(
        &mut self,
        ctx: &Ctx,
        max: usize,
        leaf: Child,
        out: &mut Vec<Block>,
    ) -> Result<(), UnixfsError> {
        loop {
            let depth = self.stack.len();
            let Some(top) = self.stack.last_mut() else {
                return Err(UnixfsError::InvalidArgument(
                    "trickle layout has no open node".into(),
                ));
            };
            if top.filling_leaves {
                if top.children.len() < max {
                    top.children.push(leaf);
                    return Ok(());
                }
                top.filling_leaves = false;
            }
            if top.max_depth.is_some_and(|m| top.next_depth >= m) && depth > 1 {
                // This subtree is complete: close it into its parent and look again.
                self.close_top(ctx, out)?;
                continue;
            }
            let d = top.next_depth;
            top.next_repeat += 1;
            if top.next_repeat == DEPTH_REPEAT {
                top.next_repeat = 0;
                top.next_depth += 1;
            }
            self.stack.push(TrickleFrame::new(Some(d)));
        }
    }

    /// Encodes the innermost open node and links it from its parent (never called on the root).
    fn close_top(&mut self, ctx: &Ctx, out: &mut Vec<Block>) -> Result<(), UnixfsError> {
        if let Some(frame) = self.stack.pop() {
            let node = ctx.node(&frame.children, false, out)?;
            if let Some(parent) = self.stack.last_mut() {
                parent.children.push(node);
            }
        }
        Ok(())
    }

    fn finish(mut self, ctx: &Ctx, out: &mut Vec<Block>) -> Result<Child, UnixfsError> {
        while self.stack.len() > 1 {
            self.close_top(ctx, out)?;
        }
        // The root frame is created with the layout and never popped before this point.
        let children = self
            .stack
            .pop()
            .map(|root| root.children)
            .unwrap_or_default();
        ctx.node(&children, true, out)
    }
}

#[derive(Debug)]
enum LayoutState {
    Balanced(Balanced),
    Trickle(Trickle),
}

impl LayoutState {
    fn chunk(
        &mut self,
        ctx: &Ctx,
        max: usize,
        data: Vec<u8>,
        out: &mut Vec<Block>,
    ) -> Result<(), UnixfsError> {
        match self {
            LayoutState::Balanced(b) => b.chunk(ctx, max, data, out),
            LayoutState::Trickle(t) => t.chunk(ctx, max, data, out),
        }
    }
}

/// Imports one file: push its bytes in pieces of any size, then [`FileImporter::finish`].
///
/// Synchronous and CPU-bound (chunking and hashing), so a caller can run it on a blocking thread
/// and store the returned blocks from another. The DAG and CIDs are those of Kubo's `ipfs add`
/// with the same [`ImportOptions`]; see the module docs for the memory bound.
///
/// ```
/// use cairn_unixfs::importer::{FileImporter, ImportOptions};
/// let mut f = FileImporter::new(&ImportOptions::default())?;
/// let mut blocks = f.push(b"hello world\n")?;
/// let (result, last) = f.finish()?;
/// blocks.extend(last);
/// assert_eq!(result.cid.to_string(), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
/// assert_eq!(result.size, 20);
/// # Ok::<(), cairn_unixfs::UnixfsError>(())
/// ```
#[derive(Debug)]
pub struct FileImporter {
    /// How blocks are made.
    ctx: Ctx,
    /// `max-file-links`: children per file node.
    max_links: usize,
    /// Cuts the pushed bytes into chunks.
    splitter: Splitter,
    /// The open part of the tree.
    layout: LayoutState,
    /// Bytes pushed so far, for progress.
    consumed: u64,
    /// Scratch list of chunks, reused between pushes.
    chunks: Vec<Vec<u8>>,
    /// Whether [`FileImporter::push`] was given bytes (then pre-cut leaves are refused).
    split_bytes: bool,
}

impl FileImporter {
    /// A file import with `options` (checked and resolved as [`ImportOptions::resolve`] does) and
    /// the file-level metadata `options.mode`/`options.mtime` if set.
    pub fn new(options: &ImportOptions) -> Result<Self, UnixfsError> {
        let resolved = options.resolve()?;
        Ok(Self::with_resolved(&resolved, options.mode, options.mtime))
    }

    /// A file import with already-resolved options and this file's UnixFS 1.5 metadata: `mode`
    /// (permission bits; only the low 12 bits are kept and 0 stores nothing, as boxo's
    /// `SetMode`) and `mtime`. Metadata is only written when leaves are dag-pb, which
    /// [`ImportOptions::resolve`] guarantees whenever metadata is asked for.
    pub fn with_resolved(
        options: &ResolvedOptions,
        mode: Option<u32>,
        mtime: Option<Mtime>,
    ) -> Self {
        let ctx = Ctx {
            cids: options.cids,
            raw_leaves: options.raw_leaves,
            mode: mode.map(|m| m & 0o7777).filter(|&m| m != 0),
            mtime,
        };
        let layout = match options.layout {
            Layout::Balanced => LayoutState::Balanced(Balanced {
                levels: Vec::new(),
                first: None,
            }),
            Layout::Trickle => LayoutState::Trickle(Trickle {
                stack: vec![TrickleFrame::new(None)],
            }),
        };
        FileImporter {
            ctx,
            max_links: options.max_file_links.max(2),
            splitter: Splitter::new(options.chunker),
            layout,
            consumed: 0,
            chunks: Vec::new(),
            split_bytes: false,
        }
    }

    /// Feeds the next bytes of the file and returns the blocks completed so far, children before
    /// parents (often none: a block needs a whole chunk).
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Block>, UnixfsError> {
        self.consumed += data.len() as u64;
        self.split_bytes |= !data.is_empty();
        let mut chunks = std::mem::take(&mut self.chunks);
        self.splitter.push(data, &mut chunks);
        let mut out = Vec::with_capacity(chunks.len());
        for chunk in chunks.drain(..) {
            self.chunk(chunk, &mut out)?;
        }
        self.chunks = chunks;
        Ok(out)
    }

    fn chunk(&mut self, chunk: Vec<u8>, out: &mut Vec<Block>) -> Result<(), UnixfsError> {
        self.layout.chunk(&self.ctx, self.max_links, chunk, out)
    }

    /// Adds one leaf holding exactly `data` (no chunking): for callers that know the leaf
    /// boundaries, such as a model of Kubo's MFS, whose files' leaves follow their write
    /// history. The leaf is made as [`FileImporter::push`] would make it (raw or dag-pb per the
    /// options). Must not be mixed with [`FileImporter::push`].
    ///
    /// # Errors
    /// [`UnixfsError::InvalidArgument`] after bytes were given to [`FileImporter::push`].
    pub fn push_leaf(&mut self, data: Vec<u8>) -> Result<Vec<Block>, UnixfsError> {
        self.check_no_split()?;
        self.consumed += data.len() as u64;
        let mut out = Vec::with_capacity(2);
        self.chunk(data, &mut out)?;
        Ok(out)
    }

    /// Adds a leaf block the caller made, covering `file_size` bytes of the file (trickle layout
    /// only). The block is not returned: the caller has it.
    ///
    /// # Errors
    /// [`UnixfsError::InvalidArgument`] in the balanced layout or after bytes were given to
    /// [`FileImporter::push`].
    pub fn push_leaf_block(
        &mut self,
        block: &Block,
        file_size: u64,
    ) -> Result<Vec<Block>, UnixfsError> {
        self.check_no_split()?;
        let LayoutState::Trickle(t) = &mut self.layout else {
            return Err(UnixfsError::InvalidArgument(
                "pre-built leaves need the trickle layout".into(),
            ));
        };
        self.consumed += file_size;
        let leaf = Child {
            cid: *block.cid(),
            tsize: block.len() as u64,
            filesize: file_size,
        };
        let mut out = Vec::new();
        t.add_leaf(&self.ctx, self.max_links, leaf, &mut out)?;
        Ok(out)
    }

    /// Refuses pre-cut leaves once bytes went through the splitter.
    fn check_no_split(&self) -> Result<(), UnixfsError> {
        if self.split_bytes {
            return Err(UnixfsError::InvalidArgument(
                "leaves cannot be added after bytes were pushed".into(),
            ));
        }
        Ok(())
    }

    /// Bytes pushed so far (what Kubo's `add --progress` reports as `Bytes`).
    pub fn bytes_consumed(&self) -> u64 {
        self.consumed
    }

    /// Ends the file: the remaining blocks (the root last) and the file's result.
    pub fn finish(self) -> Result<(FileResult, Vec<Block>), UnixfsError> {
        let FileImporter {
            ctx,
            max_links,
            splitter,
            mut layout,
            ..
        } = self;
        let mut chunks = Vec::new();
        splitter.finish(&mut chunks);
        let mut out = Vec::new();
        for chunk in chunks {
            layout.chunk(&ctx, max_links, chunk, &mut out)?;
        }
        let root = match layout {
            LayoutState::Balanced(b) => b.finish(&ctx, max_links, &mut out)?,
            LayoutState::Trickle(t) => t.finish(&ctx, &mut out)?,
        };
        Ok((
            FileResult {
                cid: root.cid,
                size: root.tsize,
                file_size: root.filesize,
            },
            out,
        ))
    }
}
