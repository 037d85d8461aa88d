//! The DHTs' record store: rust-libp2p's in-memory store for records and provider records that
//! other peers put here, and this node's own provider records answered from its blockstore
//! instead of being stored.
//!
//! Why: `kad::Behaviour::start_providing` keeps a local provider record for every key the node
//! announces, in a map whose entries hold room for 20 records inline (about 3 KiB per key), in each
//! of the two DHTs, and never drops one: not when the block is garbage-collected, not ever. The
//! release soak (`benches/soak.rs`: add, read, `repo/gc`, over and over) showed the daemon's RSS
//! climbing by about 2 KiB per add with nothing else growing, and a repo of 400,000 blocks under
//! the default `all` strategy would hold over 2 GiB of them. Kubo keeps its own provider records
//! on disk, in its datastore, and they lapse after 48 h.
//!
//! Here the node is a provider of a key exactly while its blockstore holds the block (the key is
//! the block's multihash, as in Kubo): nothing to store, nothing to forget after a GC, and the
//! answer to a `GET_PROVIDERS` that reaches this node (and to its own `findprovs`) names the node
//! for what it has. The memory per provided key is zero; records of other peers stay bounded by
//! the inner store's limits.
//!
//! The store is also where inbound records are checked: kad runs with `StoreInserts::Unfiltered`,
//! so a `PUT_VALUE` that [`RecordStore::put`] refuses is answered with a stream reset, as
//! go-libp2p-kad-dht answers an invalid or outdated record with an error (with `FilterBoth` kad
//! acknowledges every record before the node could look at it). Value records must validate
//! ([`crate::dht_records`]) and must not be older than the one held. Provider records taken from
//! peers are noted ([`ProviderStore::take_stored`]) so the node can report them as events.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use libp2p::PeerId;
use libp2p::kad::store::{MemoryStore, RecordStore, Result};
use libp2p::kad::{ProviderRecord, Record, RecordKey};

/// Whether this node's blockstore holds the block whose multihash is the key's bytes.
pub(crate) type HasBlock = Arc<dyn Fn(&RecordKey) -> bool + Send + Sync>;

/// A [`MemoryStore`] for others' records, with this node's provider records derived from
/// [`HasBlock`].
pub(crate) struct ProviderStore {
    inner: MemoryStore,
    local: PeerId,
    has: HasBlock,
    /// Provider records of other peers stored since the last [`ProviderStore::take_stored`]
    /// (at most [`MAX_NOTED`]).
    stored: Vec<(RecordKey, PeerId)>,
}

/// The most stored provider records noted between two drains (the event loop drains after
/// every inbound request, so this is never reached in practice).
const MAX_NOTED: usize = 1024;

impl ProviderStore {
    /// `inner` keeps what other peers put here; `local` is this node; `has` says what it holds.
    pub(crate) fn new(inner: MemoryStore, local: PeerId, has: HasBlock) -> Self {
        ProviderStore {
            inner,
            local,
            has,
            stored: Vec::new(),
        }
    }

    /// The provider records of other peers stored since the last call: `(key, provider)`.
    pub(crate) fn take_stored(&mut self) -> Vec<(RecordKey, PeerId)> {
        std::mem::take(&mut self.stored)
    }
}

impl RecordStore for ProviderStore {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    // kad walks this list only to republish provider records itself, which the node turns off
    // (its reprovider announces what the blockstore holds, in batches).
    type ProvidedIter<'a> = std::iter::Empty<Cow<'a, ProviderRecord>>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        self.inner.get(k)
    }

    fn put(&mut self, r: Record) -> Result<()> {
        // kad's store errors have no "invalid" kind; any error makes kad reset the request,
        // which is what matters (the reason is logged here).
        let refuse = libp2p::kad::store::Error::ValueTooLarge;
        if let Err(e) = crate::dht_records::validate(r.key.as_ref(), &r.value, SystemTime::now()) {
            tracing::debug!("DHT record refused: {e}");
            return Err(refuse);
        }
        if let Some(held) = self.inner.get(&r.key)
            && crate::dht_records::compare(r.key.as_ref(), &r.value, &held.value) == Ordering::Less
        {
            // go-libp2p-kad-dht: "DHT got a PUT_VALUE with an outdated record, refusing".
            tracing::debug!("outdated DHT record refused");
            return Err(refuse);
        }
        self.inner.put(r)
    }

    fn remove(&mut self, k: &RecordKey) {
        self.inner.remove(k)
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.inner.records()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> Result<()> {
        if record.provider == self.local {
            // Our own record (from start_providing): the blockstore already says it.
            return Ok(());
        }
        let noted = (record.key.clone(), record.provider);
        self.inner.add_provider(record)?;
        if self.stored.len() < MAX_NOTED {
            self.stored.push(noted);
        }
        Ok(())
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        let mut out = self.inner.providers(key);
        if !out.iter().any(|r| r.provider == self.local) && (self.has)(key) {
            // No addresses: kad fills in this node's own when it answers with the record.
            out.push(ProviderRecord::new(key.clone(), self.local, Vec::new()));
        }
        out
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        std::iter::empty()
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        self.inner.remove_provider(k, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    fn store(held: Arc<Mutex<HashSet<Vec<u8>>>>) -> (ProviderStore, PeerId) {
        let local = PeerId::random();
        let has: HasBlock =
            Arc::new(move |k: &RecordKey| held.lock().unwrap().contains(k.as_ref()));
        (
            ProviderStore::new(MemoryStore::new(local), local, has),
            local,
        )
    }

    #[test]
    fn the_node_provides_what_it_holds_and_stores_nothing_for_it() {
        let held = Arc::new(Mutex::new(HashSet::new()));
        let (mut s, local) = store(held.clone());
        let key = RecordKey::new(&b"a multihash".to_vec());
        // kad's start_providing stores our record first: it must not be kept.
        s.add_provider(ProviderRecord::new(key.clone(), local, Vec::new()))
            .unwrap();
        assert!(s.providers(&key).is_empty(), "not held, so not provided");
        held.lock().unwrap().insert(key.to_vec());
        let found = s.providers(&key);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].provider, local);
        // After a GC the block is gone, and so is the record, with nothing to clean up.
        held.lock().unwrap().clear();
        assert!(s.providers(&key).is_empty());
        assert_eq!(s.provided().count(), 0);
    }

    #[test]
    fn other_peers_records_are_kept_beside_ours() {
        let held = Arc::new(Mutex::new(HashSet::new()));
        let (mut s, local) = store(held.clone());
        let key = RecordKey::new(&b"k".to_vec());
        let other = PeerId::random();
        s.add_provider(ProviderRecord::new(key.clone(), other, Vec::new()))
            .unwrap();
        held.lock().unwrap().insert(key.to_vec());
        let providers: Vec<PeerId> = s.providers(&key).into_iter().map(|r| r.provider).collect();
        assert_eq!(providers, vec![other, local]);
        s.remove_provider(&key, &other);
        let providers: Vec<PeerId> = s.providers(&key).into_iter().map(|r| r.provider).collect();
        assert_eq!(providers, vec![local]);
    }
}
