//! The [`Blockstore`]: verified blocks keyed by multihash, pins, and garbage collection.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cid::Cid;
use multihash::Multihash;
use parking_lot::Mutex;

use crate::block::{Block, IDENTITY, verify};
use crate::codec::{RAW, links};
use crate::engine::{BatchOp, Keyspace, MemoryEngine, SledEngine, StorageEngine};
use crate::error::{BlockstoreError, Result};
use crate::gate::{Gate, GcGuard};
use crate::pin::{PinFilter, PinInfo, PinKind, PinMode, PinRecord, PinState};

/// When an acknowledged write is safe from a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Writes are acknowledged once in the engine's memory; sled writes them out every
    /// `flush_every_ms` (500 ms by default) and on [`Blockstore::flush`]. A process crash can lose
    /// the puts acknowledged in that last interval, never a flushed one, and never corrupts a block.
    #[default]
    Buffered,
    /// Every put, `put_many`, pin and delete is written and fsynced before it returns: an
    /// acknowledged write survives a process crash (and a power cut, as far as fsync holds).
    Synced,
}

/// Settings of a [`Blockstore`]; `Default` gives Kubo's behaviour.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BlockstoreConfig {
    /// Re-hash every block read and report [`BlockstoreError::Corrupt`] on mismatch (off, as in Kubo).
    pub verify_on_read: bool,
    /// When writes are durable.
    pub durability: Durability,
    /// The largest block accepted, in bytes (4 MiB: Bitswap's message limit).
    pub max_block_size: usize,
    /// sled's page cache, in bytes.
    pub cache_capacity: u64,
}

impl Default for BlockstoreConfig {
    fn default() -> Self {
        BlockstoreConfig {
            verify_on_read: false,
            durability: Durability::Buffered,
            max_block_size: 4 << 20,
            cache_capacity: 128 << 20,
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
}

fn key_of(cid: &Cid) -> Vec<u8> {
    cid.hash().to_bytes()
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
    /// Opens (or creates) a sled blockstore in the directory `path`, with default settings.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, BlockstoreConfig::default())
    }

    /// Opens (or creates) a sled blockstore in the directory `path`.
    pub fn open_with(path: impl AsRef<Path>, config: BlockstoreConfig) -> Result<Self> {
        let db = sled::Config::new()
            .path(path.as_ref())
            .cache_capacity(config.cache_capacity)
            .open()
            .map_err(crate::error::EngineError::from)?;
        Ok(Self::with_engine(
            Arc::new(SledEngine::from_db(db)?),
            config,
        ))
    }

    /// A store that lives in memory only.
    pub fn in_memory() -> Self {
        Self::with_engine(Arc::new(MemoryEngine::new()), BlockstoreConfig::default())
    }

    /// A store over any [`StorageEngine`].
    pub fn with_engine(engine: Arc<dyn StorageEngine>, config: BlockstoreConfig) -> Self {
        Blockstore {
            inner: Arc::new(Inner {
                engine,
                config,
                gate: Arc::default(),
                pin_lock: Mutex::new(()),
                counters: Counters::default(),
            }),
        }
    }

    /// The store's settings.
    pub fn config(&self) -> &BlockstoreConfig {
        &self.inner.config
    }

    fn engine(&self) -> &dyn StorageEngine {
        &*self.inner.engine
    }

    fn sync_if_configured(&self) -> Result<()> {
        if self.inner.config.durability == Durability::Synced {
            self.engine().flush()?;
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

    /// A guard that holds garbage collection off until it is dropped. See [`GcGuard`].
    pub fn gc_guard(&self) -> GcGuard {
        self.inner.gate.enter_writer()
    }

    /// Whether a garbage collection is waiting for writers to finish.
    pub fn gc_waiting(&self) -> bool {
        self.inner.gate.gc_waiting()
    }

    /// Stores a block. Returns `true` if it was new, `false` if it was already there (or is an
    /// identity block, which is never stored).
    pub fn put(&self, block: &Block) -> Result<bool> {
        self.check_size(block)?;
        if block.cid().hash().code() == IDENTITY {
            return Ok(false);
        }
        let _guard = self.gc_guard();
        let key = key_of(block.cid());
        // Has is cheaper than a write, as Kubo's blockstore also reasons.
        if self.engine().has(Keyspace::Blocks, &key)? {
            return Ok(false);
        }
        self.engine().put(Keyspace::Blocks, &key, block.data())?;
        self.sync_if_configured()?;
        let c = &self.inner.counters;
        c.puts.fetch_add(1, Ordering::Relaxed);
        c.put_bytes.fetch_add(block.len() as u64, Ordering::Relaxed);
        Ok(true)
    }

    /// Stores several blocks atomically: either all are stored or, on any error, none is.
    /// Returns how many were new.
    pub fn put_many(&self, blocks: impl IntoIterator<Item = Block>) -> Result<usize> {
        let blocks: Vec<Block> = blocks.into_iter().collect();
        for block in &blocks {
            self.check_size(block)?;
        }
        let _guard = self.gc_guard();
        let mut ops = Vec::with_capacity(blocks.len());
        let mut seen = HashSet::new();
        let mut bytes = 0u64;
        for block in blocks {
            if block.cid().hash().code() == IDENTITY {
                continue;
            }
            let key = key_of(block.cid());
            if !seen.insert(key.clone()) || self.engine().has(Keyspace::Blocks, &key)? {
                continue;
            }
            bytes += block.len() as u64;
            let (_, value) = block.into_parts();
            ops.push(BatchOp::Put { key, value });
        }
        let new = ops.len();
        if new > 0 {
            self.engine().apply_batch(Keyspace::Blocks, ops)?;
            self.sync_if_configured()?;
        }
        let c = &self.inner.counters;
        c.puts.fetch_add(new as u64, Ordering::Relaxed);
        c.put_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(new)
    }

    /// Reads a block, or `None` if it is not stored.
    pub fn get(&self, cid: &Cid) -> Result<Option<Block>> {
        let mh = cid.hash();
        if mh.code() == IDENTITY {
            return Ok(Some(Block::trusted(
                *cid,
                Bytes::copy_from_slice(mh.digest()),
            )));
        }
        let Some(data) = with_key(mh, |key| self.engine().get(Keyspace::Blocks, key))? else {
            return Ok(None);
        };
        if self.inner.config.verify_on_read && verify(cid, &data).is_err() {
            return Err(BlockstoreError::Corrupt(*cid));
        }
        Ok(Some(Block::trusted(*cid, data)))
    }

    /// Whether a block is stored (identity blocks always are).
    pub fn has(&self, cid: &Cid) -> Result<bool> {
        if cid.hash().code() == IDENTITY {
            return Ok(true);
        }
        Ok(with_key(cid.hash(), |key| {
            self.engine().has(Keyspace::Blocks, key)
        })?)
    }

    /// A stored block's size in bytes, or `None` if it is not stored.
    pub fn size(&self, cid: &Cid) -> Result<Option<usize>> {
        if cid.hash().code() == IDENTITY {
            return Ok(Some(cid.hash().digest().len()));
        }
        Ok(with_key(cid.hash(), |key| self.engine().get(Keyspace::Blocks, key))?.map(|d| d.len()))
    }

    /// Removes a block. Returns whether it was there. A block that a pin protects (directly,
    /// recursively or through a recursive pin's DAG) is refused with [`BlockstoreError::Pinned`].
    pub fn delete(&self, cid: &Cid) -> Result<bool> {
        let _pins = self.inner.pin_lock.lock();
        if let Some((mode, via)) = self.pinned_by(cid.hash())? {
            return Err(BlockstoreError::pinned(*cid, mode, via));
        }
        let removed = self.engine().delete(Keyspace::Blocks, &key_of(cid))?;
        if removed {
            self.sync_if_configured()?;
            self.inner.counters.deletes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(removed)
    }

    /// Every stored block, as CIDv1 raw: the store keys by multihash and keeps no codec (as Kubo).
    pub fn list(&self) -> impl Iterator<Item = Result<Cid>> + '_ {
        self.engine().iter(Keyspace::Blocks).map(|r| {
            let (key, _) = r?;
            let mh =
                Multihash::<64>::from_bytes(&key).map_err(|e| BlockstoreError::InvalidCid {
                    input: crate::block::hex(&key),
                    reason: format!("stored key is not a multihash: {e}"),
                })?;
            Ok(Cid::new_v1(RAW, mh))
        })
    }

    /// The number of blocks and their total size. Walks the whole store, as Kubo's `repo stat` does.
    pub fn stat(&self) -> Result<StoreStat> {
        let mut stat = StoreStat::default();
        for r in self.engine().iter(Keyspace::Blocks) {
            let (_, v) = r?;
            stat.blocks += 1;
            stat.bytes += v.len() as u64;
        }
        Ok(stat)
    }

    /// Operation counters since the store was opened.
    pub fn op_counts(&self) -> OpCounts {
        let c = &self.inner.counters;
        OpCounts {
            puts: c.puts.load(Ordering::Relaxed),
            put_bytes: c.put_bytes.load(Ordering::Relaxed),
            deletes: c.deletes.load(Ordering::Relaxed),
        }
    }

    /// Writes everything out and fsyncs it. After this returns, every earlier write survives a crash.
    pub fn flush(&self) -> Result<()> {
        Ok(self.engine().flush()?)
    }

    // ---- pins -------------------------------------------------------------------------------

    /// Pins a CID (with no name). See [`Blockstore::pin_named`].
    pub fn pin(&self, cid: &Cid, mode: PinMode) -> Result<()> {
        self.pin_named(cid, mode, "")
    }

    /// Pins a CID under a name, following Kubo's rules: a recursive pin needs every block of the DAG
    /// in the store ([`BlockstoreError::PinMissingBlock`] names the first one missing) and replaces
    /// a direct pin of the same CID; a direct pin of a recursively pinned CID is an error.
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
        self.engine().flush()?;
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
                self.engine().flush()?;
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

    fn pin_records(&self) -> Result<Vec<(Cid, PinRecord)>> {
        self.engine()
            .iter(Keyspace::Pins)
            .map(|r| {
                let (k, v) = r?;
                let cid = Cid::try_from(&k[..]).map_err(|_| BlockstoreError::CorruptPin {
                    key: crate::block::hex(&k),
                })?;
                Ok((cid, PinRecord::decode(&k, &v)?))
            })
            .collect()
    }

    /// Lists pins of the kinds `filter` selects: recursive roots, then direct pins, then the blocks
    /// reachable from recursive pins (indirect), each CID once.
    pub fn pins(&self, filter: PinFilter) -> Result<Vec<PinInfo>> {
        let records = self.pin_records()?;
        let mut out = Vec::new();
        for (kind, mode) in [
            (PinKind::Recursive, PinMode::Recursive),
            (PinKind::Direct, PinMode::Direct),
        ] {
            if filter.wants(kind) {
                out.extend(
                    records
                        .iter()
                        .filter(|(_, r)| r.mode == mode)
                        .map(|(cid, r)| PinInfo {
                            cid: *cid,
                            kind,
                            name: r.name.clone(),
                        }),
                );
            }
        }
        if filter.wants(PinKind::Indirect) {
            let roots: HashSet<Cid> = records
                .iter()
                .filter(|(_, r)| r.mode == PinMode::Recursive)
                .map(|(c, _)| *c)
                .collect();
            let mut seen = HashSet::new();
            for root in &roots {
                self.walk(
                    root,
                    |missing| BlockstoreError::PinMissingBlock {
                        root: Box::new(*root),
                        missing: Box::new(missing),
                    },
                    |c| {
                        if !roots.contains(c) && seen.insert(*c) {
                            out.push(PinInfo {
                                cid: *c,
                                kind: PinKind::Indirect,
                                name: String::new(),
                            });
                        }
                        true
                    },
                )?;
            }
        }
        Ok(out)
    }

    /// How one CID is pinned, if it is (Kubo's `pin ls <cid>`).
    pub fn pin_state(&self, cid: &Cid) -> Result<Option<PinState>> {
        if let Some(r) = self.pin_record(&cid.to_bytes())? {
            return Ok(Some(match r.mode {
                PinMode::Direct => PinState::Direct,
                PinMode::Recursive => PinState::Recursive,
            }));
        }
        for (root, r) in self.pin_records()? {
            if r.mode == PinMode::Recursive && self.reaches(&root, |c| c == cid)? {
                return Ok(Some(PinState::Indirect { via: root }));
            }
        }
        Ok(None)
    }

    /// Which pin, if any, protects the block with this multihash.
    fn pinned_by(&self, mh: &Multihash<64>) -> Result<Option<(PinMode, Option<Cid>)>> {
        let records = self.pin_records()?;
        if let Some((_, r)) = records.iter().find(|(c, _)| c.hash() == mh) {
            return Ok(Some((r.mode, None)));
        }
        for (root, r) in &records {
            if r.mode == PinMode::Recursive && self.reaches(root, |c| c.hash() == mh)? {
                return Ok(Some((PinMode::Recursive, Some(*root))));
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

    /// Depth-first walk of the DAG under `root`, each CID once. `visit` returns whether to go on;
    /// a missing block ends the walk with `on_missing(cid)`.
    fn walk(
        &self,
        root: &Cid,
        on_missing: impl Fn(Cid) -> BlockstoreError,
        mut visit: impl FnMut(&Cid) -> bool,
    ) -> Result<()> {
        let mut stack = vec![*root];
        let mut visited = HashSet::new();
        while let Some(cid) = stack.pop() {
            if !visited.insert(cid) {
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

    // ---- garbage collection ------------------------------------------------------------------

    /// Removes every block not reachable from a pin. Waits for writers holding a [`GcGuard`] and
    /// holds new ones off while it runs. If a pinned DAG is incomplete it removes nothing and
    /// returns [`BlockstoreError::GcIncompletePin`], as Kubo's GC refuses to guess.
    pub fn gc(&self) -> Result<GcReport> {
        let _exclusive = self.inner.gate.enter_gc();
        let _pins = self.inner.pin_lock.lock();
        let mut marked: HashSet<Vec<u8>> = HashSet::new();
        for (root, r) in self.pin_records()? {
            match r.mode {
                PinMode::Direct => {
                    marked.insert(key_of(&root));
                }
                PinMode::Recursive => {
                    self.walk(
                        &root,
                        |missing| BlockstoreError::GcIncompletePin {
                            root: Box::new(root),
                            missing: Box::new(missing),
                        },
                        |c| {
                            marked.insert(key_of(c));
                            true
                        },
                    )?;
                }
            }
        }
        let mut report = GcReport::default();
        let mut doomed = Vec::new();
        for r in self.engine().iter(Keyspace::Blocks) {
            let (key, value) = r?;
            if !marked.contains(&key[..]) {
                if let Ok(mh) = Multihash::<64>::from_bytes(&key) {
                    report.removed.push(Cid::new_v1(RAW, mh));
                }
                report.freed_bytes += value.len() as u64;
                doomed.push(key.to_vec());
            }
        }
        for chunk in doomed.chunks(1024) {
            let ops = chunk
                .iter()
                .map(|key| BatchOp::Delete { key: key.clone() })
                .collect();
            self.engine().apply_batch(Keyspace::Blocks, ops)?;
        }
        self.engine().flush()?;
        self.inner
            .counters
            .deletes
            .fetch_add(doomed.len() as u64, Ordering::Relaxed);
        Ok(report)
    }
}
