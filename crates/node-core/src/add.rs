//! Adding files and directories through the node (Kubo's `add`): [`Node::adder`] opens an
//! [`Adder`] that takes files (as byte streams), directories and symlinks by relative path, and
//! [`Adder::finish`] builds the directories, pins the roots and announces them.
//!
//! ## Pipeline and memory
//!
//! A file is imported by three stages that overlap on separate cores: the caller's task reads the
//! input and hands chunks over a channel of [`INPUT_CHUNKS`] items; a blocking thread chunks and
//! hashes them with `cairn-unixfs`'s [`FileImporter`]; a storing task writes the blocks in batches
//! of about [`BATCH_BYTES`] (one durable flush per batch) and tells Bitswap and the provider about
//! them. At most [`BATCHES_IN_FLIGHT`] batches wait between the last two stages, so an add holds
//! roughly `(BATCHES_IN_FLIGHT + 2) × BATCH_BYTES` of blocks (about 32 MiB) plus the importer's
//! open tree levels (one pending link per level: kilobytes), whatever the file's size.

use bytes::Bytes;
use cairn_blockstore::{Block, Cid, GcGuard, PinMode};
use cairn_unixfs::UnixfsError;
use cairn_unixfs::importer::{
    DirectoryBuilder, FileImporter, ImportOptions, Mtime, ResolvedOptions,
};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::{Node, NodeError};

/// Input chunks queued between the reader and the hashing thread.
pub const INPUT_CHUNKS: usize = 16;
/// Bytes of blocks per store batch (a durable `put_many`: one flush).
pub const BATCH_BYTES: usize = 8 << 20;
/// Batches queued between the hashing thread and the store.
pub const BATCHES_IN_FLIGHT: usize = 2;

/// One line of `add`'s output: an added file, symlink or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddEvent {
    /// The path as added (`dir/a.txt`); `""` for the wrapping directory of
    /// `wrap_with_directory`; the CID itself for a file added without a name.
    pub name: String,
    /// The entry's root CID.
    pub cid: Cid,
    /// Cumulative DAG size in bytes (Kubo prints it as the string `Size`).
    pub size: u64,
    /// The file's length in bytes (what `add --progress` reports at its end); 0 for
    /// directories and symlinks.
    pub file_size: u64,
}

/// What an add stores and pins, beside the DAG shape in [`ImportOptions`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AddOptions {
    /// How the DAG is built (chunker, layout, CID version, ...), with Kubo's option names.
    pub import: ImportOptions,
    /// Pin the added roots recursively (Kubo's default: true).
    pub pin: bool,
    /// The pin's name (`pin-name`).
    pub pin_name: Option<String>,
    /// Compute the CIDs without storing anything (`only-hash`).
    pub only_hash: bool,
}

impl AddOptions {
    /// Kubo's defaults: its default import options, pinned.
    pub fn new() -> Self {
        AddOptions {
            pin: true,
            ..AddOptions::default()
        }
    }
}

/// An add in progress; see the module documentation.
#[derive(Debug)]
pub struct Adder {
    node: Node,
    opts: ResolvedOptions,
    pin: bool,
    pin_name: Option<String>,
    only_hash: bool,
    wrap: bool,
    dir: DirectoryBuilder,
    /// Top-level entries that are not directories (pinned when not wrapped).
    top_files: Vec<Cid>,
    /// Whether anything was added under a directory (then directory results are reported).
    has_dirs: bool,
    /// The `mode`/`mtime` options: UnixFS 1.5 metadata for every entry.
    file_meta: (Option<u32>, Option<Mtime>),
    /// Held for the whole add: GC cannot sweep blocks written before their root is pinned.
    _gc: Option<GcGuard>,
}

fn cancelled() -> NodeError {
    NodeError::Unixfs(UnixfsError::InvalidArgument(
        "the add was cancelled".to_string(),
    ))
}

impl Node {
    /// Starts an add with `opts`.
    ///
    /// # Errors
    /// [`NodeError::Unixfs`] when the options contradict each other or are out of range, with
    /// Kubo's messages (see [`ImportOptions::resolve`]).
    pub fn adder(&self, opts: AddOptions) -> Result<Adder, NodeError> {
        let resolved = opts.import.resolve()?;
        Ok(Adder {
            node: self.clone(),
            dir: DirectoryBuilder::with_resolved(&resolved),
            opts: resolved,
            pin: opts.pin && !opts.only_hash,
            pin_name: opts.pin_name,
            only_hash: opts.only_hash,
            wrap: opts.import.wrap_with_directory,
            top_files: Vec::new(),
            has_dirs: false,
            file_meta: (opts.import.mode, opts.import.mtime),
            _gc: if opts.only_hash {
                None
            } else {
                Some(gc_guard_off_runtime(&self.blockstore()?))
            },
        })
    }

    /// Adds one file's bytes with `opts` and returns its event (a convenience over
    /// [`Node::adder`] for embedders).
    ///
    /// # Errors
    /// As [`Adder::add_file`] and [`Adder::finish`].
    pub async fn add_bytes(&self, data: Bytes, opts: AddOptions) -> Result<AddEvent, NodeError> {
        let mut adder = self.adder(opts)?;
        let event = adder
            .add_file("", futures::stream::iter([Ok(data)]), &mut |_| {})
            .await?;
        let mut events = adder.finish().await?;
        Ok(events.pop().unwrap_or(event))
    }
}

impl Adder {
    /// Stores blocks (unless only hashing) and tells the node about them.
    async fn store(&self, blocks: Vec<Block>) -> Result<(), NodeError> {
        store_batch(&self.node, self.only_hash, blocks).await
    }

    /// Imports one file from a stream of its bytes, at `path` (`""` for a nameless top-level
    /// file, which is then named by its CID). `progress` is called with the bytes read so far
    /// after each chunk.
    ///
    /// # Errors
    /// The input stream's error, a storage error (disk full...), or an invalid path (an entry
    /// given twice, a file under a file).
    pub async fn add_file<S>(
        &mut self,
        path: &str,
        data: S,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<AddEvent, NodeError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send,
    {
        let (data_tx, mut data_rx) = mpsc::channel::<Bytes>(INPUT_CHUNKS);
        let (block_tx, mut block_rx) = mpsc::channel::<Vec<Block>>(BATCHES_IN_FLIGHT);
        let opts = self.opts;
        let (mode, mtime) = self.file_meta;
        let hasher = tokio::task::spawn_blocking(move || {
            let mut importer = FileImporter::with_resolved(&opts, mode, mtime);
            let (mut batch, mut bytes) = (Vec::new(), 0usize);
            while let Some(chunk) = data_rx.blocking_recv() {
                for block in importer.push(&chunk)? {
                    bytes += block.len();
                    batch.push(block);
                }
                if bytes >= BATCH_BYTES {
                    bytes = 0;
                    if block_tx.blocking_send(std::mem::take(&mut batch)).is_err() {
                        return Ok(None);
                    }
                }
            }
            let (result, rest) = importer.finish()?;
            batch.extend(rest);
            if block_tx.blocking_send(batch).is_err() {
                return Ok(None);
            }
            Ok::<_, UnixfsError>(Some(result))
        });
        let node = self.node.clone();
        let only_hash = self.only_hash;
        let storer = tokio::spawn(async move {
            while let Some(batch) = block_rx.recv().await {
                store_batch(&node, only_hash, batch).await?;
            }
            Ok::<_, NodeError>(())
        });
        let mut data = std::pin::pin!(data);
        let mut read = 0u64;
        let mut input_error = None;
        while let Some(chunk) = data.next().await {
            match chunk {
                Ok(chunk) => {
                    read += chunk.len() as u64;
                    if data_tx.send(chunk).await.is_err() {
                        break; // a later stage failed: its error is reported below
                    }
                    progress(read);
                }
                Err(e) => {
                    input_error = Some(e);
                    break;
                }
            }
        }
        drop(data_tx);
        if let Some(e) = input_error {
            hasher.abort();
            storer.abort();
            return Err(NodeError::Unixfs(UnixfsError::Io(e)));
        }
        let hashed = hasher.await.map_err(|_| cancelled());
        let stored = storer.await.map_err(|_| cancelled());
        // A storage failure closes the block channel, which stops the hasher: report the cause.
        stored??;
        let result = hashed??.ok_or_else(cancelled)?;
        let name = if path.is_empty() {
            result.cid.to_string()
        } else {
            self.dir.add_file(path, &result)?;
            path.to_string()
        };
        if !path.contains('/') {
            self.top_files.push(result.cid);
        } else {
            self.has_dirs = true;
        }
        if path.is_empty() && self.wrap {
            self.dir.add_file(&name, &result)?;
        }
        Ok(AddEvent {
            name,
            cid: result.cid,
            size: result.size,
            file_size: result.file_size,
        })
    }

    /// Adds a directory at `path` (created empty unless entries are added under it), with
    /// UnixFS 1.5 metadata if given (or the add's own `mode`/`mtime`).
    ///
    /// # Errors
    /// An invalid path (`..`, a directory under a file).
    pub fn add_directory(
        &mut self,
        path: &str,
        mode: Option<u32>,
        mtime: Option<Mtime>,
    ) -> Result<(), NodeError> {
        let (m, t) = self.file_meta;
        self.dir.add_directory(path, mode.or(m), mtime.or(t))?;
        self.has_dirs = true;
        Ok(())
    }

    /// Adds a symlink at `path` pointing to `target` (stored as UnixFS, never followed).
    ///
    /// # Errors
    /// An invalid path; a storage error.
    pub async fn add_symlink(&mut self, path: &str, target: &str) -> Result<AddEvent, NodeError> {
        let (result, block) = self.dir.add_symlink(path, target, self.file_meta.1)?;
        self.store(vec![block]).await?;
        if !path.contains('/') {
            self.top_files.push(result.cid);
        }
        Ok(AddEvent {
            name: path.to_string(),
            cid: result.cid,
            size: result.size,
            file_size: 0,
        })
    }

    /// Builds and stores the directories, pins the roots (the wrapping directory, else every
    /// top-level entry) and announces them first. Returns the directories' events in Kubo's order
    /// (children before parents, the root last; the wrapper named `""`).
    ///
    /// # Errors
    /// A storage or pinning error.
    pub async fn finish(self) -> Result<Vec<AddEvent>, NodeError> {
        let Adder {
            node,
            dir,
            wrap,
            has_dirs,
            top_files,
            pin,
            pin_name,
            only_hash,
            _gc,
            ..
        } = self;
        let (dirs, blocks) = tokio::task::spawn_blocking(move || dir.finish())
            .await
            .map_err(|_| cancelled())??;
        let mut events = Vec::new();
        let mut roots = Vec::new();
        if wrap || has_dirs {
            store_batch(&node, only_hash, blocks).await?;
        }
        for d in dirs {
            if d.path.is_empty() {
                if wrap {
                    roots.push(d.cid);
                    events.push(AddEvent {
                        name: String::new(),
                        cid: d.cid,
                        size: d.size,
                        file_size: 0,
                    });
                }
                continue;
            }
            if !wrap && !d.path.contains('/') {
                roots.push(d.cid);
            }
            events.push(AddEvent {
                name: d.path,
                cid: d.cid,
                size: d.size,
                file_size: 0,
            });
        }
        if !wrap {
            roots.extend(top_files);
        }
        if only_hash {
            return Ok(events);
        }
        for root in &roots {
            if pin {
                match &pin_name {
                    Some(name) => node.pin_named(root, PinMode::Recursive, name).await?,
                    None => node.pin(root, PinMode::Recursive).await?,
                }
            }
        }
        node.announce(roots, true);
        Ok(events)
    }
}

/// Stores one batch (unless only hashing) and tells Bitswap and the provider about it.
async fn store_batch(node: &Node, only_hash: bool, blocks: Vec<Block>) -> Result<(), NodeError> {
    if only_hash || blocks.is_empty() {
        return Ok(());
    }
    let store = node.blockstore()?;
    let blocks = tokio::task::spawn_blocking(move || {
        // put_many takes the blocks; clones share their bytes.
        store.put_many(blocks.iter().cloned()).map(|_| blocks)
    })
    .await
    .map_err(|_| cancelled())??;
    node.added(&blocks.iter().collect::<Vec<_>>(), false);
    Ok(())
}

/// Takes the GC gate for an import started from async code (`adder` is called on a runtime
/// worker). While a GC runs, waiting for it in place would stall every task queued on that
/// worker, the GC's own output among them: `repo/gc` streams its lines through a 64-line channel
/// that a runtime task drains, so with as many imports waiting as there are workers the GC could
/// never finish and the daemon hung (found by `benches/soak.rs`; `tests/gc_during_imports.rs`
/// catches it). So the wait happens in `block_in_place`, which first hands the worker's other
/// tasks to another thread. A current-thread runtime has no other thread to hand them to; there
/// the wait stays in place, as before.
pub(crate) fn gc_guard_off_runtime(store: &cairn_blockstore::Blockstore) -> GcGuard {
    if let Some(guard) = store.try_gc_guard() {
        return guard;
    }
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
            tokio::task::block_in_place(|| store.gc_guard())
        }
        _ => store.gc_guard(),
    }
}
