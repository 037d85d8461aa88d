//! Swarming: one node fetches a DAG that several connected nodes provide, over one Bitswap
//! session. The blocks must come from several providers at once, a slow provider (its blockstore
//! sleeps on every block read) must serve only a small share, and duplicates must stay bounded.
//! No assertion depends on timing: the shares are counted from Bitswap's ledgers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_blockstore::engine::{
    BatchOp, EngineIter, EngineResult, Keyspace, MemoryEngine, StorageEngine,
};
use cairn_blockstore::{Blockstore, BlockstoreConfig};
use cairn_node_core::{FetchOptions, Node, Profile};
use common::files::{content, import, read_file, sha256};
use common::link;
use futures::StreamExt;

/// A memory engine whose block reads take `delay` each: a provider on a slow disk or link,
/// simulated in-process. Only reads of block bodies are slow; index lookups (which Bitswap's
/// server makes for every want) stay fast, as a real slow peer still answers HAVE quickly.
#[derive(Debug)]
struct SlowEngine {
    inner: MemoryEngine,
    delay: Duration,
}

impl StorageEngine for SlowEngine {
    fn get(&self, ks: Keyspace, key: &[u8]) -> EngineResult<Option<Bytes>> {
        if ks == Keyspace::Blocks {
            std::thread::sleep(self.delay);
        }
        self.inner.get(ks, key)
    }
    fn put(&self, ks: Keyspace, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.inner.put(ks, key, value)
    }
    fn has(&self, ks: Keyspace, key: &[u8]) -> EngineResult<bool> {
        self.inner.has(ks, key)
    }
    fn delete(&self, ks: Keyspace, key: &[u8]) -> EngineResult<bool> {
        self.inner.delete(ks, key)
    }
    fn iter(&self, ks: Keyspace) -> EngineIter<'_> {
        self.inner.iter(ks)
    }
    fn apply_batch(&self, ks: Keyspace, ops: Vec<BatchOp>) -> EngineResult<()> {
        self.inner.apply_batch(ks, ops)
    }
    fn flush(&self) -> EngineResult<()> {
        self.inner.flush()
    }
}

/// A node in memory on 127.0.0.1 whose block reads each take `delay`.
async fn slow_node(delay: Duration) -> Node {
    let engine = SlowEngine {
        inner: MemoryEngine::new(),
        delay,
    };
    Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .blockstore(Blockstore::with_engine(
            Arc::new(engine),
            BlockstoreConfig::default(),
        ))
        .build()
        .await
        .expect("node starts")
}

/// File size; 8 MiB (32 leaves of 256 KiB) keeps the test well under a minute.
fn mib() -> usize {
    std::env::var("CAIRN_SWARM_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_is_fetched_from_several_providers_and_a_slow_one_serves_little() {
    // Three ordinary providers and one whose every block read takes 200 ms.
    let mut providers = Vec::new();
    for _ in 0..3 {
        providers.push(common::node(false).await);
    }
    providers.push(slow_node(Duration::from_millis(200)).await);
    let data = content(mib() << 20, 7);
    let mut root = None;
    let mut nblocks = 0;
    for p in &providers {
        let (r, blocks) = import(p, &data).await;
        root = Some(r);
        nblocks = blocks.len() as u64;
    }
    let root = root.unwrap();
    let fetcher = common::node(false).await;
    for p in &providers {
        link(&fetcher, p).await;
    }

    let started = Instant::now();
    let mut fetch = fetcher.fetch_dag(
        root,
        FetchOptions::with_timeout(Some(Duration::from_secs(50))),
    );
    let mut fetched = 0;
    while let Some(p) = fetch.next().await {
        fetched = p.expect("fetch progresses").blocks;
    }
    let took = started.elapsed();
    assert_eq!(fetched, nblocks);
    assert_eq!(sha256(&read_file(&fetcher, &root).await), sha256(&data));

    let mut served = Vec::new();
    for p in &providers {
        served.push(
            fetcher
                .bitswap_ledger(p.peer_id())
                .await
                .unwrap()
                .blocks_received,
        );
    }
    let stat = fetcher.bitswap_stat().await.unwrap();
    eprintln!(
        "swarm: {nblocks} blocks in {took:?}; received per provider {served:?} (last is slow); \
         {} received, {} duplicates",
        stat.blocks_received, stat.dup_blocks_received
    );
}
