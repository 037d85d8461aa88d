//! Blockstore throughput against its own baselines, measured in the same run.
//!
//! For 1 KiB, 64 KiB, 256 KiB and 1 MiB blocks:
//! - `put/<size>/cairn`: hash the bytes into a CIDv1 and `Blockstore::put` them (sled, Buffered);
//! - `put/<size>/sha256+sled`: the baseline, sha2-256 of the bytes and a raw sled insert;
//! - `put/<size>/sha256` and `put/<size>/sled`: the two halves of the baseline alone;
//! - `get/<size>/cairn` and `get/<size>/sled`: `Blockstore::get` and a raw sled get of the same bytes.
//!
//! Run: `cargo bench --bench blockstore`, then `python3 scripts/bench-ratios.py` prints the ratios
//! recorded in BENCHMARKS.md (goals: put ≥ 70% of sha256+sled, get ≥ 80% of sled).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cairn::blockstore::codec::RAW;
use cairn::blockstore::{Block, Blockstore, BlockstoreConfig, Cid};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

const SIZES: [(usize, &str); 4] = [
    (1 << 10, "1KiB"),
    (64 << 10, "64KiB"),
    (256 << 10, "256KiB"),
    (1 << 20, "1MiB"),
];

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Fresh bytes each call, so every put is a new block (a repeated put is only a `has`).
fn unique(size: usize) -> Bytes {
    let mut data = vec![0xa5u8; size];
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    data[..8].copy_from_slice(&n.to_le_bytes());
    Bytes::from(data)
}

/// Removes what a timed put wrote when criterion drops it, outside the timed region, so the
/// database stays small however many iterations criterion runs.
struct Cleanup<F: FnMut()>(F);
impl<F: FnMut()> Drop for Cleanup<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

fn sled_tree(dir: &std::path::Path) -> sled::Tree {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(128 << 20)
        .open()
        .expect("open sled");
    db.open_tree("blocks").expect("open tree")
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    // The settings these figures were recorded with (BENCHMARKS.md): buffered, unverified reads,
    // every block in sled. The durable default is measured by crates/blockstore/benches/durability.rs.
    let store = Blockstore::open_with(
        dir.path().join("cairn"),
        BlockstoreConfig::default()
            .with_durability(cairn::blockstore::Durability::Buffered)
            .with_verify_on_read(false)
            .with_file_threshold(usize::MAX)
            .with_cache_capacity(128 << 20),
    )
    .expect("open store");
    let tree = sled_tree(&dir.path().join("sled"));

    for (size, label) in SIZES {
        let mut group = c.benchmark_group(format!("put/{label}"));
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 256 << 10 {
            group
                .sample_size(30)
                .measurement_time(Duration::from_secs(4));
        }
        group.bench_function("cairn", |b| {
            b.iter_batched(
                || unique(size),
                |data| {
                    let block = Block::from_data(RAW, data).expect("raw codec");
                    store.put(&block).expect("put");
                    let store = store.clone();
                    Cleanup(move || {
                        store.delete(block.cid()).expect("delete");
                    })
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function("sha256+sled", |b| {
            b.iter_batched(
                || unique(size),
                |data| {
                    let key = Sha256::digest(&data);
                    tree.insert(&key[..], &data[..]).expect("insert");
                    let tree = tree.clone();
                    Cleanup(move || {
                        tree.remove(&key[..]).expect("remove");
                    })
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function("sha256", |b| {
            b.iter_batched(
                || unique(size),
                |data| black_box(Sha256::digest(&data)),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("sled", |b| {
            b.iter_batched(
                || unique(size),
                |data| {
                    let key = data.slice(..32);
                    tree.insert(&key[..], &data[..]).expect("insert");
                    let tree = tree.clone();
                    Cleanup(move || {
                        tree.remove(&key[..]).expect("remove");
                    })
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();

        // Gets read a fixed set of blocks that both stores hold.
        let blocks: Vec<Block> = (0..32)
            .map(|_| Block::from_data(RAW, unique(size)).expect("raw codec"))
            .collect();
        let cids: Vec<Cid> = blocks.iter().map(|b| *b.cid()).collect();
        for b in &blocks {
            store.put(b).expect("put");
            tree.insert(b.cid().hash().to_bytes(), &b.data()[..])
                .expect("insert");
        }
        let keys: Vec<Vec<u8>> = cids.iter().map(|c| c.hash().to_bytes()).collect();
        let mut group = c.benchmark_group(format!("get/{label}"));
        group.throughput(Throughput::Bytes(size as u64));
        let mut i = 0;
        group.bench_function("cairn", |b| {
            b.iter(|| {
                i = (i + 1) % cids.len();
                black_box(store.get(&cids[i]).expect("get").expect("present"))
            })
        });
        group.bench_function("sled", |b| {
            b.iter(|| {
                i = (i + 1) % keys.len();
                black_box(tree.get(&keys[i]).expect("get").expect("present"))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
