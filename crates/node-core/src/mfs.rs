//! MFS through the node: the [`Node`] methods behind Kubo's `ipfs files ...`, on
//! [`cairn_unixfs::mfs`].
//!
//! The root directory's CID is kept in the blockstore as the named root [`FILES_ROOT`] (Kubo
//! keeps it under the datastore key `/local/filesroot`); a repo without one starts from the
//! empty directory, as Kubo does on first start. A changing command runs under the node's MFS
//! lock and a GC guard: the command's new blocks are stored (one atomic, durable `put_many`),
//! the store is flushed, and only then is the root replaced, durably. A crash at any point
//! leaves a root whose blocks are all stored; GC keeps everything the root reaches.
//!
//! Blocks the commands read come from the store, else (unless offline) over Bitswap, as for
//! `cat`: `files cp /ipfs/<cid> ...` of a remote DAG fetches only the root, like Kubo.

use bytes::Bytes;
use cairn_blockstore::{Block, Blockstore, Cid};
use cairn_unixfs::mfs::{LsEntry, Mfs, MfsError, MkdirOptions, Stat, WriteOptions};
use cairn_unixfs::{BlockSink, BlockSource, BoxError, BoxFuture, UnixfsError};

use crate::add::gc_guard_off_runtime;
use crate::files::NodeBlocks;
use crate::{FetchOptions, Node, NodeError};

/// The blockstore's named root holding the MFS root (Kubo's `/local/filesroot`).
pub const FILES_ROOT: &str = "filesroot";

/// Reads through the node ([`NodeBlocks`]), writes to its blockstore.
struct MfsStore {
    node: Node,
    blocks: NodeBlocks,
    store: Blockstore,
}

impl BlockSource for MfsStore {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Option<Bytes>, BoxError>> {
        self.blocks.get(cid)
    }
}

impl BlockSink for MfsStore {
    fn put_many(&self, blocks: Vec<Block>) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            let store = self.store.clone();
            let stored = blocks.clone();
            tokio::task::spawn_blocking(move || store.put_many(stored))
                .await
                .map_err(|e| Box::new(e) as BoxError)?
                .map_err(|e| Box::new(e) as BoxError)?;
            let refs: Vec<&Block> = blocks.iter().collect();
            self.node.added(&refs, false);
            Ok(())
        })
    }
}

/// One changing MFS command in progress (see [`Node::mfs_begin`]).
struct Session {
    /// The MFS lock, held to the end.
    _lock: tokio::sync::OwnedMutexGuard<()>,
    /// Holds GC off until the new root is recorded.
    _gc: cairn_blockstore::GcGuard,
    /// The root when the command started.
    before: Cid,
    /// Where blocks are read and stored.
    store: MfsStore,
    /// The MFS the command changes.
    mfs: Mfs,
}

/// An MFS error as the node's: a store error that is the node's own comes back as it was.
impl From<MfsError> for NodeError {
    fn from(e: MfsError) -> Self {
        match e {
            MfsError::Unixfs(u @ (UnixfsError::BlockNotFound(_) | UnixfsError::Store(_))) => {
                NodeError::from(u)
            }
            other => NodeError::Mfs(other),
        }
    }
}

impl Node {
    fn mfs_store(&self, opts: FetchOptions) -> Result<MfsStore, NodeError> {
        Ok(MfsStore {
            node: self.clone(),
            blocks: self.block_source(opts).whole_dags(false),
            store: self.blockstore()?,
        })
    }

    /// The MFS root from the repo; a repo without one gets the empty directory (stored and
    /// recorded, as Kubo's first start does).
    async fn mfs_load(&self, store: &MfsStore) -> Result<Mfs, NodeError> {
        let bs = store.store.clone();
        let root = tokio::task::spawn_blocking(move || bs.root(FILES_ROOT))
            .await
            .map_err(|_| NodeError::NodeStopped)??;
        match root {
            Some(root) => Ok(Mfs::with_root(root)),
            None => {
                let mfs = Mfs::init(store).await?;
                self.mfs_save(store, mfs.root()).await?;
                Ok(mfs)
            }
        }
    }

    /// Flushes the store (the command's blocks are durable), then records `root`.
    async fn mfs_save(&self, store: &MfsStore, root: Cid) -> Result<(), NodeError> {
        let bs = store.store.clone();
        tokio::task::spawn_blocking(move || {
            bs.flush()?;
            bs.set_root(FILES_ROOT, Some(&root))
        })
        .await
        .map_err(|_| NodeError::NodeStopped)??;
        // Kubo's `mfs` provide strategies announce the tree as it changes (the reprovider walks
        // it again every interval).
        use crate::exchange::ProvideStrategy::{Mfs, PinnedMfs};
        if matches!(self.provide_config().strategy, Mfs | PinnedMfs) {
            self.announce(vec![root], true);
        }
        Ok(())
    }

    /// Starts a changing MFS command: the MFS lock, a GC guard (so nothing the command stores
    /// is swept before the root names it), the store and the current root.
    async fn mfs_begin(&self, fetch: FetchOptions) -> Result<Session, NodeError> {
        let lock = self.mfs_lock().lock_owned().await;
        let store = self.mfs_store(fetch)?;
        let gc = gc_guard_off_runtime(&store.store);
        let mfs = self.mfs_load(&store).await?;
        Ok(Session {
            _lock: lock,
            _gc: gc,
            before: mfs.root(),
            store,
            mfs,
        })
    }

    /// Ends a changing command: saves the root if it changed (the blocks are already stored).
    async fn mfs_end(&self, s: Session) -> Result<(), NodeError> {
        if s.mfs.root() != s.before {
            self.mfs_save(&s.store, s.mfs.root()).await?;
        }
        Ok(())
    }

    /// The store and current root for a reading command.
    async fn mfs_view(&self, fetch: FetchOptions) -> Result<(Mfs, MfsStore), NodeError> {
        let store = self.mfs_store(fetch)?;
        let mfs = {
            let _held = self.mfs_lock().lock_owned().await;
            self.mfs_load(&store).await?
        };
        Ok((mfs, store))
    }

    /// The MFS root's CID (Kubo's `files stat --hash /`).
    ///
    /// # Errors
    /// Store errors.
    pub async fn files_root(&self) -> Result<Cid, NodeError> {
        let fetch = FetchOptions::offline();
        let (m, _) = self.mfs_view(fetch).await?;
        Ok(m.root())
    }

    /// `files mkdir` (see [`Mfs::mkdir`]).
    ///
    /// # Errors
    /// [`NodeError::Mfs`] with Kubo's message; store errors.
    pub async fn files_mkdir(
        &self,
        path: &str,
        opts: &MkdirOptions,
        fetch: FetchOptions,
    ) -> Result<(), NodeError> {
        let mut s = self.mfs_begin(fetch).await?;
        s.mfs.mkdir(&s.store, path, opts).await?;
        self.mfs_end(s).await
    }

    /// `files write` of `data` (see [`Mfs::write`]).
    ///
    /// # Errors
    /// [`NodeError::Mfs`] with Kubo's message; store errors.
    pub async fn files_write(
        &self,
        path: &str,
        data: &[u8],
        opts: &WriteOptions,
        fetch: FetchOptions,
    ) -> Result<(), NodeError> {
        let mut s = self.mfs_begin(fetch).await?;
        s.mfs.write(&s.store, path, data, opts).await?;
        self.mfs_end(s).await
    }

    /// `files read`: bytes `[offset, offset + count)` of the file (see [`Mfs::read`]).
    ///
    /// # Errors
    /// [`NodeError::Mfs`] with Kubo's message; store and fetch errors.
    pub async fn files_read(
        &self,
        path: &str,
        offset: u64,
        count: Option<u64>,
        fetch: FetchOptions,
    ) -> Result<Vec<u8>, NodeError> {
        let (m, s) = self.mfs_view(fetch).await?;
        Ok(m.read(&s, path, offset, count).await?)
    }

    /// `files ls [-l]` (see [`Mfs::ls`]).
    ///
    /// # Errors
    /// [`NodeError::Mfs`] with Kubo's message; store and fetch errors.
    pub async fn files_ls(
        &self,
        path: &str,
        long: bool,
        fetch: FetchOptions,
    ) -> Result<Vec<LsEntry>, NodeError> {
        let (m, s) = self.mfs_view(fetch).await?;
        Ok(m.ls(&s, path, long).await?)
    }

    /// `files stat` (see [`Mfs::stat`]).
    ///
    /// # Errors
    /// [`NodeError::Mfs`] with Kubo's message; store and fetch errors.
    pub async fn files_stat(&self, path: &str, fetch: FetchOptions) -> Result<Stat, NodeError> {
        let (m, s) = self.mfs_view(fetch).await?;
        Ok(m.stat(&s, path).await?)
    }

    /// How much of the DAG under `cid` is in the local store, never fetching: `(local,
    /// size_local)` as Kubo's `files stat --with-local` reports them (`Local`, `SizeLocal`;
    /// see [`Blockstore::local_size`](cairn_blockstore::Blockstore::local_size)).
    ///
    /// # Errors
    /// Store errors, [`NodeError::NodeStopped`].
    pub async fn local_size(&self, cid: Cid) -> Result<(bool, u64), NodeError> {
        self.blocking(move |store| store.local_size(&cid)).await
    }

    /// `files cp [-p]` (see [`Mfs::cp`]).
    ///
    /// # Errors
    /// [`NodeError::Mfs`] with Kubo's message; store and fetch errors.
    pub async fn files_cp(
        &self,
        src: &str,
        dst: &str,
        parents: bool,
        fetch: FetchOptions,
    ) -> Result<(), NodeError> {
        let mut s = self.mfs_begin(fetch).await?;
        s.mfs.cp(&s.store, src, dst, parents).await?;
        self.mfs_end(s).await
    }

    /// `files mv` (see [`Mfs::mv`]).
    ///
    /// # Errors
    /// [`NodeError::Mfs`] with Kubo's message; store errors.
    pub async fn files_mv(
        &self,
        src: &str,
        dst: &str,
        fetch: FetchOptions,
    ) -> Result<(), NodeError> {
        let mut s = self.mfs_begin(fetch).await?;
        s.mfs.mv(&s.store, src, dst).await?;
        self.mfs_end(s).await
    }

    /// `files rm` of one path (see [`Mfs::rm`]).
    ///
    /// # Errors
    /// [`NodeError::Mfs`] with Kubo's message; store errors.
    pub async fn files_rm(
        &self,
        path: &str,
        recursive: bool,
        force: bool,
        fetch: FetchOptions,
    ) -> Result<(), NodeError> {
        let mut s = self.mfs_begin(fetch).await?;
        s.mfs.rm(&s.store, path, recursive, force).await?;
        self.mfs_end(s).await
    }

    /// `files flush`: the CID at `path` (every command is already flushed and durable).
    ///
    /// # Errors
    /// [`NodeError::Mfs`] with Kubo's message; store errors.
    pub async fn files_flush(&self, path: &str, fetch: FetchOptions) -> Result<Cid, NodeError> {
        let (m, s) = self.mfs_view(fetch).await?;
        Ok(m.flush(&s, path).await?)
    }

    /// `files chcid` (see [`Mfs::chcid`]).
    ///
    /// # Errors
    /// [`NodeError::Mfs`] with Kubo's message; store errors.
    pub async fn files_chcid(
        &self,
        path: &str,
        cid_version: Option<u8>,
        hash: Option<&str>,
        fetch: FetchOptions,
    ) -> Result<(), NodeError> {
        let mut s = self.mfs_begin(fetch).await?;
        s.mfs.chcid(&s.store, path, cid_version, hash).await?;
        self.mfs_end(s).await
    }
    /// `ipfs files chmod <mode> <path>` (Kubo 0.30+): sets the UnixFS 1.5 mode of the file or
    /// directory at `path` (the root included) and saves the new root. `mode` is Go's
    /// `os.FileMode` as Kubo parses it from octal (`0o755`); boxo keeps the bits `0o777` (see
    /// [`cairn_unixfs::mfs::Mfs::chmod`], which also says what becomes of a raw-block file).
    ///
    /// # Errors
    /// [`NodeError::Mfs`] with Kubo's message (`file does not exist`, path errors); store
    /// errors.
    pub async fn files_chmod(
        &self,
        path: &str,
        mode: u32,
        fetch: FetchOptions,
    ) -> Result<(), NodeError> {
        let mut s = self.mfs_begin(fetch).await?;
        s.mfs.chmod(&s.store, path, mode).await?;
        self.mfs_end(s).await
    }

    /// `ipfs files touch [--mtime S] [--mtime-nsecs N] <path>` (Kubo 0.30+): sets the UnixFS 1.5
    /// mtime of the file or directory at `path` (the root included) to `mtime` (Unix seconds,
    /// nanoseconds) and saves the new root; see [`cairn_unixfs::mfs::Mfs::touch`]. Kubo's "now
    /// when `--mtime` is absent or 0" is the RPC's part.
    ///
    /// # Errors
    /// As [`Node::files_chmod`].
    pub async fn files_touch(
        &self,
        path: &str,
        mtime: (i64, u32),
        fetch: FetchOptions,
    ) -> Result<(), NodeError> {
        let mut s = self.mfs_begin(fetch).await?;
        s.mfs.touch(&s.store, path, mtime).await?;
        self.mfs_end(s).await
    }
}
