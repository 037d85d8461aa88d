//! The on-disk layout: large blocks as flatfs files beside the sled index, sizes from the index,
//! GC giving space back, damaged blocks refused and repaired, stores of earlier versions indexed,
//! and group commit sharing fsyncs.

use std::path::{Path, PathBuf};

use cairn_blockstore::codec::RAW;
use cairn_blockstore::{Block, Blockstore, BlockstoreConfig, BlockstoreError, PinMode};
use rand::{RngCore, SeedableRng, rngs::StdRng};

fn random_block(rng: &mut StdRng, len: usize) -> Block {
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    Block::from_data(RAW, data).unwrap()
}

/// Kubo's flatfs path of a block: base32 of the multihash, sharded by its next-to-last 2 chars.
fn flatfs_path(blocks: &Path, block: &Block) -> PathBuf {
    let name = data_encoding::BASE32_NOPAD.encode(&block.cid().hash().to_bytes());
    let shard = &name[name.len() - 3..name.len() - 1];
    blocks.join(shard).join(format!("{name}.data"))
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| std::fs::read_dir(e.path()).unwrap().count())
        .sum()
}

#[test]
fn large_blocks_are_files_small_ones_stay_in_sled() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path()).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let big = random_block(&mut rng, 256 << 10);
    let small = random_block(&mut rng, 1 << 10);
    store.put(&big).unwrap();
    store.put(&small).unwrap();
    let blocks = dir.path().join("blocks");
    assert_eq!(
        std::fs::read(flatfs_path(&blocks, &big)).unwrap(),
        big.data().as_ref()
    );
    assert!(!flatfs_path(&blocks, &small).exists());
    assert_eq!(files_under(&blocks), 1);
    assert_eq!(store.get(big.cid()).unwrap().unwrap(), big);
    assert_eq!(store.get(small.cid()).unwrap().unwrap(), small);
    let stat = store.stat().unwrap();
    assert_eq!((stat.blocks, stat.bytes), (2, (256 << 10) + 1024));
    assert_eq!(store.size(big.cid()).unwrap(), Some(256 << 10));
    drop(store);
    // Reopened, everything is still there.
    let store = Blockstore::open(dir.path()).unwrap();
    assert_eq!(store.get(big.cid()).unwrap().unwrap(), big);
    assert!(store.delete(big.cid()).unwrap());
    assert!(
        !flatfs_path(&blocks, &big).exists(),
        "delete removes the file"
    );
    assert_eq!(store.get(big.cid()).unwrap(), None);
}

#[test]
fn gc_returns_file_space_and_removes_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path()).unwrap();
    let mut rng = StdRng::seed_from_u64(2);
    let blocks: Vec<Block> = (0..16).map(|_| random_block(&mut rng, 128 << 10)).collect();
    store.put_many(blocks.clone()).unwrap();
    for b in &blocks[..8] {
        store.pin(b.cid(), PinMode::Direct).unwrap();
    }
    // A file left by a crash between the file write and its index record, and a temp file.
    let orphan = random_block(&mut rng, 128 << 10);
    let orphan_path = flatfs_path(&dir.path().join("blocks"), &orphan);
    std::fs::create_dir_all(orphan_path.parent().unwrap()).unwrap();
    std::fs::write(&orphan_path, orphan.data()).unwrap();
    let temp = orphan_path.parent().unwrap().join(".temp-1-1");
    std::fs::write(&temp, b"half a block").unwrap();
    assert!(!store.has(orphan.cid()).unwrap(), "an orphan is not stored");

    let before = store.disk_usage().unwrap();
    let summary = store.gc_each(|_, _| {}).unwrap();
    assert_eq!(summary.removed, 8);
    assert_eq!(summary.freed_bytes, 8 * (128 << 10));
    assert_eq!(summary.orphans, 2);
    assert!(!orphan_path.exists() && !temp.exists());
    assert_eq!(files_under(&dir.path().join("blocks")), 8);
    let after = store.disk_usage().unwrap();
    assert!(
        after + 8 * (128 << 10) <= before,
        "GC gave the space back: {before} -> {after}"
    );
    for b in &blocks[..8] {
        assert_eq!(store.get(b.cid()).unwrap().unwrap(), *b);
    }
}

#[test]
fn a_damaged_block_is_an_error_is_reported_and_is_repaired_by_a_put() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path()).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let good = random_block(&mut rng, 100 << 10);
    let bad = random_block(&mut rng, 100 << 10);
    let gone = random_block(&mut rng, 100 << 10);
    for b in [&good, &bad, &gone] {
        store.put(b).unwrap();
    }
    let blocks = dir.path().join("blocks");
    // Flip one byte of one file, and lose another.
    let path = flatfs_path(&blocks, &bad);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4096] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    std::fs::remove_file(flatfs_path(&blocks, &gone)).unwrap();

    for b in [&bad, &gone] {
        let err = store.get(b.cid()).unwrap_err();
        assert!(
            matches!(err, BlockstoreError::Corrupt(c) if c == *b.cid()),
            "{err}"
        );
    }
    assert_eq!(store.get(good.cid()).unwrap().unwrap(), good);

    let mut named = Vec::new();
    let summary = store
        .verify_each(|cid, _| named.push(cid.hash().to_bytes()))
        .unwrap();
    named.sort();
    let mut want = vec![bad.cid().hash().to_bytes(), gone.cid().hash().to_bytes()];
    want.sort();
    assert_eq!((summary.checked, summary.damaged), (3, 2));
    assert_eq!(named, want);

    // A fresh copy replaces the damaged one (a plain "already have it" would keep it broken).
    assert!(store.put(&bad).unwrap());
    assert_eq!(store.put_many([gone.clone()]).unwrap(), 1);
    assert_eq!(store.get(bad.cid()).unwrap().unwrap(), bad);
    assert_eq!(store.get(gone.cid()).unwrap().unwrap(), gone);
    assert_eq!(store.verify_each(|_, _| {}).unwrap().damaged, 0);
}

#[test]
fn a_store_from_before_the_index_is_indexed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let blocks: Vec<Block> = (0..5).map(|_| random_block(&mut rng, 300)).collect();
    {
        // The layout of earlier cairn versions: one sled tree of multihash -> bytes.
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree("blocks").unwrap();
        for b in &blocks {
            tree.insert(b.cid().hash().to_bytes(), b.data().as_ref())
                .unwrap();
        }
        db.flush().unwrap();
    }
    // sled gives its file lock back from a background thread shortly after the last handle is
    // dropped, so an immediate reopen can find it still held: retry that one error briefly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let store = loop {
        match Blockstore::open(dir.path()) {
            Ok(store) => break store,
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("open: {e}"),
        }
    };
    let stat = store.stat().unwrap();
    assert_eq!((stat.blocks, stat.bytes), (5, 1500));
    for b in &blocks {
        assert_eq!(store.get(b.cid()).unwrap().unwrap(), *b);
    }
}

#[test]
fn concurrent_durable_writers_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path()).unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(10 + t);
                for _ in 0..50 {
                    store.put(&random_block(&mut rng, 2048)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let counts = store.op_counts();
    assert_eq!(counts.puts, 200);
    // Every durable put waited for a flush; concurrent ones may share one, none skips it.
    assert!(
        counts.flushes >= 1 && counts.flushes <= counts.puts,
        "{counts:?}"
    );
    eprintln!(
        "200 durable puts from 4 threads took {} flushes",
        counts.flushes
    );
}

#[test]
fn a_write_that_would_fill_the_disk_is_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // A reserve larger than any disk: every write is refused before anything is written.
    let store = Blockstore::open_with(
        dir.path(),
        BlockstoreConfig::default().with_min_free_bytes(u64::MAX / 2),
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let b = random_block(&mut rng, 1000);
    let err = store.put(&b).unwrap_err();
    assert!(err.is_no_space(), "{err}");
    assert!(err.to_string().contains("no space left on device"), "{err}");
    assert!(!store.has(b.cid()).unwrap());
}

#[test]
fn running_totals_match_the_index_through_every_change_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(6);
    let check = |store: &Blockstore| {
        assert_eq!(store.stat().unwrap(), store.stat_by_walking().unwrap());
    };
    let bad = random_block(&mut rng, 100 << 10);
    {
        let store = Blockstore::open(dir.path()).unwrap();
        let many: Vec<Block> = (0..6)
            .map(|i| random_block(&mut rng, if i % 2 == 0 { 500 } else { 90 << 10 }))
            .collect();
        store.put_many(many.clone()).unwrap();
        store.put(&bad).unwrap();
        store.put(&many[0]).unwrap(); // already there: no change
        check(&store);
        assert_eq!(store.stat().unwrap().blocks, 7);
        store.delete(many[1].cid()).unwrap();
        check(&store);
        store.pin(many[2].cid(), PinMode::Direct).unwrap();
        store.gc().unwrap();
        check(&store);
        assert_eq!(store.stat().unwrap().blocks, 1);
        store.put(&bad).unwrap();
        // Damage, then repair: the count stays, the bytes stay.
        let path = flatfs_path(&dir.path().join("blocks"), &bad);
        std::fs::write(&path, b"short").unwrap();
        assert!(store.put(&bad).unwrap());
        check(&store);
        assert_eq!(store.stat().unwrap().blocks, 2);
    }
    let store = Blockstore::open(dir.path()).unwrap();
    check(&store);
    assert_eq!(store.stat().unwrap().blocks, 2);
}

#[test]
fn writers_racing_to_store_the_same_blocks_count_them_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Blockstore::open(dir.path()).unwrap();
    let mut rng = StdRng::seed_from_u64(8);
    let blocks: Vec<Block> = (0..20)
        .map(|i| random_block(&mut rng, if i % 2 == 0 { 700 } else { 70 << 10 }))
        .collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (store, blocks) = (store.clone(), blocks.clone());
            std::thread::spawn(move || {
                for b in &blocks {
                    if t % 2 == 0 {
                        store.put(b).unwrap();
                    } else {
                        store.put_many([b.clone()]).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.stat().unwrap(), store.stat_by_walking().unwrap());
    assert_eq!(store.stat().unwrap().blocks, 20);
}
