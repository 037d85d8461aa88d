//! What durability costs: block puts from 4 concurrent writers, durable (fsync before each
//! acknowledgement, group commit) beside buffered, beside raw fsync'd file writes of the same
//! bytes, in the same run on the same disk.
//!
//! ## Usage
//!
//!     cargo bench -p cairn-blockstore --bench durability [-- <MiB per case>]
//!
//! Cases: 256 KiB blocks (kept as files) and 1 KiB blocks (kept in sled); for each, durable
//! single puts, buffered single puts, raw fsync'd files, and durable `put_many` of 16 blocks. Each case writes the
//! same amount with fresh random blocks into a fresh store under `target/`, and prints blocks/s,
//! MiB/s, and for the durable store the number of flushes its puts shared.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cairn_blockstore::codec::RAW;
use cairn_blockstore::{Block, Blockstore, BlockstoreConfig, Durability};
use rand::{RngCore, SeedableRng, rngs::StdRng};

const WRITERS: usize = 4;

fn blocks(n: usize, size: usize, seed: u64) -> Vec<Vec<Block>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..WRITERS)
        .map(|_| {
            (0..n / WRITERS)
                .map(|_| {
                    let mut data = vec![0u8; size];
                    rng.fill_bytes(&mut data);
                    Block::from_data(RAW, data).unwrap()
                })
                .collect()
        })
        .collect()
}

/// Runs `each` over every writer's blocks in its own thread; returns seconds.
fn timed(per_writer: Vec<Vec<Block>>, each: impl Fn(usize, &Block) + Send + Sync + 'static) -> f64 {
    let each = Arc::new(each);
    let start = Instant::now();
    let threads: Vec<_> = per_writer
        .into_iter()
        .enumerate()
        .map(|(w, bs)| {
            let each = each.clone();
            std::thread::spawn(move || {
                for b in &bs {
                    each(w, b);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    start.elapsed().as_secs_f64()
}

fn line(name: &str, n: usize, size: usize, secs: f64, extra: &str) -> f64 {
    let rate = n as f64 / secs;
    println!(
        "{name:<28} {n:>6} blocks {:>9.0} blocks/s {:>8.1} MiB/s{extra}",
        rate,
        rate * size as f64 / 1048576.0
    );
    rate
}

fn store_case(
    root: &Path,
    name: &str,
    durability: Durability,
    n: usize,
    size: usize,
    seed: u64,
) -> f64 {
    let dir = tempfile::tempdir_in(root).unwrap();
    let store = Blockstore::open_with(
        dir.path(),
        BlockstoreConfig::default().with_durability(durability),
    )
    .unwrap();
    let s = store.clone();
    let secs = timed(blocks(n, size, seed), move |_, b| {
        s.put(b).unwrap();
    });
    let flushes = store.op_counts().flushes;
    let extra = if durability == Durability::Synced {
        format!("  ({flushes} flushes for {n} puts)")
    } else {
        String::new()
    };
    line(name, n, size, secs, &extra)
}

/// Durable `put_many` in batches of 16 (what `add` does with its chunks), from `writers` threads.
fn batch_case(root: &Path, n: usize, size: usize, seed: u64, writers: usize) -> f64 {
    let dir = tempfile::tempdir_in(root).unwrap();
    let store = Blockstore::open(dir.path()).unwrap();
    let mut per_writer = blocks(n, size, seed);
    if writers == 1 {
        per_writer = vec![per_writer.concat()];
    }
    let start = Instant::now();
    let threads: Vec<_> = per_writer
        .into_iter()
        .map(|bs| {
            let store = store.clone();
            std::thread::spawn(move || {
                for chunk in bs.chunks(16) {
                    store.put_many(chunk.to_vec()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let flushes = store.op_counts().flushes;
    line(
        &format!("durable put_many 16, {writers}w"),
        n,
        size,
        secs,
        &format!("  ({flushes} flushes)"),
    )
}

fn raw_case(root: &Path, n: usize, size: usize, seed: u64) -> f64 {
    let dir = tempfile::tempdir_in(root).unwrap();
    let path = dir.path().to_path_buf();
    let secs = timed(blocks(n, size, seed), move |w, b| {
        let name = path.join(format!("{w}-{}", b.cid()));
        let mut f = File::create(&name).unwrap();
        f.write_all(b.data()).unwrap();
        f.sync_data().unwrap();
    });
    line("raw file write + fsync", n, size, secs, "")
}

fn main() {
    // `cargo bench` passes `--bench`; the first number, if any, is the MiB per case.
    let mib: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(256);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-durability");
    std::fs::create_dir_all(&root).unwrap();
    for (size, label) in [(256 << 10, "256 KiB"), (1 << 10, "1 KiB")] {
        // 1 KiB blocks: fewer bytes, or the case takes minutes of fsyncs.
        let n = if size >= 64 << 10 {
            (mib << 20) / size
        } else {
            8192
        };
        println!("--- {label} blocks, {WRITERS} writers");
        let durable = store_case(
            &root,
            "durable (Synced, default)",
            Durability::Synced,
            n,
            size,
            1,
        );
        let buffered = store_case(
            &root,
            "buffered (Sync: false)",
            Durability::Buffered,
            n,
            size,
            2,
        );
        let raw = raw_case(&root, n, size, 3);
        let batched = batch_case(&root, n, size, 4, WRITERS);
        batch_case(&root, n, size, 5, 1);
        println!(
            "durable/buffered {:.0}%, durable/raw fsync {:.0}%, durable put_many/buffered {:.0}%",
            100.0 * durable / buffered,
            100.0 * durable / raw,
            100.0 * batched / buffered
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
