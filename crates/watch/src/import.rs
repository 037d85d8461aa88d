//! What the watcher asks of a node: import an entry (add and pin it), unpin an old CID, and
//! hear about state changes. [`Importer`] is that small trait, so the watcher can be tested
//! alone; [`NodeImporter`] implements it over a [`cairn_node_core::Node`] with
//! [`Node::adder`](cairn_node_core::Node::adder), [`Node::unpin`](cairn_node_core::Node::unpin)
//! and the node's event bus.
//!
//! Files are streamed from disk in [`READ_CHUNK`] pieces through the node's add pipeline, which
//! holds about 32 MiB of blocks in flight whatever the file's size; nothing reads a file whole.

use std::path::{Path, PathBuf};

use cairn_blockstore::Cid;
use cairn_node_core::{AddOptions, Node, NodeEvent};
use futures::future::BoxFuture;
use tokio_util::io::ReaderStream;

use crate::config::{IgnoreList, WatchConfig};
use crate::error::WatchError;
use crate::state::{Entry, EntryKind};

/// Bytes read from a file at a time: 256 KiB.
pub const READ_CHUNK: usize = 256 << 10;

/// How deep a followed symlink may lead before the walk gives up (a loop).
pub const MAX_DEPTH: usize = 64;

/// One entry to import.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Source {
    /// Its top-level name in the watched folder.
    pub name: String,
    /// Its path on disk.
    pub path: PathBuf,
    /// What it is.
    pub kind: EntryKind,
}

/// An import's result.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Imported {
    /// The root CID, pinned recursively.
    pub cid: Cid,
    /// The bytes of file data read.
    pub bytes: u64,
}

impl Imported {
    /// A result.
    pub fn new(cid: Cid, bytes: u64) -> Self {
        Imported { cid, bytes }
    }
}

/// Adding, pinning and unpinning, as the watcher needs them.
pub trait Importer: Send + Sync + 'static {
    /// Adds `source` (a file, a folder with everything under it, or a symlink) and pins its
    /// root recursively.
    fn import(&self, source: Source) -> BoxFuture<'static, Result<Imported, WatchError>>;
    /// Removes the recursive pin of `cid` (an entry deleted or replaced). A CID that is not
    /// pinned is not an error.
    fn unpin(&self, cid: Cid) -> BoxFuture<'static, Result<(), WatchError>>;
    /// Hears every entry state change (the daemon puts them on the node's event bus).
    fn report(&self, _entry: &Entry) {}
}

/// [`Importer`] over a node: `Node::adder` with the configured add options, pinned
/// recursively; unpinning removes a recursive (or direct) pin; every entry state change goes on
/// the node's event bus as [`NodeEvent::WatchImport`] (the event stream's `watch_import`).
#[derive(Debug, Clone)]
pub struct NodeImporter {
    node: Node,
    add: AddOptions,
    follow_symlinks: bool,
    ignore: IgnoreList,
}

impl NodeImporter {
    /// Imports into `node` with `config`'s add options, symlink rule and ignore list.
    pub fn new(node: Node, config: &WatchConfig) -> Self {
        let mut add = config.add.clone();
        add.pin = true;
        add.only_hash = false;
        NodeImporter {
            node,
            add,
            follow_symlinks: config.follow_symlinks,
            ignore: config.ignore.clone(),
        }
    }
}

impl Importer for NodeImporter {
    fn import(&self, source: Source) -> BoxFuture<'static, Result<Imported, WatchError>> {
        let this = self.clone();
        Box::pin(async move { this.import_entry(source).await })
    }

    fn unpin(&self, cid: Cid) -> BoxFuture<'static, Result<(), WatchError>> {
        let node = self.node.clone();
        Box::pin(async move {
            match node.pin_state(&cid).await? {
                Some(cairn_blockstore::PinState::Recursive) => {
                    node.unpin(&cid, true).await?;
                }
                Some(cairn_blockstore::PinState::Direct) => node.unpin(&cid, false).await?,
                _ => {}
            }
            Ok(())
        })
    }

    fn report(&self, entry: &Entry) {
        self.node.publish_event(NodeEvent::WatchImport {
            path: entry.path.clone(),
            state: entry.state.as_str().to_string(),
            cid: entry.cid.clone(),
            size: entry.size,
            error: entry.error.clone(),
        });
    }
}

impl NodeImporter {
    /// One import, in one [`cairn_node_core::Adder`] (which holds the node's GC guard until it
    /// has pinned the root):
    /// - a file is added without a name, as `cairn add FILE` adds it, so its CID is the one
    ///   `cairn add` prints with the same options;
    /// - a symlink is stored as a UnixFS symlink to its target text;
    /// - a folder is added as `name` with everything under it ([`NodeImporter::add_tree`]),
    ///   and its root directory is the result.
    async fn import_entry(&self, source: Source) -> Result<Imported, WatchError> {
        let mut adder = self.node.adder(self.add.clone())?;
        let name = source.name.as_str();
        let (cid, bytes) = match source.kind {
            EntryKind::File => {
                let event = add_file(&mut adder, "", &source.path).await?;
                (event.cid, event.file_size)
            }
            EntryKind::Symlink => {
                let target = tokio::fs::read_link(&source.path)
                    .await
                    .map_err(|e| WatchError::io(&source.path, e))?;
                let event = adder.add_symlink(name, &target.to_string_lossy()).await?;
                (event.cid, 0)
            }
            EntryKind::Directory => {
                let bytes = self.add_tree(&mut adder, name, &source.path).await?;
                let events = adder.finish().await?;
                let root = events
                    .iter()
                    .find(|e| e.name == name)
                    .map(|e| e.cid)
                    .ok_or_else(|| WatchError::Unsupported(source.path.clone()))?;
                return Ok(Imported::new(root, bytes));
            }
        };
        adder.finish().await?;
        Ok(Imported::new(cid, bytes))
    }

    /// Adds the folder at `path` as `name` with everything under it, depth first with sorted
    /// names (as `cairn add -r` does), skipping ignored names. Returns the file bytes read.
    async fn add_tree(
        &self,
        adder: &mut cairn_node_core::Adder,
        name: &str,
        path: &Path,
    ) -> Result<u64, WatchError> {
        adder.add_directory(name, None, None)?;
        let mut bytes = 0;
        // (folder on disk, its name in the DAG, depth); one folder's names in memory at a time.
        let mut stack = vec![(path.to_path_buf(), name.to_string(), 0usize)];
        while let Some((dir, dag_name, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(WatchError::io(
                    &dir,
                    std::io::Error::other("too deep (a symlink loop?)"),
                ));
            }
            let mut children = Vec::new();
            let mut rd = tokio::fs::read_dir(&dir)
                .await
                .map_err(|e| WatchError::io(&dir, e))?;
            while let Some(child) = rd.next_entry().await.map_err(|e| WatchError::io(&dir, e))? {
                let child_name = child.file_name().to_string_lossy().into_owned();
                if !self.ignore.is_ignored(&child_name) {
                    children.push((child_name, child.path()));
                }
            }
            children.sort();
            let mut subdirs = Vec::new();
            for (child_name, child_path) in children {
                let child_dag = format!("{dag_name}/{child_name}");
                match kind_of(&child_path, self.follow_symlinks).await? {
                    EntryKind::Directory => {
                        adder.add_directory(&child_dag, None, None)?;
                        subdirs.push((child_path, child_dag, depth + 1));
                    }
                    EntryKind::Symlink => {
                        let target = tokio::fs::read_link(&child_path)
                            .await
                            .map_err(|e| WatchError::io(&child_path, e))?;
                        adder
                            .add_symlink(&child_dag, &target.to_string_lossy())
                            .await?;
                    }
                    EntryKind::File => {
                        bytes += add_file(adder, &child_dag, &child_path).await?.file_size;
                    }
                }
            }
            // Depth first in name order: the first subfolder is walked next.
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(bytes)
    }
}

/// What is at `path`: a folder, a file or (when not following) a symlink.
///
/// # Errors
/// [`WatchError::Io`] when it cannot be read, [`WatchError::Unsupported`] for anything else
/// (a socket, a FIFO, a device).
pub(crate) async fn kind_of(path: &Path, follow: bool) -> Result<EntryKind, WatchError> {
    let meta = if follow {
        tokio::fs::metadata(path).await
    } else {
        tokio::fs::symlink_metadata(path).await
    }
    .map_err(|e| WatchError::io(path, e))?;
    let t = meta.file_type();
    if t.is_symlink() {
        Ok(EntryKind::Symlink)
    } else if t.is_dir() {
        Ok(EntryKind::Directory)
    } else if t.is_file() {
        Ok(EntryKind::File)
    } else {
        Err(WatchError::Unsupported(path.to_path_buf()))
    }
}

/// Streams the file at `path` into the add as `dag_name` (`""` for a nameless top-level file),
/// [`READ_CHUNK`] bytes at a time. A read error names the file.
async fn add_file(
    adder: &mut cairn_node_core::Adder,
    dag_name: &str,
    path: &Path,
) -> Result<cairn_node_core::AddEvent, WatchError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| WatchError::io(path, e))?;
    let stream = ReaderStream::with_capacity(file, READ_CHUNK);
    adder
        .add_file(dag_name, stream, &mut |_| {})
        .await
        .map_err(|e| match e {
            cairn_node_core::NodeError::Unixfs(cairn_node_core::unixfs::UnixfsError::Io(io)) => {
                WatchError::io(path, io)
            }
            e => WatchError::Node(e),
        })
}
