//! The storage engine under the blockstore: a small trait over keyspaces of bytes, with sled and
//! in-memory implementations. Another engine (redb, RocksDB) only has to implement [`StorageEngine`].

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::error::EngineError;

/// A separate namespace of keys inside one engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Keyspace {
    /// Block data keyed by multihash bytes.
    Blocks,
    /// Pin records keyed by CID bytes.
    Pins,
    /// Small bookkeeping values.
    Meta,
    /// The block index: multihash bytes to a small record (size, where the bytes live). Reading
    /// it never touches block data, so `stat` and `has` stay cheap however big the blocks are.
    Index,
}

impl Keyspace {
    const ALL: [Keyspace; 4] = [
        Keyspace::Blocks,
        Keyspace::Pins,
        Keyspace::Meta,
        Keyspace::Index,
    ];

    fn name(self) -> &'static str {
        match self {
            Keyspace::Blocks => "blocks",
            Keyspace::Pins => "pins",
            Keyspace::Meta => "meta",
            Keyspace::Index => "index",
        }
    }
}

/// One write in an atomic batch.
#[derive(Clone, Debug)]
pub enum BatchOp {
    /// Insert or replace `key` with `value`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Bytes,
    },
    /// Remove `key` if present.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

/// A result from an engine.
pub type EngineResult<T> = Result<T, EngineError>;

/// An iterator over `(key, value)` pairs of one keyspace, in key order.
pub type EngineIter<'a> = Box<dyn Iterator<Item = EngineResult<(Bytes, Bytes)>> + Send + 'a>;

/// What the blockstore needs from a key-value engine.
pub trait StorageEngine: Send + Sync + std::fmt::Debug + 'static {
    /// The value under `key`, if any.
    fn get(&self, ks: Keyspace, key: &[u8]) -> EngineResult<Option<Bytes>>;
    /// Stores `value` under `key`.
    fn put(&self, ks: Keyspace, key: &[u8], value: &[u8]) -> EngineResult<()>;
    /// Whether `key` is present.
    fn has(&self, ks: Keyspace, key: &[u8]) -> EngineResult<bool>;
    /// Removes `key`; returns whether it was present.
    fn delete(&self, ks: Keyspace, key: &[u8]) -> EngineResult<bool>;
    /// Every pair in the keyspace, in key order.
    fn iter(&self, ks: Keyspace) -> EngineIter<'_>;
    /// Applies every op or none of them.
    fn apply_batch(&self, ks: Keyspace, ops: Vec<BatchOp>) -> EngineResult<()>;
    /// Makes every completed write durable (written and fsynced).
    fn flush(&self) -> EngineResult<()>;
    /// Bytes the engine occupies on disk (0 for engines without files). Used by `repo/stat`.
    fn size_on_disk(&self) -> EngineResult<u64> {
        Ok(0)
    }
}

/// The sled engine: one sled tree per keyspace.
#[derive(Clone, Debug)]
pub struct SledEngine {
    db: sled::Db,
    trees: [sled::Tree; 4],
}

impl SledEngine {
    /// Opens (or creates) a sled database in the directory `path`.
    pub fn open(path: impl AsRef<Path>) -> EngineResult<Self> {
        let db = sled::Config::new().path(path.as_ref()).open()?;
        Self::from_db(db)
    }

    /// Wraps an already open sled database.
    pub fn from_db(db: sled::Db) -> EngineResult<Self> {
        let [a, b, c, d] = Keyspace::ALL;
        let trees = [
            db.open_tree(a.name())?,
            db.open_tree(b.name())?,
            db.open_tree(c.name())?,
            db.open_tree(d.name())?,
        ];
        Ok(SledEngine { db, trees })
    }

    /// The underlying sled database.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    fn tree(&self, ks: Keyspace) -> &sled::Tree {
        &self.trees[ks as usize]
    }
}

fn ivec_bytes(v: sled::IVec) -> Bytes {
    // Zero-copy: the IVec (reference counted) owns the bytes the `Bytes` points at.
    Bytes::from_owner(v)
}

impl StorageEngine for SledEngine {
    fn get(&self, ks: Keyspace, key: &[u8]) -> EngineResult<Option<Bytes>> {
        Ok(self.tree(ks).get(key)?.map(ivec_bytes))
    }

    fn put(&self, ks: Keyspace, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.tree(ks).insert(key, value)?;
        Ok(())
    }

    fn has(&self, ks: Keyspace, key: &[u8]) -> EngineResult<bool> {
        Ok(self.tree(ks).contains_key(key)?)
    }

    fn delete(&self, ks: Keyspace, key: &[u8]) -> EngineResult<bool> {
        Ok(self.tree(ks).remove(key)?.is_some())
    }

    fn iter(&self, ks: Keyspace) -> EngineIter<'_> {
        Box::new(self.tree(ks).iter().map(|r| {
            r.map(|(k, v)| (ivec_bytes(k), ivec_bytes(v)))
                .map_err(Into::into)
        }))
    }

    fn apply_batch(&self, ks: Keyspace, ops: Vec<BatchOp>) -> EngineResult<()> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                BatchOp::Put { key, value } => batch.insert(key, &value[..]),
                BatchOp::Delete { key } => batch.remove(key),
            }
        }
        self.tree(ks).apply_batch(batch)?;
        Ok(())
    }

    fn flush(&self) -> EngineResult<()> {
        self.db.flush()?;
        Ok(())
    }

    fn size_on_disk(&self) -> EngineResult<u64> {
        Ok(self.db.size_on_disk()?)
    }
}

/// An in-memory engine for tests and for embedders that want no files.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    spaces: [RwLock<BTreeMap<Vec<u8>, Bytes>>; 4],
}

impl MemoryEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    fn space(&self, ks: Keyspace) -> &RwLock<BTreeMap<Vec<u8>, Bytes>> {
        &self.spaces[ks as usize]
    }
}

impl StorageEngine for MemoryEngine {
    fn get(&self, ks: Keyspace, key: &[u8]) -> EngineResult<Option<Bytes>> {
        Ok(self.space(ks).read().get(key).cloned())
    }

    fn put(&self, ks: Keyspace, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.space(ks)
            .write()
            .insert(key.to_vec(), Bytes::copy_from_slice(value));
        Ok(())
    }

    fn has(&self, ks: Keyspace, key: &[u8]) -> EngineResult<bool> {
        Ok(self.space(ks).read().contains_key(key))
    }

    fn delete(&self, ks: Keyspace, key: &[u8]) -> EngineResult<bool> {
        Ok(self.space(ks).write().remove(key).is_some())
    }

    fn iter(&self, ks: Keyspace) -> EngineIter<'_> {
        // A snapshot: writers are not blocked while the caller walks it.
        let snapshot: Vec<_> = self
            .space(ks)
            .read()
            .iter()
            .map(|(k, v)| Ok((Bytes::copy_from_slice(k), v.clone())))
            .collect();
        Box::new(snapshot.into_iter())
    }

    fn apply_batch(&self, ks: Keyspace, ops: Vec<BatchOp>) -> EngineResult<()> {
        let mut space = self.space(ks).write();
        for op in ops {
            match op {
                BatchOp::Put { key, value } => {
                    space.insert(key, value);
                }
                BatchOp::Delete { key } => {
                    space.remove(&key);
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> EngineResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(e: &dyn StorageEngine) {
        assert_eq!(e.get(Keyspace::Blocks, b"k").unwrap(), None);
        e.put(Keyspace::Blocks, b"k", b"v").unwrap();
        assert!(e.has(Keyspace::Blocks, b"k").unwrap());
        assert!(
            !e.has(Keyspace::Pins, b"k").unwrap(),
            "keyspaces are separate"
        );
        assert_eq!(e.get(Keyspace::Blocks, b"k").unwrap().unwrap(), "v");
        e.apply_batch(
            Keyspace::Blocks,
            vec![
                BatchOp::Put {
                    key: b"a".to_vec(),
                    value: Bytes::from_static(b"1"),
                },
                BatchOp::Delete { key: b"k".to_vec() },
            ],
        )
        .unwrap();
        let all: Vec<_> = e.iter(Keyspace::Blocks).map(|r| r.unwrap()).collect();
        assert_eq!(
            all,
            vec![(Bytes::from_static(b"a"), Bytes::from_static(b"1"))]
        );
        assert!(e.delete(Keyspace::Blocks, b"a").unwrap());
        assert!(!e.delete(Keyspace::Blocks, b"a").unwrap());
        e.flush().unwrap();
    }

    #[test]
    fn memory_engine_behaves() {
        exercise(&MemoryEngine::new());
    }

    #[test]
    fn sled_engine_behaves() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&SledEngine::open(dir.path()).unwrap());
    }
}
