//! Files and DAGs through the node: the [`Node`] methods behind Kubo's `cat`, `get`, `ls`,
//! `resolve`, `refs`, `dag export` and `dag import`, on `cairn-unixfs`.
//!
//! `cairn-unixfs` reads blocks through its [`BlockSource`] trait; [`NodeBlocks`] implements it
//! over the node's store and, unless the read is offline, Bitswap. A walk asks for one block at a
//! time; over the network that would cost a round trip per block, so the first block missing from
//! the store starts [`Node::fetch_dag`] of the walk's root in the background: its Bitswap session
//! keeps a window of wants outstanding and stores what arrives, and the walk finds the blocks there
//! (or waits for them). Memory stays bounded: fetched blocks go to the store, not to the reader.
//!
//! The streams these methods return are fed by a task that owns the reader, through a channel of
//! [`STREAM_BUFFER`] items; dropping the stream ends the task and any prefetch it started.

use bytes::Bytes;
use cairn_blockstore::{Block, Cid};
use cairn_unixfs::exporter::{DirEntry, Resolved};
use cairn_unixfs::refs::RefsOptions;
use cairn_unixfs::tar::GetOptions;
use cairn_unixfs::{BlockSource, BoxError, BoxFuture, UnixfsError, car, exporter};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use tokio::io::AsyncRead;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::{FetchOptions, Node, NodeError};

/// Items buffered between a walk's task and its consumer: a few chunks (each at most one block,
/// ≤ 2 MiB) keep the walk busy while the consumer writes, without holding a file in memory.
pub const STREAM_BUFFER: usize = 8;

/// A stream of bytes from the node (file contents, a tar archive, a CAR), ending at the first
/// error.
pub type ByteStream = ResultStream<Bytes>;

/// Aborts a background task when dropped, so a prefetch ends with the walk that started it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads blocks for one operation: from the store, else (unless offline) over Bitswap, within the
/// operation's deadline. See the module documentation for the prefetch.
pub struct NodeBlocks {
    node: Node,
    offline: bool,
    /// Kubo's `timeout` bounds the whole command, not each block.
    deadline: Option<Instant>,
    /// The root a prefetch fetches, and whether misses start one (not for ranged reads, which
    /// would fetch blocks the range skips).
    root: Mutex<Option<Cid>>,
    whole: bool,
    prefetch: Mutex<Option<AbortOnDrop>>,
}

impl std::fmt::Debug for NodeBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBlocks")
            .field("offline", &self.offline)
            .field("deadline", &self.deadline)
            .field("whole", &self.whole)
            .finish_non_exhaustive()
    }
}

impl NodeBlocks {
    /// A reader with `opts`; its timeout starts now.
    pub fn new(node: &Node, opts: FetchOptions) -> Self {
        NodeBlocks {
            node: node.clone(),
            offline: opts.offline,
            deadline: opts.timeout.map(|t| Instant::now() + t),
            root: Mutex::new(None),
            whole: true,
            prefetch: Mutex::new(None),
        }
    }

    /// Whether a miss prefetches the whole DAG under the root (default true). A read of part of
    /// a DAG (a byte range) fetches only the blocks it reaches.
    pub fn whole_dags(mut self, whole: bool) -> Self {
        self.whole = whole;
        self
    }

    /// Names the root of the DAG being walked, which a prefetch fetches.
    pub fn walking(&self, root: Cid) {
        let mut current = self.root.lock();
        if *current != Some(root) {
            *current = Some(root);
            *self.prefetch.lock() = None;
        }
    }

    /// The options for one fetch: the time left of the deadline.
    fn options(&self) -> FetchOptions {
        if self.offline {
            return FetchOptions::offline();
        }
        FetchOptions::with_timeout(
            self.deadline
                .map(|d| d.saturating_duration_since(Instant::now())),
        )
    }

    fn start_prefetch(&self) {
        if !self.whole {
            return;
        }
        let Some(root) = *self.root.lock() else {
            return;
        };
        let mut prefetch = self.prefetch.lock();
        if prefetch.is_none() {
            let mut fetch = self.node.fetch_dag(root, self.options());
            // The prefetch's own errors do not matter: the walk's fetch reports what it meets.
            *prefetch = Some(AbortOnDrop(tokio::spawn(async move {
                while let Some(Ok(_)) = fetch.next().await {}
            })));
        }
    }

    /// One block, as [`BlockSource::get`] but with the node's error.
    pub async fn block(&self, cid: &Cid) -> Result<Block, NodeError> {
        if let Some(block) = self.node.local_block(cid).await? {
            return Ok(block);
        }
        if !self.offline {
            self.start_prefetch();
        }
        self.node.get_block_with(cid, self.options()).await
    }
}

impl BlockSource for NodeBlocks {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Option<Bytes>, BoxError>> {
        Box::pin(async move {
            match self.block(cid).await {
                Ok(block) => Ok(Some(block.into_parts().1)),
                // The exporter reports the miss with the CID, in Kubo's words.
                Err(NodeError::BlockNotFound(_)) => Ok(None),
                Err(e) => Err(Box::new(e) as BoxError),
            }
        })
    }
}

/// A `cairn-unixfs` error as the node's: a block source's own error (a timeout, a stopped node)
/// comes back as it was; a missing block is [`NodeError::BlockNotFound`].
impl From<UnixfsError> for NodeError {
    fn from(e: UnixfsError) -> Self {
        match e {
            UnixfsError::BlockNotFound(cid) => NodeError::BlockNotFound(cid),
            UnixfsError::Store(inner) => match inner.downcast::<NodeError>() {
                Ok(node) => *node,
                Err(other) => NodeError::Unixfs(UnixfsError::Store(other)),
            },
            other => NodeError::Unixfs(other),
        }
    }
}

/// Sends a walk's items to its consumer until the first error, or until the consumer is gone.
async fn pump<T>(
    walk: impl Stream<Item = Result<T, UnixfsError>>,
    tx: &mpsc::Sender<Result<T, NodeError>>,
) {
    let mut walk = std::pin::pin!(walk);
    while let Some(item) = walk.next().await {
        let failed = item.is_err();
        if tx.send(item.map_err(NodeError::from)).await.is_err() || failed {
            break;
        }
    }
}

/// Runs a walk's task until it ends or its consumer is gone: once the stream fed by `tx` is
/// dropped (before its first item too, as when a command's client goes away while the root is
/// still being fetched), the walk is dropped and its wants withdrawn, whether or not it was
/// about to send.
fn spawn_walk<T: Send + 'static>(
    tx: &mpsc::Sender<Result<T, NodeError>>,
    walk: impl Future<Output = ()> + Send + 'static,
) {
    let watch = tx.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = walk => {}
            () = watch.closed() => {}
        }
    });
}

/// A stream of a walk's items, ending at the first error.
pub type ResultStream<T> = BoxStream<'static, Result<T, NodeError>>;

/// The channel between a walk's task and the stream handed to the caller.
fn channel<T: Send + 'static>() -> (mpsc::Sender<Result<T, NodeError>>, ResultStream<T>) {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
            .boxed();
    (tx, stream)
}

/// What [`Node::import_car`] stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CarImport {
    /// The roots named in the CAR header(s), in order, each once.
    pub roots: Vec<Cid>,
    /// Blocks read (each verified against its CID).
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Node {
    /// A block reader for one operation with `opts` (see [`NodeBlocks`]).
    pub fn block_source(&self, opts: FetchOptions) -> NodeBlocks {
        NodeBlocks::new(self, opts)
    }

    /// Resolves an IPFS path (`/ipfs/CID/a/b`, `/ipld/CID/a`, `CID/a`) through dag-pb links
    /// (plain and HAMT directories) and dag-cbor links, as Kubo's `resolve` and `dag resolve`.
    /// An `/ipns/<name>/...` path is first resolved through IPNS ([`Node::name_resolve`]).
    ///
    /// # Errors
    /// [`NodeError::Unixfs`] for a bad path or a missing link (Kubo's `no link named ...`),
    /// [`NodeError::BlockNotFound`] / [`NodeError::Timeout`] for blocks that cannot be read.
    pub async fn resolve(&self, path: &str, opts: FetchOptions) -> Result<Resolved, NodeError> {
        let src = self.block_source(opts).whole_dags(false);
        if path.starts_with("/ipns/") {
            // Kubo's ResolvePath: the name first (recursively), then the content path.
            let target = self.name_resolve(path, true).await?;
            return resolve_with(&src, &target).await;
        }
        resolve_with(&src, path).await
    }

    /// A UnixFS file's bytes `[offset, offset + length)` (Kubo's `cat`), with the file's size.
    /// Blocks outside the range are not fetched; a whole-file read prefetches the DAG.
    ///
    /// # Errors
    /// Before the stream: a path that does not resolve, a directory (`this dag node is a
    /// directory`). In the stream: a block that cannot be read. An `offset` past the end
    /// yields nothing (Kubo's `cat` carries such an offset on to the next file).
    pub async fn cat(
        &self,
        path: &str,
        offset: u64,
        length: Option<u64>,
        opts: FetchOptions,
    ) -> Result<(u64, ByteStream), NodeError> {
        let src = self
            .block_source(opts)
            .whole_dags(offset == 0 && length.is_none());
        let root = resolve_with(&src, path).await?.cid;
        src.walking(root);
        let (head_tx, head_rx) = oneshot::channel();
        let (tx, stream) = channel();
        spawn_walk(&tx.clone(), async move {
            match exporter::cat(&src, &root, offset, length).await {
                Err(e) => {
                    let _ = head_tx.send(Err(e));
                }
                Ok((size, walk)) => {
                    let _ = head_tx.send(Ok(size));
                    pump(walk, &tx).await;
                }
            }
        });
        let size = head_rx.await.map_err(|_| NodeError::NodeStopped)??;
        Ok((size, stream))
    }

    /// A tar archive (gzip-compressed with `get.compression`) of the file or directory at `path`,
    /// as Kubo's `get` sends it; entries are named under the path's last segment.
    ///
    /// # Errors
    /// As [`Node::cat`]; names in the DAG that would escape the output directory fail the stream.
    pub async fn get(
        &self,
        path: &str,
        get: GetOptions,
        opts: FetchOptions,
    ) -> Result<ByteStream, NodeError> {
        let src = self.block_source(opts);
        let root = resolve_with(&src, path).await?.cid;
        src.walking(root);
        let path = path.to_string();
        let (head_tx, head_rx) = oneshot::channel();
        let (tx, stream) = channel();
        spawn_walk(&tx.clone(), async move {
            match cairn_unixfs::tar::get(&src, root, &path, get).await {
                Err(e) => {
                    let _ = head_tx.send(Err(e));
                }
                Ok(walk) => {
                    let _ = head_tx.send(Ok(()));
                    pump(walk, &tx).await;
                }
            }
        });
        head_rx.await.map_err(|_| NodeError::NodeStopped)??;
        Ok(stream)
    }

    /// The entries of the directory at `path` (plain or HAMT) in Kubo's `ls` order, with the
    /// resolved CID. With `resolve_kind`, each entry's block is read for its type and size
    /// (Kubo's default); a file lists nothing.
    ///
    /// # Errors
    /// As [`Node::resolve`]; in the stream, blocks that cannot be read.
    pub async fn ls(
        &self,
        path: &str,
        resolve_kind: bool,
        opts: FetchOptions,
    ) -> Result<(Cid, BoxStream<'static, Result<DirEntry, NodeError>>), NodeError> {
        let src = self.block_source(opts).whole_dags(false);
        let root = resolve_with(&src, path).await?.cid;
        // The listing reads the root before its stream starts: an error here is the command's.
        exporter::load(&src, &root).await?;
        let (head_tx, head_rx) = oneshot::channel();
        let (tx, stream) = channel();
        spawn_walk(&tx.clone(), async move {
            match exporter::ls(&src, &root, resolve_kind).await {
                Err(e) => {
                    let _ = head_tx.send(Err(e));
                }
                Ok(walk) => {
                    let _ = head_tx.send(Ok(()));
                    pump(walk, &tx).await;
                }
            }
        });
        head_rx.await.map_err(|_| NodeError::NodeStopped)??;
        Ok((root, stream))
    }

    /// The links under `roots`, one formatted line each, as Kubo's `refs` prints them.
    pub fn refs(
        &self,
        roots: Vec<Cid>,
        refs: RefsOptions,
        opts: FetchOptions,
    ) -> BoxStream<'static, Result<String, NodeError>> {
        // Only an unbounded walk reads the whole DAG; a depth-limited one (plain `refs`) would
        // fetch far more than it prints if it prefetched.
        let src = self.block_source(opts).whole_dags(refs.max_depth < 0);
        if let [root] = roots[..] {
            src.walking(root);
        }
        let (tx, stream) = channel();
        spawn_walk(&tx.clone(), async move {
            pump(cairn_unixfs::refs::refs(&src, roots, refs), &tx).await
        });
        stream
    }

    /// A CARv1 of the DAGs under `roots` (Kubo's `dag export`): the header, then each block once,
    /// depth first in first-seen order.
    pub fn export_car(&self, roots: Vec<Cid>, opts: FetchOptions) -> ByteStream {
        let src = self.block_source(opts);
        if let [root] = roots[..] {
            src.walking(root);
        }
        let (tx, stream) = channel();
        spawn_walk(&tx.clone(), async move {
            pump(car::export(&src, roots), &tx).await
        });
        stream
    }

    /// A CARv1 of an IPFS path as the trustless gateway serves it: the blocks that resolve
    /// `path`, then those of its terminal element chosen by `scope` and (for a file) `bytes`
    /// (see [`cairn_unixfs::scope::write_car`]). The stream's first item comes only once the
    /// path's root block was read, so a missing root or a bad path is its first item (an
    /// error), before any byte.
    ///
    /// # Errors
    /// A path that does not parse is an error here; everything else is in the stream.
    pub fn export_car_path(
        &self,
        path: &str,
        scope: cairn_unixfs::scope::DagScope,
        bytes: Option<cairn_unixfs::scope::EntityBytes>,
        opts: FetchOptions,
    ) -> Result<ByteStream, NodeError> {
        let (root, segments) = exporter::parse_path(path)?;
        // Only a whole DAG under the root is worth prefetching; a path or a range reads a few
        // blocks of it.
        let whole =
            scope == cairn_unixfs::scope::DagScope::All && segments.is_empty() && bytes.is_none();
        let src = self.block_source(opts).whole_dags(whole);
        src.walking(root);
        let (tx, stream) = channel();
        spawn_walk(&tx.clone(), async move {
            let result =
                cairn_unixfs::scope::write_car(&src, root, &segments, scope, bytes, &tx).await;
            if let Err(e) = result {
                let _ = tx.send(Err(e.into())).await;
            }
        });
        Ok(stream)
    }

    /// Reads a CARv1 or CARv2 and stores its blocks (each verified against its CID), in batches,
    /// telling Bitswap and the provider about them (Kubo's `dag import`, without pinning: the
    /// caller pins the roots it wants).
    ///
    /// # Errors
    /// A malformed CAR or block ([`NodeError::Unixfs`]); storage errors. Blocks stored before
    /// the error stay stored.
    pub async fn import_car<R: AsyncRead + Unpin + Send>(
        &self,
        input: R,
    ) -> Result<CarImport, NodeError> {
        /// Blocks per store batch: one durable flush per batch.
        const BATCH: usize = 64;
        let mut reader = car::CarReader::new(input).await?;
        let mut out = CarImport {
            roots: reader.roots().to_vec(),
            ..CarImport::default()
        };
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let next = reader.next_block().await?;
            let done = next.is_none();
            if let Some(block) = next {
                out.blocks += 1;
                out.bytes += block.len() as u64;
                batch.push(block);
            }
            if batch.len() >= BATCH || (done && !batch.is_empty()) {
                let blocks = std::mem::take(&mut batch);
                let store = self.blockstore()?;
                let stored = tokio::task::spawn_blocking(move || {
                    store.put_many(blocks.iter().cloned()).map(|_| blocks)
                })
                .await
                .map_err(|_| NodeError::NodeStopped)??;
                self.added(&stored.iter().collect::<Vec<_>>(), false);
            }
            if done {
                break;
            }
        }
        Ok(out)
    }
}

/// What [`Node::dag_stat`] counted for one DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DagStat {
    /// The DAG's root.
    pub cid: Cid,
    /// Bytes of its distinct blocks.
    pub size: u64,
    /// Its distinct blocks.
    pub blocks: u64,
}

impl Node {
    /// The value at an IPLD path (`/ipfs/CID/a/0/b`), encoded in `output_codec` (Kubo's
    /// `dag get`, default dag-json).
    ///
    /// # Errors
    /// As [`Node::resolve`], or a value the codec cannot hold.
    pub async fn dag_get(
        &self,
        path: &str,
        output_codec: u64,
        opts: FetchOptions,
    ) -> Result<Vec<u8>, NodeError> {
        let src = self.block_source(opts).whole_dags(false);
        Ok(cairn_unixfs::codec::dag_get(&src, path, output_codec).await?)
    }

    /// Encodes `data` (in `input_codec`) as `store_codec` with a sha2-256 CIDv1 and stores it
    /// (Kubo's `dag put`); returns the block's CID.
    ///
    /// # Errors
    /// [`NodeError::Unixfs`] when `data` does not decode or encode; storage errors.
    pub async fn dag_put(
        &self,
        data: &[u8],
        input_codec: u64,
        store_codec: u64,
    ) -> Result<Cid, NodeError> {
        let block = cairn_unixfs::codec::dag_put(data, input_codec, store_codec)?;
        self.put_block(&block).await?;
        Ok(*block.cid())
    }

    /// Every CID in the local store, streamed from a blocking thread (Kubo's `refs local`);
    /// memory is the channel's few items, not the store's size.
    pub fn local_cids(&self) -> ResultStream<Cid> {
        let (tx, stream) = channel();
        match self.blockstore() {
            Err(e) => {
                let _ = tx.try_send(Err(e));
            }
            Ok(store) => {
                tokio::task::spawn_blocking(move || {
                    for cid in store.list() {
                        if tx.blocking_send(cid.map_err(NodeError::from)).is_err() {
                            break;
                        }
                    }
                });
            }
        }
        stream
    }

    /// Counts the distinct blocks of the DAG under `root` and their bytes (Kubo's `dag stat`).
    /// Memory: the set of CIDs seen and the pending links of the current path.
    ///
    /// # Errors
    /// A block that cannot be read or decoded.
    pub async fn dag_stat(&self, root: Cid, opts: FetchOptions) -> Result<DagStat, NodeError> {
        let src = self.block_source(opts);
        src.walking(root);
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![root];
        let mut stat = DagStat {
            cid: root,
            size: 0,
            blocks: 0,
        };
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            let data = exporter::load(&src, &cid).await?;
            stat.size += data.len() as u64;
            stat.blocks += 1;
            let links = cairn_unixfs::refs::named_links(&cid, &data)?;
            stack.extend(links.into_iter().rev().map(|(c, _)| c));
        }
        Ok(stat)
    }
}

/// Resolves `path` with `src`, naming the root for a prefetch.
async fn resolve_with(src: &NodeBlocks, path: &str) -> Result<Resolved, NodeError> {
    let (root, segments) = exporter::parse_path(path)?;
    src.walking(root);
    Ok(exporter::resolve(src, &root, &segments).await?)
}
