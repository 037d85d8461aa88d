//! The [`Blockstore`]: verified blocks keyed by multihash, a size index, large blocks as files,
//! pins, garbage collection, and group-committed durable writes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cid::Cid;
use multihash::Multihash;
use parking_lot::Mutex;

use crate::block::{Block, IDENTITY, verify};
use crate::codec::{RAW, links};
use crate::commit::GroupCommit;
use crate::engine::{BatchOp, Keyspace, MemoryEngine, SledEngine, StorageEngine};
use crate::error::{BlockstoreError, Result};
use crate::files::FlatFs;
use crate::gate::{Gate, GcGuard};
use crate::pin::{PinFilter, PinInfo, PinKind, PinMode, PinRecord, PinState};

/// When an acknowledged write is safe from a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Writes are acknowledged once in the engine's memory (and, for blocks kept as files, in the
    /// OS page cache); sled writes them out every `flush_every_ms` (500 ms) and on
    /// [`Blockstore::flush`]. A process crash can lose the puts, pins and deletes acknowledged in
    /// that last half second, never a flushed one; a power cut can also lose file bodies the kernel
    /// had not written back (about 30 s), which then read as damaged, never as wrong data.
    Buffered,
    /// Every put, `put_many`, pin and delete is written and fsynced before it returns: an
    /// acknowledged write survives a process crash and a power cut (as far as fsync holds).
    /// Concurrent writers share fsyncs (group commit), so the cost under load is small.
    #[default]
    Synced,
}

/// The size from which a block's bytes are kept in a file rather than in sled (64 KiB): such a
/// file wastes at most one file-system block (4 KiB, about 6%), while sled's log costs larger
/// values 2× and more (see BENCHMARKS.md, "Disk use").
pub const DEFAULT_FILE_THRESHOLD: usize = 64 << 10;

/// The free space a write must leave on the file system (8 MiB): sled cannot recover from a
/// failed write of its log (it stays failed until reopened), so the store refuses a write before
/// the disk is that full, with [`BlockstoreError::NoSpace`].
pub const DEFAULT_MIN_FREE: u64 = 8 << 20;

/// Settings of a [`Blockstore`]; `Default` gives the durable, verifying store.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BlockstoreConfig {
    /// Re-hash every block read and answer [`BlockstoreError::Corrupt`] on mismatch (on by
    /// default: a damaged block is never served; Kubo leaves this off, trusting its disk).
    pub verify_on_read: bool,
    /// When writes are durable ([`Durability::Synced`] by default, as Kubo's default datastore).
    pub durability: Durability,
    /// The largest block accepted, in bytes (4 MiB: Bitswap's message limit).
    pub max_block_size: usize,
    /// sled's page cache, in bytes (64 MiB).
    pub cache_capacity: u64,
    /// Blocks of at least this many bytes are kept as files in [`BlockstoreConfig::blocks_dir`]
    /// ([`DEFAULT_FILE_THRESHOLD`]); `usize::MAX` keeps every block in sled.
    pub file_threshold: usize,
    /// The directory of block files (Kubo's flatfs layout); `None` means `<store dir>/blocks`.
    /// Ignored by stores without a directory.
    pub blocks_dir: Option<PathBuf>,
    /// The free space, in bytes, a write must leave on the file system ([`DEFAULT_MIN_FREE`]).
    pub min_free_bytes: u64,
}

impl Default for BlockstoreConfig {
    fn default() -> Self {
        BlockstoreConfig {
            verify_on_read: true,
            durability: Durability::Synced,
            max_block_size: 4 << 20,
            cache_capacity: 64 << 20,
            file_threshold: DEFAULT_FILE_THRESHOLD,
            blocks_dir: None,
            min_free_bytes: DEFAULT_MIN_FREE,
        }
    }
}

impl BlockstoreConfig {
    /// Sets [`BlockstoreConfig::verify_on_read`].
    pub fn with_verify_on_read(mut self, on: bool) -> Self {
        self.verify_on_read = on;
        self
    }

    /// Sets [`BlockstoreConfig::durability`].
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets [`BlockstoreConfig::max_block_size`].
    pub fn with_max_block_size(mut self, bytes: usize) -> Self {
        self.max_block_size = bytes;
        self
    }

    /// Sets [`BlockstoreConfig::cache_capacity`].
    pub fn with_cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = bytes;
        self
    }

    /// Sets [`BlockstoreConfig::file_threshold`].
    pub fn with_file_threshold(mut self, bytes: usize) -> Self {
        self.file_threshold = bytes;
        self
    }

    /// Sets [`BlockstoreConfig::blocks_dir`].
    pub fn with_blocks_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.blocks_dir = Some(dir.into());
        self
    }

    /// Sets [`BlockstoreConfig::min_free_bytes`].
    pub fn with_min_free_bytes(mut self, bytes: u64) -> Self {
        self.min_free_bytes = bytes;
        self
    }
}

/// Totals over the stored blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStat {
    /// How many blocks are stored.
    pub blocks: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// What a garbage collection removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The removed blocks, as CIDv1 raw (the store keys by multihash, as Kubo's does).
    pub removed: Vec<Cid>,
    /// The bytes they held.
    pub freed_bytes: u64,
}

/// What [`Blockstore::gc_each`] did, without the list of removed blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcSummary {
    /// Blocks removed.
    pub removed: u64,
    /// The bytes they held.
    pub freed_bytes: u64,
    /// Block files found without an index entry (left by a crash) and removed.
    pub orphans: u64,
}

/// What [`Blockstore::verify_each`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifySummary {
    /// Blocks checked.
    pub checked: u64,
    /// Blocks whose bytes are missing or no longer match their hash.
    pub damaged: u64,
}

/// Counters of writes since the store was opened, for metrics. Reads are not counted here: a
/// shared counter costs a measurable share of a get (count them where they are served).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Blocks newly written.
    pub puts: u64,
    /// Bytes newly written.
    pub put_bytes: u64,
    /// Blocks deleted (by `delete` or GC).
    pub deletes: u64,
    /// Flushes (fsyncs of sled's log) run for durable writes; with group commit usually fewer
    /// than the writes they made durable.
    pub flushes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    puts: AtomicU64,
    put_bytes: AtomicU64,
    deletes: AtomicU64,
}

/// A content-addressed blockstore. Cheap to clone; clones share the same store.
///
/// Blocks are keyed by multihash, as Kubo keys them: a CIDv0 and a CIDv1 of the same bytes share
/// one entry, and either CID finds it. Identity-hash CIDs carry their data and are never stored.
///
/// Layout: sled's `index` tree maps each multihash to a 10-byte record (where the bytes live and
/// how many there are); blocks under [`BlockstoreConfig::file_threshold`] keep their bytes in
/// sled's `blocks` tree, larger ones in a file ([`BlockstoreConfig::blocks_dir`], Kubo's flatfs
/// layout). The index is the truth: a block is stored exactly when it has an index record, and
/// bytes are always written before their record and removed after it, so a crash can leave
/// unreferenced bytes (GC removes orphan files) but never a record without its bytes.
#[derive(Clone, Debug)]
pub struct Blockstore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Arc<dyn StorageEngine>,
    config: BlockstoreConfig,
    gate: Arc<Gate>,
    /// Serialises pin changes with deletes, so a delete cannot race a pin of the same block.
    pin_lock: Mutex<()>,
    counters: Counters,
    commit: GroupCommit,
    /// Large block bodies; `None` for stores without a directory (everything stays in the engine).
    files: Option<FlatFs>,
    /// The engine's directory, for free-space checks.
    dir: Option<PathBuf>,
    /// The running totals, as last written under [`TOTALS_KEY`]; the lock orders index batches so
    /// each writes the totals that follow from the one before.
    totals: Mutex<StoreStat>,
}

/// Where a block's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Location {
    /// In the engine's `blocks` keyspace.
    Inline,
    /// In a file of the flatfs store.
    File,
}

/// A block's index record: `[version 1][location][size u64 little-endian]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IndexRecord {
    location: Location,
    size: u64,
}

const INDEX_VERSION: u8 = 1;
/// The meta key recording that the index was built (stores written before it had no index).
const LAYOUT_KEY: &[u8] = b"layout";

/// Node records ([`Blockstore::get_record`]) live beside the store's own bookkeeping in the
/// `Meta` keyspace; theirs start with `/` (as Kubo's datastore keys do), the store's never.
fn check_record_key(key: &[u8]) -> Result<()> {
    if key.first() == Some(&b'/') && key.len() <= 1024 {
        Ok(())
    } else {
        Err(BlockstoreError::InvalidRecordKey)
    }
}
// Layout 2 (indexed, no totals) was only written by development builds; it is opened as an
// index whose totals are missing, and they are counted once.
/// Indexed, with the running totals under [`TOTALS_KEY`].
const LAYOUT_TOTALS: &[u8] = &[3];
/// The index tree's one non-block key (no multihash is empty): the number of blocks and their
/// bytes, `[blocks u64 LE][bytes u64 LE]`. It is written in the same atomic batch as every index
/// change, so after any crash it agrees with the records (sled recovers a prefix of batches), and
/// `stat` reads it instead of walking the index, as Kubo's flatfs keeps its disk-usage file.
const TOTALS_KEY: &[u8] = b"";

fn encode_totals(t: StoreStat) -> Bytes {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&t.blocks.to_le_bytes());
    out.extend_from_slice(&t.bytes.to_le_bytes());
    Bytes::from(out)
}

fn decode_totals(v: &[u8]) -> Option<StoreStat> {
    let (a, b) = v.split_at_checked(8)?;
    Some(StoreStat {
        blocks: u64::from_le_bytes(a.try_into().ok()?),
        bytes: u64::from_le_bytes(b.try_into().ok()?),
    })
}

impl IndexRecord {
    fn encode(self) -> [u8; 10] {
        let mut out = [0u8; 10];
        out[0] = INDEX_VERSION;
        out[1] = match self.location {
            Location::Inline => 0,
            Location::File => 1,
        };
        out[2..].copy_from_slice(&self.size.to_le_bytes());
        out
    }

    fn decode(key: &[u8], v: &[u8]) -> Result<Self> {
        let corrupt = || BlockstoreError::CorruptIndex {
            key: crate::block::hex(key),
        };
        let [INDEX_VERSION, loc, size @ ..] = v else {
            return Err(corrupt());
        };
        let location = match loc {
            0 => Location::Inline,
            1 => Location::File,
            _ => return Err(corrupt()),
        };
        let size = u64::from_le_bytes(size.try_into().map_err(|_| corrupt())?);
        Ok(IndexRecord { location, size })
    }
}

fn key_of(cid: &Cid) -> Vec<u8> {
    cid.hash().to_bytes()
}

fn cid_of_key(key: &[u8]) -> Result<Cid> {
    let mh = Multihash::<64>::from_bytes(key).map_err(|e| BlockstoreError::InvalidCid {
        input: crate::block::hex(key),
        reason: format!("stored key is not a multihash: {e}"),
    })?;
    Ok(Cid::new_v1(RAW, mh))
}

/// The `Meta` keyspace prefix of named roots (no leading `/`, so apart from node records).
const ROOT_PREFIX: &[u8] = b"root/";

/// The `Meta` key of the named root `name`.
fn root_key(name: &str) -> Vec<u8> {
    let mut k = ROOT_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// A 128-bit summary of a multihash, for the GC mark set and walk sets: 16 bytes a block instead
/// of a whole `Cid` (about 100 bytes with its allocation). Two distinct multihashes only share it
/// if their digests share 16 leading bytes, which sha2-256 and its peers make infeasible; and a
/// collision could only keep a block, never remove a reachable one.
fn compact(mh: &Multihash<64>) -> u128 {
    let d = mh.digest();
    let mut b = [0u8; 16];
    let n = d.len().min(16);
    b[..n].copy_from_slice(&d[..n]);
    u128::from_le_bytes(b) ^ u128::from(mh.code()) ^ ((d.len() as u128) << 120)
}

/// Runs `f` with the multihash bytes of `mh`, encoded on the stack: reads are hot and a heap
/// allocation per lookup is a measurable share of a sled get.
fn with_key<R>(mh: &Multihash<64>, f: impl FnOnce(&[u8]) -> R) -> R {
    // Two varints (at most 10 bytes each) and a digest of at most 64 bytes.
    let mut buf = [0u8; 84];
    let len = mh
        .write(&mut buf[..])
        .expect("a Multihash<64> fits in 84 bytes");
    f(&buf[..len])
}

impl Blockstore {
    /// Opens (or creates) a blockstore in the directory `path` with default settings: sled there,
    /// large blocks in `path/blocks`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, BlockstoreConfig::default())
    }

    /// Opens (or creates) a blockstore in the directory `path`. A store written by an earlier
    /// cairn (no index) is indexed once, here.
    pub fn open_with(path: impl AsRef<Path>, config: BlockstoreConfig) -> Result<Self> {
        let path = path.as_ref();
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_capacity)
            .open()
            .map_err(crate::error::EngineError::from)?;
        let blocks_dir = config
            .blocks_dir
            .clone()
            .unwrap_or_else(|| path.join("blocks"));
        let files = FlatFs::open(&blocks_dir).map_err(BlockstoreError::io("open", &blocks_dir))?;
        let store = Self::build(
            Arc::new(SledEngine::from_db(db)?),
            config,
            Some(files),
            Some(path.to_path_buf()),
        );
        store.ensure_index()?;
        Ok(store)
    }

    /// A store that lives in memory only.
    pub fn in_memory() -> Self {
        Self::with_engine(Arc::new(MemoryEngine::new()), BlockstoreConfig::default())
    }

    /// A store over any [`StorageEngine`], every block's bytes in the engine (no files). If the
    /// engine holds blocks without an index (written by an earlier cairn), they are indexed now;
    /// an engine error doing so is logged and the store answers from what was indexed.
    pub fn with_engine(engine: Arc<dyn StorageEngine>, config: BlockstoreConfig) -> Self {
        let store = Self::build(engine, config, None, None);
        if let Err(e) = store.ensure_index() {
            tracing::error!("indexing the blockstore failed: {e}");
        }
        store
    }

    fn build(
        engine: Arc<dyn StorageEngine>,
        config: BlockstoreConfig,
        files: Option<FlatFs>,
        dir: Option<PathBuf>,
    ) -> Self {
        Blockstore {
            inner: Arc::new(Inner {
                engine,
                config,
                gate: Arc::default(),
                pin_lock: Mutex::new(()),
                counters: Counters::default(),
                commit: GroupCommit::default(),
                files,
                dir,
                totals: Mutex::new(StoreStat::default()),
            }),
        }
    }

    /// Loads the running totals; builds the index (and totals) of a store written before there
    /// was one, with one pass over the blocks, or the totals of an index without them.
    fn ensure_index(&self) -> Result<()> {
        let e = self.engine();
        let layout = e.get(Keyspace::Meta, LAYOUT_KEY)?;
        if layout.as_deref() == Some(LAYOUT_TOTALS)
            && let Some(t) = e
                .get(Keyspace::Index, TOTALS_KEY)?
                .and_then(|v| decode_totals(&v))
        {
            *self.inner.totals.lock() = t;
            return Ok(());
        }
        let mut totals = StoreStat::default();
        if layout.is_none() {
            for r in e.iter(Keyspace::Blocks) {
                let (key, value) = r?;
                let record = IndexRecord {
                    location: Location::Inline,
                    size: value.len() as u64,
                };
                e.put(Keyspace::Index, &key, &record.encode())?;
            }
        }
        for r in e.iter(Keyspace::Index) {
            let (key, value) = r?;
            if key.is_empty() {
                continue;
            }
            totals.blocks += 1;
            totals.bytes += IndexRecord::decode(&key, &value)?.size;
        }
        e.put(Keyspace::Index, TOTALS_KEY, &encode_totals(totals))?;
        e.put(Keyspace::Meta, LAYOUT_KEY, LAYOUT_TOTALS)?;
        e.flush()?;
        *self.inner.totals.lock() = totals;
        if totals.blocks > 0 {
            tracing::info!(
                "indexed {} blocks written by an earlier version",
                totals.blocks
            );
        }
        Ok(())
    }

    /// Applies index changes and the totals they imply, in one atomic batch. The change each op
    /// makes to the totals is read from the index under the totals lock, so two writers racing
    /// to store (or remove) the same block count it once.
    fn apply_index(&self, mut ops: Vec<BatchOp>) -> Result<()> {
        let mut t = self.inner.totals.lock();
        let mut next = *t;
        for op in &ops {
            let (key, new_size) = match op {
                BatchOp::Put { key, value } => (key, Some(IndexRecord::decode(key, value)?.size)),
                BatchOp::Delete { key } => (key, None),
            };
            let old_size = self.index_record(key)?.map(|r| r.size);
            match (old_size, new_size) {
                (None, Some(n)) => {
                    next.blocks += 1;
                    next.bytes += n;
                }
                (Some(o), Some(n)) => next.bytes = (next.bytes + n).saturating_sub(o),
                (Some(o), None) => {
                    next.blocks = next.blocks.saturating_sub(1);
                    next.bytes = next.bytes.saturating_sub(o);
                }
                (None, None) => {}
            }
        }
        ops.push(BatchOp::Put {
            key: TOTALS_KEY.to_vec(),
            value: encode_totals(next),
        });
        self.engine().apply_batch(Keyspace::Index, ops)?;
        *t = next;
        Ok(())
    }

    /// The store's settings.
    pub fn config(&self) -> &BlockstoreConfig {
        &self.inner.config
    }

    fn engine(&self) -> &dyn StorageEngine {
        &*self.inner.engine
    }

    fn durable(&self) -> bool {
        self.inner.config.durability == Durability::Synced
    }

    /// Makes the writes completed so far durable, sharing the fsync with concurrent writers.
    fn commit(&self) -> Result<()> {
        let engine = &self.inner.engine;
        Ok(self.inner.commit.commit(|| engine.flush())?)
    }

    fn commit_if_durable(&self) -> Result<()> {
        if self.durable() {
            self.commit()?;
        }
        Ok(())
    }

    fn check_size(&self, block: &Block) -> Result<()> {
        let max = self.inner.config.max_block_size;
        if block.len() > max {
            return Err(BlockstoreError::BlockTooLarge {
                cid: *block.cid(),
                size: block.len(),
                max,
            });
        }
        Ok(())
    }

    /// Refuses a write of `bytes` that would leave less than `min_free_bytes` on the file system.
    fn check_space(&self, bytes: u64) -> Result<()> {
        let Some(dir) = &self.inner.dir else {
            return Ok(());
        };
        let reserve = self.inner.config.min_free_bytes;
        let check = |path: &Path| -> Result<()> {
            let Ok(st) = rustix::fs::statvfs(path) else {
                return Ok(()); // cannot tell: let the write itself find out
            };
            let available = st.f_bavail.saturating_mul(st.f_frsize);
            if available < bytes.saturating_add(reserve) {
                return Err(BlockstoreError::NoSpace {
                    path: path.to_path_buf(),
                    available,
                    needed: bytes,
                    reserve,
                });
            }
            Ok(())
        };
        check(dir)?;
        if let Some(files) = &self.inner.files {
            check(files.root())?;
        }
        Ok(())
    }

    /// A guard that holds garbage collection off until it is dropped. See [`GcGuard`].
    pub fn gc_guard(&self) -> GcGuard {
        self.inner.gate.enter_writer()
    }

    /// [`Blockstore::gc_guard`] without waiting: `None` while a garbage collection runs. For async
    /// callers, which must not block a runtime worker on a GC (see `Node::adder`).
    pub fn try_gc_guard(&self) -> Option<GcGuard> {
        self.inner.gate.try_enter_writer()
    }

    /// Whether a garbage collection is waiting for writers to finish.
    pub fn gc_waiting(&self) -> bool {
        self.inner.gate.gc_waiting()
    }

    fn location_for(&self, len: usize) -> Location {
        if self.inner.files.is_some() && len >= self.inner.config.file_threshold {
            Location::File
        } else {
            Location::Inline
        }
    }

    fn index_record(&self, key: &[u8]) -> Result<Option<IndexRecord>> {
        self.engine()
            .get(Keyspace::Index, key)?
            .map(|v| IndexRecord::decode(key, &v))
            .transpose()
    }

    /// The stored bytes of an indexed block, unverified; `None` if they are missing.
    fn read_body(&self, key: &[u8], record: IndexRecord) -> Result<Option<Bytes>> {
        match (record.location, &self.inner.files) {
            (Location::File, Some(files)) => files
                .read(key)
                .map_err(|e| BlockstoreError::io("read", files.path_of(key))(e)),
            (Location::File, None) => Ok(None),
            (Location::Inline, _) => Ok(self.engine().get(Keyspace::Blocks, key)?),
        }
    }

    /// Writes a block's bytes where their size says (not yet visible: the index record is not).
    fn write_body(&self, key: &[u8], data: &Bytes) -> Result<IndexRecord> {
        let location = self.location_for(data.len());
        match (location, &self.inner.files) {
            (Location::File, Some(files)) => files
                .write(key, data, self.durable())
                .map_err(BlockstoreError::io("write", files.path_of(key)))?,
            _ => self.engine().put(Keyspace::Blocks, key, data)?,
        }
        Ok(IndexRecord {
            location,
            size: data.len() as u64,
        })
    }

    /// Removes a block's bytes (after its index record is gone).
    fn remove_body(&self, key: &[u8], record: IndexRecord) -> Result<()> {
        match (record.location, &self.inner.files) {
            (Location::File, Some(files)) => {
                files
                    .remove(key)
                    .map_err(BlockstoreError::io("remove", files.path_of(key)))?;
            }
            _ => {
                self.engine().delete(Keyspace::Blocks, key)?;
            }
        }
        Ok(())
    }

    /// Whether the stored copy under `key` holds exactly `data`. A missing or damaged copy does
    /// not, so a put of the right bytes replaces it (the repair path of a damaged block).
    fn intact(&self, key: &[u8], record: IndexRecord, data: &[u8]) -> bool {
        match self.read_body(key, record) {
            Ok(Some(stored)) => stored == data,
            _ => false,
        }
    }

    /// Stores a block. Returns `true` if it was new (or replaced a damaged copy), `false` if it
    /// was already there intact (or is an identity block, which is never stored). With
    /// [`Durability::Synced`] the block is on disk when this returns. A full disk is
    /// [`BlockstoreError::NoSpace`] and leaves the store as it was.
    pub fn put(&self, block: &Block) -> Result<bool> {
        self.check_size(block)?;
        if block.cid().hash().code() == IDENTITY {
            return Ok(false);
        }
        let _guard = self.gc_guard();
        let key = key_of(block.cid());
        let old = self.index_record(&key)?;
        if let Some(old) = old {
            // Kubo skips a put of a block it has; cairn first checks that the copy is good.
            if self.intact(&key, old, block.data()) {
                return Ok(false);
            }
            tracing::warn!("replacing the damaged stored copy of {}", block.cid());
        }
        self.check_space(block.len() as u64)?;
        let record = self.write_body(&key, block.data())?;
        self.apply_index(vec![BatchOp::Put {
            key: key.clone(),
            value: Bytes::copy_from_slice(&record.encode()),
        }])?;
        if let Some(old) = old.filter(|o| o.location != record.location) {
            self.remove_body(&key, old)?;
        }
        self.commit_if_durable()?;
        let c = &self.inner.counters;
        c.puts.fetch_add(1, Ordering::Relaxed);
        c.put_bytes.fetch_add(block.len() as u64, Ordering::Relaxed);
        Ok(true)
    }

    /// Stores several blocks atomically: either all become visible or, on any error or crash,
    /// none does (their index records are written in one batch, after every block's bytes).
    /// Returns how many were new.
    pub fn put_many(&self, blocks: impl IntoIterator<Item = Block>) -> Result<usize> {
        let blocks: Vec<Block> = blocks.into_iter().collect();
        for block in &blocks {
            self.check_size(block)?;
        }
        let _guard = self.gc_guard();
        let mut todo = Vec::with_capacity(blocks.len());
        let mut seen = HashSet::new();
        for block in blocks {
            if block.cid().hash().code() == IDENTITY {
                continue;
            }
            let key = key_of(block.cid());
            if !seen.insert(key.clone()) {
                continue;
            }
            let old = self.index_record(&key)?;
            if let Some(old) = old
                && self.intact(&key, old, block.data())
            {
                continue;
            }
            todo.push((key, block));
        }
        if todo.is_empty() {
            return Ok(0);
        }
        let bytes: u64 = todo.iter().map(|(_, b)| b.len() as u64).sum();
        self.check_space(bytes)?;
        // Large bodies first, as one group of files (see FlatFs::write_many).
        if let Some(files) = &self.inner.files {
            let large = todo
                .iter()
                .filter(|(_, b)| self.location_for(b.len()) == Location::File)
                .map(|(k, b)| (&k[..], &b.data()[..]));
            files
                .write_many(large, self.durable())
                .map_err(BlockstoreError::io("write", files.root()))?;
        }
        let mut inline = Vec::new();
        let mut index = Vec::with_capacity(todo.len());
        for (key, block) in &todo {
            let record = match self.location_for(block.len()) {
                Location::File => IndexRecord {
                    location: Location::File,
                    size: block.len() as u64,
                },
                Location::Inline => {
                    inline.push(BatchOp::Put {
                        key: key.clone(),
                        value: block.data().clone(),
                    });
                    IndexRecord {
                        location: Location::Inline,
                        size: block.len() as u64,
                    }
                }
            };
            index.push(BatchOp::Put {
                key: key.clone(),
                value: Bytes::copy_from_slice(&record.encode()),
            });
        }
        if !inline.is_empty() {
            self.engine().apply_batch(Keyspace::Blocks, inline)?;
        }
        self.apply_index(index)?;
        self.commit_if_durable()?;
        let new = todo.len();
        let c = &self.inner.counters;
        c.puts.fetch_add(new as u64, Ordering::Relaxed);
        c.put_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(new)
    }

    /// Reads a block, or `None` if it is not stored. With `verify_on_read` (the default) the
    /// bytes are hashed first: a block damaged on disk, or whose bytes are missing, is
    /// [`BlockstoreError::Corrupt`], never returned.
    pub fn get(&self, cid: &Cid) -> Result<Option<Block>> {
        let mh = cid.hash();
        if mh.code() == IDENTITY {
            return Ok(Some(Block::trusted(
                *cid,
                Bytes::copy_from_slice(mh.digest()),
            )));
        }
        with_key(mh, |key| {
            let Some(record) = self.index_record(key)? else {
                return Ok(None);
            };
            let Some(data) = self.read_body(key, record)? else {
                tracing::error!("stored block {cid} has lost its bytes");
                return Err(BlockstoreError::Corrupt(*cid));
            };
            if self.inner.config.verify_on_read && verify(cid, &data).is_err() {
                tracing::error!("stored block {cid} is damaged: its bytes do not match its hash");
                return Err(BlockstoreError::Corrupt(*cid));
            }
            Ok(Some(Block::trusted(*cid, data)))
        })
    }

    /// Whether a block is stored (identity blocks always are). Reads only the index.
    pub fn has(&self, cid: &Cid) -> Result<bool> {
        if cid.hash().code() == IDENTITY {
            return Ok(true);
        }
        Ok(with_key(cid.hash(), |key| {
            self.engine().has(Keyspace::Index, key)
        })?)
    }

    /// A stored block's size in bytes, or `None` if it is not stored. Reads only the index.
    pub fn size(&self, cid: &Cid) -> Result<Option<usize>> {
        if cid.hash().code() == IDENTITY {
            return Ok(Some(cid.hash().digest().len()));
        }
        with_key(cid.hash(), |key| {
            Ok(self.index_record(key)?.map(|r| r.size as usize))
        })
    }

    /// Removes a block. Returns whether it was there. A block that a pin protects (directly,
    /// recursively or through a recursive pin's DAG) is refused with [`BlockstoreError::Pinned`].
    pub fn delete(&self, cid: &Cid) -> Result<bool> {
        let _pins = self.inner.pin_lock.lock();
        if let Some((mode, via)) = self.pinned_by(cid.hash())? {
            return Err(BlockstoreError::pinned(*cid, mode, via));
        }
        let key = key_of(cid);
        let Some(record) = self.index_record(&key)? else {
            return Ok(false);
        };
        self.apply_index(vec![BatchOp::Delete { key: key.clone() }])?;
        // The record's removal is durable before the bytes go: a crash in between leaves an
        // orphan file (GC removes it), never a record without bytes.
        self.commit_if_durable()?;
        self.remove_body(&key, record)?;
        self.inner.counters.deletes.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Every stored block, as CIDv1 raw: the store keys by multihash and keeps no codec (as Kubo).
    /// Streams the index: memory does not grow with the store.
    pub fn list(&self) -> impl Iterator<Item = Result<Cid>> + '_ {
        self.engine()
            .iter(Keyspace::Index)
            .filter(|r| !matches!(r, Ok((key, _)) if key.is_empty()))
            .map(|r| {
                let (key, _) = r?;
                cid_of_key(&key)
            })
    }

    /// The number of blocks and their total size: the running totals kept with the index, so
    /// this reads nothing (constant time and memory, whatever the store holds).
    pub fn stat(&self) -> Result<StoreStat> {
        Ok(*self.inner.totals.lock())
    }

    /// The same totals counted by walking the whole index (no block data is read; one record in
    /// memory at a time). For checks of [`Blockstore::stat`].
    pub fn stat_by_walking(&self) -> Result<StoreStat> {
        let mut stat = StoreStat::default();
        for r in self.engine().iter(Keyspace::Index) {
            let (key, v) = r?;
            if key.is_empty() {
                continue;
            }
            stat.blocks += 1;
            stat.bytes += IndexRecord::decode(&key, &v)?.size;
        }
        Ok(stat)
    }

    /// Bytes the store occupies on disk: sled's files plus the block files (0 in memory).
    pub fn disk_usage(&self) -> Result<u64> {
        let mut total = self.engine().size_on_disk()?;
        if let Some(files) = &self.inner.files {
            total += files
                .disk_usage()
                .map_err(BlockstoreError::io("walk", files.root()))?;
        }
        Ok(total)
    }

    /// Checks every stored block against its hash (Kubo's `repo verify`), calling `on_damaged`
    /// with each block whose bytes are missing or altered and the error a read of it answers.
    /// One block in memory at a time.
    pub fn verify_each(
        &self,
        mut on_damaged: impl FnMut(Cid, BlockstoreError),
    ) -> Result<VerifySummary> {
        let mut summary = VerifySummary::default();
        for r in self.engine().iter(Keyspace::Index) {
            let (key, v) = r?;
            if key.is_empty() {
                continue;
            }
            let record = IndexRecord::decode(&key, &v)?;
            let cid = cid_of_key(&key)?;
            summary.checked += 1;
            let damage = match self.read_body(&key, record) {
                Ok(Some(data)) if verify(&cid, &data).is_ok() => continue,
                Ok(_) => BlockstoreError::Corrupt(cid),
                Err(e) => e,
            };
            summary.damaged += 1;
            on_damaged(cid, damage);
        }
        Ok(summary)
    }

    /// Operation counters since the store was opened.
    pub fn op_counts(&self) -> OpCounts {
        let c = &self.inner.counters;
        OpCounts {
            puts: c.puts.load(Ordering::Relaxed),
            put_bytes: c.put_bytes.load(Ordering::Relaxed),
            deletes: c.deletes.load(Ordering::Relaxed),
            flushes: self.inner.commit.flushes(),
        }
    }

    /// Writes everything out and fsyncs it. After this returns, every earlier write survives a crash.
    pub fn flush(&self) -> Result<()> {
        self.commit()
    }

    // ---- the node's own small records --------------------------------------------------------

    /// The record the node keeps under `key` (a Kubo datastore key such as `/local/filesroot`
    /// or `/ipns/<peer id bytes>`), if any. Keys starting with `/` are the node's; the store's
    /// own bookkeeping keys never do.
    ///
    /// # Errors
    /// [`BlockstoreError::InvalidRecordKey`] for a key not starting with `/`, or an engine error.
    pub fn get_record(&self, key: &[u8]) -> Result<Option<Bytes>> {
        check_record_key(key)?;
        Ok(self.engine().get(Keyspace::Meta, key)?)
    }

    /// Stores `value` under `key` (see [`Blockstore::get_record`]). With
    /// [`Durability::Synced`] it is on disk when this returns, as a block put is; it is written
    /// in one engine operation, so a crash leaves the old value or the new one.
    ///
    /// # Errors
    /// [`BlockstoreError::InvalidRecordKey`], or an engine error.
    pub fn put_record(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_record_key(key)?;
        self.engine().put(Keyspace::Meta, key, value)?;
        self.commit_if_durable()
    }

    /// Every node record whose key starts with `prefix` (which must itself start with `/`), in
    /// key order.
    ///
    /// # Errors
    /// [`BlockstoreError::InvalidRecordKey`], or an engine error.
    pub fn records_with_prefix(&self, prefix: &[u8]) -> Result<Vec<(Bytes, Bytes)>> {
        check_record_key(prefix)?;
        let mut out = Vec::new();
        for r in self.engine().iter(Keyspace::Meta) {
            let (k, v) = r?;
            if k.starts_with(prefix) {
                out.push((k, v));
            }
        }
        Ok(out)
    }

    /// Removes the record under `key`; returns whether there was one.
    ///
    /// # Errors
    /// [`BlockstoreError::InvalidRecordKey`], or an engine error.
    pub fn delete_record(&self, key: &[u8]) -> Result<bool> {
        check_record_key(key)?;
        let had = self.engine().delete(Keyspace::Meta, key)?;
        self.commit_if_durable()?;
        Ok(had)
    }

    // ---- pins -------------------------------------------------------------------------------

    /// Pins a CID (with no name). See [`Blockstore::pin_named`].
    pub fn pin(&self, cid: &Cid, mode: PinMode) -> Result<()> {
        self.pin_named(cid, mode, "")
    }

    /// Pins a CID under a name, following Kubo's rules: a recursive pin needs every block of the DAG
    /// in the store ([`BlockstoreError::PinMissingBlock`] names the first one missing) and replaces
    /// a direct pin of the same CID; a direct pin of a recursively pinned CID is an error.
    /// The pin is durable when this returns, whatever the durability setting.
    pub fn pin_named(&self, cid: &Cid, mode: PinMode, name: &str) -> Result<()> {
        let _guard = self.gc_guard();
        let _pins = self.inner.pin_lock.lock();
        let key = cid.to_bytes();
        let existing = self.pin_record(&key)?;
        match (mode, existing.as_ref().map(|r| r.mode)) {
            (PinMode::Direct, Some(PinMode::Recursive)) => {
                return Err(BlockstoreError::AlreadyPinnedRecursively(*cid));
            }
            (PinMode::Direct, _) => {
                if !self.has(cid)? {
                    return Err(BlockstoreError::PinMissingBlock {
                        root: Box::new(*cid),
                        missing: Box::new(*cid),
                    });
                }
            }
            (PinMode::Recursive, _) => {
                self.walk(
                    cid,
                    |missing| BlockstoreError::PinMissingBlock {
                        root: Box::new(*cid),
                        missing: Box::new(missing),
                    },
                    |_| true,
                )?;
            }
        }
        let record = PinRecord {
            mode,
            name: name.to_string(),
        };
        self.engine().put(Keyspace::Pins, &key, &record.encode())?;
        // Pins are rare and precious: always make them durable.
        self.commit()?;
        Ok(())
    }

    /// Removes a pin, following Kubo's rules: a direct pin is removed whatever `recursive` says; a
    /// recursive pin only with `recursive`; an indirect or absent pin is [`BlockstoreError::NotPinned`].
    pub fn unpin(&self, cid: &Cid, recursive: bool) -> Result<()> {
        let _pins = self.inner.pin_lock.lock();
        let key = cid.to_bytes();
        match self.pin_record(&key)?.map(|r| r.mode) {
            Some(PinMode::Recursive) if !recursive => Err(BlockstoreError::PinnedRecursively(*cid)),
            Some(_) => {
                self.engine().delete(Keyspace::Pins, &key)?;
                self.commit()?;
                Ok(())
            }
            None => Err(BlockstoreError::NotPinned(*cid)),
        }
    }

    fn pin_record(&self, key: &[u8]) -> Result<Option<PinRecord>> {
        self.engine()
            .get(Keyspace::Pins, key)?
            .map(|v| PinRecord::decode(key, &v))
            .transpose()
    }

    /// The stored pin records, streamed.
    fn pin_records(&self) -> impl Iterator<Item = Result<(Cid, PinRecord)>> + '_ {
        self.engine().iter(Keyspace::Pins).map(|r| {
            let (k, v) = r?;
            let cid = Cid::try_from(&k[..]).map_err(|_| BlockstoreError::CorruptPin {
                key: crate::block::hex(&k),
            })?;
            Ok((cid, PinRecord::decode(&k, &v)?))
        })
    }

    /// Lists pins of the kinds `filter` selects: recursive roots, then direct pins, then the blocks
    /// reachable from recursive pins (indirect), each CID once. Collects the whole listing; see
    /// [`Blockstore::pins_each`] to stream it.
    pub fn pins(&self, filter: PinFilter) -> Result<Vec<PinInfo>> {
        let mut out = Vec::new();
        self.pins_each(filter, |p| {
            out.push(p);
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f` with each pin [`Blockstore::pins`] would list, in the same order, without
    /// collecting them. Memory: the recursive roots' CIDs, plus 16 bytes per indirect block
    /// listed (to list each once). An error from `f` stops the listing and is returned.
    pub fn pins_each(
        &self,
        filter: PinFilter,
        mut f: impl FnMut(PinInfo) -> Result<()>,
    ) -> Result<()> {
        for (kind, mode) in [
            (PinKind::Recursive, PinMode::Recursive),
            (PinKind::Direct, PinMode::Direct),
        ] {
            if !filter.wants(kind) {
                continue;
            }
            for r in self.pin_records() {
                let (cid, r) = r?;
                if r.mode == mode {
                    f(PinInfo {
                        cid,
                        kind,
                        name: r.name,
                    })?;
                }
            }
        }
        if filter.wants(PinKind::Indirect) {
            let mut roots = Vec::new();
            for r in self.pin_records() {
                let (cid, r) = r?;
                if r.mode == PinMode::Recursive {
                    roots.push(cid);
                }
            }
            let root_set: HashSet<u128> = roots.iter().map(|c| compact(c.hash())).collect();
            let mut seen: HashSet<u128> = HashSet::new();
            let mut failed = None;
            for root in &roots {
                self.walk(
                    root,
                    |missing| BlockstoreError::PinMissingBlock {
                        root: Box::new(*root),
                        missing: Box::new(missing),
                    },
                    |c| {
                        let k = compact(c.hash());
                        if !root_set.contains(&k)
                            && seen.insert(k)
                            && let Err(e) = f(PinInfo {
                                cid: *c,
                                kind: PinKind::Indirect,
                                name: String::new(),
                            })
                        {
                            failed = Some(e);
                            return false;
                        }
                        true
                    },
                )?;
                if let Some(e) = failed {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// How one CID is pinned, if it is (Kubo's `pin ls <cid>`).
    pub fn pin_state(&self, cid: &Cid) -> Result<Option<PinState>> {
        if let Some(r) = self.pin_record(&cid.to_bytes())? {
            return Ok(Some(match r.mode {
                PinMode::Direct => PinState::Direct,
                PinMode::Recursive => PinState::Recursive,
            }));
        }
        for r in self.pin_records() {
            let (root, r) = r?;
            if r.mode == PinMode::Recursive && self.reaches(&root, |c| c == cid)? {
                return Ok(Some(PinState::Indirect { via: root }));
            }
        }
        Ok(None)
    }

    /// Which pin, if any, protects the block with this multihash.
    fn pinned_by(&self, mh: &Multihash<64>) -> Result<Option<(PinMode, Option<Cid>)>> {
        for r in self.pin_records() {
            let (c, r) = r?;
            if c.hash() == mh {
                return Ok(Some((r.mode, None)));
            }
        }
        for r in self.pin_records() {
            let (root, r) = r?;
            if r.mode == PinMode::Recursive && self.reaches(&root, |c| c.hash() == mh)? {
                return Ok(Some((PinMode::Recursive, Some(root))));
            }
        }
        Ok(None)
    }

    /// Whether the DAG under `root` has a node matching `pred`. Missing blocks are skipped: a block
    /// that is not there cannot be what a delete or a lookup is asking about.
    fn reaches(&self, root: &Cid, pred: impl Fn(&Cid) -> bool) -> Result<bool> {
        let mut found = false;
        let walked = self.walk(
            root,
            |_| BlockstoreError::NotPinned(*root),
            |c| {
                found |= pred(c);
                !found
            },
        );
        match walked {
            Ok(()) | Err(BlockstoreError::NotPinned(_)) => Ok(found),
            Err(e) => Err(e),
        }
    }

    /// Depth-first walk of the DAG under `root`, each block once. `visit` returns whether to go
    /// on; a missing block ends the walk with `on_missing(cid)`. Memory: 16 bytes per block
    /// visited, plus the CIDs waiting on the stack.
    fn walk(
        &self,
        root: &Cid,
        on_missing: impl Fn(Cid) -> BlockstoreError,
        mut visit: impl FnMut(&Cid) -> bool,
    ) -> Result<()> {
        let mut stack = vec![*root];
        let mut visited: HashSet<u128> = HashSet::new();
        while let Some(cid) = stack.pop() {
            if !visited.insert(compact(cid.hash())) {
                continue;
            }
            if cid.codec() == RAW {
                // A raw block has no links: the index says whether it is there, and its bytes
                // (most of a file's bytes) need not be read and hashed.
                if !self.has(&cid)? {
                    return Err(on_missing(cid));
                }
                if !visit(&cid) {
                    return Ok(());
                }
                continue;
            }
            let Some(block) = self.get(&cid)? else {
                return Err(on_missing(cid));
            };
            if !visit(&cid) {
                return Ok(());
            }
            let mut children = links(&cid, block.data())?;
            children.reverse();
            stack.extend(children);
        }
        Ok(())
    }

    // ---- named roots ---------------------------------------------------------------------------

    /// Sets (or with `None` clears) the named root `name`, durably: what the node keeps as Kubo
    /// keeps its MFS root under the datastore key `/local/filesroot`. Garbage collection keeps
    /// every block reachable from a named root (best effort: blocks missing under it are
    /// skipped, as Kubo's GC treats the MFS root), so a caller that stores a DAG's blocks and
    /// then sets its root while holding one [`GcGuard`] never loses a block to a concurrent GC,
    /// and a crash in between leaves the previous root, whose blocks are still stored.
    pub fn set_root(&self, name: &str, cid: Option<&Cid>) -> Result<()> {
        let _guard = self.gc_guard();
        let key = root_key(name);
        match cid {
            Some(c) => self.engine().put(Keyspace::Meta, &key, &c.to_bytes())?,
            None => {
                self.engine().delete(Keyspace::Meta, &key)?;
            }
        }
        self.commit()
    }

    /// The named root `name`, if set (see [`Blockstore::set_root`]).
    pub fn root(&self, name: &str) -> Result<Option<Cid>> {
        let Some(bytes) = self.engine().get(Keyspace::Meta, &root_key(name))? else {
            return Ok(None);
        };
        Cid::try_from(&bytes[..])
            .map(Some)
            .map_err(|e| BlockstoreError::InvalidCid {
                input: format!("named root {name:?}"),
                reason: e.to_string(),
            })
    }

    /// Every named root's CID (an unreadable record is skipped).
    fn roots(&self) -> Result<Vec<Cid>> {
        let mut out = Vec::new();
        for item in self.engine().iter(Keyspace::Meta) {
            let (key, value) = item?;
            if key.starts_with(ROOT_PREFIX)
                && let Ok(cid) = Cid::try_from(&value[..])
            {
                out.push(cid);
            }
        }
        Ok(out)
    }

    /// Marks what is reachable from `root` and stored, skipping what is missing.
    fn mark_best_effort(&self, root: &Cid, marked: &mut HashSet<u128>) -> Result<()> {
        self.walk_best_effort(root, marked, &mut |_, _| Ok(()))
    }

    /// Walks the DAG under `root` depth first, each block once (`seen` holds what was met), and
    /// calls `visit(cid, read)` for every block met: `read` is true for a block read from the
    /// store, false for a raw leaf, whose presence the walk does not check. Missing blocks are
    /// skipped with what is under them.
    fn walk_best_effort(
        &self,
        root: &Cid,
        seen: &mut HashSet<u128>,
        visit: &mut dyn FnMut(Cid, bool) -> Result<()>,
    ) -> Result<()> {
        let mut stack = vec![*root];
        while let Some(cid) = stack.pop() {
            if cid.hash().code() == IDENTITY || !seen.insert(compact(cid.hash())) {
                continue;
            }
            if cid.codec() == RAW {
                visit(cid, false)?;
                continue;
            }
            let Some(block) = self.get(&cid)? else {
                continue;
            };
            visit(cid, true)?;
            stack.extend(links(&cid, block.data())?);
        }
        Ok(())
    }

    /// Every stored block reachable from `root` (the root included), each once, depth first;
    /// what is missing is skipped with everything under it. For providing a DAG that may be
    /// partly local (Kubo's `mfs` provide strategy walks the MFS root this way).
    ///
    /// # Errors
    /// Engine errors, or [`BlockstoreError::Decode`] for a stored block whose links cannot be
    /// read.
    pub fn reachable_stored(&self, root: &Cid) -> Result<Vec<Cid>> {
        let mut out = Vec::new();
        self.walk_best_effort(root, &mut HashSet::new(), &mut |cid, read| {
            if read || self.has(&cid)? {
                out.push(cid);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// How much of the DAG under `root` is stored here, as Kubo's `files stat --with-local`
    /// counts it: `(local, size_local)` where `size_local` is the root block's size in bytes plus,
    /// for every link, the linked block's own `size_local` (a block linked twice counts twice,
    /// as Kubo's tree walk does), and `local` is whether nothing under `root` is missing. A
    /// missing block adds 0 bytes and makes `local` false. Nothing is fetched.
    ///
    /// Memory: one entry per distinct block reached (memoised, so shared subtrees cost one
    /// walk, not one per path).
    ///
    /// # Errors
    /// Engine errors, or [`BlockstoreError::Decode`] for a stored block whose links cannot be
    /// read.
    pub fn local_size(&self, root: &Cid) -> Result<(bool, u64)> {
        let mut memo: HashMap<Cid, (bool, u64)> = HashMap::new();
        /// A block read (its own size in bytes, its links): finished once its links are.
        type Read = Option<(u64, Vec<Cid>)>;
        let mut stack: Vec<(Cid, Read)> = vec![(*root, None)];
        while let Some((cid, read)) = stack.pop() {
            match read {
                None => {
                    if memo.contains_key(&cid) {
                        continue;
                    }
                    let Some(block) = self.get(&cid)? else {
                        memo.insert(cid, (false, 0));
                        continue;
                    };
                    let children = links(&cid, block.data())?;
                    let pending: Vec<Cid> = children
                        .iter()
                        .filter(|c| !memo.contains_key(c))
                        .copied()
                        .collect();
                    stack.push((cid, Some((block.data().len() as u64, children))));
                    stack.extend(pending.into_iter().map(|c| (c, None)));
                }
                Some((own, children)) => {
                    let mut entry = (true, own);
                    for c in &children {
                        // Content addressing rules out cycles, so every child is finished.
                        let (local, size) = memo.get(c).copied().unwrap_or((false, 0));
                        entry.0 &= local;
                        entry.1 = entry.1.saturating_add(size);
                    }
                    memo.insert(cid, entry);
                }
            }
        }
        Ok(memo.get(root).copied().unwrap_or((false, 0)))
    }

    // ---- garbage collection ------------------------------------------------------------------

    /// Removes every block not reachable from a pin and returns them all. See
    /// [`Blockstore::gc_each`], which streams them instead (this collects one `Cid` per removed
    /// block).
    pub fn gc(&self) -> Result<GcReport> {
        let mut report = GcReport::default();
        let summary = self.gc_each(|cid, size| {
            report.removed.push(cid);
            report.freed_bytes += size;
        })?;
        debug_assert_eq!(summary.freed_bytes, report.freed_bytes);
        Ok(report)
    }

    /// Removes every block not reachable from a pin or a named root ([`Blockstore::set_root`]),
    /// calling `on_removed(cid, size)` for each as
    /// it goes; then removes block files no index record names (left by a crash). Waits for
    /// writers holding a [`GcGuard`] and holds new ones off while it runs. If a pinned DAG is
    /// incomplete it removes nothing and returns [`BlockstoreError::GcIncompletePin`], as Kubo's
    /// GC refuses to guess. The removals are durable when this returns.
    ///
    /// Memory: the mark set holds 16 bytes (about 24 with the hash table's slack) per block
    /// reachable from a pin: 24 MiB for a million pinned blocks; unpinned blocks cost nothing,
    /// they are removed in batches of 1,024 while the index is walked.
    pub fn gc_each(&self, mut on_removed: impl FnMut(Cid, u64)) -> Result<GcSummary> {
        let _exclusive = self.inner.gate.enter_gc();
        let _pins = self.inner.pin_lock.lock();
        let mut marked: HashSet<u128> = HashSet::new();
        for r in self.pin_records() {
            let (root, r) = r?;
            match r.mode {
                PinMode::Direct => {
                    marked.insert(compact(root.hash()));
                }
                PinMode::Recursive => {
                    self.walk(
                        &root,
                        |missing| BlockstoreError::GcIncompletePin {
                            root: Box::new(root),
                            missing: Box::new(missing),
                        },
                        |c| {
                            marked.insert(compact(c.hash()));
                            true
                        },
                    )?;
                }
            }
        }
        for root in self.roots()? {
            self.mark_best_effort(&root, &mut marked)?;
        }
        let mut summary = GcSummary::default();
        let mut doomed: Vec<(Vec<u8>, IndexRecord)> = Vec::with_capacity(1024);
        let mut index = self.engine().iter(Keyspace::Index);
        loop {
            let next = index.next().transpose()?;
            if let Some((key, value)) = &next {
                let Ok(mh) = Multihash::<64>::from_bytes(key) else {
                    continue;
                };
                if marked.contains(&compact(&mh)) {
                    continue;
                }
                let record = IndexRecord::decode(key, value)?;
                summary.removed += 1;
                summary.freed_bytes += record.size;
                on_removed(Cid::new_v1(RAW, mh), record.size);
                doomed.push((key.to_vec(), record));
            }
            if doomed.len() >= 1024 || (next.is_none() && !doomed.is_empty()) {
                self.sweep(&doomed)?;
                doomed.clear();
            }
            if next.is_none() {
                break;
            }
        }
        drop(index);
        self.commit()?;
        summary.orphans = self.remove_orphan_files()?;
        self.inner
            .counters
            .deletes
            .fetch_add(summary.removed, Ordering::Relaxed);
        Ok(summary)
    }

    /// Removes a batch of blocks: index records first (made durable), then their bytes.
    fn sweep(&self, doomed: &[(Vec<u8>, IndexRecord)]) -> Result<()> {
        let ops = |filter: fn(&IndexRecord) -> bool| -> Vec<BatchOp> {
            doomed
                .iter()
                .filter(|(_, r)| filter(r))
                .map(|(key, _)| BatchOp::Delete { key: key.clone() })
                .collect()
        };
        self.apply_index(ops(|_| true))?;
        let inline = ops(|r| r.location == Location::Inline);
        if !inline.is_empty() {
            self.engine().apply_batch(Keyspace::Blocks, inline)?;
        }
        if doomed.iter().any(|(_, r)| r.location == Location::File) {
            // A file goes only once no durable record names it.
            self.commit()?;
            for (key, r) in doomed.iter().filter(|(_, r)| r.location == Location::File) {
                self.remove_body(key, *r)?;
            }
        }
        Ok(())
    }

    /// Removes block files without an index record and temporary files of unfinished writes.
    /// Runs under the GC gate, so no write is in progress.
    fn remove_orphan_files(&self) -> Result<u64> {
        let Some(files) = &self.inner.files else {
            return Ok(0);
        };
        let mut orphans = 0;
        let mut failure = None;
        files
            .walk(|path, key| {
                let orphan = match key {
                    Some(key) if key.is_empty() => true,
                    Some(key) => match self.engine().has(Keyspace::Index, &key) {
                        Ok(has) => !has,
                        Err(e) => {
                            failure = Some(e);
                            false
                        }
                    },
                    None => FlatFs::is_temp(path),
                };
                if orphan {
                    std::fs::remove_file(path)?;
                    orphans += 1;
                }
                Ok(())
            })
            .map_err(BlockstoreError::io("clean", files.root()))?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        Ok(orphans)
    }
}
